import type { FastifyInstance, FastifyRequest } from "fastify";
import multipart from "@fastify/multipart";
import { randomUUID } from "node:crypto";
import type { Service } from "../../core/service.js";
import { countStates, jobState, JOB_STATES, MAX_JOB_FILES, type JobInput } from "../../core/jobs.js";
import { isTerminal, type Invocation, type Job } from "../../core/types.js";
import type { StateCounts } from "../../queue/types.js";
import { s3Location, safeFilename } from "../../core/rules.js";
import { KikitoriError, notFound, validation } from "../../errors.js";
import type { Principal } from "../../auth/types.js";
import { mayTouchObject, uploadPrefix } from "../../auth/keys.js";
import {
  invocationView,
  SHARED_INVOKE_PROPERTIES,
  sharedInvokeFields,
  type SharedInvokeBody,
} from "./routes.js";

/** The endpoint a job runs on when it names none (the CLI's and the OpenAI door's default). */
const DEFAULT_ENDPOINT = "whisper";

interface JobBody extends SharedInvokeBody {
  endpoint?: string;
  inputs: JobInput[];
}

/** A job's file: its place and name, and its invocation as GET /v1/invocations/{id} shows it. */
function fileView(inv: Invocation, name: string) {
  const v = invocationView(inv);
  return {
    index: inv.jobIndex!,
    name,
    inferenceId: v.inferenceId,
    state: v.state,
    inputLocation: v.inputLocation,
    outputLocation: v.outputLocation,
    failureLocation: v.failureLocation,
    /** The transcript (or failure document) once the file has ended. */
    result: `/v1/invocations/${encodeURIComponent(inv.id)}/result`,
    progress: v.progress,
    attempts: v.attempts,
    startedAt: v.timing.startedAt,
    finishedAt: v.timing.finishedAt,
    error: v.error,
  };
}

/** Counts by file state, every state named (0 where none). */
const countsView = (c: StateCounts) => ({
  queued: c.Queued ?? 0,
  running: c.Running ?? 0,
  succeeded: c.Succeeded ?? 0,
  failed: c.Failed ?? 0,
  expired: c.Expired ?? 0,
  cancelled: c.Cancelled ?? 0,
});

/** A job in a list: its state and counts, not its files. */
function jobSummary(job: Job, counts: StateCounts) {
  return {
    id: job.id,
    endpoint: job.endpoint,
    state: jobState(counts),
    files: job.names.length,
    counts: countsView(counts),
    createdAt: new Date(job.createdAt).toISOString(),
  };
}

/** The full view of a job: state, counts, progress, estimated finish, and every file. */
export function jobView(job: Job, files: Invocation[], eta?: number) {
  const counts = countStates(files);
  const ended = files.filter((f) => isTerminal(f.state));
  // Progress by input bytes (a long file weighs more than a short one); a running file counts its own progress.
  const bytes = (f: Invocation) => f.inputBytes ?? 1;
  const done = (f: Invocation) =>
    isTerminal(f.state)
      ? 1
      : f.state === "Running" && f.totalSeconds
        ? Math.min(1, (f.progressSeconds ?? 0) / f.totalSeconds)
        : 0;
  const total = files.reduce((a, f) => a + bytes(f), 0);
  const finished = ended.length === files.length && files.length > 0;
  return {
    ...jobSummary(job, counts),
    progress: {
      filesDone: ended.length,
      filesTotal: files.length,
      percent: total > 0 ? (100 * files.reduce((a, f) => a + bytes(f) * done(f), 0)) / total : 0,
    },
    /** Estimated finish: the latest of its files' estimates (src/core/eta.ts), while any is queued or running. */
    eta: eta === undefined ? undefined : new Date(eta).toISOString(),
    finishedAt: finished
      ? new Date(Math.max(...ended.map((f) => f.finishedAt ?? 0))).toISOString()
      : undefined,
    files: files.map((f) => fileView(f, job.names[f.jobIndex!] ?? String(f.jobIndex))),
  };
}

/** The job if `p` may see it (admins: all; others: their own); otherwise the same 404 as for none. */
async function visibleJob(service: Service, p: Principal | undefined, id: string): Promise<Job> {
  const job = await service.jobs.get(id);
  if (p && p.scope !== "admin" && job.principal !== p.id) throw notFound("Job", id);
  return job;
}

async function fullView(service: Service, job: Job) {
  const files = await service.jobs.files(job.id);
  return jobView(job, files, await service.jobs.estimate(files));
}

const idParams = { type: "object", properties: { id: { type: "string" } } } as const;

/**
 * Multi-file jobs (`/v1/jobs`): one request with many inputs (a manifest of s3:// locations, or files
 * uploaded in one multipart request) gets one job id; each file is an ordinary invocation.
 */
export async function registerJobRoutes(app: FastifyInstance, service: Service): Promise<void> {
  await app.register(async (scope) => {
    await scope.register(multipart, {
      limits: {
        fileSize: service.options.maxInputBytes,
        files: service.options.maxJobFiles ?? MAX_JOB_FILES,
        fields: 20,
        parts: (service.options.maxJobFiles ?? MAX_JOB_FILES) + 20,
      },
    });

    scope.post<{ Body: JobBody }>(
      "/v1/jobs",
      {
        config: { auth: { allow: "invoke" } },
        schema: {
          tags: ["jobs"],
          summary: "Submit a job of many files: 202 with the job id and each file's invocation",
          description:
            "A JSON manifest of objects (`inputs: [{uri, name?, contentType?}]`), or `multipart/form-data` " +
            "with any number of `file` parts and the fields `endpoint` and `options` (JSON). Every input is " +
            "checked before anything is queued: one bad input refuses the whole job, naming it " +
            "(`inputs[3].uri: no object at …`). At most KIKITORI_MAX_JOB_FILES files (default 1000).",
          body: {
            content: {
              "application/json": {
                schema: {
                  type: "object",
                  required: ["inputs"],
                  additionalProperties: false,
                  properties: {
                    endpoint: {
                      type: "string",
                      description: `the endpoint every file is invoked on (default ${DEFAULT_ENDPOINT})`,
                    },
                    inputs: {
                      type: "array",
                      minItems: 1,
                      maxItems: 100_000,
                      items: {
                        type: "object",
                        required: ["uri"],
                        additionalProperties: false,
                        properties: {
                          uri: { type: "string", description: "s3://bucket/key of the audio" },
                          name: { type: "string", minLength: 1, maxLength: 255 },
                          contentType: { type: "string" },
                        },
                      },
                    },
                    ...SHARED_INVOKE_PROPERTIES,
                  },
                },
              },
            },
          },
          response: { 202: { description: "Accepted: the job, each file Queued" } },
        },
      },
      async (req, reply) => {
        const job = req.isMultipart() ? await fromUploads(service, req) : await fromManifest(service, req);
        return reply
          .code(202)
          .header("location", `/v1/jobs/${encodeURIComponent(job.id)}`)
          .send(await fullView(service, job));
      },
    );
  });

  app.get<{ Querystring: { limit?: number; before?: number } }>(
    "/v1/jobs",
    {
      config: { auth: { allow: "invoke" } },
      schema: {
        tags: ["jobs"],
        summary: "List jobs, newest first, with each one's state and counts of its files' states",
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            limit: { type: "integer", minimum: 1, maximum: 1000, default: 100 },
            before: { type: "integer", description: "continue from the `next` cursor of the previous page" },
          },
        },
      },
    },
    async (req) => {
      const limit = req.query.limit ?? 100;
      const jobs = await service.jobs.list({
        principal: req.principal?.scope === "admin" ? undefined : req.principal?.id,
        limit,
        beforeSeq: req.query.before,
      });
      return {
        jobs: jobs.map((j) => jobSummary(j.job, j.counts)),
        next: jobs.length === limit ? jobs.at(-1)?.job.seq : undefined,
      };
    },
  );

  app.get<{ Params: { id: string } }>(
    "/v1/jobs/:id",
    {
      config: { auth: { allow: "invoke" } },
      schema: {
        tags: ["jobs"],
        summary: `A job: state (${JOB_STATES.join(", ")}), progress, estimated finish, and each file's state, result and error`,
        params: idParams,
      },
    },
    async (req) => fullView(service, await visibleJob(service, req.principal, req.params.id)),
  );

  app.post<{ Params: { id: string } }>(
    "/v1/jobs/:id/cancel",
    {
      config: { auth: { allow: "invoke" } },
      schema: {
        tags: ["jobs"],
        summary: "Cancel the files not ended yet: queued ones at once, running ones within about a second",
        params: idParams,
      },
    },
    async (req) => {
      const job = await visibleJob(service, req.principal, req.params.id);
      await service.jobs.cancel(job.id);
      return fullView(service, job);
    },
  );
}

/** A JSON manifest: every entry's object must be the caller's to read. */
async function fromManifest(service: Service, req: FastifyRequest<{ Body: JobBody }>): Promise<Job> {
  const b = req.body;
  if (!b || typeof b !== "object" || !Array.isArray(b.inputs))
    throw new KikitoriError(
      "UnsupportedMediaType",
      "expected application/json with `inputs`, or multipart/form-data with `file` parts",
    );
  const p = req.principal;
  b.inputs.forEach((input, i) => {
    const { key } = s3Location(`inputs[${i}].uri`, input.uri);
    if (p && !mayTouchObject(p, key))
      throw new KikitoriError(
        "Forbidden",
        `inputs[${i}].uri: a key of scope "${p.scope}" may only use objects under ${uploadPrefix(p)} (got "${key.slice(0, 200)}")`,
      );
  });
  const { job } = await service.jobs.create({
    ...sharedInvokeFields(b),
    endpoint: b.endpoint ?? DEFAULT_ENDPOINT,
    inputs: b.inputs,
    principal: p?.id,
  });
  return job;
}

/**
 * Files uploaded in one multipart request: each is stored as it arrives (under the caller's upload prefix),
 * then the job is made of them; if it is refused, the stored files are deleted.
 */
async function fromUploads(service: Service, req: FastifyRequest): Promise<Job> {
  const bucket = service.options.defaultBucket;
  const prefix = `${req.principal ? uploadPrefix(req.principal) : "uploads/"}jobs/${randomUUID()}/`;
  const inputs: JobInput[] = [];
  const fields: Record<string, string> = {};
  try {
    for await (const part of req.parts()) {
      if (part.type === "file") {
        const i = inputs.length;
        if (part.fieldname !== "file")
          throw validation(part.fieldname, "unexpected file field; send each file as a `file` part");
        const name = part.filename || `file-${i}`;
        const key = `${prefix}${i}/${safeFilename(name)}`;
        await service.objects.putObject(bucket, key, part.file, {
          contentType: part.mimetype,
          maxBytes: service.options.maxInputBytes,
        });
        inputs.push({ uri: `s3://${bucket}/${key}`, name, contentType: part.mimetype });
        if (part.file.truncated)
          throw new KikitoriError(
            "PayloadTooLarge",
            `files[${i}] (${name}): larger than ${service.options.maxInputBytes} bytes`,
          );
      } else if (part.fieldname === "endpoint" || part.fieldname === "options") {
        fields[part.fieldname] = String(part.value);
      } else {
        throw validation(
          part.fieldname,
          "unknown field; a job upload takes `file` parts, `endpoint` and `options`",
        );
      }
    }
    if (!inputs.length) throw validation("file", "a job needs at least one `file` part");
    let options: SharedInvokeBody["options"];
    if (fields.options !== undefined) {
      try {
        options = JSON.parse(fields.options) as SharedInvokeBody["options"];
      } catch {
        throw validation("options", "must be a JSON object, as in the JSON request");
      }
      if (typeof options !== "object" || options === null || Array.isArray(options))
        throw validation("options", "must be a JSON object, as in the JSON request");
    }
    const { job } = await service.jobs.create({
      ...sharedInvokeFields({ options }),
      endpoint: fields.endpoint ?? DEFAULT_ENDPOINT,
      inputs,
      principal: req.principal?.id,
      fieldOf: (i) => `files[${i}] (${inputs[i]!.name})`,
    });
    return job;
  } catch (e) {
    // Refused: nothing of it stays.
    for (const input of inputs) {
      const { key } = s3Location("uri", input.uri);
      await service.objects.deleteObject(bucket, key).catch(() => {});
    }
    throw multipartError(e, service.options.maxJobFiles ?? MAX_JOB_FILES);
  }
}

/** @fastify/multipart's errors (limits, broken framing) as 4xx errors. */
function multipartError(e: unknown, maxFiles: number): unknown {
  if (e instanceof KikitoriError) return e;
  const code = (e as { code?: string }).code ?? "";
  if (code === "FST_FILES_LIMIT" || code === "FST_PARTS_LIMIT")
    return validation("file", `a job takes at most ${maxFiles} files; split it into several jobs`);
  if (code === "FST_REQ_FILE_TOO_LARGE" || code === "FST_FIELDS_LIMIT")
    return new KikitoriError("PayloadTooLarge", (e as Error).message);
  if (
    e instanceof Error &&
    !(e as { status?: number }).status &&
    /form|part|boundary|multipart/i.test(e.message)
  )
    return validation("body", `malformed multipart body: ${e.message}`);
  return e;
}
