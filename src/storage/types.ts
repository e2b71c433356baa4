import type { Readable } from "node:stream";

/** Metadata of one stored object. */
export interface ObjectInfo {
  bucket: string;
  key: string;
  size: number;
  /** Hex MD5 of the content for single-part objects; `<md5-of-md5s>-<parts>` for multipart ones (as S3 does). */
  etag: string;
  contentType: string;
  lastModified: Date;
  /** User metadata (S3 `x-amz-meta-*`), lower-case keys without the prefix. */
  metadata: Record<string, string>;
}

export interface BucketInfo {
  name: string;
  created: Date;
}

export interface PutOptions {
  contentType?: string;
  metadata?: Record<string, string>;
  /** Refuse (EntityTooLarge) once more than this many bytes arrive; nothing is left behind. */
  maxBytes?: number;
}

export interface ListOptions {
  prefix?: string;
  delimiter?: string;
  /** Return keys strictly after this one. */
  startAfter?: string;
  maxKeys?: number;
}

export interface ListResult {
  objects: ObjectInfo[];
  commonPrefixes: string[];
  truncated: boolean;
  /** Last key returned, to continue from when truncated. */
  nextStartAfter?: string;
}

/**
 * A byte range as HTTP Range expresses it: `{ start, end }` (inclusive; `end` past the object's end is
 * clamped, omitted means "to the end"), or `{ suffix }` for the last `suffix` bytes.
 */
export type ByteRange = { start: number; end?: number } | { suffix: number };

/** The range actually served, inclusive on both ends (for Content-Range). */
export interface ServedRange {
  start: number;
  end: number;
}

export interface MultipartPart {
  partNumber: number;
  etag: string;
  size: number;
}

/**
 * The object store: buckets and keys, streamed in and out.
 * Implementations: the local filesystem (embedded default) and any S3-compatible store.
 * Errors are the classes in ./errors.ts so every front door can map them to its own protocol.
 */
export interface ObjectStore {
  createBucket(name: string): Promise<void>;
  headBucket(name: string): Promise<BucketInfo>;
  listBuckets(): Promise<BucketInfo[]>;
  /** Refuses a bucket that still holds objects (BucketNotEmpty). */
  deleteBucket(name: string): Promise<void>;

  putObject(bucket: string, key: string, body: Readable | Buffer, opts?: PutOptions): Promise<ObjectInfo>;
  headObject(bucket: string, key: string): Promise<ObjectInfo>;
  /** With a range, `range` says which bytes `body` holds; `info.size` stays the whole object's size. */
  getObject(
    bucket: string,
    key: string,
    range?: ByteRange,
  ): Promise<{ info: ObjectInfo; body: Readable; range?: ServedRange }>;
  /** Deleting a missing key is not an error (as in S3). */
  deleteObject(bucket: string, key: string): Promise<void>;
  copyObject(
    srcBucket: string,
    srcKey: string,
    dstBucket: string,
    dstKey: string,
    opts?: { contentType?: string; metadata?: Record<string, string> },
  ): Promise<ObjectInfo>;
  listObjects(bucket: string, opts?: ListOptions): Promise<ListResult>;

  createMultipartUpload(bucket: string, key: string, opts?: PutOptions): Promise<string>;
  uploadPart(uploadId: string, partNumber: number, body: Readable | Buffer): Promise<MultipartPart>;
  completeMultipartUpload(
    uploadId: string,
    parts: { partNumber: number; etag: string }[],
  ): Promise<ObjectInfo>;
  abortMultipartUpload(uploadId: string): Promise<void>;
  /** Parts uploaded so far, by part number. */
  listParts(uploadId: string): Promise<MultipartPart[]>;

  /** Releases files, databases and sockets; the store is unusable afterwards. */
  close(): Promise<void>;
}
