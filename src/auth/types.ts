import type { FastifyReply, FastifyRequest } from "fastify";
import type { AwsIdentity } from "../api/aws/sigv4.js";

/**
 * What a credential may do. `admin` includes the others; `invoke` may upload under its own prefix,
 * invoke, and read its own invocations and results; `metrics` may read `/metrics` (a Prometheus scraper).
 */
export const SCOPES = ["invoke", "metrics", "admin"] as const;
export type Scope = (typeof SCOPES)[number];

export const isScope = (s: unknown): s is Scope => SCOPES.includes(s as Scope);

/** Whether a credential of scope `granted` may use a route that needs `required`. */
export const allows = (granted: Scope, required: Scope) => granted === required || granted === "admin";

/** Who is calling, as the auth layer established it. */
export interface Principal {
  /** `open`: open mode (no keys, loopback only); `key`: bearer API key; `session`: browser cookie. */
  kind: "open" | "key" | "session" | "sigv4";
  /** Stable id recorded on what it creates: `key/<id>`, `sigv4/<access key id>`, or `open`. */
  id: string;
  scope: Scope;
  /** The key's name, for people. */
  name?: string;
}

/** The error an auth refusal carries to a route's dialect. */
export interface Refusal {
  status: 401 | 403 | 413 | 408 | 400;
  /** kikitori's code (native dialect). */
  code: string;
  message: string;
  /** The AWS error, for routes answering in an AWS dialect. */
  aws?: { code: string; jsonCode: string };
}

/**
 * Every route declares who may call it, in its `config.auth`; the layer (src/auth/layer.ts) refuses to
 * start with a route that does not.
 */
export interface RouteAuth {
  /**
   * `public` routes need no credentials (they still get open mode's Host/Origin checks); `any` takes any
   * valid credential; a scope takes a credential of that scope (or admin).
   */
  allow: "public" | "any" | Scope;
  /** How credentials come: an API key (bearer or session cookie, the default), or an AWS signature. */
  credentials?: "key" | "sigv4";
  /**
   * SigV4 routes whose signature covers the body (JSON and query protocols): how many bytes to read
   * before verifying; 0 (or absent) leaves the body as a stream (S3 verifies its digests as it streams).
   */
  sigv4Body?: (request: FastifyRequest) => number;
  /** SigV4 routes: the signing name the credential scope must name (undefined: any). */
  sigv4Service?: (request: FastifyRequest) => string | undefined;
  /** Answers a refusal in the route's own dialect (AWS XML/JSON, OpenAI); default: the native one. */
  refuse?: (request: FastifyRequest, reply: FastifyReply, refusal: Refusal) => FastifyReply;
}

declare module "fastify" {
  interface FastifyContextConfig {
    auth?: RouteAuth;
  }
  interface FastifyRequest {
    /** Set by the auth layer before any handler runs (undefined only for public routes). */
    principal?: Principal;
    /** SigV4 routes: the verified identity, and the body when the route asked for it to be read. */
    aws?: { identity: AwsIdentity; body?: Buffer };
  }
}
