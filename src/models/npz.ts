// Minimal readers for NumPy .npy arrays and .npz archives (zip of .npy), enough for float32 assets.
import { readFile } from "node:fs/promises";
import { inflateRawSync } from "node:zlib";

export interface NpyArray {
  dtype: string;
  shape: number[];
  /** Raw little-endian element bytes in C order. */
  data: Buffer;
}

export function parseNpy(buf: Buffer, what = "npy"): NpyArray {
  if (buf.length < 10 || buf.readUInt8(0) !== 0x93 || buf.toString("latin1", 1, 6) !== "NUMPY") {
    throw new Error(`${what}: not a .npy array (bad magic)`);
  }
  const major = buf.readUInt8(6);
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString("latin1", start, start + headerLen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw new Error(`${what}: unreadable .npy header`);
  if (fortran === "True") throw new Error(`${what}: Fortran-order arrays are not supported`);
  const shape = shapeText
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
    .map(Number);
  return { dtype: descr, shape, data: buf.subarray(start + headerLen) };
}

/** Reads every array of an .npz file (stored or deflated zip members) into memory. */
export async function readNpz(file: string): Promise<Map<string, NpyArray>> {
  const zip = await readFile(file);
  // End of central directory record: the last "PK\x05\x06" within the final 64 KiB + 22 bytes.
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 65557); i--) {
    if (zip.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error(`${file}: not a zip/npz file (no end-of-central-directory record)`);
  const count = zip.readUInt16LE(eocd + 10);
  let p = zip.readUInt32LE(eocd + 16);
  const arrays = new Map<string, NpyArray>();
  for (let n = 0; n < count; n++) {
    if (zip.readUInt32LE(p) !== 0x02014b50) throw new Error(`${file}: corrupt zip central directory`);
    const method = zip.readUInt16LE(p + 10);
    const compSize = zip.readUInt32LE(p + 20);
    const nameLen = zip.readUInt16LE(p + 28);
    const extraLen = zip.readUInt16LE(p + 30);
    const commentLen = zip.readUInt16LE(p + 32);
    const local = zip.readUInt32LE(p + 42);
    const name = zip.toString("utf8", p + 46, p + 46 + nameLen);
    p += 46 + nameLen + extraLen + commentLen;
    const dataStart = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    const raw = zip.subarray(dataStart, dataStart + compSize);
    let body: Buffer;
    if (method === 0) body = raw;
    else if (method === 8) body = inflateRawSync(raw);
    else throw new Error(`${file}: member ${name} uses unsupported zip method ${method}`);
    arrays.set(name.replace(/\.npy$/, ""), parseNpy(body, `${file}:${name}`));
  }
  return arrays;
}
