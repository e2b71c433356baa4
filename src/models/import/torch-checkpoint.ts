// Reader for PyTorch's checkpoint format (torch.save since PyTorch 1.6): a zip archive holding
// `<name>/data.pkl` (the object, pickled with protocol 2) and one uncompressed record `<name>/data/<key>`
// per tensor storage. The pickle refers to storages by persistent ids
// `("storage", torch.<Type>Storage, key, location, numel)` and builds tensors with
// `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` (torch/serialization.py `_save`,
// `_load`; torch/_utils.py). Only the pickle is read into memory; tensor data stays in the file as byte
// ranges for positioned reads.
import { FileReader } from "../file-reader.js";
import { unpickle, type PyValue } from "../pickle.js";
import { ZipArchive, type ZipEntry } from "../zip.js";

export type TorchDType = "float16" | "float32" | "bfloat16" | "float64";

const STORAGE_TYPES: Readonly<Record<string, { dtype: TorchDType; itemBytes: number }>> = {
  "torch.HalfStorage": { dtype: "float16", itemBytes: 2 },
  "torch.FloatStorage": { dtype: "float32", itemBytes: 4 },
  "torch.BFloat16Storage": { dtype: "bfloat16", itemBytes: 2 },
  "torch.DoubleStorage": { dtype: "float64", itemBytes: 8 },
};

/** A tensor of the checkpoint: where its elements lie in the file. */
export class TorchTensor {
  constructor(
    readonly dtype: TorchDType,
    readonly itemBytes: number,
    /** Row-major shape, outermost first. */
    readonly shape: number[],
    /** Offset of the first element in the checkpoint file. */
    readonly offset: number,
  ) {}
  get bytes(): number {
    return this.shape.reduce((a, b) => a * b, 1) * this.itemBytes;
  }
}

export interface TorchCheckpoint {
  file: string;
  /** The unpickled top-level object; its tensors are TorchTensor. */
  root: PyValue;
  reader: FileReader;
}

interface StorageRef {
  key: string;
  entry: ZipEntry;
  dtype: TorchDType;
  itemBytes: number;
}

/** How a pre-1.6 (legacy, not zip) torch.save file starts: its magic number, pickled with protocol 2. */
const LEGACY_MAGIC = Buffer.from("80028a0a6cfc9c46f9206aa850", "hex");

/**
 * Opens a checkpoint and reads its object; the caller must `reader.close()` the result. With `scripted`,
 * the file is a TorchScript archive (torch.jit.save): its modules (`__torch__.*` classes) become Maps of
 * their attributes (submodules, parameters, buffers), and no code in the archive is read.
 */
export async function openTorchCheckpoint(
  file: string,
  { scripted = false }: { scripted?: boolean } = {},
): Promise<TorchCheckpoint> {
  const probe = await FileReader.open(file);
  const head = await probe.readUpTo(0, LEGACY_MAGIC.length).finally(() => probe.close());
  if (head.equals(LEGACY_MAGIC)) {
    throw new Error(
      `${file}: a PyTorch checkpoint in the legacy format (before PyTorch 1.6); re-save it with a current torch.save`,
    );
  }
  const zip = await ZipArchive.open(file).catch((e: Error) => {
    throw new Error(`${file}: not a PyTorch checkpoint (${e.message})`, { cause: e });
  });
  try {
    return { file, root: await readObject(zip, scripted), reader: zip.reader };
  } catch (e) {
    await zip.close();
    throw e;
  }
}

/** True when the file is a zip holding exactly one `<name>/data.pkl`: a torch.save checkpoint. */
export async function isTorchCheckpoint(file: string): Promise<boolean> {
  const zip = await ZipArchive.open(file).catch(() => undefined);
  if (!zip) return false;
  try {
    return zip.entries.filter((e) => /^[^/]+\/data\.pkl$/.test(e.name)).length === 1;
  } finally {
    await zip.close();
  }
}

async function readObject(zip: ZipArchive, scripted: boolean): Promise<PyValue> {
  const pkls = zip.entries.filter((e) => /^[^/]+\/data\.pkl$/.test(e.name));
  if (pkls.length !== 1) {
    throw new Error(
      `${zip.file}: not a PyTorch checkpoint (${pkls.length === 0 ? "no <name>/data.pkl" : "several data.pkl records"})`,
    );
  }
  const prefix = pkls[0]!.name.slice(0, -"data.pkl".length);
  const byteorder = zip.entry(`${prefix}byteorder`);
  if (byteorder && (await zip.read(byteorder)).toString() !== "little") {
    throw new Error(`${zip.file}: a big-endian checkpoint; only little-endian ones are read`);
  }
  const storages = new Map<string, StorageRef>();
  const persistentLoad = (id: PyValue): PyValue => {
    if (!Array.isArray(id) || id[0] !== "storage" || id.length < 5) {
      throw new Error(`${zip.file}: unexpected persistent id ${JSON.stringify(id)}`);
    }
    const [, type, key, , numel] = id;
    const t = STORAGE_TYPES[(type as { qualifiedName?: string }).qualifiedName ?? ""];
    if (!t || typeof key !== "string" || typeof numel !== "number") {
      throw new Error(
        `${zip.file}: unsupported storage ${JSON.stringify(id)} (float16/32/64 and bfloat16 are read)`,
      );
    }
    const name = `${prefix}data/${key}`;
    const entry = zip.entry(name);
    if (!entry)
      throw new Error(`${zip.file}: the pickle names storage ${key}, but there is no record ${name}`);
    if (entry.method !== 0)
      throw new Error(`${zip.file}: record ${name} is compressed; PyTorch stores tensor data uncompressed`);
    if (entry.size < numel * t.itemBytes) {
      throw new Error(
        `${zip.file}: record ${name} has ${entry.size} bytes, fewer than ${numel} ${t.dtype} elements`,
      );
    }
    const ref = { key, entry, ...t };
    storages.set(key, ref);
    return ref as unknown as PyValue;
  };
  const rebuildTensor = (args: PyValue[]): PyValue => {
    const [storage, offset, size, stride] = args as [StorageRef, number, number[], number[]];
    if (!storage?.entry || typeof offset !== "number" || !Array.isArray(size) || !Array.isArray(stride)) {
      throw new Error(`${zip.file}: a tensor whose storage, offset, size or stride is not what torch writes`);
    }
    // Whisper checkpoints hold contiguous tensors; a strided view would need gathering, which is refused.
    let step = 1;
    for (let d = size.length - 1; d >= 0; d--) {
      if (size[d] !== 1 && stride[d] !== step) {
        throw new Error(
          `${zip.file}: a non-contiguous tensor (size [${size}], stride [${stride}]) in storage ${storage.key}`,
        );
      }
      step *= size[d]!;
    }
    const tensor = new TorchTensor(
      storage.dtype,
      storage.itemBytes,
      size,
      storage.entry.dataOffset + offset * storage.itemBytes,
    );
    if ((offset + step) * storage.itemBytes > storage.entry.size) {
      throw new Error(
        `${zip.file}: a tensor of shape [${size}] at element ${offset} runs past storage ${storage.key}`,
      );
    }
    return tensor;
  };
  const pickle = await zip.read(pkls[0]!);
  // TorchScript pickles each module as GLOBAL `__torch__.<module> <class>`, NEWOBJ, then BUILD with a dict
  // of its attributes: each such class builds a Map that BUILD fills.
  const modules = new Set<PyValue>();
  const newModule = (): PyValue => {
    const m = new Map<PyValue, PyValue>();
    modules.add(m);
    return m;
  };
  const moduleClasses = scripted
    ? [...pickle.toString("latin1").matchAll(/c(__torch__\.[^\n]+)\n([^\n]+)\n/g)].map(
        ([, mod, cls]) => [`${mod}.${cls}`, newModule] as const,
      )
    : [];
  return unpickle(pickle, {
    source: `${zip.file}:${pkls[0]!.name}`,
    persistentLoad,
    values: new Set(Object.keys(STORAGE_TYPES)),
    calls: {
      ...Object.fromEntries(moduleClasses),
      "torch.jit._pickle.build_intlist": (args) => args[0] ?? null,
      "collections.OrderedDict": () => new Map(),
      "torch._utils._rebuild_tensor_v2": rebuildTensor,
      "torch._utils._rebuild_tensor": rebuildTensor,
      // A saved nn.Parameter: (data, requires_grad, backward_hooks) → its data.
      "torch._utils._rebuild_parameter": (args) => args[0] ?? null,
    },
    // state_dict() is an OrderedDict with a `_metadata` attribute (module versions): kept out of the way.
    build: (obj, state) => {
      if (!(obj instanceof Map) || !(state instanceof Map))
        throw new Error(`${zip.file}: BUILD on an object that is not a dict`);
      if (modules.has(obj)) for (const [k, v] of state) obj.set(k, v);
    },
  });
}
