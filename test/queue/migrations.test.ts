import { test } from "node:test";
import assert from "node:assert/strict";
import { migrationsOf } from "../../src/queue/migrations.js";

// A database records each migration by name and skips the names it has: a landed migration renamed or
// renumbered would run twice on existing databases. New ones take the next free number and join this list.
const LANDED = [
  "0001-core",
  "0002-scaling",
  "0003-notify",
  "0005-aws",
  "0006-auth",
  "0007-instance-node",
  "0009-endpoint-snapshot",
  "0010-input-bytes",
  "0011-cluster",
  "0012-checkpoints",
  "0013-chunks",
  "0014-jobs",
];

test("migrations: the same names on both backends, in run order, and none that landed renamed", () => {
  const sqlite = migrationsOf("sqlite").map((m) => m.name);
  const postgres = migrationsOf("postgres").map((m) => m.name);
  assert.deepEqual(postgres, sqlite, "every SQLite migration has its PostgreSQL twin");
  assert.deepEqual(sqlite.slice(0, LANDED.length), LANDED);
  assert.deepEqual(sqlite, [...sqlite].sort(), "names sort in run order");
  assert.equal(new Set(sqlite.map((n) => n.slice(0, 4))).size, sqlite.length, "one migration per number");
});
