import { useEffect, useState } from "preact/hooks";
import { api, ApiError, useEventStream } from "../api.js";
import { baseName, duration, time } from "../format.js";
import { href } from "../router.js";
import { INVOCATION_STATES, isTerminal, type Invocation } from "../types.js";

/** A clock that ticks every `ms` (waiting times and ETAs move between server events). */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}

/**
 * Milliseconds until the invocation should finish: the server's estimate when it gives one, else the
 * rate of progress so far (audio seconds per wall second since it started).
 */
export function remainingMs(inv: Invocation, now: number): number | undefined {
  if (isTerminal(inv.state)) return undefined;
  if (inv.eta) return Math.max(0, Date.parse(inv.eta) - now);
  const p = inv.progress;
  if (inv.state !== "Running" || !p || p.processedSeconds <= 0 || !inv.timing.startedAt) return undefined;
  const elapsed = now - Date.parse(inv.timing.startedAt);
  return Math.max(0, ((p.totalSeconds - p.processedSeconds) * elapsed) / p.processedSeconds);
}

export function StateBadge({ state }: { state: string }) {
  return <span class={`badge s-${state}`}>{state}</span>;
}

export function ProgressBar({ inv }: { inv: Invocation }) {
  const pct = inv.state === "Succeeded" ? 100 : (inv.progress?.percent ?? 0);
  if (inv.state === "Queued" || (!inv.progress && inv.state !== "Succeeded"))
    return <span class="muted">–</span>;
  return (
    <span class="progress">
      <progress max={100} value={pct} aria-label={`${Math.round(pct)} percent`} />
      <span>{Math.round(pct)}%</span>
    </span>
  );
}

export async function cancelInvocation(id: string): Promise<string | undefined> {
  try {
    await api("POST", `/v1/invocations/${encodeURIComponent(id)}/cancel`);
    return undefined;
  } catch (e) {
    return e instanceof ApiError ? e.message : String(e);
  }
}

/** The live list: one event stream for the filter (no polling); cancel from the row. */
export function Invocations({ query }: { query: URLSearchParams }) {
  const endpoint = query.get("endpoint") ?? "";
  const state = query.get("state") ?? "";
  const [list, setList] = useState<Invocation[]>();
  const [endpoints, setEndpoints] = useState<string[]>([]);
  const [live, setLive] = useState(false);
  const [error, setError] = useState<string>();
  const now = useNow();
  useEffect(() => {
    api<{ endpoints: { name: string }[] }>("GET", "/v1/endpoints").then(
      (r) => setEndpoints(r.endpoints.map((e) => e.name)),
      () => {},
    );
  }, []);
  const params = new URLSearchParams({ limit: "100" });
  if (endpoint) params.set("endpoint", endpoint);
  if (state) params.set("state", state);
  useEventStream(
    `/v1/invocations?${params}`,
    {
      snapshot: (d: { invocations: Invocation[] }) => setList(d.invocations),
      invocation: (inv: Invocation) =>
        setList((old = []) =>
          [inv, ...old.filter((x) => x.inferenceId !== inv.inferenceId)].sort((a, b) =>
            b.timing.createdAt.localeCompare(a.timing.createdAt),
          ),
        ),
      removed: (d: { inferenceId: string }) =>
        setList((old = []) => old.filter((x) => x.inferenceId !== d.inferenceId)),
    },
    setLive,
  );
  const go = (q: Record<string, string>) => (location.hash = href("/invocations", { endpoint, state, ...q }));
  const cancel = async (id: string) => setError(await cancelInvocation(id));

  return (
    <section class="card" aria-labelledby="inv-title">
      <h1 id="inv-title">
        Invocations{" "}
        <span class={`live ${live ? "on" : ""}`} title={live ? "live" : "reconnecting"}>
          {live ? "live" : "…"}
        </span>
      </h1>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Endpoint{" "}
          <select value={endpoint} onChange={(e) => go({ endpoint: e.currentTarget.value })}>
            <option value="">all</option>
            {endpoints.map((n) => (
              <option value={n}>{n}</option>
            ))}
          </select>
        </label>
        <label>
          State{" "}
          <select value={state} onChange={(e) => go({ state: e.currentTarget.value })}>
            <option value="">all</option>
            {INVOCATION_STATES.map((s) => (
              <option value={s}>{s}</option>
            ))}
          </select>
        </label>
      </form>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {list?.length === 0 && <p class="muted">No invocations{state || endpoint ? " match" : " yet"}.</p>}
      {list && list.length > 0 && (
        <table class="list" data-testid="invocations">
          <thead>
            <tr>
              <th>Invocation</th>
              <th>Endpoint</th>
              <th>State</th>
              <th>Queue</th>
              <th>Progress</th>
              <th>ETA</th>
              <th>Attempts</th>
              <th>Created</th>
              <th>Waited</th>
              <th>Total</th>
              <th>
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {list.map((inv) => {
              const left = remainingMs(inv, now);
              const waited = inv.timing.startedAt
                ? Date.parse(inv.timing.startedAt) - Date.parse(inv.timing.createdAt)
                : isTerminal(inv.state)
                  ? inv.timing.queuedMs
                  : now - Date.parse(inv.timing.createdAt);
              return (
                <tr data-id={inv.inferenceId} data-state={inv.state}>
                  <td data-label="Invocation">
                    <a
                      href={href(`/invocations/${encodeURIComponent(inv.inferenceId)}`)}
                      title={inv.inferenceId}
                    >
                      {baseName(inv.inputLocation)}
                    </a>
                    <div class="muted small">
                      <code>{inv.inferenceId.slice(0, 8)}</code>
                    </div>
                  </td>
                  <td data-label="Endpoint">{inv.endpoint}</td>
                  <td data-label="State">
                    <StateBadge state={inv.state} />
                    {inv.error && inv.error.code !== inv.state && (
                      <div class="small error-text" title={inv.error.message}>
                        {inv.error.code}
                      </div>
                    )}
                  </td>
                  <td data-label="Queue">{inv.queuePosition ?? "–"}</td>
                  <td data-label="Progress">
                    <ProgressBar inv={inv} />
                  </td>
                  <td data-label="ETA">{left === undefined ? "–" : `~${duration(left)}`}</td>
                  <td data-label="Attempts">
                    {inv.attempts}/{inv.maxAttempts}
                  </td>
                  <td data-label="Created">{time(inv.timing.createdAt)}</td>
                  <td data-label="Waited">{duration(waited)}</td>
                  <td data-label="Total">{duration(inv.timing.totalMs)}</td>
                  <td>
                    {!isTerminal(inv.state) && (
                      <button type="button" class="small" onClick={() => cancel(inv.inferenceId)}>
                        Cancel<span class="sr-only"> {baseName(inv.inputLocation)}</span>
                      </button>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}
