import { join } from "node:path";
import type { Config } from "./config.js";
import type { DatabaseStores } from "./queue/stores.js";
import { SqliteAwsStore } from "./queue/sqlite/aws-store.js";
import { SqliteCoordinator } from "./queue/sqlite/coordinator.js";
import { SqliteKeyStore } from "./queue/sqlite/key-store.js";
import { SqliteNotifyStore } from "./queue/sqlite/notify-store.js";
import { SqliteScalingStore } from "./queue/sqlite/scaling-store.js";
import { SqliteStateStore } from "./queue/sqlite/store.js";
import { FsObjectStore } from "./storage/fs.js";
import { S3ObjectStore } from "./storage/s3.js";
import type { ObjectStore } from "./storage/types.js";

/** The stores of one process, on the backends the configuration names. */
export interface Backends extends DatabaseStores {
  /** `sqlite` (embedded) or `postgres`. */
  database: "sqlite" | "postgres";
  objects: ObjectStore;
  /** Closes every store, the object store included. */
  close(): Promise<void>;
}

/**
 * The one place that chooses backends: PostgreSQL when `databaseUrl` is set, else SQLite in the data
 * directory; S3 when the object store says so, else the data directory.
 */
export async function openBackends(config: Readonly<Config>): Promise<Backends> {
  const objects = openObjectStore(config);
  try {
    const db = await openDatabase(config);
    return {
      ...db,
      objects,
      close: async () => {
        await db.close();
        await objects.close();
      },
    };
  } catch (e) {
    await objects.close();
    throw e;
  }
}

function openObjectStore(config: Readonly<Config>): ObjectStore {
  const o = config.objectStore;
  if (o.kind === "s3") return new S3ObjectStore(o);
  return new FsObjectStore({ root: join(config.dataDir, "objects") });
}

async function openDatabase(config: Readonly<Config>): Promise<Omit<Backends, "objects">> {
  if (config.databaseUrl) {
    const { openPostgres } = await import("./queue/postgres/index.js");
    return {
      database: "postgres",
      ...(await openPostgres(config.databaseUrl, { poolMax: config.databasePoolMax })),
    };
  }
  return { database: "sqlite", ...openSqlite(join(config.dataDir, "kikitori.db")) };
}

/** The embedded backend: every store in one SQLite file (WAL), for one process. */
export function openSqlite(file: string): DatabaseStores {
  const state = new SqliteStateStore(file);
  return {
    state,
    notify: new SqliteNotifyStore(state.db),
    scaling: new SqliteScalingStore(state.db),
    aws: new SqliteAwsStore(state.db),
    keys: new SqliteKeyStore(state.db),
    coordinator: new SqliteCoordinator(),
    close: () => state.close(),
  };
}
