import assert from "node:assert/strict";
import type { ApiKeyRecord } from "../../src/queue/key-store.js";
import type { TestDatabase } from "../helpers/backends.js";
import { withStores } from "./state-contract.js";

let n = 0;
const key = (over: Partial<ApiKeyRecord> = {}): ApiKeyRecord => ({
  id: (++n).toString(16).padStart(12, "0"),
  name: `key ${n}`,
  scope: "invoke",
  hash: "a".repeat(64),
  createdAt: 1_000 + n,
  ...over,
});

/** The behaviour every KeyStore shows, on every backend; each method of the contract is exercised. */
export function keyStoreContract(name: string, fresh: () => Promise<TestDatabase>): void {
  const t = withStores(`keys ${name}`, fresh);

  t("a created key reads back whole, and a duplicate id is refused", async ({ keys: s }, db) => {
    const k = key({ scope: "admin", name: "ops laptop" });
    await s.createKey(k);
    assert.deepEqual(await s.getKey(k.id), { ...k, revokedAt: undefined, lastUsedAt: undefined });
    await assert.rejects(s.createKey({ ...k, name: "other" }), /already exists/);
    assert.equal(await s.getKey("ffffffffffff"), undefined);
    const other = await db.open(); // `kikitori keys create` in one process, the server in another
    try {
      assert.equal((await other.keys.getKey(k.id))?.name, "ops laptop");
      assert.equal(await other.keys.countActiveKeys(), 1);
    } finally {
      await other.close();
    }
  });

  t("list is oldest first and includes revoked keys; count counts active ones", async ({ keys: s }) => {
    const a = key({ createdAt: 10 });
    const b = key({ createdAt: 20 });
    const c = key({ createdAt: 30 });
    const tie = key({ createdAt: 20 }); // same time as b, a greater id, stored before b: ordered by id
    for (const k of [c, tie, a, b]) await s.createKey(k);
    assert.deepEqual(
      (await s.listKeys()).map((k) => k.id),
      [a.id, b.id, tie.id, c.id],
    );
    assert.equal(await s.countActiveKeys(), 4);
    assert.equal(await s.revokeKey(b.id, 99), true);
    assert.equal(await s.revokeKey(b.id, 100), false, "a second revoke changes nothing");
    assert.equal(await s.revokeKey("000000000bad", 100), false);
    assert.equal(await s.countActiveKeys(), 3);
    assert.equal((await s.getKey(b.id))?.revokedAt, 99);
    assert.equal((await s.listKeys()).length, 4);
  });

  t("touch records the last use, at most once a minute", async ({ keys: s }) => {
    const k = key();
    await s.createKey(k);
    await s.touchKey(k.id, 100_000);
    assert.equal((await s.getKey(k.id))?.lastUsedAt, 100_000);
    await s.touchKey(k.id, 130_000);
    assert.equal((await s.getKey(k.id))?.lastUsedAt, 100_000, "within a minute: not written again");
    await s.touchKey(k.id, 170_000);
    assert.equal((await s.getKey(k.id))?.lastUsedAt, 170_000);
  });

  t("sessions expire, can be deleted, and end when their key is revoked", async ({ keys: s }) => {
    const k = key();
    await s.createKey(k);
    const sess = { hash: "b".repeat(64), keyId: k.id, createdAt: 1000, expiresAt: 5000 };
    await s.createSession(sess);
    assert.deepEqual(await s.getSession(sess.hash, 4999), sess);
    assert.equal(await s.getSession(sess.hash, 5000), undefined, "expired at expiresAt");
    assert.equal(await s.getSession("c".repeat(64), 1), undefined);
    await s.createSession({ ...sess, hash: "d".repeat(64), expiresAt: 9000 });
    assert.equal(await s.deleteExpiredSessions(6000), 1);
    assert.equal((await s.getSession("d".repeat(64), 6000)) !== undefined, true);
    await s.deleteSession("d".repeat(64));
    assert.equal(await s.getSession("d".repeat(64), 6000), undefined);
    await s.createSession({ ...sess, hash: "e".repeat(64), expiresAt: 9000 });
    await s.revokeKey(k.id, 7000);
    assert.equal(await s.getSession("e".repeat(64), 7000), undefined, "revoking the key ends its sessions");
  });
}
