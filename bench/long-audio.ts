/**
 * Long audio through the service (`kikitori serve` as a child process, built-in Whisper server,
 * tiny.en): one file of the test speech repeated with silences between passes. Records the wall time,
 * the peak resident memory of the service process (VmHWM) and of the instance's processes (VmHWM of
 * each, and the sampled peak of their sum), and the quality of the one-piece transcript against
 * (a) the references and (b) the same audio transcribed in short pieces (one pass on its own,
 * repeated), which shows what windowing a long file costs.
 */
import { createReadStream } from "node:fs";
import { errorRate, wordErrors } from "../src/eval/metrics.js";
import { memoryOf, processTree, serve, type ServeChild } from "./lib/service.js";
import { round } from "./lib/stats.js";

export interface LongAudioOptions {
  longPath: string;
  longSeconds: number;
  longReference: string;
  passPath: string;
  passReference: string;
  passes: number;
  modelsDir: string;
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

async function transcribe(svc: ServeChild, key: string, path: string) {
  const t0 = performance.now();
  const input = await svc.client.put("bench", key, createReadStream(path), "audio/wav");
  const t1 = performance.now();
  const accepted = await svc.client.ok("POST", "/v1/endpoints/long/invocations", {
    inputLocation: input,
    contentType: "audio/wav",
    accept: "application/json",
    invocationTimeoutSeconds: 3600,
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
    modelMs: inv.timing.modelMs as number,
  };
}

export async function runLongAudio(o: LongAudioOptions) {
  const svc = await serve({ KIKITORI_MODELS: o.modelsDir });
  try {
    await svc.client.endpoint("long", { image: "kikitori/whisper" }, { instances: 1, maxConcurrent: 1 });
    o.log(`long-audio: one pass (${o.passReference.split(" ").length} words) in one piece`);
    const piece = await transcribe(svc, "pass.wav", o.passPath);
    o.log(`long-audio: ${(o.longSeconds / 60).toFixed(1)} min file`);
    const memory = sampleMemory(svc);
    const long = await transcribe(svc, "long.wav", o.longPath);
    const mem = memory.stop();
    const pieces = Array.from({ length: o.passes }, () => piece.text).join(" ");
    const versusReference = wordErrors(o.longReference, long.text);
    const versusPieces = wordErrors(pieces, long.text);
    const pieceVersusReference = wordErrors(o.passReference, piece.text);
    return {
      audioSeconds: round(o.longSeconds, 1),
      passes: o.passes,
      uploadSeconds: round(long.uploadSeconds, 2),
      wallSeconds: round(long.wallSeconds, 2),
      modelSeconds: round(long.modelMs / 1000, 2),
      rtfx: round(o.longSeconds / long.wallSeconds, 2),
      memory: mem,
      quality: {
        longWer: round(errorRate(versusReference), 4),
        piecesWer: round(errorRate(pieceVersusReference), 4),
        longVersusPiecesWer: round(errorRate(versusPieces), 4),
        longCounts: versusReference,
      },
      longTextSample: long.text.slice(0, 400),
    };
  } finally {
    await svc.stop();
  }
}
