import { execFile } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './redis-server.js';

const run = promisify(execFile);

/** The installed server's programs (Debian keeps them out of PATH). */
function binary(name: string): string {
  const root = '/usr/lib/postgresql';
  const version = readdirSync(root).sort((a, b) => Number(b) - Number(a))[0];
  if (!version) throw new Error(`no Postgres server under ${root}`);
  return path.join(root, version, 'bin', name);
}

/** Postgres refuses to run as root: as root, its programs run as the postgres user. */
async function asServerUser(program: string, args: string[]): Promise<void> {
  const [command, argv] = process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', binary(program), ...args]] : [binary(program), args];
  await run(command, argv, { timeout: 60_000 });
}

/**
 * A primary and a streaming replica of the test's own, in a scratch
 * directory on free ports, so that a test can stop the replica's replay and
 * watch it fall behind without touching the machine's shared server.
 */
export class ReplicatedPostgres {
  private constructor(
    private readonly dir: string,
    readonly primaryPort: number,
    readonly replicaPort: number,
  ) {}

  get primaryUrl(): string {
    return `postgres://postgres@127.0.0.1:${this.primaryPort}/postgres`;
  }

  get replicaUrl(): string {
    return `postgres://postgres@127.0.0.1:${this.replicaPort}/postgres`;
  }

  static async start(): Promise<ReplicatedPostgres> {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tys-replica-'));
    chmodSync(dir, 0o755);
    if (process.getuid?.() === 0) {
      const { uid, gid } = await serverUser();
      chownSync(dir, uid, gid);
    }
    const pair = new ReplicatedPostgres(dir, await freePort(), await freePort());
    try {
      const primary = path.join(dir, 'primary');
      const replica = path.join(dir, 'replica');
      await asServerUser('initdb', ['-D', primary, '-A', 'trust', '-U', 'postgres', '--no-sync']);
      await asServerUser('pg_ctl', [
        '-D',
        primary,
        '-l',
        path.join(dir, 'primary.log'),
        '-w',
        'start',
        '-o',
        `-p ${pair.primaryPort} -c listen_addresses=127.0.0.1 -c unix_socket_directories=${dir} -c fsync=off -c max_wal_senders=4`,
      ]);
      await asServerUser('pg_basebackup', [
        '-h',
        '127.0.0.1',
        '-p',
        String(pair.primaryPort),
        '-U',
        'postgres',
        '-D',
        replica,
        '-R',
        '-X',
        'stream',
        '--no-sync',
      ]);
      await asServerUser('pg_ctl', [
        '-D',
        replica,
        '-l',
        path.join(dir, 'replica.log'),
        '-w',
        'start',
        '-o',
        `-p ${pair.replicaPort} -c listen_addresses=127.0.0.1 -c unix_socket_directories=${dir} -c fsync=off`,
      ]);
    } catch (error) {
      await pair.stop();
      throw error;
    }
    return pair;
  }

  /** Runs SQL on one of the two, on a connection of its own. */
  async query<T extends pg.QueryResultRow>(which: 'primary' | 'replica', sql: string): Promise<T[]> {
    const client = new pg.Client({ connectionString: which === 'primary' ? this.primaryUrl : this.replicaUrl });
    await client.connect();
    try {
      return (await client.query<T>(sql)).rows;
    } finally {
      await client.end();
    }
  }

  async stop(): Promise<void> {
    for (const name of ['replica', 'primary']) {
      await asServerUser('pg_ctl', ['-D', path.join(this.dir, name), '-m', 'immediate', 'stop']).catch(() => undefined);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function serverUser(): Promise<{ uid: number; gid: number }> {
  const { stdout } = await run('id', ['-u', 'postgres']);
  const { stdout: group } = await run('id', ['-g', 'postgres']);
  return { uid: Number(stdout.trim()), gid: Number(group.trim()) };
}
