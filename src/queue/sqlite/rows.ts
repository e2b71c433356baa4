import type Database from "better-sqlite3";

/** `?,?,…` for an `IN (…)` list of `n` values. */
export const placeholders = (n: number) => Array.from({ length: n }, () => "?").join(",");

/**
 * Prepared statements cached by their SQL: preparing costs more than running most of these queries.
 * `pluck`: each statement returns the first column of its rows (better-sqlite3's `pluck()` changes the
 * statement it is called on, so plucked statements need a cache of their own).
 */
export function statementCache(
  db: Database.Database,
  opts: { pluck?: boolean } = {},
): (sql: string) => Database.Statement {
  const statements = new Map<string, Database.Statement>();
  return (sql) => {
    let st = statements.get(sql);
    if (!st) statements.set(sql, (st = opts.pluck ? db.prepare(sql).pluck() : db.prepare(sql)));
    return st;
  };
}

/**
 * Runs `fn` (one or more commits) with `synchronous = NORMAL` instead of the connection's FULL. In WAL mode
 * a NORMAL commit survives a process crash (kill -9) but not a power cut until the next FULL commit or
 * checkpoint syncs the log; log frames are ordered, so a power cut loses a suffix of relaxed commits, never
 * a FULL one after them. Only for the work loop's own transitions (lease, heartbeat, finish, delivery
 * bookkeeping): losing them means the work is redone (at-least-once, as SageMaker promises), and each
 * would otherwise cost an fsync (≈ 1 ms) on the event loop. What a client was told was accepted stays FULL.
 */
export function relaxed<T>(db: Database.Database, fn: () => T): T {
  let sync = synchronous.get(db);
  if (!sync) {
    // Prepared once per connection: db.pragma() compiles its statement at every call.
    sync = {
      normal: db.prepare("PRAGMA synchronous = NORMAL"),
      full: db.prepare("PRAGMA synchronous = FULL"),
    };
    synchronous.set(db, sync);
  }
  sync.normal.run();
  try {
    return fn();
  } finally {
    sync.full.run();
  }
}

const synchronous = new WeakMap<
  Database.Database,
  { normal: Database.Statement; full: Database.Statement }
>();
