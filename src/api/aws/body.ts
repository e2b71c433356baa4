import { createHash, type Hash } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { Transform, type TransformCallback } from "node:stream";
import { crc32 } from "node:zlib";
import { CodedError } from "../../errors.js";
import { headerValue, sameHex } from "./sigv4.js";

/** A request-body problem, with the S3 error code clients expect. */
export class BodyError extends CodedError {}

const MAX_CHUNK_HEADER = 4096;
const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/**
 * Strips `aws-chunked` framing (`<hex size>[;chunk-signature=<sig>]\r\n<data>\r\n ... 0\r\n<trailers>\r\n`),
 * verifying each chunk's signature when `chunkSignature` is given and the decoded length when declared.
 * Trailers (e.g. `x-amz-checksum-crc32`) are collected for ChecksumCheck.
 */
export class AwsChunkedDecoder extends Transform {
  readonly trailers: Record<string, string> = {};
  private state: "header" | "data" | "data-crlf" | "trailers" | "done" = "header";
  private pending = Buffer.alloc(0);
  private remaining = 0;
  private decoded = 0;
  private chunkHash: Hash | undefined;
  private chunkSig = "";
  private previousSig: string;

  constructor(
    private readonly opts: {
      decodedLength?: number;
      seedSignature?: string;
      chunkSignature?: (previous: string, chunkSha256Hex: string) => string;
    },
  ) {
    super();
    this.previousSig = opts.seedSignature ?? "";
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    try {
      let buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
      this.pending = Buffer.alloc(0);
      while (buf.length > 0 && this.state !== "done") {
        if (this.state === "data") {
          const take = Math.min(this.remaining, buf.length);
          const data = buf.subarray(0, take);
          this.chunkHash?.update(data);
          this.push(data);
          this.remaining -= take;
          buf = buf.subarray(take);
          if (this.remaining === 0) {
            this.state = "data-crlf";
            this.endChunk();
          }
          continue;
        }
        const eol = buf.indexOf("\r\n");
        if (eol < 0) {
          if (buf.length > MAX_CHUNK_HEADER) throw framing("chunk header line is too long");
          this.pending = Buffer.from(buf);
          break;
        }
        const line = buf.subarray(0, eol).toString("latin1");
        buf = buf.subarray(eol + 2);
        if (this.state === "data-crlf") {
          if (line !== "") throw framing("chunk data is longer than its declared size");
          this.state = "header";
        } else if (this.state === "header") this.startChunk(line);
        else if (line === "") this.state = "done";
        else {
          const colon = line.indexOf(":");
          if (colon < 0) throw framing(`malformed trailer "${line.slice(0, 100)}"`);
          this.trailers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
        }
      }
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    // Some clients end the body right after the last chunk's trailers without the final blank line.
    if (this.state !== "done" && !(this.state === "trailers" && this.pending.length === 0))
      return done(
        new BodyError("IncompleteBody", 400, "The request body ended before its last aws-chunked chunk"),
      );
    if (this.opts.decodedLength !== undefined && this.decoded !== this.opts.decodedLength)
      return done(
        new BodyError(
          "IncompleteBody",
          400,
          `x-amz-decoded-content-length says ${this.opts.decodedLength} bytes, the chunks held ${this.decoded}`,
        ),
      );
    done();
  }

  private startChunk(line: string): void {
    const [sizeHex, ...ext] = line.split(";");
    if (!/^[0-9a-fA-F]{1,16}$/.test(sizeHex ?? "")) throw framing(`bad chunk size "${line.slice(0, 100)}"`);
    const size = parseInt(sizeHex!, 16);
    const sig = ext.find((e) => e.startsWith("chunk-signature="))?.slice("chunk-signature=".length);
    if (this.opts.chunkSignature && sig === undefined)
      throw framing("a signed chunked body needs chunk-signature on every chunk");
    this.chunkSig = sig ?? "";
    this.decoded += size;
    if (size === 0) {
      this.chunkHash = undefined;
      this.checkSignature(EMPTY_SHA256);
      this.state = "trailers";
      return;
    }
    this.remaining = size;
    this.chunkHash = this.opts.chunkSignature ? createHash("sha256") : undefined;
    this.state = "data";
  }

  private endChunk(): void {
    if (this.chunkHash) this.checkSignature(this.chunkHash.digest("hex"));
  }

  private checkSignature(chunkSha256: string): void {
    if (!this.opts.chunkSignature) return;
    const expected = this.opts.chunkSignature(this.previousSig, chunkSha256);
    if (!sameHex(expected, this.chunkSig))
      throw new BodyError(
        "SignatureDoesNotMatch",
        403,
        "A chunk signature of the streamed body does not match",
      );
    this.previousSig = this.chunkSig;
  }
}

function framing(why: string): BodyError {
  return new BodyError("InvalidRequest", 400, `Malformed aws-chunked body: ${why}`);
}

type Algo = "md5" | "sha256" | "sha1" | "crc32";

/**
 * Passes the body through, then checks every digest the client declared: Content-MD5, a hex
 * x-amz-content-sha256, and x-amz-checksum-{crc32,sha1,sha256} as headers or aws-chunked trailers.
 * A mismatch fails the stream, so the store discards the object instead of committing it.
 */
export class ChecksumCheck extends Transform {
  private readonly hashes = new Map<Algo, Hash>();
  private crc = 0;
  private wantCrc = false;

  constructor(
    private readonly expected: () => Partial<
      Record<"content-md5" | "content-sha256" | "crc32" | "sha1" | "sha256", string>
    >,
    algos: Algo[],
  ) {
    super();
    for (const a of algos) {
      if (a === "crc32") this.wantCrc = true;
      else this.hashes.set(a, createHash(a));
    }
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    for (const h of this.hashes.values()) h.update(chunk);
    if (this.wantCrc) this.crc = crc32(chunk, this.crc);
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    const want = this.expected();
    const got = (a: Algo, enc: "hex" | "base64") => this.hashes.get(a)?.copy().digest(enc);
    const crcB64 = () => {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(this.crc >>> 0);
      return b.toString("base64");
    };
    if (
      want["content-sha256"] &&
      this.hashes.has("sha256") &&
      want["content-sha256"] !== got("sha256", "hex")
    )
      return done(
        new BodyError(
          "XAmzContentSHA256Mismatch",
          400,
          "The provided x-amz-content-sha256 header does not match what was computed",
        ),
      );
    if (want["content-md5"] && want["content-md5"] !== got("md5", "base64"))
      return done(
        new BodyError("BadDigest", 400, "The Content-MD5 you specified did not match what we received"),
      );
    if (want.sha256 && want.sha256 !== got("sha256", "base64")) return done(checksumMismatch("sha256"));
    if (want.sha1 && want.sha1 !== got("sha1", "base64")) return done(checksumMismatch("sha1"));
    if (want.crc32 && this.wantCrc && want.crc32 !== crcB64()) return done(checksumMismatch("crc32"));
    done();
  }
}

function checksumMismatch(algo: string): BodyError {
  return new BodyError(
    "BadDigest",
    400,
    `The x-amz-checksum-${algo} you specified did not match the calculated checksum`,
  );
}

/** Which digests the headers ask us to check; trailers are announced in `x-amz-trailer`. */
export function declaredChecksums(headers: IncomingHttpHeaders): Algo[] {
  const algos = new Set<Algo>();
  if (headerValue(headers, "content-md5")) algos.add("md5");
  if (/^[0-9a-f]{64}$/.test(headerValue(headers, "x-amz-content-sha256") ?? "")) algos.add("sha256");
  const names = [
    ...Object.keys(headers),
    ...(headerValue(headers, "x-amz-trailer") ?? "").split(",").map((s) => s.trim().toLowerCase()),
  ];
  for (const n of names) {
    if (n === "x-amz-checksum-crc32") algos.add("crc32");
    if (n === "x-amz-checksum-sha1") algos.add("sha1");
    if (n === "x-amz-checksum-sha256") algos.add("sha256");
  }
  return [...algos];
}
