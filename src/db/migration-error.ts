/** A migration, adoption or revert that could not be done; its message is one line for the operator. */
export class MigrationError extends Error {
  override name = 'MigrationError';
}
