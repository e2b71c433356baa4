/**
 * The database backends the tests run on. `KIKITORI_TEST_BACKEND=sqlite|postgres` picks one; unset, suites
 * written with `forEachBackend` run on both (CI runs both: .ci/run makes PostgreSQL available).
 * PostgreSQL: `KIKITORI_TEST_DATABASE_URL` names a server (a superuser, as the tests create databases);
 * unset, scripts/test-postgres starts the local one. Each test file gets a database of its own (dropped
 * when the file ends), and each call of `freshDatabase` a new schema in it.
 */
import { execFileSync } from "node:child_process";
import { after } from "node:test";
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
after(async () => {
  if (!fileDatabase) return;
  const name = new URL(await fileDatabase).pathname.slice(1);
  const admin = new pg.Client({ connectionString: postgresServer() });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.end();
});

/** This test file's database, created on first use and dropped when the file ends. */
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
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
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
