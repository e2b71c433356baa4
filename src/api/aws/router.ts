import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Service } from "../../core/service.js";
import type { InstanceManager } from "../../instances/manager.js";
import type { ObjectStore } from "../../storage/types.js";
import type { AwsContext, JsonService, QueryService } from "./context.js";
import { registerS3 } from "./s3.js";
import { createAwsAuth, headerValue, type AwsAuthConfig, type AwsIdentity } from "./sigv4.js";
import {
  AwsApiError,
  MAX_CONTROL_BODY_BYTES,
  parseJsonBody,
  readBody,
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
  manager: InstanceManager;
  store: ObjectStore;
  /** IAM roles and resource tags. */
  resources: AwsResourceStore;
  auth: AwsAuthConfig;
  /** Reported in ARNs and by GetCallerIdentity. @defaultValue "000000000000" */
  accountId?: string;
  /** Region when a request carries no credential scope. @defaultValue "us-east-1" */
  region?: string;
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
 * Every request is SigV4-verified (unless auth mode is open) before any handler runs.
 */
export async function registerAws(app: FastifyInstance, o: AwsFrontDoorOptions): Promise<void> {
  const auth = createAwsAuth(o.auth);
  const s3 = await registerS3(app, { store: o.store, auth, region: o.region });
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
  const byTarget = new Map<string, JsonService>();
  for (const s of Object.values(services)) if (s?.protocol === "json") byTarget.set(s.targetPrefix, s);

  const context = (identity: AwsIdentity, scopeRegion?: string): AwsContext => ({
    service: o.service,
    manager: o.manager,
    identity,
    resources: o.resources,
    roles,
    region: identity.region ?? scopeRegion ?? o.region ?? "us-east-1",
    accountId: o.accountId ?? "000000000000",
  });

  await app.register(async (scope) => {
    // Bodies stay unread streams: S3 streams them, the others read them (needed for the signature).
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", (_req, _payload, done) => done(null));

    scope.post("/", async (request, reply) => {
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

    scope.post<{ Params: { name: string } }>("/endpoints/:name/async-invocations", async (request, reply) => {
      try {
        const identity = await verify(request, await readBody(request, MAX_CONTROL_BODY_BYTES));
        return await invokeAsync(request, reply, request.params.name, context(identity));
      } catch (e) {
        return sendRuntimeError(reply, e);
      }
    });

    scope.post<{ Params: { name: string } }>("/endpoints/:name/invocations", async (request, reply) => {
      try {
        const body = await readBody(request, MAX_SYNC_BODY_BYTES);
        const identity = await verify(request, body);
        return await invokeSync(request, reply, request.params.name, body, context(identity));
      } catch (e) {
        return sendRuntimeError(reply, e);
      }
    });
  });

  function verify(request: FastifyRequest, body: Buffer): Promise<AwsIdentity> {
    return auth.verify({
      method: request.method,
      rawUrl: request.raw.url ?? "/",
      headers: request.headers,
      body,
    });
  }

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
      const body = await readBody(request, MAX_CONTROL_BODY_BYTES);
      const identity = await verify(request, body);
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
      const input = wire === "cbor" ? parseCborBody(body) : parseJsonBody(body);
      const result = await handler(input, context(identity, scopeRegion));
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
      const body = await readBody(request, MAX_CONTROL_BODY_BYTES);
      const identity = await verify(request, body);
      const params = parseForm(body);
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
      const result = await handler(params, context(identity, scopeRegion));
      return sendQueryResult(reply, action, svc.namespace, result);
    } catch (e) {
      const err = toAwsError(e);
      if (err.status >= 500) request.log.error(e);
      return sendQueryError(reply, {
        ...err,
        code: err.code === "ValidationException" ? "ValidationError" : err.code,
      });
    }
  }
}

/** The SigV4 credential scope (`AKID/date/region/service/aws4_request`) of a header-signed request. */
function credentialScope(request: FastifyRequest): { region: string; service: string } | undefined {
  const m = /Credential=([^,\s]+)/.exec(headerValue(request.headers, "authorization") ?? "");
  const parts = m?.[1]?.split("/");
  if (!parts || parts.length !== 5) return undefined;
  return { region: parts[2]!, service: parts[3]! };
}
