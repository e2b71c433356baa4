import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Service } from "../../core/service.js";
import type { ObjectStore } from "../../storage/types.js";
import type { AwsContext, JsonService, QueryService } from "./context.js";
import { registerS3 } from "./s3.js";
import { headerValue } from "./sigv4.js";
import type { RouteAuth } from "../../auth/types.js";
import {
  AwsApiError,
  MAX_CONTROL_BODY_BYTES,
  parseJsonBody,
  sendJson,
  sendJsonError,
  toAwsError,
} from "./json-protocol.js";
import { parseForm, sendQueryError, sendQueryResult } from "./query-protocol.js";
import { parseCborBody, sendCbor } from "./cbor.js";
import { sagemakerService } from "./sagemaker.js";
import { invokeAsync, invokeSync, MAX_SYNC_BODY_BYTES, sendRuntimeError } from "./runtime.js";
import { stsService } from "./sts.js";
import { Roles } from "./iam.js";
import type { AwsResourceStore } from "../../queue/aws-store.js";

export interface AwsFrontDoorOptions {
  service: Service;
  store: ObjectStore;
  /** IAM roles and resource tags. */
  resources: AwsResourceStore;
  /** Reported in ARNs and by GetCallerIdentity (config.ts). */
  accountId: string;
  /** Region when a request carries no credential scope (config.ts). */
  region: string;
  /** Built-in IAM roles: always there, beside those made with CreateRole. @defaultValue ["kikitori-execution-role"] */
  roles?: string[];
  /**
   * More services by SigV4 signing name, e.g. `"application-autoscaling"` (awsJson) or `"sns"` (awsQuery).
   * A name mapped to undefined is known but not implemented.
   */
  services?: Record<string, JsonService | QueryService | undefined>;
}

/** awsQuery actions by name, for unsigned requests (open mode) that carry no credential scope. */
const QUERY_ACTION_SERVICE: Record<string, string> = { GetCallerIdentity: "sts" };

/**
 * The AWS front door on one listener, routed by protocol:
 * - `POST /` with `X-Amz-Target: <prefix>.<Op>` → the awsJson1_1 service with that target prefix
 *   (SageMaker, AnyScaleFrontendService = Application Auto Scaling);
 * - `POST /` without a target whose SigV4 scope names `sts`, `iam` or `sns` (or, unsigned, a form body
 *   whose Action belongs to one) → that awsQuery service;
 * - `POST /endpoints/{name}/async-invocations` and `/invocations` → SageMaker Runtime (restJson1);
 * - everything else → S3 (REST-XML).
 * The auth layer (src/auth/layer.ts) verifies every request's SigV4 signature, reading the body first
 * where the signature covers it, before any handler here runs.
 */
export async function registerAws(app: FastifyInstance, o: AwsFrontDoorOptions): Promise<void> {
  const s3 = await registerS3(app, { store: o.store, service: o.service, region: o.region });
  const sagemaker = sagemakerService();
  const roles = new Roles(o.resources, o.roles ?? ["kikitori-execution-role"]);
  const iam = roles.service();
  for (const action of Object.keys(iam.actions)) QUERY_ACTION_SERVICE[action] = "iam";
  const services: Record<string, JsonService | QueryService | undefined> = {
    sagemaker,
    sts: stsService(),
    iam,
    // SNS (issue 7) registers itself here through `services` once src/api/aws/sns.ts exports one.
    sns: undefined,
    ...o.services,
  };
  // The keys of `services` are SigV4 signing names: a request must be signed for the service it calls.
  const byTarget = new Map<string, JsonService>();
  const signingName = new Map<string, string>();
  for (const [name, s] of Object.entries(services))
    if (s?.protocol === "json") {
      byTarget.set(s.targetPrefix, s);
      signingName.set(s.targetPrefix, name);
    }

  const context = (request: FastifyRequest, scopeRegion?: string): AwsContext => {
    const identity = request.aws!.identity;
    return {
      service: o.service,
      identity,
      principal: request.principal!,
      resources: o.resources,
      roles,
      region: identity.region ?? scopeRegion ?? o.region,
      accountId: o.accountId,
    };
  };

  /** Which protocol a `POST /` speaks: awsJson (a target), awsQuery (a non-S3 scope, or a form), or S3. */
  const rootProtocol = (request: FastifyRequest): "json" | "query" | "s3" => {
    if (headerValue(request.headers, "x-amz-target") !== undefined) return "json";
    const scopeOf = credentialScope(request);
    if (scopeOf) return scopeOf.service === "s3" ? "s3" : "query";
    const form = /^application\/x-www-form-urlencoded/i.test(
      headerValue(request.headers, "content-type") ?? "",
    );
    return form ? "query" : "s3";
  };
  const isCbor = (request: FastifyRequest) =>
    headerValue(request.headers, "smithy-protocol") === "rpc-v2-cbor";
  const serviceOfTarget = (target: string) => signingName.get(target.slice(0, target.lastIndexOf(".")));

  const rootAuth: RouteAuth = {
    // Each operation checks its own scope (admin, but GetCallerIdentity and S3 objects under one's prefix).
    allow: "any",
    credentials: "sigv4",
    sigv4Body: (request) => (rootProtocol(request) === "s3" ? 0 : MAX_CONTROL_BODY_BYTES),
    sigv4Service: (request) => {
      const protocol = rootProtocol(request);
      if (protocol === "s3") return "s3";
      if (protocol === "query") return undefined; // chosen by the scope itself
      return serviceOfTarget(headerValue(request.headers, "x-amz-target")!);
    },
    refuse: (request, reply, r) => {
      const protocol = rootProtocol(request);
      const err = { code: r.aws?.jsonCode ?? r.code, status: r.status, message: r.message };
      if (protocol === "json") return sendJsonError(reply, err);
      if (protocol === "query") return sendQueryError(reply, err);
      return s3.refuse(request, reply, r);
    },
  };
  const cborAuth: RouteAuth = {
    allow: "any",
    credentials: "sigv4",
    sigv4Body: (request) => (isCbor(request) ? MAX_CONTROL_BODY_BYTES : 0),
    sigv4Service: (request) => {
      if (!isCbor(request)) return "s3";
      const p = request.params as { service?: string };
      return signingName.get(p.service ?? "");
    },
    refuse: (request, reply, r) => {
      if (!isCbor(request)) return s3.refuse(request, reply, r);
      const code = r.aws?.jsonCode ?? r.code;
      return sendCbor(reply, { __type: code, message: r.message }, r.status, { "x-amzn-errortype": code });
    },
  };
  const runtimeAuth = (maxBody: number): RouteAuth => ({
    allow: "invoke",
    credentials: "sigv4",
    sigv4Body: () => maxBody,
    sigv4Service: () => "sagemaker",
    refuse: (_request, reply, r) =>
      sendJsonError(
        reply,
        { code: r.aws?.jsonCode ?? r.code, status: r.status, message: r.message },
        "application/json",
      ),
  });

  await app.register(async (scope) => {
    // Bodies stay unread streams: S3 streams them, the others read them (needed for the signature).
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", (_req, _payload, done) => done(null));

    scope.post("/", { config: { auth: rootAuth }, schema: { hide: true } }, async (request, reply) => {
      const target = headerValue(request.headers, "x-amz-target");
      const scopeOf = credentialScope(request);
      if (target !== undefined) return handleRpc(request, reply, "json", target, scopeOf?.region);
      const form = /^application\/x-www-form-urlencoded/i.test(
        headerValue(request.headers, "content-type") ?? "",
      );
      if (scopeOf && scopeOf.service !== "s3") {
        return handleQuery(request, reply, scopeOf.service, scopeOf.region);
      }
      if (!scopeOf && form) return handleQuery(request, reply, undefined, undefined);
      return s3.handle(request, reply);
    });

    // Smithy RPC v2 CBOR (botocore's CloudWatch); without its header the path is an S3 key.
    scope.post<{ Params: { service: string; op: string } }>(
      "/service/:service/operation/:op",
      { config: { auth: cborAuth }, schema: { hide: true } },
      async (request, reply) => {
        if (headerValue(request.headers, "smithy-protocol") !== "rpc-v2-cbor")
          return s3.handle(request, reply);
        const scopeOf = credentialScope(request);
        return handleRpc(
          request,
          reply,
          "cbor",
          `${request.params.service}.${request.params.op}`,
          scopeOf?.region,
        );
      },
    );

    scope.post<{ Params: { name: string } }>(
      "/endpoints/:name/async-invocations",
      { config: { auth: runtimeAuth(MAX_CONTROL_BODY_BYTES) }, schema: { hide: true } },
      async (request, reply) => {
        try {
          return await invokeAsync(request, reply, request.params.name, context(request));
        } catch (e) {
          return sendRuntimeError(reply, e);
        }
      },
    );

    scope.post<{ Params: { name: string } }>(
      "/endpoints/:name/invocations",
      { config: { auth: runtimeAuth(MAX_SYNC_BODY_BYTES) }, schema: { hide: true } },
      async (request, reply) => {
        try {
          return await invokeSync(request, reply, request.params.name, request.aws!.body!, context(request));
        } catch (e) {
          return sendRuntimeError(reply, e);
        }
      },
    );
  });

  /** An awsJson (`X-Amz-Target: <prefix>.<Op>`) or RPC v2 CBOR request to a JSON-shaped service. */
  async function handleRpc(
    request: FastifyRequest,
    reply: FastifyReply,
    wire: "json" | "cbor",
    target: string,
    scopeRegion: string | undefined,
  ): Promise<FastifyReply> {
    const dot = target.lastIndexOf(".");
    const svc = byTarget.get(target.slice(0, dot));
    // awsJson1_0 and 1_1 differ only in this header; answer in the version asked.
    const jsonType = /x-amz-json-1\.0/.test(headerValue(request.headers, "content-type") ?? "")
      ? "application/x-amz-json-1.0"
      : "application/x-amz-json-1.1";
    try {
      const body = request.aws!.body!;
      if (!svc || dot < 0)
        throw new AwsApiError(
          "UnknownOperationException",
          400,
          `${target} is not a service operation kikitori serves`,
        );
      const op = target.slice(dot + 1);
      const handler = Object.hasOwn(svc.ops, op) ? svc.ops[op] : undefined;
      if (!handler) {
        throw new AwsApiError(
          "UnknownOperationException",
          400,
          `Operation ${op} is not supported by kikitori (${svc.targetPrefix})`,
        );
      }
      requireAdmin(request, `${svc.targetPrefix}.${op}`);
      const input = wire === "cbor" ? parseCborBody(body) : parseJsonBody(body);
      const result = await handler(input, context(request, scopeRegion));
      return wire === "cbor" ? sendCbor(reply, result) : sendJson(reply, result, 200, jsonType);
    } catch (e) {
      const err = toAwsError(e, svc?.errorNames);
      if (err.status >= 500) request.log.error(e);
      const queryCode = svc?.queryErrorCodes?.[err.code];
      const headers: Record<string, string> = queryCode
        ? { "x-amzn-query-error": `${queryCode};${err.status >= 500 ? "Receiver" : "Sender"}` }
        : {};
      if (wire === "cbor")
        return sendCbor(reply, { __type: err.code, message: err.message }, err.status, {
          "x-amzn-errortype": err.code,
          ...headers,
        });
      return sendJsonError(reply.headers(headers), err, jsonType);
    }
  }

  async function handleQuery(
    request: FastifyRequest,
    reply: FastifyReply,
    serviceName: string | undefined,
    scopeRegion: string | undefined,
  ): Promise<FastifyReply> {
    try {
      const params = parseForm(request.aws!.body!);
      const action = params.get("Action");
      if (!action)
        throw new AwsApiError("MissingAction", 400, "awsQuery request without an Action parameter");
      const name = serviceName ?? QUERY_ACTION_SERVICE[action];
      const svc = name ? services[name] : undefined;
      if (!svc || svc.protocol !== "query") {
        throw new AwsApiError(
          "NotImplemented",
          501,
          `${name ?? "this service"}: ${action} is not supported by kikitori`,
        );
      }
      const handler = Object.hasOwn(svc.actions, action) ? svc.actions[action] : undefined;
      if (!handler)
        throw new AwsApiError("InvalidAction", 400, `${action} is not supported by kikitori (${name})`);
      // Anyone signed may ask who they are; everything else here manages the service.
      if (action !== "GetCallerIdentity") requireAdmin(request, `${name}:${action}`);
      const result = await handler(params, context(request, scopeRegion));
      return sendQueryResult(reply, action, svc.namespace, result);
    } catch (e) {
      const err = toAwsError(e);
      if (err.status >= 500) request.log.error(e);
      return sendQueryError(reply, {
        ...err,
        code:
          err.code === "ValidationException"
            ? "ValidationError"
            : err.code === "AccessDeniedException"
              ? "AccessDenied"
              : err.code,
      });
    }
  }
}

/** Control-plane operations are for admin credentials only. */
function requireAdmin(request: FastifyRequest, op: string): void {
  const p = request.principal!;
  if (p.scope !== "admin")
    throw new AwsApiError(
      "AccessDeniedException",
      403,
      `${p.id} (scope ${p.scope}) is not authorized to perform ${op}: it needs the admin scope`,
    );
}

/** The SigV4 credential scope (`AKID/date/region/service/aws4_request`) of a header-signed request. */
function credentialScope(request: FastifyRequest): { region: string; service: string } | undefined {
  const m = /Credential=([^,\s]+)/.exec(headerValue(request.headers, "authorization") ?? "");
  const parts = m?.[1]?.split("/");
  if (!parts || parts.length !== 5) return undefined;
  return { region: parts[2]!, service: parts[3]! };
}
