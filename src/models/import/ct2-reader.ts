// Reader for CTranslate2's model.bin (ct2-to-ggml.md §1): parses the variable and alias tables,
// remembering where each tensor's data lies so it can be read later in pieces.
import { FileReader } from "../file-reader.js";

export type Ct2DType = "float32" | "int8" | "int16" | "int32" | "float16" | "bfloat16";

/** Type ids in CTranslate2's DataType enum order. */
const DTYPES: { dtype: Ct2DType; itemBytes: number }[] = [
  { dtype: "float32", itemBytes: 4 },
  { dtype: "int8", itemBytes: 1 },
  { dtype: "int16", itemBytes: 2 },
  { dtype: "int32", itemBytes: 4 },
  { dtype: "float16", itemBytes: 2 },
  { dtype: "bfloat16", itemBytes: 2 },
];

export interface Ct2Variable {
  name: string;
  /** Row-major shape, outermost first; [] for scalars. */
  shape: number[];
  dtype: Ct2DType;
  itemBytes: number;
  /** Offset of the data in model.bin. */
  offset: number;
  bytes: number;
}

export interface Ct2Model {
  file: string;
  version: number;
  specName: string;
  revision: number;
  variables: Map<string, Ct2Variable>;
  /** alias name → target name */
  aliases: Map<string, string>;
  reader: FileReader;
}

const MAX_WHISPER_REVISION = 3;

async function readString(
  r: FileReader,
  pos: number,
  what: string,
): Promise<{ value: string; next: number }> {
  const len = (await r.read(pos, 2, `${what} length`)).readUInt16LE(0);
  if (len === 0) throw new Error(`${r.file}: corrupt ${what} at offset ${pos} (zero-length string)`);
  const bytes = await r.read(pos + 2, len, what);
  if (bytes[len - 1] !== 0)
    throw new Error(`${r.file}: corrupt ${what} at offset ${pos} (no terminating NUL)`);
  return { value: bytes.toString("utf8", 0, len - 1), next: pos + 2 + len };
}

/** Opens and indexes a model.bin; the caller must `reader.close()` the result. */
export async function openCt2Model(file: string): Promise<Ct2Model> {
  const r = await FileReader.open(file);
  try {
    return await parse(r);
  } catch (err) {
    await r.close();
    throw err;
  }
}

async function parse(r: FileReader): Promise<Ct2Model> {
  const file = r.file;
  if (r.size < 4)
    throw new Error(`${file}: truncated: ${r.size} bytes is too short for a CTranslate2 model.bin`);
  const version = (await r.read(0, 4, "binary version")).readUInt32LE(0);
  if (version < 1 || version > 6) {
    throw new Error(`${file}: not a CTranslate2 model.bin (binary version ${version}, expected 4..6)`);
  }
  if (version < 4) throw new Error(`${file}: CTranslate2 binary version ${version} predates Whisper support`);
  const spec = await readString(r, 4, "spec name");
  if (spec.value !== "WhisperSpec")
    throw new Error(`${file}: spec ${JSON.stringify(spec.value)} is not a Whisper model`);
  const head = await r.read(spec.next, 8, "header");
  const revision = head.readUInt32LE(0);
  if (revision > MAX_WHISPER_REVISION) {
    throw new Error(
      `${file}: WhisperSpec revision ${revision} is newer than supported (≤ ${MAX_WHISPER_REVISION})`,
    );
  }
  const count = head.readUInt32LE(4);
  let pos = spec.next + 8;
  const variables = new Map<string, Ct2Variable>();
  for (let i = 0; i < count; i++) {
    const name = await readString(r, pos, `variable ${i} name`);
    const rank = (await r.read(name.next, 1, `${name.value} rank`)).readUInt8(0);
    if (rank > 8) throw new Error(`${file}: corrupt variable ${name.value} (rank ${rank})`);
    const meta = await r.read(name.next + 1, 4 * rank + 5, `${name.value} shape`);
    const shape = Array.from({ length: rank }, (_, k) => meta.readUInt32LE(4 * k));
    const typeId = meta.readUInt8(4 * rank);
    const bytes = meta.readUInt32LE(4 * rank + 1);
    const dt = DTYPES[typeId];
    if (!dt) throw new Error(`${file}: variable ${name.value} has unknown dtype id ${typeId}`);
    const expected = shape.reduce((a, b) => a * b, 1) * dt.itemBytes;
    if (bytes !== expected) {
      throw new Error(
        `${file}: variable ${name.value} has ${bytes} data bytes, its shape [${shape}] needs ${expected}`,
      );
    }
    const offset = name.next + 1 + meta.length;
    if (offset + bytes > r.size) {
      throw new Error(
        `${file}: truncated: variable ${name.value} ends at byte ${offset + bytes}, the file has ${r.size}`,
      );
    }
    variables.set(name.value, {
      name: name.value,
      shape,
      dtype: dt.dtype,
      itemBytes: dt.itemBytes,
      offset,
      bytes,
    });
    pos = offset + bytes;
  }
  const aliases = new Map<string, string>();
  const aliasCount = (await r.read(pos, 4, "alias count")).readUInt32LE(0);
  pos += 4;
  for (let i = 0; i < aliasCount; i++) {
    const alias = await readString(r, pos, `alias ${i} name`);
    const target = await readString(r, alias.next, `alias ${alias.value} target`);
    aliases.set(alias.value, target.value);
    pos = target.next;
  }
  if (pos !== r.size) throw new Error(`${file}: ${r.size - pos} unexpected bytes after the alias table`);
  return { file, version, specName: spec.value, revision, variables, aliases, reader: r };
}

/** Follows aliases to the stored variable, or undefined when neither exists. */
export function resolveVariable(model: Ct2Model, name: string): Ct2Variable | undefined {
  let n = name;
  for (let hops = 0; hops < 16; hops++) {
    const v = model.variables.get(n);
    if (v) return v;
    const next = model.aliases.get(n);
    if (next === undefined) return undefined;
    n = next;
  }
  throw new Error(`${model.file}: alias loop at ${name}`);
}

/** Integer or float value of a scalar variable. */
export async function readScalar(model: Model, v: Ct2Variable): Promise<number> {
  const b = await model.reader.read(v.offset, v.itemBytes, v.name);
  switch (v.dtype) {
    case "int8":
      return b.readInt8(0);
    case "int16":
      return b.readInt16LE(0);
    case "int32":
      return b.readInt32LE(0);
    case "float32":
      return b.readFloatLE(0);
    default:
      throw new Error(`${model.file}: scalar ${v.name} has unexpected dtype ${v.dtype}`);
  }
}

type Model = Pick<Ct2Model, "file" | "reader">;
