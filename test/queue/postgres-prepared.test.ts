import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import { prepared, types } from "../../src/queue/postgres/db.js";
import { newPostgresDatabase, testBackends } from "../helpers/backends.js";

// Named prepared statements (the PostgreSQL work loop's hot statements): planned once per connection, and
// still right after another process's migration changes the table a prepared `SELECT *` reads.
describe("PostgreSQL prepared statements", { skip: !testBackends().includes("postgres") }, () => {
  const pools: pg.Pool[] = [];
  after(() => Promise.all(pools.map((p) => p.end())));
  const pool = (url: string) => {
    // One connection: the statement is prepared on it once, and the second call reuses it.
    const p = new pg.Pool({ connectionString: url, max: 1, types });
    pools.push(p);
    return p;
  };

  test("a statement is prepared once per connection and answers with its parameters", async () => {
    const url = await newPostgresDatabase();
    const db = pool(url);
    await db.query("CREATE TABLE items (id INT PRIMARY KEY, name TEXT)");
    await db.query("INSERT INTO items VALUES (1, 'one'), (2, 'two')");
    const sql = "SELECT name FROM items WHERE id = $1";
    assert.deepEqual(await prepared(db, sql, [1]), [{ name: "one" }]);
    assert.deepEqual(await prepared(db, sql, [2]), [{ name: "two" }]);
    const { rows } = await db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_prepared_statements WHERE statement = $1",
      [sql],
    );
    assert.equal(rows[0]!.n, 1, "one server-side prepared statement for both calls");
  });

  test("a prepared SELECT * still answers after another connection adds a column (the new column included)", async () => {
    const url = await newPostgresDatabase();
    const [db, plain, migrator] = [pool(url), pool(url), pool(url)];
    await db.query("CREATE TABLE items (id INT PRIMARY KEY, name TEXT)");
    await db.query("INSERT INTO items VALUES (1, 'one')");
    const sql = "SELECT * FROM items WHERE id = $1";
    assert.deepEqual(await prepared(db, sql, [1]), [{ id: 1, name: "one" }]);
    await plain.query({ name: "plain", text: sql, values: [1] });
    await migrator.query("ALTER TABLE items ADD COLUMN size INT NOT NULL DEFAULT 7");
    // On its own, PostgreSQL refuses the stale plan (the first statement a connection runs after the change).
    await assert.rejects(
      plain.query({ name: "plain", text: sql, values: [1] }),
      /cached plan must not change result type/,
    );
    assert.deepEqual(await prepared(db, sql, [1]), [{ id: 1, name: "one", size: 7 }]);
    assert.deepEqual(await prepared(db, sql, [1]), [{ id: 1, name: "one", size: 7 }]);
  });

  test("errors other than a stale plan reach the caller unchanged", async () => {
    const url = await newPostgresDatabase();
    const db = pool(url);
    await db.query("CREATE TABLE items (id INT PRIMARY KEY)");
    await db.query("INSERT INTO items VALUES (1)");
    await assert.rejects(prepared(db, "INSERT INTO items VALUES ($1)", [1]), { code: "23505" });
  });
});
