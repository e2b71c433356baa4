import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import assert from "node:assert/strict";
import { SqliteStateStore } from "../../src/queue/sqlite/store.js";
import { SqliteKeyStore } from "../../src/queue/sqlite/key-store.js";
import { keyStoreContract } from "./key-contract.js";

const fresh = () => new SqliteStateStore(join(mkdtempSync(join(tmpdir(), "kk-keys-")), "db.sqlite"));

keyStoreContract("sqlite", async () => {
  const state = fresh();
  return Object.assign(new SqliteKeyStore(state.db), { close: () => state.close() });
});

test("sqlite: invocations record who created them, and list filters by it", async () => {
  const s = fresh();
  const base = {
    endpoint: "ep",
    inputLocation: "s3://b/in.wav",
    requestTtlSeconds: 3600,
    invocationTimeoutSeconds: 900,
    maxAttempts: 1,
    createdAt: Date.now(),
  };
  for (const [id, principal] of [
    ["a", "key/000000000001"],
    ["b", "key/000000000002"],
    ["c", undefined],
  ] as const)
    await s.enqueue({
      ...base,
      id,
      outputLocation: `s3://b/${id}.out`,
      failureLocation: `s3://b/${id}-e`,
      principal,
    });
  assert.equal((await s.getInvocation("a"))?.principal, "key/000000000001");
  assert.equal((await s.getInvocation("c"))?.principal, undefined);
  assert.deepEqual(
    (await s.listInvocations({ principal: "key/000000000002" })).map((i) => i.id),
    ["b"],
  );
  assert.equal((await s.listInvocations({})).length, 3);
  await s.close();
});
