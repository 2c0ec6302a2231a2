// Plain JavaScript on purpose: the launcher lowers its priority before it
// loads anything, since a short command's start is most of its CPU. The
// fleet's processes use the same functions (src/process-priority.ts): the
// build compiles this file to dist/bin/ beside them.
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/** The lowest priority TYS_NICE can give; 0 leaves the priority as it is. */
export const NICE_MAX = 19;

/**
 * TYS_NICE's text as a niceness: a whole number from 0 to NICE_MAX, or
 * undefined (the configuration refuses it then, with exit status 2). The
 * launcher and the configuration both read it here.
 * @param {string} text
 * @returns {number | undefined}
 */
export function parseNice(text) {
  return /^\d+$/.test(text) && Number(text) <= NICE_MAX ? Number(text) : undefined;
}

/**
 * TYS_NICE as the launcher acts on it: a niceness of at least 1, or null.
 * @param {string | undefined} value
 * @returns {number | null}
 */
export function niceFromEnv(value) {
  return (value === undefined ? undefined : parseNice(value.trim())) || null;
}

/**
 * Lowers every thread of this process to `nice`: Linux keeps a niceness per
 * thread, and Node's helper threads are running before any script
 * (src/process-priority.ts says more). Never raises one.
 * @param {number} nice
 */
export function niceThreads(nice) {
  const threads = existsSync('/proc/self/task') ? readdirSync('/proc/self/task').map(Number) : [0];
  for (const thread of threads) {
    try {
      if (nice > getPriority(thread)) setPriority(thread, nice);
    } catch {
      // The thread ended between the listing and here.
    }
  }
}

/**
 * Gives the niceness to this process's session too, where the kernel shares
 * the CPU by session; returns true when that takes a relaunch: the
 * command must then run in a session of its own, which does it at its start.
 *
 * With the kernel's autogroups (`kernel.sched_autogroup_enabled`, on by
 * default in a kernel built with them), the scheduler first shares the
 * CPU between sessions, equally, and only then between the processes of one
 * session by their niceness. A niced command started from a shell, a cron job
 * or the rehearsal still takes its session's full share from Postgres, which
 * runs in a session of its own: beside niced busy loops, a Postgres read
 * kept its latency only when the loops' autogroup was niced too (figures:
 * docs/journal). So a process that leads
 * its session (its autogroup holds nothing but it and its children) gives
 * the autogroup its niceness, never lowering what it has; any other asks to
 * be relaunched in a session of its own.
 * @param {number} nice
 * @returns {boolean}
 */
export function niceSession(nice) {
  if (!autogroupsEnabled()) return false;
  if (!leadsOwnSession()) return true;
  try {
    const current = Number(/nice (-?\d+)/.exec(readFileSync('/proc/self/autogroup', 'utf8'))?.[1] ?? 0);
    if (nice > current) writeFileSync('/proc/self/autogroup', String(nice));
  } catch {
    // A /proc that refuses: the threads' niceness is all there is.
  }
  return false;
}

function autogroupsEnabled() {
  try {
    return readFileSync('/proc/sys/kernel/sched_autogroup_enabled', 'utf8').trim() === '1';
  } catch {
    return false;
  }
}

function leadsOwnSession() {
  try {
    // pid (comm) state ppid pgrp session ...; comm may hold spaces and parentheses.
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const session = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3]);
    return session === process.pid;
  } catch {
    return false;
  }
}
