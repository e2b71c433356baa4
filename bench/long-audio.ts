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
import { createReadStream, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { errorRate, wordErrors, sumCounts, type EditCounts } from "../src/eval/metrics.js";
import type { FasterWhisper } from "./lib/peers.js";
import { memoryOf, processTree, serve, sleep, type ServeChild } from "./lib/service.js";
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

/** What a process of the service tree is, from its command line (for the CPU breakdown). */
function roleOf(pid: number): "service" | "modelServer" | "decoder" | "other" {
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    if (cmd.includes("whisper/worker")) return "decoder";
    if (cmd.includes("whisper/main")) return "modelServer";
    if (cmd.includes("kikitori") && cmd.includes("serve")) return "service";
  } catch {
    // ended meanwhile
  }
  return "other";
}

/**
 * CPU seconds (user + system) of process trees since the meter started, summed per process (sampled, so a
 * process killed loses at most one interval), with the split by role: the service, its model servers, their
 * decoder processes (whisper.cpp), the rest (ffmpeg, esbuild).
 */
function cpuMeter(everyMs = 200) {
  const tick = 100; // USER_HZ on Linux
  const first = new Map<number, number>();
  const last = new Map<number, number>();
  const role = new Map<number, ReturnType<typeof roleOf>>();
  const roots = new Set<number>();
  const cpuOf = (pid: number) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      return (Number(f[11]) + Number(f[12])) / tick;
    } catch {
      return undefined;
    }
  };
  const sample = () => {
    for (const root of roots)
      for (const pid of processTree(root)) {
        const cpu = cpuOf(pid);
        if (cpu === undefined) continue;
        if (!first.has(pid)) {
          first.set(pid, started ? 0 : cpu);
          role.set(pid, roleOf(pid));
        }
        last.set(pid, cpu);
      }
  };
  let started = false;
  const timer = setInterval(sample, everyMs);
  return {
    /** Counts this process and its descendants (those already running count from now). */
    track(pid: number) {
      roots.add(pid);
      sample();
      started = true;
    },
    stop() {
      sample();
      clearInterval(timer);
      const by = { service: 0, modelServer: 0, decoder: 0, other: 0 };
      for (const [pid, cpu] of last) by[role.get(pid) ?? "other"] += cpu - (first.get(pid) ?? 0);
      return {
        total: round(by.service + by.modelServer + by.decoder + by.other, 2),
        by: {
          service: round(by.service, 2),
          modelServer: round(by.modelServer, 2),
          decoder: round(by.decoder, 2),
          other: round(by.other, 2),
        },
      };
    },
  };
}

/** Waits until `endpoint` has `n` instances in service. */
async function inService(svc: ServeChild, endpoint: string, n: number) {
  for (;;) {
    const ep = await svc.client.ok("GET", `/v1/endpoints/${endpoint}`);
    if (ep.instances.filter((i: { state: string }) => i.state === "InService").length >= n) return;
    await sleep(100);
  }
}

const words = (text: string) => text.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? [];

export interface ChunksAcrossInstancesOptions {
  file: AudioFile;
  modelsDir: string;
  /** Progress (0..1) at which an instance, and separately the service, is killed. @defaultValue 0.6 */
  killAt?: number;
  log: (msg: string) => void;
}

/**
 * One long invocation across instances (#17): the same file on 1 and on 2 instances of one thread each
 * (its chunks leased by every idle instance), whether the transcripts agree; then the resume cost: the
 * instance killed (SIGKILL) at `killAt` of the file, and separately the service, against the uninterrupted
 * run, in CPU seconds of the service and all its processes (and wall time).
 */
export async function runChunksAcrossInstances(o: ChunksAcrossInstancesOptions) {
  const killAt = o.killAt ?? 0.6;
  const environment = { KIKITORI_THREADS: "1" };
  const env = { KIKITORI_MODELS: o.modelsDir, KIKITORI_LEASE_MS: "3000" };

  /** Invokes, optionally acting at `killAt` of the progress; wall seconds, CPU seconds, the transcript. */
  const measure = async (
    svc: ServeChild,
    endpoint: string,
    atKill?: (svc: ServeChild) => Promise<ServeChild>,
  ) => {
    const meter = cpuMeter();
    meter.track(svc.pid);
    const input = await svc.client.put(
      "bench",
      `speedup-${endpoint}.wav`,
      createReadStream(o.file.path),
      "audio/wav",
    );
    const t0 = performance.now();
    const accepted = await svc.client.ok("POST", `/v1/endpoints/${endpoint}/invocations`, {
      inputLocation: input,
      contentType: "audio/wav",
      accept: "application/json",
      invocationTimeoutSeconds: 3600,
      options: { language: "en" },
    });
    const id = String(accepted.inferenceId);
    let current = svc;
    if (atKill) {
      for (;;) {
        const inv = await current.client.ok("GET", `/v1/invocations/${id}`);
        if ((inv.progress?.percent ?? 0) >= killAt * 100) break;
        if (inv.state !== "Running" && inv.state !== "Queued")
          throw new Error(`chunks: ${id} ended (${inv.state}) before ${killAt * 100} %`);
        await sleep(100);
      }
      current = await atKill(current);
      meter.track(current.pid);
    }
    const inv = await current.client.waitTerminal(id);
    const wall = (performance.now() - t0) / 1000;
    const cpu = meter.stop();
    if (inv.state !== "Succeeded") throw new Error(`chunks: ${inv.state}: ${inv.error?.message}`);
    const result = await current.client.raw("GET", `/v1/invocations/${id}/result`);
    const body = JSON.parse(result.body.toString()) as {
      text: string;
      speech?: { chunks: number; resumed?: number };
    };
    return {
      wallSeconds: round(wall, 2),
      cpuSeconds: cpu.total,
      cpuBy: cpu.by,
      attempts: Number(inv.attempts),
      chunks: body.speech?.chunks ?? 0,
      resumedChunks: body.speech?.resumed ?? 0,
      wer: round(errorRate(wordErrors(o.file.reference, body.text)), 4),
      text: body.text,
      current,
    };
  };

  const svc = await serve(env);
  let one, two, instanceKilled;
  try {
    await svc.client.endpoint(
      "one",
      { image: "kikitori/whisper", environment },
      { instances: 1, maxConcurrent: 1 },
    );
    await svc.client.endpoint(
      "two",
      { image: "kikitori/whisper", environment },
      { instances: 2, maxConcurrent: 1 },
    );
    await inService(svc, "one", 1);
    await inService(svc, "two", 2);
    o.log(`chunks: ${(o.file.seconds / 60).toFixed(1)} min file on 1 instance (1 thread)`);
    one = await measure(svc, "one");
    o.log("chunks: the same file on 2 instances (1 thread each)");
    two = await measure(svc, "two");
    o.log(`chunks: 1 instance, killed (SIGKILL) at ${killAt * 100} %`);
    instanceKilled = await measure(svc, "one", async (s) => {
      const ep = await s.client.ok("GET", "/v1/endpoints/one");
      const pid = ep.instances.find((i: { state: string }) => i.state === "InService")?.pid;
      if (pid) process.kill(pid, "SIGKILL");
      return s;
    });
  } finally {
    await svc.stop();
  }

  o.log(`chunks: 1 instance, the service killed (SIGKILL) at ${killAt * 100} % and started again`);
  const dataDir = mkdtempSync(join(tmpdir(), "kk-bench-chunks-"));
  let serviceKilled;
  try {
    const first = await serve(env, dataDir);
    await first.client.endpoint(
      "one",
      { image: "kikitori/whisper", environment },
      { instances: 1, maxConcurrent: 1 },
    );
    // As for the uninterrupted run: the meter starts with the instance in service (its start-up not counted).
    await inService(first, "one", 1);
    serviceKilled = await measure(first, "one", async (s) => {
      await s.kill9();
      return serve(env, dataDir);
    });
    await serviceKilled.current.stop();
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }

  const oneWords = words(one.text);
  const twoWords = words(two.text);
  const view = ({ text: _text, current: _current, ...r }: typeof one) => r;
  return {
    file: { seconds: round(o.file.seconds, 1), chunks: one.chunks },
    speedUp: {
      oneInstance: view(one),
      twoInstances: view(two),
      ratio: round(one.wallSeconds / two.wallSeconds, 2),
      identicalWords: oneWords.length === twoWords.length && oneWords.every((w, i) => w === twoWords[i]),
      werDifferencePoints: round(100 * Math.abs(two.wer - one.wer), 2),
      fourInstances: "not measured: 4 instances of 1 thread need 4 cores (this machine has 2)",
    },
    resume: {
      killAt,
      instanceKilled: {
        ...view(instanceKilled),
        cpuRatio: round(instanceKilled.cpuSeconds / one.cpuSeconds, 2),
        wallRatio: round(instanceKilled.wallSeconds / one.wallSeconds, 2),
        sameWords: words(instanceKilled.text).join(" ") === oneWords.join(" "),
      },
      serviceKilled: {
        ...view(serviceKilled),
        cpuRatio: round(serviceKilled.cpuSeconds / one.cpuSeconds, 2),
        wallRatio: round(serviceKilled.wallSeconds / one.wallSeconds, 2),
        sameWords: words(serviceKilled.text).join(" ") === oneWords.join(" "),
      },
    },
  };
}
