/**
 * Engine speed and accuracy on one long English file (the test data's clips concatenated with
 * one-second silences, ≥ 60 s in the full run): kikitori's engine (whisper.cpp through the addon, in
 * its worker process) against faster-whisper (CTranslate2 float32 and int8) and whisper.cpp's own CLI
 * (when bench/peers/build-whisper-cli.sh has built it), greedy and beam 5, same
 * thread count, same tiny.en weights. Every configuration is loaded once and warmed up, then the
 * configurations run interleaved (rep 1 of all, rep 2 of all, ...) so a busy moment on the shared
 * machine hits them alike. RTFx = audio seconds ÷ wall seconds; WER against the concatenated
 * references with Whisper's English normaliser (src/eval).
 */
import { execFile, execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { errorRate, wordErrors, type EditCounts } from "../src/eval/metrics.js";
import { WhisperEngine } from "../src/whisper/index.js";
import { root } from "./lib/env.js";
import { ct2ModelDir, fasterWhisper, type FasterWhisper } from "./lib/peers.js";
import { median, min, round } from "./lib/stats.js";

const execFileAsync = promisify(execFile);

export interface EngineSpeedOptions {
  audioPath: string;
  audioSeconds: number;
  reference: string;
  /** Transcribed once by each configuration before timing (undefined: no warm-up, smoke mode). */
  warmupPath?: string;
  modelPath: string;
  ct2?: string;
  wheel: string;
  threads: number;
  reps: number;
  beams: number[];
  computeTypes: string[];
  /** whisper.cpp's CLI binary; undefined or missing: not run, with a note. */
  whisperCli?: string;
  log: (msg: string) => void;
}

/**
 * AVX/FMA instructions in the native addon kikitori's CPU engine loads (objdump): none would mean a
 * baseline SSE build, which alone explains a large speed gap on a CPU that has AVX2.
 */
function addonSimd(): string | undefined {
  const binary = join(root, "node_modules", "smart-whisper", "build", "Release", "smart-whisper.node");
  if (!existsSync(binary)) return undefined;
  try {
    const asm = execFileSync("objdump", ["-d", "--no-show-raw-insn", binary], {
      maxBuffer: 512 * 1024 ** 2,
      encoding: "utf8",
    });
    const count = (re: RegExp) => asm.match(re)?.length ?? 0;
    const avx = count(/\tv(mul|add|fmadd\d*)[sp][sd]\b/g);
    const fma = count(/\tvfmadd/g);
    const cpuAvx2 = /\bavx2\b/.test(readFileSync("/proc/cpuinfo", "utf8"));
    return (
      `kikitori's CPU engine loads node_modules/smart-whisper/build/Release/smart-whisper.node: ${avx} AVX arithmetic and ${fma} FMA instructions in it (objdump)` +
      (avx === 0 ? `, i.e. a baseline SSE build, while this CPU ${cpuAvx2 ? "has" : "lacks"} AVX2.` : ".")
    );
  } catch {
    return undefined;
  }
}

/**
 * whisper.cpp's own CLI (`main`, built by bench/peers/build-whisper-cli.sh from the whisper.cpp
 * sources smart-whisper ships): one process per file, so its wall time is the process's minus the
 * model load time it prints.
 */
async function whisperCli(cli: string, model: string, threads: number, path: string, beam: number) {
  const started = performance.now();
  const { stdout, stderr } = await execFileAsync(
    cli,
    ["-m", model, "-f", path, "-t", `${threads}`, "-l", "en", "-bs", `${beam}`, "-nt"],
    { maxBuffer: 64 * 1024 ** 2 },
  );
  const wall = (performance.now() - started) / 1000;
  const load = Number(/load time =\s*([\d.]+) ms/.exec(stderr)?.[1] ?? 0) / 1000;
  return { text: stdout.replace(/\s+/g, " ").trim(), wallSeconds: wall - load };
}

export interface EngineConfigResult {
  engine: string;
  beam: number;
  wallSeconds: number[];
  minWallSeconds: number;
  medianWallSeconds: number;
  rtfxMedian: number;
  rtfxBest: number;
  wer: number;
  counts: EditCounts;
  hypothesis: string;
}

interface Config {
  engine: string;
  beam: number;
  run: (path: string) => Promise<{ text: string; wallSeconds: number }>;
}

export async function runEngineSpeed(o: EngineSpeedOptions) {
  const engine = await WhisperEngine.load(o.modelPath, { threads: o.threads });
  const peers: { computeType: string; fw: FasterWhisper }[] = [];
  let ct2: { dir: string; cleanup: () => void } | undefined;
  const notes: string[] = [];
  const simd = addonSimd();
  if (simd) notes.push(simd);
  try {
    const configs: Config[] = [];
    for (const beam of o.beams)
      configs.push({
        engine: "kikitori (whisper.cpp via smart-whisper)",
        beam,
        run: async (path) => {
          const t = performance.now();
          const r = await engine.transcribe(path, { language: "en", beamSize: beam > 1 ? beam : undefined });
          return { text: r.text, wallSeconds: (performance.now() - t) / 1000 };
        },
      });
    if (o.whisperCli && existsSync(o.whisperCli)) {
      const cli = o.whisperCli;
      for (const beam of o.beams)
        configs.push({
          engine: "whisper.cpp CLI",
          beam,
          run: (path) => whisperCli(cli, o.modelPath, o.threads, path, beam),
        });
    } else
      notes.push(
        `whisper.cpp CLI: not run: ${o.whisperCli ?? "no binary"} does not exist (bench/peers/build-whisper-cli.sh builds it from node_modules/smart-whisper/whisper.cpp).`,
      );
    try {
      ct2 = ct2ModelDir(o.ct2, o.wheel);
      for (const computeType of o.computeTypes) {
        const fw = await fasterWhisper(ct2.dir, computeType, o.threads);
        peers.push({ computeType, fw });
        for (const beam of o.beams)
          configs.push({
            engine: `faster-whisper ${computeType}`,
            beam,
            run: (path) => fw.transcribe(path, beam),
          });
      }
    } catch (e) {
      notes.push(`faster-whisper: not run: ${(e as Error).message}`);
    }
    if (o.warmupPath) for (const c of configs) await c.run(o.warmupPath);
    const walls = configs.map(() => [] as number[]);
    const texts: string[] = [];
    for (let rep = 0; rep < o.reps; rep++)
      for (const [i, c] of configs.entries()) {
        const r = await c.run(o.audioPath);
        walls[i]!.push(r.wallSeconds);
        texts[i] ??= r.text;
        o.log(`engine-speed: rep ${rep + 1} ${c.engine} beam ${c.beam}: ${r.wallSeconds.toFixed(2)} s`);
      }
    const results: EngineConfigResult[] = configs.map((c, i) => {
      const counts = wordErrors(o.reference, texts[i]!);
      return {
        engine: c.engine,
        beam: c.beam,
        wallSeconds: walls[i]!.map((w) => round(w, 3)),
        minWallSeconds: round(min(walls[i]!), 3),
        medianWallSeconds: round(median(walls[i]!), 3),
        rtfxMedian: round(o.audioSeconds / median(walls[i]!), 2),
        rtfxBest: round(o.audioSeconds / min(walls[i]!), 2),
        wer: round(errorRate(counts), 4),
        counts,
        hypothesis: texts[i]!,
      };
    });
    // kikitori ÷ each peer configuration with the same beam: speed (RTFx) and WER.
    const ratios = results
      .filter((r) => !r.engine.startsWith("kikitori"))
      .map((fw) => {
        const kk = results.find((r) => r.engine.startsWith("kikitori") && r.beam === fw.beam)!;
        return {
          versus: fw.engine,
          beam: fw.beam,
          speedRatio: round(kk.rtfxMedian / fw.rtfxMedian, 3),
          werRatio: fw.wer > 0 ? round(kk.wer / fw.wer, 2) : null,
          werDifference: round(kk.wer - fw.wer, 4),
        };
      });
    const addon = JSON.parse(
      readFileSync(join(root, "node_modules", "smart-whisper", "package.json"), "utf8"),
    ) as { version: string };
    return {
      audioSeconds: round(o.audioSeconds, 2),
      threads: o.threads,
      reps: o.reps,
      warmup: o.warmupPath !== undefined,
      model: "tiny.en (ggml for kikitori; CTranslate2 conversion of the same weights for faster-whisper)",
      decoding: "English, no VAD, temperature fallback as each engine defaults; beam as listed",
      versions: {
        "smart-whisper (kikitori's CPU engine)": addon.version,
        ...(peers[0]
          ? {
              faster_whisper: peers[0].fw.versions.faster_whisper,
              ctranslate2: peers[0].fw.versions.ctranslate2,
              python: peers[0].fw.versions.python,
            }
          : {}),
      },
      configs: results,
      ratios,
      notes,
    };
  } finally {
    await engine.close();
    for (const p of peers) await p.fw.close();
    ct2?.cleanup();
  }
}
