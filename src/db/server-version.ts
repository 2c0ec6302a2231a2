/**
 * The oldest Postgres the fleet's SQL runs on: gen_random_uuid(), which
 * the lots family's row ids use, is built in from 13 on. Found at the
 * first command, not by every job of a run failing.
 */
export const MIN_SERVER_VERSION_NUM = 130_000;

/** Why a server of this version (server_version_num, server_version) cannot be used, or null when it can. */
export function serverVersionProblem(versionNum: number, version: string): string | null {
  if (versionNum >= MIN_SERVER_VERSION_NUM) return null;
  return `this server runs Postgres ${version}; the fleet needs Postgres ${MIN_SERVER_VERSION_NUM / 10_000} or later`;
}
