import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { InvocationTiming, Service } from "../core/service.js";
import type { Invocation } from "../core/types.js";
import { coerceError } from "../errors.js";

/**
 * SageMaker's asynchronous-inference metrics (namespace AWS/SageMaker, dimension EndpointName; instance
 * counts also by VariantName), with SageMaker's meanings:
 *
 * | name                              | meaning                                                             |
 * | --------------------------------- | ------------------------------------------------------------------- |
 * | ApproximateBacklogSize            | requests queued or being processed                                  |
 * | ApproximateBacklogSizePerInstance | the backlog divided by the live instances (the backlog at none)      |
 * | ApproximateAgeOfOldestRequest     | seconds the oldest queued request has waited                        |
 * | HasBacklogWithoutCapacity         | 1 when there is a backlog and no instance running, starting or asked for |
 * | InvocationsProcessed              | requests that succeeded (per 1-s sample; a counter on /metrics)     |
 * | InvocationFailures                | requests that failed                                                |
 * | ExpiredRequests                   | requests that outlived their RequestTTLSeconds in the queue         |
 * | TimeInBacklog                     | ms from submission to the (last) start of processing                |
 * | TotalProcessingTime               | ms from submission to the end of processing                         |
 * | ModelLatency                      | ms the model server took, from the end of the input to the response |
 * | RequestDownloadLatency            | ms reading the input from the object store                          |
 * | ResponseUploadLatency             | ms storing the response                                             |
 * | InstanceCount, InServiceInstanceCount, DesiredInstanceCount | per variant                   |
 *
 * The native time series hold one sample per endpoint per second (counts in that second, average
 * latencies in that second, gauges at that moment) for the last `historySeconds`. On /metrics (Prometheus
 * text) the names are snake_case with a `kikitori_` prefix, latencies are histograms in seconds.
 */
export const METRIC_NAMES = [
  "ApproximateBacklogSize",
  "ApproximateBacklogSizePerInstance",
  "ApproximateAgeOfOldestRequest",
  "HasBacklogWithoutCapacity",
  "InvocationsProcessed",
  "InvocationFailures",
  "ExpiredRequests",
  "TimeInBacklog",
  "TotalProcessingTime",
  "ModelLatency",
  "RequestDownloadLatency",
  "ResponseUploadLatency",
  "InstanceCount",
  "InServiceInstanceCount",
  "DesiredInstanceCount",
] as const;
export type MetricName = (typeof METRIC_NAMES)[number];

type GaugeName =
  | "ApproximateBacklogSize"
  | "ApproximateBacklogSizePerInstance"
  | "ApproximateAgeOfOldestRequest"
  | "HasBacklogWithoutCapacity";
type CountName = "InvocationsProcessed" | "InvocationFailures" | "ExpiredRequests";
type LatencyName =
  | "TimeInBacklog"
  | "TotalProcessingTime"
  | "ModelLatency"
  | "RequestDownloadLatency"
  | "ResponseUploadLatency";

export interface Sample {
  /** Epoch ms. */
  t: number;
  values: Partial<Record<MetricName, number>>;
}

export interface MetricsOptions {
  /** @defaultValue 1000 */
  sampleIntervalMs: number;
  /** @defaultValue 3600 */
  historySeconds: number;
  log: (msg: string) => void;
}

const snake = (n: string) => n.replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
const LATENCY_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800];

interface Pending {
  counts: Partial<Record<CountName, number>>;
  latencies: Partial<Record<LatencyName, { sum: number; n: number }>>;
}

export class Metrics {
  readonly registry = new Registry();
  private readonly o: MetricsOptions;
  private readonly history = new Map<string, Sample[]>();
  private readonly pending = new Map<string, Pending>();
  private readonly gauges: Record<GaugeName, Gauge<"endpoint">>;
  private readonly instanceGauges: Record<
    "InstanceCount" | "InServiceInstanceCount" | "DesiredInstanceCount",
    Gauge<"endpoint" | "variant">
  >;
  private readonly counters: Record<CountName, Counter<"endpoint">>;
  private readonly histograms: Record<LatencyName, Histogram<"endpoint">>;
  private timer?: NodeJS.Timeout;
  private readonly onFinished = (inv: Invocation) => this.finished(inv);
  private readonly onTiming = (t: InvocationTiming) => this.timing(t);

  constructor(
    private readonly service: Service,
    options: Partial<MetricsOptions> = {},
  ) {
    this.o = { sampleIntervalMs: 1000, historySeconds: 3600, log: () => {}, ...options };
    const reg = [this.registry];
    const gauge = (name: string, help: string) =>
      new Gauge({
        name: `kikitori_${snake(name)}`,
        help: `${help} (SageMaker: ${name})`,
        labelNames: ["endpoint"],
        registers: reg,
      });
    this.gauges = {
      ApproximateBacklogSize: gauge("ApproximateBacklogSize", "Requests queued or being processed"),
      ApproximateBacklogSizePerInstance: gauge(
        "ApproximateBacklogSizePerInstance",
        "Backlog per live instance",
      ),
      ApproximateAgeOfOldestRequest: gauge(
        "ApproximateAgeOfOldestRequest",
        "Seconds the oldest queued request has waited",
      ),
      HasBacklogWithoutCapacity: gauge(
        "HasBacklogWithoutCapacity",
        "1 when requests wait and no instance runs, starts or is asked for",
      ),
    };
    const ig = (name: string, help: string) =>
      new Gauge({
        name: `kikitori_${snake(name)}`,
        help,
        labelNames: ["endpoint", "variant"],
        registers: reg,
      });
    this.instanceGauges = {
      InstanceCount: ig("InstanceCount", "Live instances (Pending or InService) of a variant"),
      InServiceInstanceCount: ig("InServiceInstanceCount", "InService instances of a variant"),
      DesiredInstanceCount: ig(
        "DesiredInstanceCount",
        "Desired instances of a variant (set by the autoscaler)",
      ),
    };
    const counter = (name: string, help: string) =>
      new Counter({
        name: `kikitori_${snake(name)}_total`,
        help: `${help} (SageMaker: ${name})`,
        labelNames: ["endpoint"],
        registers: reg,
      });
    this.counters = {
      InvocationsProcessed: counter("InvocationsProcessed", "Requests processed successfully"),
      InvocationFailures: counter("InvocationFailures", "Requests that failed"),
      ExpiredRequests: counter("ExpiredRequests", "Requests that expired in the queue"),
    };
    const histogram = (name: string, help: string) =>
      new Histogram({
        name: `kikitori_${snake(name)}_seconds`,
        help: `${help} (SageMaker: ${name})`,
        labelNames: ["endpoint"],
        buckets: LATENCY_BUCKETS_S,
        registers: reg,
      });
    this.histograms = {
      TimeInBacklog: histogram("TimeInBacklog", "Time from submission to the start of processing"),
      TotalProcessingTime: histogram("TotalProcessingTime", "Time from submission to the end of processing"),
      ModelLatency: histogram("ModelLatency", "Time the model server took to respond"),
      RequestDownloadLatency: histogram("RequestDownloadLatency", "Time reading the input"),
      ResponseUploadLatency: histogram("ResponseUploadLatency", "Time storing the response"),
    };
  }

  start(): void {
    this.service.on("invocation:finished", this.onFinished);
    this.service.on("invocation:timing", this.onTiming);
    this.timer = setInterval(
      () =>
        void this.sampleAll().catch((e: unknown) =>
          this.o.log(`metrics: sampling failed: ${coerceError(e).message}`),
        ),
      this.o.sampleIntervalMs,
    );
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.service.off("invocation:finished", this.onFinished);
    this.service.off("invocation:timing", this.onTiming);
  }

  private pend(endpoint: string): Pending {
    let p = this.pending.get(endpoint);
    if (!p) this.pending.set(endpoint, (p = { counts: {}, latencies: {} }));
    return p;
  }

  private count(endpoint: string, name: CountName): void {
    this.counters[name].inc({ endpoint });
    const p = this.pend(endpoint);
    p.counts[name] = (p.counts[name] ?? 0) + 1;
  }

  private latency(endpoint: string, name: LatencyName, ms: number): void {
    if (!(ms >= 0)) return;
    this.histograms[name].observe({ endpoint }, ms / 1000);
    const l = (this.pend(endpoint).latencies[name] ??= { sum: 0, n: 0 });
    l.sum += ms;
    l.n++;
  }

  private finished(inv: Invocation): void {
    const ep = inv.endpoint;
    if (inv.state === "Succeeded") this.count(ep, "InvocationsProcessed");
    else if (inv.state === "Failed") this.count(ep, "InvocationFailures");
    else if (inv.state === "Expired") this.count(ep, "ExpiredRequests");
    if (inv.startedAt !== undefined) this.latency(ep, "TimeInBacklog", inv.startedAt - inv.createdAt);
    if (inv.finishedAt !== undefined && inv.state !== "Expired")
      this.latency(ep, "TotalProcessingTime", inv.finishedAt - inv.createdAt);
  }

  private timing(t: InvocationTiming): void {
    const ep = t.invocation.endpoint;
    this.latency(ep, "RequestDownloadLatency", t.downloadMs);
    this.latency(ep, "ModelLatency", t.modelMs);
    this.latency(ep, "ResponseUploadLatency", t.uploadMs);
  }

  /** The endpoint's scaling metrics now, for the whole cluster (read from the store). */
  async snapshot(endpoint: string): Promise<Record<GaugeName, number>> {
    const b = await this.service.backlog(endpoint);
    const backlog = b.queued + b.running;
    let live = 0;
    let desired = 0;
    for (const c of (await this.service.variantCounts(endpoint)).values()) {
      live += c.current;
      desired += c.desired;
    }
    return {
      ApproximateBacklogSize: backlog,
      ApproximateBacklogSizePerInstance: live > 0 ? backlog / live : backlog,
      ApproximateAgeOfOldestRequest:
        b.oldestQueuedAt !== undefined ? Math.max(0, (Date.now() - b.oldestQueuedAt) / 1000) : 0,
      HasBacklogWithoutCapacity: backlog > 0 && Math.max(live, desired) === 0 ? 1 : 0,
    };
  }

  /** Takes one sample of every endpoint: updates the gauges and (when `record`) appends to the time series. */
  async sampleAll(now = Date.now(), record = true): Promise<void> {
    const names = new Set((await this.service.listEndpoints()).map((e) => e.name));
    for (const endpoint of names) {
      const values: Sample["values"] = await this.snapshot(endpoint);
      for (const [k, v] of Object.entries(values)) this.gauges[k as GaugeName].set({ endpoint }, v);
      let total = { InstanceCount: 0, InServiceInstanceCount: 0, DesiredInstanceCount: 0 };
      for (const [variant, c] of await this.service.variantCounts(endpoint)) {
        this.instanceGauges.InstanceCount.set({ endpoint, variant }, c.current);
        this.instanceGauges.InServiceInstanceCount.set({ endpoint, variant }, c.inService);
        this.instanceGauges.DesiredInstanceCount.set({ endpoint, variant }, c.desired);
        total = {
          InstanceCount: total.InstanceCount + c.current,
          InServiceInstanceCount: total.InServiceInstanceCount + c.inService,
          DesiredInstanceCount: total.DesiredInstanceCount + c.desired,
        };
      }
      if (!record) continue;
      Object.assign(values, total);
      const p = this.pending.get(endpoint);
      this.pending.delete(endpoint);
      for (const n of ["InvocationsProcessed", "InvocationFailures", "ExpiredRequests"] as const)
        values[n] = p?.counts[n] ?? 0;
      for (const [n, l] of Object.entries(p?.latencies ?? {})) values[n as LatencyName] = l.sum / l.n;
      let h = this.history.get(endpoint);
      if (!h) this.history.set(endpoint, (h = []));
      h.push({ t: now, values });
      const keep = Math.ceil((this.o.historySeconds * 1000) / this.o.sampleIntervalMs);
      if (h.length > keep) h.splice(0, h.length - keep);
    }
    if (record)
      for (const endpoint of this.history.keys()) if (!names.has(endpoint)) this.history.delete(endpoint);
  }

  /** The largest sampled value of a metric over the last `windowMs` (0 without samples). */
  maxOver(endpoint: string, name: MetricName, windowMs: number, now = Date.now()): number {
    let max = 0;
    const h = this.history.get(endpoint) ?? [];
    for (let i = h.length - 1; i >= 0 && h[i]!.t >= now - windowMs; i--)
      max = Math.max(max, h[i]!.values[name] ?? 0);
    return max;
  }

  /** The endpoint's samples of every metric since `since` (epoch ms), oldest first. */
  samples(endpoint: string, since = 0): Sample[] {
    return (this.history.get(endpoint) ?? []).filter((s) => s.t >= since);
  }

  /** The endpoints that have samples. */
  endpoints(): string[] {
    return [...this.history.keys()];
  }

  /** The endpoint's samples of one metric since `since` (epoch ms), oldest first. */
  series(endpoint: string, name: MetricName, since = 0): { t: number; value: number }[] {
    const out: { t: number; value: number }[] = [];
    for (const s of this.history.get(endpoint) ?? []) {
      const v = s.values[name];
      if (s.t >= since && v !== undefined) out.push({ t: s.t, value: v });
    }
    return out;
  }

  /** The Prometheus text exposition, sampled fresh. */
  async prometheus(): Promise<{ contentType: string; body: string }> {
    await this.sampleAll(Date.now(), false);
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
