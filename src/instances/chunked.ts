/**
 * The built-in model server's routes for one long invocation across many instances (src/whisper/server.ts):
 * POST /kikitori/plan cuts the input at speech, GET /kikitori/pcm/{id} hands over its audio (kept in the
 * object store for every instance), POST /kikitori/chunk decodes one chunk, POST /kikitori/stitch renders
 * the finished chunks as the requested format. The runner (instance.ts) drives them; the model server's
 * types stay opaque here except for the few fields the runner reads.
 */
import { request, type IncomingMessage } from "node:http";
import type { Readable } from "node:stream";
import type { Invocation } from "../core/types.js";
import { s3Location } from "../core/rules.js";
import type { SpeechPlan } from "../whisper/engine.js";

export type { SpeechPlan };

/** What each chunk row carries (ChunkStore's `data`): its regions, and the plan's facts for the stitch. */
export interface ChunkData {
  regions: Array<[number, number]>;
  language: string;
  languageProbability?: number;
  duration: number;
}

/** A decoded chunk as kept in the store: the model server's result plus the model time it took. */
export interface ChunkOutcome {
  segments: unknown[];
  modelMs?: number;
}

const SAMPLE_BYTES = 2;
const SAMPLE_RATE = 16_000;

/** Where a planned invocation's audio (16 kHz s16le) waits for its chunks: beside its output. */
export function workObject(inv: Invocation): { bucket: string; key: string } {
  const { bucket } = s3Location("OutputLocation", inv.outputLocation);
  return { bucket, key: `.kikitori/work/${inv.id}.pcm` };
}

/** Byte range of each region in the work object (inclusive ends, as HTTP Range). */
export const regionBytes = (regions: ReadonlyArray<[number, number]>) =>
  regions.map(([a, b]) => ({ start: a * SAMPLE_BYTES, end: b * SAMPLE_BYTES - 1 }));

export const speechSeconds = (regions: ReadonlyArray<[number, number]>) =>
  regions.reduce((n, [a, b]) => n + b - a, 0) / SAMPLE_RATE;

function invocationHeaders(inv: Invocation, id = inv.id): Record<string, string> {
  const headers: Record<string, string> = { "x-kikitori-invocation-id": id };
  if (inv.accept) headers.accept = inv.accept;
  if (inv.customAttributes) headers["x-amzn-sagemaker-custom-attributes"] = inv.customAttributes;
  return headers;
}

/** POSTs `body` to the model server; resolves with the response (unread). */
export function post(
  port: number,
  path: string,
  body: Readable | Buffer,
  headers: Record<string, string | number>,
  signal?: AbortSignal,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method: "POST", path, headers, signal }, resolve);
    req.on("error", (e) => {
      if (!Buffer.isBuffer(body)) body.destroy();
      reject(e);
    });
    if (Buffer.isBuffer(body)) req.end(body);
    else {
      body.on("error", (e) => req.destroy(e));
      body.pipe(req);
    }
  });
}

/** POST /kikitori/plan with the invocation's input; 204 means: decode it in one piece. */
export function requestPlan(
  port: number,
  input: { body: Readable; size: number },
  inv: Invocation,
  signal: AbortSignal,
): Promise<IncomingMessage> {
  return post(
    port,
    "/kikitori/plan",
    input.body,
    {
      ...invocationHeaders(inv),
      "content-type": inv.contentType ?? "application/octet-stream",
      "content-length": input.size,
    },
    signal,
  );
}

/** GET /kikitori/pcm/{id}: the planned audio, once. */
export function fetchPlannedAudio(port: number, id: string, signal: AbortSignal): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const path = `/kikitori/pcm/${encodeURIComponent(id)}`;
    const req = request({ host: "127.0.0.1", port, method: "GET", path, signal }, (res) =>
      res.statusCode === 200
        ? resolve(res)
        : reject(new Error(`the model server answered ${res.statusCode} for the planned audio`)),
    );
    req.on("error", reject);
    req.end();
  });
}

/** POST /kikitori/chunk: the chunk's audio, its regions and language; answers a ChunkResult as JSON. */
export function requestChunk(
  port: number,
  pcm: Buffer,
  idx: number,
  data: ChunkData,
  inv: Invocation,
  signal: AbortSignal,
): Promise<IncomingMessage> {
  return post(
    port,
    "/kikitori/chunk",
    pcm,
    {
      ...invocationHeaders(inv, `${inv.id}/chunk/${idx}`),
      "content-type": "application/octet-stream",
      "x-kikitori-chunk": JSON.stringify({ regions: data.regions, language: data.language }),
    },
    signal,
  );
}

/** POST /kikitori/stitch: the finished chunks rendered in the invocation's format. */
export function requestStitch(
  port: number,
  inv: Invocation,
  file: Pick<ChunkData, "duration" | "language" | "languageProbability">,
  chunks: Array<{ data: ChunkData; result: ChunkOutcome }>,
  resumed: number,
  signal: AbortSignal,
): Promise<IncomingMessage> {
  const body = {
    duration: file.duration,
    language: file.language,
    ...(file.languageProbability !== undefined ? { languageProbability: file.languageProbability } : {}),
    speech: {
      regions: chunks.reduce((n, c) => n + c.data.regions.length, 0),
      seconds: chunks.reduce((n, c) => n + speechSeconds(c.data.regions), 0),
      chunks: chunks.length,
      resumed,
    },
    chunks: chunks.map((c) => c.result),
  };
  return post(
    port,
    "/kikitori/stitch",
    Buffer.from(JSON.stringify(body)),
    { ...invocationHeaders(inv), "content-type": "application/json" },
    signal,
  );
}
