import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * API keys are `kk_<id>_<secret>`: a 12-hex-digit id to find the record, and 32 random bytes. Only the
 * SHA-256 of the whole token is stored: with 256 bits of randomness a fast hash is enough (no password
 * stretching is needed against guessing), and verification stays cheap on every request.
 */
const KEY = /^kk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;
const SESSION = /^kks_[A-Za-z0-9_-]{43}$/;

export const sha256hex = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");

export function newApiKey(): { id: string; token: string; hash: string } {
  const id = randomBytes(6).toString("hex");
  const token = `kk_${id}_${randomBytes(32).toString("base64url")}`;
  return { id, token, hash: sha256hex(token) };
}

/** The key id of a well-formed token, or undefined. */
export function keyIdOf(token: string): string | undefined {
  return KEY.exec(token)?.[1];
}

export function newSessionToken(): { token: string; hash: string } {
  const token = `kks_${randomBytes(32).toString("base64url")}`;
  return { token, hash: sha256hex(token) };
}

export const isSessionToken = (s: string) => SESSION.test(s);

/** Constant-time comparison of two hex digests. */
export function sameDigest(a: string, b: string): boolean {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return x.length === y.length && timingSafeEqual(x, y);
}
