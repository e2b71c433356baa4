import { request as httpRequest, type IncomingMessage } from "node:http";
import type { FastifyReply, FastifyRequest } from "fastify";
import { KikitoriError } from "../../errors.js";
import type { AwsContext } from "./context.js";
import { AwsApiError, sendJsonError, toAwsError } from "./json-protocol.js";
import { headerValue } from "./sigv4.js";
import { checkObjectAccess } from "../../auth/keys.js";
import { s3Location } from "../../core/rules.js";
import { THIS_NODE } from "../../instances/node.js";

/**
 * SageMaker Runtime (restJson1): InvokeEndpointAsync queues through Service exactly as the native API
 * does; InvokeEndpoint (synchronous, ≤ 6 MB) is streamed straight to an InService instance's model server,
 * as a real-time SageMaker endpoint would, bypassing the queue: an instance of this process by its port, an
 * instance of another host through that host's relay at the address its record holds (src/cluster/relay.ts).
 */

/** SageMaker's payload limit for real-time invocations. */
export const MAX_SYNC_BODY_BYTES = 6 * 1024 * 1024;
/** SageMaker's real-time model response limit: 60 s. */
const SYNC_TIMEOUT_MS = 60_000;

const ASYNC_HEADERS = new Set(
  [
    "InputLocation",
    "Content-Type",
    "Accept",
    "Custom-Attributes",
    "Inference-Id",
    "RequestTTLSeconds",
    "InvocationTimeoutSeconds",
    "S3OutputPathExtension",
    "Filename",
  ].map((h) => `x-amzn-sagemaker-${h.toLowerCase()}`),
);

/** The Runtime's error names for kikitori codes (the Runtime has no ResourceNotFound). */
const RUNTIME_NAMES = {
  NotFound: "ValidationError",
  AlreadyExists: "ValidationError",
  Conflict: "ValidationError",
  ValidationError: "ValidationError",
} as const;

export function sendRuntimeError(reply: FastifyReply, e: unknown): FastifyReply {
  const err = toAwsError(e, RUNTIME_NAMES);
  if (err.code === "ValidationException") err.code = "ValidationError";
  return sendJsonError(reply, err, "application/json");
}

export async function invokeAsync(
  request: FastifyRequest,
  reply: FastifyReply,
  endpoint: string,
  ctx: AwsContext,
): Promise<FastifyReply> {
  const h = (name: string) => headerValue(request.headers, `x-amzn-sagemaker-${name.toLowerCase()}`);
  for (const name of Object.keys(request.headers)) {
    if (name.startsWith("x-amzn-sagemaker-") && !ASYNC_HEADERS.has(name)) {
      throw new AwsApiError(
        "ValidationError",
        400,
        `InvokeEndpointAsync: header ${name} is not supported by kikitori`,
      );
    }
  }
  const inputLocation = h("InputLocation");
  if (!inputLocation)
    throw new AwsApiError("ValidationError", 400, "InvokeEndpointAsync: InputLocation is required");
  if (ctx.principal.scope !== "admin")
    checkObjectAccess(ctx.principal, s3Location("InputLocation", inputLocation).key, "input");
  const inv = await notFoundAsValidation(endpoint, ctx, () =>
    ctx.service.invokeAsync({
      endpoint,
      inputLocation,
      contentType: h("Content-Type"),
      accept: h("Accept"),
      customAttributes: h("Custom-Attributes"),
      inferenceId: h("Inference-Id"),
      requestTtlSeconds: h("RequestTTLSeconds"),
      invocationTimeoutSeconds: h("InvocationTimeoutSeconds"),
      outputPathExtension: h("S3OutputPathExtension"),
      outputFilename: h("Filename"),
      principal: ctx.principal.id,
    }),
  );
  return reply
    .code(202)
    .header("content-type", "application/json")
    .header("x-amzn-sagemaker-outputlocation", inv.outputLocation)
    .header("x-amzn-sagemaker-failurelocation", inv.failureLocation)
    .send(JSON.stringify({ InferenceId: inv.id }));
}

/** Real SageMaker: "Endpoint x of account y not found." as a ValidationError. */
async function notFoundAsValidation<T>(endpoint: string, ctx: AwsContext, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof KikitoriError && e.code === "NotFound" && e.message.startsWith("Endpoint"))
      throw new AwsApiError(
        "ValidationError",
        400,
        `Endpoint ${endpoint} of account ${ctx.accountId} not found.`,
      );
    throw e;
  }
}

export async function invokeSync(
  request: FastifyRequest,
  reply: FastifyReply,
  endpoint: string,
  body: Buffer,
  ctx: AwsContext,
): Promise<FastifyReply> {
  for (const name of [
    "x-amzn-sagemaker-target-model",
    "x-amzn-sagemaker-target-variant",
    "x-amzn-sagemaker-enable-explanations",
    "x-amzn-sagemaker-inference-component",
    "x-amzn-sagemaker-session-id",
  ]) {
    if (request.headers[name] !== undefined)
      throw new AwsApiError(
        "ValidationError",
        400,
        `InvokeEndpoint: header ${name} is not supported by kikitori`,
      );
  }
  const e = await notFoundAsValidation(endpoint, ctx, () => ctx.service.getEndpoint(endpoint));
  const target = await pickInstance(ctx, e.name);
  if (!target) {
    throw new AwsApiError(
      "ValidationError",
      400,
      `Endpoint ${endpoint} has no InService instance (status ${e.status}); InvokeEndpoint needs a running one`,
    );
  }
  const headers: Record<string, string> = { "content-length": String(body.length) };
  for (const [from, to] of [
    ["content-type", "content-type"],
    ["accept", "accept"],
    ["x-amzn-sagemaker-custom-attributes", "x-amzn-sagemaker-custom-attributes"],
    ["x-amzn-sagemaker-inference-id", "x-amzn-sagemaker-inference-id"],
  ] as const) {
    const v = headerValue(request.headers, from);
    if (v !== undefined) headers[to] = v;
  }
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = httpRequest(
      target.url,
      { method: "POST", headers: { ...headers, ...target.headers }, timeout: SYNC_TIMEOUT_MS },
      resolve,
    );
    req.on("timeout", () =>
      req.destroy(
        new KikitoriError("ModelError", `model server took longer than ${SYNC_TIMEOUT_MS / 1000} s`),
      ),
    );
    req.on("error", (err) =>
      reject(
        err instanceof KikitoriError
          ? err
          : new KikitoriError("ModelServerUnavailable", `model server: ${err.message}`),
      ),
    );
    req.end(body);
  });
  const status = res.statusCode ?? 0;
  if (status < 200 || status >= 300) {
    const text = await readCapped(res, 64 * 1024);
    return reply
      .code(424)
      .header("x-amzn-errortype", "ModelError")
      .header("content-type", "application/json")
      .send(
        JSON.stringify({
          __type: "ModelError",
          message: `Received client error (${status}) from primary with message "${text}".`,
          OriginalStatusCode: status,
          OriginalMessage: text,
        }),
      );
  }
  reply
    .code(200)
    .header("content-type", String(res.headers["content-type"] ?? "application/octet-stream"))
    .header("x-amzn-invoked-production-variant", target.variant);
  const attrs = res.headers["x-amzn-sagemaker-custom-attributes"];
  if (typeof attrs === "string") reply.header("x-amzn-sagemaker-custom-attributes", attrs);
  return reply.send(res);
}

/**
 * An InService instance of the endpoint, from the store (any host): one of this process's own first (no
 * hop), else one whose host's relay address is known; chosen at random among equals to spread the load.
 */
async function pickInstance(
  ctx: AwsContext,
  endpoint: string,
): Promise<{ url: string; headers: Record<string, string>; variant: string } | undefined> {
  const ready = (await ctx.service.listInstances({ endpoint, live: true })).filter(
    (i) => i.state === "InService",
  );
  const random = <T>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)];
  const local = random(ready.filter((i) => i.node === THIS_NODE && i.port));
  if (local)
    return { url: `http://127.0.0.1:${local.port}/invocations`, headers: {}, variant: local.variant };
  const tokens = new Map(
    (await ctx.service.listHosts()).map((h) => [h.id, h.state === "Gone" ? undefined : h.token]),
  );
  const remote = random(ready.filter((i) => i.address && tokens.get(i.node ?? "")));
  if (!remote) return undefined;
  return {
    url: `${remote.address}/invocations`,
    headers: { authorization: `Bearer ${tokens.get(remote.node!)}` },
    variant: remote.variant,
  };
}

async function readCapped(res: IncomingMessage, max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of res as AsyncIterable<Buffer>) {
    if (size < max) chunks.push(c.subarray(0, max - size));
    size += c.length;
  }
  return Buffer.concat(chunks).toString("utf8").trim();
}
