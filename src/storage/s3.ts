import type { Readable } from "node:stream";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import {
  entityTooLarge,
  invalidArgument,
  noSuchBucket,
  noSuchKey,
  noSuchUpload,
  StoreError,
} from "./errors.js";
import type {
  BucketInfo,
  ByteRange,
  ListOptions,
  ListResult,
  MultipartPart,
  ObjectInfo,
  ObjectStore,
  PutOptions,
  ServedRange,
} from "./types.js";
import { checkBucketName, checkKey } from "./validate.js";

export interface S3ObjectStoreOptions {
  /** e.g. `http://127.0.0.1:9000` for MinIO; omitted means AWS itself. */
  endpoint?: string;
  region: string;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** `http://host/bucket/key` instead of `http://bucket.host/key`; most self-hosted stores need it. */
  forcePathStyle?: boolean;
  /** A streamed put larger than this becomes a multipart upload of parts this size. @defaultValue 8 MiB */
  partBytes?: number;
}

const MiB = 1024 * 1024;
/** Greater, in UTF-8 byte order, than any continuation of a key: used to skip a whole common prefix. */
const AFTER_ALL = "\u{10FFFF}";

/**
 * Any S3-compatible store behind the ObjectStore interface. Streams are uploaded in fixed-size parts, so a
 * body of unknown length never sits in memory whole. Service errors become StoreErrors with S3's own codes.
 */
export class S3ObjectStore implements ObjectStore {
  private readonly client: S3Client;
  private readonly partBytes: number;

  constructor(opts: S3ObjectStoreOptions) {
    this.partBytes = opts.partBytes ?? 8 * MiB;
    if (this.partBytes < 5 * MiB)
      throw invalidArgument("partBytes must be at least 5 MiB (S3's smallest part)");
    this.client = new S3Client({
      endpoint: opts.endpoint,
      region: opts.region,
      // A copy: the SDK annotates the object it is given, and the caller's may be shared or frozen.
      credentials: opts.credentials && { ...opts.credentials },
      forcePathStyle: opts.forcePathStyle,
    });
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  async createBucket(name: string): Promise<void> {
    checkBucketName(name);
    await this.call(() => this.client.send(new CreateBucketCommand({ Bucket: name })));
  }

  async headBucket(name: string): Promise<BucketInfo> {
    await this.call(() => this.client.send(new HeadBucketCommand({ Bucket: name })), { bucket: name });
    // HeadBucket carries no creation date; ListBuckets does when we may call it.
    const listed = await this.listBuckets().catch(() => []);
    return listed.find((b) => b.name === name) ?? { name, created: new Date(0) };
  }

  async listBuckets(): Promise<BucketInfo[]> {
    const out = await this.call(() => this.client.send(new ListBucketsCommand({})));
    return (out.Buckets ?? []).map((b) => ({ name: b.Name ?? "", created: b.CreationDate ?? new Date(0) }));
  }

  async deleteBucket(name: string): Promise<void> {
    await this.call(() => this.client.send(new DeleteBucketCommand({ Bucket: name })), { bucket: name });
  }

  async putObject(
    bucket: string,
    key: string,
    body: Readable | Buffer,
    opts: PutOptions = {},
  ): Promise<ObjectInfo> {
    checkKey(key);
    const limit = opts.maxBytes;
    if (Buffer.isBuffer(body)) {
      if (limit !== undefined && body.length > limit) throw entityTooLarge(limit);
      return this.putSmall(bucket, key, body, opts);
    }
    const chunks = chunked(body, this.partBytes);
    const first = await chunks.next();
    const firstBuf = first.done ? Buffer.alloc(0) : first.value;
    if (limit !== undefined && firstBuf.length > limit) throw entityTooLarge(limit);
    const second = first.done ? first : await chunks.next();
    if (second.done) return this.putSmall(bucket, key, firstBuf, opts);

    const uploadId = await this.createMultipartUpload(bucket, key, opts);
    try {
      const parts: { partNumber: number; etag: string }[] = [];
      let total = 0;
      let next: IteratorResult<Buffer> = second;
      let part: Buffer = firstBuf;
      for (;;) {
        total += part.length;
        if (limit !== undefined && total > limit) throw entityTooLarge(limit);
        parts.push(await this.uploadPart(uploadId, parts.length + 1, part));
        if (next.done) break;
        part = next.value;
        next = await chunks.next();
      }
      return await this.completeMultipartUpload(uploadId, parts);
    } catch (err) {
      await this.abortMultipartUpload(uploadId).catch(() => {});
      throw err;
    }
  }

  private async putSmall(bucket: string, key: string, body: Buffer, opts: PutOptions): Promise<ObjectInfo> {
    const out = await this.call(
      () =>
        this.client.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: key,
            Body: body,
            ContentLength: body.length,
            ContentType: opts.contentType,
            Metadata: opts.metadata,
          }),
        ),
      { bucket },
    );
    return {
      bucket,
      key,
      size: body.length,
      etag: unquote(out.ETag),
      contentType: opts.contentType || "application/octet-stream",
      lastModified: new Date(),
      metadata: lowerKeys(opts.metadata),
    };
  }

  async headObject(bucket: string, key: string): Promise<ObjectInfo> {
    const out = await this.call(() => this.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key })), {
      bucket,
      key,
    });
    return {
      bucket,
      key,
      size: out.ContentLength ?? 0,
      etag: unquote(out.ETag),
      contentType: out.ContentType ?? "application/octet-stream",
      lastModified: out.LastModified ?? new Date(0),
      metadata: lowerKeys(out.Metadata),
    };
  }

  async getObject(
    bucket: string,
    key: string,
    range?: ByteRange,
  ): Promise<{ info: ObjectInfo; body: Readable; range?: ServedRange }> {
    const header = range
      ? "suffix" in range
        ? `bytes=-${range.suffix}`
        : `bytes=${range.start}-${range.end ?? ""}`
      : undefined;
    const out = await this.call(
      () => this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: header })),
      { bucket, key },
    );
    const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(out.ContentRange ?? "");
    const served = m ? { start: Number(m[1]), end: Number(m[2]) } : undefined;
    return {
      info: {
        bucket,
        key,
        size: m ? Number(m[3]) : (out.ContentLength ?? 0),
        etag: unquote(out.ETag),
        contentType: out.ContentType ?? "application/octet-stream",
        lastModified: out.LastModified ?? new Date(0),
        metadata: lowerKeys(out.Metadata),
      },
      body: out.Body as Readable,
      range: range ? served : undefined,
    };
  }

  async deleteObject(bucket: string, key: string): Promise<void> {
    await this.call(() => this.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })), {
      bucket,
    });
  }

  async copyObject(
    srcBucket: string,
    srcKey: string,
    dstBucket: string,
    dstKey: string,
    opts?: { contentType?: string; metadata?: Record<string, string> },
  ): Promise<ObjectInfo> {
    checkKey(dstKey);
    const replace = opts?.contentType !== undefined || opts?.metadata !== undefined;
    await this.call(
      () =>
        this.client.send(
          new CopyObjectCommand({
            Bucket: dstBucket,
            Key: dstKey,
            CopySource: `${srcBucket}/${srcKey.split("/").map(encodeURIComponent).join("/")}`,
            MetadataDirective: replace ? "REPLACE" : "COPY",
            ContentType: replace ? opts?.contentType : undefined,
            Metadata: replace ? (opts?.metadata ?? {}) : undefined,
          }),
        ),
      { bucket: srcBucket, key: srcKey },
    );
    return this.headObject(dstBucket, dstKey);
  }

  async listObjects(bucket: string, opts: ListOptions = {}): Promise<ListResult> {
    const prefix = opts.prefix ?? "";
    let startAfter = opts.startAfter;
    // A listing that stopped on a common prefix continues after everything under it.
    if (startAfter && opts.delimiter && startAfter.startsWith(prefix)) {
      const at = startAfter.indexOf(opts.delimiter, prefix.length);
      if (at >= 0) startAfter = startAfter.slice(0, at + opts.delimiter.length) + AFTER_ALL;
    }
    const out = await this.call(
      () =>
        this.client.send(
          new ListObjectsV2Command({
            Bucket: bucket,
            Prefix: opts.prefix || undefined,
            Delimiter: opts.delimiter || undefined,
            StartAfter: startAfter || undefined,
            MaxKeys: opts.maxKeys,
          }),
        ),
      { bucket },
    );
    const objects: ObjectInfo[] = (out.Contents ?? []).map((o) => ({
      bucket,
      key: o.Key ?? "",
      size: o.Size ?? 0,
      etag: unquote(o.ETag),
      contentType: "application/octet-stream", // not part of a listing
      lastModified: o.LastModified ?? new Date(0),
      metadata: {},
    }));
    const commonPrefixes = (out.CommonPrefixes ?? []).map((p) => p.Prefix ?? "");
    const truncated = out.IsTruncated === true;
    const entries = [...objects.map((o) => o.key), ...commonPrefixes].sort((a, b) =>
      Buffer.compare(Buffer.from(a), Buffer.from(b)),
    );
    return { objects, commonPrefixes, truncated, nextStartAfter: truncated ? entries.at(-1) : undefined };
  }

  async createMultipartUpload(bucket: string, key: string, opts: PutOptions = {}): Promise<string> {
    checkKey(key);
    const out = await this.call(
      () =>
        this.client.send(
          new CreateMultipartUploadCommand({
            Bucket: bucket,
            Key: key,
            ContentType: opts.contentType,
            Metadata: opts.metadata,
          }),
        ),
      { bucket },
    );
    // S3 addresses an upload by bucket, key and id; our interface by one opaque id.
    return Buffer.from(JSON.stringify([bucket, key, out.UploadId])).toString("base64url");
  }

  async uploadPart(uploadId: string, partNumber: number, body: Readable | Buffer): Promise<MultipartPart> {
    const u = decodeUploadId(uploadId);
    const buf = Buffer.isBuffer(body) ? body : await readAll(body);
    const out = await this.call(
      () =>
        this.client.send(
          new UploadPartCommand({
            Bucket: u.bucket,
            Key: u.key,
            UploadId: u.id,
            PartNumber: partNumber,
            Body: buf,
            ContentLength: buf.length,
          }),
        ),
      { uploadId },
    );
    return { partNumber, etag: unquote(out.ETag), size: buf.length };
  }

  async listParts(uploadId: string): Promise<MultipartPart[]> {
    const u = decodeUploadId(uploadId);
    const parts: MultipartPart[] = [];
    let marker: string | undefined;
    for (;;) {
      const out = await this.call(
        () =>
          this.client.send(
            new ListPartsCommand({ Bucket: u.bucket, Key: u.key, UploadId: u.id, PartNumberMarker: marker }),
          ),
        { uploadId },
      );
      for (const p of out.Parts ?? [])
        parts.push({ partNumber: p.PartNumber ?? 0, etag: unquote(p.ETag), size: p.Size ?? 0 });
      if (!out.IsTruncated || !out.NextPartNumberMarker) return parts;
      marker = out.NextPartNumberMarker;
    }
  }

  async completeMultipartUpload(
    uploadId: string,
    parts: { partNumber: number; etag: string }[],
  ): Promise<ObjectInfo> {
    const u = decodeUploadId(uploadId);
    await this.call(
      () =>
        this.client.send(
          new CompleteMultipartUploadCommand({
            Bucket: u.bucket,
            Key: u.key,
            UploadId: u.id,
            MultipartUpload: {
              Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: `"${unquote(p.etag)}"` })),
            },
          }),
        ),
      { uploadId },
    );
    return this.headObject(u.bucket, u.key);
  }

  async abortMultipartUpload(uploadId: string): Promise<void> {
    const u = decodeUploadId(uploadId);
    await this.call(
      () =>
        this.client.send(new AbortMultipartUploadCommand({ Bucket: u.bucket, Key: u.key, UploadId: u.id })),
      { uploadId },
    );
  }

  /** Runs one request, turning S3 service errors into StoreErrors (HEAD's bodiless 404s made specific). */
  private async call<T>(
    fn: () => Promise<T>,
    ctx: { bucket?: string; key?: string; uploadId?: string } = {},
  ): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof S3ServiceException)) throw err;
      const status = err.$metadata.httpStatusCode ?? 500;
      if (err.name === "NotFound" || (status === 404 && err.name === "UnknownError")) {
        if (ctx.uploadId) throw noSuchUpload(ctx.uploadId);
        if (ctx.key !== undefined) throw noSuchKey(ctx.bucket ?? "", ctx.key);
        throw noSuchBucket(ctx.bucket ?? "");
      }
      throw new StoreError(err.name, status, err.message || err.name);
    }
  }
}

function decodeUploadId(uploadId: string): { bucket: string; key: string; id: string } {
  try {
    const [bucket, key, id] = JSON.parse(Buffer.from(uploadId, "base64url").toString("utf8")) as string[];
    if (typeof bucket === "string" && typeof key === "string" && typeof id === "string")
      return { bucket, key, id };
  } catch {
    // fall through: not one of ours
  }
  throw noSuchUpload(uploadId);
}

/** Re-chunks a stream into buffers of exactly `size` bytes (the last may be shorter). */
async function* chunked(body: Readable, size: number): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (const c of body) {
    let chunk = Buffer.isBuffer(c) ? c : Buffer.from(c as string);
    while (pendingBytes + chunk.length >= size) {
      const take = size - pendingBytes;
      pending.push(chunk.subarray(0, take));
      yield Buffer.concat(pending);
      chunk = chunk.subarray(take);
      pending = [];
      pendingBytes = 0;
    }
    if (chunk.length > 0) {
      pending.push(chunk);
      pendingBytes += chunk.length;
    }
  }
  if (pendingBytes > 0) yield Buffer.concat(pending);
}

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as string));
  return Buffer.concat(chunks);
}

function unquote(etag: string | undefined): string {
  return (etag ?? "").replace(/^"|"$/g, "");
}

function lowerKeys(meta: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(meta ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
}
