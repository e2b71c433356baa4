import type {
  ComparisonOperator,
  ScalableTarget,
  ScalingMetricName,
  ScalingPolicy,
  StepScalingPolicyConfiguration,
  TargetTrackingScalingPolicyConfiguration,
} from "./types.js";
import { DEFAULT_STEP_ALARM } from "./types.js";
import type { AlarmSignal } from "./alarms.js";

/**
 * Pure scaling policies: metrics in, desired instance count out. No I/O and no clock of their own, so
 * they are unit-tested with plain numbers; the Autoscaler loop (autoscaler.ts) feeds them.
 *
 * Evaluation: kikitori's data points are 1 second long and a policy is evaluated against the latest one
 * (AWS uses 1-minute CloudWatch data points and several of them per alarm). Cooldowns do the damping:
 * a target-tracking scale-in needs the metric low for the whole ScaleInCooldown ("no work for the
 * cooldown") and ScaleInCooldown seconds since the target's last scaling activity.
 */

/** AWS's defaults for SageMaker variants when a policy leaves the cooldowns out. */
export const DEFAULT_SCALE_IN_COOLDOWN_S = 300;
export const DEFAULT_SCALE_OUT_COOLDOWN_S = 300;

/** What a policy sees of one variant at one evaluation. Times are epoch milliseconds. */
export interface VariantView {
  now: number;
  /** The variant's desired instance count now. */
  current: number;
  /** The latest value of a metric. */
  latest(name: ScalingMetricName): number;
  /** The largest value of a metric over the last `windowMs` (the latest value included). */
  maxOver(name: ScalingMetricName, windowMs: number): number;
  /** The target's last scaling activity of any kind, and its last scale-out. */
  lastActivityAt?: number;
  lastScaleOutAt?: number;
  /** When each policy (by name) last caused a scaling activity. */
  policyLastAt: ReadonlyMap<string, number>;
  /**
   * CloudWatch alarms by step policy ARN: `bound` policies follow their alarms alone, and act only when
   * one of them is `firing`. Others follow KikitoriAlarm (or its default).
   */
  alarms?: { firing: ReadonlyMap<string, AlarmSignal>; bound: ReadonlySet<string> };
}

export interface Proposal {
  desired: number;
  cause: string;
}

export interface Decision {
  desired: number;
  /** Why, for the activity record; empty when nothing changes. */
  cause: string;
  /** The policies whose proposal the decision took. */
  policies: string[];
}

const ceilCount = (x: number) => Math.max(0, Math.ceil(x - 1e-9));

/** Target tracking on a per-instance metric sizes from the endpoint total; on others, proportionally. */
export function targetTracking(
  name: string,
  cfg: TargetTrackingScalingPolicyConfiguration,
  suspended: { in: boolean; out: boolean },
  v: VariantView,
): Proposal {
  const metric = trackedMetric(cfg);
  const perInstance = metric === "ApproximateBacklogSizePerInstance";
  const needed = (value: number, total: number) =>
    perInstance
      ? ceilCount(total / cfg.TargetValue)
      : v.current === 0
        ? value > 0
          ? 1
          : 0
        : ceilCount((v.current * value) / cfg.TargetValue);
  const value = v.latest(metric);
  const total = perInstance ? v.latest("ApproximateBacklogSize") : value;
  const wanted = needed(value, total);
  const what = perInstance
    ? `ApproximateBacklogSize ${total} / TargetValue ${cfg.TargetValue} per instance = ${wanted}`
    : `${metric} ${round(value)} vs TargetValue ${cfg.TargetValue} at ${v.current} instances = ${wanted}`;
  const hold = (why: string): Proposal => ({ desired: v.current, cause: `policy ${name}: ${why}` });

  if (wanted > v.current) {
    if (suspended.out) return hold("scale-out suspended");
    const cooldownMs = (cfg.ScaleOutCooldown ?? DEFAULT_SCALE_OUT_COOLDOWN_S) * 1000;
    if (v.lastScaleOutAt !== undefined && v.now - v.lastScaleOutAt < cooldownMs) {
      return hold(`${what}, but in ScaleOutCooldown`);
    }
    return { desired: wanted, cause: `policy ${name} (TargetTrackingScaling): ${what}` };
  }
  if (wanted < v.current) {
    if (cfg.DisableScaleIn) return hold("DisableScaleIn");
    if (suspended.in) return hold("scale-in suspended");
    const cooldownMs = (cfg.ScaleInCooldown ?? DEFAULT_SCALE_IN_COOLDOWN_S) * 1000;
    if (v.lastActivityAt !== undefined && v.now - v.lastActivityAt < cooldownMs) {
      return hold(`${what}, but in ScaleInCooldown`);
    }
    // Scale in only to what the busiest moment of the cooldown window needed.
    const peak = v.maxOver(metric, cooldownMs);
    const peakTotal = perInstance ? v.maxOver("ApproximateBacklogSize", cooldownMs) : peak;
    const safe = Math.max(wanted, needed(peak, peakTotal));
    if (safe >= v.current) return hold(`${what}, but the metric was higher within ScaleInCooldown`);
    return {
      desired: safe,
      cause:
        `policy ${name} (TargetTrackingScaling): ${what}` +
        (safe > wanted ? ` (peak within ScaleInCooldown needs ${safe})` : ""),
    };
  }
  return hold(what);
}

export function trackedMetric(cfg: TargetTrackingScalingPolicyConfiguration): ScalingMetricName {
  return (cfg.CustomizedMetricSpecification?.MetricName ??
    "ApproximateBacklogSizePerInstance") as ScalingMetricName;
}

export function breaches(value: number, op: ComparisonOperator, threshold: number): boolean {
  switch (op) {
    case "GreaterThanThreshold":
      return value > threshold;
    case "GreaterThanOrEqualToThreshold":
      return value >= threshold;
    case "LessThanThreshold":
      return value < threshold;
    case "LessThanOrEqualToThreshold":
      return value <= threshold;
  }
}

/** AWS's rounding of a percentage change: at least one instance, otherwise towards zero. */
function percentChange(current: number, pct: number, minMagnitude: number | undefined): number {
  const raw = (current * pct) / 100;
  let change = raw > 0 ? (raw < 1 ? 1 : Math.floor(raw)) : raw < 0 ? (raw > -1 ? -1 : Math.ceil(raw)) : 0;
  if (minMagnitude !== undefined && change !== 0 && Math.abs(change) < minMagnitude) {
    change = Math.sign(change) * minMagnitude;
  }
  return change;
}

/**
 * Step scaling: when the policy's alarm is in breach, the step whose interval (relative to the threshold)
 * holds the metric's value adjusts the count. The alarm is a CloudWatch alarm whose AlarmActions name the
 * policy, else the KikitoriAlarm extension (default: HasBacklogWithoutCapacity > 0). No opinion when the
 * alarm is not in breach or the policy is in its Cooldown.
 */
export function stepScaling(
  name: string,
  arn: string,
  cfg: StepScalingPolicyConfiguration,
  suspended: { in: boolean; out: boolean },
  v: VariantView,
): Proposal | undefined {
  let trigger: { label: string; value: number; threshold: number; operator: ComparisonOperator };
  if (v.alarms?.bound.has(arn)) {
    const s = v.alarms.firing.get(arn);
    if (!s) return undefined;
    trigger = { label: `CloudWatch alarm ${s.alarmName} in ALARM:`, ...s };
  } else {
    const alarm = cfg.KikitoriAlarm ?? DEFAULT_STEP_ALARM;
    const value = v.latest(alarm.MetricName);
    if (!breaches(value, alarm.ComparisonOperator, alarm.Threshold)) return undefined;
    trigger = {
      label: `alarm ${alarm.MetricName}`,
      value,
      threshold: alarm.Threshold,
      operator: alarm.ComparisonOperator,
    };
  }
  const last = v.policyLastAt.get(name);
  if (last !== undefined && v.now - last < (cfg.Cooldown ?? 0) * 1000) return undefined;
  const diff = trigger.value - trigger.threshold;
  const step = cfg.StepAdjustments.find(
    (s) =>
      diff >= (s.MetricIntervalLowerBound ?? -Infinity) && diff < (s.MetricIntervalUpperBound ?? Infinity),
  );
  if (!step) return undefined;
  const desired = Math.max(
    0,
    cfg.AdjustmentType === "ExactCapacity"
      ? step.ScalingAdjustment
      : cfg.AdjustmentType === "PercentChangeInCapacity"
        ? v.current + percentChange(v.current, step.ScalingAdjustment, cfg.MinAdjustmentMagnitude)
        : v.current + step.ScalingAdjustment,
  );
  if ((desired > v.current && suspended.out) || (desired < v.current && suspended.in)) return undefined;
  return {
    desired,
    cause:
      `policy ${name} (StepScaling): ${trigger.label} ${round(trigger.value)} ` +
      `${trigger.operator} ${trigger.threshold}; ${cfg.AdjustmentType} ${step.ScalingAdjustment}`,
  };
}

/**
 * Combines the policies of one scalable target as Application Auto Scaling does: the largest scale-out
 * wins; a scale-in happens only when every policy with an opinion wants fewer instances, and then to the
 * largest of their counts. The result is kept within MinCapacity..MaxCapacity.
 */
export function decide(target: ScalableTarget, policies: ScalingPolicy[], v: VariantView): Decision {
  const suspended = {
    in: target.SuspendedState.DynamicScalingInSuspended === true,
    out: target.SuspendedState.DynamicScalingOutSuspended === true,
  };
  // With AWS's recipe in place (a CloudWatch alarm driving a step policy), scaling out from zero is the
  // alarm's job, as on AWS; otherwise target tracking also scales out from zero (kikitori is kinder).
  const alarmDriven = policies.some(
    (p) => p.PolicyType === "StepScaling" && v.alarms?.bound.has(p.PolicyARN),
  );
  const proposals: (Proposal & { policy: string })[] = [];
  for (const p of policies) {
    if (alarmDriven && v.current === 0 && p.PolicyType === "TargetTrackingScaling") continue;
    const got =
      p.PolicyType === "TargetTrackingScaling" && p.TargetTrackingScalingPolicyConfiguration
        ? targetTracking(p.PolicyName, p.TargetTrackingScalingPolicyConfiguration, suspended, v)
        : p.PolicyType === "StepScaling" && p.StepScalingPolicyConfiguration
          ? stepScaling(p.PolicyName, p.PolicyARN, p.StepScalingPolicyConfiguration, suspended, v)
          : undefined;
    if (got) proposals.push({ ...got, policy: p.PolicyName });
  }
  let chosen: (Proposal & { policy: string })[] = [];
  let desired = v.current;
  const up = proposals.filter((p) => p.desired > v.current);
  if (up.length) {
    desired = Math.max(...up.map((p) => p.desired));
  } else if (proposals.length && proposals.every((p) => p.desired < v.current)) {
    desired = Math.max(...proposals.map((p) => p.desired));
  }
  chosen = proposals.filter((p) => p.desired === desired && desired !== v.current);
  let cause = chosen.map((p) => p.cause).join("; ");
  if (desired > target.MaxCapacity) {
    desired = target.MaxCapacity;
    cause += `; capped at MaxCapacity ${target.MaxCapacity}`;
  } else if (desired < target.MinCapacity) {
    desired = target.MinCapacity;
    cause = cause
      ? `${cause}; raised to MinCapacity ${target.MinCapacity}`
      : `the desired count ${v.current} is below MinCapacity ${target.MinCapacity}`;
  }
  if (!chosen.length && v.current > target.MaxCapacity) {
    cause = `the desired count ${v.current} is above MaxCapacity ${target.MaxCapacity}`;
  }
  if (desired === v.current) return { desired, cause: "", policies: [] };
  return { desired, cause: cause.replace(/^; /, ""), policies: chosen.map((p) => p.policy) };
}

const round = (x: number) => Math.round(x * 1000) / 1000;
