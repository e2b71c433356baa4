import { mkdtemp, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Fastify from "fastify";
import { registerS3 } from "../../src/api/aws/s3.js";
import { createAwsAuth } from "../../src/api/aws/sigv4.js";
import { FsObjectStore } from "../../src/storage/fs.js";

export const CREDS = { accessKeyId: "AKIDKIKITORITEST", secretAccessKey: "kikitori-test-secret" };

/** A real Fastify listener on 127.0.0.1 with the S3 front door over a temporary FsObjectStore. */
export async function startS3(opts: { mode?: "sigv4" | "open" } = {}) {
  const dir = await mkdtemp(join(tmpdir(), "kikitori-s3-"));
  const store = new FsObjectStore({ root: join(dir, "objects"), fsync: false });
  const app = Fastify({ maxParamLength: 4096 });
  // A native route, as the lead's /v1 API: S3's catch-all must not shadow it.
  app.get("/v1/health", async () => ({ ok: true }));
  await registerS3(app, {
    store,
    auth: createAwsAuth({ mode: opts.mode ?? "sigv4", credentials: [CREDS] }),
  });
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
      await rm(dir, { recursive: true, force: true });
    },
  };
}
