import { validation } from "../../errors.js";
import {
  checkDimensions,
  isSageMakerMetric,
  isStatistic,
  NAMESPACE,
  statistic,
  type Alarms,
  type MetricAlarm,
  type Statistic,
} from "../../autoscale/alarms.js";
import type { MetricName } from "../../metrics/metrics.js";
import { METRIC_NAMES } from "../../metrics/metrics.js";
import type { JsonService } from "./context.js";
import { checkMembers, page, type JsonInput } from "./json-protocol.js";

/**
 * The CloudWatch subset SageMaker scripts call (awsJson1_0 / Smithy RPC v2 CBOR, target prefix
 * GraniteServiceVersion20100801): metric alarms that drive step scaling policies (src/autoscale/alarms.ts),
 * and reads of the SageMaker metrics kikitori keeps (1-second samples, last hour) — namespace AWS/SageMaker,
 * dimension EndpointName.
 */

/** What CloudWatch reads of the metrics box (src/metrics implements it). */
export interface CloudWatchMetrics {
  endpoints(): string[];
  series(endpoint: string, name: MetricName, since: number): { t: number; value: number }[];
}

const UNITS: Partial<Record<MetricName, string>> = {
  ApproximateAgeOfOldestRequest: "Seconds",
  TimeInBacklog: "Milliseconds",
  TotalProcessingTime: "Milliseconds",
  ModelLatency: "Milliseconds",
  RequestDownloadLatency: "Milliseconds",
  ResponseUploadLatency: "Milliseconds",
};
const unitOf = (n: MetricName) => UNITS[n] ?? "Count";

/** A timestamp member: epoch seconds (JSON), a Date (CBOR, decoded), or an ISO 8601 string. */
function timestamp(input: JsonInput, field: string): number {
  const v = input[field];
  if (v instanceof Date) return v.getTime();
  if (typeof v === "number" && Number.isFinite(v)) return v * 1000;
  if (typeof v === "string" && !Number.isNaN(Date.parse(v))) return Date.parse(v);
  throw validation(field, "is required (a timestamp)");
}

const date = (epochS: number) => new Date(epochS * 1000);

function alarmView(a: MetricAlarm) {
  return {
    ...a,
    AlarmConfigurationUpdatedTimestamp: date(a.AlarmConfigurationUpdatedTimestamp),
    StateUpdatedTimestamp: date(a.StateUpdatedTimestamp),
    StateTransitionedTimestamp: date(a.StateTransitionedTimestamp),
  };
}

/** The endpoint a metric query names: only AWS/SageMaker metrics with an EndpointName dimension exist. */
function metricOf(
  what: string,
  namespace: unknown,
  name: unknown,
  dimensions: unknown,
): { endpoint: string; metric: MetricName } | undefined {
  if (namespace !== NAMESPACE || !isSageMakerMetric(name)) return undefined;
  const endpoint = checkDimensions(dimensions, `${what}Dimensions`).find(
    (d) => d.Name === "EndpointName",
  )?.Value;
  return endpoint ? { endpoint, metric: name } : undefined;
}

function checkPeriod(field: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1)
    throw validation(field, "must be a positive integer (seconds)");
  return v;
}

/** Aggregates samples into period buckets aligned on multiples of the period, oldest first. */
function buckets(
  samples: { t: number; value: number }[],
  startMs: number,
  endMs: number,
  periodS: number,
): { t: number; values: number[] }[] {
  const p = periodS * 1000;
  const byStart = new Map<number, number[]>();
  for (const s of samples) {
    if (s.t < startMs || s.t >= endMs) continue;
    const b = Math.floor(s.t / p) * p;
    let list = byStart.get(b);
    if (!list) byStart.set(b, (list = []));
    list.push(s.value);
  }
  return [...byStart.entries()].sort((a, b) => a[0] - b[0]).map(([t, values]) => ({ t, values }));
}

export function cloudwatchService(alarms: Alarms, metrics: CloudWatchMetrics): JsonService {
  return {
    protocol: "json",
    targetPrefix: "GraniteServiceVersion20100801",
    errorNames: {
      ValidationError: "InvalidParameterValueException",
      NotFound: "ResourceNotFound",
    },
    queryErrorCodes: {
      InvalidParameterValueException: "InvalidParameterValue",
      ResourceNotFound: "ResourceNotFound",
      InvalidNextToken: "InvalidNextToken",
    },
    ops: {
      PutMetricAlarm: async (input) => {
        // Tags are accepted and not kept for alarms (they never select anything here).
        await alarms.put({ ...input, Tags: undefined });
        return {};
      },
      DescribeAlarms: async (input) => {
        checkMembers("DescribeAlarms", "", input, [
          "AlarmNames",
          "AlarmNamePrefix",
          "AlarmTypes",
          "StateValue",
          "ActionPrefix",
          "MaxRecords",
          "NextToken",
        ]);
        const names = input.AlarmNames as string[] | undefined;
        const types = input.AlarmTypes as string[] | undefined;
        const prefix = input.AlarmNamePrefix as string | undefined;
        if (names?.length && prefix !== undefined)
          throw validation("AlarmNamePrefix", "cannot be combined with AlarmNames");
        const all = (await alarms.list(prefix)).filter(
          (a) =>
            (!names?.length || names.includes(a.AlarmName)) &&
            (input.StateValue === undefined || a.StateValue === input.StateValue) &&
            (input.ActionPrefix === undefined ||
              a.AlarmActions.some((x) => x.startsWith(String(input.ActionPrefix)))),
        );
        const metricAlarms = !types?.length || types.includes("MetricAlarm") ? all : [];
        const { items, nextToken } = page(metricAlarms, { ...input, MaxResults: input.MaxRecords }, 50);
        return {
          MetricAlarms: items.map(alarmView),
          CompositeAlarms: [],
          ...(nextToken ? { NextToken: nextToken } : {}),
        };
      },
      DeleteAlarms: async (input) => {
        checkMembers("DeleteAlarms", "", input, ["AlarmNames"]);
        const names = input.AlarmNames;
        if (!Array.isArray(names) || names.some((n) => typeof n !== "string"))
          throw validation("AlarmNames", "is required (a list of names)");
        await alarms.delete(names as string[]);
        return {};
      },
      ListMetrics: async (input) => {
        checkMembers(
          "ListMetrics",
          "",
          input,
          ["Namespace", "MetricName", "Dimensions", "NextToken"],
          ["RecentlyActive", "IncludeLinkedAccounts", "OwningAccount"],
        );
        const wanted = checkDimensions(input.Dimensions);
        const all = [];
        if (input.Namespace === undefined || input.Namespace === NAMESPACE)
          for (const endpoint of metrics.endpoints().sort())
            for (const name of METRIC_NAMES) {
              if (input.MetricName !== undefined && input.MetricName !== name) continue;
              const dims = [{ Name: "EndpointName", Value: endpoint }];
              if (
                wanted.some((w) => !dims.some((d) => d.Name === w.Name && (!w.Value || d.Value === w.Value)))
              )
                continue;
              all.push({ Namespace: NAMESPACE, MetricName: name, Dimensions: dims });
            }
        const { items, nextToken } = page(all, { NextToken: input.NextToken }, 500, 500);
        return { Metrics: items, ...(nextToken ? { NextToken: nextToken } : {}) };
      },
      GetMetricStatistics: async (input) => {
        checkMembers("GetMetricStatistics", "", input, [
          "Namespace",
          "MetricName",
          "Dimensions",
          "StartTime",
          "EndTime",
          "Period",
          "Statistics",
          "Unit",
        ]);
        if (input.ExtendedStatistics !== undefined)
          throw validation("ExtendedStatistics", "is not supported by kikitori");
        const stats = input.Statistics;
        if (!Array.isArray(stats) || stats.length === 0 || !stats.every(isStatistic))
          throw validation("Statistics", "is required: SampleCount, Average, Sum, Minimum or Maximum");
        const start = timestamp(input, "StartTime");
        const end = timestamp(input, "EndTime");
        if (end <= start) throw validation("EndTime", "must be after StartTime");
        const period = checkPeriod("Period", input.Period);
        const m = metricOf("", input.Namespace, input.MetricName, input.Dimensions);
        const datapoints = m
          ? buckets(metrics.series(m.endpoint, m.metric, start), start, end, period).map((b) => ({
              Timestamp: new Date(b.t),
              Unit: unitOf(m.metric),
              ...Object.fromEntries((stats as Statistic[]).map((s) => [s, statistic(b.values, s)])),
            }))
          : [];
        return { Label: String(input.MetricName ?? ""), Datapoints: datapoints };
      },
      GetMetricData: async (input) => {
        checkMembers(
          "GetMetricData",
          "",
          input,
          ["MetricDataQueries", "StartTime", "EndTime", "NextToken", "ScanBy", "MaxDatapoints"],
          ["LabelOptions"],
        );
        const start = timestamp(input, "StartTime");
        const end = timestamp(input, "EndTime");
        if (end <= start) throw validation("EndTime", "must be after StartTime");
        const queries = input.MetricDataQueries;
        if (!Array.isArray(queries) || queries.length === 0)
          throw validation("MetricDataQueries", "is required (a non-empty list)");
        const descending = (input.ScanBy ?? "TimestampDescending") === "TimestampDescending";
        const results = (queries as JsonInput[]).map((q, i) => {
          const f = `MetricDataQueries[${i}]`;
          if (q.Expression !== undefined)
            throw validation(`${f}.Expression`, "metric math is not supported by kikitori");
          const stat = q.MetricStat as JsonInput | undefined;
          if (!stat) throw validation(`${f}.MetricStat`, "is required");
          const metric = (stat.Metric ?? {}) as JsonInput;
          if (!isStatistic(stat.Stat))
            throw validation(`${f}.MetricStat.Stat`, "must be SampleCount, Average, Sum, Minimum or Maximum");
          const period = checkPeriod(`${f}.MetricStat.Period`, stat.Period);
          const m = metricOf(
            `${f}.MetricStat.Metric.`,
            metric.Namespace,
            metric.MetricName,
            metric.Dimensions,
          );
          const points = m
            ? buckets(metrics.series(m.endpoint, m.metric, start), start, end, period).map((b) => ({
                t: new Date(b.t),
                v: statistic(b.values, stat.Stat as Statistic)!,
              }))
            : [];
          if (descending) points.reverse();
          return {
            Id: String(q.Id ?? ""),
            Label: String(q.Label ?? metric.MetricName ?? ""),
            Timestamps: points.map((p) => p.t),
            Values: points.map((p) => p.v),
            StatusCode: "Complete",
          };
        });
        return {
          MetricDataResults: results.filter((_r, i) => (queries as JsonInput[])[i]!.ReturnData !== false),
          Messages: [],
        };
      },
    },
  };
}
