import type { FastifyInstance, FastifyRequest } from "fastify";
import type { KeyStore } from "../queue/key-store.js";
import { CodedError } from "../errors.js";
import { SESSION_COOKIE } from "./layer.js";
import { createKey, keyView, revokeKey, uploadPrefix } from "./keys.js";
import { keyIdOf, newSessionToken, sameDigest, sha256hex } from "./tokens.js";

/** How long a browser session lasts. */
export const SESSION_MS = 12 * 3600 * 1000;

const unauthorized = () =>
  new CodedError("InvalidCredentials", 401, "the API key is not valid (unknown, revoked or mistyped)");

/**
 * The auth routes: the browser login (a key exchanged for an HttpOnly, SameSite=Strict session cookie),
 * logout, who-am-I, and key management for admins.
 */
export function registerAuthRoutes(
  app: FastifyInstance,
  o: { keys: KeyStore; mode: "open" | "keys"; cookieSecure: boolean },
): void {
  app.post<{ Body: { key: string } }>(
    "/v1/auth/session",
    {
      config: { auth: { allow: "public" } },
      schema: {
        tags: ["auth"],
        summary: "Log a browser in: exchange an API key for a session cookie (HttpOnly, SameSite=Strict)",
        security: [],
        body: {
          type: "object",
          required: ["key"],
          additionalProperties: false,
          properties: { key: { type: "string", minLength: 1, maxLength: 200 } },
        },
      },
    },
    async (req, reply) => {
      const id = keyIdOf(req.body.key);
      const key = id ? await o.keys.getKey(id) : undefined;
      if (!key || key.revokedAt !== undefined || !sameDigest(sha256hex(req.body.key), key.hash))
        throw unauthorized();
      const { token, hash } = newSessionToken();
      const now = Date.now();
      await o.keys.createSession({ hash, keyId: key.id, createdAt: now, expiresAt: now + SESSION_MS });
      void o.keys.deleteExpiredSessions(now).catch(() => {});
      return reply
        .header("set-cookie", sessionCookie(token, SESSION_MS / 1000, o.cookieSecure || isHttps(req)))
        .code(200)
        .send({
          id: key.id,
          name: key.name,
          scope: key.scope,
          expiresAt: new Date(now + SESSION_MS).toISOString(),
        });
    },
  );

  app.delete(
    "/v1/auth/session",
    {
      config: { auth: { allow: "public" } },
      schema: {
        tags: ["auth"],
        summary: "Log out: end this session",
        response: { 204: { description: "Logged out", type: "null" } },
      },
    },
    async (req, reply) => {
      const token = /(?:^|;\s*)kikitori_session=([^;]+)/.exec(req.headers.cookie ?? "")?.[1];
      if (token) await o.keys.deleteSession(sha256hex(token));
      return reply
        .header("set-cookie", sessionCookie("", 0, o.cookieSecure || isHttps(req)))
        .code(204)
        .send();
    },
  );

  app.get(
    "/v1/auth/whoami",
    {
      config: { auth: { allow: "any" } },
      schema: { tags: ["auth"], summary: "Who the credentials of this request are, and what they may do" },
    },
    async (req) => {
      const p = req.principal!;
      return {
        principal: p.id,
        kind: p.kind,
        name: p.name,
        scope: p.scope,
        uploadPrefix: uploadPrefix(p),
        mode: o.mode,
      };
    },
  );

  app.get(
    "/v1/keys",
    {
      config: { auth: { allow: "admin" } },
      schema: { tags: ["auth"], summary: "List API keys (never the keys themselves)" },
    },
    async () => ({ keys: (await o.keys.listKeys()).map(keyView) }),
  );

  app.post<{ Body: { name: string; scope: string } }>(
    "/v1/keys",
    {
      config: { auth: { allow: "admin" } },
      schema: {
        tags: ["auth"],
        summary: "Create an API key; the reply is the only time the key is shown",
        response: { 201: { description: "The key's record and, once, the key" } },
        body: {
          type: "object",
          required: ["name", "scope"],
          additionalProperties: false,
          properties: {
            name: { type: "string", minLength: 1, maxLength: 100 },
            scope: { type: "string", enum: ["invoke", "metrics", "admin"] },
          },
        },
      },
    },
    async (req, reply) => {
      const { key, token } = await createKey(o.keys, req.body);
      return reply.code(201).send({ ...keyView(key), key: token });
    },
  );

  app.delete<{ Params: { id: string } }>(
    "/v1/keys/:id",
    {
      config: { auth: { allow: "admin" } },
      schema: { tags: ["auth"], summary: "Revoke an API key and end its sessions" },
    },
    async (req) => keyView(await revokeKey(o.keys, req.params.id)),
  );
}

function sessionCookie(token: string, maxAgeSeconds: number, secure: boolean): string {
  return [
    `${SESSION_COOKIE}=${token}`,
    "Path=/",
    "HttpOnly",
    "SameSite=Strict",
    `Max-Age=${maxAgeSeconds}`,
    ...(secure ? ["Secure"] : []),
  ].join("; ");
}

const isHttps = (req: FastifyRequest) => req.protocol === "https";
