export interface BatcherOptions {
  /** Items per batch at most. */
  maxSize: number;
  /** How long, in ms, the first item of a batch waits for others. */
  maxWaitMs: number;
}

interface Pending<I, R> {
  item: I;
  resolve: (result: R) => void;
  reject: (error: unknown) => void;
}

/**
 * Gathers the items of many concurrent jobs into one call of `run`, so their
 * database work is one statement per batch while each job still completes or
 * fails on its own. `run` returns one result per item, in order; a result
 * that is an Error fails that item's job alone. When `run` itself throws
 * (lost connection, deadlock, a row that breaks the statement), each item is
 * run again alone so that only the culprit fails.
 */
export class Batcher<I, R> {
  private queue: Pending<I, R>[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly run: (items: I[]) => Promise<(R | Error)[]>,
    private readonly options: BatcherOptions,
  ) {}

  submit(item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (this.queue.length >= this.options.maxSize) this.flush();
      else if (!this.timer) this.timer = setTimeout(() => this.flush(), this.options.maxWaitMs);
    });
  }

  private flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const batch = this.queue;
    this.queue = [];
    if (batch.length > 0) void this.execute(batch);
  }

  private async execute(batch: Pending<I, R>[]): Promise<void> {
    let results: (R | Error)[];
    try {
      results = await this.run(batch.map((p) => p.item));
      if (results.length !== batch.length) throw new Error(`batch handler returned ${results.length} results for ${batch.length} items`);
    } catch (error) {
      if (batch.length === 1) {
        batch[0]!.reject(error);
        return;
      }
      await Promise.all(batch.map((pending) => this.execute([pending])));
      return;
    }
    results.forEach((result, i) => (result instanceof Error ? batch[i]!.reject(result) : batch[i]!.resolve(result)));
  }
}
