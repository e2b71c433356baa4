import { KikitoriError, validation } from "../errors.js";
import type { MetricName } from "../metrics/metrics.js";
import { METRIC_NAMES } from "../metrics/metrics.js";
import type { AwsResourceStore } from "../queue/aws-store.js";
import { breaches } from "./policy.js";
import type { ComparisonOperator, MetricDimension } from "./types.js";

/**
 * CloudWatch metric alarms over the metrics kikitori keeps (namespace AWS/SageMaker, dimension
 * EndpointName; 1-second samples for the last hour). Evaluated once a second by the autoscaler's loop: an
 * alarm's data points are its Statistic over each of the last EvaluationPeriods windows of Period seconds,
 * ending now (CloudWatch's windows end on period boundaries; kikitori's slide, so nothing waits for the next
 * minute). An alarm in ALARM whose AlarmActions name a step scaling policy drives that policy: once when it
 * enters ALARM, then once per Period while it stays there (AWS: once a minute), within the policy's Cooldown.
 * Other actions (SNS topics) are accepted and not run.
 */

export const NAMESPACE = "AWS/SageMaker";
const STATISTICS = ["SampleCount", "Average", "Sum", "Minimum", "Maximum"] as const;
export type Statistic = (typeof STATISTICS)[number];
const OPERATORS: ComparisonOperator[] = [
  "GreaterThanThreshold",
  "GreaterThanOrEqualToThreshold",
  "LessThanThreshold",
  "LessThanOrEqualToThreshold",
];
const MISSING = ["breaching", "notBreaching", "ignore", "missing"] as const;
/** The longest window an alarm may look at: the metrics history kikitori keeps. */
export const MAX_ALARM_WINDOW_S = 3600;

export type AlarmState = "OK" | "ALARM" | "INSUFFICIENT_DATA";

/** A metric alarm in DescribeAlarms' shape; times are epoch seconds. */
export interface MetricAlarm {
  AlarmName: string;
  AlarmArn: string;
  AlarmDescription?: string;
  AlarmConfigurationUpdatedTimestamp: number;
  ActionsEnabled: boolean;
  OKActions: string[];
  AlarmActions: string[];
  InsufficientDataActions: string[];
  StateValue: AlarmState;
  StateReason: string;
  StateUpdatedTimestamp: number;
  StateTransitionedTimestamp: number;
  MetricName: string;
  Namespace: string;
  Statistic: Statistic;
  Dimensions: MetricDimension[];
  Period: number;
  Unit?: string;
  EvaluationPeriods: number;
  DatapointsToAlarm: number;
  Threshold: number;
  ComparisonOperator: ComparisonOperator;
  TreatMissingData: (typeof MISSING)[number];
}

/** What the alarms read of the metrics box (src/metrics implements it). */
export interface AlarmMetricsSource {
  series(endpoint: string, name: MetricName, since: number): { t: number; value: number }[];
}

/** A step policy's trigger: an alarm in ALARM that fires now, and the value that breached. */
export interface AlarmSignal {
  alarmName: string;
  value: number;
  threshold: number;
  operator: ComparisonOperator;
}

/** One statistic of a set of samples (undefined when there are none). */
export function statistic(values: number[], stat: Statistic): number | undefined {
  if (values.length === 0) return undefined;
  switch (stat) {
    case "SampleCount":
      return values.length;
    case "Sum":
      return values.reduce((a, b) => a + b, 0);
    case "Average":
      return values.reduce((a, b) => a + b, 0) / values.length;
    case "Minimum":
      return Math.min(...values);
    case "Maximum":
      return Math.max(...values);
  }
}

export const isStatistic = (s: unknown): s is Statistic => STATISTICS.includes(s as Statistic);
export const isSageMakerMetric = (n: unknown): n is MetricName => METRIC_NAMES.includes(n as MetricName);

const epochS = (ms: number) => ms / 1000;
const fmt = (x: number) => String(Math.round(x * 1e6) / 1e6);

// --- input checking (PutMetricAlarm) ---

type Input = Record<string, unknown>;

const str = (i: Input, f: string, required = false): string | undefined => {
  const v = i[f];
  if (v === undefined || v === null) {
    if (required) throw validation(f, "is required");
    return undefined;
  }
  if (typeof v !== "string") throw validation(f, "must be a string");
  return v;
};
const num = (i: Input, f: string, required = false): number | undefined => {
  const v = i[f];
  if (v === undefined || v === null) {
    if (required) throw validation(f, "is required");
    return undefined;
  }
  if (typeof v !== "number" || !Number.isFinite(v)) throw validation(f, "must be a number");
  return v;
};
const int = (i: Input, f: string, required = false): number | undefined => {
  const v = num(i, f, required);
  if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw validation(f, "must be a positive integer");
  return v;
};
const strings = (i: Input, f: string): string[] => {
  const v = i[f];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((s) => typeof s !== "string"))
    throw validation(f, "must be a list of strings");
  return v as string[];
};

export function checkDimensions(v: unknown, f = "Dimensions"): MetricDimension[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw validation(f, "must be a list");
  return v.map((d: unknown, i) => {
    const o = (d ?? {}) as Input;
    if (typeof o.Name !== "string" || o.Name === "") throw validation(`${f}[${i}].Name`, "is required");
    if (typeof o.Value !== "string") throw validation(`${f}[${i}].Value`, "must be a string");
    return { Name: o.Name, Value: o.Value };
  });
}

/** The members of PutMetricAlarm kikitori does not implement (metric math, anomaly bands, percentiles). */
const UNSUPPORTED = ["Metrics", "ThresholdMetricId", "ExtendedStatistic", "EvaluationCriteria"];

export function checkAlarm(
  input: Input,
  arn: (name: string) => string,
  existing: MetricAlarm | undefined,
  now: number,
): MetricAlarm {
  for (const f of UNSUPPORTED)
    if (input[f] !== undefined && input[f] !== null)
      throw validation(f, "is not supported by kikitori (single-metric alarms with a Statistic only)");
  const name = str(input, "AlarmName", true)!;
  if (name.length < 1 || name.length > 255) throw validation("AlarmName", "must be 1 to 255 characters");
  const statisticName = str(input, "Statistic", true)!;
  if (!isStatistic(statisticName)) throw validation("Statistic", `must be one of ${STATISTICS.join(", ")}`);
  const period = int(input, "Period", true)!;
  if (![10, 20, 30].includes(period) && period % 60 !== 0)
    throw validation("Period", "must be 10, 20, 30 or a multiple of 60 seconds");
  const evaluationPeriods = int(input, "EvaluationPeriods", true)!;
  if (period * evaluationPeriods > MAX_ALARM_WINDOW_S)
    throw validation(
      "EvaluationPeriods",
      `Period × EvaluationPeriods must be at most ${MAX_ALARM_WINDOW_S} seconds (the metrics history kikitori keeps)`,
    );
  const datapoints = int(input, "DatapointsToAlarm") ?? evaluationPeriods;
  if (datapoints > evaluationPeriods)
    throw validation("DatapointsToAlarm", "must not be greater than EvaluationPeriods");
  const op = str(input, "ComparisonOperator", true)!;
  if (!OPERATORS.includes(op as ComparisonOperator))
    throw validation("ComparisonOperator", `must be one of ${OPERATORS.join(", ")}`);
  const missing = str(input, "TreatMissingData") ?? "missing";
  if (!MISSING.includes(missing as MetricAlarm["TreatMissingData"]))
    throw validation("TreatMissingData", `must be one of ${MISSING.join(", ")}`);
  const actionsEnabled = input.ActionsEnabled;
  if (actionsEnabled !== undefined && actionsEnabled !== null && typeof actionsEnabled !== "boolean")
    throw validation("ActionsEnabled", "must be a boolean");
  const description = str(input, "AlarmDescription");
  const unit = str(input, "Unit");
  const t = epochS(now);
  return {
    AlarmName: name,
    AlarmArn: arn(name),
    ...(description !== undefined ? { AlarmDescription: description } : {}),
    AlarmConfigurationUpdatedTimestamp: t,
    ActionsEnabled: actionsEnabled !== false,
    OKActions: strings(input, "OKActions"),
    AlarmActions: strings(input, "AlarmActions"),
    InsufficientDataActions: strings(input, "InsufficientDataActions"),
    // An update keeps the alarm's state (CloudWatch does the same); a new alarm starts without data.
    StateValue: existing?.StateValue ?? "INSUFFICIENT_DATA",
    StateReason: existing?.StateReason ?? "Unchecked: Initial alarm creation",
    StateUpdatedTimestamp: existing?.StateUpdatedTimestamp ?? t,
    StateTransitionedTimestamp: existing?.StateTransitionedTimestamp ?? t,
    MetricName: str(input, "MetricName", true)!,
    Namespace: str(input, "Namespace", true)!,
    Statistic: statisticName,
    Dimensions: checkDimensions(input.Dimensions),
    Period: period,
    ...(unit !== undefined ? { Unit: unit } : {}),
    EvaluationPeriods: evaluationPeriods,
    DatapointsToAlarm: datapoints,
    Threshold: num(input, "Threshold", true)!,
    ComparisonOperator: op as ComparisonOperator,
    TreatMissingData: missing as MetricAlarm["TreatMissingData"],
  };
}

// --- evaluation ---

interface Evaluation {
  state: AlarmState;
  reason: string;
  /** The newest data point's value, when there is one. */
  value?: number;
}

/** The alarm's data points, newest first (undefined for a window without samples). */
export function dataPoints(
  alarm: MetricAlarm,
  metrics: AlarmMetricsSource,
  now: number,
): (number | undefined)[] | string {
  if (alarm.Namespace !== NAMESPACE)
    return `kikitori keeps no metrics in namespace ${alarm.Namespace} (only ${NAMESPACE})`;
  if (!isSageMakerMetric(alarm.MetricName))
    return `kikitori keeps no metric ${alarm.MetricName} in ${NAMESPACE}`;
  const endpoint = alarm.Dimensions.find((d) => d.Name === "EndpointName")?.Value;
  if (!endpoint) return "the alarm has no EndpointName dimension";
  const periodMs = alarm.Period * 1000;
  const samples = metrics.series(endpoint, alarm.MetricName, now - alarm.EvaluationPeriods * periodMs);
  const points: (number | undefined)[] = [];
  for (let k = 0; k < alarm.EvaluationPeriods; k++) {
    const hi = now - k * periodMs;
    const lo = hi - periodMs;
    points.push(
      statistic(
        samples.filter((s) => s.t > lo && s.t <= hi).map((s) => s.value),
        alarm.Statistic,
      ),
    );
  }
  return points;
}

export function evaluateAlarm(alarm: MetricAlarm, metrics: AlarmMetricsSource, now: number): Evaluation {
  const points = dataPoints(alarm, metrics, now);
  if (typeof points === "string") return { state: "INSUFFICIENT_DATA", reason: points };
  const present = points.filter((p): p is number => p !== undefined);
  const op = alarm.ComparisonOperator.replace(/([a-z])([A-Z])/g, "$1 $2")
    .toLowerCase()
    .replace(/ threshold$/, "");
  if (present.length === 0) {
    switch (alarm.TreatMissingData) {
      case "ignore":
        return { state: alarm.StateValue, reason: alarm.StateReason };
      case "breaching":
        return { state: "ALARM", reason: "no data points; TreatMissingData treats them as breaching" };
      case "notBreaching":
        return { state: "OK", reason: "no data points; TreatMissingData treats them as not breaching" };
      default:
        return {
          state: "INSUFFICIENT_DATA",
          reason: "Insufficient Data: no data points in the evaluation range",
        };
    }
  }
  const breaching = points.filter((p) =>
    p === undefined
      ? alarm.TreatMissingData === "breaching"
      : breaches(p, alarm.ComparisonOperator, alarm.Threshold),
  ).length;
  const value = present[0];
  const shown = `[${present.map(fmt).join(", ")}]`;
  if (breaching >= alarm.DatapointsToAlarm)
    return {
      state: "ALARM",
      value,
      reason: `Threshold Crossed: ${breaching} out of the last ${alarm.EvaluationPeriods} datapoints ${shown} ${breaching === 1 ? "was" : "were"} ${op} the threshold (${fmt(alarm.Threshold)}).`,
    };
  return {
    state: "OK",
    value,
    reason: `Threshold Crossed: ${breaching} out of the last ${alarm.EvaluationPeriods} datapoints ${shown} breached the threshold (${fmt(alarm.Threshold)}); ${alarm.DatapointsToAlarm} needed for ALARM.`,
  };
}

export interface AlarmsOptions {
  region: string;
  accountId: string;
  log: (msg: string) => void;
}

/** Metric alarms: stored (AwsResourceStore, kind `cw-alarm`), evaluated, and fired at step policies. */
export class Alarms {
  /** When each (alarm, action) last fired, in this process (the one that runs the autoscaler loop). */
  private readonly firedAt = new Map<string, number>();

  constructor(
    private readonly store: AwsResourceStore,
    private readonly metrics: AlarmMetricsSource,
    private readonly o: AlarmsOptions,
  ) {}

  arn = (name: string) => `arn:aws:cloudwatch:${this.o.region}:${this.o.accountId}:alarm:${name}`;

  async get(name: string): Promise<MetricAlarm | undefined> {
    const r = await this.store.get("cw-alarm", name);
    return r ? (JSON.parse(r.body) as MetricAlarm) : undefined;
  }

  async list(prefix?: string): Promise<MetricAlarm[]> {
    return (await this.store.list("cw-alarm", prefix)).map((r) => JSON.parse(r.body) as MetricAlarm);
  }

  /** PutMetricAlarm: creates or replaces (keeping the state); the first evaluation follows at once. */
  async put(input: Input, now = Date.now()): Promise<MetricAlarm> {
    const name = str(input, "AlarmName", true)!;
    const alarm = checkAlarm(input, this.arn, await this.get(name), now);
    const e = evaluateAlarm(alarm, this.metrics, now);
    await this.store.put("cw-alarm", name, JSON.stringify(this.withState(alarm, e, now)), now);
    return alarm;
  }

  /** DeleteAlarms: all or nothing; a name that does not exist fails the call. */
  async delete(names: string[]): Promise<void> {
    for (const n of names)
      if (!(await this.get(n))) throw new KikitoriError("NotFound", `The alarm ${n} does not exist.`);
    for (const n of names) await this.store.delete("cw-alarm", n);
  }

  private withState(alarm: MetricAlarm, e: Evaluation, now: number): MetricAlarm {
    if (e.state === alarm.StateValue && e.reason === alarm.StateReason) return alarm;
    const t = epochS(now);
    return {
      ...alarm,
      StateValue: e.state,
      StateReason: e.reason,
      StateUpdatedTimestamp: t,
      StateTransitionedTimestamp: e.state === alarm.StateValue ? alarm.StateTransitionedTimestamp : t,
    };
  }

  /**
   * Evaluates every alarm (state changes are stored) and returns, by step policy ARN, the alarms that fire
   * at it now. `bound` is every policy ARN some enabled alarm names, firing or not.
   */
  async evaluate(now = Date.now()): Promise<{ firing: Map<string, AlarmSignal>; bound: Set<string> }> {
    const firing = new Map<string, AlarmSignal>();
    const bound = new Set<string>();
    for (const alarm of await this.list()) {
      const e = evaluateAlarm(alarm, this.metrics, now);
      const next = this.withState(alarm, e, now);
      if (next !== alarm) {
        await this.store.put("cw-alarm", alarm.AlarmName, JSON.stringify(next), now);
        if (next.StateValue !== alarm.StateValue)
          this.o.log(`alarm ${alarm.AlarmName}: ${alarm.StateValue} → ${next.StateValue}: ${e.reason}`);
      }
      if (!alarm.ActionsEnabled) continue;
      const policies = alarm.AlarmActions.filter((a) => a.startsWith("arn:aws:autoscaling:"));
      for (const p of policies) bound.add(p);
      if (next.StateValue !== "ALARM" || e.value === undefined) {
        for (const p of policies) this.firedAt.delete(`${alarm.AlarmName}\n${p}`);
        continue;
      }
      for (const p of policies) {
        const key = `${alarm.AlarmName}\n${p}`;
        const last = this.firedAt.get(key);
        if (last !== undefined && now - last < alarm.Period * 1000) continue;
        this.firedAt.set(key, now);
        if (!firing.has(p))
          firing.set(p, {
            alarmName: alarm.AlarmName,
            value: e.value,
            threshold: alarm.Threshold,
            operator: alarm.ComparisonOperator,
          });
      }
    }
    return { firing, bound };
  }

  /** The alarms whose AlarmActions name a policy (DescribeScalingPolicies' `Alarms`). */
  async naming(policyArn: string): Promise<{ AlarmName: string; AlarmARN: string }[]> {
    return (await this.list())
      .filter((a) => a.AlarmActions.includes(policyArn))
      .map((a) => ({ AlarmName: a.AlarmName, AlarmARN: a.AlarmArn }));
  }
}
