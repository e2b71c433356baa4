import { EventEmitter } from "node:events";
import { randomUUID } from "node:crypto";
import type { Readable } from "node:stream";
import type { ObjectStore } from "../storage/types.js";
import type {
  BacklogStats,
  Checkpoint,
  Guard,
  HeartbeatResult,
  InvocationFilter,
  NewInvocation,
  OutboxEvent,
  QueueAhead,
  Outcome,
  StateStore,
} from "../queue/types.js";
import type { ChunkLease, ChunkProgress, PlannedChunk } from "../queue/chunks.js";
import { ERRORS, KikitoriError, notFound, validation, type ErrorCode } from "../errors.js";
import {
  INVOCATION_TIMEOUT_SECONDS,
  MAX_CONCURRENT_PER_INSTANCE,
  REQUEST_TTL_SECONDS,
  checkInferenceId,
  checkIntRange,
  checkName,
  failureKeyName,
  joinS3,
  outputKeyName,
  redactPaths,
  s3Location,
  s3Path,
} from "./rules.js";
import { ENDPOINT_STATUSES } from "./types.js";
import type {
  AsyncInferenceConfig,
  Deployment,
  Endpoint,
  EndpointConfig,
  HostRecord,
  InstanceRecord,
  Invocation,
  InvocationError,
  InvocationState,
  Model,
  Placement,
  ProductionVariant,
  WebhookTarget,
} from "./types.js";
import { estimateFinish } from "./eta.js";
import { FreshReads } from "./fresh-reads.js";
import { FrontDoor } from "./front-door.js";
import { Jobs, MAX_JOB_FILES } from "./jobs.js";

/** How many recent successful invocations (and instance starts) estimates learn the endpoint's pace from. */
const ETA_SAMPLE = 20;
/** How long an endpoint's pace (history, instances, work in flight) is reused for estimates at most. */
const PACE_TTL_MS = 1000;

/** What estimates need to know about an endpoint besides the queue ahead (see `Service.standing`). */
interface Pace {
  secondsPerByte: number | undefined;
  meanBytes: number;
  perInstance: number;
  instances: InstanceRecord[];
  running: Invocation[];
}

export interface ServiceOptions {
  /** Largest accepted input object (SageMaker's limit for async inference: 1 GB). */
  maxInputBytes: number;
  maxAttempts: number;
  /** Default bucket for outputs when an endpoint config names none, and for uploads through the native API. */
  defaultBucket: string;
  /** Refuses a webhook before its invocation is accepted (egress policy, event names); set by main.ts. */
  checkWebhook?: (webhook: WebhookTarget) => Promise<void>;
  /** Refuses an image no instance may run (unknown, or `local:` not allowed); set by main.ts. */
  checkImage?: (image: string) => Promise<void>;
  /** Most files in one multi-file job. @defaultValue 1000 */
  maxJobFiles?: number;
}

export interface InvokeRequest {
  endpoint: string;
  inputLocation: string;
  contentType?: string;
  accept?: string;
  customAttributes?: string;
  inferenceId?: string;
  requestTtlSeconds?: number | string;
  invocationTimeoutSeconds?: number | string;
  /** Appended to the output (and failure) path, as SageMaker's S3OutputPathExtension. */
  outputPathExtension?: string;
  /** Names the output object instead of `<InferenceId>.out` (SageMaker's Filename); the failure object is `<Filename>-error.out`. */
  outputFilename?: string;
  webhook?: WebhookTarget;
  /** Who asks (src/auth Principal.id), recorded so that an `invoke`-scoped key sees only its own. */
  principal?: string;
}

/** SageMaker's limit on X-Amzn-SageMaker-Custom-Attributes. */
export const MAX_CUSTOM_ATTRIBUTES_CHARS = 1024;

/** Typed events; runners and notifiers subscribe. */
export interface ServiceEvents {
  "invocation:queued": [Invocation];
  "invocation:cancel": [Invocation];
  "invocation:finished": [Invocation];
  /** Chunks of a long invocation became leasable on this endpoint (planned, or given back). */
  "chunks:queued": [string];
  "endpoint:changed": [Endpoint];
  /** A runner's timing points of one successful attempt (for the metrics box). */
  "invocation:timing": [InvocationTiming];
  /** A variant's desired instance count changed (the leader re-places). */
  "cluster:desired": [string];
  /** Placements changed on these hosts (each converges). */
  "cluster:placement": [string[]];
}

/** A variant's instances across the cluster, as DescribeEndpoint, the metrics and the autoscaler see them. */
export interface VariantCounts {
  /** The desired count (the autoscaler's, UpdateEndpointWeightsAndCapacities', else InitialInstanceCount). */
  desired: number;
  /** Live instances: Pending or InService, on any host. */
  current: number;
  inService: number;
}

export interface InvocationTiming {
  invocation: Invocation;
  variant: string;
  /** Reading the input from the object store (it streams into the model server). */
  downloadMs: number;
  /** From the end of the input to the model server's response. */
  modelMs: number;
  /** Storing the response at the output location. */
  uploadMs: number;
}

/** Why work is handed back by a runner, the sweeper or a restart: a catalogue code and what happened. */
export interface GiveBackCause {
  code: ErrorCode;
  message: string;
}

export type GiveBackResult = "requeued" | "failed" | "gone";

/**
 * The one core behind every front door: control-plane rules and the invocation state machine. It is the
 * only writer of invocation, endpoint and instance state: front doors read through its queries, runners
 * report to it. Writes the result document before committing the terminal state, so a crash in between
 * only repeats an idempotent write.
 */
export class Service extends EventEmitter<ServiceEvents> {
  /** Multi-file jobs: many inputs, one job id; each file an invocation of this service. */
  readonly jobs: Jobs;
  /** The accept path's endpoint reads, shared by the requests of one loop turn (each still reads after it asked). */
  private readonly endpointReads = new FreshReads((name: string) => this.state.getEndpoint(name));
  /** Accepts go first when they crowd a saturated loop: a lease waits 100 ms (src/core/front-door.ts). */
  private readonly frontDoor = new FrontDoor({ crowd: 4, saturated: 0.9, waitMs: 100 });

  /**
   * @param objects The object store: the data plane. Front doors for objects (S3, /v1/objects) and runners
   *   read and write inputs through it; result documents are written only here.
   */
  constructor(
    private readonly state: StateStore,
    readonly objects: ObjectStore,
    readonly options: ServiceOptions,
  ) {
    super();
    this.setMaxListeners(0);
    this.jobs = new Jobs(state, this, options.maxJobFiles ?? MAX_JOB_FILES);
  }

  // --- models ---

  async createModel(input: {
    name: string;
    image: string;
    modelDataUrl?: string;
    environment?: Record<string, string>;
    executionRoleArn?: string;
  }): Promise<Model> {
    checkName("ModelName", input.name);
    if (!input.image || typeof input.image !== "string") throw validation("Image", "is required");
    await this.options.checkImage?.(input.image);
    if (input.modelDataUrl !== undefined) s3Location("ModelDataUrl", input.modelDataUrl);
    for (const [k, v] of Object.entries(input.environment ?? {})) {
      if (typeof v !== "string") throw validation(`Environment.${k}`, "must be a string");
    }
    const model: Model = {
      name: input.name,
      image: input.image,
      modelDataUrl: input.modelDataUrl,
      environment: input.environment ?? {},
      executionRoleArn: input.executionRoleArn,
      createdAt: Date.now(),
    };
    await this.state.createModel(model);
    return model;
  }

  async getModel(name: string): Promise<Model> {
    const m = await this.state.getModel(name);
    if (!m) throw notFound("Model", name);
    return m;
  }

  /** The model, or undefined (for callers that treat a missing one as a normal case). */
  findModel(name: string): Promise<Model | undefined> {
    return this.state.getModel(name);
  }

  listModels(): Promise<Model[]> {
    return this.state.listModels();
  }

  async deleteModel(name: string): Promise<void> {
    if (!(await this.state.deleteModel(name))) throw notFound("Model", name);
  }

  // --- endpoint configs ---

  async createEndpointConfig(input: {
    name: string;
    variants: Partial<ProductionVariant>[];
    asyncConfig?: Partial<AsyncInferenceConfig>;
  }): Promise<EndpointConfig> {
    checkName("EndpointConfigName", input.name);
    if (!Array.isArray(input.variants) || input.variants.length === 0) {
      throw validation("ProductionVariants", "needs at least one variant");
    }
    if (input.variants.length > 10) throw validation("ProductionVariants", "at most 10 variants");
    const variants = input.variants.map((v, i): ProductionVariant => {
      const field = `ProductionVariants[${i}]`;
      if (!v.modelName) throw validation(`${field}.ModelName`, "is required");
      return {
        variantName: checkName(`${field}.VariantName`, v.variantName ?? "AllTraffic"),
        modelName: v.modelName,
        instanceType: v.instanceType ?? "local",
        initialInstanceCount: checkIntRange(`${field}.InitialInstanceCount`, v.initialInstanceCount, {
          min: 0,
          max: 100,
          default: 1,
        }),
      };
    });
    for (const v of variants) await this.getModel(v.modelName);
    const names = new Set(variants.map((v) => v.variantName));
    if (names.size !== variants.length)
      throw validation("ProductionVariants", "variant names must be unique");
    let asyncConfig: AsyncInferenceConfig | undefined;
    if (input.asyncConfig) {
      const a = input.asyncConfig;
      const outputPath = a.outputPath ?? `s3://${this.options.defaultBucket}/async-output`;
      s3Path("AsyncInferenceConfig.OutputConfig.S3OutputPath", outputPath);
      if (a.failurePath !== undefined)
        s3Path("AsyncInferenceConfig.OutputConfig.S3FailurePath", a.failurePath);
      asyncConfig = {
        outputPath,
        failurePath: a.failurePath,
        maxConcurrentInvocationsPerInstance: checkIntRange(
          "AsyncInferenceConfig.ClientConfig.MaxConcurrentInvocationsPerInstance",
          a.maxConcurrentInvocationsPerInstance,
          MAX_CONCURRENT_PER_INSTANCE,
        ),
        notification: a.notification,
      };
    }
    const config: EndpointConfig = { name: input.name, variants, asyncConfig, createdAt: Date.now() };
    await this.state.createEndpointConfig(config);
    return config;
  }

  async getEndpointConfig(name: string): Promise<EndpointConfig> {
    const c = await this.state.getEndpointConfig(name);
    if (!c) throw notFound("EndpointConfig", name);
    return c;
  }

  /** The config, or undefined (for callers that treat a missing one as a normal case). */
  findEndpointConfig(name: string): Promise<EndpointConfig | undefined> {
    return this.state.getEndpointConfig(name);
  }

  listEndpointConfigs(): Promise<EndpointConfig[]> {
    return this.state.listEndpointConfigs();
  }

  async deleteEndpointConfig(name: string): Promise<void> {
    if (!(await this.state.deleteEndpointConfig(name))) throw notFound("EndpointConfig", name);
  }

  // --- endpoints ---

  async createEndpoint(input: { name: string; configName: string }): Promise<Endpoint> {
    checkName("EndpointName", input.name);
    const deployment = await this.deploymentOf(input.configName);
    const now = Date.now();
    const endpoint: Endpoint = {
      name: input.name,
      configName: input.configName,
      status: "Creating",
      createdAt: now,
      updatedAt: now,
      deployment,
    };
    await this.state.createEndpoint(endpoint);
    this.emit("endpoint:changed", endpoint);
    return endpoint;
  }

  /** A copy of the config and its models, for an endpoint to run from (SageMaker keeps one too). */
  private async deploymentOf(configName: string): Promise<Deployment> {
    const config = await this.getEndpointConfig(configName);
    const names = [...new Set(config.variants.map((v) => v.modelName))];
    const models = await Promise.all(names.map((n) => this.getModel(n)));
    return { id: randomUUID(), config, models, createdAt: Date.now() };
  }

  async getEndpoint(name: string): Promise<Endpoint> {
    const e = await this.state.getEndpoint(name);
    if (!e) throw notFound("Endpoint", name);
    return e;
  }

  /** The endpoint, or undefined (for callers that treat a missing one as a normal case). */
  findEndpoint(name: string): Promise<Endpoint | undefined> {
    return this.state.getEndpoint(name);
  }

  listEndpoints(): Promise<Endpoint[]> {
    return this.state.listEndpoints();
  }

  /**
   * Blue/green, as SageMaker: the new config's instances start beside the current ones (`pending`), and
   * replace them once all are InService (promoteDeployment); queued work waits in the endpoint's one queue
   * meanwhile and is served by whichever instances are up. A Failed endpoint has nothing serving: the new
   * config replaces the old one at once.
   * @param instanceCounts Variants whose current instance counts the new deployment keeps instead of its
   *   InitialInstanceCount (SageMaker's RetainAllVariantProperties).
   */
  async updateEndpoint(
    name: string,
    configName: string,
    instanceCounts: Map<string, number> = new Map(),
  ): Promise<Endpoint> {
    const cur = await this.getEndpoint(name);
    const deployment = await this.deploymentOf(configName);
    deployment.config.variants = deployment.config.variants.map((v) => ({
      ...v,
      initialInstanceCount: instanceCounts.get(v.variantName) ?? v.initialInstanceCount,
    }));
    const patch: Partial<Endpoint> =
      cur.status === "Failed"
        ? { configName, deployment, pending: undefined, status: "Updating", failureReason: undefined }
        : { pending: deployment, status: "Updating", failureReason: undefined };
    if (!(await this.state.updateEndpoint(name, patch, { status: ["InService", "Failed"] }))) {
      const now = await this.getEndpoint(name);
      throw validation(
        "EndpointName",
        `endpoint "${name}" is ${now.status}; it can be updated when it is InService or Failed`,
      );
    }
    return this.endpointChanged(name);
  }

  /** Makes an update's new deployment the endpoint's own once its instances are InService; its old ones drain. */
  async promoteDeployment(name: string, id: string): Promise<boolean> {
    const e = await this.state.getEndpoint(name);
    if (!e?.pending || e.pending.id !== id) return false;
    const done = await this.state.updateEndpoint(
      name,
      {
        configName: e.pending.config.name,
        deployment: e.pending,
        pending: undefined,
        status: "InService",
        failureReason: undefined,
      },
      { status: ["Updating"], pending: id },
    );
    if (done) await this.endpointChanged(name);
    return done;
  }

  /** Gives up an update whose new instances cannot start: the endpoint keeps serving as before, with the reason. */
  async rollBackDeployment(name: string, id: string, reason: string): Promise<boolean> {
    const done = await this.state.updateEndpoint(
      name,
      { pending: undefined, status: "InService", failureReason: `the update was rolled back: ${reason}` },
      { status: ["Updating"], pending: id },
    );
    if (done) await this.endpointChanged(name);
    return done;
  }

  /** Sets the status unless the endpoint is being deleted (a late InService must not revive it). */
  async setEndpointStatus(name: string, status: Endpoint["status"], failureReason?: string): Promise<void> {
    if (await this.state.updateEndpoint(name, { status, failureReason }, { status: STATUSES_BUT_DELETING }))
      await this.endpointChanged(name);
  }

  /**
   * Marks the endpoint Deleting, and fails its queued and running invocations with failure documents (and
   * the error topic) naming the reason: none of them may run later, not even on a new endpoint of the same
   * name. The instance manager stops its instances and then removes it.
   */
  async deleteEndpoint(name: string): Promise<void> {
    await this.getEndpoint(name);
    if (await this.state.updateEndpoint(name, { status: "Deleting", pending: undefined }))
      await this.endpointChanged(name);
    await this.failUnfinished(name, endpointDeleted(name));
  }

  /** Removes an endpoint once its instances are stopped (the instance manager's last step of a delete). */
  async removeDeletedEndpoint(name: string): Promise<void> {
    const e = await this.state.getEndpoint(name);
    if (e?.status !== "Deleting") return;
    await this.failUnfinished(name, endpointDeleted(name));
    await this.state.deleteEndpoint(name);
  }

  private async endpointChanged(name: string): Promise<Endpoint> {
    const e = await this.getEndpoint(name);
    this.emit("endpoint:changed", e);
    return e;
  }

  async describeEndpoint(name: string) {
    const endpoint = await this.getEndpoint(name);
    const instances = await this.state.listInstances({ endpoint: name, live: true });
    return { endpoint, config: endpoint.deployment?.config, instances };
  }

  /** Creates a model, config and endpoint of the built-in Whisper image under one name, unless it exists. */
  async ensureBuiltinEndpoint(name: string): Promise<void> {
    if (await this.state.getEndpoint(name)) return;
    const ignoreExists = (e: unknown) => {
      if ((e as KikitoriError).code !== "AlreadyExists") throw e;
    };
    await this.createModel({ name, image: "kikitori/whisper" }).catch(ignoreExists);
    await this.createEndpointConfig({ name, variants: [{ modelName: name }], asyncConfig: {} }).catch(
      ignoreExists,
    );
    await this.createEndpoint({ name, configName: name }).catch(ignoreExists);
  }

  // --- invocations ---

  /** Accepts an invocation; a queued one comes with the queue ahead of it at its commit (`ahead`). */
  invokeAsync(req: InvokeRequest): Promise<Invocation & { ahead?: QueueAhead }> {
    return this.frontDoor.through(async () => {
      const { inv, endpoint } = await this.prepareInvocation(req);
      const stored = await this.state.enqueue(inv);
      if (await this.confirmQueued(endpoint, [stored])) return stored;
      return (await this.state.getInvocation(stored.id)) ?? stored;
    });
  }

  /**
   * After the commit of new work (an invocation, a job's files): DeleteEndpoint may have failed the endpoint's
   * queue between the checks and the commit; then the new work is failed here (it must never run on a later
   * endpoint of the same name; one of the two sees it) and the answer is false. Otherwise the runners are woken.
   */
  async confirmQueued(endpoint: Endpoint, stored: Invocation[]): Promise<boolean> {
    const after = await this.endpointReads.get(endpoint.name);
    if (!after || after.createdAt !== endpoint.createdAt || after.status === "Deleting") {
      for (const inv of stored)
        await this.fail(inv, { state: "Failed", error: endpointDeleted(endpoint.name) }, UNFINISHED);
      return false;
    }
    for (const inv of stored) this.emit("invocation:queued", inv);
    return true;
  }

  /**
   * Checks a request and makes the invocation to enqueue, without enqueuing it (invokeAsync, and each file of
   * a job). `inputField` names the input in errors: `InputLocation`, or a job's `inputs[3].uri`.
   */
  async prepareInvocation(
    req: InvokeRequest,
    inputField = "InputLocation",
  ): Promise<{ inv: NewInvocation; endpoint: Endpoint }> {
    // The request's own fields first: cheap, and a bad one is named even when the endpoint is wrong too.
    const id = req.inferenceId ? checkInferenceId(req.inferenceId) : randomUUID();
    const ext = req.outputPathExtension ? checkPathExtension(req.outputPathExtension) : "";
    const filename = req.outputFilename === undefined ? undefined : checkFilename(req.outputFilename);
    if (req.customAttributes !== undefined && req.customAttributes.length > MAX_CUSTOM_ATTRIBUTES_CHARS)
      throw validation(
        "CustomAttributes",
        `must be at most ${MAX_CUSTOM_ATTRIBUTES_CHARS} characters (got ${req.customAttributes.length})`,
      );
    const requestTtlSeconds = checkIntRange("RequestTTLSeconds", req.requestTtlSeconds, REQUEST_TTL_SECONDS);
    const invocationTimeoutSeconds = checkIntRange(
      "InvocationTimeoutSeconds",
      req.invocationTimeoutSeconds,
      INVOCATION_TIMEOUT_SECONDS,
    );
    const endpoint = await this.endpointReads.get(req.endpoint);
    if (!endpoint) throw notFound("Endpoint", req.endpoint);
    if (endpoint.status === "Deleting" || endpoint.status === "Failed") {
      throw validation(
        "EndpointName",
        `endpoint "${endpoint.name}" is ${endpoint.status}${endpoint.failureReason ? `: ${endpoint.failureReason}` : ""}`,
      );
    }
    const config = endpoint.deployment?.config;
    if (!config)
      throw validation(
        "EndpointName",
        `endpoint "${endpoint.name}" has no config: it was deleted before kikitori kept endpoints' own copies; update the endpoint`,
      );
    if (!config.asyncConfig) {
      throw validation(
        "EndpointName",
        `endpoint "${endpoint.name}" has no AsyncInferenceConfig; use a synchronous invocation`,
      );
    }
    const { bucket, key } = s3Location(inputField, req.inputLocation);
    let size: number;
    try {
      size = (await this.objects.headObject(bucket, key)).size;
    } catch (e) {
      if ((e as { status?: number }).status === 404) {
        throw new KikitoriError("InputNotFound", `${inputField}: no object at ${req.inputLocation}`);
      }
      throw e;
    }
    if (size === 0) throw validation(inputField, `the object at ${req.inputLocation} is empty (0 bytes)`);
    if (size > this.options.maxInputBytes) {
      throw new KikitoriError(
        "PayloadTooLarge",
        `${inputField}: the object at ${req.inputLocation} is ${size} bytes; the limit is ${this.options.maxInputBytes}`,
      );
    }
    if (req.webhook) await this.options.checkWebhook?.(req.webhook);
    const outputPath = ext ? joinS3(config.asyncConfig.outputPath, ext) : config.asyncConfig.outputPath;
    const failureBase = config.asyncConfig.failurePath ?? config.asyncConfig.outputPath;
    const failurePath = ext ? joinS3(failureBase, ext) : failureBase;
    const inv: NewInvocation = {
      id,
      endpoint: endpoint.name,
      inputLocation: req.inputLocation,
      outputLocation: joinS3(outputPath, filename ?? outputKeyName(id)),
      failureLocation: joinS3(failurePath, failureKeyName(filename ?? id)),
      contentType: req.contentType,
      accept: req.accept,
      customAttributes: req.customAttributes,
      requestTtlSeconds,
      invocationTimeoutSeconds,
      maxAttempts: this.options.maxAttempts,
      createdAt: Date.now(),
      webhook: req.webhook,
      principal: req.principal,
      notification: config.asyncConfig.notification,
      inputBytes: size,
    };
    return { inv, endpoint };
  }

  listInvocations(filter: InvocationFilter): Promise<Invocation[]> {
    return this.state.listInvocations(filter);
  }

  /** 1-based position among the endpoint's queued invocations, or undefined when not queued. */
  queuePosition(id: string): Promise<number | undefined> {
    return this.state.queuePosition(id);
  }

  backlog(endpoint: string): Promise<BacklogStats> {
    return this.state.backlog(endpoint);
  }

  /** The invocation, or undefined (for callers that treat a missing one as a normal case). */
  findInvocation(id: string): Promise<Invocation | undefined> {
    return this.state.getInvocation(id);
  }

  async getInvocation(id: string): Promise<Invocation & { queuePosition?: number }> {
    const inv = await this.state.getInvocation(id);
    if (!inv) throw notFound("Invocation", id);
    const queuePosition = inv.state === "Queued" ? await this.state.queuePosition(id) : undefined;
    return { ...inv, queuePosition };
  }

  /**
   * When (epoch ms) a queued or running invocation should finish (src/core/eta.ts), from the endpoint's recent pace
   * (its last ETA_SAMPLE successful invocations), the queue ahead, the work in flight, its instances and
   * their observed cold start. Undefined for a finished invocation or before the endpoint has shown a pace.
   */
  async estimate(inv: Invocation): Promise<number | undefined> {
    return (await this.standing(inv)).eta;
  }

  /**
   * Where an invocation stands: its queue position (when queued) and its estimated finish (see `estimate`).
   * One query for the queue ahead of it (none when `ahead` comes from the accept); the endpoint's pace comes from a snapshot at most PACE_TTL_MS old,
   * so answering a burst of accepts does not re-read the same history for each one.
   */
  async standing(
    inv: Invocation & { ahead?: QueueAhead },
  ): Promise<{ queuePosition?: number; eta?: number }> {
    if (inv.state !== "Queued" && inv.state !== "Running") return {};
    const now = Date.now();
    // An accept knows the queue ahead from its own commit; anyone else reads it.
    const ahead = inv.state === "Queued" ? (inv.ahead ?? (await this.state.queueAhead(inv.id))) : undefined;
    // Leased between the enqueue and this read: it stands as running, with no queue ahead.
    const state = inv.state === "Queued" && !ahead ? "Running" : inv.state;
    const pace = await this.pace(inv.endpoint, now);
    const queuePosition = ahead?.position;
    if (state === "Running") {
      const eta = estimateFinish(
        { ...inv, state },
        { now, secondsPerByte: pace.secondsPerByte, running: [], slots: 1, coldStartSeconds: 0 },
      );
      return { eta };
    }
    if (pace.secondsPerByte === undefined) return { queuePosition };
    const live = pace.instances.filter((i) => i.state === "Pending" || i.state === "InService");
    let coldStartSeconds = 0;
    if (!live.some((i) => i.state === "InService")) {
      const observed = pace.instances
        .filter((i) => i.inServiceAt !== undefined)
        .slice(-ETA_SAMPLE)
        .map((i) => (i.inServiceAt! - i.startedAt) / 1000)
        .sort((a, b) => a - b);
      if (!observed.length) return { queuePosition };
      // A starting instance has part of its cold start behind it; at zero the autoscaler starts one.
      const starting = live.at(-1);
      const median = observed[Math.floor(observed.length / 2)]!;
      coldStartSeconds = Math.max(0, median - (starting ? (now - starting.startedAt) / 1000 : 0));
    }
    const eta = estimateFinish(
      { ...inv, inputBytes: inv.inputBytes ?? pace.meanBytes },
      {
        now,
        secondsPerByte: pace.secondsPerByte,
        bytesAhead: ahead!.bytesAhead + ahead!.unsizedAhead * pace.meanBytes,
        running: pace.running.map((r) => ({ ...r, inputBytes: r.inputBytes ?? pace.meanBytes })),
        slots: Math.max(1, live.length) * pace.perInstance,
        coldStartSeconds,
      },
    );
    return { queuePosition, eta };
  }

  private readonly paces = new Map<string, { at: number; pace: Promise<Pace> }>();

  /**
   * The endpoint's pace, read at most once per PACE_TTL_MS (concurrent callers share one read), and again
   * after this process leases, finishes or starts work of the endpoint (other processes' changes show
   * within PACE_TTL_MS).
   */
  private pace(endpoint: string, now: number): Promise<Pace> {
    const cached = this.paces.get(endpoint);
    if (cached && now - cached.at < PACE_TTL_MS) return cached.pace;
    const pace = this.readPace(endpoint);
    this.paces.set(endpoint, { at: now, pace });
    pace.catch(() => this.paces.delete(endpoint));
    return pace;
  }

  private async readPace(endpoint: string): Promise<Pace> {
    const [seen, ep, instances, running] = await Promise.all([
      this.state.throughput(endpoint, ETA_SAMPLE),
      this.getEndpoint(endpoint),
      this.state.listInstances({ endpoint }),
      this.state.listInvocations({ endpoint, state: "Running", limit: 1000 }),
    ]);
    return {
      secondsPerByte: seen.bytes > 0 ? seen.seconds / seen.bytes : undefined,
      meanBytes: seen.invocations ? seen.bytes / seen.invocations : 0,
      perInstance: ep.deployment?.config.asyncConfig?.maxConcurrentInvocationsPerInstance ?? 1,
      instances,
      running,
    };
  }

  /** Cancels at once when queued; a running invocation is stopped by its runner. */
  async cancel(id: string): Promise<Invocation> {
    const inv = await this.getInvocation(id);
    if (inv.state === "Queued") {
      const done = await this.fail(
        inv,
        { state: "Cancelled", error: { code: "Cancelled", message: "cancelled by request" } },
        { from: ["Queued"] },
      );
      if (done) return this.getInvocation(id);
    }
    const cur = await this.getInvocation(id);
    if (cur.state === "Running") {
      await this.state.requestCancel(id);
      this.emit("invocation:cancel", cur);
    }
    return this.getInvocation(id);
  }

  /** Stores the model's response at the output location, then commits Succeeded. */
  async succeed(
    inv: Invocation,
    owner: string,
    body: Readable | Buffer,
    contentType: string,
    modelTimeMs: number | undefined,
  ): Promise<boolean> {
    const { bucket, key } = s3Location("OutputLocation", inv.outputLocation);
    await this.objects.putObject(bucket, key, body, { contentType });
    const done = await this.state.finish(
      inv.id,
      { state: "Succeeded", modelTimeMs },
      { from: ["Running"], owner },
      Date.now(),
    );
    if (!done) {
      // Someone else ended it (cancel, lease lost and failed elsewhere): keep exactly one result document.
      const cur = await this.state.getInvocation(inv.id);
      if (cur && cur.state !== "Succeeded") await this.objects.deleteObject(bucket, key);
    } else {
      this.emitFinished(done);
    }
    return done !== undefined;
  }

  /** Writes the failure document, then commits the terminal state; true when this call ended it. */
  async fail(inv: Invocation, outcome: Outcome, guard: Guard): Promise<boolean> {
    if (outcome.error)
      outcome = { ...outcome, error: { ...outcome.error, message: redactPaths(outcome.error.message) } };
    const { bucket, key } = s3Location("FailureLocation", inv.failureLocation);
    const doc = failureDocument(inv, outcome.state, outcome.error);
    await this.objects.putObject(bucket, key, Buffer.from(JSON.stringify(doc, null, 2)), {
      contentType: "application/json",
    });
    const done = await this.state.finish(inv.id, outcome, guard, Date.now());
    if (!done) {
      const cur = await this.state.getInvocation(inv.id);
      if (cur && (cur.state === "Succeeded" || cur.state === "Queued" || cur.state === "Running")) {
        await this.objects.deleteObject(bucket, key);
      }
    } else {
      this.emitFinished(done);
    }
    return done !== undefined;
  }

  // --- what runners report ---

  /**
   * Resolves when a runner may lease: at once, unless accepts crowd this process's saturated event loop —
   * then after 100 ms (the front door first; src/core/front-door.ts).
   */
  beforeLease(): Promise<void> {
    return this.frontDoor.quiet();
  }

  /** Takes up to `max` queued invocations of the endpoint for `owner` (never one past its attempt bound). */
  async lease(endpoint: string, owner: string, max: number, leaseMs: number): Promise<Invocation[]> {
    const leased = await this.state.lease(endpoint, owner, max, leaseMs, Date.now());
    if (leased.length) this.paces.delete(endpoint);
    return leased;
  }

  heartbeat(
    id: string,
    owner: string,
    leaseMs: number,
    progress?: { processedSeconds: number; totalSeconds: number },
  ): Promise<HeartbeatResult> {
    return this.state.heartbeat(id, owner, leaseMs, Date.now(), progress);
  }

  /** Keeps finished parts of a running invocation for a later attempt (false: `owner` lost the lease). */
  saveCheckpoints(id: string, owner: string, checkpoints: Checkpoint[]): Promise<boolean> {
    return this.state.saveCheckpoints(id, owner, checkpoints);
  }

  /** What earlier attempts of the invocation finished; kept until it ends. */
  listCheckpoints(id: string): Promise<Checkpoint[]> {
    return this.state.listCheckpoints(id);
  }

  // --- chunks of long invocations (src/queue/chunks.ts): the runner's chunk path ---

  /** Stores the plan of a Running invocation that `owner` leased; its chunks become leasable (false: lease lost). */
  async planChunks(
    inv: Invocation,
    owner: string,
    variant: string,
    chunks: PlannedChunk[],
  ): Promise<boolean> {
    const saved = await this.state.saveChunkPlan(inv.id, owner, variant, chunks);
    if (saved) this.emit("chunks:queued", inv.endpoint);
    return saved;
  }

  /** Takes up to `max` queued chunks of the variant's running invocations, each with its invocation. */
  async leaseChunks(
    endpoint: string,
    variant: string,
    owner: string,
    max: number,
    leaseMs: number,
  ): Promise<Array<ChunkLease & { invocation: Invocation }>> {
    const leased = await this.state.leaseChunks(endpoint, variant, owner, max, leaseMs, Date.now());
    const out: Array<ChunkLease & { invocation: Invocation }> = [];
    for (const c of leased) {
      const invocation = await this.state.getInvocation(c.invocationId);
      if (invocation) out.push({ ...c, invocation });
    }
    return out;
  }

  heartbeatChunk(id: string, idx: number, owner: string, leaseMs: number): Promise<HeartbeatResult> {
    return this.state.heartbeatChunk(id, idx, owner, leaseMs, Date.now());
  }

  /** Keeps a chunk's result, or its error (which fails the invocation); false when `owner` lost the chunk. */
  finishChunk(
    id: string,
    idx: number,
    owner: string,
    outcome: { result: unknown } | { error: string },
  ): Promise<boolean> {
    return this.state.finishChunk(id, idx, owner, outcome);
  }

  /** Gives a leased chunk back (its instance stopped): requeued while attempts remain, else failed with `error`. */
  async releaseChunk(id: string, idx: number, owner: string, error: string): Promise<void> {
    for (const endpoint of await this.state.releaseChunks({ id, idx, owner }, error))
      this.emit("chunks:queued", endpoint);
  }

  chunkProgress(id: string): Promise<ChunkProgress | undefined> {
    return this.state.chunkProgress(id);
  }

  chunkResults(id: string): Promise<{ idx: number; data: unknown; result: unknown }[]> {
    return this.state.chunkResults(id);
  }

  /**
   * The one requeue-or-fail rule, for every path that gives work back (a crashed or drained instance, a
   * lapsed lease, a restart): requeued while the cause is retryable (the error catalogue says) and attempts
   * remain, else failed with the cause. `owner` guards against a runner that already lost the lease.
   */
  async giveBack(inv: Invocation, owner: string | undefined, cause: GiveBackCause): Promise<GiveBackResult> {
    const guard: Guard = { from: ["Running"], owner };
    const retryable = ERRORS[cause.code].retryable;
    if (retryable && inv.attempts < inv.maxAttempts) {
      if (await this.state.requeue(inv.id, guard)) {
        this.emit("invocation:queued", { ...inv, state: "Queued" });
        return "requeued";
      }
      return "gone";
    }
    const message = retryable ? `${cause.message}; gave up after ${inv.attempts} attempts` : cause.message;
    const done = await this.fail(inv, { state: "Failed", error: { code: cause.code, message } }, guard);
    return done ? "failed" : "gone";
  }

  /** Fails every queued invocation of an endpoint (its model cannot start). */
  async failQueued(endpoint: string, cause: GiveBackCause): Promise<number> {
    return this.failAll(endpoint, cause, ["Queued"]);
  }

  /** Fails every queued and running invocation of an endpoint (it is deleted); runners see their lease lost. */
  private failUnfinished(endpoint: string, cause: GiveBackCause): Promise<number> {
    return this.failAll(endpoint, cause, UNFINISHED.from);
  }

  private async failAll(endpoint: string, cause: GiveBackCause, states: InvocationState[]): Promise<number> {
    let n = 0;
    for (;;) {
      const batch: Invocation[] = [];
      for (const state of states)
        batch.push(...(await this.state.listInvocations({ endpoint, state, limit: 500 })));
      if (!batch.length) return n;
      // A queued one may be leased meanwhile: the guard takes it in either state.
      for (const inv of batch)
        if (await this.fail(inv, { state: "Failed", error: cause }, { from: states })) n++;
    }
  }

  /**
   * Fails, with failure documents, the work of endpoints deleted before DeleteEndpoint failed it (a database
   * from an older kikitori), so that a new endpoint of the same name never runs it. The leader runs it once.
   */
  async failStranded(): Promise<number> {
    let n = 0;
    for (;;) {
      const batch = await this.state.findStranded(500);
      if (!batch.length) return n;
      for (const inv of batch)
        if (await this.fail(inv, { state: "Failed", error: endpointDeleted(inv.endpoint) }, UNFINISHED)) n++;
    }
  }

  async recordInstance(record: InstanceRecord): Promise<void> {
    await this.state.upsertInstance(record);
    this.paces.delete(record.endpoint);
  }

  listInstances(filter: { endpoint?: string; live?: boolean }): Promise<InstanceRecord[]> {
    return this.state.listInstances(filter);
  }

  // --- the cluster: worker hosts, desired counts, placements (src/cluster runs the loops) ---

  /** Registers a worker host or renews its heartbeat. */
  upsertHost(host: HostRecord): Promise<void> {
    return this.state.upsertHost(host);
  }

  listHosts(): Promise<HostRecord[]> {
    return this.state.listHosts();
  }

  /** Declares a host lost when it has not heartbeated since `heartbeatBefore` (guarded; see the store). */
  markHostGone(id: string, heartbeatBefore: number): Promise<boolean> {
    return this.state.markHostGone(id, heartbeatBefore);
  }

  /**
   * Desired instance count per variant of one of the endpoint's deployments (its current one by default):
   * InitialInstanceCount, or for the current deployment the count set since it was made (the autoscaler,
   * UpdateEndpointWeightsAndCapacities): a new deployment starts from its config's counts. The current one
   * also runs at least one instance per slot of the Ready hosts dedicated to the variant (HostRecord.serves: on
   * Kubernetes, KEDA scales the variant's worker Deployment and each pod brings its instance).
   */
  async desiredCounts(endpoint: Endpoint, deployment = endpoint.deployment): Promise<Map<string, number>> {
    if (!deployment) return new Map();
    const isCurrent = deployment.id === endpoint.deployment?.id;
    const set = new Map<string, number>();
    const dedicated = new Map<string, number>();
    if (isCurrent) {
      for (const d of await this.state.listDesired(endpoint.name))
        if (d.updatedAt >= deployment.createdAt) set.set(d.variant, d.desired);
      for (const h of await this.state.listHosts())
        if (h.state === "Ready" && h.serves)
          dedicated.set(h.serves, (dedicated.get(h.serves) ?? 0) + h.slots);
    }
    return new Map(
      deployment.config.variants.map((v) => [
        v.variantName,
        Math.max(
          set.get(v.variantName) ?? v.initialInstanceCount,
          dedicated.get(`${endpoint.name}/${v.variantName}`) ?? 0,
        ),
      ]),
    );
  }

  /** Sets a variant's desired instance count (the autoscaler, UpdateEndpointWeightsAndCapacities). */
  async setDesiredCount(endpoint: string, variant: string, desired: number): Promise<void> {
    checkIntRange("DesiredInstanceCount", desired, { min: 0, max: 100, default: 0 });
    await this.state.setDesired(endpoint, variant, desired, Date.now());
    this.emit("cluster:desired", endpoint);
  }

  /** The cluster's instances of each variant of one of the endpoint's deployments (by default its current one). */
  async variantCounts(name: string, deploymentId?: string): Promise<Map<string, VariantCounts>> {
    const endpoint = await this.state.getEndpoint(name);
    const current = endpoint?.deployment;
    const d =
      deploymentId === undefined ? current : [current, endpoint?.pending].find((x) => x?.id === deploymentId);
    if (!endpoint || !d) return new Map();
    const desired = await this.desiredCounts(endpoint, d);
    // Records from before deployments were kept belong to the current one.
    const live = (await this.state.listInstances({ endpoint: name, live: true })).filter(
      (i) => (i.deployment ?? current?.id) === d.id,
    );
    const out = new Map<string, VariantCounts>();
    for (const [variant, d] of desired) {
      const mine = live.filter((i) => i.variant === variant);
      out.set(variant, {
        desired: d,
        current: mine.filter((i) => i.state !== "Draining").length,
        inService: mine.filter((i) => i.state === "InService").length,
      });
    }
    return out;
  }

  /** The leader's placement decisions, in one transaction; the hosts concerned are woken. */
  async applyPlacements(change: { add: Placement[]; remove: Placement[] }): Promise<void> {
    if (!change.add.length && !change.remove.length) return;
    await this.state.applyPlacements({ add: change.add, remove: change.remove.map((p) => p.id) });
    this.emit("cluster:placement", [...new Set([...change.add, ...change.remove].map((p) => p.host))]);
  }

  listPlacements(filter: { host?: string; endpoint?: string }): Promise<Placement[]> {
    return this.state.listPlacements(filter);
  }

  // --- the outbox, for the notify box ---

  pendingEvents(limit: number): Promise<OutboxEvent[]> {
    return this.state.pendingEvents(limit);
  }

  markEventsDelivered(ids: number[]): Promise<void> {
    return this.state.markEventsDelivered(ids);
  }

  private emitFinished(finished: Invocation): void {
    this.paces.delete(finished.endpoint);
    this.emit("invocation:finished", finished);
  }

  /**
   * One pass of housekeeping: expire queued requests past their TTL, and requeue (or fail, past the
   * attempt limit) invocations whose lease ran out because their instance died.
   */
  async sweep(now = Date.now()): Promise<{ expired: number; requeued: number; failed: number }> {
    let expired = 0;
    let requeued = 0;
    let failed = 0;
    for (const inv of await this.state.findExpiredQueued(now, 500)) {
      const message = `the request waited longer than its RequestTTLSeconds (${inv.requestTtlSeconds} s) in the queue`;
      if (
        await this.fail(
          inv,
          { state: "Expired", error: { code: "RequestExpired", message } },
          { from: ["Queued"] },
        )
      )
        expired++;
    }
    // Chunks whose instance stopped renewing go back to the queue (their invocation's own lease is separate).
    const chunks = await this.state.releaseChunks(
      { lapsedBefore: now },
      "the instances decoding this chunk stopped renewing its lease",
    );
    requeued += chunks.length;
    for (const endpoint of new Set(chunks)) this.emit("chunks:queued", endpoint);
    for (const inv of await this.state.findLapsedLeases(now, 500)) {
      const r = await this.giveBack(inv, inv.leaseOwner, {
        code: "LeaseExpired",
        message: "the instance processing it stopped renewing its lease",
      });
      if (r === "requeued") requeued++;
      if (r === "failed") failed++;
    }
    return { expired, requeued, failed };
  }
}

function checkFilename(name: string): string {
  if (!/^[\w.\-+=@ ]{1,255}$/.test(name) || name === "." || name === "..") {
    throw validation(
      "Filename",
      `must be 1-255 letters, digits, spaces or ._-+=@ without slashes (got ${JSON.stringify(name)})`,
    );
  }
  return name;
}

function checkPathExtension(ext: string): string {
  const clean = ext.replace(/^\/+|\/+$/g, "");
  if (!clean || clean.split("/").some((s) => s === "" || s === "." || s === "..")) {
    throw validation(
      "S3OutputPathExtension",
      `must be a relative path without "." or ".." segments (got ${JSON.stringify(ext)})`,
    );
  }
  return clean;
}

const UNFINISHED: Guard = { from: ["Queued", "Running"] };
const STATUSES_BUT_DELETING = ENDPOINT_STATUSES.filter((s) => s !== "Deleting");

const endpointDeleted = (name: string): GiveBackCause => ({
  code: "EndpointDeleted",
  message: `the endpoint ${name} was deleted before the invocation finished`,
});

/** The document written at the failure location. */
export function failureDocument(inv: Invocation, state: string, error?: InvocationError) {
  return {
    InferenceId: inv.id,
    EndpointName: inv.endpoint,
    State: state,
    ErrorCode: error?.code ?? "Unknown",
    FailureReason: error?.message ?? "unknown failure",
    InputLocation: inv.inputLocation,
    Attempts: inv.attempts,
    Time: new Date().toISOString(),
  };
}
