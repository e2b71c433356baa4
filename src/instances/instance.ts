import type { ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { request, type IncomingMessage } from "node:http";
import { hostname } from "node:os";
import type { Readable } from "node:stream";
import type { Service } from "../core/service.js";
import type { InstanceRecord, InstanceState, Invocation } from "../core/types.js";
import { s3Location } from "../core/rules.js";
import { containerName, explainContainerFailure, removeContainer, stopContainer } from "./container.js";
import type { ImageSpec } from "./images.js";
import { ping, spawnModelServer } from "./model-server.js";
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
}

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
    return this.jobs.size;
  }
  get freeSlots(): number {
    return this.state === "InService" && !this.suspect ? this.o.maxConcurrency - this.jobs.size : 0;
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
    for (const job of this.jobs.values()) job.controller.abort();
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
    for (const job of this.jobs.values()) job.controller.abort();
    await this.kill();
    this.onExit?.(this);
  }

  /** Leases as much work as there are free slots; called whenever work may be waiting. */
  wake(): void {
    if (this.leasing) {
      this.wakeAgain = true;
      return;
    }
    if (this.freeSlots <= 0) return;
    this.leasing = true;
    void this.service
      .lease(this.o.endpoint, this.id, this.freeSlots, this.o.leaseMs)
      .then((invs) => {
        for (const inv of invs) void this.run(inv);
      })
      .catch((e: unknown) => this.o.log(`instance ${this.id}: lease failed: ${(e as Error).message}`))
      .finally(() => {
        this.leasing = false;
        if (this.wakeAgain) {
          this.wakeAgain = false;
          this.wake();
        }
      });
  }

  /** Aborts one running invocation (cancel requested). */
  abort(id: string, reason: AbortReason): boolean {
    const job = this.jobs.get(id);
    if (!job) return false;
    job.reason ??= reason;
    job.controller.abort();
    return true;
  }

  private async run(inv: Invocation): Promise<void> {
    const job: Job = { inv, controller: new AbortController() };
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
      this.wake();
    }
  }

  private async beat(job: Job): Promise<void> {
    const p = this.o.image.kind === "builtin" ? await this.progressOf(job.inv.id) : undefined;
    // Decoded chunks are kept (checkpoints), so that a later attempt after a crash does not decode them again.
    if (p?.chunks?.length) {
      const checkpoints = p.chunks.map((c) => ({ key: c.start, data: c }));
      await this.service
        .saveCheckpoints(job.inv.id, this.id, checkpoints)
        .catch((e: unknown) => this.o.log(`instance ${this.id}: checkpoint failed: ${(e as Error).message}`));
    }
    const progress = p && { processedSeconds: p.processedSeconds, totalSeconds: p.totalSeconds };
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
    const text = (await readCapped(res, 64 * 1024)).trim();
    let message = text;
    try {
      const j = JSON.parse(text) as { error?: { message?: string } | string; message?: string };
      message = (typeof j.error === "object" ? j.error?.message : j.error) ?? j.message ?? text;
    } catch {
      // not JSON: keep the text
    }
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
    while (this.jobs.size > 0 && Date.now() < deadline) await sleep(50);
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

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
