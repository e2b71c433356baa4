import { createHash } from "node:crypto";
import pg from "pg";
import { migrationsOf } from "../migrations.js";
import type { Row } from "../rows.js";

/** bigint (epoch ms, counts) as a JS number: every value kikitori keeps in one fits in 2^53. */
const INT8_OID = 20;
export const types = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === INT8_OID ? Number : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/** Runs `fn` in one transaction on one pooled connection; rolls back if it throws. */
export async function tx<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await pool.connect();
  try {
    await c.query("BEGIN");
    const out = await fn(c);
    await c.query("COMMIT");
    return out;
  } catch (e) {
    await c.query("ROLLBACK").catch(() => {});
    throw e;
  } finally {
    c.release();
  }
}

/** The rows of one statement. */
export async function rows(q: pg.Pool | pg.PoolClient, sql: string, params: unknown[] = []): Promise<Row[]> {
  return (await q.query(sql, params)).rows as Row[];
}

/**
 * The rows of one statement, prepared once per pooled connection under a name derived from its text, so
 * that PostgreSQL parses and plans it once instead of at every call (on the work loop's statements,
 * planning cost as much as running them: pg_stat_statements, CHANGELOG). For statements whose text takes
 * few forms (the names live as long as the connection), on the pool (one statement, autocommit).
 * A migration run by another process can change what a prepared `SELECT *` returns; PostgreSQL then
 * refuses the cached plan ("cached plan must not change result type") before running anything, and the
 * statement is prepared afresh under a new name and run again.
 */
export async function prepared(pool: pg.Pool, sql: string, values: unknown[] = []): Promise<Row[]> {
  const run = async () => (await pool.query({ name: statementName(sql), text: sql, values })).rows as Row[];
  try {
    return await run();
  } catch (e) {
    if (!isStalePlan(e)) throw e;
    generation++;
    names.clear();
    return await run();
  }
}

/** Bumped when a prepared plan goes stale: every statement is then prepared again under a new name. */
let generation = 0;
const names = new Map<string, string>();

function statementName(sql: string): string {
  let name = names.get(sql);
  if (!name) {
    name = `kk${generation}_${createHash("sha1").update(sql).digest("hex").slice(0, 20)}`;
    names.set(sql, name);
  }
  return name;
}

const isStalePlan = (e: unknown) =>
  (e as { code?: string }).code === "0A000" && /cached plan must not change result type/.test(String(e));

/** `$1,$2,…` from `from` on, for an `IN (…)` list of `n` values. */
export const params = (n: number, from = 1) => Array.from({ length: n }, (_, i) => `$${i + from}`).join(",");

/** PostgreSQL's unique_violation. */
export const isUniqueViolation = (e: unknown) => (e as { code?: string }).code === "23505";

// Any constant both sides agree on; the leader lock uses another (coordinator.ts).
const MIGRATION_LOCK = 7_600_001;

/**
 * Applies the migrations not yet recorded, in one transaction under an advisory lock, so that processes
 * starting together migrate once.
 */
export async function migrate(pool: pg.Pool): Promise<void> {
  await tx(pool, async (c) => {
    await c.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK]);
    await c.query(
      "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    );
    const done = new Set((await rows(c, "SELECT name FROM schema_migrations")).map((r) => String(r.name)));
    for (const m of migrationsOf("postgres")) {
      if (done.has(m.name)) continue;
      await c.query(m.sql);
      await c.query("INSERT INTO schema_migrations (name, applied_at) VALUES ($1, $2)", [m.name, Date.now()]);
    }
  });
}
