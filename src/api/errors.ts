import type { FastifyError } from "fastify";
import { CodedError, KikitoriError, insufficientStorage } from "../errors.js";

/** Maps any error to the native API's body `{ error: { code, message } }` with its status. */
export function restError(e: unknown): {
  status: number;
  body: { error: { code: string; message: string } };
} {
  e = insufficientStorage(e) ?? e;
  if (e instanceof KikitoriError)
    return { status: e.status, body: { error: { code: e.code, message: e.message } } };
  if (e instanceof CodedError)
    return { status: e.status, body: { error: { code: e.code, message: e.message } } };
  const fe = e as FastifyError;
  if (fe.validation) {
    return { status: 400, body: { error: { code: "ValidationError", message: fe.message } } };
  }
  if (fe.statusCode && fe.statusCode < 500) {
    return { status: fe.statusCode, body: { error: { code: fe.code ?? "BadRequest", message: fe.message } } };
  }
  return { status: 500, body: { error: { code: "Internal", message: (e as Error).message ?? String(e) } } };
}
