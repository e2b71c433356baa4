import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { open, mkdir, rename, unlink, copyFile, constants as fsConstants } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import Database from "better-sqlite3";
import {
  bucketExists,
  bucketNotEmpty,
  entityTooLarge,
  entityTooSmall,
  invalidArgument,
  invalidPart,
  invalidPartOrder,
  invalidRange,
  noSuchBucket,
  noSuchKey,
  noSuchUpload,
} from "./errors.js";
import { statementCache } from "../queue/sqlite/rows.js";
import { checkBucketName, checkKey } from "./validate.js";
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

export interface FsObjectStoreOptions {
  /** Directory that holds everything: `index.sqlite`, `blobs/`, `tmp/`. Created if missing. */
  root: string;
  /** Smallest allowed multipart part except the last (S3: 5 MiB). @defaultValue 5 MiB */
  minPartBytes?: number;
  /** Flush file data and directory entries to disk before acknowledging a write. @defaultValue true */
  fsync?: boolean;
}

const MiB = 1024 * 1024;
const MAX_PARTS = 10_000;
/** Temp files older than this are leftovers of a crash (another process may share the root). */
const STALE_TMP_MS = 60 * 60 * 1000;
const DEFAULT_CONTENT_TYPE = "application/octet-stream";

interface ObjectRow {
  bucket: string;
  key: string;
  blob: string;
  size: number;
  etag: string;
  content_type: string;
  metadata: string;
  modified_ms: number;
}
interface UploadRow {
  id: string;
  bucket: string;
  key: string;
  content_type: string;
  metadata: string;
  max_bytes: number | null;
}
interface PartRow {
  part_number: number;
  blob: string;
  size: number;
  etag: string;
}

/**
 * Objects on the local disk. Why an index plus opaque blob files rather than key-named files:
 * - keys never become paths, so no key (`../x`, `/abs`, NUL, 1024-byte unicode) can escape the root or
 *   hit file-name limits, and listing is an ordered SQL range scan in S3's (UTF-8 byte) order;
 * - a write goes to `tmp/`, is fsynced and renamed to a fresh blob name, then one SQLite transaction
 *   points the key at it; readers holding the old blob open keep reading it, so overwrites are atomic.
 * SQLite (WAL) lets several processes on one host share the root. A crash between the rename and the
 * commit leaves an unreferenced blob, never a torn object.
 */
export class FsObjectStore implements ObjectStore {
  readonly root: string;
  private readonly db: Database.Database;
  /** Prepared statements by their SQL (preparing costs more than running most of these); `plucked` ones return the first column. */
  private readonly statement: (sql: string) => Database.Statement;
  private readonly plucked: (sql: string) => Database.Statement;
  private readonly minPartBytes: number;
  private readonly fsync: boolean;
  private readonly blobDirs = new Set<string>();

  constructor(opts: FsObjectStoreOptions) {
    this.root = opts.root;
    this.minPartBytes = opts.minPartBytes ?? 5 * MiB;
    this.fsync = opts.fsync ?? true;
    mkdirSync(join(this.root, "blobs"), { recursive: true });
    mkdirSync(join(this.root, "tmp"), { recursive: true });
    this.removeStaleTemps();
    this.db = new Database(join(this.root, "index.sqlite"));
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("busy_timeout = 5000");
    this.db.pragma("synchronous = " + (this.fsync ? "FULL" : "NORMAL"));
    this.statement = statementCache(this.db);
    this.plucked = statementCache(this.db, { pluck: true });
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS buckets (name TEXT PRIMARY KEY, created_ms INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS objects (
        bucket TEXT NOT NULL, key TEXT NOT NULL, blob TEXT NOT NULL, size INTEGER NOT NULL,
        etag TEXT NOT NULL, content_type TEXT NOT NULL, metadata TEXT NOT NULL, modified_ms INTEGER NOT NULL,
        PRIMARY KEY (bucket, key)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS uploads (
        id TEXT PRIMARY KEY, bucket TEXT NOT NULL, key TEXT NOT NULL, content_type TEXT NOT NULL,
        metadata TEXT NOT NULL, max_bytes INTEGER, created_ms INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS parts (
        upload_id TEXT NOT NULL, part_number INTEGER NOT NULL, blob TEXT NOT NULL, size INTEGER NOT NULL,
        etag TEXT NOT NULL, PRIMARY KEY (upload_id, part_number)) WITHOUT ROWID;
    `);
  }

  async close(): Promise<void> {
    this.db.close();
  }

  // --- buckets ---

  async createBucket(name: string): Promise<void> {
    checkBucketName(name);
    const r = this.statement("INSERT OR IGNORE INTO buckets (name, created_ms) VALUES (?, ?)").run(
      name,
      Date.now(),
    );
    if (r.changes === 0) throw bucketExists(name);
  }

  async headBucket(name: string): Promise<BucketInfo> {
    const row = this.statement("SELECT name, created_ms FROM buckets WHERE name = ?").get(name) as
      { name: string; created_ms: number } | undefined;
    if (!row) throw noSuchBucket(name);
    return { name: row.name, created: new Date(row.created_ms) };
  }

  async listBuckets(): Promise<BucketInfo[]> {
    const rows = this.statement("SELECT name, created_ms FROM buckets ORDER BY name").all() as {
      name: string;
      created_ms: number;
    }[];
    return rows.map((r) => ({ name: r.name, created: new Date(r.created_ms) }));
  }

  async deleteBucket(name: string): Promise<void> {
    await this.headBucket(name);
    const partBlobs = this.db.transaction(() => {
      if (this.statement("SELECT 1 FROM objects WHERE bucket = ? LIMIT 1").get(name))
        throw bucketNotEmpty(name);
      // Unfinished multipart uploads die with their bucket.
      const blobs = this.plucked(
        "SELECT p.blob FROM parts p JOIN uploads u ON u.id = p.upload_id WHERE u.bucket = ?",
      ).all(name) as string[];
      this.statement("DELETE FROM parts WHERE upload_id IN (SELECT id FROM uploads WHERE bucket = ?)").run(
        name,
      );
      this.statement("DELETE FROM uploads WHERE bucket = ?").run(name);
      this.statement("DELETE FROM buckets WHERE name = ?").run(name);
      return blobs;
    })();
    await this.removeBlobs(partBlobs);
  }

  // --- objects ---

  async putObject(
    bucket: string,
    key: string,
    body: Readable | Buffer,
    opts: PutOptions = {},
  ): Promise<ObjectInfo> {
    checkKey(key);
    await this.headBucket(bucket);
    const written = await this.writeBlob(body, opts.maxBytes);
    return this.commitObject({
      bucket,
      key,
      blob: written.blob,
      size: written.size,
      etag: written.md5.toString("hex"),
      content_type: opts.contentType || DEFAULT_CONTENT_TYPE,
      metadata: JSON.stringify(normaliseMetadata(opts.metadata)),
      modified_ms: Date.now(),
    });
  }

  async headObject(bucket: string, key: string): Promise<ObjectInfo> {
    return toInfo(this.objectRow(bucket, key));
  }

  async getObject(
    bucket: string,
    key: string,
    range?: ByteRange,
  ): Promise<{ info: ObjectInfo; body: Readable; range?: ServedRange }> {
    // An overwrite may unlink the blob between the lookup and the open: look up again.
    for (let attempt = 0; ; attempt++) {
      const row = this.objectRow(bucket, key);
      const served = range ? resolveRange(range, row.size) : undefined;
      let fh;
      try {
        fh = await open(this.blobPath(row.blob), "r");
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT" && attempt < 3) continue;
        throw err;
      }
      const body = fh.createReadStream(served ? { start: served.start, end: served.end } : {});
      return { info: toInfo(row), body, range: served };
    }
  }

  async deleteObject(bucket: string, key: string): Promise<void> {
    await this.headBucket(bucket);
    const old = this.db.transaction(() => {
      const blob = this.plucked("SELECT blob FROM objects WHERE bucket = ? AND key = ?").get(bucket, key) as
        string | undefined;
      this.statement("DELETE FROM objects WHERE bucket = ? AND key = ?").run(bucket, key);
      return blob;
    })();
    if (old) await this.removeBlobs([old]);
  }

  async copyObject(
    srcBucket: string,
    srcKey: string,
    dstBucket: string,
    dstKey: string,
    opts?: { contentType?: string; metadata?: Record<string, string> },
  ): Promise<ObjectInfo> {
    checkKey(dstKey);
    await this.headBucket(dstBucket);
    for (let attempt = 0; ; attempt++) {
      const src = this.objectRow(srcBucket, srcKey);
      const blob = newBlobName();
      const tmp = join(this.root, "tmp", blob);
      try {
        // FICLONE: a copy-on-write clone where the filesystem can, a plain copy elsewhere.
        await copyFile(this.blobPath(src.blob), tmp, fsConstants.COPYFILE_FICLONE);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT" && attempt < 3) continue;
        throw err;
      }
      if (this.fsync) await fsyncPath(tmp);
      await this.publishBlob(tmp, blob);
      return this.commitObject({
        bucket: dstBucket,
        key: dstKey,
        blob,
        size: src.size,
        etag: src.etag,
        content_type: opts?.contentType ?? (opts?.metadata ? DEFAULT_CONTENT_TYPE : src.content_type),
        metadata: opts?.metadata ? JSON.stringify(normaliseMetadata(opts.metadata)) : src.metadata,
        modified_ms: Date.now(),
      });
    }
  }

  async listObjects(bucket: string, opts: ListOptions = {}): Promise<ListResult> {
    await this.headBucket(bucket);
    const prefix = opts.prefix ?? "";
    const delimiter = opts.delimiter || undefined;
    const maxKeys = opts.maxKeys ?? 1000;
    if (!Number.isInteger(maxKeys) || maxKeys < 0)
      throw invalidArgument("max-keys must be a non-negative integer");
    const startAfter = opts.startAfter ?? "";
    const startAfterBytes = Buffer.from(startAfter);
    const result: ListResult = { objects: [], commonPrefixes: [], truncated: false };
    if (maxKeys === 0) return result;
    // Rows come in UTF-8 byte order (SQLite BINARY collation on TEXT), which is S3's listing order.
    // Its own statement: an iteration holds the statement it runs until it ends.
    const rows = this.db
      .prepare("SELECT * FROM objects WHERE bucket = ? AND key >= ? AND key > ? ORDER BY key LIMIT -1")
      .iterate(bucket, prefix, startAfter) as IterableIterator<ObjectRow>;
    let count = 0;
    let lastEntry: string | undefined;
    for (const row of rows) {
      if (!row.key.startsWith(prefix)) break;
      let prefixEntry: string | undefined;
      if (delimiter) {
        const at = row.key.indexOf(delimiter, prefix.length);
        if (at >= 0) prefixEntry = row.key.slice(0, at + delimiter.length);
      }
      if (prefixEntry !== undefined) {
        // A continuation that ended on this common prefix must not repeat it.
        if (prefixEntry === lastEntry || Buffer.compare(Buffer.from(prefixEntry), startAfterBytes) <= 0)
          continue;
      }
      if (count === maxKeys) {
        result.truncated = true;
        break;
      }
      count++;
      if (prefixEntry !== undefined) {
        result.commonPrefixes.push(prefixEntry);
        lastEntry = prefixEntry;
      } else {
        result.objects.push(toInfo(row));
        lastEntry = row.key;
      }
    }
    // Only a truncated listing needs a continuation point (closing the iterator happens on `break`).
    if (result.truncated) result.nextStartAfter = lastEntry;
    return result;
  }

  // --- multipart ---

  async createMultipartUpload(bucket: string, key: string, opts: PutOptions = {}): Promise<string> {
    checkKey(key);
    await this.headBucket(bucket);
    const id = randomBytes(24).toString("base64url");
    this.statement(
      "INSERT INTO uploads (id, bucket, key, content_type, metadata, max_bytes, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
    ).run(
      id,
      bucket,
      key,
      opts.contentType || DEFAULT_CONTENT_TYPE,
      JSON.stringify(normaliseMetadata(opts.metadata)),
      opts.maxBytes ?? null,
      Date.now(),
    );
    return id;
  }

  async uploadPart(uploadId: string, partNumber: number, body: Readable | Buffer): Promise<MultipartPart> {
    if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > MAX_PARTS)
      throw invalidArgument(`Part number must be an integer between 1 and ${MAX_PARTS}: ${partNumber}`);
    const upload = this.uploadRow(uploadId);
    const written = await this.writeBlob(body, upload.max_bytes ?? undefined);
    const etag = written.md5.toString("hex");
    const old = this.db.transaction(() => {
      if (!this.statement("SELECT 1 FROM uploads WHERE id = ?").get(uploadId)) return undefined; // aborted meanwhile
      const prev = this.plucked("SELECT blob FROM parts WHERE upload_id = ? AND part_number = ?").get(
        uploadId,
        partNumber,
      ) as string | undefined;
      this.statement(
        "INSERT OR REPLACE INTO parts (upload_id, part_number, blob, size, etag) VALUES (?, ?, ?, ?, ?)",
      ).run(uploadId, partNumber, written.blob, written.size, etag);
      return { prev };
    })();
    if (!old) {
      await this.removeBlobs([written.blob]);
      throw noSuchUpload(uploadId);
    }
    if (old.prev) await this.removeBlobs([old.prev]);
    return { partNumber, etag, size: written.size };
  }

  async listParts(uploadId: string): Promise<MultipartPart[]> {
    this.uploadRow(uploadId);
    return this.partRows(uploadId).map((p) => ({ partNumber: p.part_number, etag: p.etag, size: p.size }));
  }

  async completeMultipartUpload(
    uploadId: string,
    parts: { partNumber: number; etag: string }[],
  ): Promise<ObjectInfo> {
    const upload = this.uploadRow(uploadId);
    if (parts.length === 0) throw invalidPart("You must specify at least one part");
    const stored = new Map(this.partRows(uploadId).map((p) => [p.part_number, p]));
    const chosen: PartRow[] = [];
    for (const [i, p] of parts.entries()) {
      if (i > 0 && p.partNumber <= parts[i - 1]!.partNumber)
        throw invalidPartOrder("The list of parts was not in ascending order by part number");
      const row = stored.get(p.partNumber);
      if (!row || row.etag !== unquote(p.etag))
        throw invalidPart(`Part ${p.partNumber} was not uploaded, or its ETag does not match "${p.etag}"`);
      if (i < parts.length - 1 && row.size < this.minPartBytes)
        throw entityTooSmall(p.partNumber, row.size, this.minPartBytes);
      chosen.push(row);
    }
    const size = chosen.reduce((n, p) => n + p.size, 0);
    if (upload.max_bytes !== null && size > upload.max_bytes) throw entityTooLarge(upload.max_bytes);

    const blob = newBlobName();
    const tmp = join(this.root, "tmp", blob);
    try {
      const out = await open(tmp, "wx");
      try {
        for (const p of chosen) {
          const src = await open(this.blobPath(p.blob), "r");
          try {
            for await (const chunk of src.createReadStream({ highWaterMark: MiB, autoClose: false }))
              await writeAll(out, chunk as Buffer);
          } finally {
            await src.close();
          }
        }
        if (this.fsync) await out.sync();
      } finally {
        await out.close();
      }
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw err;
    }
    await this.publishBlob(tmp, blob);
    const md5s = Buffer.concat(chosen.map((p) => Buffer.from(p.etag, "hex")));
    const etag = `${createHash("md5").update(md5s).digest("hex")}-${chosen.length}`;
    const row: ObjectRow = {
      bucket: upload.bucket,
      key: upload.key,
      blob,
      size,
      etag,
      content_type: upload.content_type,
      metadata: upload.metadata,
      modified_ms: Date.now(),
    };
    const garbage = this.db.transaction(() => {
      if (!this.statement("SELECT 1 FROM uploads WHERE id = ?").get(uploadId)) return undefined;
      const partBlobs = this.plucked("SELECT blob FROM parts WHERE upload_id = ?").all(uploadId) as string[];
      this.statement("DELETE FROM parts WHERE upload_id = ?").run(uploadId);
      this.statement("DELETE FROM uploads WHERE id = ?").run(uploadId);
      const old = this.replaceObjectRow(row);
      return old ? [...partBlobs, old] : partBlobs;
    })();
    if (!garbage) {
      await this.removeBlobs([blob]);
      throw noSuchUpload(uploadId);
    }
    await this.removeBlobs(garbage);
    return toInfo(row);
  }

  async abortMultipartUpload(uploadId: string): Promise<void> {
    this.uploadRow(uploadId);
    const blobs = this.db.transaction(() => {
      const b = this.plucked("SELECT blob FROM parts WHERE upload_id = ?").all(uploadId) as string[];
      this.statement("DELETE FROM parts WHERE upload_id = ?").run(uploadId);
      this.statement("DELETE FROM uploads WHERE id = ?").run(uploadId);
      return b;
    })();
    await this.removeBlobs(blobs);
  }

  // --- internals ---

  private objectRow(bucket: string, key: string): ObjectRow {
    const row = this.statement("SELECT * FROM objects WHERE bucket = ? AND key = ?").get(bucket, key) as
      ObjectRow | undefined;
    if (row) return row;
    if (!this.statement("SELECT 1 FROM buckets WHERE name = ?").get(bucket)) throw noSuchBucket(bucket);
    throw noSuchKey(bucket, key);
  }

  private uploadRow(uploadId: string): UploadRow {
    const row = this.statement("SELECT * FROM uploads WHERE id = ?").get(uploadId) as UploadRow | undefined;
    if (!row) throw noSuchUpload(uploadId);
    return row;
  }

  private partRows(uploadId: string): PartRow[] {
    return this.statement(
      "SELECT part_number, blob, size, etag FROM parts WHERE upload_id = ? ORDER BY part_number",
    ).all(uploadId) as PartRow[];
  }

  /** Points the key at a published blob; the bucket may have been deleted meanwhile. */
  private async commitObject(row: ObjectRow): Promise<ObjectInfo> {
    let old: string | undefined;
    try {
      old = this.db.transaction(() => {
        if (!this.statement("SELECT 1 FROM buckets WHERE name = ?").get(row.bucket))
          throw noSuchBucket(row.bucket);
        return this.replaceObjectRow(row);
      })();
    } catch (err) {
      await this.removeBlobs([row.blob]);
      throw err;
    }
    if (old) await this.removeBlobs([old]);
    return toInfo(row);
  }

  /** Inside a transaction: upserts the row, returning the blob it replaced. */
  private replaceObjectRow(row: ObjectRow): string | undefined {
    const old = this.plucked("SELECT blob FROM objects WHERE bucket = ? AND key = ?").get(
      row.bucket,
      row.key,
    ) as string | undefined;
    this.statement(
      `INSERT OR REPLACE INTO objects (bucket, key, blob, size, etag, content_type, metadata, modified_ms)
         VALUES (@bucket, @key, @blob, @size, @etag, @content_type, @metadata, @modified_ms)`,
    ).run(row);
    return old;
  }

  /** Streams the body to a temp file (MD5 on the way), then renames it into `blobs/`. */
  private async writeBlob(
    body: Readable | Buffer,
    maxBytes: number | undefined,
  ): Promise<{ blob: string; size: number; md5: Buffer }> {
    const blob = newBlobName();
    const tmp = join(this.root, "tmp", blob);
    const hash = createHash("md5");
    let size = 0;
    const fh = await open(tmp, "wx");
    try {
      const chunks: AsyncIterable<Buffer | string> | Buffer[] = Buffer.isBuffer(body) ? [body] : body;
      for await (const c of chunks) {
        const chunk = typeof c === "string" ? Buffer.from(c) : c;
        size += chunk.length;
        if (maxBytes !== undefined && size > maxBytes) throw entityTooLarge(maxBytes);
        hash.update(chunk);
        await writeAll(fh, chunk);
      }
      if (this.fsync) await fh.sync();
      await fh.close();
    } catch (err) {
      await fh.close().catch(() => {});
      await unlink(tmp).catch(() => {});
      throw err;
    }
    await this.publishBlob(tmp, blob);
    return { blob, size, md5: hash.digest() };
  }

  private async publishBlob(tmp: string, blob: string): Promise<void> {
    const dir = join(this.root, "blobs", blob.slice(0, 2));
    if (!this.blobDirs.has(dir)) {
      await mkdir(dir, { recursive: true });
      this.blobDirs.add(dir);
    }
    try {
      await rename(tmp, join(dir, blob));
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw err;
    }
    if (this.fsync) await fsyncPath(dir);
  }

  private blobPath(blob: string): string {
    return join(this.root, "blobs", blob.slice(0, 2), blob);
  }

  private async removeBlobs(blobs: string[]): Promise<void> {
    for (const b of blobs) await unlink(this.blobPath(b)).catch(() => {});
  }

  private removeStaleTemps(): void {
    const dir = join(this.root, "tmp");
    const now = Date.now();
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      try {
        if (now - statSync(p).mtimeMs > STALE_TMP_MS) rmSync(p, { force: true });
      } catch {
        // Another process removed or renamed it first.
      }
    }
  }
}

/** Blob names are random hex: never derived from user input. */
function newBlobName(): string {
  return randomBytes(16).toString("hex");
}

async function writeAll(fh: import("node:fs/promises").FileHandle, chunk: Buffer): Promise<void> {
  let off = 0;
  while (off < chunk.length) {
    const { bytesWritten } = await fh.write(chunk, off, chunk.length - off);
    off += bytesWritten;
  }
}

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function resolveRange(range: ByteRange, size: number): ServedRange {
  if ("suffix" in range) {
    if (!Number.isInteger(range.suffix) || range.suffix <= 0 || size === 0)
      throw invalidRange(
        `The requested range (last ${range.suffix} bytes) is not satisfiable for ${size} bytes`,
      );
    return { start: Math.max(0, size - range.suffix), end: size - 1 };
  }
  const end = Math.min(range.end ?? size - 1, size - 1);
  if (!Number.isInteger(range.start) || range.start < 0 || range.start >= size || end < range.start)
    throw invalidRange(
      `The requested range ${range.start}-${range.end ?? ""} is not satisfiable for ${size} bytes`,
    );
  return { start: range.start, end };
}

function normaliseMetadata(meta: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(meta ?? {})) out[k.toLowerCase()] = String(v);
  return out;
}

function unquote(etag: string): string {
  return etag.replace(/^"|"$/g, "").replace(/^W\//, "");
}

function toInfo(row: ObjectRow): ObjectInfo {
  return {
    bucket: row.bucket,
    key: row.key,
    size: row.size,
    etag: row.etag,
    contentType: row.content_type,
    lastModified: new Date(row.modified_ms),
    metadata: JSON.parse(row.metadata) as Record<string, string>,
  };
}
