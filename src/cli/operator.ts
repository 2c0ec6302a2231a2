import os from 'node:os';

/** Who runs this command, as runs and their histories record it: "cli user@host". */
export function cliOperator(): string {
  return `cli ${os.userInfo().username}@${os.hostname()}`;
}
