import type Database from "better-sqlite3";

/** A result row as better-sqlite3 returns it: column name → value. */
export type Row = Record<string, unknown>;

/** A nullable column: undefined for SQL NULL, otherwise the value converted by `f`. */
export const opt = <T>(v: unknown, f: (x: unknown) => T): T | undefined =>
  v === null || v === undefined ? undefined : f(v);

/** `?,?,…` for an `IN (…)` list of `n` values. */
export const placeholders = (n: number) => Array.from({ length: n }, () => "?").join(",");

/** Prepared statements cached by their SQL: preparing costs more than running most of these queries. */
export function statementCache(db: Database.Database): (sql: string) => Database.Statement {
  const statements = new Map<string, Database.Statement>();
  return (sql) => {
    let st = statements.get(sql);
    if (!st) statements.set(sql, (st = db.prepare(sql)));
    return st;
  };
}
