import type { RedisClient } from '../redis/connection.js';
import { ensureMarker, readMarker, redisAddressOf, type RedisMarker } from './redis-marker.js';

/** Live counters outlive any sane run; the durable record is in Postgres. */
export const RUN_TTL_SECONDS = 30 * 24 * 3600;
const FORGET_BATCH = 1_000;
const FORGET_DELAY_MS = 200;

export interface RunCounters {
  /** The run's jobs; until it is enqueued, those its producer has added so far. */
  total: number;
  completed: number;
  skipped: number;
  failed: number;
  /** The producer has added every job of the run, so `total` is final. */
  enqueued: boolean;
  /** Figures the family's handlers add (calls made, rows updated...). */
  stats: Record<string, number>;
}

export interface JobOutcomeRecord {
  runId: string;
  jobId: string;
  outcome: 'completed' | 'skipped' | 'failed';
}

/** What recording outcomes did to a run: whether its counters are gone, whether a failure turned into a success, which runs it finished. */
export interface RecordedOutcomes {
  runId: string;
  /** The run's counters are gone (its Redis lost them). */
  lost: boolean;
  /** A failure of the run turned into a success (a failed job retried). */
  revised: boolean;
  /** Runs (this one, runs that followed its jobs) that every job of has an outcome now. */
  done: string[];
}

// Counts each (jobId, outcome) pair of ARGV (from ARGV[2]) once, and only
// if the run's hash still exists (a flushed Redis must not resurrect a run).
// A job that later runs adopted (an enqueue that found it still queued) is
// counted for them too, once. A job that failed and succeeds when retried
// (from the board) moves from failed to its new outcome. Returns {state,
// revised, adopter runs now done...}: state -1 for a lost run, 2 when every
// job of the run has an outcome, 1 otherwise; revised 1 when a failure of
// the run turned into a success. ARGV[1] is the prefix of run keys.
// A batch is hundreds of jobs of one run: each run's hash is looked up, and
// its counters and expiry written, once per call rather than once per job.
const RECORD_ONCE = `
local revised = 0
local runs, changes, pendingOf = {}, {}, {}
local function open(hash, pending)
  if changes[hash] == nil then
    if redis.call('EXISTS', hash) == 1 then
      runs[#runs + 1] = hash
      changes[hash] = {completed = 0, skipped = 0, failed = 0}
      pendingOf[hash] = pending
    else
      changes[hash] = false
    end
  end
  return changes[hash]
end
local function count(hash, pending, jobId, outcome)
  local change = open(hash, pending)
  if not change then return end
  if redis.call('HSETNX', pending, jobId, outcome) == 1 then
    change[outcome] = change[outcome] + 1
  elseif outcome ~= 'failed' and redis.call('HGET', pending, jobId) == 'failed' then
    redis.call('HSET', pending, jobId, outcome)
    change.failed = change.failed - 1
    change[outcome] = change[outcome] + 1
    if hash == KEYS[1] then revised = 1 end
  end
end
local function done(hash)
  local c = redis.call('HMGET', hash, 'total', 'completed', 'skipped', 'failed', 'enqueued')
  return c[5] == '1' and tonumber(c[2]) + tonumber(c[3]) + tonumber(c[4]) >= tonumber(c[1])
end
local own = open(KEYS[1], KEYS[2])
for i = 2, #ARGV, 2 do
  local jobId, outcome = ARGV[i], ARGV[i + 1]
  count(KEYS[1], KEYS[2], jobId, outcome)
  local adopters = redis.call('HGET', KEYS[3], jobId)
  if adopters then
    for runId in string.gmatch(adopters, '%S+') do
      local hash = ARGV[1] .. runId
      count(hash, hash .. ':pending', jobId, outcome)
    end
    redis.call('HDEL', KEYS[3], jobId)
  end
end
local result = {1, revised}
for _, hash in ipairs(runs) do
  for _, outcome in ipairs({'completed', 'skipped', 'failed'}) do
    local n = changes[hash][outcome]
    if n ~= 0 then redis.call('HINCRBY', hash, outcome, n) end
  end
  redis.call('EXPIRE', pendingOf[hash], 2592000) -- RUN_TTL_SECONDS
  if hash ~= KEYS[1] and done(hash) then result[#result + 1] = string.sub(hash, #ARGV[1] + 1) end
end
if not own then result[1] = -1 elseif done(KEYS[1]) then result[1] = 2 end
return result`;

// The jobs in a queue's failed set (KEYS[1]) since ARGV[3] (ms) that belong
// to run ARGV[2] and have no outcome in its pending hash (KEYS[2]); ARGV[1]:
// the queue's key prefix. A failure counted stays in the pending hash.
const UNCOUNTED_FAILURES = `
local missing = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[3], '+inf')) do
  if redis.call('HEXISTS', KEYS[2], id) == 0 then
    local data = redis.call('HGET', ARGV[1] .. id, 'data')
    if data then
      local ok, job = pcall(cjson.decode, data)
      if ok and type(job) == 'table' and job.runId == ARGV[2] then missing[#missing + 1] = id end
    end
  end
end
return missing`;

// Makes a run (ARGV[3]) follow jobs of earlier runs that are still queued
// or active (ARGV from 4: job ids; ARGV[1]: the queue's key prefix; ARGV[2]:
// the prefix of run keys). A job whose outcome its own run has already
// counted is counted for this run at once. Returns {followed, counted,
// ids of jobs that finished meanwhile...}: those need a fresh job.
const ADOPT = `
local followed, counted, gone = 0, 0, {}
for i = 4, #ARGV do
  local id = ARGV[i]
  local data = redis.call('HGET', ARGV[1] .. id, 'data')
  local outcome = false
  if data then
    local ok, job = pcall(cjson.decode, data)
    if ok and type(job) == 'table' and type(job.runId) == 'string' then
      outcome = redis.call('HGET', ARGV[2] .. job.runId .. ':pending', id)
    end
  end
  -- A failure on record whose job is queued again (retried) is not final: it is followed.
  if outcome == 'failed' and not redis.call('ZSCORE', ARGV[1] .. 'failed', id) then outcome = false end
  if outcome then
    if redis.call('HSETNX', KEYS[3], id, outcome) == 1 then redis.call('HINCRBY', KEYS[2], outcome, 1) end
    counted = counted + 1
  elseif data and not redis.call('ZSCORE', ARGV[1] .. 'completed', id) and not redis.call('ZSCORE', ARGV[1] .. 'failed', id) then
    local current = redis.call('HGET', KEYS[1], id)
    if not current then
      redis.call('HSET', KEYS[1], id, ARGV[3])
    elseif not string.find(' ' .. current .. ' ', ' ' .. ARGV[3] .. ' ', 1, true) then
      redis.call('HSET', KEYS[1], id, current .. ' ' .. ARGV[3])
    end
    followed = followed + 1
  else
    gone[#gone + 1] = id
  end
end
redis.call('EXPIRE', KEYS[3], 2592000) -- RUN_TTL_SECONDS
local result = {followed, counted}
for _, id in ipairs(gone) do result[#result + 1] = id end
return result`;

// Hands jobs of a run being cancelled (ARGV[2]) that other runs follow to
// the first of those runs still open (ARGV[3]: their ids, space-separated),
// by rewriting the run id in the job's data, so that the followers still get
// the outcomes they wait for. ARGV[1]: the queue's key prefix; ARGV from 4:
// job ids. Returns {jobId, heir, ...} for each job handed over.
const HAND_OVER = `
local open = {}
for runId in string.gmatch(ARGV[3], '%S+') do open[runId] = true end
local handed = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  local ok, job = pcall(cjson.decode, redis.call('HGET', ARGV[1] .. id, 'data') or '')
  if ok and type(job) == 'table' and job.runId ~= ARGV[2] and open[job.runId] then
    -- Handed over already (a worker fetched it before the cancel rewrote it).
    handed[#handed + 1] = id
    handed[#handed + 1] = job.runId
  elseif ok and type(job) == 'table' and job.runId == ARGV[2] then
    local heir = false
    for runId in string.gmatch(redis.call('HGET', KEYS[1], id) or '', '%S+') do
      if not heir and open[runId] then heir = runId end
    end
    if heir then
      -- The heir stays among the job's followers: a worker that took the job
      -- under the old run just before this still counts it for the heir
      -- (once: counting is once per run and job). Who added the job stays
      -- known: its seal is that run's.
      if job.by == nil then job.by = job.runId end
      job.runId = heir
      redis.call('HSET', ARGV[1] .. id, 'data', cjson.encode(job))
      handed[#handed + 1] = id
      handed[#handed + 1] = heir
    end
  end
end
return handed`;

const ADD_STAT = `if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2]) end`;

// Sets fields (ARGV: field, value, ...) of a run Redis still has: a run it lost is not brought back as a
// bare hash, which reconcileRuns would take for live counters.
const HSET_IF_LIVE = `if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], unpack(ARGV)) end`;

// How long, in ms of Redis's own clock, the run has had ARGV[1] outcomes as
// the looks of every process saw it: -1 for the first look at that count,
// which starts the clock, and for a run Redis lost (not brought back as a
// bare hash).
const STANDING = `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local seen = redis.call('HMGET', KEYS[1], 'lookDone', 'lookSince')
local now = redis.call('TIME')
local ms = now[1] * 1000 + math.floor(now[2] / 1000)
if seen[1] ~= ARGV[1] then
  redis.call('HSET', KEYS[1], 'lookDone', ARGV[1], 'lookSince', ms)
  return -1
end
return ms - tonumber(seen[2])`;

// The producer's lease on a run it is still adding jobs to, in Redis's own
// clock (the producer and the workers may be on machines whose clocks
// disagree): producerUntil = now + ARGV[1] ms. Returns 0, and holds nothing,
// once the run is sealed: its producer must stop adding.
const HOLD_PRODUCER = `
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HGET', KEYS[1], 'enqueued') == '1' then return 0 end
local now = redis.call('TIME')
redis.call('HSET', KEYS[1], 'producerUntil', now[1] * 1000 + math.floor(now[2] / 1000) + tonumber(ARGV[1]))
return 1`;

// Seals a run nobody adds to any more with what its producer noted, and
// returns {total, followed, 1}; {total, followed, 0} for a run sealed
// already; nil for a run Redis lost or, in the hash that holds the lease
// (ARGV[1] '1'), one whose producer's lease has not lapsed or that never had
// one (a producer of a version without leases).
const SEAL_ABANDONED = `
local run = redis.call('HMGET', KEYS[1], 'family', 'enqueued', 'producerUntil', 'added', 'followed', 'total')
if not run[1] then return nil end
local followed = tonumber(run[5] or '0')
if run[2] == '1' then return {tonumber(run[6] or '0'), followed, 0} end
if ARGV[1] == '1' then
  if not run[3] then return nil end
  local now = redis.call('TIME')
  if now[1] * 1000 + math.floor(now[2] / 1000) <= tonumber(run[3]) then return nil end
end
local total = tonumber(run[4] or '0') + followed
redis.call('HSET', KEYS[1], 'total', total, 'enqueued', 1)
return {total, followed, 1}`;

/**
 * The Redis side of runs: a hash of live counters per run (cheap increments
 * from every worker, each job's outcome counted once), the jobs that later
 * runs follow, and this Redis's marker. Nothing here touches Postgres; the
 * durable record is RunRecords'.
 */
export class LiveRuns {
  private readonly forgotten = new Map<string, string[]>();
  private forgetTimer: NodeJS.Timeout | null = null;
  /**
   * The marker this process last saw in its Redis. If Redis later shows
   * another, the Redis lost its data in between: evidence for the runs of
   * the old marker, which only a process that saw both can give.
   */
  private seenMarker: RedisMarker | null = null;

  constructor(
    /** The non-blocking connection the counters are written through, for other bookkeeping of the same process. */
    readonly redis: RedisClient,
    private readonly prefix: string,
  ) {}

  private key(runId: string): string {
    return `${this.prefix}:runs:${runId}`;
  }

  private pendingKey(runId: string): string {
    return `${this.prefix}:runs:${runId}:pending`;
  }

  private get adoptersKey(): string {
    return `${this.prefix}:runs:adopters`;
  }

  /** Where this Redis keeps the fleet's keys (host:port/db/prefix), as runs record it. */
  get address(): string {
    return redisAddressOf(this.redis, this.prefix);
  }

  /** This Redis's marker, made if it has none; a change since this process last looked is recorded as a loss. */
  async marker(): Promise<RedisMarker> {
    this.seenMarker = await ensureMarker(this.redis, this.prefix, this.seenMarker);
    return this.seenMarker;
  }

  /**
   * This Redis's marker as it is, for a process that only reads; one that
   * has written here before (seen a marker) records a change it sees.
   */
  async currentMarker(): Promise<RedisMarker | null> {
    return this.seenMarker ? this.marker() : readMarker(this.redis, this.prefix);
  }

  /** Counters at zero; `paceMs` is the least time between two job starts of the run, if any. */
  async open(runId: string, family: string, paceMs: number | null): Promise<void> {
    await this.redis
      .multi()
      .hset(this.key(runId), { family, total: 0, completed: 0, skipped: 0, failed: 0, enqueued: 0, ...(paceMs ? { pace: paceMs } : {}) })
      .expire(this.key(runId), RUN_TTL_SECONDS)
      .exec();
  }

  async drop(runId: string): Promise<void> {
    await this.redis.del(this.key(runId), this.pendingKey(runId));
  }

  /** Seals the run with its total; a run Redis lost is not brought back, as a bare hash that reconcileRuns would take for live. */
  async markEnqueued(runId: string, total: number): Promise<void> {
    await this.redis.eval(HSET_IF_LIVE, 1, this.key(runId), 'total', total, 'enqueued', 1);
  }

  /** See RunStore.holdProducer; only the family's first shard holds the lease. */
  async holdProducer(runId: string, leaseMs: number): Promise<boolean> {
    return (await this.redis.eval(HOLD_PRODUCER, 1, this.key(runId), Math.ceil(leaseMs))) === 1;
  }

  /** See RunStore.standing; only the family's first shard keeps the looks. */
  async standing(runId: string, done: number): Promise<number | null> {
    const ms = (await this.redis.eval(STANDING, 1, this.key(runId), done)) as number;
    return ms < 0 ? null : ms;
  }

  /** See RunStore.noteAdded. */
  async noteAdded(runId: string, added: number, followed: number): Promise<void> {
    await this.redis.eval(HSET_IF_LIVE, 1, this.key(runId), 'added', added, 'followed', followed);
  }

  /**
   * Seals the run with the jobs its producer noted, when nobody adds to it
   * any more: `leased` for the shard that holds the producer's lease, which
   * must have lapsed. What the shard holds, sealed now or before (`fresh`
   * false); null when it was left as it was.
   */
  async sealAbandoned(runId: string, leased: boolean): Promise<{ total: number; followed: number; fresh: boolean } | null> {
    const sealed = (await this.redis.eval(SEAL_ABANDONED, 1, this.key(runId), leased ? '1' : '0')) as [number, number, number] | null;
    return sealed ? { total: sealed[0], followed: sealed[1], fresh: sealed[2] === 1 } : null;
  }

  /** See RunStore.adopt. */
  async adopt(runId: string, queueName: string, jobIds: string[]): Promise<{ followed: number; gone: string[] }> {
    if (jobIds.length === 0) return { followed: 0, gone: [] };
    const [followed, counted, ...gone] = (await this.redis.eval(
      ADOPT,
      3,
      this.adoptersKey,
      this.key(runId),
      this.pendingKey(runId),
      `${this.prefix}:${queueName}:`,
      `${this.prefix}:runs:`,
      runId,
      ...jobIds,
    )) as [number, number, ...string[]];
    return { followed: followed + counted, gone };
  }

  /** Hands jobs of `runId` that runs of `openRunIds` follow to the first of those; returns each job's heir. */
  async handOver(queueName: string, runId: string, openRunIds: string[], jobIds: string[]): Promise<Map<string, string>> {
    if (jobIds.length === 0 || openRunIds.length === 0) return new Map();
    const pairs = (await this.redis.eval(HAND_OVER, 1, this.adoptersKey, `${this.prefix}:${queueName}:`, runId, openRunIds.join(' '), ...jobIds)) as string[];
    const heirs = new Map<string, string>();
    for (let i = 0; i < pairs.length; i += 2) heirs.set(pairs[i]!, pairs[i + 1]!);
    return heirs;
  }

  /**
   * Jobs of `runId` in the queue's failed set since `sinceMs` whose outcome
   * the run has not counted (see RunStore.countMissedFailures).
   */
  async uncountedFailures(queueName: string, runId: string, sinceMs: number): Promise<string[]> {
    const keys = `${this.prefix}:${queueName}:`;
    return (await this.redis.eval(UNCOUNTED_FAILURES, 2, `${keys}failed`, this.pendingKey(runId), keys, runId, sinceMs)) as string[];
  }

  /** Counts each outcome once (see RunStore.record); one round trip per run in the list. */
  async record(outcomes: JobOutcomeRecord[]): Promise<RecordedOutcomes[]> {
    const byRun = new Map<string, string[]>();
    for (const { runId, jobId, outcome } of outcomes) {
      const args = byRun.get(runId) ?? [];
      args.push(jobId, outcome);
      byRun.set(runId, args);
    }
    return Promise.all(
      [...byRun].map(async ([runId, args]) => {
        const [state, revised, ...adopters] = (await this.redis.eval(
          RECORD_ONCE,
          3,
          this.key(runId),
          this.pendingKey(runId),
          this.adoptersKey,
          `${this.prefix}:runs:`,
          ...args,
        )) as [number, number, ...string[]];
        return { runId, lost: state === -1, revised: revised === 1, done: [...new Set(state === 2 ? [runId, ...adopters] : adopters)] };
      }),
    );
  }

  /**
   * Drops the once-only markers of jobs that BullMQ has marked finished,
   * gathered and deleted together a moment later: memory stays bounded by
   * the jobs in flight, at a fraction of a round trip per job.
   */
  forget(runId: string, jobId: string): void {
    const ids = this.forgotten.get(runId) ?? [];
    ids.push(jobId);
    this.forgotten.set(runId, ids);
    if (ids.length >= FORGET_BATCH) void this.flushForgotten();
    else this.forgetTimer ??= setTimeout(() => void this.flushForgotten(), FORGET_DELAY_MS);
  }

  async flushForgotten(): Promise<void> {
    if (this.forgetTimer) clearTimeout(this.forgetTimer);
    this.forgetTimer = null;
    const batches = [...this.forgotten];
    this.forgotten.clear();
    if (batches.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const [runId, ids] of batches) pipeline.hdel(this.pendingKey(runId), ...ids);
    await pipeline.exec();
  }

  /** The least ms between two job starts of the run, when it was started with a rate. */
  async paceOf(runId: string): Promise<number | null> {
    const pace = await this.redis.hget(this.key(runId), 'pace');
    return pace ? Number(pace) : null;
  }

  /** Whether the run has counted an outcome for this job. */
  /** Whether the run follows the job (it adopted it from the run that added it). */
  async follows(runId: string, jobId: string): Promise<boolean> {
    return ((await this.redis.hget(this.adoptersKey, jobId)) ?? '').split(' ').includes(runId);
  }

  async hasOutcome(runId: string, jobId: string): Promise<boolean> {
    return (await this.redis.hexists(this.pendingKey(runId), jobId)) === 1;
  }

  async counters(runId: string): Promise<RunCounters | null> {
    const raw = await this.redis.hgetall(this.key(runId));
    if (!raw.family) return null;
    const stats: Record<string, number> = {};
    for (const [field, value] of Object.entries(raw)) if (field.startsWith('stat:')) stats[field.slice(5)] = Number(value);
    return {
      // Until the run is sealed, the jobs its producer has noted so far: a total still growing.
      total: raw.enqueued === '1' ? Number(raw.total ?? 0) : Number(raw.added ?? 0) + Number(raw.followed ?? 0),
      completed: Number(raw.completed ?? 0),
      skipped: Number(raw.skipped ?? 0),
      failed: Number(raw.failed ?? 0),
      enqueued: raw.enqueued === '1',
      stats,
    };
  }

  /** Whether this Redis holds the run's counters. */
  async has(runId: string): Promise<boolean> {
    return (await this.redis.exists(this.key(runId))) === 1;
  }

  /** Adds to a named figure of a live run; nothing happens to a run Redis no longer has. */
  async addStat(runId: string, stat: string, n: number): Promise<void> {
    await this.redis.eval(ADD_STAT, 1, this.key(runId), `stat:${stat}`, n);
  }
}
