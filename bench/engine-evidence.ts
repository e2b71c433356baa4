/**
 * Where the engine's time went (issue #14's root cause), in numbers that do not depend on how busy the
 * shared machine is:
 *  1. instructions (valgrind --tool=callgrind, 1 thread) for one 30 s encoder pass plus decoding of
 *     jfk.wav: whisper.cpp's CLI built from smart-whisper 0.8.1's sources (whisper.cpp 1.7.1, the old
 *     engine's code) against the CLI built from the sources kikitori's addon uses now (1.9.1);
 *  2. encoder passes on the engine benchmark's file: the old windowing (30 s windows cut at quiet
 *     points, whisper.cpp's own seek inside each, no conditioning) against the new one (speech-packed
 *     windows, one pass each, resuming at the last timestamp), counted by kikitori's addon.
 *
 *  3. wall time of whisper.cpp's CLI, old against new (rounds interleaved), and on busy cores with libgomp's
 *     default spinning against passive waits (the worker's setting);
 *  4. what beam 5 costs over greedy: whisper.cpp's own counters (encoder passes, decoder steps, tokens
 *     decoded in batches, temperature fallbacks) and CPU seconds of the CLI on one 30 s window, 1 thread;
 *  5. why the WER of the joined file jumped between weights types: the same clips joined as they are
 *     (45 dB apart in level) and levelled to one loudness, through kikitori's engine;
 *  6. where one transcription's time goes, against faster-whisper int8: whisper.cpp's own timers (ms per
 *     encoder pass, per decoder step, per prompt token) beside faster-whisper's encoder and generate() time,
 *     on the levelled file, 1 and 2 threads; with --baseline-cli, also whisper.cpp built without llamafile's
 *     matrix kernels (what kikitori shipped before);
 *  7. the lever left to an engine on CTranslate2 (faster-whisper's own core): kikitori's VAD chunks of the
 *     engine benchmark's file, one utterance each (as the engine cuts them) and packed into full windows,
 *     through CTranslate2's generate() in batches (bench/peers/ct2_batched.py), against faster-whisper's
 *     sequential pipeline, rounds interleaved; with each run's WER. Kept per model (--model and --ct2 name
 *     the same weights; default tiny.en).
 *
 *   node --import tsx bench/engine-evidence.ts --old-cli DIR/whisper-cli [--new-cli FILE] [--model FILE] [--out FILE]
 *     [--skip-callgrind] [--wall-rounds 5] [--only windowing,callgrind,wall,beam,levels,phases,batched]
 *     [--ct2 DIR] [--baseline-cli FILE] [--quant-model FILE]
 * Sections not in --only keep their values from the existing --out file.
 * The old CLI: `git show 7d62327:bench/peers/build-whisper-cli.sh` built smart-whisper's whisper.cpp.
 * The baseline CLI: the addon's build without llamafile's kernels, e.g.
 *   cmake -S src/whisper/native -B /tmp/nolf -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
 *     -DKIKITORI_LLAMAFILE=OFF -DWHISPER_CPP_DIR=$PWD/node_modules/nodejs-whisper/cpp/whisper.cpp \
 *     -DNODE_API_HEADERS_DIR=$PWD/node_modules/node-api-headers/include \
 *     -DNODE_ADDON_API_DIR=$PWD/node_modules/node-addon-api && cmake --build /tmp/nolf --target whisper-cli
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { defaultModelPath } from "../src/eval/cli.js";
import { errorRate, wordErrors } from "../src/eval/metrics.js";
import { modelFileName } from "../src/models/registry.js";
import { SILERO_VAD_MODEL } from "../src/models/silero-vad.js";
import { CHUNK_SAMPLES, PAUSE_SAMPLES, chunkAudio, type Chunk } from "../src/whisper/chunks.js";
import { quietestCut, SAMPLE_RATE } from "../src/whisper/energy.js";
import { workerEnvironment } from "../src/whisper/isolated.js";
import { DEFAULT_QUANTIZATION, quantizeModel, type QuantType } from "../src/models/quantize.js";
import { WhisperEngine } from "../src/whisper/index.js";
import { loadAddon, type WhisperParams } from "../src/whisper/native.js";
import { packWindow, packedLength, toSource } from "../src/whisper/windows.js";
import { levelPieces, speechPieces, writeSpeech } from "./lib/audio.js";
import { treeCpuSeconds } from "./lib/cpu.js";
import { fasterWhisper } from "./lib/peers.js";
import { defaultTestdata, header, root } from "./lib/env.js";
import { median } from "./lib/stats.js";

const { values: a } = parseArgs({
  options: {
    "old-cli": { type: "string" },
    "new-cli": {
      type: "string",
      default: join(homedir(), ".cache", "kikitori", "whisper-cli", "whisper-cli"),
    },
    model: { type: "string", default: defaultModelPath() },
    out: { type: "string", default: join(root, "bench", "results", "engine-evidence.json") },
    "skip-callgrind": { type: "boolean", default: false },
    /** Interleaved rounds of the wall-time comparisons (0: none). */
    "wall-rounds": { type: "string", default: "5" },
    /** label=callgrind.out,…: callgrind files of the addons called from Node (see bench/peers/addon-once.mjs). */
    "addon-callgrind": { type: "string" },
    only: { type: "string", default: "windowing,callgrind,wall,beam,levels,phases,batched" },
    /** faster-whisper's CTranslate2 weights of the same model (phases); default: the fixture's tiny.en. */
    ct2: { type: "string", default: join(homedir(), ".cache", "kikitori", "models", "ct2-tiny.en") },
    /** whisper.cpp's CLI built without llamafile's kernels (phases). */
    "baseline-cli": { type: "string" },
    /** The weights the phases compare (kikitori's default type), written from --model when missing. */
    "quant-model": { type: "string" },
  },
});
const log = (m: string) => process.stderr.write(`[evidence] ${m}\n`);
const tmp = mkdtempSync(join(tmpdir(), "kk-evidence-"));
const jfk = join(defaultTestdata(), "jfk.wav");

/** Total instructions and the functions with the largest share (callgrind_annotate's inclusive-free list). */
function callgrind(cli: string, label: string) {
  const outFile = join(tmp, `callgrind.${label}`);
  log(`callgrind ${label}: ${cli}`);
  const stderr = execFileSync(
    "valgrind",
    [
      "--tool=callgrind",
      `--callgrind-out-file=${outFile}`,
      cli,
      "-m",
      a.model!,
      "-f",
      jfk,
      "-t",
      "1",
      "-l",
      "en",
      "-bs",
      "1",
    ],
    { encoding: "utf8", stdio: ["ignore", "ignore", "pipe"], maxBuffer: 256 * 1024 ** 2 },
  );
  const runs = (what: string) =>
    Number(new RegExp(`${what} time =.*?/\\s*(\\d+) runs`).exec(stderr)?.[1] ?? NaN);
  return { ...annotated(outFile, label), encoderRuns: runs("encode"), decoderRuns: runs("decode") };
}

/** Total instructions of a callgrind file and its functions with the largest self cost. */
function annotated(outFile: string, label: string) {
  const annotate = execFileSync("callgrind_annotate", ["--threshold=95", outFile], {
    encoding: "utf8",
    maxBuffer: 256 * 1024 ** 2,
  });
  const total = Number(
    /([\d,]+)\s+\(100\.0%\)\s+PROGRAM TOTALS/.exec(annotate)?.[1]?.replace(/,/g, "") ?? NaN,
  );
  const top = [...annotate.matchAll(/^\s*([\d,]+)\s+\(\s*([\d.]+)%\)\s+\S*?:?([^\s(]+)/gm)]
    .slice(0, 6)
    .map((m) => ({
      function: m[3]!.replace(/^.*:/, ""),
      instructions: Number(m[1]!.replace(/,/g, "")),
      share: Number(m[2]) / 100,
    }));
  return { label, instructions: total, top };
}

/** Wall seconds of one whisper.cpp CLI run on jfk.wav (process start to exit: model load included). */
function cliSeconds(cli: string, threads: number, beam: number, env: NodeJS.ProcessEnv): number {
  const started = performance.now();
  execFileSync(cli, ["-m", a.model!, "-f", jfk, "-t", `${threads}`, "-l", "en", "-bs", `${beam}`], {
    stdio: "ignore",
    env,
  });
  return (performance.now() - started) / 1000;
}

/** Runs each configuration once per round, rounds interleaved; the median wall seconds of each. */
function interleaved(rounds: number, configs: { label: string; run: () => number }[]) {
  const times = configs.map(() => [] as number[]);
  for (let r = 0; r < rounds; r++) configs.forEach((c, i) => times[i]!.push(c.run()));
  return configs.map((c, i) => ({ label: c.label, seconds: times[i]!, median: median(times[i]!) }));
}

/**
 * What each whisper.cpp costs per pass, in wall time (callgrind of the old CLI ran over 50 minutes on
 * this machine), and what libgomp's spinning costs when other work holds the cores: two busy-looping
 * processes stand for the other instances and the service.
 */
function wallTimes(rounds: number) {
  const quiet = workerEnvironment(process.env);
  const versions = interleaved(
    rounds,
    [1, 2].flatMap((threads) => [
      ...(a["old-cli"]
        ? [{ label: `1.7.1, ${threads} thread(s)`, run: () => cliSeconds(a["old-cli"]!, threads, 1, quiet) }]
        : []),
      { label: `1.9.1, ${threads} thread(s)`, run: () => cliSeconds(a["new-cli"]!, threads, 1, quiet) },
    ]),
  );
  const hogs = [0, 1].map(() => spawn(process.execPath, ["-e", "for (;;) {}"], { stdio: "ignore" }));
  try {
    const spinning = { ...process.env };
    delete spinning.OMP_WAIT_POLICY;
    const busy = interleaved(rounds, [
      { label: "libgomp default (spin)", run: () => cliSeconds(a["new-cli"]!, 2, 5, spinning) },
      { label: "OMP_WAIT_POLICY=passive", run: () => cliSeconds(a["new-cli"]!, 2, 5, quiet) },
    ]);
    return { rounds, versions, busy };
  } finally {
    for (const h of hogs) h.kill("SIGKILL");
  }
}

/**
 * Beam 5 against greedy on one 30 s window (the levelled engine file's first 30 s), whisper.cpp's CLI,
 * 1 thread: its own counters (runs of the encoder; single-token decoder steps; tokens decoded in batches,
 * i.e. beams × steps; sampling runs; temperature fallbacks) and CPU seconds, median of interleaved rounds.
 */
function beamCost(window: string, rounds: number) {
  const run = (beam: number) => {
    const cpu0 = treeCpuSeconds()!;
    const r = spawnSync(
      a["new-cli"]!,
      ["-m", a.model!, "-f", window, "-t", "1", "-l", "en", "-bs", `${beam}`],
      { encoding: "utf8", env: workerEnvironment(process.env), maxBuffer: 64 * 1024 ** 2 },
    );
    const cpu = treeCpuSeconds()! - cpu0;
    const runs = (what: string) =>
      Number(new RegExp(`${what} time =.*?/\\s*(\\d+) runs`).exec(r.stderr)?.[1] ?? NaN);
    const fallbacks = /fallbacks =\s*(\d+) p \/\s*(\d+) h/.exec(r.stderr);
    return {
      cpu,
      counts: {
        encoderPasses: runs("encode"),
        decoderSteps: runs("decode"),
        batchedTokens: runs("batchd"),
        samplingRuns: runs("sample"),
        fallbacks: fallbacks ? Number(fallbacks[1]) + Number(fallbacks[2]) : NaN,
      },
      text: r.stdout
        .replace(/\[[^\]]*\]\s*/g, " ")
        .replace(/\s+/g, " ")
        .trim(),
    };
  };
  const results = [1, 5].map((beam) => ({ beam, cpu: [] as number[], counts: {}, text: "" }));
  for (let i = 0; i < rounds; i++)
    for (const x of results) {
      const r = run(x.beam);
      x.cpu.push(Math.round(r.cpu * 100) / 100);
      x.counts = r.counts;
      x.text = r.text;
    }
  return results.map((x) => ({ ...x, medianCpuSeconds: median(x.cpu) }));
}

/** whisper.cpp's own timers for one CLI run (whisper_print_timings), and its CPU seconds. */
function cliPhases(cli: string, model: string, audio: string, threads: number) {
  const cpu0 = treeCpuSeconds()!;
  const r = spawnSync(cli, ["-m", model, "-f", audio, "-t", `${threads}`, "-l", "en", "-bs", "1"], {
    encoding: "utf8",
    env: workerEnvironment(process.env),
    maxBuffer: 64 * 1024 ** 2,
  });
  if (r.status !== 0) throw new Error(`${cli} failed: ${r.stderr.slice(-500)}`);
  const timer = (what: string) => {
    const m = new RegExp(`${what} time =\\s*([\\d.]+) ms(?: /\\s*(\\d+) runs)?`).exec(r.stderr);
    return { ms: Number(m?.[1] ?? NaN), runs: Number(m?.[2] ?? NaN) };
  };
  const [encode, decode, batchd, prompt, sample, mel, total] = [
    "encode",
    "decode",
    "batchd",
    "prompt",
    "sample",
    "mel",
    "total",
  ].map(timer) as [ReturnType<typeof timer>, ...ReturnType<typeof timer>[]];
  return {
    cpuSeconds: treeCpuSeconds()! - cpu0,
    encoderPasses: encode.runs,
    encodeSeconds: encode.ms / 1000,
    decoderSteps: decode!.runs,
    // Decoding: single-token steps, batched tokens, each window's prompt and the sampling.
    decodeSeconds: (decode!.ms + batchd!.ms + prompt!.ms + sample!.ms) / 1000,
    promptTokens: prompt!.runs,
    melSeconds: mel!.ms / 1000,
    totalSeconds: total!.ms / 1000,
  };
}

/**
 * Where one greedy transcription of the levelled engine file spends its time, in each engine's own
 * clock: whisper.cpp's CLI (kikitori's build, and the baseline build when given) against faster-whisper
 * int8 on the same weights, 1 and 2 threads, rounds interleaved, medians. The CLI's "total" includes its
 * model load; faster-whisper's is the transcription alone.
 */
async function phases(audio: string, model: string, rounds: number) {
  const clis = [
    { label: "whisper.cpp CLI, llamafile kernels (kikitori's build)", cli: a["new-cli"]! },
    ...(a["baseline-cli"] ? [{ label: "whisper.cpp CLI, ggml's own kernels", cli: a["baseline-cli"] }] : []),
  ];
  const out: Array<Record<string, unknown>> = [];
  for (const threads of [1, 2]) {
    const fw = await fasterWhisper(a.ct2!, "int8", threads);
    try {
      await fw.transcribe(jfk, 1);
      const runs = new Map<string, Array<Record<string, number>>>();
      const push = (label: string, r: Record<string, number>) =>
        runs.set(label, [...(runs.get(label) ?? []), r]);
      for (let i = 0; i < rounds; i++) {
        for (const c of clis) push(c.label, cliPhases(c.cli, model, audio, threads));
        const cpu0 = treeCpuSeconds()!;
        const r = await fw.transcribe(audio, 1);
        const p = r.phases!;
        push("faster-whisper int8", {
          cpuSeconds: treeCpuSeconds()! - cpu0,
          encoderPasses: p.encodeRuns,
          encodeSeconds: p.encodeSeconds,
          decodeSeconds: p.generateSeconds,
          tokens: p.tokens,
          totalSeconds: r.wallSeconds,
        });
      }
      for (const [label, rs] of runs) {
        const med = (k: string) => median(rs.map((r) => r[k]!).filter((x) => Number.isFinite(x)));
        const keys = Object.keys(rs[0]!);
        out.push({ label, threads, ...Object.fromEntries(keys.map((k) => [k, med(k)])) });
      }
    } finally {
      await fw.close();
    }
  }
  return out;
}

/**
 * The engine file's WER with its clips joined as they are against levelled to one loudness, F16 and the
 * weights type whose WER was worst (q4_1), greedy, through kikitori's engine.
 */
async function levels(
  raw: { path: string; reference: string },
  levelled: { path: string; reference: string },
) {
  const out = [];
  for (const variant of ["f16", "q4_1"] as const) {
    const path = variant === "f16" ? a.model! : join(tmp, `model-${variant}.bin`);
    if (variant !== "f16") await quantizeModel(a.model!, path, variant);
    const engine = await WhisperEngine.load(path, { threads: 2 });
    try {
      const wer = async (f: { path: string; reference: string }) => {
        const t = await engine.transcribe(f.path, { language: "en" });
        return Math.round(errorRate(wordErrors(f.reference, t.text)) * 10000) / 10000;
      };
      out.push({ variant, asJoined: await wer(raw), levelled: await wer(levelled) });
    } finally {
      await engine.close();
    }
  }
  return out;
}

/**
 * Section 7: kikitori's VAD chunks (q8_0 engine's plan) written as raw PCM, one utterance per chunk and
 * packed (consecutive chunks joined while they fit one window), then decoded by CTranslate2 in batches.
 */
async function batched(
  file: { path: string; reference: string; seconds: number },
  quantModel: string,
  modelName: string,
) {
  const vadModel = join(dirname(a.model!), modelFileName(SILERO_VAD_MODEL));
  const engine = await WhisperEngine.load(quantModel, { threads: 2, vadModel });
  const dir = join(tmp, "chunks");
  mkdirSync(dir);
  let sets: Record<string, number>;
  try {
    const { plan, pcm } = (await engine.plan(file.path, { language: "en" }))!;
    const write = (name: string, chunks: Chunk[]) => {
      chunks.forEach((c, i) => {
        const { samples } = chunkAudio(pcm, c);
        writeFileSync(join(dir, `${name}-${String(i).padStart(3, "0")}.raw`), samples);
      });
      return chunks.length;
    };
    const utterances = plan.chunks.map((regions) => ({ regions }));
    // Packed as chunkAudio lays regions out: their audio with a pause between each two.
    const length = (regions: Chunk["regions"]) =>
      regions.reduce((n, [x, y]) => n + y - x, 0) + (regions.length - 1) * PAUSE_SAMPLES;
    const packed: Chunk[] = [];
    for (const c of utterances) {
      const last = packed.at(-1);
      if (last && length([...last.regions, ...c.regions]) <= CHUNK_SAMPLES) last.regions.push(...c.regions);
      else packed.push({ regions: [...c.regions] });
    }
    sets = { utterance: write("utterance", utterances), packed: write("packed", packed) };
  } finally {
    await engine.close();
  }
  const peer = spawnSync(
    "python3",
    [
      join(root, "bench", "peers", "ct2_batched.py"),
      ...["--model", a.ct2!, "--threads", "2", "--audio", file.path, "--chunks", dir, "--rounds", "2"],
    ],
    { encoding: "utf8", maxBuffer: 64 * 1024 ** 2, stdio: ["ignore", "pipe", "inherit"] },
  );
  if (peer.status !== 0) throw new Error(`ct2_batched.py exited with ${peer.status ?? peer.signal}`);
  const out = JSON.parse(peer.stdout) as {
    ctranslate2: string;
    runs: {
      label: string;
      beam: number;
      chunks: number | null;
      batch: number | null;
      seconds: number;
      text: string;
    }[];
  };
  const groups = new Map<string, typeof out.runs>();
  for (const r of out.runs) {
    const key = JSON.stringify([r.label, r.beam, r.chunks, r.batch]);
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const rows = [...groups.values()].map((rs) => ({
    label: rs[0]!.label,
    beam: rs[0]!.beam,
    chunks: rs[0]!.chunks,
    batch: rs[0]!.batch,
    seconds: rs.map((r) => Math.round(r.seconds * 1000) / 1000),
    wer: rs.map((r) => Math.round(errorRate(wordErrors(file.reference, r.text)) * 10000) / 10000),
  }));
  // Speed against faster-whisper in the same round (the machine is shared: ratios, not seconds, compare).
  const fw = (beam: number, round: number) =>
    rows.find((r) => r.beam === beam && r.chunks === null)!.seconds[round]!;
  return {
    ctranslate2: out.ctranslate2,
    audio: `the engine benchmark's file (${file.seconds.toFixed(1)} s, levelled clips, 1 s apart, 2.3 s more between passes); VAD chunks from kikitori's q8_0 engine (${sets.utterance} one utterance each, ${sets.packed} packed); CTranslate2 int8 of the same ${modelName} weights, 2 threads, 2 interleaved rounds`,
    rows: rows.map((r) => ({
      ...r,
      speedup: r.seconds.map((s, i) => Math.round((fw(r.beam, i) / s) * 100) / 100),
    })),
  };
}

function readPcm(path: string): Int16Array {
  const buf = execFileSync(
    "ffmpeg",
    ["-nostdin", "-v", "error", "-i", path, "-f", "s16le", "-ac", "1", "-ar", `${SAMPLE_RATE}`, "-"],
    {
      maxBuffer: 1024 ** 3,
    },
  );
  return new Int16Array(buf.buffer, buf.byteOffset, buf.length / 2);
}

/** Encoder passes and decoded text for the old and the new windowing, on the same addon and weights. */
async function windowing(pcm: Int16Array) {
  const model = await loadAddon().load(a.model!, { flashAttn: true });
  const base: WhisperParams = { threads: 2, language: "en", beamSize: 1, bestOf: 5, temperatureInc: 0.2 };
  try {
    // Old: ≤ 30 s windows cut at the quietest frame of their last 5 s; each whisper_full seeks on its own.
    const old = { windows: [] as { seconds: number; passes: number }[], text: "" };
    for (let at = 0; at < pcm.length;) {
      const end =
        pcm.length - at <= 30 * SAMPLE_RATE
          ? pcm.length
          : quietestCut(pcm, at + 25 * SAMPLE_RATE, at + 30 * SAMPLE_RATE);
      const r = await model.transcribe(pcm.subarray(at, end), { ...base, noContext: true });
      old.windows.push({ seconds: (end - at) / SAMPLE_RATE, passes: r.encoderPasses });
      old.text += r.segments.map((s) => s.text).join("");
      at = end;
    }
    // New: packed windows, one pass each, the next starting at the last complete segment.
    const now = {
      windows: [] as { seconds: number; passes: number }[],
      text: "",
      packedSeconds: packedLength(pcm) / SAMPLE_RATE,
    };
    let rest = pcm;
    let first = true;
    while (rest.length > 0) {
      const w = packWindow(rest, 30 * SAMPLE_RATE, { final: true });
      if (w.samples.length < SAMPLE_RATE / 10) break;
      const r = await model.transcribe(w.samples, { ...base, noContext: first, maxPasses: 1 });
      now.windows.push({ seconds: w.samples.length / SAMPLE_RATE, passes: r.encoderPasses });
      now.text += r.segments.map((s) => s.text).join("");
      const consumed = Math.round((r.consumedMs / 1000) * SAMPLE_RATE);
      rest = rest.subarray(
        consumed >= SAMPLE_RATE && consumed < w.samples.length
          ? toSource(w.spans, consumed, "start")
          : w.sourceLength,
      );
      first = false;
    }
    const passes = (x: { windows: { passes: number }[] }) => x.windows.reduce((n, w) => n + w.passes, 0);
    return { old: { ...old, passes: passes(old) }, new: { ...now, passes: passes(now) } };
  } finally {
    model.release();
  }
}

try {
  const only = new Set(a.only!.split(","));
  const pieces = speechPieces(defaultTestdata(), tmp);
  const speechPath = join(tmp, "engine.wav");
  const speech = writeSpeech(speechPath, pieces, 60, 1);
  const levelledPath = join(tmp, "engine-levelled.wav");
  const levelled = writeSpeech(levelledPath, levelPieces(pieces), 60, 1);
  let win: Awaited<ReturnType<typeof windowing>> | undefined;
  if (only.has("windowing")) {
    log(`windowing on ${speech.seconds.toFixed(1)} s`);
    win = await windowing(readPcm(speechPath));
    const wer = (text: string) => Math.round(errorRate(wordErrors(speech.reference, text)) * 10000) / 10000;
    Object.assign(win.old, { wer: wer(win.old.text) });
    Object.assign(win.new, { wer: wer(win.new.text) });
  }
  let beam: ReturnType<typeof beamCost> | undefined;
  if (only.has("beam")) {
    const window = join(tmp, "window-30s.wav");
    execFileSync("ffmpeg", ["-nostdin", "-v", "error", "-i", levelledPath, "-t", "30", window]);
    log("beam 5 against greedy: whisper.cpp's CLI, 1 thread, 30 s");
    beam = beamCost(window, 3);
  }
  const level = only.has("levels")
    ? await levels(
        { path: speechPath, reference: speech.reference },
        { path: levelledPath, reference: levelled.reference },
      )
    : undefined;
  const calls =
    a["skip-callgrind"] || !only.has("callgrind")
      ? []
      : [
          ...(a["old-cli"]
            ? [callgrind(a["old-cli"], "whisper.cpp 1.7.1 (smart-whisper 0.8.1's sources, its Makefile)")]
            : []),
          callgrind(a["new-cli"]!, "whisper.cpp 1.9.1 (kikitori's addon's sources and objects, GGML_NATIVE)"),
        ];
  let phase: Awaited<ReturnType<typeof phases>> | undefined;
  if (only.has("phases")) {
    const model = a["quant-model"] ?? join(tmp, `model-${DEFAULT_QUANTIZATION}.bin`);
    if (!a["quant-model"]) await quantizeModel(a.model!, model, DEFAULT_QUANTIZATION as QuantType);
    log(`phases: whisper.cpp's timers against faster-whisper int8 on ${levelled.seconds.toFixed(1)} s`);
    phase = await phases(levelledPath, model, 3);
  }
  let batch: Awaited<ReturnType<typeof batched>> | undefined;
  /** The model the batched section measured (its results are kept per model): "tiny.en", "base", … */
  const modelName = basename(a.model!)
    .replace(/^ggml-/, "")
    .replace(/\.bin$/, "");
  if (only.has("batched")) {
    const enginePath = join(tmp, "engine-125s.wav");
    const file = writeSpeech(enginePath, levelPieces(pieces), 120, 1, 2.3);
    const model = a["quant-model"] ?? join(tmp, `model-${DEFAULT_QUANTIZATION}.bin`);
    if (!existsSync(model)) await quantizeModel(a.model!, model, DEFAULT_QUANTIZATION as QuantType);
    log(`batched: kikitori's chunks through CTranslate2 on ${file.seconds.toFixed(1)} s`);
    batch = await batched({ ...file, path: enginePath }, model, modelName);
  }
  const rounds = Number(a["wall-rounds"]);
  const wall = rounds > 0 && only.has("wall") ? wallTimes(rounds) : undefined;
  const previous = (() => {
    try {
      return JSON.parse(readFileSync(a.out!, "utf8")) as Record<string, unknown>;
    } catch {
      return {};
    }
  })();
  const made = header(`node --import tsx bench/engine-evidence.ts ${process.argv.slice(2).join(" ")}`);
  const produced = Object.entries({
    windowing: win,
    wall,
    beam,
    levels: level,
    phases: phase,
    [`batched (${modelName})`]: batch,
  })
    .filter(([, v]) => v !== undefined)
    .concat(calls.length ? [["callgrind", calls]] : []);
  writeFileSync(
    a.out!,
    JSON.stringify(
      {
        ...made,
        // Sections not run keep their values, so each says which run made it.
        provenance: {
          ...(previous.provenance as Record<string, unknown> | undefined),
          ...Object.fromEntries(produced.map(([k]) => [k, { command: made.command, date: made.date }])),
        },
        audioSeconds: speech.seconds,
        windowing: win ?? previous.windowing,
        wall: wall ?? previous.wall,
        beam: beam ?? previous.beam,
        beamAudio:
          "the levelled engine file's first 30 s, tiny.en weights of --model, whisper.cpp's CLI, 1 thread, 3 interleaved rounds",
        levels: level ?? previous.levels,
        phases: phase ?? previous.phases,
        batched: {
          ...(previous.batched as Record<string, unknown> | undefined),
          ...(batch ? { [modelName]: batch } : {}),
        },
        phasesAudio: `the levelled engine file (${levelled.seconds.toFixed(1)} s, ${levelled.reference.split(/\s+/).length} words), tiny.en ${DEFAULT_QUANTIZATION} for whisper.cpp, CTranslate2 int8 of the same weights for faster-whisper, greedy, median of 3 interleaved rounds`,
        levelsAudio: `the test data's English clips joined with 1 s silences (${speech.seconds.toFixed(1)} s, ${speech.reference.split(/\s+/).length} words), as they are and levelled to -20 dBFS RMS; kikitori's engine, greedy, 2 threads`,
        wallAudio:
          "testdata/speech/jfk.wav (11 s), tiny.en F16, whisper.cpp's CLI; versions greedy, busy cores beam 5 on 2 threads",
        callgrind: calls.length ? calls : previous.callgrind,
        addon: a["addon-callgrind"]
          ? a["addon-callgrind"].split(",").map((kv) => {
              const [label, file] = kv.split("=");
              return annotated(file!, label!);
            })
          : previous.addon,
        callgrindAudio: "testdata/speech/jfk.wav (11 s: one encoder pass), tiny.en F16, 1 thread, greedy",
      },
      null,
      2,
    ) + "\n",
  );
  log(`wrote ${a.out}`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
