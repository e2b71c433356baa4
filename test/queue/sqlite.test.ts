import { existsSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import assert from "node:assert/strict";
import { SqliteStateStore } from "../../src/queue/sqlite/store.js";
import { tempDir } from "../helpers/fixtures.js";

// What only the embedded backend promises; the shared contract runs in stores.test.ts.
test("sqlite: the database runs in WAL mode and survives reopening", async () => {
  const file = join(tempDir("kk-q-"), "db.sqlite");
  const a = new SqliteStateStore(file);
  await a.createModel({ name: "m", image: "kikitori/whisper", environment: {}, createdAt: 1 });
  assert.ok(existsSync(file + "-wal"), "a write-ahead log beside the database");
  await a.close();
  const b = new SqliteStateStore(file);
  assert.equal((await b.getModel("m"))?.image, "kikitori/whisper");
  await b.close();
});
