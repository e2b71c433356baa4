/**
 * Long audio through the service (`kikitori serve` as a child process, built-in Whisper server, tiny.en),
 * side by side with faster-whisper's batched pipeline (BatchedInferencePipeline: Silero VAD chunks decoded
 * in batches) on the same weights (CTranslate2 tiny.en):
 *
 * - the long file: the test speech repeated with silences between passes. Its WER against the WER of one
 *   pass transcribed on its own (short pieces) shows what length costs; with VAD (the default) and, as
 *   the "before", with vad=false (energy windowing).
 * - the mixed file: every test clip four ways (as recorded / 35 dB quieter, studio / 8 kHz telephone band),
 *   2 s apart, repeated to about 6 minutes; against the same clips transcribed one by one.
 *
 * Also records the wall time and the peak resident memory of the service process (VmHWM) and of the
 * instance's processes (VmHWM of each, and the sampled peak of their sum).
 */
import { createReadStream } from "node:fs";
import { errorRate, wordErrors, sumCounts, type EditCounts } from "../src/eval/metrics.js";
import type { FasterWhisper } from "./lib/peers.js";
import { memoryOf, processTree, serve, type ServeChild } from "./lib/service.js";
import { round } from "./lib/stats.js";

export interface AudioFile {
  path: string;
  seconds: number;
  reference: string;
}

export interface LongAudioOptions {
  long: AudioFile & { passes: number };
  /** One pass of the long file's speech on its own. */
  pass: AudioFile;
  mixed: AudioFile & { clips: AudioFile[] };
  modelsDir: string;
  /** faster-whisper on the same weights, or why it is skipped. */
  peer: FasterWhisper | string;
  log: (msg: string) => void;
}

/** Samples the resident memory of the service and of its descendants until stopped. */
function sampleMemory(svc: ServeChild, everyMs = 250) {
  let servicePeak = 0;
  let instancesPeak = 0;
  const timer = setInterval(() => {
    const [self, ...kids] = processTree(svc.pid).map(memoryOf);
    servicePeak = Math.max(servicePeak, self?.rssMiB ?? 0);
    instancesPeak = Math.max(
      instancesPeak,
      kids.reduce((s, m) => s + (m?.rssMiB ?? 0), 0),
    );
  }, everyMs);
  return {
    stop: () => {
      clearInterval(timer);
      const [self, ...kids] = processTree(svc.pid).map(memoryOf);
      return {
        servicePeakMiB: round(self?.peakMiB ?? NaN, 1),
        serviceSampledPeakMiB: round(servicePeak, 1),
        instanceProcesses: kids
          .filter((k) => k !== undefined)
          .map((k) => ({ cmd: k.cmd, peakMiB: round(k.peakMiB, 1) })),
        instanceSampledPeakSumMiB: round(instancesPeak, 1),
      };
    },
  };
}

async function transcribe(svc: ServeChild, key: string, path: string, options: Record<string, unknown> = {}) {
  const t0 = performance.now();
  const input = await svc.client.put("bench", key, createReadStream(path), "audio/wav");
  const t1 = performance.now();
  const accepted = await svc.client.ok("POST", "/v1/endpoints/long/invocations", {
    inputLocation: input,
    contentType: "audio/wav",
    accept: "application/json",
    invocationTimeoutSeconds: 3600,
    options: { language: "en", ...options },
  });
  const id = String(accepted.inferenceId);
  const inv = await svc.client.waitTerminal(id);
  const t2 = performance.now();
  if (inv.state !== "Succeeded") throw new Error(`long audio: ${inv.state}: ${inv.error?.message}`);
  const result = await svc.client.raw("GET", `/v1/invocations/${id}/result`);
  if (result.status !== 200)
    throw new Error(`long audio: result ${result.status}: ${result.body.toString()}`);
  const text = String((JSON.parse(result.body.toString()) as { text: string }).text);
  return {
    text,
    uploadSeconds: (t1 - t0) / 1000,
    wallSeconds: (t2 - t1) / 1000,
  };
}

interface Scored {
  wer: number;
  counts: EditCounts;
  wallSeconds: number;
}

function score(reference: string, text: string, wallSeconds: number): Scored {
  const counts = wordErrors(reference, text);
  return { wer: round(errorRate(counts), 4), counts, wallSeconds: round(wallSeconds, 2) };
}

/** Clips one by one: the summed edit counts over all clips, and the summed wall time. */
async function oneByOne(
  clips: AudioFile[],
  run: (clip: AudioFile, i: number) => Promise<{ text: string; wallSeconds: number }>,
): Promise<Scored> {
  const counts: EditCounts[] = [];
  let wall = 0;
  for (const [i, clip] of clips.entries()) {
    const r = await run(clip, i);
    counts.push(wordErrors(clip.reference, r.text));
    wall += r.wallSeconds;
  }
  const sum = sumCounts(counts);
  return { wer: round(errorRate(sum), 4), counts: sum, wallSeconds: round(wall, 2) };
}

export async function runLongAudio(o: LongAudioOptions) {
  const svc = await serve({ KIKITORI_MODELS: o.modelsDir });
  const kikitori: Record<string, Scored> = {};
  let memory: ReturnType<ReturnType<typeof sampleMemory>["stop"]> | undefined;
  let longWall = 0;
  let uploadSeconds = 0;
  try {
    await svc.client.endpoint("long", { image: "kikitori/whisper" }, { instances: 1, maxConcurrent: 1 });
    o.log(`long-audio: one pass (${o.pass.seconds.toFixed(0)} s) on its own`);
    const pass = await transcribe(svc, "pass.wav", o.pass.path);
    kikitori.pass = score(o.pass.reference, pass.text, pass.wallSeconds);
    o.log(`long-audio: ${(o.long.seconds / 60).toFixed(1)} min file, VAD`);
    const sampler = sampleMemory(svc);
    const long = await transcribe(svc, "long.wav", o.long.path);
    memory = sampler.stop();
    longWall = long.wallSeconds;
    uploadSeconds = long.uploadSeconds;
    kikitori.long = score(o.long.reference, long.text, long.wallSeconds);
    o.log(`long-audio: ${(o.long.seconds / 60).toFixed(1)} min file, vad=false`);
    const noVad = await transcribe(svc, "long.wav", o.long.path, { vad: false });
    kikitori.longNoVad = score(o.long.reference, noVad.text, noVad.wallSeconds);
    o.log(
      `long-audio: mixed file (${(o.mixed.seconds / 60).toFixed(1)} min), then its ${o.mixed.clips.length} clips one by one`,
    );
    const mixed = await transcribe(svc, "mixed.wav", o.mixed.path);
    kikitori.mixed = score(o.mixed.reference, mixed.text, mixed.wallSeconds);
    const mixedNoVad = await transcribe(svc, "mixed.wav", o.mixed.path, { vad: false });
    kikitori.mixedNoVad = score(o.mixed.reference, mixedNoVad.text, mixedNoVad.wallSeconds);
    kikitori.mixedClips = await oneByOne(o.mixed.clips, (c, i) => transcribe(svc, `clip-${i}.wav`, c.path));
  } finally {
    await svc.stop();
  }

  let fasterWhisper: Record<string, Scored> | { skipped: string };
  if (typeof o.peer === "string") fasterWhisper = { skipped: o.peer };
  else {
    const peer = o.peer;
    const batched = (f: AudioFile) => peer.transcribe(f.path, 1, "en", false, "batched");
    o.log("long-audio: faster-whisper batched pipeline on the same files");
    fasterWhisper = {};
    for (const [name, file] of [
      ["pass", o.pass],
      ["long", o.long],
      ["mixed", o.mixed],
    ] as const) {
      const r = await batched(file);
      fasterWhisper[name] = score(file.reference, r.text, r.wallSeconds);
    }
    fasterWhisper.mixedClips = await oneByOne(o.mixed.clips, batched);
  }

  return {
    audioSeconds: round(o.long.seconds, 1),
    passes: o.long.passes,
    mixedSeconds: round(o.mixed.seconds, 1),
    mixedClips: o.mixed.clips.length,
    uploadSeconds: round(uploadSeconds, 2),
    wallSeconds: round(longWall, 2),
    rtfx: round(o.long.seconds / longWall, 2),
    memory,
    quality: { kikitori, fasterWhisper },
    peerVersions: typeof o.peer === "string" ? undefined : o.peer.versions,
  };
}
