// Plain JavaScript on purpose: the launcher relaunches before it loads
// anything else.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';

/** @type {NodeJS.Signals[]} */
const FORWARDED_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** Set in the relaunched process's environment: it was started by a launcher it must not outlive. */
const LAUNCHED = 'TYS_LAUNCHED';

/**
 * @typedef {object} RelaunchOptions
 * @property {string[]} [flags] node flags for the new process (default none)
 * @property {boolean} [newSession] start it in a session of its own
 *   (bin/priority.js says why); default false
 */

/**
 * Runs this same command line again and resolves to its exit status.
 * Signals sent to this process go on to the new one, whose own handling
 * decides; one killed by a signal reports 128 + its number, as a shell would.
 * SIGTSTP stops both, SIGCONT resumes both; SIGSTOP, which no process can
 * catch, stops this one only.
 * Should this process die without a word (SIGKILL, the OOM killer), the new
 * one dies with it (dieWithLauncher): a worker in a session of its own would
 * otherwise run on with nobody to stop it.
 * @param {RelaunchOptions} options
 * @returns {Promise<number>}
 */
export function relaunch({ flags = [], newSession = false }) {
  const child = spawn(process.execPath, [...flags, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    detached: newSession,
    env: { ...process.env, [LAUNCHED]: String(process.pid) },
  });
  /** @param {NodeJS.Signals} signal */
  const forward = (signal) => child.kill(signal);
  // Job control (Ctrl-Z, or SIGTSTP from a supervisor, then SIGCONT): a
  // command in a session of its own would not be stopped with its launcher.
  const stop = () => {
    child.kill('SIGSTOP');
    process.kill(process.pid, 'SIGSTOP');
  };
  const resume = () => child.kill('SIGCONT');
  for (const signal of FORWARDED_SIGNALS) process.on(signal, forward);
  process.on('SIGTSTP', stop);
  process.on('SIGCONT', resume);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      for (const name of FORWARDED_SIGNALS) process.off(name, forward);
      process.off('SIGTSTP', stop);
      process.off('SIGCONT', resume);
      resolve(code ?? 128 + (signal ? constants.signals[signal] : 0));
    });
  });
}

/**
 * In a relaunched process: ends it at once when its launcher is gone, as the
 * one process it stands for would have ended. The marker is removed so that
 * a process this one starts is not taken for relaunched too.
 */
export function dieWithLauncher() {
  if (process.env[LAUNCHED] === undefined) return;
  const launcher = process.env[LAUNCHED];
  delete process.env[LAUNCHED];
  if (!process.channel) return;
  const die = () => process.kill(process.pid, 'SIGKILL');
  // Gone already, before this process could start watching.
  if (String(process.ppid) !== launcher) die();
  // The channel only watches; it must not keep the command running.
  process.channel.unref();
  process.on('disconnect', die);
}
