import { useEffect, useMemo, useState } from "preact/hooks";
import { api, useEventStream } from "../api.js";
import { Chart, type Line } from "../components/chart.js";
import { dateTime, duration, time } from "../format.js";
import { href } from "../router.js";
import type { EndpointDetail, Sample, ScalingActivity, ScalingPolicy } from "../types.js";

/** How much metric history the charts keep (the server keeps an hour). */
const WINDOW_S = 15 * 60;

const INSTANCE_LINES: Line[] = [
  { label: "desired", color: "#8a63d2", stepped: true },
  { label: "pending", color: "#d29922", stepped: true },
  { label: "in service", color: "#2da44e", stepped: true },
];
const BACKLOG_LINES: Line[] = [
  { label: "ApproximateBacklogSize", color: "#0969da" },
  { label: "ApproximateBacklogSizePerInstance", color: "#cf222e" },
];

export function Endpoints({ selected }: { selected?: string }) {
  const [endpoints, setEndpoints] = useState<{ name: string; status: string }[]>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    api<{ endpoints: { name: string; status: string }[] }>("GET", "/v1/endpoints").then(
      (r) => setEndpoints(r.endpoints),
      (e: Error) => setError(e.message),
    );
  }, [selected]);
  const name = selected ?? endpoints?.[0]?.name;
  return (
    <div class="split">
      <nav class="side card" aria-label="Endpoints">
        <h2>Endpoints</h2>
        {error && <p class="error">{error}</p>}
        {endpoints?.length === 0 && (
          <p class="muted">
            No endpoints yet. <a href="#/transcribe">Transcribe</a> creates the default one.
          </p>
        )}
        <ul class="plain">
          {endpoints?.map((e) => (
            <li>
              <a
                href={href(`/endpoints/${encodeURIComponent(e.name)}`)}
                aria-current={e.name === name ? "page" : undefined}
              >
                {e.name}
              </a>{" "}
              <span class={`badge s-${e.status}`}>{e.status}</span>
            </li>
          ))}
        </ul>
      </nav>
      {name && <EndpointView key={name} name={name} />}
    </div>
  );
}

function EndpointView({ name }: { name: string }) {
  const [detail, setDetail] = useState<EndpointDetail>();
  const [samples, setSamples] = useState<Sample[]>([]);
  const [activities, setActivities] = useState<ScalingActivity[]>([]);
  const [deleted, setDeleted] = useState(false);
  const [live, setLive] = useState(false);
  useEventStream(
    `/v1/endpoints/${encodeURIComponent(name)}/events?historySeconds=${WINDOW_S}`,
    {
      endpoint: setDetail,
      samples: (s: Sample[]) =>
        setSamples((old) => {
          const all = old.concat(s);
          const from = Date.now() - WINDOW_S * 1000;
          return all.filter((x) => x.time >= from);
        }),
      activity: (a: ScalingActivity) =>
        setActivities((old) => [a, ...old.filter((x) => x.ActivityId !== a.ActivityId)].slice(0, 50)),
      deleted: () => setDeleted(true),
    },
    setLive,
  );
  const series = useMemo(() => {
    const t = samples.map((s) => s.time / 1000);
    const v = (n: string) => samples.map((s) => s.values[n] ?? null);
    const live = v("InstanceCount");
    const inService = v("InServiceInstanceCount");
    return {
      t,
      instances: [
        v("DesiredInstanceCount"),
        live.map((x, i) => (x === null ? null : x - (inService[i] ?? 0))),
        inService,
      ],
      backlog: [v("ApproximateBacklogSize"), v("ApproximateBacklogSizePerInstance")],
    };
  }, [samples]);

  if (deleted) return <section class="card">Endpoint {name} was deleted.</section>;
  if (!detail) return <section class="card muted">Loading {name}…</section>;
  const latest = samples.at(-1)?.values ?? {};
  const pending = detail.instances.filter((i) => i.state === "Pending").length;
  const inService = detail.instances.filter((i) => i.state === "InService").length;
  return (
    <section class="detail" aria-labelledby="endpoint-title">
      <header class="card">
        <h1 id="endpoint-title">
          {detail.name} <span class={`badge s-${detail.status}`}>{detail.status}</span>{" "}
          <span class={`live ${live ? "on" : ""}`} title={live ? "live" : "reconnecting"}>
            {live ? "live" : "…"}
          </span>
        </h1>
        {detail.failureReason && <p class="error">{detail.failureReason}</p>}
        <dl class="facts">
          <div>
            <dt>Model</dt>
            <dd>
              {detail.models.map((m) => (
                <span>
                  {m.name} <code>{m.image}</code>
                  {m.modelDataUrl && <code>{m.modelDataUrl}</code>}
                  {m.environment.KIKITORI_MODEL && <code>{m.environment.KIKITORI_MODEL}</code>}
                </span>
              ))}
            </dd>
          </div>
          <div>
            <dt>Desired</dt>
            <dd data-testid="count-desired">{latest.DesiredInstanceCount ?? "–"}</dd>
          </div>
          <div>
            <dt>Pending</dt>
            <dd data-testid="count-pending">{pending}</dd>
          </div>
          <div>
            <dt>In service</dt>
            <dd data-testid="count-inservice">{inService}</dd>
          </div>
          <div>
            <dt>Backlog</dt>
            <dd data-testid="backlog">
              {detail.backlog.queued} queued · {detail.backlog.running} running
            </dd>
          </div>
          <div>
            <dt>Created</dt>
            <dd>{dateTime(detail.createdAt)}</dd>
          </div>
        </dl>
        <p>
          <a href={href("/invocations", { endpoint: name })}>Invocations of {name}</a>
        </p>
      </header>
      <div class="charts">
        <div class="card">
          <Chart
            title="Instances (desired / pending / in service)"
            times={series.t}
            lines={INSTANCE_LINES}
            values={series.instances}
          />
        </div>
        <div class="card">
          <Chart title="Backlog" times={series.t} lines={BACKLOG_LINES} values={series.backlog} />
        </div>
      </div>
      <div class="card">
        <h2>Scaling</h2>
        {detail.scaling.map((s) => (
          <div>
            <h3>
              Variant {s.variant}:{" "}
              {s.target
                ? `${s.target.MinCapacity} to ${s.target.MaxCapacity} instances`
                : `no scalable target (keeps ${detail.config?.variants.find((v) => v.variantName === s.variant)?.initialInstanceCount ?? "its"} instances)`}
            </h3>
            {s.policies.length > 0 && (
              <div class="scroll">
                <table>
                  <thead>
                    <tr>
                      <th>Policy</th>
                      <th>Type</th>
                      <th>Rule</th>
                    </tr>
                  </thead>
                  <tbody>
                    {s.policies.map((p) => (
                      <tr>
                        <td>{p.PolicyName}</td>
                        <td>{p.PolicyType}</td>
                        <td>{policyRule(p)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </div>
        ))}
        <h3>Scaling activities</h3>
        {activities.length === 0 ? (
          <p class="muted">None yet.</p>
        ) : (
          <div class="scroll">
            <table data-testid="activities">
              <thead>
                <tr>
                  <th>Started</th>
                  <th>Change</th>
                  <th>Status</th>
                  <th>Cause</th>
                </tr>
              </thead>
              <tbody>
                {activities.map((a) => (
                  <tr>
                    <td>{time(a.StartTime)}</td>
                    <td class="nowrap">
                      {a.FromCapacity} → {a.ToCapacity}
                    </td>
                    <td>{a.StatusCode}</td>
                    <td>{a.Cause}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </div>
      <div class="card">
        <h2>Instances</h2>
        {detail.instances.length === 0 ? (
          <p class="muted">No instance is running.</p>
        ) : (
          <div class="scroll">
            <table>
              <thead>
                <tr>
                  <th>Instance</th>
                  <th>Variant</th>
                  <th>State</th>
                  <th>Started</th>
                  <th>Start-up</th>
                </tr>
              </thead>
              <tbody>
                {detail.instances.map((i) => (
                  <tr>
                    <td>
                      <code>{i.id.slice(0, 8)}</code>
                    </td>
                    <td>{i.variant}</td>
                    <td>
                      <span class={`badge s-${i.state}`}>{i.state}</span>
                    </td>
                    <td>{time(i.startedAt)}</td>
                    <td>{i.inServiceAt ? duration(i.inServiceAt - i.startedAt) : "–"}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </div>
    </section>
  );
}

function policyRule(p: ScalingPolicy): string {
  const t = p.TargetTrackingScalingPolicyConfiguration;
  if (t) {
    const metric =
      t.CustomizedMetricSpecification?.MetricName ??
      t.PredefinedMetricSpecification?.PredefinedMetricType ??
      "?";
    return `${metric} at ${t.TargetValue}; cooldown out ${t.ScaleOutCooldown ?? 300} s, in ${t.ScaleInCooldown ?? 300} s`;
  }
  const s = p.StepScalingPolicyConfiguration;
  const alarm = s?.KikitoriAlarm
    ? `${s.KikitoriAlarm.MetricName} ${s.KikitoriAlarm.ComparisonOperator} ${s.KikitoriAlarm.Threshold}`
    : "HasBacklogWithoutCapacity > 0";
  const steps = (s?.StepAdjustments ?? [])
    .map((a) => `${a.ScalingAdjustment >= 0 ? "+" : ""}${a.ScalingAdjustment}`)
    .join(", ");
  return `when ${alarm}: ${steps} (${s?.AdjustmentType ?? "ChangeInCapacity"})`;
}
