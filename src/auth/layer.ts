import type { IncomingMessage, ServerResponse } from "node:http";
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from "fastify";
import { AuthError, headerValue, type AwsAuth, type AwsIdentity } from "../api/aws/sigv4.js";
import type { KeyStore } from "../queue/key-store.js";
import { hostOfHeader, isLoopbackHost } from "./loopback.js";
import { isSessionToken, keyIdOf, sameDigest, sha256hex } from "./tokens.js";
import { allows, type Principal, type Refusal, type RouteAuth, type Scope } from "./types.js";

export const SESSION_COOKIE = "kikitori_session";

export interface AuthLayerOptions {
  /**
   * `open`: no credentials, every request is admin; only for a loopback listener, and then requests
   * must name a loopback `Host` and come from no foreign browser `Origin` (DNS rebinding, CSRF).
   * `keys`: API keys (bearer or session cookie) and SigV4, per route.
   */
  mode: "open" | "keys";
  keys: KeyStore;
  aws: AwsAuth;
  /** The scope of each SigV4 access key id. */
  sigv4Scopes: ReadonlyMap<string, Scope>;
  /** An admin bearer token valid only in this process (the CLI's embedded server). */
  processToken?: string;
  /**
   * A request body must deliver at least 1 KiB in every window of this length (else 408 and the
   * connection is closed). @defaultValue 30 s
   */
  bodyTimeoutMs?: number;
}

/** Thrown inside the layer: becomes a reply in the route's dialect. */
class Refused extends Error {
  constructor(readonly refusal: Refusal) {
    super(refusal.message);
  }
}

const refused = (status: Refusal["status"], code: string, message: string, aws?: Refusal["aws"]) =>
  new Refused({ status, code, message, aws });

const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);
const BODY_WINDOW_MIN_BYTES = 1024;
/** Unread bodies up to this size are drained after an error rather than cut off. */
const DRAIN_MAX_BYTES = 1024 * 1024;

/**
 * The one authentication layer in front of every route, decided per route by `config.auth`
 * (src/auth/types.ts). Must be registered before any route: a route registered without a declaration
 * makes startup fail, so no door can be added unlocked.
 */
export function registerAuthLayer(app: FastifyInstance, o: AuthLayerOptions): { routes: RouteOptions[] } {
  const routes: RouteOptions[] = [];
  app.addHook("onRoute", (route) => {
    const auth = route.config?.auth;
    if (!auth) {
      throw new Error(
        `route ${String(route.method)} ${route.url} declares no auth requirement (config.auth): every route must`,
      );
    }
    routes.push(route);
  });

  const bodyTimeoutMs = o.bodyTimeoutMs ?? 30_000;
  app.addHook("onRequest", async (request, reply) => {
    watchBody(request.raw, reply.raw, bodyTimeoutMs);
    const auth = request.routeOptions.config?.auth;
    try {
      if (o.mode === "open") checkOpenRequest(request);
      // No route matched (the 404 handler): nothing to protect, and nothing is revealed.
      if (!auth) return;
      if (auth.credentials === "sigv4") {
        await verifySigv4(request, auth);
        return;
      }
      if (auth.allow === "public") return;
      const principal = await keyPrincipal(request);
      if (auth.allow !== "any" && !allows(principal.scope, auth.allow)) {
        throw refused(
          403,
          "InsufficientScope",
          `this route needs a key of scope "${auth.allow}" (or admin); ${describe(principal)} has scope "${principal.scope}"`,
          { code: "AccessDenied", jsonCode: "AccessDeniedException" },
        );
      }
      request.principal = principal;
    } catch (e) {
      const refusal = toRefusal(e);
      if (refusal.status === 401) reply.header("www-authenticate", 'Bearer realm="kikitori"');
      return (auth?.refuse ?? refuseNative)(request, reply, refusal);
    }
  });

  // A refused request's unread body is not read on: a 413 (or a large or unsized body) closes the
  // connection; a small one is drained by Node so the client still reads the answer.
  app.addHook("onSend", async (request, reply) => {
    if (reply.statusCode < 400 || request.raw.complete) return;
    const length = Number(request.headers["content-length"] ?? NaN);
    if (reply.statusCode === 413 || !(length <= DRAIN_MAX_BYTES)) reply.header("connection", "close");
  });

  const openPrincipal: Principal = { kind: "open", id: "open", scope: "admin" };

  async function verifySigv4(request: FastifyRequest, auth: RouteAuth): Promise<void> {
    const limit = auth.sigv4Body?.(request) ?? 0;
    const body = limit > 0 ? await readLimited(request.raw, limit) : undefined;
    let identity: AwsIdentity;
    try {
      identity = await o.aws.verify({
        method: request.method,
        rawUrl: request.raw.url ?? "/",
        headers: request.headers,
        body,
      });
    } catch (e) {
      if (e instanceof AuthError)
        throw refused(e.status as 403, e.code, e.message, { code: e.code, jsonCode: e.jsonCode });
      throw e;
    }
    const service = auth.sigv4Service?.(request);
    if (service !== undefined && identity.service !== undefined && identity.service !== service)
      throw refused(
        403,
        "SignatureDoesNotMatch",
        `Credential should be scoped to correct service: '${service}' (the request was signed for '${identity.service}')`,
        { code: "SignatureDoesNotMatch", jsonCode: "InvalidSignatureException" },
      );
    request.aws = { identity, body };
    const principal: Principal =
      o.mode === "open"
        ? openPrincipal
        : {
            kind: "sigv4",
            id: `sigv4/${identity.accessKeyId}`,
            scope: o.sigv4Scopes.get(identity.accessKeyId) ?? "admin",
          };
    if (auth.allow !== "public" && auth.allow !== "any" && !allows(principal.scope, auth.allow))
      throw refused(403, "InsufficientScope", `${describe(principal)} may not call this API`, {
        code: "AccessDenied",
        jsonCode: "AccessDeniedException",
      });
    request.principal = principal;
  }

  async function keyPrincipal(request: FastifyRequest): Promise<Principal> {
    if (o.mode === "open") return openPrincipal;
    const header = headerValue(request.headers, "authorization");
    if (header !== undefined) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
      if (!m) {
        throw refused(
          401,
          "InvalidCredentials",
          /^AWS4-HMAC-SHA256 /.test(header)
            ? "this route takes an API key (Authorization: Bearer kk_…), not an AWS signature"
            : "the Authorization header must be `Bearer <API key>`",
        );
      }
      return bearerPrincipal(m[1]!);
    }
    const cookie = cookieValue(headerValue(request.headers, "cookie"), SESSION_COOKIE);
    if (cookie !== undefined) {
      const principal = await sessionPrincipal(cookie);
      // SameSite=Strict already keeps the cookie off cross-site requests; a foreign Origin is refused too.
      if (UNSAFE.has(request.method) && !sameOrigin(request))
        throw refused(
          403,
          "CrossOriginRefused",
          "a cookie-authenticated request that changes something must come from this server's own pages (Origin)",
        );
      return principal;
    }
    throw refused(401, "MissingCredentials", "this route needs an API key: Authorization: Bearer kk_…");
  }

  async function bearerPrincipal(token: string): Promise<Principal> {
    if (o.processToken && sameDigest(sha256hex(token), sha256hex(o.processToken)))
      return { kind: "key", id: "process", scope: "admin", name: "embedded" };
    const id = keyIdOf(token);
    const key = id ? await o.keys.getKey(id) : undefined;
    if (!key || key.revokedAt !== undefined || !sameDigest(sha256hex(token), key.hash))
      throw refused(401, "InvalidCredentials", "the API key is not valid (unknown, revoked or mistyped)");
    void o.keys.touchKey(key.id, Date.now()).catch(() => {});
    return { kind: "key", id: `key/${key.id}`, scope: key.scope, name: key.name };
  }

  async function sessionPrincipal(token: string): Promise<Principal> {
    const now = Date.now();
    const session = isSessionToken(token) ? await o.keys.getSession(sha256hex(token), now) : undefined;
    const key = session ? await o.keys.getKey(session.keyId) : undefined;
    if (!session || !key || key.revokedAt !== undefined)
      throw refused(401, "InvalidCredentials", "the session has expired or was ended: log in again");
    return { kind: "session", id: `key/${key.id}`, scope: key.scope, name: key.name };
  }

  return { routes };
}

/** Open mode: a loopback `Host` (no DNS rebinding) and no foreign browser `Origin` (no cross-site calls). */
function checkOpenRequest(request: FastifyRequest): void {
  const host = hostOfHeader(headerValue(request.headers, "host"));
  if (!host || !isLoopbackHost(host))
    throw refused(
      403,
      "HostNotAllowed",
      `open mode (no API keys) answers only requests addressed to a loopback name or address; Host "${headerValue(request.headers, "host") ?? ""}" is not one (create a key with "kikitori keys create" to serve other names)`,
      { code: "AccessDenied", jsonCode: "AccessDeniedException" },
    );
  if (headerValue(request.headers, "origin") !== undefined && !sameOrigin(request))
    throw refused(
      403,
      "OriginNotAllowed",
      `open mode refuses browser requests from other origins (Origin "${headerValue(request.headers, "origin")}")`,
      { code: "AccessDenied", jsonCode: "AccessDeniedException" },
    );
}

/** The request's Origin (or, without one, Sec-Fetch-Site) says it comes from this server's own pages. */
function sameOrigin(request: FastifyRequest): boolean {
  const origin = headerValue(request.headers, "origin");
  if (origin === undefined) return headerValue(request.headers, "sec-fetch-site") === "same-origin";
  try {
    return new URL(origin).host.toLowerCase() === (headerValue(request.headers, "host") ?? "").toLowerCase();
  } catch {
    return false; // "null" (sandboxed frames, file://) or garbage
  }
}

function describe(p: Principal): string {
  return p.kind === "sigv4" ? `access key ${p.id.slice("sigv4/".length)}` : `key ${p.name ?? p.id}`;
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function toRefusal(e: unknown): Refusal {
  if (e instanceof Refused) return e.refusal;
  throw e;
}

/** The native dialect: `{ error: { code, message } }`. */
export function refuseNative(_request: FastifyRequest, reply: FastifyReply, r: Refusal): FastifyReply {
  return reply.code(r.status).send({ error: { code: r.code, message: r.message } });
}

/** Reads a whole body up to `limit` bytes; past it, a 413 refusal (the connection is then closed). */
async function readLimited(raw: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of raw as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit)
      throw refused(413, "RequestEntityTooLarge", `request body is larger than ${limit} bytes`, {
        code: "RequestEntityTooLarge",
        jsonCode: "RequestEntityTooLarge",
      });
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * Drops a request whose body trickles: fewer than 1 KiB in a window (while we are not the ones holding
 * it back) answers 408 and closes the connection, so a slow client cannot hold a temp file and a
 * descriptor for ever. Time spent paused by our own backpressure does not count.
 */
function watchBody(raw: IncomingMessage, res: ServerResponse, windowMs: number): void {
  const hasBody =
    raw.headers["transfer-encoding"] !== undefined || Number(raw.headers["content-length"] ?? 0) > 0;
  if (!hasBody || raw.complete) return;
  const socket = raw.socket;
  let last = socket.bytesRead;
  const timer = setInterval(() => {
    if (raw.complete || socket.destroyed) return clearInterval(timer);
    const read = socket.bytesRead;
    if (read - last >= BODY_WINDOW_MIN_BYTES || socket.isPaused()) {
      last = read;
      return;
    }
    clearInterval(timer);
    const body = JSON.stringify({
      error: {
        code: "RequestTimeout",
        message: `the request body arrived too slowly (under ${BODY_WINDOW_MIN_BYTES} bytes in ${windowMs} ms)`,
      },
    });
    if (!res.headersSent)
      socket.write(
        `HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
    // The reader still waiting for the body fails (and discards what it wrote); the socket closes.
    setImmediate(() => socket.destroy());
  }, windowMs);
  timer.unref();
  raw.once("close", () => clearInterval(timer));
}
