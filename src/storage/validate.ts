import { invalidArgument, invalidBucketName, invalidKey, keyTooLong } from "./errors.js";

const MAX_KEY_BYTES = 1024;

/** S3's bucket naming rules (general purpose buckets), so names stay portable to any S3. */
export function checkBucketName(name: string): void {
  if (typeof name !== "string" || name.length < 3 || name.length > 63)
    throw invalidBucketName(String(name), "must be 3 to 63 characters long");
  if (!/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/.test(name))
    throw invalidBucketName(
      name,
      "only lower-case letters, digits, '.' and '-' are allowed, starting and ending with a letter or digit",
    );
  if (name.includes("..")) throw invalidBucketName(name, "must not contain two adjacent periods");
  if (/^\d+\.\d+\.\d+\.\d+$/.test(name)) throw invalidBucketName(name, "must not look like an IP address");
  if (name.startsWith("xn--")) throw invalidBucketName(name, "must not start with 'xn--'");
  if (name.endsWith("-s3alias")) throw invalidBucketName(name, "must not end with '-s3alias'");
}

/**
 * Object keys are any non-empty well-formed UTF-8 of at most 1024 bytes without NUL or `..` segments.
 * The filesystem store never turns a key into a path, but a `..` segment means different objects to
 * different clients (URL normalisation, path-style tools), so every door refuses it by this one rule.
 */
export function checkKey(key: string): void {
  if (typeof key !== "string" || key.length === 0) throw invalidKey(String(key), "must not be empty");
  const bytes = Buffer.from(key, "utf8");
  if (bytes.length > MAX_KEY_BYTES) throw keyTooLong(key);
  if (bytes.toString("utf8") !== key) throw invalidKey(key, "is not well-formed Unicode (lone surrogate)");
  if (key.includes("\0")) throw invalidKey(key, "must not contain NUL characters");
  checkKeySegments(key);
}

/** The `..` part of the key rule, alone: for reads, which may name keys stored before the rule. */
export function checkKeySegments(key: string): void {
  if (key.split("/").some((seg) => seg === ".."))
    throw invalidKey(key, 'must not contain ".." path segments');
}

/** Parses `s3://bucket/key/with/slashes`; the key is taken verbatim (no percent-decoding), as the AWS CLI does. */
export function parseS3Url(url: string): { bucket: string; key: string } {
  if (typeof url !== "string" || !url.startsWith("s3://"))
    throw invalidArgument(`Not an S3 URL (expected s3://bucket/key): "${String(url).slice(0, 200)}"`);
  const rest = url.slice("s3://".length);
  const slash = rest.indexOf("/");
  if (slash < 0 || slash === rest.length - 1)
    throw invalidArgument(`S3 URL has no object key (expected s3://bucket/key): "${url.slice(0, 200)}"`);
  const bucket = rest.slice(0, slash);
  const key = rest.slice(slash + 1);
  checkBucketName(bucket);
  checkKey(key);
  return { bucket, key };
}

/** Parses `s3://bucket/prefix` where the prefix may be empty (output and failure paths). */
export function parseS3Prefix(url: string): { bucket: string; prefix: string } {
  if (typeof url !== "string" || !url.startsWith("s3://"))
    throw invalidArgument(`Not an S3 URL (expected s3://bucket/prefix): "${String(url).slice(0, 200)}"`);
  const rest = url.slice("s3://".length);
  const slash = rest.indexOf("/");
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  checkBucketName(bucket);
  return { bucket, prefix: slash < 0 ? "" : rest.slice(slash + 1) };
}
