import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApplicationProcess } from '../bench/application.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db.drop();
});

describe('the simulated application of the rehearsal', () => {
  it('runs in a process of its own: a second in which the rehearsal is busy is not charged to its requests', async () => {
    const app = await ApplicationProcess.start({ databaseUrl: db.url, rate: 200, connections: 5, applicationName: 'application' });
    try {
      app.begin();
      const from = Date.now();
      await app.settled(from + 1_000);
      // The rehearsal's own work (a step's report, the start of a command)
      // holds this event loop; in this process, the application's requests
      // would wait it out, every one of them due meanwhile up to a second late.
      const blockedFrom = Date.now();
      while (Date.now() - blockedFrom < 1_000);
      const blockedTo = Date.now();
      await app.settled(blockedTo + 1_000);

      const blocked = app.window('blocked', [[blockedFrom, blockedTo]]);
      expect(blocked.all.count).toBeGreaterThan(100);
      expect(blocked.all.errors, blocked.all.sampleErrors.join('; ')).toBe(0);
      expect(blocked.all.p99Ms).toBeLessThan(500);
      // Windows are spans of time: every request due in one is counted, however late it answered.
      const whole = app.window('whole', [[from, blockedTo + 1_000]]);
      expect(whole.all.count).toBeGreaterThan(blocked.all.count + 200);
      expect(whole.seconds).toBeCloseTo((blockedTo + 1_000 - from) / 1000, 3);
      expect(whole.loopDelayMaxMs).toBeLessThan(500);
    } finally {
      const investments = await app.stop();
      // setUp's users and their first investments, and what the traffic added.
      expect(investments.length).toBeGreaterThanOrEqual(50 * 20);
    }
  });
});
