import { randomUUID } from "node:crypto";
import { posix } from "node:path";
import type { JobFilter, JobStore, NewInvocation, StateCounts } from "../queue/types.js";
import { KikitoriError, notFound, validation } from "../errors.js";
import { s3Location } from "./rules.js";
import type { InvokeRequest, Service } from "./service.js";
import type { Invocation, InvocationState, Job } from "./types.js";

/** Files per job unless the service is configured otherwise (KIKITORI_MAX_JOB_FILES). */
export const MAX_JOB_FILES = 1000;

/** A job's state, derived from its files' states. */
export const JOB_STATES = [
  "queued",
  "running",
  "completed",
  "partially-failed",
  "failed",
  "cancelled",
] as const;
export type JobState = (typeof JOB_STATES)[number];

/**
 * queued: no file started; running: some file started or ended, some not yet ended; once all have ended:
 * completed (all succeeded), cancelled (some were cancelled), partially-failed (some succeeded, some failed
 * or expired), failed (none succeeded).
 */
export function jobState(counts: StateCounts): JobState {
  const n = (s: InvocationState) => counts[s] ?? 0;
  const total = Object.values(counts).reduce((a, b) => a + (b ?? 0), 0);
  if (n("Queued") + n("Running") > 0) return n("Queued") === total ? "queued" : "running";
  if (n("Succeeded") === total) return "completed";
  if (n("Cancelled") > 0) return "cancelled";
  return n("Succeeded") > 0 ? "partially-failed" : "failed";
}

/** How many files are in each state. */
export function countStates(files: Invocation[]): StateCounts {
  const counts: StateCounts = {};
  for (const f of files) counts[f.state] = (counts[f.state] ?? 0) + 1;
  return counts;
}

/** One input of a job: an object in the store, with an optional name (default: the key's last part). */
export interface JobInput {
  uri: string;
  name?: string;
  contentType?: string;
}

/** A job: many inputs, and what every file's invocation shares (as an invocation request takes them). */
export interface JobRequest extends Omit<
  InvokeRequest,
  "inputLocation" | "inferenceId" | "outputFilename" | "contentType"
> {
  inputs: JobInput[];
  /** Content type of inputs that name none. */
  contentType?: string;
  /** What an input is called in errors (default `inputs[i].uri`; uploads: `files[i]`). */
  fieldOf?: (index: number) => string;
}

/** At most this many bad entries are named in one refusal. */
const NAMED_ERRORS = 10;
/** Files checked or cancelled at once (each: an object store request, a cancel also a commit). */
const IN_FLIGHT = 8;

/** Runs `fn` on every item, IN_FLIGHT at a time; rejects with the first error (the others still finish). */
async function inParallel<T>(items: T[], fn: (item: T, index: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) await fn(items[i]!, i);
  };
  await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, items.length) }, worker));
}

/**
 * Multi-file jobs, part of the core: a job's files are ordinary invocations (scaling, ETA, webhooks, chunking
 * and results as for any), created all at once or not at all.
 */
export class Jobs {
  constructor(
    private readonly state: JobStore,
    private readonly service: Service,
    private readonly maxFiles: number,
  ) {}

  /**
   * Checks every input (the object exists, is not empty, is not too large; the endpoint takes work) and
   * commits the job with all its files in one transaction. Any bad input refuses the whole job, naming each
   * bad entry (up to ten), and nothing is queued.
   */
  async create(req: JobRequest): Promise<{ job: Job; files: Invocation[] }> {
    if (!Array.isArray(req.inputs) || req.inputs.length === 0)
      throw validation("inputs", "a job needs at least one input");
    if (req.inputs.length > this.maxFiles)
      throw validation(
        "inputs",
        `a job takes at most ${this.maxFiles} files (got ${req.inputs.length}); split it into several jobs`,
      );
    const id = randomUUID();
    const fieldOf = req.fieldOf ?? ((i: number) => `inputs[${i}].uri`);
    const prepared: NewInvocation[] = new Array(req.inputs.length);
    const errors: { index: number; error: unknown }[] = [];
    let endpoint: Awaited<ReturnType<Service["prepareInvocation"]>>["endpoint"] | undefined;
    const { inputs, fieldOf: _, ...shared } = req;
    await inParallel(inputs, async (input, i) => {
      try {
        const p = await this.service.prepareInvocation(
          {
            ...shared,
            inputLocation: input.uri,
            contentType: input.contentType ?? req.contentType,
            inferenceId: `${id}-${i}`,
            // A job's results lie together: <output path>[/<extension>]/<job id>/<job id>-<index>.out
            outputPathExtension: req.outputPathExtension ? `${req.outputPathExtension}/${id}` : id,
          },
          fieldOf(i),
        );
        endpoint ??= p.endpoint;
        prepared[i] = { ...p.inv, jobId: id, jobIndex: i };
      } catch (error) {
        // The job's own fields (endpoint, options) are wrong for every file alike: refuse at once.
        if (!(error instanceof KikitoriError) || !error.message.startsWith(fieldOf(i))) throw error;
        errors.push({ index: i, error });
      }
    });
    if (errors.length) {
      errors.sort((a, b) => a.index - b.index);
      const first = errors[0]!.error as KikitoriError;
      const named = errors.slice(0, NAMED_ERRORS).map((e) => (e.error as Error).message);
      const more =
        errors.length > NAMED_ERRORS ? `; and ${errors.length - NAMED_ERRORS} more bad inputs` : "";
      throw new KikitoriError(
        first.code,
        `${named.join("; ")}${more} (nothing was queued: a job is accepted whole or not at all)`,
      );
    }
    const names = inputs.map((input, i) => input.name ?? nameOf(input.uri, i));
    const created = await this.state.createJob(
      { id, endpoint: endpoint!.name, principal: req.principal, names, createdAt: Date.now() },
      prepared,
    );
    if (!(await this.service.confirmQueued(endpoint!, created.files)))
      return { job: created.job, files: await this.state.jobFiles(id) };
    return created;
  }

  async get(id: string): Promise<Job> {
    const job = await this.state.getJob(id);
    if (!job) throw notFound("Job", id);
    return job;
  }

  /** The job's files, by index. */
  files(id: string): Promise<Invocation[]> {
    return this.state.jobFiles(id);
  }

  /** Jobs newest first, each with its files' state counts. */
  async list(filter: JobFilter): Promise<{ job: Job; counts: StateCounts }[]> {
    const jobs = await this.state.listJobs(filter);
    const counts = await this.state.jobCounts(jobs.map((j) => j.id));
    return jobs.map((job) => ({ job, counts: counts.get(job.id) ?? {} }));
  }

  /** Cancels every file not ended yet (queued ones at once; running ones stop within about a second). */
  async cancel(id: string): Promise<Invocation[]> {
    await this.get(id);
    const files = await this.state.jobFiles(id);
    // Queued files first: a running one stopped first would free its slot for the next queued file.
    await inParallel(
      files.filter((f) => f.state === "Queued"),
      (f) => this.service.cancel(f.id),
    );
    await inParallel(
      files.filter((f) => f.state === "Running"),
      (f) => this.service.cancel(f.id),
    );
    return this.state.jobFiles(id);
  }

  /**
   * When (epoch ms) the job should be done: the latest of its files' estimates. Queued files run in queue
   * order, so of those only the last one needs estimating; running ones each have their own.
   */
  async estimate(files: Invocation[]): Promise<number | undefined> {
    const queued = files.filter((f) => f.state === "Queued");
    const last = queued.reduce<Invocation | undefined>((a, f) => (a && a.seq > f.seq ? a : f), undefined);
    const candidates = [...files.filter((f) => f.state === "Running"), ...(last ? [last] : [])];
    const etas = await Promise.all(candidates.map((f) => this.service.estimate(f)));
    if (etas.some((e) => e === undefined)) return undefined;
    return etas.length ? Math.max(...(etas as number[])) : undefined;
  }
}

/** A file's name from its location: the key's last part. */
function nameOf(uri: string, index: number): string {
  try {
    return posix.basename(s3Location("uri", uri).key) || `file-${index}`;
  } catch {
    return `file-${index}`;
  }
}
