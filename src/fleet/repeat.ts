/**
 * Runs `tick` every `everyMs`, counted from the end of the previous tick: a
 * slow tick delays the next instead of queueing more behind it. The first
 * tick runs at once with `immediately`, otherwise after `everyMs`. `tick`
 * handles its own failures. stop() waits for a tick in progress.
 */
export function repeat(tick: () => Promise<void>, everyMs: number, options: { immediately?: boolean } = {}): { stop(): Promise<void> } {
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let current: Promise<void> = Promise.resolve();
  const schedule = () => {
    timer = setTimeout(run, everyMs);
    timer.unref();
  };
  const run = () => {
    current = tick().finally(() => {
      if (!stopped) schedule();
    });
  };
  if (options.immediately) run();
  else schedule();
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await current;
    },
  };
}
