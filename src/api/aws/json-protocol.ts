import { randomUUID } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import { CodedError, ERRORS, KikitoriError, insufficientStorage } from "../../errors.js";
import { StoreError } from "../../storage/errors.js";
import { AuthError } from "./sigv4.js";

/** An error already in an AWS service's own vocabulary (`__type` / `<Code>`). */
export class AwsApiError extends CodedError {}

export const awsValidation = (message: string, code = "ValidationException") =>
  new AwsApiError(code, 400, message);

/** Largest control-plane request body (awsJson, awsQuery). SageMaker's largest requests are far smaller. */
export const MAX_CONTROL_BODY_BYTES = 1024 * 1024;

/** Reads the request body (left unparsed by the AWS scope) up to `maxBytes`. */
export async function readBody(request: FastifyRequest, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request.raw as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) {
      throw new AwsApiError("RequestEntityTooLarge", 413, `request body is larger than ${maxBytes} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Parses an awsJson request body: an object (an empty body is `{}`). */
export function parseJsonBody(body: Buffer): Record<string, unknown> {
  if (body.length === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(body.toString("utf8"));
  } catch (e) {
    throw new AwsApiError(
      "SerializationException",
      400,
      `request body is not valid JSON: ${(e as Error).message}`,
    );
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new AwsApiError("SerializationException", 400, "request body must be a JSON object");
  }
  return value as Record<string, unknown>;
}

/**
 * Maps anything thrown to `{ code, status, message }` in one service's vocabulary. `names` overrides the
 * catalogue's AWS name for kikitori codes (SageMaker's control plane reports NotFound as
 * ValidationException, which boto3's `endpoint_deleted` waiter expects).
 */
export function toAwsError(
  e: unknown,
  names: Partial<Record<keyof typeof ERRORS, string>> = {},
): { code: string; status: number; message: string } {
  e = insufficientStorage(e) ?? e;
  if (e instanceof AwsApiError) return { code: e.code, status: e.status, message: e.message };
  if (e instanceof AuthError) return { code: e.jsonCode, status: e.status, message: e.message };
  if (e instanceof KikitoriError) {
    return { code: names[e.code] ?? ERRORS[e.code].aws, status: e.status, message: e.message };
  }
  if (e instanceof StoreError) {
    return {
      code: e.status < 500 ? "ValidationException" : "InternalFailure",
      status: e.status,
      message: e.message,
    };
  }
  return { code: "InternalFailure", status: 500, message: (e as Error)?.message ?? String(e) };
}

/** Sends an awsJson1_1 / restJson1 error: `{"__type", "message"}` and the `x-amzn-errortype` header. */
export function sendJsonError(
  reply: FastifyReply,
  err: { code: string; status: number; message: string },
  contentType = "application/x-amz-json-1.1",
): FastifyReply {
  return reply
    .code(err.status)
    .header("x-amzn-requestid", randomUUID())
    .header("x-amzn-errortype", err.code)
    .header("content-type", contentType)
    .send(JSON.stringify({ __type: err.code, message: err.message }));
}

/** awsJson's timestamps are epoch seconds: a Date in a result becomes its number. */
function epochDates(this: unknown, key: string, value: unknown): unknown {
  const original = (this as Record<string, unknown>)[key];
  return original instanceof Date ? original.getTime() / 1000 : value;
}

export function sendJson(
  reply: FastifyReply,
  body: unknown,
  status = 200,
  contentType = "application/x-amz-json-1.1",
): FastifyReply {
  return reply
    .code(status)
    .header("x-amzn-requestid", randomUUID())
    .header("content-type", contentType)
    .send(JSON.stringify(body ?? {}, epochDates));
}

/** Epoch milliseconds → awsJson's timestamp (epoch seconds, a number). */
export const epochSeconds = (ms: number) => ms / 1000;

// --- input checking shared by the awsJson services ---

export type JsonInput = Record<string, unknown>;

/**
 * Refuses members kikitori does not implement, naming them. `ignored` members are accepted and have no
 * effect (tags, weights): scripts pass them routinely and they change nothing about the result.
 */
export function checkMembers(
  op: string,
  prefix: string,
  input: JsonInput,
  supported: readonly string[],
  ignored: readonly string[] = [],
): void {
  for (const [k, v] of Object.entries(input)) {
    if (v === null || v === undefined) continue;
    if (!supported.includes(k) && !ignored.includes(k)) {
      throw awsValidation(`${op}: ${prefix}${k} is not supported by kikitori`);
    }
  }
}

export function requiredString(input: JsonInput, field: string, prefix = ""): string {
  const v = input[field];
  if (typeof v !== "string" || v === "") throw awsValidation(`${prefix}${field} is required (a string)`);
  return v;
}

export function optionalString(input: JsonInput, field: string, prefix = ""): string | undefined {
  const v = input[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw awsValidation(`${prefix}${field} must be a string`);
  return v;
}

export function optionalInt(input: JsonInput, field: string, prefix = ""): number | undefined {
  const v = input[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v))
    throw awsValidation(`${prefix}${field} must be an integer`);
  return v;
}

export function optionalBoolean(input: JsonInput, field: string, prefix = ""): boolean | undefined {
  const v = input[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") throw awsValidation(`${prefix}${field} must be true or false`);
  return v;
}

export function optionalObject(input: JsonInput, field: string, prefix = ""): JsonInput | undefined {
  const v = input[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "object" || Array.isArray(v)) throw awsValidation(`${prefix}${field} must be an object`);
  return v as JsonInput;
}

export function optionalArray(input: JsonInput, field: string, prefix = ""): unknown[] | undefined {
  const v = input[field];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw awsValidation(`${prefix}${field} must be a list`);
  return v;
}

/** Pages a sorted list by position: NextToken is the opaque offset of the next page. */
export function page<T>(
  items: T[],
  input: JsonInput,
  maxDefault = 10,
  limit = 100,
): { items: T[]; nextToken?: string } {
  const max = optionalInt(input, "MaxResults") ?? maxDefault;
  if (max < 1 || max > limit) throw awsValidation(`MaxResults must be from 1 to ${limit}`);
  const token = optionalString(input, "NextToken");
  let start = 0;
  if (token !== undefined) {
    start = Number(Buffer.from(token, "base64url").toString("utf8"));
    if (!Number.isInteger(start) || start < 0)
      throw awsValidation("NextToken is not a token this API issued");
  }
  const slice = items.slice(start, start + max);
  const next =
    start + max < items.length ? Buffer.from(String(start + max)).toString("base64url") : undefined;
  return { items: slice, nextToken: next };
}
