import type Database from "better-sqlite3";

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
