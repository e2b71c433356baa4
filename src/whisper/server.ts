/**
 * The built-in model server, honouring the SageMaker container contract: GET /ping, POST /invocations.
 * Plus, for the instance runner: GET /kikitori/progress (each invocation's progress, with the VAD chunks
 * decoded since the last call: checkpoints, handed over once) and PUT /kikitori/resume/{id} (the
 * checkpoints of an earlier attempt, taken instead of decoded when invocation {id} comes); and for one
 * file across many instances (src/instances/chunked.ts): POST /kikitori/plan, GET /kikitori/pcm/{id},
 * POST /kikitori/chunk, POST /kikitori/stitch. Plain node:http, and the request body must stream into the
 * decoder untouched.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";
import { buffer, text } from "node:stream/consumers";
import { parseCustomAttributes } from "./attributes.js";
import { AudioDecodeError } from "./audio.js";
import { InvalidOptionError, WhisperEngine, stitchTranscript } from "./engine.js";
import { CONTENT_TYPES, formatFromAccept, renderTranscript, resultAttributes } from "./formats.js";
import { findModelFile } from "./model-dir.js";
import type { ChunkResult, OutputFormat, Progress, Transcript } from "./types.js";

/** How long checkpoints handed over for a resume wait for their invocation. */
const RESUME_KEEP_MS = 10 * 60_000;
/** How long a plan's audio waits for its runner to fetch it. */
const PCM_KEEP_MS = 10 * 60_000;
const PCM_PATH = "/kikitori/pcm/";

/** x-kikitori-chunk of POST /kikitori/chunk. */
interface ChunkRequest {
  regions: Array<[number, number]>;
  language: string;
}

/** The body of POST /kikitori/stitch: the plan's facts and its chunks' results, in order. */
interface StitchRequest {
  duration: number;
  language: string;
  languageProbability?: number;
  speech: NonNullable<Transcript["speech"]>;
  chunks: ChunkResult[];
}

export interface ModelServerOptions {
  /** 0 picks a free port. @defaultValue 8080 */
  port?: number;
  /** @defaultValue "127.0.0.1" */
  host?: string;
  /** Directory holding the ggml model (see findModelFile). */
  modelDir: string;
  /** @defaultValue false */
  gpu?: boolean;
  /** Threads per transcription. @defaultValue the engine's default */
  threads?: number;
  /** Transcriptions at once; more wait in-process. @defaultValue 1 */
  maxConcurrency?: number;
  /** Silero VAD model (ggml) for long files; without one, long files are windowed by energy alone. */
  vadModel?: string;
  /** One line per event (model loaded, each invocation). @defaultValue no logging */
  log?: (line: string) => void;
}

export interface ModelServer {
  port: number;
  /** Resolves once the model is loaded (/ping turns 200); rejects if it cannot be. */
  ready: Promise<void>;
  close(): Promise<void>;
}

type Status =
  { state: "loading" } | { state: "ready"; engine: WhisperEngine } | { state: "failed"; error: Error };

/** Listens at once (answering /ping with 503) and loads the model in the background. */
export async function startModelServer(opts: ModelServerOptions): Promise<ModelServer> {
  const log = opts.log ?? (() => undefined);
  let status: Status = { state: "loading" };
  const inFlight = new Map<string, Progress & { chunks: ChunkResult[] }>();
  /** Checkpoints of earlier attempts, by invocation id, until it comes (or RESUME_KEEP_MS pass). */
  const resumes = new Map<string, Map<number, ChunkResult>>();
  const openRequests = new Set<AbortController>();

  // The body is read only as fast as whisper transcribes it, so an hour of audio may take that long to
  // arrive: Node's default 5-minute limit on receiving a request must not apply.
  const server = createServer({ requestTimeout: 0 }, (req, res) => {
    const url = (req.url ?? "/").split("?")[0]!;
    if (req.method === "GET" && url === "/ping") return ping(res);
    if (req.method === "POST" && url === "/invocations") return void invoke(req, res, "whole");
    if (req.method === "GET" && url === "/kikitori/progress") {
      const body = Object.fromEntries([...inFlight].map(([id, p]) => [id, { ...p }]));
      for (const p of inFlight.values()) p.chunks = [];
      return sendJson(res, 200, body);
    }
    if (req.method === "PUT" && url.startsWith("/kikitori/resume/")) return void putResume(req, res, url);
    if (req.method === "POST" && url === "/kikitori/plan") return void invoke(req, res, "plan");
    if (req.method === "GET" && url.startsWith(PCM_PATH))
      return getPcm(res, decodeURIComponent(url.slice(PCM_PATH.length)));
    if (req.method === "POST" && url === "/kikitori/chunk") return void invoke(req, res, "chunk");
    if (req.method === "POST" && url === "/kikitori/stitch") return void stitch(req, res);
    req.resume();
    sendError(res, 404, "NotFound", `no route ${req.method} ${url}`);
  });

  function ping(res: ServerResponse): void {
    if (status.state === "ready") return sendJson(res, 200, { status: "Healthy" });
    if (status.state === "failed") return sendError(res, 500, "ModelError", status.error.message);
    sendError(res, 503, "ModelServerUnavailable", "the model is still loading");
  }

  async function putResume(req: IncomingMessage, res: ServerResponse, url: string): Promise<void> {
    const id = decodeURIComponent(url.slice("/kikitori/resume/".length));
    try {
      const chunks = JSON.parse(await text(req)) as ChunkResult[];
      resumes.set(id, new Map(chunks.map((c) => [c.start, c])));
      setTimeout(() => resumes.delete(id), RESUME_KEEP_MS).unref();
      sendJson(res, 200, { chunks: chunks.length });
    } catch (e) {
      sendError(res, 400, "ValidationError", `resume: ${(e as Error).message}`);
    }
  }

  /** The audio of planned invocations, by id, until the runner fetches it (or PCM_KEEP_MS pass). */
  const planned = new Map<string, Buffer>();

  function getPcm(res: ServerResponse, id: string): void {
    const pcm = planned.get(id);
    if (!pcm) return sendError(res, 404, "NotFound", `no planned audio for ${id}`);
    planned.delete(id);
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": pcm.length });
    res.end(pcm);
  }

  /** Renders the transcript of a plan's decoded chunks in the requested format (as /invocations would). */
  async function stitch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let options;
    let body: StitchRequest;
    try {
      options = parseCustomAttributes(header(req, "x-amzn-sagemaker-custom-attributes"));
      body = JSON.parse(await text(req)) as StitchRequest;
    } catch (e) {
      return sendError(res, 400, "ValidationError", (e as Error).message, (e as InvalidOptionError).field);
    }
    const format = options.format ?? formatFromAccept(header(req, "accept")) ?? "json";
    const transcript = stitchTranscript(
      body,
      body.chunks.flatMap((c) => c.segments),
      body.speech,
    );
    sendTranscript(res, transcript, format, options.transcribe.translate, req);
  }

  function sendTranscript(
    res: ServerResponse,
    transcript: Transcript,
    format: OutputFormat,
    translate: boolean | undefined,
    req: IncomingMessage,
    modelMs?: number,
  ): void {
    const body = renderTranscript(transcript, format, { task: translate ? "translate" : "transcribe" });
    res.writeHead(200, {
      "content-type": CONTENT_TYPES[format],
      "content-length": Buffer.byteLength(body),
      ...(modelMs !== undefined ? { "x-kikitori-model-time-ms": String(modelMs) } : {}),
      "x-kikitori-audio-seconds": transcript.duration.toFixed(3),
      ...(header(req, "x-kikitori-invocation-id")
        ? { "x-kikitori-invocation-id": header(req, "x-kikitori-invocation-id") }
        : {}),
      "x-amzn-sagemaker-custom-attributes": resultAttributes(transcript),
    });
    res.end(body);
  }

  /**
   * POST /invocations ("whole": the transcript), /kikitori/plan (the audio cut at speech: the plan as JSON,
   * the audio kept for GET /kikitori/pcm/{id}; 204 when the file is decoded in one piece) and
   * /kikitori/chunk (one chunk of a plan: its regions' audio as s16le in the body, the regions and language
   * in x-kikitori-chunk; the ChunkResult as JSON).
   */
  async function invoke(
    req: IncomingMessage,
    res: ServerResponse,
    kind: "whole" | "plan" | "chunk",
  ): Promise<void> {
    if (status.state !== "ready") {
      req.resume();
      const message = status.state === "failed" ? status.error.message : "the model is still loading";
      return sendError(res, status.state === "failed" ? 500 : 503, "ModelServerUnavailable", message);
    }
    const engine = status.engine;
    const id = header(req, "x-kikitori-invocation-id") ?? randomUUID();
    let options;
    try {
      options = parseCustomAttributes(header(req, "x-amzn-sagemaker-custom-attributes"));
    } catch (e) {
      req.resume();
      return sendError(res, 400, "ValidationError", (e as Error).message, (e as InvalidOptionError).field);
    }
    const format = options.format ?? formatFromAccept(header(req, "accept")) ?? "json";

    // A client that goes away cancels its transcription, so a caller can cancel by disconnecting.
    const abort = new AbortController();
    openRequests.add(abort);
    res.once("close", () => {
      if (!res.writableFinished) abort.abort(new Error("the client disconnected"));
    });
    const progress = { processedSeconds: 0, totalSeconds: 0, chunks: [] as ChunkResult[] };
    inFlight.set(id, progress);
    const resume = resumes.get(id);
    resumes.delete(id);
    let startedAt: number | undefined;
    const control = {
      signal: abort.signal,
      onStart: () => (startedAt = performance.now()),
      onProgress: (p: Progress) => Object.assign(progress, p),
      onChunk: (c: ChunkResult) => progress.chunks.push(c),
      resume,
    };
    const took = () => Math.round(performance.now() - (startedAt ?? performance.now()));
    try {
      if (kind === "plan") {
        const cut = await engine.plan(req, options.transcribe, control);
        if (!cut) {
          res.writeHead(204).end();
        } else {
          planned.set(id, Buffer.from(cut.pcm.buffer, cut.pcm.byteOffset, cut.pcm.byteLength));
          setTimeout(() => planned.delete(id), PCM_KEEP_MS).unref();
          sendJson(res, 200, cut.plan);
        }
      } else if (kind === "chunk") {
        const chunk = JSON.parse(header(req, "x-kikitori-chunk") ?? "null") as ChunkRequest | null;
        if (!chunk || !Array.isArray(chunk.regions))
          throw new InvalidOptionError("x-kikitori-chunk", "missing");
        const bytes = await buffer(req);
        const pcm = new Int16Array(bytes.buffer, bytes.byteOffset, Math.floor(bytes.length / 2));
        const result = await engine.decodeChunk(
          pcm.slice(),
          chunk.regions,
          chunk.language,
          options.transcribe,
          control,
        );
        res.setHeader("x-kikitori-model-time-ms", String(took()));
        sendJson(res, 200, result);
      } else {
        const transcript = await engine.transcribe(req, options.transcribe, control);
        sendTranscript(res, transcript, format, options.transcribe.translate, req, took());
      }
      log(
        JSON.stringify({ event: kind === "whole" ? "invocation" : kind, id, status: 200, modelMs: took() }),
      );
    } catch (e) {
      const err = e as Error;
      if (abort.signal.aborted) {
        log(
          JSON.stringify({ event: "invocation", id, status: "aborted", reason: String(abort.signal.reason) }),
        );
        return;
      }
      if (err instanceof AudioDecodeError) sendError(res, 422, "InvalidAudio", err.message);
      else if (err instanceof InvalidOptionError)
        sendError(res, 400, "ValidationError", err.message, err.field);
      else sendError(res, 500, "ModelError", err.message);
      log(JSON.stringify({ event: "invocation", id, status: res.statusCode, error: err.message }));
    } finally {
      inFlight.delete(id);
      openRequests.delete(abort);
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 8080, opts.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  log(JSON.stringify({ event: "listening", host: opts.host ?? "127.0.0.1", port }));

  const ready = (async () => {
    try {
      const modelPath = await findModelFile(opts.modelDir);
      const t0 = performance.now();
      const engine = await WhisperEngine.load(modelPath, {
        gpu: opts.gpu,
        threads: opts.threads,
        slots: opts.maxConcurrency ?? 1,
        vadModel: opts.vadModel,
      });
      status = { state: "ready", engine };
      log(
        JSON.stringify({
          event: "model:loaded",
          modelPath,
          vadModel: opts.vadModel ?? null,
          loadMs: Math.round(performance.now() - t0),
        }),
      );
    } catch (e) {
      status = { state: "failed", error: e as Error };
      throw e;
    }
  })();
  // Callers that only want the port need not await `ready`; its failure is visible through /ping.
  ready.catch(() => undefined);

  return {
    port,
    ready,
    async close() {
      for (const a of openRequests) a.abort(new Error("the model server is shutting down"));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await ready.catch(() => undefined);
      if (status.state === "ready") await status.engine.close();
    },
  };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(",") : v;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

/** `{ error: { code, message, field? } }`; the connection closes since the request body may be unread. */
function sendError(res: ServerResponse, status: number, code: string, message: string, field?: string): void {
  if (res.headersSent || res.destroyed) return;
  res.setHeader("connection", "close");
  sendJson(res, status, { error: { code, message, ...(field ? { field } : {}) } });
}
