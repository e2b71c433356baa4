import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import multipart from "@fastify/multipart";
import { randomUUID } from "node:crypto";
import type { Service } from "../../core/service.js";
import { isTerminal, type Invocation } from "../../core/types.js";
import { s3Location, safeFilename } from "../../core/rules.js";
import { KikitoriError } from "../../errors.js";
import { waitForChange } from "../../notify/index.js";
import { toCustomAttributes, type TranscriptionOptions } from "../rest/attributes.js";
import { restError } from "../errors.js";
import { durationUsage, EventStream, transcriptEvents } from "./stream.js";
import { LANGUAGE_NAMES } from "../../whisper/languages.js";
import type { Refusal } from "../../auth/types.js";

/** OpenAI's response formats and the kikitori formats behind them. */
const FORMATS = { json: "json", text: "text", srt: "srt", vtt: "vtt", verbose_json: "verbose_json" } as const;
type OpenAiFormat = keyof typeof FORMATS;

export interface OpenAiOptions {
  /** Endpoint used for model names that are not endpoints of their own (e.g. "whisper-1"). */
  defaultEndpoint: string;
  /** Largest accepted upload. */
  maxBytes: number;
}

class OpenAiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null,
    readonly code: string | null = null,
    readonly type = "invalid_request_error",
  ) {
    super(message);
  }
}

/** Anything thrown → OpenAI's error body and status. */
function openAiErrorBody(e: unknown) {
  if (e instanceof OpenAiError) {
    return {
      status: e.status,
      body: { error: { message: e.message, type: e.type, param: e.param, code: e.code } },
    };
  }
  const { status, body } = restError(e);
  const type = status >= 500 ? "server_error" : "invalid_request_error";
  return {
    status,
    body: { error: { message: body.error.message, type, param: null, code: body.error.code } },
  };
}

function sendError(reply: FastifyReply, e: unknown) {
  const { status, body } = openAiErrorBody(e);
  return reply.code(status).send(body);
}

/**
 * The OpenAI-compatible `/v1/audio/transcriptions` and `/v1/audio/translations`: a synchronous facade
 * over the same asynchronous core. The upload is stored, invoked on an endpoint, and the reply waits
 * for the result.
 */
export async function registerOpenAi(
  app: FastifyInstance,
  service: Service,
  o: OpenAiOptions,
): Promise<void> {
  await app.register(async (scope) => {
    await scope.register(multipart, { limits: { fileSize: o.maxBytes, files: 1, fields: 20, parts: 40 } });
    for (const task of ["transcribe", "translate"] as const) {
      const path = task === "transcribe" ? "/v1/audio/transcriptions" : "/v1/audio/translations";
      scope.post(
        path,
        {
          config: { auth: { allow: "invoke", refuse: refuseOpenAi } },
          schema: {
            tags: ["openai"],
            summary: `OpenAI-compatible ${task === "transcribe" ? "transcription" : "translation to English"} (multipart/form-data: file, model, ...)`,
          },
        },
        async (req, reply) => {
          let stored: { bucket: string; key: string } | undefined;
          try {
            if (!req.isMultipart()) {
              throw new OpenAiError(400, "expected a multipart/form-data body with a `file` field", "file");
            }
            const declared = Number(req.headers["content-length"] ?? 0);
            if (declared > o.maxBytes + MULTIPART_OVERHEAD)
              throw new OpenAiError(413, `file is larger than ${o.maxBytes} bytes`, "file");
            const fields: Record<string, string> = {};
            const granularities: string[] = [];
            let upload: { location: string; contentType: string } | undefined;
            for await (const part of req.parts()) {
              if (part.type === "file") {
                if (part.fieldname !== "file")
                  throw new OpenAiError(400, `unexpected file field "${part.fieldname}"`, part.fieldname);
                const key = `openai/${randomUUID()}/${safeFilename(part.filename)}`;
                stored = { bucket: service.options.defaultBucket, key };
                const info = await service.objects.putObject(stored.bucket, key, part.file, {
                  contentType: part.mimetype,
                  maxBytes: o.maxBytes,
                });
                if (part.file.truncated)
                  throw new OpenAiError(413, `file is larger than ${o.maxBytes} bytes`, "file");
                if (info.size === 0) throw new OpenAiError(400, "file is empty (0 bytes)", "file");
                upload = {
                  location: `s3://${service.options.defaultBucket}/${key}`,
                  contentType: part.mimetype,
                };
              } else if (
                part.fieldname === "timestamp_granularities[]" ||
                part.fieldname === "timestamp_granularities"
              ) {
                granularities.push(checkGranularity(String(part.value)));
              } else {
                fields[part.fieldname] = String(part.value);
                // Checked at once: a bad field sent before the file refuses the request before it is stored.
                await checkField(part.fieldname, fields[part.fieldname]!, service, o);
              }
            }
            if (!upload) throw new OpenAiError(400, "the `file` field is required", "file");
            if (!fields.model) throw new OpenAiError(400, "the `model` field is required", "model");
            const stream = fields.stream === "true";
            if (fields.stream !== undefined && !stream && fields.stream !== "false")
              throw new OpenAiError(400, "stream must be true or false", "stream");
            const format = (fields.response_format ?? "json") as OpenAiFormat;
            if (stream && format !== "json" && format !== "text")
              throw new OpenAiError(400, "stream=true needs response_format json or text", "response_format");
            if (!(format in FORMATS)) {
              throw new OpenAiError(
                400,
                `response_format must be one of ${Object.keys(FORMATS).join(", ")}`,
                "response_format",
              );
            }
            for (const g of granularities) {
              if (g !== "word" && g !== "segment")
                throw new OpenAiError(
                  400,
                  `unknown timestamp granularity "${g}"`,
                  "timestamp_granularities[]",
                );
            }
            let temperature: number | undefined;
            if (fields.temperature !== undefined) {
              temperature = Number(fields.temperature);
              if (!Number.isFinite(temperature) || temperature < 0 || temperature > 1) {
                throw new OpenAiError(400, "temperature must be a number from 0 to 1", "temperature");
              }
            }
            const options: TranscriptionOptions = {
              task,
              language: task === "transcribe" ? fields.language : undefined,
              prompt: fields.prompt,
              temperature,
              wordTimestamps: granularities.includes("word") || undefined,
              // A stream is built from the segments of the json format.
              format: stream ? "json" : FORMATS[format],
            };
            const endpoint = (await service.findEndpoint(fields.model)) ? fields.model : o.defaultEndpoint;
            // OpenAI clients never create endpoints: the default one is made on first use.
            await service.ensureBuiltinEndpoint(endpoint);
            const inv = await service.invokeAsync({
              endpoint,
              inputLocation: upload.location,
              contentType: upload.contentType,
              customAttributes: toCustomAttributes(options),
              principal: req.principal?.id,
            });
            // From here on the invocation owns the input.
            stored = undefined;
            const events = stream ? new EventStream(reply) : undefined;
            const done = await waitForTerminal(
              service,
              inv.id,
              inv.invocationTimeoutSeconds * 1000 + inv.requestTtlSeconds * 1000,
              req.raw,
              (cur) =>
                events?.comment(
                  `${cur.state}${cur.progressSeconds !== undefined ? ` ${cur.progressSeconds.toFixed(1)} s of ${cur.totalSeconds?.toFixed(1) ?? "?"} s` : ""}`,
                ),
            );
            if (events) {
              try {
                const t = JSON.parse((await resultOf(service, done)).body.toString("utf8"));
                for (const e of transcriptEvents(t)) events.send(e);
              } catch (e) {
                const { status, body } = openAiErrorBody(e);
                events.send({ ...body, status });
              }
              events.end();
              return reply;
            }
            const { body, contentType } = await resultOf(service, done);
            const json = format === "json" || format === "verbose_json";
            return reply
              .header("content-type", contentType)
              .header("x-kikitori-inference-id", inv.id)
              .send(json ? withUsage(body) : body);
          } catch (e) {
            if (stored) await service.objects.deleteObject(stored.bucket, stored.key).catch(() => {});
            return sendError(reply, multipartError(e));
          }
        },
      );
    }
  });
}

/** OpenAI's own model names, served by the default endpoint. */
const OPENAI_MODELS = new Set(["whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe"]);
/** Room for the multipart framing and the small fields around the file. */
const MULTIPART_OVERHEAD = 1024 * 1024;

/** The OpenAI dialect of an auth refusal. */
function refuseOpenAi(_req: FastifyRequest, reply: FastifyReply, r: Refusal): FastifyReply {
  const code = r.status === 401 ? "invalid_api_key" : r.code;
  return reply.code(r.status).send({
    error: { message: r.message, type: "invalid_request_error", param: null, code },
  });
}

/** Checks one form field as it arrives. */
async function checkField(name: string, value: string, service: Service, o: OpenAiOptions): Promise<void> {
  switch (name) {
    case "model":
      if (!OPENAI_MODELS.has(value) && value !== o.defaultEndpoint && !(await service.findEndpoint(value)))
        throw new OpenAiError(
          404,
          `The model \`${value.slice(0, 100)}\` does not exist: use whisper-1 or the name of an endpoint`,
          "model",
          "model_not_found",
        );
      return;
    case "response_format":
      if (!(value in FORMATS))
        throw new OpenAiError(
          400,
          `response_format must be one of ${Object.keys(FORMATS).join(", ")}`,
          "response_format",
        );
      return;
    case "language":
      if (value !== "auto" && !Object.hasOwn(LANGUAGE_NAMES, value))
        throw new OpenAiError(
          400,
          `language "${value.slice(0, 20)}" is not a language Whisper knows (ISO-639-1, e.g. en, ja)`,
          "language",
        );
      return;
    case "temperature": {
      const t = Number(value);
      if (value.trim() === "" || !Number.isFinite(t) || t < 0 || t > 1)
        throw new OpenAiError(400, "temperature must be a number from 0 to 1", "temperature");
      return;
    }
  }
}

function checkGranularity(g: string): string {
  if (g !== "word" && g !== "segment")
    throw new OpenAiError(
      400,
      `unknown timestamp granularity "${g.slice(0, 20)}"`,
      "timestamp_granularities[]",
    );
  return g;
}

/** @fastify/multipart's errors (limits, broken framing) as OpenAI errors with 4xx statuses. */
function multipartError(e: unknown): unknown {
  if (e instanceof OpenAiError) return e;
  const code = (e as { code?: string }).code ?? "";
  if (code === "FST_REQ_FILE_TOO_LARGE") return new OpenAiError(413, (e as Error).message, "file");
  if (/^FST_(FILES|FIELDS|PARTS)_LIMIT$/.test(code)) return new OpenAiError(413, (e as Error).message, null);
  if (code.startsWith("FST_") && (e as { statusCode?: number }).statusCode === 406)
    return new OpenAiError(400, (e as Error).message, null);
  // busboy's framing errors ("Unexpected end of form", "Malformed part header", ...).
  if (
    e instanceof Error &&
    !(e as { status?: number }).status &&
    /form|part|boundary|multipart/i.test(e.message)
  )
    return new OpenAiError(400, `malformed multipart body: ${e.message}`, null);
  return e;
}

/** The result document of a finished invocation; an OpenAI error for anything but success. */
async function resultOf(service: Service, done: Invocation): Promise<{ body: Buffer; contentType: string }> {
  if (!isTerminal(done.state)) {
    throw new OpenAiError(
      504,
      `the transcription did not finish in time (invocation ${done.id} is ${done.state})`,
      null,
    );
  }
  if (done.state !== "Succeeded") {
    const invalid = done.error?.code === "InvalidAudio";
    throw new OpenAiError(
      invalid ? 400 : 500,
      done.error?.message ?? `invocation ${done.state}`,
      invalid ? "file" : null,
      done.error?.code ?? null,
      invalid ? "invalid_request_error" : "server_error",
    );
  }
  const { bucket, key } = s3Location("OutputLocation", done.outputLocation);
  const { info, body } = await service.objects.getObject(bucket, key);
  const chunks: Buffer[] = [];
  for await (const c of body as AsyncIterable<Buffer>) chunks.push(c);
  return { body: Buffer.concat(chunks), contentType: info.contentType };
}

/** json and verbose_json carry OpenAI's `usage` (audio billed by duration, as whisper-1 reports it). */
function withUsage(body: Buffer): string {
  const t = JSON.parse(body.toString("utf8")) as { duration?: number };
  return JSON.stringify({ ...t, usage: durationUsage(t.duration ?? 0) });
}

/** Waits for a terminal state, reporting each change; stops early when the client goes away. */
async function waitForTerminal(
  service: Service,
  id: string,
  timeoutMs: number,
  req: { once(e: "close", f: () => void): unknown },
  onChange: (cur: Invocation) => void = () => {},
) {
  const gone = new AbortController();
  req.once("close", () => gone.abort());
  const deadline = Date.now() + timeoutMs;
  let cur = await service.getInvocation(id);
  while (!isTerminal(cur.state) && Date.now() < deadline) {
    if (gone.signal.aborted) {
      // Nobody is waiting for the answer any more: free the instance.
      await service.cancel(id);
      throw new KikitoriError("Cancelled", "the client closed the connection");
    }
    cur = await waitForChange(service, id, Math.min(30_000, deadline - Date.now()), gone.signal);
    onChange(cur);
  }
  return cur;
}
