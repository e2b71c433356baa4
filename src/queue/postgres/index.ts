import pg from "pg";
import type { DatabaseStores } from "../stores.js";
import { PgAwsStore } from "./aws-store.js";
import { PgCoordinator } from "./coordinator.js";
import { PgKeyStore } from "./key-store.js";
import { migrate, types } from "./db.js";
import { PgNotifyStore } from "./notify-store.js";
import { PgScalingStore } from "./scaling-store.js";
import { PgStateStore } from "./store.js";

export interface PostgresOptions {
  /** Connections in all: the pool gets `poolMax - 1`, the coordinator's session the last one. */
  poolMax: number;
}

/**
 * Opens the PostgreSQL backend: a bounded pool for the stores, one session for leadership and wake-ups,
 * and the schema migrated to the latest version before anything runs.
 */
export async function openPostgres(url: string, o: PostgresOptions): Promise<DatabaseStores> {
  const connection = { connectionString: url, types, keepAlive: true, application_name: "kikitori" };
  const pool = new pg.Pool({
    ...connection,
    max: o.poolMax - 1,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 10_000,
  });
  // An idle client that loses its server is replaced on next use; the error must not crash the process.
  pool.on("error", () => {});
  const coordinator = new PgCoordinator({ ...connection, queryTimeoutMs: 5000 });
  try {
    await migrate(pool);
    await coordinator.connect();
  } catch (e) {
    await coordinator.close();
    await pool.end();
    throw new Error(`PostgreSQL at ${redact(url)}: ${(e as Error).message}`, { cause: e });
  }
  const state = new PgStateStore(pool);
  return {
    state,
    notify: new PgNotifyStore(pool),
    scaling: new PgScalingStore(pool),
    aws: new PgAwsStore(pool),
    keys: new PgKeyStore(pool),
    coordinator,
    close: async () => {
      await state.close();
      await coordinator.close();
      await pool.end();
    },
  };
}

/** The URL without its password, for messages. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(unparsable KIKITORI_DATABASE_URL)";
  }
}
