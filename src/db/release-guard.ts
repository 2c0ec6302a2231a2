import type { PrismaPg } from '@prisma/adapter-pg';
import type pg from 'pg';

type Adapter = Awaited<ReturnType<PrismaPg['connect']>>;
type Transaction = Awaited<ReturnType<Adapter['startTransaction']>>;

const TRANSACTION_ENDS = new Set(['COMMIT', 'ROLLBACK']);

/**
 * Prisma's transaction manager sends COMMIT or ROLLBACK and only then hands
 * the connection back to the pool. When the connection is already dead (the
 * backend was terminated, the server restarted, the network dropped) that
 * statement throws and the connection is never handed back: after as many
 * such failures as the pool has connections, every query waits forever, and
 * so does disconnecting. This makes a transaction whose COMMIT or ROLLBACK
 * fails destroy its connection instead (the pool opens a new one), and makes
 * the release that may follow harmless.
 */
export function releaseBrokenTransactions(factory: PrismaPg): PrismaPg {
  const connect = factory.connect.bind(factory);
  factory.connect = async () => {
    const adapter = await connect();
    const start = adapter.startTransaction.bind(adapter);
    adapter.startTransaction = async (isolationLevel) => guard(await start(isolationLevel));
    return adapter;
  };
  return factory;
}

/** Connections that already carry the listener below: one each, however many transactions they serve. */
const listening = new WeakSet<pg.PoolClient>();

function guard(transaction: Transaction): Transaction {
  const client = (transaction as unknown as { client: pg.PoolClient }).client;
  // The adapter listens for connection errors only while the transaction is
  // open, and the pool only while the connection is idle; an error that
  // arrives in between (the server ending a connection just handed back, or
  // one destroyed above) would be an unhandled 'error' event and crash the
  // process. The failure already reaches the query that meets it.
  if (!listening.has(client)) {
    listening.add(client);
    client.on('error', () => undefined);
  }
  let released = false;
  const release = client.release.bind(client);
  client.release = (error?: Error | boolean) => {
    if (released) return;
    released = true;
    release(error);
  };
  const executeRaw = transaction.executeRaw.bind(transaction);
  transaction.executeRaw = async (query) => {
    try {
      return await executeRaw(query);
    } catch (error) {
      if (TRANSACTION_ENDS.has(query.sql.trim().toUpperCase())) client.release(error instanceof Error ? error : new Error(String(error)));
      throw error;
    }
  };
  return transaction;
}
