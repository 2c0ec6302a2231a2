// The simulated application in a process of its own (see bench/application.ts):
// it takes its orders and hands over what it recorded through the IPC channel.
import { createPrisma } from '../src/db/prisma.js';
import type { ApplicationOrder, ApplicationReport, ApplicationSetup } from './application.js';
import { TrafficSimulator } from './traffic.js';

/** How often the records go to the parent, in ms: small batches, so that handing them over never holds requests up. */
const REPORT_EVERY_MS = 250;

/** Resolves once the report has left: a channel disconnected sooner drops what it still holds. */
const send = (report: ApplicationReport) =>
  new Promise<void>((resolve, reject) => process.send!(report, undefined, undefined, (error: Error | null) => (error ? reject(error) : resolve())));

async function serve(setup: ApplicationSetup): Promise<void> {
  const prisma = createPrisma(setup.databaseUrl, { maxConnections: setup.connections, applicationName: setup.applicationName });
  const traffic = new TrafficSimulator(prisma, { rate: setup.rate, connections: setup.connections });
  await traffic.setUp();
  let reporting: NodeJS.Timeout | null = null;
  const sendRecord = () => void send({ type: 'record', record: traffic.drain() }).catch(fail);
  const stop = async () => {
    if (reporting) clearInterval(reporting);
    reporting = null;
    await traffic.stop();
    await send({ type: 'record', record: traffic.drain() });
    await send({ type: 'stopped', investmentIds: traffic.investmentIds() });
    await prisma.$disconnect();
    process.disconnect();
  };
  process.on('message', (order: ApplicationOrder) => {
    if (order.type === 'start') {
      traffic.start();
      reporting = setInterval(sendRecord, REPORT_EVERY_MS);
    } else if (order.type === 'flush') sendRecord();
    else if (order.type === 'stop') stop().catch(fail);
  });
  // The parent gone, nobody reads the figures: the requests stop with it.
  process.once('disconnect', () => {
    if (reporting) void traffic.stop().then(() => prisma.$disconnect());
  });
  await send({ type: 'ready', phases: traffic.phasesSeen });
}

function fail(error: Error): void {
  process.exitCode = 1;
  if (!process.connected) return;
  send({ type: 'failed', message: error.message })
    .catch(() => undefined)
    .finally(() => process.disconnect());
}

if (!process.send) {
  console.error('error: bench/application-main.ts is started by bench/application.ts, with an IPC channel');
  process.exit(2);
}
process.once('message', (order: ApplicationOrder) => {
  if (order.type !== 'setUp') return fail(new Error(`expected the setUp order first, got "${order.type}"`));
  serve(order.setup).catch(fail);
});
