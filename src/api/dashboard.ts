import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import staticFiles from "@fastify/static";
import type { FastifyInstance, FastifyReply } from "fastify";

type ConstraintStrategy = Parameters<FastifyInstance["addConstraintStrategy"]>[0];
type RouteHandler = NonNullable<ReturnType<ReturnType<ConstraintStrategy["storage"]>["get"]>>;

/** Where `npm run build:web` (run by scripts/setup) writes the dashboard. */
export const DASHBOARD_DIR = fileURLToPath(new URL("../../web/dist", import.meta.url));

/**
 * Everything the page loads comes from this server: the policy makes the browser refuse anything else
 * (and a `blob:` audio source is the only exception for media).
 */
const CSP = [
  "default-src 'self'",
  "img-src 'self' data:",
  "media-src 'self' blob:",
  "style-src 'self'",
  "script-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

/**
 * Whether a request is a browser opening the page: it asks for HTML and carries no AWS signature, query
 * or virtual-host bucket name. Every other `GET /` is S3's (ListBuckets, or ListObjects of a bucket
 * addressed by its host name).
 */
function isPageLoad(req: { headers: Record<string, string | string[] | undefined>; url?: string }): boolean {
  const h = req.headers;
  const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v) ?? "";
  return (
    /\btext\/html\b/.test(one(h.accept)) &&
    !/^AWS/.test(one(h.authorization)) &&
    !(req.url ?? "/").includes("?") &&
    !/\.s3\.|^[^:]+\.localhost(:\d+)?$/.test(one(h.host))
  );
}

/**
 * The web dashboard: `GET /` answers a browser's page load with the page (a route constraint sends every
 * other `GET /` on to S3's route), and its hashed assets are under `/ui/assets/` (no S3 bucket name is
 * that short, so no bucket is shadowed), sent pre-compressed (brotli, gzip) and cached for good.
 */
export async function registerDashboard(app: FastifyInstance, o: { dir?: string } = {}): Promise<void> {
  const dir = o.dir ?? DASHBOARD_DIR;
  const indexFile = join(dir, "index.html");
  const index = existsSync(indexFile) ? readFileSync(indexFile) : undefined;
  await app.register(staticFiles, { root: dir, serve: false, preCompressed: true });

  const notBuilt = (reply: FastifyReply) =>
    reply
      .code(503)
      .type("text/plain; charset=utf-8")
      .send(`The dashboard is not built (no ${indexFile}): run scripts/setup, or npm run build:web.\n`);

  app.addConstraintStrategy({
    name: "pageLoad",
    storage() {
      const handlers = new Map<unknown, RouteHandler>();
      return {
        get: (k: unknown) => handlers.get(k) ?? null,
        set: (k: unknown, v: RouteHandler) => void handlers.set(k, v),
      };
    },
    deriveConstraint: (req: Parameters<typeof isPageLoad>[0]) => (isPageLoad(req) ? "yes" : undefined),
    mustMatchWhenDerived: false,
  });
  // Public: the page and its scripts hold no data; the API calls they make are checked.
  app.get(
    "/",
    { config: { auth: { allow: "public" } }, schema: { hide: true }, constraints: { pageLoad: "yes" } },
    async (_req, reply) => {
      if (!index) return notBuilt(reply);
      return reply
        .type("text/html; charset=utf-8")
        .header("cache-control", "no-cache")
        .header("content-security-policy", CSP)
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "no-referrer")
        .send(index);
    },
  );

  app.get<{ Params: { "*": string } }>(
    "/ui/assets/*",
    { config: { auth: { allow: "public" } }, schema: { hide: true } },
    async (req, reply) => {
      if (!index) return notBuilt(reply);
      reply.header("x-content-type-options", "nosniff");
      // File names carry a content hash: a new build gets new names.
      return reply.sendFile(`assets/${req.params["*"]}`, { immutable: true, maxAge: 365 * 24 * 3600 * 1000 });
    },
  );
}
