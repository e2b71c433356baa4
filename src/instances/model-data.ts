import { createHash, randomUUID } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, readFile, readdir, rename, rm, stat, symlink, utimes, writeFile } from "node:fs/promises";
import { basename, isAbsolute, join, normalize, relative, sep } from "node:path";
import { pipeline } from "node:stream/promises";
import { Transform } from "node:stream";
import * as tar from "tar";
import type { ObjectStore } from "../storage/types.js";
import { s3Location } from "../core/rules.js";
import { KikitoriError } from "../errors.js";
import { IMPORTERS, MODEL_MANIFEST, findModelFile, type ModelImporter } from "../models/index.js";

export interface UnpackLimits {
  /** Total bytes the archive may expand to. */
  maxBytes: number;
  maxEntries: number;
  /**
   * How many times its own size an archive may expand to (above a 64 MiB floor): model weights barely
   * compress, so a far larger ratio is a bomb. @defaultValue 20
   */
  maxRatio?: number;
}

export const DEFAULT_UNPACK_LIMITS: UnpackLimits = {
  maxBytes: 20 * 1024 ** 3,
  maxEntries: 10_000,
  maxRatio: 20,
};
const RATIO_FLOOR_BYTES = 64 * 1024 ** 2;

const refuse = (archive: string, why: string) =>
  new KikitoriError("ValidationError", `model archive ${archive} refused: ${why}`);

/** Why an entry may not be unpacked, or undefined when it is safe. */
function entryProblem(path: string, type: string, linkpath: string | undefined): string | undefined {
  if (isAbsolute(path) || /^[a-zA-Z]:/.test(path)) return `entry "${path}" has an absolute path`;
  const norm = normalize(path);
  if (norm === ".." || norm.startsWith(`..${sep}`) || path.split(/[\\/]/).includes("..")) {
    return `entry "${path}" points outside the model directory`;
  }
  if (type === "SymbolicLink" || type === "Link") {
    // Links are refused outright: a link that stays inside today can be retargeted by a later entry.
    return `entry "${path}" is a ${type === "Link" ? "hard link" : "symbolic link"} to "${linkpath}"`;
  }
  if (!["File", "OldFile", "ContiguousFile", "Directory"].includes(type)) {
    return `entry "${path}" has unsupported type ${type}`;
  }
  return undefined;
}

/**
 * Unpacks a model.tar.gz into `dest` safely: a first pass reads only the headers and refuses absolute
 * paths, `..`, links, devices, too many entries or too many bytes, before anything is written; the second
 * pass extracts into a temporary directory that is renamed into place.
 */
export async function unpackModelArchive(
  archive: string,
  dest: string,
  limits: UnpackLimits = DEFAULT_UNPACK_LIMITS,
): Promise<void> {
  let total = 0;
  let entries = 0;
  let problem: string | undefined;
  const archiveBytes = (await stat(archive)).size;
  const maxBytes = Math.min(
    limits.maxBytes,
    Math.max(RATIO_FLOOR_BYTES, archiveBytes * (limits.maxRatio ?? DEFAULT_UNPACK_LIMITS.maxRatio!)),
  );
  try {
    await tar.t({
      file: archive,
      onReadEntry: (e) => {
        if (problem) return;
        entries++;
        total += e.size ?? 0;
        problem =
          entryProblem(e.path, e.type, e.linkpath) ??
          (entries > limits.maxEntries ? `more than ${limits.maxEntries} entries` : undefined) ??
          (total > maxBytes
            ? `it expands to more than ${maxBytes} bytes (${archiveBytes} bytes packed; at most ${limits.maxRatio ?? DEFAULT_UNPACK_LIMITS.maxRatio} times that, or ${limits.maxBytes} bytes)`
            : undefined);
      },
    });
  } catch (e) {
    // A refused header may be followed by a body that is not there (a declared-huge tar bomb): say why.
    throw refuse(archive, problem ?? `not a readable tar(.gz) archive (${(e as Error).message})`);
  }
  if (problem) throw refuse(archive, problem);
  if (entries === 0) throw refuse(archive, "it is empty");

  const tmp = `${dest}.partial-${randomUUID()}`;
  await mkdir(tmp, { recursive: true });
  try {
    await tar.x({ file: archive, cwd: tmp, strict: true, preservePaths: false, noChmod: true });
    await rm(dest, { recursive: true, force: true });
    await rename(tmp, dest);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw refuse(archive, (e as Error).message);
  }
}

/**
 * The directory the built-in Whisper server reads for unpacked model data `modelDir`: the data itself when
 * it holds a ggml model, else a sibling `ggml/` directory holding the ggml conversion of the one model it
 * holds in another format (an OpenAI checkpoint `*.pt`, a CTranslate2 directory), made once and kept. The
 * conversion streams (a large-v3 checkpoint never sits in memory), and the original stays untouched for
 * images that read it themselves.
 */
export async function ggmlModelDir(modelDir: string, what: string): Promise<string> {
  if (
    await findModelFile(modelDir).then(
      () => true,
      () => false,
    )
  )
    return modelDir;
  const out = join(modelDir, "..", "ggml");
  if (await exists(join(out, MODEL_MANIFEST))) return out;
  const sources: { path: string; importer: ModelImporter }[] = [];
  /** Whether `path` is a model some importer reads (recorded in `sources`). */
  const consider = async (path: string): Promise<boolean> => {
    for (const importer of IMPORTERS) {
      if (await importer.detect(path).catch(() => false)) {
        sources.push({ path, importer });
        return true;
      }
    }
    return false;
  };
  // The model at the top, or one level down (an archive of a directory, as `tar -czf m.tar.gz dir/` makes).
  const entries = (await consider(modelDir))
    ? []
    : (await readdir(modelDir, { withFileTypes: true })).sort((x, y) => (x.name < y.name ? -1 : 1));
  for (const e of entries) {
    if ((await consider(join(modelDir, e.name))) || !e.isDirectory()) continue;
    for (const f of (await readdir(join(modelDir, e.name))).sort()) await consider(join(modelDir, e.name, f));
  }
  if (sources.length !== 1) {
    const found = entries.map((e) => e.name + (e.isDirectory() ? "/" : "")).join(", ") || "nothing";
    throw new KikitoriError(
      "ValidationError",
      sources.length === 0
        ? `${what} holds no Whisper model kikitori can run: no ggml *.bin, OpenAI checkpoint (*.pt) or CTranslate2 directory (model.bin + config.json) (found: ${found})`
        : `${what} holds several models (${sources.map((s) => relative(modelDir, s.path) || ".").join(", ")}); add a ${MODEL_MANIFEST} naming the ggml one, or keep one`,
    );
  }
  const [{ path, importer }] = sources as [(typeof sources)[number]];
  await rm(out, { recursive: true, force: true });
  await mkdir(out, { recursive: true });
  const file = "ggml-model.bin";
  const result = await importer.import(path, join(out, file)).catch((e: Error) => {
    throw new KikitoriError(
      "ValidationError",
      `${what}: cannot convert ${relative(modelDir, path) || "the model"}: ${e.message}`,
    );
  });
  const manifest = {
    name: basename(path).replace(/\.pt$/, ""),
    file,
    sha256: result.sha256,
    format: "ggml",
    convertedFrom: { format: importer.name, path: relative(modelDir, path) || "." },
  };
  // Written last: its presence says the conversion is complete.
  await writeFile(join(out, MODEL_MANIFEST), JSON.stringify(manifest, null, 2) + "\n");
  return out;
}

/**
 * Model data shared by the instances of one host: each ModelDataUrl version (its ETag) is downloaded
 * once, checksummed, unpacked and cached; for the built-in server, a model in another format is
 * converted to ggml once per version too (ggmlModelDir).
 */
export class ModelDataCache {
  private readonly inflight = new Map<string, Promise<string>>();

  constructor(
    private readonly root: string,
    private readonly objects: ObjectStore,
    private readonly limits: UnpackLimits = DEFAULT_UNPACK_LIMITS,
    /** Unpacked model data kept on disk; older versions are evicted past it. @defaultValue 50 GiB */
    private readonly maxCacheBytes = 50 * 1024 ** 3,
  ) {}

  /**
   * The directory holding the unpacked model data of `url`; with `builtin`, the one holding its ggml
   * model (converted on first use, see ggmlModelDir).
   */
  async resolve(url: string, opts: { builtin?: boolean } = {}): Promise<string> {
    const { bucket, key } = s3Location("ModelDataUrl", url);
    const info = await this.objects.headObject(bucket, key).catch((e: unknown) => {
      throw new KikitoriError("ValidationError", `ModelDataUrl: cannot read ${url}: ${(e as Error).message}`);
    });
    const version = createHash("sha256")
      .update(`${bucket}\0${key}\0${info.etag}\0${info.size}`)
      .digest("hex");
    const dir = join(this.root, version.slice(0, 32));
    const modelDir = await this.once(dir, () => this.fetch(url, bucket, key, dir, info));
    return opts.builtin
      ? this.once(join(dir, "ggml"), () => ggmlModelDir(modelDir, `model data ${url}`))
      : modelDir;
  }

  /** Runs `work` once for concurrent callers with the same key. */
  private once(key: string, work: () => Promise<string>): Promise<string> {
    let p = this.inflight.get(key);
    if (!p) {
      p = work().finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  private async fetch(
    url: string,
    bucket: string,
    key: string,
    dir: string,
    info: { size: number; etag: string; metadata: Record<string, string> },
  ): Promise<string> {
    const marker = join(dir, ".kikitori-model-data.json");
    if (await exists(marker)) {
      const now = new Date();
      await utimes(marker, now, now).catch(() => {}); // recently used: evicted last
      return join(dir, "model");
    }
    await mkdir(dir, { recursive: true });
    const archive = join(dir, "model.tar.gz");
    const hash = createHash("sha256");
    const md5 = createHash("md5");
    let bytes = 0;
    const { body } = await this.objects.getObject(bucket, key);
    await pipeline(
      body,
      new Transform({
        transform(chunk: Buffer, _enc, cb) {
          hash.update(chunk);
          md5.update(chunk);
          bytes += chunk.length;
          cb(null, chunk);
        },
      }),
      createWriteStream(archive),
    );
    const sha256 = hash.digest("hex");
    // Verify what arrived against what the store says it holds: the size, the ETag when it is a plain MD5
    // (single-part upload), and a `sha256` user metadata value (x-amz-meta-sha256) when the uploader set one.
    const md5hex = md5.digest("hex");
    const etag = info.etag.replace(/"/g, "");
    const mismatch =
      bytes !== info.size
        ? `${bytes} bytes arrived, the object has ${info.size}`
        : /^[0-9a-f]{32}$/.test(etag) && etag !== md5hex
          ? `MD5 ${md5hex} does not match the ETag ${etag}`
          : info.metadata.sha256 && info.metadata.sha256.toLowerCase() !== sha256
            ? `SHA-256 ${sha256} does not match x-amz-meta-sha256 ${info.metadata.sha256}`
            : undefined;
    if (mismatch) {
      await rm(dir, { recursive: true, force: true });
      throw new KikitoriError(
        "ValidationError",
        `ModelDataUrl: ${url} failed checksum verification: ${mismatch}`,
      );
    }
    try {
      await unpackModelArchive(archive, join(dir, "model"), this.limits);
    } catch (e) {
      // A refused archive leaves nothing behind: not the download, not a partial model.
      await rm(dir, { recursive: true, force: true });
      throw e;
    }
    await rm(archive, { force: true });
    await writeFile(marker, JSON.stringify({ url, sha256, unpackedAt: new Date().toISOString() }));
    await this.evict(dir).catch(() => {});
    return join(dir, "model");
  }

  /**
   * Keeps the cache under its byte budget: least recently resolved versions go first (a resolve touches
   * its marker), never the one just made nor one being fetched now.
   */
  private async evict(keep: string): Promise<void> {
    const versions: { dir: string; used: number; bytes: number }[] = [];
    for (const name of await readdir(this.root)) {
      const dir = join(this.root, name);
      const st = await stat(join(dir, ".kikitori-model-data.json")).catch(() => undefined);
      if (!st || dir === keep || this.inflight.has(dir)) continue;
      versions.push({ dir, used: st.mtimeMs, bytes: await du(dir) });
    }
    let total = (await du(keep)) + versions.reduce((n, v) => n + v.bytes, 0);
    for (const v of versions.sort((a, b) => a.used - b.used)) {
      if (total <= this.maxCacheBytes) break;
      await rm(v.dir, { recursive: true, force: true });
      total -= v.bytes;
    }
  }

  /** The ModelDataUrls cached here (what a host reports, so placement prefers it for those models). */
  async cachedUrls(): Promise<string[]> {
    const dirs = await readdir(this.root).catch(() => [] as string[]);
    const urls: string[] = [];
    for (const d of dirs) {
      const marker = await readFile(join(this.root, d, ".kikitori-model-data.json"), "utf8").catch(() => "");
      if (marker) urls.push((JSON.parse(marker) as { url: string }).url);
    }
    return urls;
  }

  /** An empty model directory, for local-command images that need no model data. */
  async empty(): Promise<string> {
    const dir = join(this.root, "empty");
    await mkdir(dir, { recursive: true });
    return dir;
  }

  /** A model directory holding (a link to) a local ggml file, for built-in models without model data. */
  async forLocalFile(file: string): Promise<string> {
    const st = await stat(file).catch(() => undefined);
    if (!st?.isFile()) {
      throw new KikitoriError(
        "ValidationError",
        `model file ${file} does not exist: run "kikitori models pull ${basename(file).replace(/^ggml-|\.bin$/g, "")}" (or scripts/setup)`,
      );
    }
    const dir = join(this.root, "local-" + createHash("sha256").update(file).digest("hex").slice(0, 16));
    const link = join(dir, "model.bin");
    await mkdir(dir, { recursive: true });
    const current = await readFile(join(dir, ".source"), "utf8").catch(() => "");
    if (current !== file) {
      await rm(link, { force: true });
      await symlink(file, link);
      await writeFile(join(dir, ".source"), file);
    }
    return dir;
  }
}

/** Bytes of the files under a directory. */
async function du(path: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(path, { withFileTypes: true }).catch(() => [])) {
    const p = join(path, e.name);
    if (e.isDirectory()) total += await du(p);
    else if (e.isFile()) total += (await stat(p).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}
