import { describe, expect, it } from 'vitest';
import { Batcher } from '../src/fleet/batcher.js';

describe('Batcher', () => {
  it('groups concurrent submissions up to maxSize and resolves each with its own result', async () => {
    const calls: number[][] = [];
    const batcher = new Batcher<number, string>(
      (items) => {
        calls.push(items);
        return Promise.resolve(items.map((n) => (n % 5 === 0 ? new Error(`bad ${n}`) : `ok ${n}`)));
      },
      { maxSize: 4, maxWaitMs: 5 },
    );
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => batcher.submit(i + 1)));
    expect(calls.map((c) => c.length)).toEqual([4, 4, 2]);
    expect(results[0]).toEqual({ status: 'fulfilled', value: 'ok 1' });
    expect(results[4]).toMatchObject({ status: 'rejected', reason: new Error('bad 5') });
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(2);
  });

  it('when a whole batch throws, runs each item alone so that only the culprit fails', async () => {
    const calls: string[][] = [];
    const batcher = new Batcher<string, string>(
      (items) => {
        calls.push(items);
        if (items.includes('poison')) return Promise.reject(new Error('statement failed'));
        return Promise.resolve(items.map((s) => s.toUpperCase()));
      },
      { maxSize: 3, maxWaitMs: 5 },
    );
    const results = await Promise.allSettled(['a', 'poison', 'b'].map((s) => batcher.submit(s)));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(results[1]).toMatchObject({ reason: new Error('statement failed') });
    expect(calls).toEqual([['a', 'poison', 'b'], ['a'], ['poison'], ['b']]);
  });
});
