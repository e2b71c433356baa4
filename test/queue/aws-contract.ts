import assert from "node:assert/strict";
import type { TestDatabase } from "../helpers/backends.js";
import { withStores } from "./state-contract.js";

/** The behaviour every AwsResourceStore shows, on every backend; each method of the contract is exercised. */
export function awsStoreContract(name: string, fresh: () => Promise<TestDatabase>): void {
  const t = withStores(`aws ${name}`, fresh);

  t(
    "resources by kind and name: create once, put replaces, list by prefix in byte order, delete",
    async ({ aws: s }) => {
      assert.equal(await s.create("iam-role", "b", '{"v":1}', 1), true);
      assert.equal(await s.create("iam-role", "b", '{"v":2}', 2), false, "the name is taken");
      assert.deepEqual(await s.get("iam-role", "b"), {
        kind: "iam-role",
        name: "b",
        body: '{"v":1}',
        updatedAt: 1,
      });
      await s.put("iam-role", "b", '{"v":3}', 3);
      assert.equal((await s.get("iam-role", "b"))?.body, '{"v":3}');
      await s.put("iam-role", "B", "{}", 4);
      await s.put("iam-role", "a_%", "{}", 5);
      await s.put("tags", "b", "[]", 6);
      assert.deepEqual(
        (await s.list("iam-role")).map((r) => r.name),
        ["B", "a_%", "b"],
      );
      assert.deepEqual(
        (await s.list("iam-role", "a_")).map((r) => r.name),
        ["a_%"],
        "no LIKE wildcards",
      );
      assert.deepEqual(
        (await s.list("iam-role", "a%")).map((r) => r.name),
        [],
      );
      assert.deepEqual(
        (await s.list("tags")).map((r) => r.name),
        ["b"],
        "kinds are apart",
      );
      assert.equal(await s.get("cw-alarm", "b"), undefined);
      assert.equal(await s.delete("iam-role", "b"), true);
      assert.equal(await s.delete("iam-role", "b"), false);
      assert.equal((await s.get("tags", "b"))?.body, "[]");
    },
  );
}
