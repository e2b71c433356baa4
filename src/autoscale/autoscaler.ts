import { randomUUID } from "node:crypto";
import type { Service } from "../core/service.js";
import { KikitoriError, coerceError, validation } from "../errors.js";
import { decide, type VariantView } from "./policy.js";
import type { Alarms } from "./alarms.js";
import {
  SCALABLE_DIMENSION,
  SERVICE_NAMESPACE,
  type Page,
  type ScalableTarget,
  type ScalingActivity,
  type ScalingMetricName,
  type ScalingPolicy,
  type ScalingStore,
  type StepScalingPolicyConfiguration,
  type SuspendedState,
  type TargetKeys,
  type TargetTrackingScalingPolicyConfiguration,
} from "./types.js";
import {
  checkCapacity,
  checkDimension,
  checkNamespace,
  checkPolicyName,
  checkStepScaling,
  checkSuspended,
  checkTargetKeys,
  checkTargetTracking,
  optionalString,
  optionalStringList,
  parseResourceId,
} from "./validate.js";

/** What the autoscaler reads of the metrics box (src/metrics implements it). */
export interface ScalingMetricsSource {
  /** The endpoint's scaling metrics now. */
  snapshot(endpoint: string): Promise<Record<ScalingMetricName, number>>;
  /** The largest sampled value over the last `windowMs` (0 without samples). */
  maxOver(endpoint: string, name: ScalingMetricName, windowMs: number, now: number): number;
}

export interface AutoscalerOptions {
  /** How often every scalable target is evaluated; a new request also triggers an evaluation. @defaultValue 1000 */
  evaluationIntervalMs: number;
  /** Used in ARNs (config.ts). */
  region: string;
  /** Used in ARNs (config.ts). */
  accountId: string;
  log: (msg: string) => void;
}

const DEFAULT_EVALUATION_INTERVAL_MS = 1000;

const epochS = (ms: number) => ms / 1000;
const MAX_RESULTS = 50;

interface TargetMemory {
  lastActivityAt?: number;
  lastScaleOutAt?: number;
  policyLastAt: Map<string, number>;
  /** The activity still waiting for the variant to reach its count. */
  open?: ScalingActivity;
}

/**
 * Application Auto Scaling for endpoint variants: stores scalable targets and policies (validated, in
 * AWS's shapes), and runs one loop that evaluates the policies (policy.ts) every evaluationIntervalMs and
 * when a request arrives, stores the variant's desired count (Service.setDesiredCount), and records each
 * change as a ScalingActivity.
 * A variant without a registered scalable target keeps its InitialInstanceCount.
 */
export class Autoscaler {
  private readonly o: AutoscalerOptions;
  private readonly memory = new Map<string, TargetMemory>();
  private timer?: NodeJS.Timeout;
  private running = Promise.resolve();
  private pending = false;
  /** Runs only between start() and stop(): on the cluster's leader. */
  private stopped = true;
  private readonly onQueued = () => this.evaluateSoon();

  constructor(
    private readonly service: Service,
    private readonly store: ScalingStore,
    private readonly metrics: ScalingMetricsSource,
    options: Omit<AutoscalerOptions, "evaluationIntervalMs"> & Partial<AutoscalerOptions>,
    /** CloudWatch alarms, evaluated with the policies; step policies they name follow them. */
    private readonly alarms?: Alarms,
  ) {
    this.o = { evaluationIntervalMs: DEFAULT_EVALUATION_INTERVAL_MS, ...options };
  }

  readonly name = "autoscaler";

  start(): void {
    this.stopped = false;
    this.service.on("invocation:queued", this.onQueued);
    this.timer = setInterval(() => this.evaluateSoon(), this.o.evaluationIntervalMs);
    this.evaluateSoon();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.service.off("invocation:queued", this.onQueued);
    await this.running;
  }

  /** Coalesces triggers: at most one evaluation runs and at most one waits. */
  private evaluateSoon(): void {
    if (this.stopped || this.pending) return;
    this.pending = true;
    this.running = this.running.then(async () => {
      this.pending = false;
      await this.evaluate().catch((e: unknown) =>
        this.o.log(`autoscaler: evaluation failed: ${coerceError(e).stack}`),
      );
    });
  }

  /** One evaluation of every scalable target (the loop's body; tests may call it directly). */
  async evaluate(now = Date.now()): Promise<void> {
    const alarms = await this.alarms?.evaluate(now);
    const targets = await this.store.listTargets();
    const snapshots = new Map<string, Record<ScalingMetricName, number>>();
    for (const target of targets) {
      const { endpoint, variant } = parseResourceId(target.ResourceId);
      const ep = await this.service.findEndpoint(endpoint);
      if (!ep || ep.status === "Deleting" || ep.status === "Failed") continue;
      const count = (await this.service.variantCounts(endpoint)).get(variant);
      const mem = this.remember(target.ResourceId);
      if (mem.open && count && count.desired === mem.open.ToCapacity && count.inService === count.desired) {
        await this.close(mem, "Successful", now);
      }
      let snap = snapshots.get(endpoint);
      if (!snap) snapshots.set(endpoint, (snap = await this.metrics.snapshot(endpoint)));
      const latest = snap;
      const current =
        count?.desired ??
        ep.deployment?.config.variants.find((v) => v.variantName === variant)?.initialInstanceCount ??
        0;
      const view: VariantView = {
        now,
        current,
        latest: (name) => latest[name],
        maxOver: (name, windowMs) =>
          Math.max(latest[name], this.metrics.maxOver(endpoint, name, windowMs, now)),
        lastActivityAt: mem.lastActivityAt,
        lastScaleOutAt: mem.lastScaleOutAt,
        policyLastAt: mem.policyLastAt,
        alarms,
      };
      const policies = await this.store.listPolicies({ resourceId: target.ResourceId });
      const d = decide(target, policies, view);
      if (d.desired === current) continue;
      await this.apply(target, mem, current, d.desired, d.cause, d.policies, now);
      // The desired count lives in the store: the leader's placer places it on the cluster's hosts.
      await this.service.setDesiredCount(endpoint, variant, d.desired);
    }
  }

  private remember(resourceId: string): TargetMemory {
    let m = this.memory.get(resourceId);
    if (!m) this.memory.set(resourceId, (m = { policyLastAt: new Map() }));
    return m;
  }

  private async apply(
    target: ScalableTarget,
    mem: TargetMemory,
    from: number,
    to: number,
    cause: string,
    policies: string[],
    now: number,
  ): Promise<void> {
    if (mem.open) await this.close(mem, "Overridden", now, `overridden by a change to ${to}`);
    const activity: ScalingActivity = {
      ActivityId: randomUUID(),
      ServiceNamespace: SERVICE_NAMESPACE,
      ResourceId: target.ResourceId,
      ScalableDimension: SCALABLE_DIMENSION,
      Description: `Setting desired instance count to ${to}.`,
      Cause: cause,
      StartTime: epochS(now),
      StatusCode: "InProgress",
      FromCapacity: from,
      ToCapacity: to,
      ...(policies[0] ? { PolicyName: policies.join(", ") } : {}),
    };
    await this.store.addActivity(activity);
    mem.open = activity;
    mem.lastActivityAt = now;
    if (to > from) mem.lastScaleOutAt = now;
    for (const p of policies) mem.policyLastAt.set(p, now);
    this.o.log(`autoscaler: ${target.ResourceId} ${from} → ${to}: ${cause}`);
  }

  private async close(
    mem: TargetMemory,
    status: "Successful" | "Overridden",
    now: number,
    message?: string,
  ): Promise<void> {
    const a = mem.open!;
    mem.open = undefined;
    await this.store.updateActivity({
      ...a,
      StatusCode: status,
      EndTime: epochS(now),
      ...(message ? { StatusMessage: message } : {}),
    });
  }

  // --- the Application Auto Scaling API ---

  private targetArn(resourceId: string): string {
    return `arn:aws:application-autoscaling:${this.o.region}:${this.o.accountId}:scalable-target/${resourceId.replace(/\//g, "-")}`;
  }

  private async checkResource(resourceId: unknown): Promise<string> {
    const { endpoint, variant } = parseResourceId(resourceId);
    const ep = await this.service.findEndpoint(endpoint);
    if (!ep) throw validation("ResourceId", `endpoint ${endpoint} does not exist`);
    if (!ep.deployment?.config.variants.some((v) => v.variantName === variant)) {
      throw validation("ResourceId", `endpoint ${endpoint} has no variant ${variant}`);
    }
    return resourceId as string;
  }

  async registerScalableTarget(
    input: TargetKeys & {
      MinCapacity?: number;
      MaxCapacity?: number;
      RoleARN?: string;
      SuspendedState?: SuspendedState;
    },
  ): Promise<{ ScalableTargetARN: string }> {
    checkNamespace(input.ServiceNamespace);
    checkDimension(input.ScalableDimension);
    const resourceId = await this.checkResource(input.ResourceId);
    const existing = await this.store.getTarget(resourceId);
    if (!existing && (input.MinCapacity === undefined || input.MaxCapacity === undefined)) {
      throw validation(
        input.MinCapacity === undefined ? "MinCapacity" : "MaxCapacity",
        "is required when registering a new scalable target",
      );
    }
    const min =
      input.MinCapacity === undefined
        ? existing!.MinCapacity
        : checkCapacity("MinCapacity", input.MinCapacity);
    const max =
      input.MaxCapacity === undefined
        ? existing!.MaxCapacity
        : checkCapacity("MaxCapacity", input.MaxCapacity);
    if (min > max) throw validation("MinCapacity", `${min} is above MaxCapacity ${max}`);
    const target: ScalableTarget = {
      ServiceNamespace: SERVICE_NAMESPACE,
      ResourceId: resourceId,
      ScalableDimension: SCALABLE_DIMENSION,
      MinCapacity: min,
      MaxCapacity: max,
      RoleARN:
        optionalString("RoleARN", input.RoleARN) ??
        existing?.RoleARN ??
        `arn:aws:iam::${this.o.accountId}:role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint`,
      CreationTime: existing?.CreationTime ?? epochS(Date.now()),
      SuspendedState:
        input.SuspendedState === undefined
          ? (existing?.SuspendedState ?? {})
          : checkSuspended(input.SuspendedState),
      ScalableTargetARN: existing?.ScalableTargetARN ?? this.targetArn(resourceId),
    };
    await this.store.putTarget(target);
    this.evaluateSoon();
    return { ScalableTargetARN: target.ScalableTargetARN };
  }

  async describeScalableTargets(
    input: { ServiceNamespace: string; ResourceIds?: string[]; ScalableDimension?: string } & Page,
  ): Promise<{ ScalableTargets: ScalableTarget[]; NextToken?: string }> {
    checkNamespace(input.ServiceNamespace);
    checkDimension(input.ScalableDimension, false);
    const ids = optionalStringList("ResourceIds", input.ResourceIds);
    const all = (await this.store.listTargets()).filter((t) => !ids?.length || ids.includes(t.ResourceId));
    const { items, next } = paginate(all, input);
    return { ScalableTargets: items, ...(next ? { NextToken: next } : {}) };
  }

  async deregisterScalableTarget(input: TargetKeys): Promise<Record<string, never>> {
    checkTargetKeys(input);
    if (!(await this.store.deleteTarget(input.ResourceId))) {
      throw new KikitoriError("NotFound", `No scalable target registered for ${input.ResourceId}`);
    }
    this.memory.delete(input.ResourceId);
    return {};
  }

  async putScalingPolicy(
    input: TargetKeys & {
      PolicyName: string;
      PolicyType?: string;
      TargetTrackingScalingPolicyConfiguration?: TargetTrackingScalingPolicyConfiguration;
      StepScalingPolicyConfiguration?: StepScalingPolicyConfiguration;
    },
  ): Promise<{ PolicyARN: string; Alarms: [] }> {
    const name = checkPolicyName(input.PolicyName);
    const { endpoint } = checkTargetKeys(input);
    const type = input.PolicyType ?? "StepScaling";
    if (type !== "TargetTrackingScaling" && type !== "StepScaling") {
      throw validation(
        "PolicyType",
        `must be TargetTrackingScaling or StepScaling (got ${JSON.stringify(type)})`,
      );
    }
    if (!(await this.store.getTarget(input.ResourceId))) {
      throw new KikitoriError(
        "NotFound",
        `No scalable target registered for ${input.ResourceId}; call RegisterScalableTarget first`,
      );
    }
    const existing = (await this.store.listPolicies({ resourceId: input.ResourceId })).find(
      (p) => p.PolicyName === name,
    );
    const policy: ScalingPolicy = {
      PolicyARN:
        existing?.PolicyARN ??
        `arn:aws:autoscaling:${this.o.region}:${this.o.accountId}:scalingPolicy:${randomUUID()}:resource/sagemaker/${input.ResourceId}:policyName/${name}`,
      PolicyName: name,
      ServiceNamespace: SERVICE_NAMESPACE,
      ResourceId: input.ResourceId,
      ScalableDimension: SCALABLE_DIMENSION,
      PolicyType: type,
      ...(type === "TargetTrackingScaling"
        ? {
            TargetTrackingScalingPolicyConfiguration: checkTargetTracking(
              input.TargetTrackingScalingPolicyConfiguration,
              endpoint,
            ),
          }
        : { StepScalingPolicyConfiguration: checkStepScaling(input.StepScalingPolicyConfiguration) }),
      Alarms: [],
      CreationTime: existing?.CreationTime ?? epochS(Date.now()),
    };
    await this.store.putPolicy(policy);
    this.evaluateSoon();
    return { PolicyARN: policy.PolicyARN, Alarms: [] };
  }

  async describeScalingPolicies(
    input: {
      ServiceNamespace: string;
      PolicyNames?: string[];
      ResourceId?: string;
      ScalableDimension?: string;
    } & Page,
  ): Promise<{ ScalingPolicies: ScalingPolicy[]; NextToken?: string }> {
    checkNamespace(input.ServiceNamespace);
    checkDimension(input.ScalableDimension, false);
    if (input.ResourceId !== undefined) parseResourceId(input.ResourceId);
    const names = optionalStringList("PolicyNames", input.PolicyNames);
    const all = (await this.store.listPolicies({ resourceId: input.ResourceId })).filter(
      (p) => !names?.length || names.includes(p.PolicyName),
    );
    const { items, next } = paginate(all, input);
    if (this.alarms) for (const p of items) p.Alarms = await this.alarms.naming(p.PolicyARN);
    return { ScalingPolicies: items, ...(next ? { NextToken: next } : {}) };
  }

  async deleteScalingPolicy(input: TargetKeys & { PolicyName: string }): Promise<Record<string, never>> {
    checkTargetKeys(input);
    if (!(await this.store.deletePolicy(input.ResourceId, input.PolicyName))) {
      throw new KikitoriError("NotFound", `No scaling policy ${input.PolicyName} for ${input.ResourceId}`);
    }
    return {};
  }

  async describeScalingActivities(
    input: {
      ServiceNamespace: string;
      ResourceId?: string;
      ScalableDimension?: string;
      /** kikitori extension: the activities of every variant of this endpoint. */
      EndpointName?: string;
    } & Page,
  ): Promise<{ ScalingActivities: ScalingActivity[]; NextToken?: string }> {
    checkNamespace(input.ServiceNamespace);
    checkDimension(input.ScalableDimension, false);
    if (input.ResourceId !== undefined) parseResourceId(input.ResourceId);
    const limit = pageSize(input.MaxResults);
    let beforeSeq: number | undefined;
    if (input.NextToken !== undefined) {
      beforeSeq = Number(input.NextToken);
      if (!Number.isInteger(beforeSeq)) throw validation("NextToken", "is not a token this service issued");
    }
    const { activities, lastSeq } = await this.store.listActivities({
      resourceId: input.ResourceId,
      ...(input.EndpointName !== undefined
        ? { resourcePrefix: `endpoint/${input.EndpointName}/variant/` }
        : {}),
      limit,
      beforeSeq,
    });
    return {
      ScalingActivities: activities,
      ...(activities.length === limit && lastSeq !== undefined ? { NextToken: String(lastSeq) } : {}),
    };
  }
}

function pageSize(v: unknown): number {
  if (v === undefined) return MAX_RESULTS;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > MAX_RESULTS) {
    throw validation("MaxResults", `must be an integer from 1 to ${MAX_RESULTS}`);
  }
  return v;
}

function paginate<T>(all: T[], page: Page): { items: T[]; next?: string } {
  const size = pageSize(page.MaxResults);
  const start = page.NextToken === undefined ? 0 : Number(page.NextToken);
  if (!Number.isInteger(start) || start < 0)
    throw validation("NextToken", "is not a token this service issued");
  const items = all.slice(start, start + size);
  return { items, next: start + size < all.length ? String(start + size) : undefined };
}
