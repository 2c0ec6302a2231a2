import { compareWithBaseline } from './adopt.js';
import { connectDatabase } from './connect.js';
import { listMigrationFiles, MIGRATIONS_DIR, readMigrationSql, type MigrationFile } from './files.js';
import { readHistory } from './history.js';

export interface MigrationState extends MigrationFile {
  appliedAt: Date | null;
  /** The file changed after it was applied. */
  modified: boolean;
}

export interface MigrationStatus {
  migrations: MigrationState[];
  /** The database has the MVP tables and the baseline is not recorded: `tys migrate` will adopt it. */
  notAdopted: boolean;
}

export async function migrationStatus(databaseUrl: string, dir = MIGRATIONS_DIR): Promise<MigrationStatus> {
  const client = await connectDatabase(databaseUrl);
  try {
    const { applied } = await readHistory(client);
    const files = listMigrationFiles(dir);
    const notAdopted =
      files[0] !== undefined && !applied.has(files[0].name) && (await compareWithBaseline(client, readMigrationSql(files[0].name, 'migration', dir))) !== null;
    const migrations = files.map((file) => {
      const record = applied.get(file.name);
      return { ...file, appliedAt: record?.finishedAt ?? null, modified: record ? record.checksum !== file.checksum : false };
    });
    return { migrations, notAdopted };
  } finally {
    await client.end();
  }
}
