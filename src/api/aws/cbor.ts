import { randomUUID } from "node:crypto";
import type { FastifyReply } from "fastify";
import { cbor, dateToTag, tagSymbol } from "@smithy/core/cbor";
import { AwsApiError } from "./json-protocol.js";

/**
 * Smithy RPC v2 CBOR (`POST /service/<service>/operation/<op>`, `smithy-protocol: rpc-v2-cbor`), the
 * protocol botocore speaks to CloudWatch. The codec is the AWS SDK's own (@smithy/core); timestamps are
 * CBOR tag 1 (epoch seconds), which become Dates here and Dates become again on the way out.
 */

type Tagged = { [tagSymbol]?: boolean; tag: number | bigint; value: unknown };

function fromWire(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(fromWire);
  if (v === null || typeof v !== "object" || v instanceof Uint8Array) return v;
  const t = v as Tagged;
  if (t[tagSymbol] && Number(t.tag) === 1 && typeof t.value === "number") return new Date(t.value * 1000);
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fromWire(x)]));
}

function toWire(v: unknown): unknown {
  if (v instanceof Date) return dateToTag(v);
  if (Array.isArray(v)) return v.map(toWire);
  if (v === null || typeof v !== "object" || v instanceof Uint8Array) return v;
  return Object.fromEntries(
    Object.entries(v)
      .filter(([, x]) => x !== undefined)
      .map(([k, x]) => [k, toWire(x)]),
  );
}

/** The request body as an input object (an empty body is `{}`). */
export function parseCborBody(body: Buffer): Record<string, unknown> {
  if (body.length === 0) return {};
  let value: unknown;
  try {
    value = cbor.deserialize(new Uint8Array(body.buffer, body.byteOffset, body.length));
  } catch (e) {
    throw new AwsApiError(
      "SerializationException",
      400,
      `request body is not valid CBOR: ${(e as Error).message}`,
    );
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new AwsApiError("SerializationException", 400, "request body must be a CBOR map");
  return fromWire(value) as Record<string, unknown>;
}

export function sendCbor(
  reply: FastifyReply,
  body: unknown,
  status = 200,
  headers: Record<string, string> = {},
): FastifyReply {
  return reply
    .code(status)
    .headers({
      "x-amzn-requestid": randomUUID(),
      "smithy-protocol": "rpc-v2-cbor",
      "content-type": "application/cbor",
      ...headers,
    })
    .send(Buffer.from(cbor.serialize(toWire(body ?? {}))));
}
