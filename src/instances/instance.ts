import type { ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { request, type IncomingMessage } from "node:http";
import { hostname } from "node:os";
import type { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import type { Service } from "../core/service.js";
import type { InstanceRecord, InstanceState, Invocation } from "../core/types.js";
import type { ChunkLease } from "../queue/chunks.js";
import { s3Location } from "../core/rules.js";
import { containerName, explainContainerFailure, removeContainer, stopContainer } from "./container.js";
import type { ImageSpec } from "./images.js";
import { ping, spawnModelServer } from "./model-server.js";
import {
  fetchPlannedAudio,
  regionBytes,
  requestChunk,
  requestPlan,
  requestStitch,
  speechSeconds,
  workObject,
  type ChunkData,
  type ChunkOutcome,
  type SpeechPlan,
} from "./chunked.js";
import { THIS_NODE } from "./node.js";

export interface InstanceOptions {
  endpoint: string;
  variant: string;
  /** The endpoint's deployment it runs (Endpoint.deployment or .pending). */
  deployment?: string;
  /** The leader's placement this instance runs for. */
  placement?: string;
  /** This host's relay base URL, when other hosts may reach its model server through it. */
  relay?: string;
  image: ImageSpec;
  modelDir: string;
  environment: Record<string, string>;
  port: number;
  maxConcurrency: number;
  /** A lease not renewed within this time is handed to another instance. */
  leaseMs: number;
  heartbeatMs: number;
  /** How long the model server may take to answer GET /ping with 200 after it starts. */
  startupHealthTimeoutMs: number;
  /** After SIGTERM, how long before SIGKILL. */
  shutdownGraceMs: number;
  /** While InService, GET /ping this often; 3 failures in a row take the instance out (it is replaced). @defaultValue 5000 */
  healthCheckIntervalMs?: number;
  log: (msg: string) => void;
}

type AbortReason = "cancel" | "timeout" | "lease-lost" | "shutdown";

interface Job {
  inv: Invocation;
  controller: AbortController;
  reason?: AbortReason;
  /** Holds a decoding slot; a planned invocation gives it up, as it only waits for its chunks and stitches. */
  busy: boolean;
  /** Planned into chunks (the chunk path): its progress is its chunks'. */
  planned?: boolean;
}

/** A chunk this instance is decoding; `reason` set when it is no longer its to finish. */
interface ChunkJob {
  controller: AbortController;
  reason?: "lost" | "cancel";
}

/** Inputs smaller than this skip the chunk path (under 4 s as WAV, about a minute as 16 kb/s Opus). */
const ONE_PIECE_BYTES = 128 * 1024;
/** How often a planned invocation's runner looks whether its chunks are done. */
const CHUNK_POLL_MS = 250;

const PROGRESS_PATH = "/kikitori/progress";
const RESUME_PATH = "/kikitori/resume/";

/** What GET /kikitori/progress tells of one invocation (src/whisper/server.ts); chunks are opaque here. */
interface BuiltinProgress {
  processedSeconds: number;
  totalSeconds: number;
  chunks?: { start: number }[];
}

/**
 * One model server process plus the runner that feeds it: leases invocations (up to maxConcurrency),
 * streams each input from the object store to POST /invocations and stores the response.
 */
export class Instance {
  readonly id = `i-${randomUUID().slice(0, 12)}`;
  state: InstanceState = "Pending";
  reason?: string;
  private child?: ChildProcess;
  private readonly jobs = new Map<string, Job>();
  /** Chunks of long invocations being decoded here, by `<invocation id>#<idx>`. */
  private readonly chunkJobs = new Map<string, ChunkJob>();
  private leasing = false;
  private wakeAgain = false;
  private readonly startedAt = Date.now();
  private inServiceAt?: number;
  private exited?: Promise<void>;
  /** Set when a request to the model server failed at the connection: take no work until a ping passes. */
  private suspect = false;
  private healthTimer?: NodeJS.Timeout;
  private healthFailures = 0;
  /** Called when the instance leaves service on its own (crash, failed health check). */
  onExit?: (instance: Instance) => void;

  constructor(
    private readonly service: Service,
    readonly o: InstanceOptions,
  ) {}

  get inFlight(): number {
    return this.jobs.size + this.chunkJobs.size;
  }
  get freeSlots(): number {
    if (this.state !== "InService" || this.suspect) return 0;
    let busy = this.chunkJobs.size;
    for (const job of this.jobs.values()) if (job.busy) busy++;
    return this.o.maxConcurrency - busy;
  }
  get record(): InstanceRecord {
    return {
      id: this.id,
      endpoint: this.o.endpoint,
      variant: this.o.variant,
      host: hostname(),
      node: THIS_NODE,
      deployment: this.o.deployment,
      placement: this.o.placement,
      address: this.o.relay ? `${this.o.relay}/instances/${this.id}` : undefined,
      state: this.state,
      port: this.o.port,
      pid: this.child?.pid,
      reason: this.reason,
      startedAt: this.startedAt,
      inServiceAt: this.inServiceAt,
      endedAt: this.state === "Terminated" || this.state === "Failed" ? Date.now() : undefined,
    };
  }

  private async setState(state: InstanceState, reason?: string): Promise<void> {
    this.state = state;
    if (reason !== undefined) this.reason = reason;
    if (state === "InService") {
      this.inServiceAt = Date.now();
      this.healthTimer = setInterval(
        () =>
          void this.healthCheck().catch((e: unknown) =>
            this.o.log(`instance ${this.id}: health check failed: ${(e as Error).message}`),
          ),
        this.o.healthCheckIntervalMs ?? 5000,
      );
    } else if (this.healthTimer) {
      clearInterval(this.healthTimer);
      this.healthTimer = undefined;
    }
    this.o.log(
      `instance ${this.id} (${this.o.endpoint}/${this.o.variant}) ${state}${reason ? `: ${reason}` : ""}`,
    );
    await this.service.recordInstance(this.record);
  }

  /** Pending → InService, or Failed with the reason (the startup health check). */
  async start(): Promise<boolean> {
    await this.setState("Pending");
    const tail: string[] = [];
    const child = spawnModelServer({
      instanceId: this.id,
      labels: { "kikitori.endpoint": this.o.endpoint, "kikitori.variant": this.o.variant },
      image: this.o.image,
      port: this.o.port,
      modelDir: this.o.modelDir,
      environment: this.o.environment,
      maxConcurrency: this.o.maxConcurrency,
      onOutput: (line) => {
        tail.push(line);
        if (tail.length > 20) tail.shift();
        this.o.log(`[${this.id}] ${line}`);
      },
    });
    this.child = child;
    let exitInfo: string | undefined;
    this.exited = new Promise((resolve) => {
      child.on("exit", (code, signal) => {
        exitInfo = signal ? `killed by ${signal}` : `exited with code ${code}`;
        resolve();
        void this.handleExit(exitInfo);
      });
      child.on("error", (e) => {
        exitInfo = `could not start: ${e.message}`;
        resolve();
        void this.handleExit(exitInfo);
      });
    });
    const deadline = Date.now() + this.o.startupHealthTimeoutMs;
    while (Date.now() < deadline && exitInfo === undefined) {
      if ((await ping(this.o.port, 1000)) === 200) {
        await this.setState("InService");
        return true;
      }
      await sleep(25);
    }
    const hint = this.o.image.kind === "container" ? explainContainerFailure(tail.join("\n")) : undefined;
    const why =
      (exitInfo !== undefined
        ? `model server ${exitInfo} before answering GET /ping${tail.length ? ` (last output: ${tail.slice(-3).join(" | ")})` : ""}`
        : `model server did not answer GET /ping with 200 within ${this.o.startupHealthTimeoutMs} ms (startup health check)`) +
      (hint ? `; ${hint}` : "");
    await this.kill();
    await this.setState("Failed", why);
    return false;
  }

  private async handleExit(info: string): Promise<void> {
    // The runtime's client may end while its container lives on (client killed): the container goes too.
    if (this.o.image.kind === "container") void removeContainer(this.o.image.runtime, containerName(this.id));
    if (this.state === "Terminated" || this.state === "Failed" || this.state === "Pending") return;
    if (this.state === "Draining") return;
    // Crashed while in service: hand its work back at once rather than waiting for the leases to lapse.
    await this.setState("Failed", `model server ${info}`);
    this.abortAll();
    this.onExit?.(this);
  }

  /** The periodic health check: a model server that stops answering /ping is failed and replaced. */
  private async healthCheck(): Promise<void> {
    if (this.state !== "InService") return;
    const status = await ping(this.o.port, 2000);
    if (this.state !== "InService") return;
    this.healthFailures = status === 200 ? 0 : this.healthFailures + 1;
    if (this.healthFailures < 3) return;
    await this.setState(
      "Failed",
      `model server failed 3 health checks in a row (GET /ping answered ${status || "nothing"})`,
    );
    // Its work goes back to the queue (settleError requeues aborted jobs that have attempts left).
    this.abortAll();
    await this.kill();
    this.onExit?.(this);
  }

  /** Aborts everything in flight (chunks go back to the queue, invocations through settleError). */
  private abortAll(): void {
    for (const job of this.jobs.values()) job.controller.abort();
    for (const chunk of this.chunkJobs.values()) chunk.controller.abort();
  }

  /** Leases as much work as there are free slots; called whenever work may be waiting. */
  wake(): void {
    if (this.leasing) {
      this.wakeAgain = true;
      return;
    }
    if (this.freeSlots <= 0) return;
    this.leasing = true;
    void this.leaseWork()
      .catch((e: unknown) => this.o.log(`instance ${this.id}: lease failed: ${(e as Error).message}`))
      .finally(() => {
        this.leasing = false;
        if (this.wakeAgain) {
          this.wakeAgain = false;
          this.wake();
        }
      });
  }

  /** Chunks of files already started first (every idle instance helps finish them), then new invocations. */
  private async leaseWork(): Promise<void> {
    await this.service.beforeLease();
    let free = this.freeSlots;
    if (this.o.image.kind === "builtin") {
      const chunks = await this.service.leaseChunks(
        this.o.endpoint,
        this.o.variant,
        this.id,
        free,
        this.o.leaseMs,
      );
      for (const chunk of chunks) void this.runChunk(chunk);
      free -= chunks.length;
    }
    if (free <= 0) return;
    for (const inv of await this.service.lease(this.o.endpoint, this.id, free, this.o.leaseMs))
      void this.run(inv);
  }

  /** Aborts one running invocation (cancel requested). */
  abort(id: string, reason: AbortReason): boolean {
    // Its chunks decoding here stop too (a cancelled invocation's chunks are no longer anyone's).
    for (const [key, chunk] of this.chunkJobs)
      if (reason === "cancel" && key.startsWith(`${id}#`)) {
        chunk.reason = "cancel";
        chunk.controller.abort();
      }
    const job = this.jobs.get(id);
    if (!job) return false;
    job.reason ??= reason;
    job.controller.abort();
    return true;
  }

  private async run(inv: Invocation): Promise<void> {
    const job: Job = { inv, controller: new AbortController(), busy: true };
    this.jobs.set(inv.id, job);
    const timeout = setTimeout(() => this.abort(inv.id, "timeout"), inv.invocationTimeoutSeconds * 1000);
    const heartbeat = setInterval(() => void this.beat(job), this.o.heartbeatMs);
    try {
      await this.invoke(job);
    } catch (e) {
      await this.settleError(job, e as Error).catch((err: unknown) =>
        this.o.log(
          `instance ${this.id}: could not record the failure of ${inv.id}: ${(err as Error).message}`,
        ),
      );
    } finally {
      clearTimeout(timeout);
      clearInterval(heartbeat);
      this.jobs.delete(inv.id);
      if (job.planned) await this.forgetWork(inv);
      this.wake();
    }
  }

  private async beat(job: Job): Promise<void> {
    if (job.planned) {
      // Progress of a planned invocation: speech seconds of its chunks done, of all its speech.
      const c = await this.service.chunkProgress(job.inv.id).catch(() => undefined);
      const progress = c && { processedSeconds: c.doneSeconds, totalSeconds: c.speechSeconds };
      return this.renew(job, progress);
    }
    const p = this.o.image.kind === "builtin" ? await this.progressOf(job.inv.id) : undefined;
    // Decoded chunks are kept (checkpoints), so that a later attempt after a crash does not decode them again.
    if (p?.chunks?.length) {
      const checkpoints = p.chunks.map((c) => ({ key: c.start, data: c }));
      await this.service
        .saveCheckpoints(job.inv.id, this.id, checkpoints)
        .catch((e: unknown) => this.o.log(`instance ${this.id}: checkpoint failed: ${(e as Error).message}`));
    }
    await this.renew(job, p && { processedSeconds: p.processedSeconds, totalSeconds: p.totalSeconds });
  }

  private async renew(
    job: Job,
    progress: { processedSeconds: number; totalSeconds: number } | undefined,
  ): Promise<void> {
    const r = await this.service
      .heartbeat(job.inv.id, this.id, this.o.leaseMs, progress)
      .catch(() => "ok" as const);
    if (r === "lost") this.abort(job.inv.id, "lease-lost");
    if (r === "cancel-requested") this.abort(job.inv.id, "cancel");
  }

  /** The built-in server's progress of one invocation, with the chunks it decoded since it was last asked. */
  private async progressOf(id: string): Promise<BuiltinProgress | undefined> {
    try {
      const body = await requestJson(this.o.port, PROGRESS_PATH, 500);
      const p = (body as Record<string, BuiltinProgress>)[id];
      return p && Number.isFinite(p.processedSeconds) ? p : undefined;
    } catch {
      return undefined;
    }
  }

  private async invoke(job: Job): Promise<void> {
    const { inv } = job;
    // The built-in server cuts a long file into chunks that every instance of the variant may decode.
    if (this.o.image.kind === "builtin" && (await this.invokeChunked(job))) return;
    const { bucket, key } = s3Location("InputLocation", inv.inputLocation);
    let input: { body: Readable; size: number };
    const t0 = performance.now();
    let inputDone = t0;
    try {
      const got = await this.service.objects.getObject(bucket, key);
      input = { body: got.body, size: got.info.size };
      got.body.once("end", () => (inputDone = performance.now()));
    } catch (e) {
      await this.service.fail(
        inv,
        {
          state: "Failed",
          error: {
            code: "InputNotFound",
            message: `cannot read ${inv.inputLocation}: ${(e as Error).message}`,
          },
        },
        { from: ["Running"], owner: this.id },
      );
      return;
    }
    if (this.o.image.kind === "builtin") {
      // A later attempt: the chunks that earlier ones finished are handed over, not decoded again.
      const kept = await this.service.listCheckpoints(inv.id);
      if (kept.length)
        await requestJson(
          this.o.port,
          `${RESUME_PATH}${encodeURIComponent(inv.id)}`,
          10_000,
          kept.map((c) => c.data),
        );
    }
    const res = await postInvocation(this.o.port, input, inv, job.controller.signal);
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) {
      const responded = performance.now();
      const modelTime = Number(res.headers["x-kikitori-model-time-ms"]);
      const done = await this.service.succeed(
        inv,
        this.id,
        res,
        String(res.headers["content-type"] ?? "application/octet-stream"),
        Number.isFinite(modelTime) ? modelTime : undefined,
      );
      if (done) {
        this.service.emit("invocation:timing", {
          invocation: inv,
          variant: this.o.variant,
          downloadMs: inputDone - t0,
          modelMs: responded - inputDone,
          uploadMs: performance.now() - responded,
        });
      }
      return;
    }
    await this.failFromResponse(inv, res);
  }

  /** Fails the invocation with the model server's error answer (4xx/5xx). */
  private async failFromResponse(inv: Invocation, res: IncomingMessage): Promise<void> {
    const status = res.statusCode ?? 0;
    const message = await errorMessage(res);
    await this.service.fail(
      inv,
      {
        state: "Failed",
        error: {
          code: status === 415 || status === 422 ? "InvalidAudio" : "ModelError",
          message: `model server answered ${status}: ${message || "(empty body)"}`,
        },
      },
      { from: ["Running"], owner: this.id },
    );
  }

  /**
   * The chunk path of an invocation: planned here (the model server cuts it at speech; its audio goes to
   * the object store, its chunks to the store) unless an earlier attempt planned it already; then the slot
   * is free for chunks (anyone's) while this runner waits for all of the invocation's chunks, stitches
   * them and stores the result. False when the model server decodes the file in one piece (short, VAD off,
   * or a server without the route): the caller sends it to /invocations.
   */
  private async invokeChunked(job: Job): Promise<boolean> {
    const { inv, controller } = job;
    const { signal } = controller;
    let file: Pick<ChunkData, "duration" | "language" | "languageProbability"> | undefined;
    // A small input is decoded in one piece: too short to share out, not worth the round trip.
    if (inv.inputBytes !== undefined && inv.inputBytes < ONE_PIECE_BYTES) return false;
    let progress = await this.service.chunkProgress(inv.id);
    if (!progress) {
      const { bucket, key } = s3Location("InputLocation", inv.inputLocation);
      let input: { body: Readable; size: number };
      try {
        const got = await this.service.objects.getObject(bucket, key);
        input = { body: got.body, size: got.info.size };
      } catch {
        return false; // the one-piece path reports the missing input
      }
      const res = await requestPlan(this.o.port, input, inv, signal);
      if (res.statusCode === 204 || res.statusCode === 404) {
        res.resume();
        return false;
      }
      if (res.statusCode !== 200) {
        await this.failFromResponse(inv, res);
        return true;
      }
      const plan = JSON.parse(await readCapped(res, 64 << 20)) as SpeechPlan;
      file = plan;
      if (plan.chunks.length) {
        const work = workObject(inv);
        const audio = await fetchPlannedAudio(this.o.port, inv.id, signal);
        await this.service.objects.putObject(work.bucket, work.key, audio, {
          contentType: "application/octet-stream",
        });
        const chunks = plan.chunks.map((regions, idx) => ({
          idx,
          speechSeconds: speechSeconds(regions),
          data: {
            regions,
            duration: plan.duration,
            language: plan.language,
            languageProbability: plan.languageProbability,
          } satisfies ChunkData,
        }));
        if (!(await this.service.planChunks(inv, this.id, this.o.variant, chunks))) return true; // lease lost
        progress = await this.service.chunkProgress(inv.id);
      }
    }
    job.planned = true;
    // The slot goes to chunks (this invocation's first: they are the oldest work) while this runner waits.
    job.busy = false;
    this.wake();
    // Chunks done before this attempt began were taken from the store, not decoded again.
    const resumed = progress?.done ?? 0;
    while (progress && progress.done < progress.chunks && !progress.failed) {
      await sleep(CHUNK_POLL_MS, signal);
      progress = await this.service.chunkProgress(inv.id);
    }
    if (progress?.failed) {
      await this.service.fail(
        inv,
        { state: "Failed", error: { code: "ModelError", message: `a chunk failed: ${progress.failed}` } },
        { from: ["Running"], owner: this.id },
      );
      return true;
    }
    const done = (await this.service.chunkResults(inv.id)) as Array<{
      data: ChunkData;
      result: ChunkOutcome;
    }>;
    if (!file && !done.length) return true; // it ended elsewhere (its chunks went with it)
    const res = await requestStitch(this.o.port, inv, file ?? done[0]!.data, done, resumed, signal);
    if (res.statusCode !== 200) {
      await this.failFromResponse(inv, res);
      return true;
    }
    const modelMs = done.reduce((n, c) => n + (c.result.modelMs ?? 0), 0);
    await this.service.succeed(
      inv,
      this.id,
      res,
      String(res.headers["content-type"] ?? "application/octet-stream"),
      modelMs,
    );
    return true;
  }

  /** Removes a planned invocation's audio once the invocation has ended (a later attempt still needs it). */
  private async forgetWork(inv: Invocation): Promise<void> {
    const cur = await this.service.findInvocation(inv.id).catch(() => undefined);
    if (cur && (cur.state === "Running" || cur.state === "Queued")) return;
    const work = workObject(inv);
    await this.service.objects.deleteObject(work.bucket, work.key).catch(() => undefined);
  }

  /** Decodes one leased chunk: its regions read from the object store, then POST /kikitori/chunk. */
  private async runChunk(chunk: ChunkLease & { invocation: Invocation }): Promise<void> {
    const { invocationId: id, idx } = chunk;
    const key = `${id}#${idx}`;
    const job: ChunkJob = { controller: new AbortController() };
    this.chunkJobs.set(key, job);
    const heartbeat = setInterval(() => {
      void this.service.heartbeatChunk(id, idx, this.id, this.o.leaseMs).then(
        (r) => {
          if (r === "ok") return;
          job.reason = r === "lost" ? "lost" : "cancel";
          job.controller.abort();
        },
        () => undefined,
      );
    }, this.o.heartbeatMs);
    const data = chunk.data as ChunkData;
    try {
      const work = workObject(chunk.invocation);
      const parts: Buffer[] = [];
      for (const range of regionBytes(data.regions)) {
        const got = await this.service.objects.getObject(work.bucket, work.key, range);
        parts.push(await buffer(got.body));
      }
      let res: IncomingMessage;
      try {
        res = await requestChunk(
          this.o.port,
          Buffer.concat(parts),
          idx,
          data,
          chunk.invocation,
          job.controller.signal,
        );
      } catch (e) {
        // The model server went away (crash, kill): no more work here until a ping passes.
        if (!job.controller.signal.aborted) {
          this.suspect = true;
          void this.recheck();
        }
        throw e;
      }
      if (res.statusCode === 200) {
        const result = JSON.parse(await readCapped(res, 64 << 20)) as ChunkOutcome;
        const modelMs = Number(res.headers["x-kikitori-model-time-ms"]);
        if (Number.isFinite(modelMs)) result.modelMs = modelMs;
        await this.service.finishChunk(id, idx, this.id, { result });
      } else {
        const message = `the model server answered ${res.statusCode}: ${await errorMessage(res)}`;
        await this.service.finishChunk(id, idx, this.id, { error: message });
      }
    } catch (e) {
      // Lost or cancelled: no longer this instance's to finish. Otherwise it goes back to the queue.
      if (!job.reason)
        await this.service
          .releaseChunk(id, idx, this.id, `decoding failed: ${(e as Error).message}`)
          .catch((err: unknown) =>
            this.o.log(`instance ${this.id}: could not give chunk ${key} back: ${(err as Error).message}`),
          );
    } finally {
      clearInterval(heartbeat);
      this.chunkJobs.delete(key);
      this.wake();
    }
  }

  private async settleError(job: Job, e: Error): Promise<void> {
    const { inv } = job;
    const guard = { from: ["Running" as const], owner: this.id };
    switch (job.reason) {
      case "cancel":
        await this.service.fail(
          inv,
          { state: "Cancelled", error: { code: "Cancelled", message: "cancelled by request while running" } },
          guard,
        );
        return;
      case "timeout":
        await this.service.giveBack(inv, this.id, {
          code: "InvocationTimeout",
          message: `the model server did not finish within InvocationTimeoutSeconds (${inv.invocationTimeoutSeconds} s)`,
        });
        return;
      case "lease-lost":
        return; // another instance owns it now
      case "shutdown":
        return; // drain() gives it back
      default:
        // The model server went away (crash, kill): retry elsewhere while attempts remain.
        this.suspect = true;
        void this.recheck();
        await this.service.giveBack(inv, this.id, {
          code: "ModelServerUnavailable",
          message: `the model server failed: ${e.message}`,
        });
    }
  }

  /** After a connection failure: back in service if /ping passes, else stopped (and so replaced). */
  private async recheck(): Promise<void> {
    if ((await ping(this.o.port, 2000)) === 200 && this.state === "InService") {
      this.suspect = false;
      this.wake();
    } else if (this.state === "InService") {
      await this.kill();
    }
  }

  /** Stops taking work, lets in-flight work finish for the grace period, then hands it back and stops. */
  async drain(graceMs = this.o.shutdownGraceMs): Promise<void> {
    if (this.state === "Terminated" || this.state === "Failed") return;
    await this.setState("Draining");
    const deadline = Date.now() + graceMs;
    while (this.inFlight > 0 && Date.now() < deadline) await sleep(50);
    for (const chunk of this.chunkJobs.values()) chunk.controller.abort(); // given back by runChunk
    for (const job of this.jobs.values()) {
      job.reason ??= "shutdown";
      job.controller.abort();
      await this.service.giveBack(job.inv, this.id, {
        code: "ModelServerUnavailable",
        message: `instance ${this.id} was stopped (scale-in or shutdown) before the invocation finished`,
      });
    }
    await this.kill();
    await this.setState("Terminated");
  }

  /** SIGTERM, then SIGKILL after the grace period (a container: `stop --time`, through its runtime). */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    if (this.o.image.kind === "container") {
      // Signals to the runtime's client would not reach the container when the client is killed.
      await stopContainer(this.o.image.runtime, containerName(this.id), this.o.shutdownGraceMs);
    } else {
      child.kill("SIGTERM");
    }
    const killed = await Promise.race([
      this.exited!.then(() => true),
      sleep(this.o.shutdownGraceMs).then(() => false),
    ]);
    if (!killed) {
      child.kill("SIGKILL");
      await this.exited;
    }
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }
}

function postInvocation(
  port: number,
  input: { body: Readable; size: number },
  inv: Invocation,
  signal: AbortSignal,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = {
      "content-type": inv.contentType ?? "application/octet-stream",
      "content-length": input.size,
      "x-kikitori-invocation-id": inv.id,
    };
    if (inv.accept) headers.accept = inv.accept;
    if (inv.customAttributes) headers["x-amzn-sagemaker-custom-attributes"] = inv.customAttributes;
    const req = request(
      { host: "127.0.0.1", port, method: "POST", path: "/invocations", headers, signal },
      resolve,
    );
    req.on("error", (e) => {
      input.body.destroy();
      reject(e);
    });
    input.body.on("error", (e) => req.destroy(e));
    input.body.pipe(req);
  });
}

/** The message of a model server's error answer (its JSON error's message, or the text). */
async function errorMessage(res: IncomingMessage): Promise<string> {
  const text = (await readCapped(res, 64 * 1024)).trim();
  try {
    const j = JSON.parse(text) as { error?: { message?: string } | string; message?: string };
    return (typeof j.error === "object" ? j.error?.message : j.error) ?? j.message ?? text;
  } catch {
    return text; // not JSON: keep the text
  }
}

function readCapped(res: IncomingMessage, cap: number): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let n = 0;
    res.on("data", (c: Buffer) => {
      if (n < cap) chunks.push(c.subarray(0, cap - n));
      n += c.length;
    });
    res.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    res.on("error", () => resolve(Buffer.concat(chunks).toString("utf8")));
  });
}

/** GETs JSON from the model server, or PUTs `put` as JSON and reads the JSON answer. */
function requestJson(port: number, path: string, timeoutMs: number, put?: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const body = put === undefined ? undefined : JSON.stringify(put);
    const method = body === undefined ? "GET" : "PUT";
    const headers = body === undefined ? {} : { "content-type": "application/json" };
    const req = request({ host: "127.0.0.1", port, path, method, headers, timeout: timeoutMs }, (res) => {
      void readCapped(res, 1 << 20).then((t) => {
        try {
          resolve(JSON.parse(t));
        } catch (e) {
          reject(e as Error);
        }
      });
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end(body);
  });
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    signal?.throwIfAborted();
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason as Error);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
