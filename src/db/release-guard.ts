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

function guard(transaction: Transaction): Transaction {
  const client = (transaction as unknown as { client: pg.PoolClient }).client;
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
