import type {} from "@fastify/swagger";
import type { FastifyInstance, FastifyReply } from "fastify";
import type { Readable } from "node:stream";
import type { Service } from "../../core/service.js";
import type { Invocation } from "../../core/types.js";
import { INVOCATION_STATES, isTerminal } from "../../core/types.js";
import { s3Location } from "../../core/rules.js";
import { parseRange } from "../../storage/range.js";
import { buffer } from "node:stream/consumers";
import { KikitoriError, validation } from "../../errors.js";
import { CONTENT_TYPES, renderTranscript } from "../../whisper/formats.js";
import { LANGUAGE_NAMES } from "../../whisper/languages.js";
import { OUTPUT_FORMATS, type OutputFormat, type Transcript } from "../../whisper/types.js";
import { invocationListEvents, waitForChange } from "../../notify/index.js";
import { sendEventStream, wantsEventStream } from "./sse.js";
import { toCustomAttributes, type TranscriptionOptions } from "./attributes.js";
import { checkObjectAccess, visibleInvocation } from "../../auth/keys.js";

/** SageMaker's resource names (core/rules.ts checkName), as a schema. */
const name = { type: "string", pattern: "^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$" } as const;
const nameParams = { type: "object", properties: { name } } as const;
/** Success statuses other than 200, for the OpenAPI document (bodies are left as they are). */
/** A response documented by its status alone; `type: "null"` tells the OpenAPI document 204 has no body. */
const answers = (status: 201 | 202 | 204, description: string) => ({
  [status]: status === 204 ? { description, type: "null" } : { description },
});

/** The public view of an invocation. */
export function invocationView(inv: Invocation & { queuePosition?: number }, eta?: number) {
  return {
    inferenceId: inv.id,
    endpoint: inv.endpoint,
    state: inv.state,
    queuePosition: inv.queuePosition,
    /** Estimated finish (src/core/eta.ts), for a queued or running invocation once the endpoint has a pace. */
    eta: eta === undefined ? undefined : new Date(eta).toISOString(),
    inputLocation: inv.inputLocation,
    outputLocation: inv.outputLocation,
    failureLocation: inv.failureLocation,
    contentType: inv.contentType,
    accept: inv.accept,
    customAttributes: inv.customAttributes,
    attempts: inv.attempts,
    maxAttempts: inv.maxAttempts,
    progress:
      inv.totalSeconds !== undefined
        ? {
            processedSeconds: inv.progressSeconds ?? 0,
            totalSeconds: inv.totalSeconds,
            percent:
              inv.totalSeconds > 0 ? Math.min(100, (100 * (inv.progressSeconds ?? 0)) / inv.totalSeconds) : 0,
          }
        : undefined,
    timing: {
      createdAt: new Date(inv.createdAt).toISOString(),
      startedAt: inv.startedAt ? new Date(inv.startedAt).toISOString() : undefined,
      finishedAt: inv.finishedAt ? new Date(inv.finishedAt).toISOString() : undefined,
      queuedMs:
        (inv.startedAt ?? (isTerminal(inv.state) ? inv.finishedAt : Date.now()) ?? Date.now()) -
        inv.createdAt,
      totalMs: inv.finishedAt ? inv.finishedAt - inv.createdAt : undefined,
      modelMs: inv.modelTimeMs,
    },
    requestTtlSeconds: inv.requestTtlSeconds,
    invocationTimeoutSeconds: inv.invocationTimeoutSeconds,
    error: inv.error,
  };
}

/** The public view of an endpoint: its status, config, live instances and backlog. */
export async function endpointView(service: Service, name: string) {
  const { endpoint, config, instances } = await service.describeEndpoint(name);
  const backlog = await service.backlog(endpoint.name);
  return { ...endpoint, config, instances, backlog };
}

/** What an invocation request and a job (src/api/rest/jobs.ts) share: how each file is transcribed and reported. */
export interface SharedInvokeBody {
  contentType?: string;
  accept?: string;
  options?: TranscriptionOptions;
  customAttributes?: string;
  requestTtlSeconds?: number;
  invocationTimeoutSeconds?: number;
  outputPathExtension?: string;
  webhook?: { url: string; events?: string[]; includeTranscript?: boolean };
}

interface InvokeBody extends SharedInvokeBody {
  inputLocation: string;
  inferenceId?: string;
}

/** The JSON schema of SharedInvokeBody's fields. */
export const SHARED_INVOKE_PROPERTIES = {
  contentType: { type: "string" },
  accept: { type: "string" },
  customAttributes: { type: "string" },
  options: {
    type: "object",
    additionalProperties: false,
    properties: {
      language: { type: "string" },
      task: { type: "string", enum: ["transcribe", "translate"] },
      prompt: { type: "string" },
      temperature: { type: "number", minimum: 0, maximum: 1 },
      beamSize: { type: "integer", minimum: 1, maximum: 16 },
      wordTimestamps: { type: "boolean" },
      vad: { type: "boolean", description: "cut at speech (Silero VAD); default on over 30 s" },
      format: { type: "string", enum: ["json", "text", "srt", "vtt", "tsv", "verbose_json"] },
    },
  },
  requestTtlSeconds: { type: "integer" },
  invocationTimeoutSeconds: { type: "integer" },
  outputPathExtension: { type: "string" },
  webhook: {
    type: "object",
    required: ["url"],
    additionalProperties: false,
    properties: {
      url: { type: "string" },
      events: {
        type: "array",
        items: { type: "string", enum: ["start", "progress", "completed"] },
      },
      includeTranscript: { type: "boolean" },
    },
  },
} as const;

/** The core's request fields from SharedInvokeBody: options become custom attributes, webhooks get their default events. */
export function sharedInvokeFields(b: SharedInvokeBody) {
  const attrs = [b.customAttributes, b.options ? toCustomAttributes(b.options) : undefined]
    .filter(Boolean)
    .join(",");
  return {
    contentType: b.contentType,
    accept: b.accept,
    customAttributes: attrs || undefined,
    requestTtlSeconds: b.requestTtlSeconds,
    invocationTimeoutSeconds: b.invocationTimeoutSeconds,
    outputPathExtension: b.outputPathExtension,
    webhook: b.webhook
      ? {
          url: b.webhook.url,
          events: b.webhook.events ?? ["completed"],
          includeTranscript: b.webhook.includeTranscript,
        }
      : undefined,
  };
}

/** The native REST API (`/v1`): friendly JSON over the same core as the AWS front door. */
export async function registerRest(app: FastifyInstance, service: Service): Promise<void> {
  // --- objects: raw bodies, streamed ---
  await app.register(async (objects) => {
    objects.removeAllContentTypeParsers();
    objects.addContentTypeParser("*", (_req, payload, done) => done(null, payload));

    objects.put<{ Params: { bucket: string } }>(
      "/v1/buckets/:bucket",
      {
        config: { auth: { allow: "admin" } },
        schema: {
          tags: ["objects"],
          summary: "Create a bucket",
          params: { type: "object", properties: { bucket: { type: "string" } } },
        },
      },
      async (req, reply) => {
        await service.objects.createBucket(req.params.bucket).catch((e: { code?: string }) => {
          if (e.code !== "BucketAlreadyOwnedByYou") throw e;
        });
        return reply.code(200).send({ bucket: req.params.bucket });
      },
    );

    objects.put<{ Params: { bucket: string; "*": string } }>(
      "/v1/objects/:bucket/*",
      {
        config: { auth: { allow: "invoke" } },
        schema: {
          tags: ["objects"],
          summary: "Upload an object (the raw body is stored as is)",
          response: answers(201, "Stored: its s3:// location, size and ETag"),
        },
      },
      async (req, reply) => {
        const { bucket, key } = s3Location("object", `s3://${req.params.bucket}/${req.params["*"]}`);
        checkObjectAccess(req.principal, key);
        await service.objects.createBucket(bucket).catch((e: { code?: string }) => {
          if (e.code !== "BucketAlreadyOwnedByYou") throw e;
        });
        const info = await service.objects.putObject(bucket, key, req.body as Readable, {
          contentType: req.headers["content-type"],
          maxBytes: service.options.maxInputBytes,
        });
        return reply.code(201).send({ location: `s3://${bucket}/${key}`, size: info.size, etag: info.etag });
      },
    );

    objects.get<{ Params: { bucket: string; "*": string } }>(
      "/v1/objects/:bucket/*",
      {
        config: { auth: { allow: "invoke" } },
        schema: { tags: ["objects"], summary: "Download an object (one byte range with `Range: bytes=a-b`)" },
      },
      async (req, reply) => {
        const { bucket, key } = s3Location("object", `s3://${req.params.bucket}/${req.params["*"]}`);
        checkObjectAccess(req.principal, key);
        const range = parseRange(req.headers.range);
        const { info, body, range: served } = await service.objects.getObject(bucket, key, range);
        reply.header("content-type", info.contentType).header("accept-ranges", "bytes");
        if (!served) return reply.header("content-length", info.size).send(body);
        // A media player seeks with ranges.
        return reply
          .code(206)
          .header("content-range", `bytes ${served.start}-${served.end}/${info.size}`)
          .header("content-length", served.end - served.start + 1)
          .send(body);
      },
    );
  });

  // --- models ---
  app.post<{
    Body: { name: string; image?: string; modelDataUrl?: string; environment?: Record<string, string> };
  }>(
    "/v1/models",
    {
      config: { auth: { allow: "admin" } },
      schema: {
        tags: ["models"],
        summary: "Create a model",
        response: answers(201, "The model"),
        body: {
          type: "object",
          required: ["name"],
          additionalProperties: false,
          properties: {
            name,
            image: { type: "string", default: "kikitori/whisper" },
            modelDataUrl: { type: "string" },
            environment: { type: "object", additionalProperties: { type: "string" } },
          },
        },
      },
    },
    async (req, reply) =>
      reply
        .code(201)
        .send(await service.createModel({ ...req.body, image: req.body.image ?? "kikitori/whisper" })),
  );
  app.get("/v1/models", { config: { auth: { allow: "admin" } }, schema: { tags: ["models"] } }, async () => ({
    models: await service.listModels(),
  }));
  app.get<{ Params: { name: string } }>(
    "/v1/models/:name",
    { config: { auth: { allow: "admin" } }, schema: { tags: ["models"] } },
    async (req) => service.getModel(req.params.name),
  );
  app.delete<{ Params: { name: string } }>(
    "/v1/models/:name",
    {
      config: { auth: { allow: "admin" } },
      schema: { tags: ["models"], params: nameParams, response: answers(204, "Deleted") },
    },
    async (req, reply) => {
      await service.deleteModel(req.params.name);
      return reply.code(204).send();
    },
  );

  // --- endpoint configs ---
  app.post<{
    Body: {
      name: string;
      variants?: {
        variantName?: string;
        modelName: string;
        instanceType?: string;
        initialInstanceCount?: number;
      }[];
      modelName?: string;
      outputPath?: string;
      failurePath?: string;
      maxConcurrentInvocationsPerInstance?: number;
    };
  }>(
    "/v1/endpoint-configs",
    {
      config: { auth: { allow: "admin" } },
      schema: {
        tags: ["endpoints"],
        summary: "Create an endpoint config (async inference is always on in the native API)",
        response: answers(201, "The endpoint config"),
        body: {
          type: "object",
          required: ["name"],
          additionalProperties: false,
          properties: {
            name,
            modelName: { ...name, description: "shorthand for one variant named AllTraffic" },
            variants: {
              type: "array",
              items: {
                type: "object",
                required: ["modelName"],
                additionalProperties: false,
                properties: {
                  variantName: { type: "string" },
                  modelName: name,
                  instanceType: { type: "string" },
                  initialInstanceCount: { type: "integer", minimum: 0 },
                },
              },
            },
            outputPath: { type: "string" },
            failurePath: { type: "string" },
            maxConcurrentInvocationsPerInstance: { type: "integer", minimum: 1 },
          },
        },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const variants = b.variants ?? (b.modelName ? [{ modelName: b.modelName }] : []);
      const config = await service.createEndpointConfig({
        name: b.name,
        variants,
        asyncConfig: {
          outputPath: b.outputPath,
          failurePath: b.failurePath,
          maxConcurrentInvocationsPerInstance: b.maxConcurrentInvocationsPerInstance,
        },
      });
      return reply.code(201).send(config);
    },
  );
  app.get(
    "/v1/endpoint-configs",
    { config: { auth: { allow: "admin" } }, schema: { tags: ["endpoints"] } },
    async () => ({
      endpointConfigs: await service.listEndpointConfigs(),
    }),
  );
  app.get<{ Params: { name: string } }>(
    "/v1/endpoint-configs/:name",
    { config: { auth: { allow: "admin" } }, schema: { tags: ["endpoints"] } },
    async (req) => service.getEndpointConfig(req.params.name),
  );
  app.delete<{ Params: { name: string } }>(
    "/v1/endpoint-configs/:name",
    {
      config: { auth: { allow: "admin" } },
      schema: { tags: ["endpoints"], params: nameParams, response: answers(204, "Deleted") },
    },
    async (req, reply) => {
      await service.deleteEndpointConfig(req.params.name);
      return reply.code(204).send();
    },
  );

  // --- endpoints ---
  app.post<{ Body: { name: string; configName: string } }>(
    "/v1/endpoints",
    {
      config: { auth: { allow: "admin" } },
      schema: {
        tags: ["endpoints"],
        summary: "Create an endpoint from a config; its instances start in the background",
        response: answers(201, "The endpoint, Creating"),
        body: {
          type: "object",
          required: ["name", "configName"],
          additionalProperties: false,
          properties: { name, configName: name },
        },
      },
    },
    async (req, reply) => reply.code(201).send(await service.createEndpoint(req.body)),
  );
  app.get(
    "/v1/endpoints",
    { config: { auth: { allow: "admin" } }, schema: { tags: ["endpoints"] } },
    async () => ({
      endpoints: await service.listEndpoints(),
    }),
  );
  app.get<{ Params: { name: string } }>(
    "/v1/endpoints/:name",
    { config: { auth: { allow: "admin" } }, schema: { tags: ["endpoints"] } },
    async (req) => endpointView(service, req.params.name),
  );
  app.delete<{ Params: { name: string } }>(
    "/v1/endpoints/:name",
    {
      config: { auth: { allow: "admin" } },
      schema: { tags: ["endpoints"], params: nameParams, response: answers(202, "Deleting") },
    },
    async (req, reply) => {
      await service.deleteEndpoint(req.params.name);
      return reply.code(202).send({ name: req.params.name, status: "Deleting" });
    },
  );

  // --- invocations ---
  app.post<{ Params: { name: string }; Body: InvokeBody }>(
    "/v1/endpoints/:name/invocations",
    {
      config: { auth: { allow: "invoke" } },
      schema: {
        tags: ["invocations"],
        summary: "Invoke asynchronously: 202 with the InferenceId and where the result will appear",
        body: {
          type: "object",
          required: ["inputLocation"],
          additionalProperties: false,
          properties: {
            inputLocation: { type: "string", description: "s3://bucket/key of the audio" },
            ...SHARED_INVOKE_PROPERTIES,
            inferenceId: { type: "string" },
          },
        },
        params: nameParams,
        response: { ...answers(202, "Queued: the invocation, with where its result will appear") },
      },
    },
    async (req, reply) => {
      const b = req.body;
      if (req.principal?.scope !== "admin")
        checkObjectAccess(req.principal, s3Location("inputLocation", b.inputLocation).key, "input");
      const inv = await service.invokeAsync({
        ...sharedInvokeFields(b),
        endpoint: req.params.name,
        inputLocation: b.inputLocation,
        inferenceId: b.inferenceId,
        principal: req.principal?.id,
      });
      const { queuePosition, eta } = await service.standing(inv);
      const view = invocationView({ ...inv, queuePosition }, eta);
      return reply
        .code(202)
        .header("location", `/v1/invocations/${encodeURIComponent(inv.id)}`)
        .send(view);
    },
  );

  app.get<{
    Querystring: { endpoint?: string; state?: Invocation["state"]; limit?: number; before?: number };
  }>(
    "/v1/invocations",
    {
      config: { auth: { allow: "invoke" } },
      schema: {
        tags: ["invocations"],
        summary: "List invocations, newest first; with `Accept: text/event-stream`, watch the list live",
        description:
          "With `Accept: text/event-stream` the answer is a server-sent event stream: `snapshot` " +
          "(`{invocations}`: the first page), then `invocation` (an invocation that appeared or changed: " +
          "state, queue position, progress, attempts) and `removed` (`{inferenceId}`: it left the filter " +
          "or the page). `before` does not apply to the stream.",
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            endpoint: { type: "string" },
            state: { type: "string", enum: [...INVOCATION_STATES] },
            limit: { type: "integer", minimum: 1, maximum: 1000, default: 100 },
            before: { type: "integer", description: "continue from the `next` cursor of the previous page" },
          },
        },
      },
    },
    async (req, reply) => {
      const q = req.query;
      if (wantsEventStream(req.headers.accept)) {
        const filter = {
          endpoint: q.endpoint,
          state: q.state,
          principal: req.principal?.scope === "admin" ? undefined : req.principal?.id,
          limit: q.limit ?? 100,
        };
        return sendEventStream(req, reply, (signal) =>
          invocationListEvents(service, filter, invocationView, signal),
        );
      }
      const invs = await service.listInvocations({
        endpoint: q.endpoint,
        state: q.state,
        principal: req.principal?.scope === "admin" ? undefined : req.principal?.id,
        limit: q.limit,
        beforeSeq: q.before,
      });
      const limit = q.limit ?? 100;
      return {
        invocations: invs.map((inv) => invocationView(inv)),
        next: invs.length === limit ? invs.at(-1)?.seq : undefined,
      };
    },
  );

  app.get<{ Params: { id: string }; Querystring: { wait?: number } }>(
    "/v1/invocations/:id",
    {
      config: { auth: { allow: "invoke" } },
      schema: {
        tags: ["invocations"],
        querystring: {
          type: "object",
          properties: {
            wait: {
              type: "integer",
              minimum: 0,
              maximum: 60,
              description: "long poll: answer when the state changes, or after this many seconds",
            },
          },
        },
      },
    },
    async (req, reply) => {
      const seen = await visibleInvocation(req.principal, req.params.id, (id) => service.getInvocation(id));
      const abort = new AbortController();
      reply.raw.on("close", () => abort.abort());
      // Without a long poll the invocation just read is the answer: no second read.
      const inv = req.query.wait
        ? await waitForChange(service, req.params.id, req.query.wait * 1000, abort.signal)
        : seen;
      const { queuePosition, eta } = await service.standing(inv);
      return invocationView({ ...inv, queuePosition }, eta);
    },
  );

  app.post<{ Params: { id: string } }>(
    "/v1/invocations/:id/cancel",
    {
      config: { auth: { allow: "invoke" } },
      schema: {
        tags: ["invocations"],
        summary: "Cancel: at once when queued; a running one stops within about a second",
      },
    },
    async (req) => {
      await visibleInvocation(req.principal, req.params.id, (id) => service.getInvocation(id));
      return invocationView(await service.cancel(req.params.id));
    },
  );

  app.get<{ Params: { id: string }; Querystring: { format?: OutputFormat } }>(
    "/v1/invocations/:id/result",
    {
      config: { auth: { allow: "invoke" } },
      schema: {
        tags: ["invocations"],
        summary: "The output document, or the failure document (with its error status)",
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            format: {
              type: "string",
              enum: [...OUTPUT_FORMATS],
              description:
                "render a json or verbose_json transcript in this format instead (text, srt, vtt, ...)",
            },
          },
        },
      },
    },
    async (req, reply) =>
      sendResult(
        service,
        await visibleInvocation(req.principal, req.params.id, (id) => service.getInvocation(id)),
        reply,
        req.query.format,
      ),
  );
}

/** Largest transcript document that `?format=` renders again (an hour of speech is about 1 MB of JSON). */
const MAX_RENDER_BYTES = 64 * 1024 * 1024;

async function sendResult(service: Service, inv: Invocation, reply: FastifyReply, format?: OutputFormat) {
  if (!isTerminal(inv.state)) {
    throw new KikitoriError("Conflict", `invocation ${inv.id} is ${inv.state}; its result is not ready`);
  }
  const location = inv.state === "Succeeded" ? inv.outputLocation : inv.failureLocation;
  const { bucket, key } = s3Location("location", location);
  const { info, body } = await service.objects.getObject(bucket, key);
  if (format && inv.state === "Succeeded") {
    if (info.size > MAX_RENDER_BYTES) {
      body.destroy();
      throw validation(
        "format",
        `the result is ${info.size} bytes; at most ${MAX_RENDER_BYTES} are rendered again`,
      );
    }
    const transcript = transcriptOf(await buffer(body));
    if (!transcript) {
      throw validation(
        "format",
        `the result of ${inv.id} is ${info.contentType}, not a json or verbose_json transcript; only those can be rendered in another format`,
      );
    }
    return reply
      .header("content-type", CONTENT_TYPES[format])
      .header("x-kikitori-state", inv.state)
      .send(renderTranscript(transcript, format));
  }
  return reply
    .code(inv.state === "Succeeded" ? 200 : 422)
    .header("content-type", info.contentType)
    .header("x-kikitori-state", inv.state)
    .send(body);
}

/** A transcript read back from a json or verbose_json result, or undefined when it is neither. */
function transcriptOf(doc: Buffer): Transcript | undefined {
  let t: Partial<Transcript> & { task?: string };
  try {
    t = JSON.parse(doc.toString("utf8"));
  } catch {
    return undefined;
  }
  if (typeof t?.text !== "string" || !Array.isArray(t.segments)) return undefined;
  // verbose_json names the language ("english"); the transcript keeps its code.
  const language = String(t.language ?? "");
  const code = Object.entries(LANGUAGE_NAMES).find(([, n]) => n === language)?.[0] ?? language;
  const p = (t as { language_probability?: unknown }).language_probability;
  return {
    text: t.text,
    language: code,
    ...(typeof p === "number" ? { languageProbability: p } : {}),
    duration: Number(t.duration ?? 0),
    segments: t.segments,
  };
}
