import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { forEachBackend, freshDatabase } from "../helpers/backends.js";
import { repoRoot, serveProcess, type ServeProcess } from "../helpers/server.js";

const cli = join(repoRoot, "bin", "kikitori.js");

// `kikitori keys` and `kikitori serve` as separate processes on one database: on PostgreSQL both take
// KIKITORI_DATABASE_URL, so an operator manages the keys of a whole cluster from any machine.
forEachBackend((backend) => {
  test(`${backend}: keys made by the CLI open the server's doors; revoked, they no longer do`, async () => {
    const db = await freshDatabase(backend);
    const env: Record<string, string> = db.config.databaseUrl
      ? { KIKITORI_DATABASE_URL: db.config.databaseUrl }
      : {};
    const keys = (...args: string[]) =>
      execFileSync(process.execPath, [cli, "keys", ...args, "--data-dir", db.config.dataDir!], {
        encoding: "utf8",
        env: { ...process.env, ...env },
        stdio: ["ignore", "pipe", "pipe"],
      }).trim();
    const token = keys("create", "--name", "ops", "--scope", "admin");
    assert.match(token, /^kk_[0-9a-f]{12}_/);
    const id = token.split("_")[1]!;
    const listed = JSON.parse(keys("list", "--json")) as { id: string; name: string; scope: string }[];
    assert.deepEqual(
      listed.map((k) => [k.id, k.name, k.scope]),
      [[id, "ops", "admin"]],
    );

    let server: ServeProcess | undefined;
    try {
      // Another data directory: on PostgreSQL only the database is shared, as between two hosts.
      server = await serveProcess(
        backend === "postgres" ? `${db.config.dataDir}-server` : db.config.dataDir!,
        env,
      );
      const whoami = (auth?: string) =>
        fetch(`${server!.url}/v1/auth/whoami`, { headers: auth ? { authorization: `Bearer ${auth}` } : {} });
      assert.equal((await whoami()).status, 401, "a key exists: the server is in keys mode");
      const me = await whoami(token);
      assert.equal(me.status, 200);
      assert.equal(((await me.json()) as { scope: string }).scope, "admin");

      assert.match(keys("revoke", id), new RegExp(`revoked key ${id}`));
      assert.equal((await whoami(token)).status, 401, "revoked in the database: refused at once");
    } finally {
      await server?.kill9();
    }
  });
});
