import type { ByteRange } from "./types.js";

/** One byte range of an HTTP `Range` header; undefined for none, several, or odd syntax (serve it all). */
export function parseRange(header: string | undefined): ByteRange | undefined {
  const m = /^bytes=(\d*)-(\d*)$/.exec((header ?? "").trim());
  // Several ranges or odd syntax: S3 then serves the whole object, as RFC 9110 allows.
  if (!m || (m[1] === "" && m[2] === "")) return undefined;
  if (m[1] === "") return { suffix: Number(m[2]) };
  return { start: Number(m[1]), end: m[2] === "" ? undefined : Number(m[2]) };
}
