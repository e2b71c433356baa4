import { validation } from "../errors.js";
import {
  SCALABLE_DIMENSION,
  SCALING_METRICS,
  SERVICE_NAMESPACE,
  type ComparisonOperator,
  type KikitoriStepAlarm,
  type MetricStatistic,
  type ScalingMetricName,
  type StepScalingPolicyConfiguration,
  type SuspendedState,
  type TargetKeys,
  type TargetTrackingScalingPolicyConfiguration,
} from "./types.js";

/**
 * The largest capacity kikitori accepts for one variant. AWS's API sets no upper bound (service quotas
 * do); this only catches typos.
 */
export const MAX_CAPACITY_LIMIT = 1000;

const isObj = (x: unknown): x is Record<string, unknown> =>
  typeof x === "object" && x !== null && !Array.isArray(x);

export function checkNamespace(v: unknown): void {
  if (v !== SERVICE_NAMESPACE) {
    throw validation(
      "ServiceNamespace",
      `kikitori scales "${SERVICE_NAMESPACE}" only (got ${JSON.stringify(v)})`,
    );
  }
}

export function checkDimension(v: unknown, required = true): void {
  if (v === undefined && !required) return;
  if (v !== SCALABLE_DIMENSION) {
    throw validation("ScalableDimension", `must be "${SCALABLE_DIMENSION}" (got ${JSON.stringify(v)})`);
  }
}

/** `endpoint/<name>/variant/<variant>` → its parts. */
export function parseResourceId(v: unknown): { endpoint: string; variant: string } {
  const m = typeof v === "string" ? /^endpoint\/([^/]+)\/variant\/([^/]+)$/.exec(v) : null;
  if (!m) {
    throw validation(
      "ResourceId",
      `must look like "endpoint/<EndpointName>/variant/<VariantName>" (got ${JSON.stringify(v)})`,
    );
  }
  return { endpoint: m[1]!, variant: m[2]! };
}

/** Checks a request's target keys; returns the endpoint and variant its ResourceId names. */
export function checkTargetKeys(input: TargetKeys): { endpoint: string; variant: string } {
  checkNamespace(input.ServiceNamespace);
  checkDimension(input.ScalableDimension);
  return parseResourceId(input.ResourceId);
}

export function checkCapacity(field: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > MAX_CAPACITY_LIMIT) {
    throw validation(field, `must be an integer from 0 to ${MAX_CAPACITY_LIMIT} (got ${JSON.stringify(v)})`);
  }
  return v;
}

export function checkSuspended(v: unknown): SuspendedState {
  if (v === undefined) return {};
  if (!isObj(v)) throw validation("SuspendedState", "must be an object");
  const out: SuspendedState = {};
  for (const k of [
    "DynamicScalingInSuspended",
    "DynamicScalingOutSuspended",
    "ScheduledScalingSuspended",
  ] as const) {
    if (v[k] === undefined) continue;
    if (typeof v[k] !== "boolean") throw validation(`SuspendedState.${k}`, "must be a boolean");
    out[k] = v[k];
  }
  return out;
}

export function optionalString(field: string, v: unknown): string | undefined {
  if (v !== undefined && typeof v !== "string") throw validation(field, "must be a string");
  return v;
}

export function optionalStringList(field: string, v: unknown): string[] | undefined {
  if (v !== undefined && (!Array.isArray(v) || v.some((x) => typeof x !== "string"))) {
    throw validation(field, "must be a list of strings");
  }
  return v;
}

export function checkPolicyName(v: unknown): string {
  if (typeof v !== "string" || !/^[^\p{Cc}]{1,256}$/u.test(v) || v.includes(":") || v.includes("/")) {
    throw validation("PolicyName", "must be 1 to 256 printable characters without ':' or '/'");
  }
  return v;
}

function checkSeconds(field: string, v: unknown): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 86_400) {
    throw validation(
      field,
      `must be an integer number of seconds from 0 to 86400 (got ${JSON.stringify(v)})`,
    );
  }
  return v;
}

function checkMetricName(field: string, v: unknown): ScalingMetricName {
  if (!SCALING_METRICS.includes(v as ScalingMetricName)) {
    throw validation(field, `kikitori scales on ${SCALING_METRICS.join(", ")} (got ${JSON.stringify(v)})`);
  }
  return v as ScalingMetricName;
}

const STATISTICS: MetricStatistic[] = ["Average", "Minimum", "Maximum", "SampleCount", "Sum"];

export function checkTargetTracking(v: unknown, endpoint: string): TargetTrackingScalingPolicyConfiguration {
  const f = "TargetTrackingScalingPolicyConfiguration";
  if (!isObj(v)) throw validation(f, "is required for PolicyType TargetTrackingScaling");
  if (typeof v.TargetValue !== "number" || !(v.TargetValue > 0) || !Number.isFinite(v.TargetValue)) {
    throw validation(`${f}.TargetValue`, `must be a number above 0 (got ${JSON.stringify(v.TargetValue)})`);
  }
  if (v.PredefinedMetricSpecification !== undefined) {
    const type = isObj(v.PredefinedMetricSpecification)
      ? v.PredefinedMetricSpecification.PredefinedMetricType
      : undefined;
    throw validation(
      `${f}.PredefinedMetricSpecification`,
      `${typeof type === "string" ? type : JSON.stringify(type)} is not supported for asynchronous endpoints; use CustomizedMetricSpecification ` +
        `with MetricName ApproximateBacklogSizePerInstance, Namespace AWS/SageMaker`,
    );
  }
  const c = v.CustomizedMetricSpecification;
  if (!isObj(c)) throw validation(`${f}.CustomizedMetricSpecification`, "is required");
  const cf = `${f}.CustomizedMetricSpecification`;
  const metricName = checkMetricName(`${cf}.MetricName`, c.MetricName);
  if (c.Namespace !== "AWS/SageMaker") {
    throw validation(`${cf}.Namespace`, `must be "AWS/SageMaker" (got ${JSON.stringify(c.Namespace)})`);
  }
  if (c.Statistic !== undefined && !STATISTICS.includes(c.Statistic as MetricStatistic)) {
    throw validation(`${cf}.Statistic`, `must be one of ${STATISTICS.join(", ")}`);
  }
  const dims = c.Dimensions ?? [];
  if (!Array.isArray(dims)) throw validation(`${cf}.Dimensions`, "must be a list");
  for (const [i, d] of dims.entries()) {
    if (!isObj(d) || typeof d.Name !== "string" || typeof d.Value !== "string") {
      throw validation(`${cf}.Dimensions[${i}]`, "must be { Name, Value }");
    }
    if (d.Name === "EndpointName" && d.Value !== endpoint) {
      throw validation(
        `${cf}.Dimensions[${i}]`,
        `EndpointName ${d.Value} is not the target's endpoint ${endpoint}`,
      );
    }
  }
  if (v.DisableScaleIn !== undefined && typeof v.DisableScaleIn !== "boolean") {
    throw validation(`${f}.DisableScaleIn`, "must be a boolean");
  }
  return {
    TargetValue: v.TargetValue,
    CustomizedMetricSpecification: {
      MetricName: metricName,
      Namespace: "AWS/SageMaker",
      Dimensions: dims as { Name: string; Value: string }[],
      Statistic: (c.Statistic as MetricStatistic | undefined) ?? "Average",
      ...(typeof c.Unit === "string" ? { Unit: c.Unit } : {}),
    },
    ScaleInCooldown: checkSeconds(`${f}.ScaleInCooldown`, v.ScaleInCooldown),
    ScaleOutCooldown: checkSeconds(`${f}.ScaleOutCooldown`, v.ScaleOutCooldown),
    DisableScaleIn: v.DisableScaleIn === true,
  };
}

const OPERATORS: ComparisonOperator[] = [
  "GreaterThanThreshold",
  "GreaterThanOrEqualToThreshold",
  "LessThanThreshold",
  "LessThanOrEqualToThreshold",
];

const optNumber = (field: string, v: unknown): number | undefined => {
  if (v === undefined) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v)) throw validation(field, "must be a number");
  return v;
};

export function checkStepScaling(v: unknown): StepScalingPolicyConfiguration {
  const f = "StepScalingPolicyConfiguration";
  if (!isObj(v)) throw validation(f, "is required for PolicyType StepScaling");
  const types = ["ChangeInCapacity", "ExactCapacity", "PercentChangeInCapacity"];
  if (!types.includes(v.AdjustmentType as string)) {
    throw validation(`${f}.AdjustmentType`, `must be one of ${types.join(", ")}`);
  }
  if (!Array.isArray(v.StepAdjustments) || v.StepAdjustments.length === 0) {
    throw validation(`${f}.StepAdjustments`, "needs at least one step");
  }
  const steps = v.StepAdjustments.map((s: unknown, i: number) => {
    const sf = `${f}.StepAdjustments[${i}]`;
    if (!isObj(s)) throw validation(sf, "must be an object");
    if (typeof s.ScalingAdjustment !== "number" || !Number.isInteger(s.ScalingAdjustment)) {
      throw validation(`${sf}.ScalingAdjustment`, "must be an integer");
    }
    const lo = optNumber(`${sf}.MetricIntervalLowerBound`, s.MetricIntervalLowerBound);
    const hi = optNumber(`${sf}.MetricIntervalUpperBound`, s.MetricIntervalUpperBound);
    if (lo === undefined && hi === undefined) {
      throw validation(sf, "needs MetricIntervalLowerBound or MetricIntervalUpperBound");
    }
    if (lo !== undefined && hi !== undefined && lo >= hi) {
      throw validation(sf, "MetricIntervalLowerBound must be below MetricIntervalUpperBound");
    }
    return {
      ...(lo !== undefined ? { MetricIntervalLowerBound: lo } : {}),
      ...(hi !== undefined ? { MetricIntervalUpperBound: hi } : {}),
      ScalingAdjustment: s.ScalingAdjustment,
    };
  });
  const sorted = [...steps].sort(
    (a, b) => (a.MetricIntervalLowerBound ?? -Infinity) - (b.MetricIntervalLowerBound ?? -Infinity),
  );
  for (let i = 1; i < sorted.length; i++) {
    if (
      (sorted[i]!.MetricIntervalLowerBound ?? -Infinity) <
      (sorted[i - 1]!.MetricIntervalUpperBound ?? Infinity)
    ) {
      throw validation(`${f}.StepAdjustments`, "the step intervals overlap");
    }
  }
  const aggs = ["Average", "Minimum", "Maximum"];
  if (v.MetricAggregationType !== undefined && !aggs.includes(v.MetricAggregationType as string)) {
    throw validation(`${f}.MetricAggregationType`, `must be one of ${aggs.join(", ")}`);
  }
  const mam = v.MinAdjustmentMagnitude;
  if (mam !== undefined && (typeof mam !== "number" || !Number.isInteger(mam) || mam < 1)) {
    throw validation(`${f}.MinAdjustmentMagnitude`, "must be an integer of at least 1");
  }
  if (mam !== undefined && v.AdjustmentType !== "PercentChangeInCapacity") {
    throw validation(`${f}.MinAdjustmentMagnitude`, "applies only to AdjustmentType PercentChangeInCapacity");
  }
  return {
    AdjustmentType: v.AdjustmentType as StepScalingPolicyConfiguration["AdjustmentType"],
    StepAdjustments: steps,
    Cooldown: checkSeconds(`${f}.Cooldown`, v.Cooldown),
    ...(v.MetricAggregationType !== undefined
      ? { MetricAggregationType: v.MetricAggregationType as "Average" | "Minimum" | "Maximum" }
      : {}),
    ...(mam !== undefined ? { MinAdjustmentMagnitude: mam as number } : {}),
    ...(v.KikitoriAlarm !== undefined
      ? { KikitoriAlarm: checkAlarm(`${f}.KikitoriAlarm`, v.KikitoriAlarm) }
      : {}),
  };
}

function checkAlarm(f: string, v: unknown): KikitoriStepAlarm {
  if (!isObj(v)) throw validation(f, "must be { MetricName, ComparisonOperator, Threshold }");
  if (!OPERATORS.includes(v.ComparisonOperator as ComparisonOperator)) {
    throw validation(`${f}.ComparisonOperator`, `must be one of ${OPERATORS.join(", ")}`);
  }
  const threshold = optNumber(`${f}.Threshold`, v.Threshold);
  if (threshold === undefined) throw validation(`${f}.Threshold`, "is required");
  return {
    MetricName: checkMetricName(`${f}.MetricName`, v.MetricName),
    ComparisonOperator: v.ComparisonOperator as ComparisonOperator,
    Threshold: threshold,
  };
}
