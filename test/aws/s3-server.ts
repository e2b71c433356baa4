import { mkdtemp, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Fastify from "fastify";
import { registerS3 } from "../../src/api/aws/s3.js";
import { createAwsAuth } from "../../src/api/aws/sigv4.js";
import { FsObjectStore } from "../../src/storage/fs.js";
import { registerAuthLayer } from "../../src/auth/layer.js";
import { SqliteStateStore } from "../../src/queue/sqlite/store.js";
import { SqliteKeyStore } from "../../src/queue/sqlite/key-store.js";

export const CREDS = { accessKeyId: "AKIDKIKITORITEST", secretAccessKey: "kikitori-test-secret" };

/** A real Fastify listener on 127.0.0.1 with the S3 front door over a temporary FsObjectStore. */
export async function startS3(opts: { mode?: "sigv4" | "open" } = {}) {
  const dir = await mkdtemp(join(tmpdir(), "kikitori-s3-"));
  const store = new FsObjectStore({ root: join(dir, "objects"), fsync: false });
  const app = Fastify({ maxParamLength: 4096 });
  const state = new SqliteStateStore(":memory:");
  registerAuthLayer(app, {
    mode: opts.mode === "open" ? "open" : "keys",
    keys: new SqliteKeyStore(state.db),
    aws: createAwsAuth({ mode: opts.mode ?? "sigv4", credentials: [CREDS] }),
    sigv4Scopes: new Map(),
  });
  // A native route, as the lead's /v1 API: S3's catch-all must not shadow it.
  app.get("/v1/health", { config: { auth: { allow: "public" } } }, async () => ({ ok: true }));
  await registerS3(app, { store });
  await app.listen({ host: "127.0.0.1", port: 0 });
  const port = (app.server.address() as AddressInfo).port;
  return {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    store,
    dir,
    async stop() {
      await app.close();
      await store.close();
      await state.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
