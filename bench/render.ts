/**
 * Renders BENCHMARKS.md (and its SVG figures, next to the results) from the suite's result files.
 * Every figure carries the command, the machine, the versions and the date of the run behind it.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { barChart, type Bar } from "./lib/svg.js";
import type { Machine } from "./lib/env.js";
import type { Json } from "./lib/service.js";

const TARGETS = {
  overheadP50Ms: 20,
  enqueueToStartP50Ms: 5,
  acceptsPerSecond: 2000,
  toInServiceMs: 1500,
  longServiceRssMB: 300,
  hostsSpeedup: 1.6,
  /** One long file on 2 instances of 1 thread against 1: ≥ 0.8 · N. */
  chunksSpeedup: 1.6,
  /** Compute until done after a kill at ~60 %, against the uninterrupted run. */
  resumeCost: 1.2,
};

const MiB_TO_MB = 1.048576;

function read(out: string, name: string): Json | undefined {
  const path = join(out, `${name}.json`);
  return existsSync(path) ? (JSON.parse(readFileSync(path, "utf8")) as Json) : undefined;
}

const fmt = (x: unknown, digits = 1) =>
  typeof x === "number" && Number.isFinite(x) ? x.toFixed(digits) : "–";
const pct = (x: unknown) => (typeof x === "number" && Number.isFinite(x) ? `${(x * 100).toFixed(1)} %` : "–");

function machineLine(r: Json): string {
  const m = r.machine as Machine & { note?: string };
  const versions = [`node ${m.node}`, m.sqlite && `SQLite ${m.sqlite}`, m.commit && `kikitori ${m.commit}`]
    .filter(Boolean)
    .join(", ");
  return `${m.cores} cores, ${m.cpuModel}, ${m.memoryGiB} GiB; ${versions}; ${r.date}`;
}

function caption(r: Json): string[] {
  const load = r.quiet
    ? [
        `1-minute load average: ${fmt(r.quiet.loadAtStart, 2)} at the start, ${fmt(r.quiet.loadAtEnd?.[0], 2)} at the end`,
      ]
    : [];
  return [`command: ${r.command}`, `machine: ${machineLine(r)}`, ...load];
}

/** "met" or "missed by N unit (x times the target)". */
function verdict(value: number | undefined, target: number, lowerIsBetter: boolean, unit: string): string {
  if (value === undefined || !Number.isFinite(value)) return "not measured";
  const ok = lowerIsBetter ? value <= target : value >= target;
  if (ok) return "**met**";
  const by = Math.abs(value - target);
  const share = (100 * by) / target;
  return `**missed** by ${by.toFixed(1)} ${unit} (${share.toFixed(1)} % ${lowerIsBetter ? "over" : "short of"} the target)`;
}

function table(head: string[], rows: (string | number)[][]): string {
  return [
    `| ${head.join(" | ")} |`,
    `| ${head.map(() => "---").join(" | ")} |`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
}

/** One long file across instances: the speed-up table and the resume cost. */
function chunksAcrossInstances(c: Json): string {
  const su = c.speedUp;
  const row = (what: string, r: Json) => [
    what,
    `${fmt(r.wallSeconds, 1)} s`,
    `${fmt(r.cpuSeconds, 1)} s`,
    pct(r.wer),
    `${r.chunks}`,
  ];
  const killed = (what: string, r: Json) => [
    what,
    `${fmt(r.wallSeconds, 1)} s (${fmt(r.wallRatio, 2)}×)`,
    `${fmt(r.cpuSeconds, 1)} s (**${fmt(r.cpuRatio, 2)}×**, target ≤ ${TARGETS.resumeCost}×)`,
    `${r.attempts}`,
    `${r.resumedChunks} of ${r.chunks}`,
    r.sameWords ? "yes" : "no",
  ];
  return [
    `The file's chunks (${c.file.chunks} of them, ${fmt(c.file.seconds / 60, 1)} minutes of audio) are leased by every idle instance of the endpoint; ` +
      "each instance is the built-in server with 1 thread (`KIKITORI_THREADS=1`), one invocation at a time. CPU: user + system seconds of the service and all its processes, sampled every 200 ms.",
    "",
    table(
      ["instances", "wall", "CPU", "WER", "chunks"],
      [row("1", su.oneInstance), row("2", su.twoInstances), ["4", su.fourInstances, "", "", ""]],
    ),
    "",
    `Speed-up 2 vs 1: **${fmt(su.ratio, 2)}×** (target ≥ ${TARGETS.chunksSpeedup}×: ${verdict(su.ratio, TARGETS.chunksSpeedup, false, "×")}); ` +
      `transcript identical in words: ${su.identicalWords ? "yes" : `no (WER difference ${fmt(su.werDifferencePoints, 2)} points; target ≤ 0.5)`}.`,
    "",
    `Resume: killed (SIGKILL) at ${fmt(c.resume.killAt * 100, 0)} % of the file, against the uninterrupted run on 1 instance.`,
    "",
    table(
      ["killed", "wall until done", "CPU until done", "attempts", "chunks from the store", "same words"],
      [
        killed("the instance (its model server)", c.resume.instanceKilled),
        killed("the service (started again at once)", c.resume.serviceKilled),
      ],
    ),
  ].join("\n");
}

/** The long-audio quality table: kikitori (VAD and vad=false) beside faster-whisper's batched pipeline. */
function longQuality(long: Json): string {
  const k = long.quality?.kikitori ?? {};
  const f = long.quality?.fasterWhisper ?? {};
  const cell = (r: Json) => (r ? `${pct(r.wer)} (${fmt(r.wallSeconds, 1)} s)` : "—");
  const rows = [
    ["long file in one piece", k.long, k.longNoVad, f.long],
    ["one pass on its own (short pieces)", k.pass, undefined, f.pass],
    ["mixed file in one piece", k.mixed, k.mixedNoVad, f.mixed],
    ["mixed file's clips one by one", k.mixedClips, undefined, f.mixedClips],
  ];
  const versions = long.peerVersions
    ? ` faster-whisper ${long.peerVersions.faster_whisper} (ctranslate2 ${long.peerVersions.ctranslate2}, ${long.peerVersions.compute_type}, ${long.peerVersions.threads} threads), BatchedInferencePipeline, batch 8, greedy.`
    : f.skipped
      ? ` faster-whisper not run: ${f.skipped}.`
      : "";
  return [
    `WER against the references (wall time). kikitori: greedy, 2 threads, one instance; VAD is the default for audio over 30 s.${versions}`,
    "",
    table(
      ["audio", "kikitori (VAD)", "kikitori vad=false", "faster-whisper batched"],
      rows.map(([name, a, b, c]) => [name as string, cell(a), cell(b), cell(c)]),
    ),
    ...peerDeletions(f.long),
  ].join("\n");
}

/**
 * What faster-whisper's batched pipeline loses on the long file: mostly words it never transcribed. Its
 * Silero VAD runs on the audio as recorded and does not find the quiet clips (the test data's FLEURS clips,
 * about −65 dBFS); kikitori's runs on a level-evened copy (src/whisper/chunks.ts `speechLevelled`).
 */
function peerDeletions(r: Json): string[] {
  const c = r?.counts;
  if (!c) return [];
  const errors = c.substitutions + c.deletions + c.insertions;
  return [
    "",
    `faster-whisper's batched errors on the long file: ${c.deletions} of ${errors} are deletions (${c.deletions} of ${c.referenceLength} reference words never transcribed): its Silero VAD runs on the audio as recorded and misses the quiet clips (the FLEURS clips, about −65 dBFS) and more (on one pass of the four clips, by hand: it kept one FLEURS clip and the end of JFK's); kikitori runs VAD on a level-evened copy of the audio.`,
  ];
}

/** Renders from whatever result files `out` holds; the command and mode are those of the runs behind them. */
export function render(out: string, mdPath: string): void {
  const figures = join(out, "figures");
  mkdirSync(figures, { recursive: true });
  const figure = (name: string, svg: string, alt: string) => {
    writeFileSync(join(figures, `${name}.svg`), svg);
    return `![${alt}](${relative(dirname(mdPath), join(figures, `${name}.svg`))})`;
  };
  const platform = read(out, "platform");
  const engine = read(out, "engine-speed");
  const engineBase = read(out, "engine-speed-base");
  const sfz = read(out, "scale-from-zero");
  const long = read(out, "long-audio");
  const longChunks = read(out, "long-chunks");
  const growth = read(out, "growth");
  const hosts = read(out, "hosts-scale");
  const quality = read(out, "engine-quality");
  const first = [platform, engine, sfz, long, growth].find((r) => r?.machine);
  const run = { command: String(first?.command ?? "npm run bench"), smoke: first?.mode === "smoke" };
  const s: string[] = [];
  s.push(
    "# kikitori benchmarks",
    "",
    `Generated by \`${run.command}\` (bench/run.ts) from \`${relative(dirname(mdPath), out) || "."}/*.json\`; do not edit by hand.` +
      (run.smoke
        ? " **Smoke mode: tiny counts and short audio; these numbers only show that the suite runs.**"
        : ""),
    "",
    first ? `Machine: ${machineLine(first)}.` : "",
    "",
    table(
      [
        "part",
        "command",
        "date",
        "1-min load at start",
        "load at end (1/5/15 min)",
        "waited for a quieter machine",
        "elapsed",
      ],
      (
        [
          ["platform", platform],
          ["engine speed", engine],
          ["scale from zero", sfz],
          ["scale across hosts", hosts],
          ["long audio", long],
          ["one long file across instances", longChunks],
          ["cost of growth", growth],
          ["per-clip quality", quality],
        ] as [string, Json][]
      )
        .filter(([, r]) => r?.quiet)
        .map(([name, r]) => [
          name,
          `\`${r.command}\``,
          r.date,
          fmt(r.quiet.loadAtStart, 2),
          (r.quiet.loadAtEnd ?? []).join(" / "),
          `${r.quiet.waitedSeconds} s`,
          `${r.elapsedSeconds} s`,
        ]),
    ),
    "",
    "The machine is shared with other work: compare figures within one run (the ratios), not across runs. " +
      "State store: **SQLite (WAL)** and **PostgreSQL** side by side in the platform part (one service per store, phases interleaved); the other parts run on SQLite. " +
      "The service runs as `kikitori serve` in a child process and the benchmark is only its client (no shared event loop).",
    "",
  );

  // --- targets ---
  const noop = platform?.noopLatency;
  const tput = platform?.noopThroughput;
  const pgNoop = platform?.postgres?.noopLatency;
  const pgTput = platform?.postgres?.noopThroughput;
  const acceptOnly = platform?.acceptOnly;
  const pgAcceptOnly = platform?.postgres?.acceptOnly;
  const sfzNoop = sfz?.results?.["noop (local-command model server)"];
  const sfzTiny = sfz?.results?.["kikitori/whisper tiny.en (builtin)"];
  const longRssMB = long?.memory ? long.memory.servicePeakMiB * MiB_TO_MB : undefined;
  const whileWorking = (t: Json | undefined) =>
    `accepted invocations/s while ${t ? t.instances * t.maxConcurrentPerInstance : "?"} no-op slots complete work on the same 2 cores`;
  const chunks = longChunks && !longChunks.error && !longChunks.skipped ? (longChunks as Json) : undefined;
  const targetRows: string[][] = [
    [
      "end-to-end overhead p50 (no-op model, total − model time)",
      `≤ ${TARGETS.overheadP50Ms} ms`,
      `${fmt(noop?.overheadMs?.p50, 0)} ms`,
      verdict(noop?.overheadMs?.p50, TARGETS.overheadP50Ms, true, "ms"),
    ],
    [
      "enqueue→start p50 (no-op model)",
      `≤ ${TARGETS.enqueueToStartP50Ms} ms`,
      `${fmt(noop?.enqueueToStartMs?.p50, 0)} ms`,
      verdict(noop?.enqueueToStartMs?.p50, TARGETS.enqueueToStartP50Ms, true, "ms"),
    ],
    [
      whileWorking(tput),
      `≥ ${TARGETS.acceptsPerSecond}`,
      `${fmt(tput?.acceptedPerSecond, 0)}/s`,
      verdict(tput?.acceptedPerSecond, TARGETS.acceptsPerSecond, false, "/s"),
    ],
    [
      "accepted invocations/s, burst into a busy endpoint (the service only accepts)",
      `≥ ${TARGETS.acceptsPerSecond}`,
      `${fmt(acceptOnly?.acceptedPerSecond, 0)}/s`,
      verdict(acceptOnly?.acceptedPerSecond, TARGETS.acceptsPerSecond, false, "/s"),
    ],
    [
      "enqueue→start p50 (no-op model), PostgreSQL",
      `≤ ${TARGETS.enqueueToStartP50Ms} ms`,
      `${fmt(pgNoop?.enqueueToStartMs?.p50, 0)} ms`,
      verdict(pgNoop?.enqueueToStartMs?.p50, TARGETS.enqueueToStartP50Ms, true, "ms"),
    ],
    [
      `${whileWorking(pgTput)}, PostgreSQL`,
      `≥ ${TARGETS.acceptsPerSecond}`,
      `${fmt(pgTput?.acceptedPerSecond, 0)}/s`,
      verdict(pgTput?.acceptedPerSecond, TARGETS.acceptsPerSecond, false, "/s"),
    ],
    [
      "accepted invocations/s, burst into a busy endpoint, PostgreSQL",
      `≥ ${TARGETS.acceptsPerSecond}`,
      `${fmt(pgAcceptOnly?.acceptedPerSecond, 0)}/s`,
      verdict(pgAcceptOnly?.acceptedPerSecond, TARGETS.acceptsPerSecond, false, "/s"),
    ],
    [
      "scale from zero to InService, no-op model (median)",
      `≤ ${TARGETS.toInServiceMs} ms`,
      `${fmt(sfzNoop?.medianToInServiceMs, 0)} ms`,
      verdict(sfzNoop?.medianToInServiceMs, TARGETS.toInServiceMs, true, "ms"),
    ],
    [
      "scale from zero to InService, tiny.en (median)",
      `≤ ${TARGETS.toInServiceMs} ms`,
      typeof sfzTiny === "object" ? `${fmt(sfzTiny?.medianToInServiceMs, 0)} ms` : String(sfzTiny ?? "–"),
      verdict(
        typeof sfzTiny === "object" ? sfzTiny?.medianToInServiceMs : undefined,
        TARGETS.toInServiceMs,
        true,
        "ms",
      ),
    ],
    [
      "a batch on 2 worker hosts vs 1 (speedup, same run)",
      `≥ ${TARGETS.hostsSpeedup}×`,
      hosts?.speedup !== undefined ? `${fmt(hosts.speedup, 2)}×` : "–",
      verdict(hosts?.speedup, TARGETS.hostsSpeedup, false, "×"),
    ],
    [
      "one long file on 2 instances vs 1, 1 thread each (speedup, same run)",
      `≥ ${TARGETS.chunksSpeedup}×`,
      chunks ? `${fmt(chunks.speedUp.ratio, 2)}×` : "–",
      verdict(chunks?.speedUp.ratio, TARGETS.chunksSpeedup, false, "×"),
    ],
    ...(["instanceKilled", "serviceKilled"] as const).map((k) => [
      `long file, ${k === "instanceKilled" ? "instance" : "service"} killed at ${fmt((chunks?.resume.killAt ?? 0.6) * 100, 0)} %: CPU until done ÷ uninterrupted`,
      `≤ ${TARGETS.resumeCost}×`,
      chunks ? `${fmt(chunks.resume[k].cpuRatio, 2)}×` : "–",
      verdict(chunks?.resume[k].cpuRatio, TARGETS.resumeCost, true, "×"),
    ]),
    [
      "long audio: peak RSS of the service",
      `≤ ${TARGETS.longServiceRssMB} MB`,
      `${fmt(longRssMB, 0)} MB`,
      verdict(longRssMB, TARGETS.longServiceRssMB, true, "MB"),
    ],
  ];
  const losses = targetRows
    .filter((r) => r[3]!.startsWith("**missed**"))
    .map((r) => `${r[0]}: ${r[2]} against ${r[1]}, ${r[3]}`);
  for (const [table, list] of [
    ["model load excluded", engine?.ratios ?? []],
    ["model load included", engine?.loadIncludedRatios ?? []],
    ["base, model load excluded", engineBase?.ratios ?? []],
    ["base, model load included", engineBase?.loadIncludedRatios ?? []],
  ] as [string, Json[]][])
    for (const r of list) {
      // Against whisper.cpp's own CLI the goal is parity (within 10 %); against faster-whisper, 1.2× ahead.
      const goal = String(r.versus).startsWith("whisper.cpp") ? 0.9 : 1.2;
      if (r.speedRatio < goal)
        losses.push(
          `engine speed (${table}), kikitori ${r.kikitori} vs ${r.versus}, beam ${r.beam}: RTFx ratio ${fmt(r.speedRatio, 3)} (goal ≥ ${goal})`,
        );
      if (r.werDifference > 0.005)
        losses.push(
          `accuracy (${table}), kikitori ${r.kikitori} vs ${r.versus}, beam ${r.beam}: kikitori's WER is ${(r.werDifference * 100).toFixed(1)} points higher`,
        );
    }
  const lq = long?.quality?.kikitori;
  if (lq?.long && lq.long.wer > lq.pass.wer + 0.01)
    losses.push(
      `long audio: the ${fmt(long.audioSeconds / 60, 0)}-minute file in one piece has ${pct(lq.long.wer)} WER against ${pct(lq.pass.wer)} for the same speech in short pieces (target: within 1 point)`,
    );
  if (lq?.mixed && lq.mixed.wer > lq.mixedClips.wer + 0.01)
    losses.push(
      `long audio: the mixed loud/quiet file in one piece has ${pct(lq.mixed.wer)} WER against ${pct(lq.mixedClips.wer)} for its clips one by one (target: within 1 point)`,
    );
  if (chunks && !chunks.speedUp.identicalWords && chunks.speedUp.werDifferencePoints > 0.5)
    losses.push(
      `one long file on 2 instances: the transcript differs from 1 instance's by ${fmt(chunks.speedUp.werDifferencePoints, 2)} WER points (target: identical words or within 0.5)`,
    );
  const fq = long?.quality?.fasterWhisper;
  for (const name of ["long", "mixed"])
    if (lq?.[name] && fq?.[name] && lq[name].wer > fq[name].wer + 0.005)
      losses.push(
        `long audio (${name} file): kikitori's WER ${pct(lq[name].wer)} against faster-whisper batched ${pct(fq[name].wer)}`,
      );
  for (const e of (quality?.engines ?? []) as Json[]) {
    const kk = (quality?.engines as Json[]).find((x) => x.name === "kikitori");
    if (kk && e !== kk && kk.overall?.rate > e.overall?.rate)
      losses.push(
        `per-clip accuracy vs ${e.name}: WER ${pct(kk.overall.rate)} against ${pct(e.overall.rate)} over the English clips`,
      );
  }
  for (const [k, g] of Object.entries((growth?.growth ?? {}) as Record<string, Json>))
    if (g.verdict === "superlinear")
      losses.push(`cost of growth: ${k} grows superlinearly (exponents ${g.exponents.join(", ")})`);
  s.push(
    "## Targets",
    "",
    table(["figure", "target", "measured", "verdict"], targetRows),
    "",
    "## Where kikitori loses",
    "",
    ...(losses.length ? losses.map((l) => `- ${l}`) : ["- Nowhere in this run."]),
    "",
  );

  // --- engine speed (tiny.en; the multilingual base model when that part ran) ---
  const engineSection = (engine: Json | undefined, title: string, figureName: string) => {
    s.push(`## ${title}`, "");
    if (!engine) s.push("Not run.", "");
    else if (engine.error || engine.skipped) s.push(`Not run: ${engine.error ?? engine.skipped}`, "");
    else {
      const configTable = (configs: Json[]) =>
        table(
          [
            "engine",
            "weights",
            "beam",
            "RTFx median",
            "RTFx best",
            "wall median s",
            "wall min s",
            "CPU median s",
            "WER",
          ],
          configs.map((c: Json) => [
            c.engine,
            c.variant,
            c.beam,
            fmt(c.rtfxMedian, 2),
            fmt(c.rtfxBest, 2),
            fmt(c.medianWallSeconds, 2),
            fmt(c.minWallSeconds, 2),
            fmt(c.medianCpuSeconds, 2),
            pct(c.wer),
          ]),
        );
      const ratioTable = (ratios: Json[]) =>
        table(
          [
            "kikitori",
            "versus",
            "beam",
            "speed ratio",
            "CPU ratio",
            "WER difference",
            "where kikitori stands",
          ],
          ratios.map((r: Json) => [
            r.kikitori,
            r.versus,
            r.beam,
            fmt(r.speedRatio, 3),
            fmt(r.cpuRatio, 3),
            `${(r.werDifference * 100).toFixed(1)} pts`,
            [
              r.speedRatio < 1
                ? `**slower, ${(1 / r.speedRatio).toFixed(2)}× the wall time**`
                : `faster, ${r.speedRatio.toFixed(2)}×`,
              r.werDifference > 0
                ? `less accurate by ${(r.werDifference * 100).toFixed(1)} WER points`
                : r.werDifference < 0
                  ? `more accurate by ${(-r.werDifference * 100).toFixed(1)} points`
                  : "same WER",
            ].join("; "),
          ]),
        );
      // Results made before the levelled file (no word count, no CPU time) describe another file.
      if (engine.words === undefined)
        s.push(
          '> Stale until the next `npm run bench -- --parts engine`: these tables come from the old 60 s file (clips 45 dB apart in level, see "Why the engine was slow" 7), before the default weights became q8_0 and before CPU time was measured.',
          "",
        );
      s.push(
        `${fmt(engine.audioSeconds, 1)} s of English speech, ${engine.words ?? "?"} words (the test data's clips levelled to one loudness and joined with 1 s silences, repeated with 2.3 s more between passes), ${engine.model ?? "tiny.en"}, ${engine.threads} threads each, ` +
          `${engine.reps} interleaved repetitions${engine.warmup ? " after a warm-up" : " without a warm-up"}; RTFx = audio seconds ÷ wall seconds (median and best); CPU s: CPU time of the engine's processes per run (median), which the neighbours on a shared machine disturb far less than wall time. ` +
          `WER against the joined references, Whisper's English normaliser. kikitori's default weights: **${engine.defaultVariant}**. ${engine.decoding}. Versions: ${Object.entries(
            engine.versions,
          )
            .map(([k, v]) => `${k} ${v}`)
            .join(", ")}.`,
        "",
        "### Model load excluded (each configuration loaded once, warmed up)",
        "",
        configTable(engine.configs),
        "",
        "Ratios: kikitori's default weights ÷ each faster-whisper configuration, and each kikitori weights ÷ the CLI on the same weights, at the same beam (speed: RTFx ratio, above 1 means kikitori is faster; CPU ratio: the peer's CPU seconds ÷ kikitori's, above 1 means kikitori needs less CPU; WER difference: negative means kikitori is more accurate):",
        "",
        ratioTable(engine.ratios),
        "",
        ...(engine.loadIncluded
          ? [
              "### Model load included (load, transcribe, unload per run: kikitori's worker process start, the CLI's whole process, faster-whisper's model construction)",
              "",
              configTable(engine.loadIncluded),
              "",
              ratioTable(engine.loadIncludedRatios),
              "",
            ]
          : []),
        ...(engine.variants
          ? [
              "### Quantized weights (written by `kikitori models quantize`; speed and WER in the tables above)",
              "",
              `The rule for the default: the fastest weights at beam 1 (in CPU time) whose WER is within 0.5 points of F16. In this run that is **${engine.recommendedVariant}**; kikitori's default is **${engine.defaultVariant}**${engine.recommendedVariant === engine.defaultVariant ? " (they agree)" : " (they differ: see the notes)"}.`,
              "",
              table(
                [
                  "weights",
                  "file MB",
                  "beam 1 RTFx",
                  "beam 1 CPU s",
                  "beam 1 WER",
                  "beam 5 RTFx",
                  "beam 5 CPU s",
                  "beam 5 WER",
                ],
                (engine.variants as Json[]).map((v: Json) => {
                  const at = (beam: number) =>
                    (engine.configs as Json[]).find(
                      (c) => c.engine === "kikitori" && c.variant === v.variant && c.beam === beam,
                    );
                  return [
                    v.variant === engine.defaultVariant ? `**${v.variant}** (default)` : v.variant,
                    fmt(v.bytes / 1e6, 1),
                    fmt(at(1)?.rtfxMedian, 2),
                    fmt(at(1)?.medianCpuSeconds, 2),
                    pct(at(1)?.wer),
                    fmt(at(5)?.rtfxMedian, 2),
                    fmt(at(5)?.medianCpuSeconds, 2),
                    pct(at(5)?.wer),
                  ];
                }),
              ),
              "",
            ]
          : []),
        figure(
          figureName,
          barChart({
            title: `Engine speed on ${fmt(engine.audioSeconds, 0)} s of speech, ${engine.modelName ?? "tiny.en"}, ${engine.threads} threads`,
            unit: "RTFx median, higher is faster",
            bars: engine.configs.map((c: Json) => ({
              label: `${c.engine} ${c.variant} beam ${c.beam}`,
              value: c.rtfxMedian,
              text: `${fmt(c.rtfxMedian, 2)}× (WER ${pct(c.wer)})`,
            })),
            caption: [
              ...caption(engine),
              `versions: ${Object.entries(engine.versions)
                .map(([k, v]) => `${k} ${v}`)
                .join(", ")}`,
            ],
          }),
          "engine RTFx",
        ),
        "",
        ...engine.notes.map((n: string) => `- ${n}`),
        "",
      );
    }
  };
  engineSection(engine, "Engine speed and accuracy (tiny.en, CPU)", "engine-rtfx");
  if (engineBase)
    engineSection(
      engineBase,
      "Engine speed and accuracy (multilingual base, English, CPU)",
      "engine-rtfx-base",
    );
  const evidence = read(out, "engine-evidence");
  /** A row of the evidence's wall-time tables: label, median, every run. */
  const wallRow = (v: Json) => [
    v.label,
    fmt(v.median, 2),
    (v.seconds as number[]).map((x) => fmt(x, 2)).join(", "),
  ];
  if (evidence) {
    const w = evidence.windowing;
    s.push(
      "## Why the engine was slow (bench/engine-evidence.ts)",
      "",
      "Root cause of issue #14 (kikitori at 2.5× faster-whisper int8's wall time, and 2.7× whisper.cpp's CLI's):",
      "",
      "1. **The CLI figure was an artefact**: the old benchmark ran whisper.cpp's CLI with `-nt` (no timestamps), which makes whisper.cpp jump 30 s per pass and drop what the model did not finish: 56.7 % WER, 64 of 120 words missing. The peer now decodes with timestamps, like kikitori.",
      "2. **Too many 30 s encoder passes**: whisper pays a full 30 s encoder pass per window however little audio it holds. The old engine cut 30 s windows and let whisper.cpp 1.7 seek inside each: remainders after the last timestamp (and a 4.4 s tail of which 2 s were silence) each cost a full pass (counts below). Packed windows with one pass each, resuming at the last timestamp, need fewer.",
      "3. **Each pass cost more**: smart-whisper 0.8.1 shipped whisper.cpp 1.7.1's ggml (F16 matrix products through `ggml_vec_dot_f16`, no newer CPU kernels) and built it without `-DNDEBUG` (the debug NaN checks ran on every soft-max and GELU). whisper.cpp 1.9.1 built for the host CPU with flash attention, plus quantized weights (q4_0: −30 % CPU time per transcription of jfk.wav at 1 thread against F16, measured with `process.cpuUsage()`), costs less per pass.",
      "4. Small: a fresh whisper state per call (≈ 220 MB allocated and touched each time) and a JavaScript `Float32Array.from(pcm, fn)` conversion: the addon keeps one state per worker and converts Int16 natively.",
      "",
      `Each section below was made by its own run of bench/engine-evidence.ts (sections not run keep their values): ${Object.entries(
        (evidence.provenance ?? {}) as Record<string, { command: string; date: string }>,
      )
        .map(([section, p]) => `${section}: \`${p.command}\`, ${p.date}`)
        .join(
          "; ",
        )}. The counts do not depend on the load of the shared machine; the times are compared within one run.`,
      "",
      ...(evidence.callgrind?.length
        ? [
            `Instructions (valgrind callgrind) for ${evidence.callgrindAudio}, whisper.cpp's CLI:`,
            "",
            table(
              ["build", "instructions", "encoder runs", "decoder runs", "top functions (self)"],
              (evidence.callgrind as Json[]).map((c: Json) => [
                c.label,
                `${(c.instructions / 1e9).toFixed(2)} G`,
                c.encoderRuns,
                c.decoderRuns,
                (c.top as Json[])
                  .slice(0, 3)
                  .map((t: Json) => `${t.function} ${(t.share * 100).toFixed(1)} %`)
                  .join(", "),
              ]),
            ),
            "",
          ]
        : []),
      ...(evidence.addon?.length
        ? [
            "The old and the new addon, each called from Node on jfk.wav (one 30 s encoder pass, 1 thread, greedy; Node's own start included in both):",
            "",
            table(
              ["addon", "instructions", "top functions (self)"],
              (evidence.addon as Json[]).map((c: Json) => [
                c.label,
                `${(c.instructions / 1e9).toFixed(2)} G`,
                (c.top as Json[])
                  .slice(0, 3)
                  .map((t: Json) => `${t.function} ${(t.share * 100).toFixed(1)} %`)
                  .join(", "),
              ]),
            ),
            "",
          ]
        : []),
      `Encoder passes on the ${fmt(evidence.audioSeconds, 1)} s engine file (same addon and weights, greedy, 2 threads): the old windowing made **${w.old.passes}** (${(w.old.windows as Json[]).map((x: Json) => `${fmt(x.seconds, 1)} s → ${x.passes}`).join(", ")}; WER ${pct(w.old.wer)}); the packed windows make **${w.new.passes}** (${(w.new.windows as Json[]).map((x: Json) => `${fmt(x.seconds, 1)} s → ${x.passes}`).join(", ")}; ${fmt(w.new.packedSeconds, 1)} s once silences are shortened; WER ${pct(w.new.wer)}).`,
      "",
      ...(evidence.wall
        ? [
            `Wall time of whisper.cpp's CLI, ${evidence.wallAudio}: median of ${evidence.wall.rounds} interleaved rounds, process start to exit (model load included).`,
            "",
            table(["whisper.cpp", "median s", "runs s"], (evidence.wall.versions as Json[]).map(wallRow)),
            "",
            "5. **Spinning on busy cores**: ggml's CPU backend meets at an OpenMP barrier after every graph node, and libgomp spins there by default. When other work holds the cores (other instances, the service, a neighbour), a spinning thread burns the time slice the thread it waits for needs. The whisper worker now sets `OMP_WAIT_POLICY=passive` (src/whisper/isolated.ts). With two busy-looping processes beside the CLI:",
            "",
            table(
              ["busy cores, 2 threads, beam 5", "median s", "runs s"],
              (evidence.wall.busy as Json[]).map(wallRow),
            ),
            "",
          ]
        : []),
      ...(evidence.beam
        ? [
            `6. **What beam 5 costs** (${evidence.beamAudio}). No temperature fallback fires and the encoder passes are the same; the beams' work is whisper.cpp's: every decoder step decodes one token per live beam in one batch, and processes each beam's logits over the 51,864-token vocabulary (top-k, timestamp rules) on its own. kikitori passes the reference values faster-whisper uses too (temperatures 0, 0.2 … 1.0, best of 5, log-probability −1, no-speech 0.6; whisper.cpp's token-entropy 2.4 check stands in for the compression-ratio 2.4 check, which kikitori's engine adds on each window's text).`,
            "",
            table(
              [
                "beam",
                "CPU median s",
                "encoder passes",
                "decoder steps (1 token)",
                "tokens decoded in batches",
                "sampling runs",
                "fallbacks",
              ],
              (evidence.beam as Json[]).map((b: Json) => [
                b.beam,
                fmt(b.medianCpuSeconds, 2),
                b.counts.encoderPasses,
                b.counts.decoderSteps,
                b.counts.batchedTokens,
                b.counts.samplingRuns,
                b.counts.fallbacks,
              ]),
            ),
            "",
          ]
        : []),
      ...(evidence.levels
        ? [
            `7. **Why the WER jumped between weights types on the old 60 s file** (${evidence.levelsAudio}): the clips come from corpora recorded 45 dB apart (FLEURS 003 and 004 near −65 dBFS beside JFK at −17). Joined as they were, Whisper (every engine) heard the quiet clips as background in some windows and dropped them, and a window can end in a "single timestamp", which makes the decoder skip the rest of the window: which weights dropped which clip was a coin toss more than quantization error (kikitori's q4_1 file is byte-identical to whisper.cpp's own whisper-quantize output). Levelled, most of the spread goes; q4_1 still drops clips: its decoder ends a segment with a single timestamp, and the decoder (OpenAI's rule, which faster-whisper and whisper.cpp share) then skips the rest of the window. The engine benchmark now levels the clips and joins several minutes of them, so that such a failure shows in the WER and one word is a sixth of a point.`,
            "",
            table(
              ["weights", "WER as joined", "WER levelled"],
              (evidence.levels as Json[]).map((l: Json) => [l.variant, pct(l.asJoined), pct(l.levelled)]),
            ),
            "",
          ]
        : []),
      ...(evidence.phases ? phasesSection(evidence) : []),
    );
  }

  // --- platform ---
  s.push("## Platform overhead (no-op model server, SQLite and PostgreSQL)", "");
  if (!platform || platform.error) s.push(`Not run${platform?.error ? `: ${platform.error}` : "."}`, "");
  else {
    const row = (name: string, l: Json | undefined) =>
      !l || l.skipped
        ? [name, l?.skipped ?? "not run", "", "", "", "", "", ""]
        : [
            name,
            l.clips,
            `${fmt(l.enqueueToStartMs.p50, 0)} / ${fmt(l.enqueueToStartMs.p99, 0)}`,
            `${fmt(l.overheadMs.p50, 0)} / ${fmt(l.overheadMs.p99, 0)}`,
            `${fmt(l.modelMs.p50, 0)}`,
            `${fmt(l.acceptMs.p50, 2)} / ${fmt(l.acceptMs.p99, 2)}`,
            `${fmt(l.clientOverheadMs.p50, 1)} / ${fmt(l.clientOverheadMs.p99, 1)}`,
          ];
    s.push(
      "One-second clips submitted one at a time with free capacity. Server-side figures come from the invocation record " +
        "(millisecond timestamps, so 0 means under a millisecond); model time is what the model server reports in `x-kikitori-model-time-ms`. " +
        "Client-side figures include the HTTP round trips and the long poll that reports the end.",
      "",
      table(
        [
          "model server",
          "clips",
          "enqueue→start p50/p99 ms",
          "overhead p50/p99 ms",
          "model p50 ms",
          "accept (POST) p50/p99 ms",
          "client overhead p50/p99 ms",
        ],
        [
          row("no-op, SQLite", platform.noopLatency),
          row(
            "no-op, PostgreSQL",
            platform.postgres?.noopLatency ?? {
              skipped:
                platform.postgres?.skipped ?? "not in this results file (made before the PostgreSQL part)",
            },
          ),
          row("tiny.en (built-in), SQLite", platform.tinyLatency),
        ],
      ),
      "",
    );
    const stores = [
      ["SQLite (WAL)", tput, acceptOnly],
      [platform.postgres?.database ?? "PostgreSQL", pgTput, pgAcceptOnly],
    ] as [string, Json, Json][];
    if (tput && pgTput)
      s.push(
        "Side by side, in one run (the same client, requests and instances on each store). An accept is durable " +
          "before its 202 on both (SQLite `synchronous=FULL`, PostgreSQL `synchronous_commit=on`); on SQLite the " +
          "work loop's own commits (lease, heartbeat, finish) are `synchronous=NORMAL`, redone after a power cut. " +
          "While processing: the burst lands on 2 no-op instances × 4 slots that finish each invocation at once, so the " +
          "service accepts and completes at the same time (the third of three such bursts: a fresh process is still " +
          "compiling its hot paths; the first burst is in its own column); into a busy endpoint: the same burst " +
          "queues behind one ten-minute invocation, so the service only accepts.",
        "",
        table(
          [
            "state store",
            "accepted/s while processing",
            "accept p50/p99 ms",
            "completed/s",
            "first burst: accepted/s, completed/s",
            "accepted/s into a busy endpoint",
            "accept p50/p99 ms",
            "enqueue→start p50/p99 ms",
          ],
          stores.map(([name, t, a], i) => {
            const l = i === 0 ? noop : pgNoop;
            return [
              name,
              fmt(t.acceptedPerSecond, 0),
              `${fmt(t.acceptMs.p50, 1)} / ${fmt(t.acceptMs.p99, 1)}`,
              fmt(t.completedPerSecond, 0),
              t.firstBurst
                ? `${fmt(t.firstBurst.acceptedPerSecond, 0)}, ${fmt(t.firstBurst.completedPerSecond, 0)}`
                : "–",
              a ? fmt(a.acceptedPerSecond, 0) : "–",
              a ? `${fmt(a.acceptMs.p50, 1)} / ${fmt(a.acceptMs.p99, 1)}` : "–",
              l ? `${fmt(l.enqueueToStartMs.p50, 0)} / ${fmt(l.enqueueToStartMs.p99, 0)}` : "–",
            ];
          }),
        ),
        "",
      );
    if (tput)
      s.push(
        `Throughput on SQLite: ${tput.requests} invocations from ${tput.concurrency} keep-alive clients onto ${tput.instances} no-op instances × ${tput.maxConcurrentPerInstance} concurrent: ` +
          `**${fmt(tput.acceptedPerSecond, 0)} accepted/s** (accept latency p50 ${fmt(tput.acceptMs.p50, 1)} ms, p99 ${fmt(tput.acceptMs.p99, 1)} ms), ` +
          `**${fmt(tput.completedPerSecond, 0)} completed/s** (all done ${fmt(tput.drainSeconds, 2)} s after the first request).`,
        "",
      );
    const bars: Bar[] = noop
      ? [
          { label: "no-op enqueue→start p50", value: noop.enqueueToStartMs.p50 },
          { label: "no-op enqueue→start p99", value: noop.enqueueToStartMs.p99 },
          { label: "no-op overhead p50", value: noop.overheadMs.p50 },
          { label: "no-op overhead p99", value: noop.overheadMs.p99 },
          ...(platform.tinyLatency?.overheadMs
            ? [
                { label: "tiny.en overhead p50", value: platform.tinyLatency.overheadMs.p50 },
                { label: "tiny.en overhead p99", value: platform.tinyLatency.overheadMs.p99 },
              ]
            : []),
        ]
      : [];
    if (bars.length)
      s.push(
        figure(
          "platform-latency",
          barChart({
            title: "Platform latency per invocation",
            unit: "ms, server side",
            bars: bars.map((b) => ({ ...b, text: `${b.value} ms` })),
            target: { value: TARGETS.overheadP50Ms, label: "overhead target 20 ms" },
            caption: caption(platform),
          }),
          "platform latency",
        ),
        "",
      );
  }

  // --- scale from zero ---
  s.push("## Scale from zero", "");
  if (!sfz || sfz.error) s.push(`Not run${sfz?.error ? `: ${sfz.error}` : "."}`, "");
  else {
    s.push(
      "A request at zero instances → autoscaler (HasBacklogWithoutCapacity step policy) → instance process → /ping → InService → result (bench/scale-from-zero.ts; fresh endpoint per run).",
      "",
      table(
        ["model server", "runs", "to InService median ms", "to result median ms"],
        Object.entries(sfz.results as Record<string, Json>).map(([k, v]) =>
          typeof v === "object"
            ? [k, v.runs.length, v.medianToInServiceMs, v.medianToResultMs]
            : [k, String(v), "", ""],
        ),
      ),
      "",
    );
  }

  // --- scale across hosts ---
  s.push("## Scale across hosts (network namespaces, no-op model server)", "");
  if (!hosts || hosts.error || hosts.skipped)
    s.push(`Not run${hosts ? `: ${hosts.error ?? hosts.skipped}` : "."}`, "");
  else {
    s.push(
      `A batch of ${hosts.files} files with one worker host, then with two, rounds interleaved (\`${hosts.scriptCommand}\`). ` +
        "PostgreSQL, S3 (moto_server) and an API process in one network namespace, each worker host (`kikitori worker`, " +
        "one instance slot) in its own: they share only the network. The model server's work is a fixed sleep of " +
        `${hosts.workMs} ms per file, so the figure is the control plane spreading work (placement, leases from one ` +
        "queue, wake-ups, results through S3), not the CPU: two whisper.cpp hosts on this 2-core machine would share its cores.",
      "",
      table(
        ["round", "1 host s", "2 hosts s"],
        (hosts.oneHostSeconds as number[]).map((x, i) => [
          i + 1,
          fmt(x, 2),
          fmt(hosts.twoHostsSeconds[i], 2),
        ]),
      ),
      "",
      `Median speedup ${fmt(hosts.speedup, 2)}× (ideal 2×; the floor for one host is ${fmt(hosts.idealOneHostSeconds, 1)} s of model work).`,
      "",
    );
  }

  // --- long audio ---
  s.push("## Long audio (tiny.en through the service)", "");
  if (!long || long.error || long.skipped)
    s.push(`Not run${long?.error || long?.skipped ? `: ${long.error ?? long.skipped}` : "."}`, "");
  else if (!long.quality?.kikitori)
    // A results file from before VAD (its figures described a different pipeline): not rendered as current.
    s.push(
      `The results file (${long.date}, commit ${long.machine?.commit}) is from this benchmark's version before VAD; rerun \`npm run bench -- --parts long\`.`,
      "",
    );
  else {
    const m = long.memory;
    s.push(
      `The long file: ${fmt(long.audioSeconds / 60, 1)} minutes (${long.passes} passes of the test speech, 1 s between clips, 5 s between passes): ` +
        `wall ${fmt(long.wallSeconds, 1)} s with VAD (RTFx ${fmt(long.rtfx, 2)}), upload ${fmt(long.uploadSeconds, 1)} s. ` +
        `The mixed file: ${fmt(long.mixedSeconds / 60, 1)} minutes, ${long.mixedClips} clips (each test clip as recorded and 35 dB quieter, studio and 8 kHz telephone band, 2 s apart).`,
      "",
      table(
        ["memory", "peak"],
        [
          [
            "service process (VmHWM)",
            `${fmt(m.servicePeakMiB * MiB_TO_MB, 0)} MB (target ≤ 300 MB: ${verdict(m.servicePeakMiB * MiB_TO_MB, TARGETS.longServiceRssMB, true, "MB")})`,
          ],
          [
            "instance processes, sampled peak of their sum",
            `${fmt(m.instanceSampledPeakSumMiB * MiB_TO_MB, 0)} MB`,
          ],
          ...m.instanceProcesses.map((p: Json) => [
            `  ${p.cmd.replace(/^\S*\/node /, "node ")}`,
            `${fmt(p.peakMiB * MiB_TO_MB, 0)} MB (VmHWM)`,
          ]),
        ],
      ),
      "",
      "",
      longQuality(long),
      "",
    );
  }
  s.push("### One long file across instances", "");
  if (!chunks)
    s.push(
      `Not run${longChunks?.error || longChunks?.skipped ? `: ${longChunks.error ?? longChunks.skipped}` : "."}`,
      "",
    );
  else s.push(chunksAcrossInstances(chunks), "");

  // --- growth ---
  s.push("## Cost of growth (no-op model server)", "");
  if (!growth || growth.error) s.push(`Not run${growth?.error ? `: ${growth.error}` : "."}`, "");
  else {
    const g = growth.growth;
    const line = (what: string, r: Json) =>
      `- ${what}: **${r.verdict}** (growth exponents between points: ${r.exponents.join(", ") || "–"}; 0 = flat, 1 = linear)`;
    s.push(
      `Queue depth: N invocations queued behind a paused model server; then ${growth.probes} enqueues, ${growth.probes} reads of the last one (its queue position), a burst of concurrent enqueues, and the drain once the server resumes.`,
      "",
      table(
        [
          "queued",
          "enqueue p50/p99 ms",
          "read p50/p99 ms",
          "accepts/s",
          "drain /s",
          "dispatch overhead p50/p99 ms",
        ],
        growth.byDepth.map((d: Json) => [
          d.queued,
          `${fmt(d.acceptMs.p50, 2)} / ${fmt(d.acceptMs.p99, 2)}`,
          `${fmt(d.readMs.p50, 2)} / ${fmt(d.readMs.p99, 2)}`,
          d.acceptedPerSecond,
          d.drainPerSecond,
          `${d.dispatchOverheadMs.p50} / ${d.dispatchOverheadMs.p99}`,
        ]),
      ),
      "",
      "File length: one file at a time (white noise; the no-op server reads every byte), upload then invoke.",
      "",
      table(
        ["length", "MB", "upload ms", "enqueue→start ms", "overhead ms", "service RSS peak MB"],
        growth.byLength.map((l: Json) => [
          `${l.seconds >= 60 ? `${l.seconds / 60} min` : `${l.seconds} s`}`,
          l.megabytes,
          fmt(l.uploadMs, 0),
          l.enqueueToStartMs,
          l.overheadMs,
          fmt(l.serviceRssPeakMiB * MiB_TO_MB, 0),
        ]),
      ),
      "",
      line("enqueue latency vs queue depth", g.acceptP50VsDepth),
      line("read (queue position) latency vs queue depth", g.readP50VsDepth),
      line("accepts/s vs queue depth", g.acceptsPerSecondVsDepth),
      line("dispatch overhead vs queue depth", g.dispatchP50VsDepth),
      line("overhead vs file length", g.overheadVsLength),
      line("upload time vs file length", g.uploadVsLength),
      line("service RSS vs file length", g.serviceRssVsLength),
      "",
      figure(
        "growth-depth",
        barChart({
          title: "Enqueue latency with N invocations queued",
          unit: "ms, p50, client side",
          bars: growth.byDepth.map((d: Json) => ({
            label: `N = ${d.queued}`,
            value: d.acceptMs.p50,
            text: `${fmt(d.acceptMs.p50, 2)} ms; read ${fmt(d.readMs.p50, 2)} ms`,
          })),
          caption: caption(growth),
        }),
        "growth with queue depth",
      ),
      "",
    );
  }

  // --- per-clip quality (separate script) ---
  if (quality) {
    s.push(
      "## Per-clip quality (bench/engine-quality.ts)",
      "",
      `\`${quality.command}\`, ${quality.date}, greedy, ${quality.threads} threads: WER and wall time over the English clips of the test data, one clip at a time (each engine loads its model once).`,
      "",
      table(
        ["engine", "WER", "total wall s"],
        quality.engines.map((e: Json) => [e.name, pct(e.overall?.rate), fmt(e.overall?.wallSeconds, 1)]),
      ),
      "",
    );
  }

  // --- quality across languages (separate script, multilingual base) ---
  const languages = read(out, "engine-quality-languages");
  if (languages) {
    const [ours, peer] = languages.engines as Json[];
    const sets = Object.keys(languages.verdict ?? {});
    s.push(
      "## Quality across languages (bench/engine-quality-languages.ts)",
      "",
      `\`${languages.command}\`, ${languages.date}: ${languages.decoding}, ${languages.threads} threads; the same multilingual base weights for both engines (${languages.models?.ct2 ?? "CTranslate2"} converted to ggml by kikitori's importer). Japanese: character error rate; the multilingual clip (English then German): word error rate against an approximate reference; English: word error rate. Target: kikitori ≤ faster-whisper + 1 point on each set, and every clip's known language detected.`,
      "",
      table(
        ["set", "metric", "clips", ours?.name ?? "kikitori", peer?.name ?? "faster-whisper", "verdict"],
        sets.map((k) => [
          k,
          ours?.sets?.[k]?.metric ?? "",
          ours?.sets?.[k]?.clips ?? "",
          pct(languages.verdict[k].kikitori),
          pct(languages.verdict[k].peer),
          languages.verdict[k].withinOnePoint ? "**met**" : "**missed**",
        ]),
      ),
      "",
      `Languages detected correctly on every clip with a known language: kikitori ${languages.detectionsCorrect?.kikitori ? "yes" : "**no**"}, ${peer?.name ?? "peer"} ${languages.detectionsCorrect?.[peer?.name] ? "yes" : "**no**"}.`,
      "",
    );
  }

  s.push(
    "## CUDA",
    "",
    existsSync(join(out, "cuda.json"))
      ? "See cuda.json."
      : "Not run: this machine has no CUDA GPU, and the suite has no CUDA results. The engine bench is CPU-only here.",
    "",
    "## Reproduce",
    "",
    "```",
    "scripts/fetch-test-model            # tiny.en ggml weights",
    "npm run bench                       # full run, writes bench/results/*.json and BENCHMARKS.md",
    "npm run bench -- --smoke --out /tmp/kk-bench   # CI smoke mode (test/bench/smoke.test.ts)",
    "```",
    "",
  );
  writeFileSync(mdPath, s.join("\n"));
}

/** "Why the engine was slow", 8: each engine's own clock on one transcription (bench/engine-evidence.ts phases). */
function phasesSection(evidence: Json): string[] {
  const rows = evidence.phases as Json[];
  const at = (label: string, threads: number) =>
    rows.find((r) => String(r.label).startsWith(label) && r.threads === threads);
  const perPass = (r: Json | undefined) => (r ? (r.encodeSeconds / r.encoderPasses) * 1000 : NaN);
  const ratio = (x: number, y: number) => (Number.isFinite(x / y) ? `${(x / y).toFixed(2)}×` : "–");
  const kk = at("whisper.cpp CLI, llamafile", 2);
  const base = at("whisper.cpp CLI, ggml", 2);
  const fw = at("faster-whisper", 2);
  return [
    `8. **Where the time goes now, against faster-whisper** (${evidence.phasesAudio}; each engine's own clock: whisper.cpp's timers, and faster-whisper's encoder and generate() calls timed inside its Python process). Both make the same encoder passes; at 2 threads whisper.cpp's pass costs ${ratio(perPass(kk), perPass(fw))} faster-whisper's and its decoding (decoder steps, each window's prompt, sampling) ${ratio(kk?.decodeSeconds, fw?.decodeSeconds)} faster-whisper's generate().${base ? ` llamafile's matrix kernels (tinyBLAS), which whisper.cpp's build leaves off and kikitori now turns on, made a pass ${ratio(perPass(base), perPass(kk))} faster than ggml's own row-by-row dot products on the same weights.` : ""} Most of what remains of a pass is attention: in a profile of the CLI (\`perf record -e cpu-clock\`, 1 thread, q8_0), ggml's CPU flash attention with its F16→F32 conversions of keys and values takes more samples than the matrix kernels.`,
    "",
    table(
      [
        "engine",
        "threads",
        "encoder passes",
        "ms per pass",
        "decoding s",
        "decoder steps",
        "total s",
        "CPU s",
      ],
      rows.map((r) => [
        r.label,
        r.threads,
        r.encoderPasses,
        fmt(perPass(r), 0),
        fmt(r.decodeSeconds, 2),
        r.decoderSteps ?? (r.tokens !== undefined ? `${r.tokens} tokens` : "–"),
        fmt(r.totalSeconds, 2),
        fmt(r.cpuSeconds, 2),
      ]),
    ),
    "",
    ...(kk && fw ? [budget(kk, fw), ""] : []),
    ...(evidence.batched ? batchedSection(evidence.batched) : []),
  ];
}

/** "Why the engine was slow", 10: the batching lever measured on CTranslate2, per model (engine-evidence.ts batched). */
function batchedSection(byModel: Record<string, Json>): string[] {
  const range = (xs: number[], f: (x: number) => string) => {
    const lo = Math.min(...xs);
    const hi = Math.max(...xs);
    return lo === hi ? f(lo) : `${f(lo)}-${f(hi)}`;
  };
  const out = [
    "10. **The lever left on CTranslate2: windows decoded in batches.** CTranslate2 is faster-whisper's own core, so an engine on it starts at faster-whisper's speed; what it could add is decoding independent windows together, and kikitori's VAD chunks are independent by design. Measured: kikitori's chunks (one utterance each, as the engine cuts them, and packed into full windows: half the passes) through CTranslate2's generate() in batches, against faster-whisper's sequential pipeline in the same rounds. No fallback and no re-decoding of dropped regions here (kikitori's engine does both; they only add time). A configuration meets issue #14's rule when every round is at least 1.2× faster-whisper and its WER at most 0.5 points above faster-whisper's.",
    "",
  ];
  for (const [model, b] of Object.entries(byModel)) {
    const rows = b.rows as Json[];
    const fw = (beam: number) => rows.find((r) => r.beam === beam && r.chunks === null)!;
    const meets = rows.filter(
      (r) =>
        r.chunks !== null &&
        Math.min(...r.speedup) >= 1.2 &&
        Math.max(...r.wer) <= Math.max(...fw(r.beam).wer) + 0.005,
    );
    const best = (chunks: string, beam: number) => {
      const rs = rows.filter((r) => r.beam === beam && String(r.label).includes(`(${chunks})`));
      const top = rs.reduce((x, y) => (Math.min(...y.speedup) > Math.min(...x.speedup) ? y : x));
      return `${range(top.speedup, (x) => `${fmt(x, 2)}×`)} (batch ${top.batch}, WER ${range(top.wer, pct)})`;
    };
    const beams = [...new Set(rows.map((r) => r.beam as number))];
    out.push(
      `**${model}** (${b.audio}; CTranslate2 ${b.ctranslate2}). ` +
        beams
          .map(
            (beam) =>
              `Beam ${beam}: faster-whisper's WER ${range(fw(beam).wer, pct)}; one utterance per chunk, best batch ${best("utterance", beam)}; packed ${best("packed", beam)}.`,
          )
          .join(" ") +
        ` Meeting the rule: ${
          meets.length
            ? meets
                .map(
                  (r) =>
                    `beam ${r.beam}, ${String(r.label).replace(/^.*\((.*)\)$/, "$1")} chunks, batch ${r.batch}`,
                )
                .join("; ")
            : "none"
        }.`,
      "",
      table(
        ["decoder", "beam", "chunks", "batch", "seconds (rounds)", "speed ÷ faster-whisper", "WER"],
        rows.map((r) => [
          r.label,
          r.beam,
          r.chunks ?? "–",
          r.batch ?? "–",
          (r.seconds as number[]).map((x) => fmt(x, 2)).join(", "),
          (r.speedup as number[]).map((x) => fmt(x, 2)).join(", "),
          (r.wer as number[]).map(pct).join(", "),
        ]),
      ),
      "",
    );
  }
  return out;
}

/**
 * What issue #14's 1.2× would take, from the same figures: the time left for the whole file, what
 * whisper.cpp's encoder passes take of it, and the pass cost that would fit if decoding were as fast as
 * CTranslate2's.
 */
function budget(kk: Json, fw: Json): string {
  const allowed = fw.totalSeconds / 1.2;
  const pass = (kk.encodeSeconds / kk.encoderPasses) * 1000;
  const fitting = ((allowed - fw.decodeSeconds) / kk.encoderPasses) * 1000;
  const fwPass = (fw.encodeSeconds / fw.encoderPasses) * 1000;
  return (
    `9. **What 1.2× faster-whisper would take** (same file, 2 threads): the whole file in ${fmt(allowed, 2)} s. ` +
    `whisper.cpp's ${kk.encoderPasses} encoder passes alone take ${fmt(kk.encodeSeconds, 2)} s (${fmt((100 * kk.encodeSeconds) / allowed, 0)} % of it), its decoding ${fmt(kk.decodeSeconds, 2)} s more. ` +
    `Even with decoding as fast as CTranslate2's (${fmt(fw.decodeSeconds, 2)} s), a pass would have to cost ${fmt(fitting, 0)} ms: ` +
    `${fmt(fitting / pass, 2)}× whisper.cpp's ${fmt(pass, 0)} ms and ${fmt(fitting / fwPass, 2)}× CTranslate2 int8's ${fmt(fwPass, 0)} ms. ` +
    "No setting gets there: ggml 0.22's CPU backend (the newest reachable here, inside @fugood/whisper.node 1.1.3) has the same flash attention and repacks only the q4 types on x86, " +
    "and threads, OpenMP wait policy, beam layout and passes were measured without such a gain (CHANGELOG). It takes a faster engine core, or windows decoded in batches (faster-whisper's own batched pipeline, in the engine tables above)."
  );
}
