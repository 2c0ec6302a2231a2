/** How often, in ms, the parent's presence is checked. */
const PARENT_CHECK_MS = 1_000;

/**
 * Resolves, with what asked for it, when the process is told to stop:
 * SIGTERM, SIGINT, or the end of the process that started it. A process
 * started through a wrapper (`npx tys worker &`, then `kill $!`) gets no
 * signal when the wrapper is killed: it is handed to init and would go on
 * unseen. One started by init itself (a container's first process) has no
 * parent to watch.
 *
 * Call it once, first thing: a signal that arrives while the process is
 * still starting must also end in a clean stop, not a kill.
 */
export function untilStopRequested(): Promise<string> {
  return new Promise((resolve) => {
    const parent = process.ppid;
    const timer =
      parent > 1
        ? setInterval(() => {
            if (process.ppid !== parent) stop('parent process exited');
          }, PARENT_CHECK_MS)
        : undefined;
    timer?.unref();
    function stop(reason: string) {
      clearInterval(timer);
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      resolve(reason);
    }
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
