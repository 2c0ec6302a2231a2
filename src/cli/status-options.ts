import type { CommandArgs } from './command.js';

/** The flags of `tys status`: shared by its light module (help) and the one that runs it. */
export const statusOptions = {
  run: { type: 'string' },
  limit: { type: 'string' },
  json: { type: 'boolean' },
} as const;

export type StatusArgs = CommandArgs<typeof statusOptions>;
