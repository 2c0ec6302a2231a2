import { createInterface } from 'node:readline/promises';
import type { CommandIo } from './command.js';

/**
 * Asks the operator at the terminal to type `expected` (the database's
 * name) to go on. False at once when stdin is not a terminal: scripts give
 * their consent with --yes, never by piping text in by accident.
 */
export async function confirmByTyping(io: CommandIo, question: string, expected: string): Promise<boolean> {
  if (!process.stdin.isTTY) return false;
  const prompt = createInterface({ input: process.stdin, output: process.stdout });
  try {
    const answer = await prompt.question(`${question} Type the database name (${expected}) to go on: `);
    return answer.trim() === expected;
  } finally {
    prompt.close();
    io.out('');
  }
}
