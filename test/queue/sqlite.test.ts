import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import assert from "node:assert/strict";
import { SqliteStateStore } from "../../src/queue/sqlite/store.js";
import { stateStoreContract } from "./contract.js";

stateStoreContract(
  "sqlite",
  async () => new SqliteStateStore(join(mkdtempSync(join(tmpdir(), "kk-q-")), "db.sqlite")),
);

test("sqlite: the database runs in WAL mode and survives reopening", async () => {
  const file = join(mkdtempSync(join(tmpdir(), "kk-q-")), "db.sqlite");
  const a = new SqliteStateStore(file);
  await a.createModel({ name: "m", image: "kikitori/whisper", environment: {}, createdAt: 1 });
  assert.ok(existsSync(file + "-wal"), "a write-ahead log beside the database");
  await a.close();
  const b = new SqliteStateStore(file);
  assert.equal((await b.getModel("m"))?.image, "kikitori/whisper");
  await b.close();
});
