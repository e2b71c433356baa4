import { validation } from "../errors.js";
import { parseS3Prefix, parseS3Url } from "../storage/index.js";

/** Limits as SageMaker documents them for asynchronous inference. */
export const REQUEST_TTL_SECONDS = { min: 60, max: 6 * 3600, default: 6 * 3600 };
export const INVOCATION_TIMEOUT_SECONDS = { min: 1, max: 3600, default: 15 * 60 };
export const MAX_CONCURRENT_PER_INSTANCE = { min: 1, max: 1000, default: 1 };

const NAME = /^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/;

/** SageMaker resource names: 1-63 alphanumerics and hyphens, not starting or ending with a hyphen. */
export function checkName(field: string, name: unknown): string {
  if (typeof name !== "string" || !NAME.test(name)) {
    throw validation(
      field,
      `must be 1-63 letters, digits or hyphens, starting with a letter or digit (got ${JSON.stringify(name)})`,
    );
  }
  return name;
}

export function checkIntRange(
  field: string,
  value: unknown,
  range: { min: number; max: number; default: number },
): number {
  if (value === undefined || value === null || value === "") return range.default;
  const n = typeof value === "string" ? Number(value) : value;
  if (typeof n !== "number" || !Number.isInteger(n) || n < range.min || n > range.max) {
    throw validation(
      field,
      `must be an integer from ${range.min} to ${range.max} (got ${JSON.stringify(value)})`,
    );
  }
  return n;
}

const INFERENCE_ID = /^[\x21-\x7e]{1,64}$/;

/** Client-chosen inference ids: printable ASCII without spaces, up to 64 characters (SageMaker's limit). */
export function checkInferenceId(value: string): string {
  if (!INFERENCE_ID.test(value) || value.includes("/") || value === "." || value === "..") {
    throw validation("InferenceId", "must be 1-64 printable ASCII characters without spaces or slashes");
  }
  return value;
}

/** Joins an `s3://bucket/prefix` path and a file name with exactly one slash. */
export function joinS3(path: string, name: string): string {
  return path.endsWith("/") ? path + name : `${path}/${name}`;
}

export const outputKeyName = (id: string) => `${id}.out`;
export const failureKeyName = (id: string) => `${id}-error.out`;

/** Parses an `s3://bucket/key` location, naming the field on error. */
export function s3Location(field: string, url: unknown): { bucket: string; key: string } {
  try {
    return parseS3Url(String(url));
  } catch (e) {
    throw validation(field, (e as Error).message);
  }
}

/** Parses an `s3://bucket[/prefix]` path, naming the field on error. */
export function s3Path(field: string, url: unknown): { bucket: string; prefix: string } {
  try {
    return parseS3Prefix(String(url));
  } catch (e) {
    throw validation(field, (e as Error).message);
  }
}

/**
 * A failure reason as callers may read it: absolute server paths (data directory, model cache, home) are
 * cut to their last segment, so a failure document tells what went wrong without mapping the server.
 * URLs (`s3://b/k`, `http://h/p`) are left alone.
 */
export function redactPaths(message: string): string {
  return message.replace(/(?<![\w:/.~-])\/(?:[^\s/'"`()<>:,]+\/)+([^\s/'"`()<>:,]*)/g, "…/$1");
}

/** A client's file name as the last segment of an object key: no separators, no `..`, bounded. */
export function safeFilename(name: string | undefined): string {
  const clean = [...(name ?? "")]
    .map((c) => (c === "/" || c === "\\" || c.charCodeAt(0) < 0x20 ? "_" : c))
    .join("")
    .slice(-200);
  return clean === "" || clean === "." || clean === ".." ? "audio" : clean;
}
