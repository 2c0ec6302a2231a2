import type { RedisClient } from '../redis/connection.js';
import { ScriptFolder } from '../redis/scripts.js';
import type { BudgetLimits } from '../config/rate.js';

/** The budget's scripts (src/market/lua), each described at its top. */
const budgetScripts = new ScriptFolder(['src', 'market', 'lua'], ['countWindow', 'takeCall'], 'tysBudget');

/**
 * One call budget per provider account, shared by every family and every
 * worker process through Redis (BullMQ's limiter is per queue; two families
 * calling one provider must not add up to twice the budget).
 */
export class CallBudget {
  constructor(
    private readonly redis: RedisClient,
    private readonly key: string,
    private readonly limits: BudgetLimits,
  ) {}

  /** Calls the window still allows now (the daily cap aside). */
  async remaining(): Promise<number> {
    const used = Number(await budgetScripts.on(this.redis).countWindow([`${this.key}:window`], [this.limits.windowMs]));
    return Math.max(0, this.limits.max - used);
  }

  /** 0 when a call may be made now (it is counted), otherwise how long to wait in ms. */
  async take(): Promise<number> {
    const wait = await budgetScripts
      .on(this.redis)
      .takeCall([`${this.key}:window`, `${this.key}:day`], [this.limits.max, this.limits.windowMs, this.limits.daily ?? 0]);
    return Number(wait);
  }
}
