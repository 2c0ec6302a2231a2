import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { killOnExit, until } from './processes.js';
import { freePort } from './redis-server.js';

const run = promisify(execFile);

interface ClusterNode {
  port: number;
  process: ChildProcess | null;
}

/**
 * A real Redis Cluster of the test's own: `masters` masters with one replica
 * each, on free ports, keeping nothing on disk but its node tables (in a
 * scratch directory removed on stop). A node timeout of 2 s lets a replica
 * take over from a stopped master within seconds.
 */
export class LocalRedisCluster {
  private constructor(
    private readonly nodes: ClusterNode[],
    private readonly dir: string,
  ) {}

  static async start(options: { masters?: number; nodeTimeoutMs?: number } = {}): Promise<LocalRedisCluster> {
    const masters = options.masters ?? 3;
    const dir = await mkdtemp(path.join(tmpdir(), 'tys-cluster-'));
    const nodes: ClusterNode[] = [];
    for (let i = 0; i < masters * 2; i++) nodes.push({ port: await freePort(), process: null });
    const cluster = new LocalRedisCluster(nodes, dir);
    try {
      for (const node of nodes) cluster.spawnNode(node, options.nodeTimeoutMs ?? 2_000);
      for (const node of nodes) await until(`Redis node ${node.port} to answer`, () => answers(node.port), 10_000, 50);
      await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '1', '--cluster-yes'], {
        timeout: 60_000,
      });
      await until('the cluster to be ok on every node', () => cluster.healthy(), 30_000, 100);
      // A replica that has not finished its first sync cannot take over: a master killed before then is simply lost.
      await until('every replica to be in sync with its master', () => cluster.replicasInSync(masters), 30_000, 100);
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  private spawnNode(node: ClusterNode, nodeTimeoutMs: number): void {
    node.process = killOnExit(
      spawn(
        'redis-server',
        [
          ...['--port', String(node.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'],
          ...['--cluster-enabled', 'yes', '--cluster-node-timeout', String(nodeTimeoutMs)],
          ...['--cluster-config-file', `nodes-${node.port}.conf`, '--dir', this.dir],
        ],
        { stdio: 'ignore' },
      ),
    );
  }

  /** Seed nodes as REDIS_CLUSTER_NODES takes them. */
  get seeds(): string {
    return this.nodes.map((node) => `127.0.0.1:${node.port}`).join(',');
  }

  /** Whether every running node reports the cluster ok with every slot served. */
  async healthy(): Promise<boolean> {
    for (const node of this.nodes) {
      if (!node.process) continue;
      const info = String(await command(node.port, 'cluster', 'info').catch(() => ''));
      if (!/cluster_state:ok/.test(info) || !/cluster_slots_ok:16384/.test(info)) return false;
    }
    return true;
  }

  /** Whether `count` replicas are attached to their masters with their first sync done. */
  private async replicasInSync(count: number): Promise<boolean> {
    let synced = 0;
    for (const node of this.nodes) {
      const info = String(await command(node.port, 'info', 'replication').catch(() => ''));
      if (/^role:slave/m.test(info) && /^master_link_status:up/m.test(info) && /^master_sync_in_progress:0/m.test(info)) synced++;
    }
    return synced === count;
  }

  /** Ports of the current masters, in slot order. */
  async masterPorts(): Promise<number[]> {
    const slots = (await command(this.alivePort(), 'cluster', 'slots')) as [number, number, [string, number]][];
    return slots.sort((a, b) => a[0] - b[0]).map((range) => range[2][1]);
  }

  /** The hash slot of a key, as the cluster computes it. */
  async slotOf(key: string): Promise<number> {
    return Number(await command(this.alivePort(), 'cluster', 'keyslot', key));
  }

  /** The port of the master that serves a key's slot now. */
  async masterOf(key: string): Promise<number> {
    const slot = await this.slotOf(key);
    const ranges = (await command(this.alivePort(), 'cluster', 'slots')) as [number, number, [string, number]][];
    return ranges.find(([from, to]) => slot >= from && slot <= to)![2][1];
  }

  private alivePort(): number {
    return this.nodes.find((node) => node.process)!.port;
  }

  /** CPU seconds each running node has used (INFO cpu), with its role now. */
  async cpuByNode(): Promise<{ port: number; role: string; cpuSeconds: number }[]> {
    const running = this.nodes.filter((node) => node.process);
    return Promise.all(
      running.map(async ({ port }) => {
        const cpu = String(await command(port, 'info', 'cpu'));
        const role = /^role:(\w+)/m.exec(String(await command(port, 'info', 'replication')))?.[1] ?? '?';
        const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(cpu)?.[1] ?? 0);
        return { port, role, cpuSeconds: field('used_cpu_user') + field('used_cpu_sys') };
      }),
    );
  }

  /** Runs a command on one node (not following redirections). */
  command(port: number, ...args: string[]): Promise<unknown> {
    return command(port, ...args);
  }

  /** Kills a node outright, as a crashed machine would go. */
  async kill(port: number): Promise<void> {
    const node = this.nodes.find((n) => n.port === port);
    const child = node?.process;
    if (!node || !child) throw new Error(`no running cluster node on port ${port}`);
    node.process = null;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.nodes.map(async (node) => {
        const child = node.process;
        node.process = null;
        if (!child || child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
      }),
    );
    await rm(this.dir, { recursive: true, force: true });
  }
}

async function command(port: number, ...args: string[]): Promise<unknown> {
  const redis = new Redis({ port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return await redis.call(args[0]!, ...args.slice(1).map(String));
  } finally {
    redis.disconnect();
  }
}

async function answers(port: number): Promise<boolean> {
  return (await command(port, 'ping').catch(() => null)) === 'PONG';
}
