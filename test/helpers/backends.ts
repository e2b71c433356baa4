/**
 * The database backends the tests run on. `KIKITORI_TEST_BACKEND=sqlite|postgres` picks one; unset, suites
 * written with `forEachBackend` run on both (CI runs both: .ci/run makes PostgreSQL available).
 * PostgreSQL: `KIKITORI_TEST_DATABASE_URL` names a server (a superuser, as the tests create databases);
 * unset, scripts/test-postgres starts the local one. Each test file gets a database of its own (dropped
 * by a later file once its process is gone), and each call of `freshDatabase` a new schema in it.
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import pg from "pg";
import { openSqlite } from "../../src/backends.js";
import type { Config } from "../../src/config.js";
import { openPostgres } from "../../src/queue/postgres/index.js";
import type { DatabaseStores } from "../../src/queue/stores.js";
import { repoRoot, tempDir } from "./fixtures.js";

export type TestBackend = "sqlite" | "postgres";

export function testBackends(): TestBackend[] {
  const only = process.env.KIKITORI_TEST_BACKEND;
  if (only === undefined || only === "" || only === "both") return ["sqlite", "postgres"];
  if (only !== "sqlite" && only !== "postgres")
    throw new Error(`KIKITORI_TEST_BACKEND: expected sqlite, postgres or both, got "${only}"`);
  return [only];
}

/** Runs `suite` once per backend under test, with the backend's name. */
export function forEachBackend(suite: (backend: TestBackend) => void): void {
  for (const b of testBackends()) suite(b);
}

let server: string | undefined;
/** The PostgreSQL server's admin URL; starts the local test server if none is named. */
export function postgresServer(): string {
  server ??=
    process.env.KIKITORI_TEST_DATABASE_URL ||
    execFileSync(join(repoRoot, "scripts", "test-postgres"), { encoding: "utf8" }).trim();
  return server;
}

let fileDatabase: Promise<string> | undefined;
let schemas = 0;

/** Whether a process with this id still runs (EPERM: it does, as another user). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === "EPERM";
  }
}

/**
 * This test file's database (`kk_<pid>_<n>`), created on first use. It is not dropped when the file
 * ends: node runs `after` hooks in the order they were registered, so a drop registered here would run
 * before the test's own `after(() => server.close())` and pull the database from under a running server.
 * Instead each new file drops the databases of test processes that are gone.
 */
function databaseOfThisFile(): Promise<string> {
  fileDatabase ??= (async () => {
    const name = `kk_${process.pid}_${Date.now() % 1_000_000}`;
    const admin = new pg.Client({ connectionString: postgresServer() });
    try {
      await admin.connect();
    } catch (e) {
      throw new Error(
        `cannot reach PostgreSQL at ${postgresServer()} (${(e as Error).message}); run scripts/test-postgres, ` +
          "or set KIKITORI_TEST_BACKEND=sqlite to test on SQLite only",
      );
    }
    try {
      const { rows } = await admin.query<{ datname: string }>(
        "SELECT datname FROM pg_database WHERE datname ~ '^kk_[0-9]+_[0-9]+$'",
      );
      // Process ids mean something only on this machine: a server named by URL may serve others too.
      const local = !process.env.KIKITORI_TEST_DATABASE_URL;
      for (const { datname } of rows)
        if (local && !alive(Number(datname.split("_")[1])))
          await admin.query(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`);
      await admin.query(`CREATE DATABASE ${name}`);
    } finally {
      await admin.end();
    }
    const url = new URL(postgresServer());
    url.pathname = `/${name}`;
    return url.toString();
  })();
  return fileDatabase;
}

/**
 * A new, empty PostgreSQL schema in this file's database, as a URL whose connections use it (search_path):
 * as isolated as a database of its own, at a fraction of the cost.
 */
export async function newPostgresDatabase(): Promise<string> {
  const url = new URL(await databaseOfThisFile());
  const schema = `t${++schemas}`;
  const c = new pg.Client({ connectionString: url.toString() });
  await c.connect();
  await c.query(`CREATE SCHEMA ${schema}`);
  await c.end();
  url.searchParams.set("options", `-c search_path=${schema}`);
  return url.toString();
}

/** The stores of one process on a database, as src/backends.ts builds them. */
export type Stores = DatabaseStores;

/** One fresh database: `open()` connects to it again (another process would), `config` points a server at it. */
export interface TestDatabase {
  backend: TestBackend;
  open(): Promise<Stores>;
  config: Partial<Config>;
}

export async function freshDatabase(backend: TestBackend): Promise<TestDatabase> {
  const dataDir = tempDir(`kk-${backend}-`);
  if (backend === "postgres") {
    const url = await newPostgresDatabase();
    return {
      backend,
      open: () => openPostgres(url, { poolMax: 5 }),
      config: { dataDir, databaseUrl: url },
    };
  }
  const file = join(dataDir, "kikitori.db");
  return {
    backend,
    open: async () => openSqlite(file),
    config: { dataDir },
  };
}
