// A zip reader over positioned reads (APPNOTE 6.3: end of central directory, Zip64, central and local
// headers). Members are located, never loaded whole: a stored member (PyTorch checkpoints store every
// tensor uncompressed) is a byte range of the file, and a deflated one (wheels) streams through inflate.
import { createReadStream, createWriteStream } from "node:fs";
import { Readable, pipeline as chain } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createInflateRaw } from "node:zlib";
import { FileReader } from "./file-reader.js";

export interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflated. */
  method: number;
  compressedSize: number;
  size: number;
  /** Where the member's (compressed) data starts in the file. */
  dataOffset: number;
}

const EOCD = 0x06054b50;
const ZIP64_EOCD = 0x06064b50;
const ZIP64_LOCATOR = 0x07064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const STORED = 0;
const DEFLATED = 8;

/** True when the file starts like a zip archive (a local file header). */
export async function isZipFile(file: string): Promise<boolean> {
  const r = await FileReader.open(file);
  try {
    const head = await r.readUpTo(0, 4);
    return head.length === 4 && head.readUInt32LE(0) === LOCAL;
  } finally {
    await r.close();
  }
}

export class ZipArchive {
  private constructor(
    readonly reader: FileReader,
    readonly entries: ZipEntry[],
  ) {}

  get file(): string {
    return this.reader.file;
  }

  /** Opens and indexes a zip file; the caller must `close()` it. */
  static async open(file: string): Promise<ZipArchive> {
    const r = await FileReader.open(file);
    try {
      return new ZipArchive(r, await readEntries(r));
    } catch (err) {
      await r.close();
      throw err;
    }
  }

  entry(name: string): ZipEntry | undefined {
    return this.entries.find((e) => e.name === name);
  }

  /** The whole content of a small member, inflated if it is deflated. */
  async read(entry: ZipEntry): Promise<Buffer> {
    if (entry.method === STORED) return this.reader.read(entry.dataOffset, entry.size, entry.name);
    const chunks: Buffer[] = [];
    for await (const chunk of this.stream(entry)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  /** The member's content as a stream, inflated if it is deflated. */
  stream(entry: ZipEntry): NodeJS.ReadableStream {
    if (entry.method !== STORED && entry.method !== DEFLATED) {
      throw new Error(
        `${this.file}: member ${entry.name} uses zip method ${entry.method} (only 0 and 8 are read)`,
      );
    }
    if (entry.compressedSize === 0) return Readable.from([]);
    const raw = createReadStream(this.file, {
      start: entry.dataOffset,
      end: entry.dataOffset + entry.compressedSize - 1,
    });
    // A read or inflate error ends the returned stream with that error.
    return entry.method === STORED ? raw : chain(raw, createInflateRaw(), () => undefined);
  }

  /** Writes the member to `dest`, checking the size the central directory promised. */
  async extract(entry: ZipEntry, dest: string): Promise<void> {
    let bytes = 0;
    const source = this.stream(entry);
    source.on("data", (chunk: Buffer) => (bytes += chunk.length));
    await pipeline(source, createWriteStream(dest));
    if (bytes !== entry.size) {
      throw new Error(
        `${this.file}: member ${entry.name} gave ${bytes} bytes, its header says ${entry.size}`,
      );
    }
  }

  close(): Promise<void> {
    return this.reader.close();
  }
}

async function readEntries(r: FileReader): Promise<ZipEntry[]> {
  const file = r.file;
  // The end-of-central-directory record is the last 22 bytes plus a comment of at most 65535 bytes.
  const tailStart = Math.max(0, r.size - 22 - 0xffff);
  const tail = await r.read(tailStart, r.size - tailStart, "end of central directory");
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error(`${file}: not a zip archive (no end-of-central-directory record)`);
  let count = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdOffset = tail.readUInt32LE(eocd + 16);
  // Zip64: a locator just before the record points at the 64-bit end-of-central-directory record.
  const locator = tailStart + eocd - 20;
  if (locator >= 0 && (await r.read(locator, 4, "zip64 locator")).readUInt32LE(0) === ZIP64_LOCATOR) {
    const at = Number((await r.read(locator + 8, 8, "zip64 locator")).readBigUInt64LE(0));
    const rec = await r.read(at, 56, "zip64 end of central directory");
    if (rec.readUInt32LE(0) !== ZIP64_EOCD)
      throw new Error(`${file}: corrupt zip64 end-of-central-directory record`);
    count = Number(rec.readBigUInt64LE(32));
    cdSize = Number(rec.readBigUInt64LE(40));
    cdOffset = Number(rec.readBigUInt64LE(48));
  }
  if (cdOffset + cdSize > r.size)
    throw new Error(`${file}: truncated (the central directory ends past the file)`);
  const cd = await r.read(cdOffset, cdSize, "central directory");
  const entries: ZipEntry[] = [];
  let p = 0;
  for (let n = 0; n < count; n++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== CENTRAL) {
      throw new Error(`${file}: corrupt central directory at entry ${n}`);
    }
    const flags = cd.readUInt16LE(p + 8);
    const method = cd.readUInt16LE(p + 10);
    let compressedSize = cd.readUInt32LE(p + 20);
    let size = cd.readUInt32LE(p + 24);
    const nameLen = cd.readUInt16LE(p + 28);
    const extraLen = cd.readUInt16LE(p + 30);
    const commentLen = cd.readUInt16LE(p + 32);
    let localOffset = cd.readUInt32LE(p + 42);
    const name = cd.toString(flags & 0x800 ? "utf8" : "latin1", p + 46, p + 46 + nameLen);
    // Zip64 extended information: only the fields whose 32-bit value is saturated, in this order.
    const extra = cd.subarray(p + 46 + nameLen, p + 46 + nameLen + extraLen);
    for (let e = 0; e + 4 <= extra.length;) {
      const id = extra.readUInt16LE(e);
      const len = extra.readUInt16LE(e + 2);
      if (id === 0x0001) {
        let q = e + 4;
        const next = () => {
          const v = Number(extra.readBigUInt64LE(q));
          q += 8;
          return v;
        };
        if (size === 0xffffffff) size = next();
        if (compressedSize === 0xffffffff) compressedSize = next();
        if (localOffset === 0xffffffff) localOffset = next();
      }
      e += 4 + len;
    }
    if (flags & 0x1) throw new Error(`${file}: member ${name} is encrypted`);
    entries.push({ name, method, compressedSize, size, dataOffset: localOffset });
    p += 46 + nameLen + extraLen + commentLen;
  }
  // The data starts after the local header, whose name and extra field may differ from the central copy.
  for (const e of entries) {
    const local = await r.read(e.dataOffset, 30, `local header of ${e.name}`);
    if (local.readUInt32LE(0) !== LOCAL) throw new Error(`${file}: corrupt local header for ${e.name}`);
    e.dataOffset += 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
    if (e.dataOffset + e.compressedSize > r.size) {
      throw new Error(`${file}: truncated: member ${e.name} ends past the end of the file`);
    }
  }
  return entries;
}
