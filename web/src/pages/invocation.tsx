import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { api, ApiError, fetchText, objectPath, useEventStream } from "../api.js";
import { baseName, clock, dateTime, duration } from "../format.js";
import { href } from "../router.js";
import { isTerminal, type Invocation, type Segment, type Transcript } from "../types.js";
import { cancelInvocation, ProgressBar, remainingMs, StateBadge, useNow } from "./invocations.js";

const DOWNLOADS = [
  { format: "text", ext: "txt" },
  { format: "srt", ext: "srt" },
  { format: "vtt", ext: "vtt" },
  { format: "json", ext: "json" },
];

/** One invocation: its state live (its event stream), its failure document, or its transcript. */
export function InvocationPage({ id }: { id: string }) {
  const [inv, setInv] = useState<Invocation>();
  const [error, setError] = useState<string>();
  const [result, setResult] = useState<{ status: number; type: string; text: string }>();
  const now = useNow();
  const path = `/v1/invocations/${encodeURIComponent(id)}`;
  const reload = useCallback(
    () =>
      api<Invocation>("GET", path).then(setInv, (e: Error) =>
        setError(e instanceof ApiError && e.status === 404 ? `No invocation ${id}.` : e.message),
      ),
    [path],
  );
  useEffect(() => {
    void reload();
  }, [reload]);
  const terminal = inv ? isTerminal(inv.state) : false;
  // Each event (queued position, started, progress, completed) is a reason to read the invocation again.
  useEventStream(inv && !terminal ? `${path}/events` : undefined, {
    queued: reload,
    started: reload,
    progress: reload,
    completed: reload,
  });
  useEffect(() => {
    if (terminal) void fetchText(`${path}/result`).then(setResult);
  }, [terminal, path]);

  if (error) return <section class="card error">{error}</section>;
  if (!inv) return <section class="card muted">Loading…</section>;
  const left = remainingMs(inv, now);
  return (
    <section class="detail" aria-labelledby="inv-title">
      <header class="card">
        <p class="small">
          <a href={href("/invocations", { endpoint: inv.endpoint })}>← Invocations of {inv.endpoint}</a>
        </p>
        <h1 id="inv-title">
          {baseName(inv.inputLocation)} <StateBadge state={inv.state} />
        </h1>
        <dl class="facts">
          <div>
            <dt>Inference id</dt>
            <dd>
              <code>{inv.inferenceId}</code>
            </dd>
          </div>
          <div>
            <dt>Endpoint</dt>
            <dd>{inv.endpoint}</dd>
          </div>
          {inv.state === "Queued" && (
            <div>
              <dt>Queue position</dt>
              <dd data-testid="queue-position">{inv.queuePosition ?? "–"}</dd>
            </div>
          )}
          <div>
            <dt>Progress</dt>
            <dd>
              <ProgressBar inv={inv} />
              {inv.progress && (
                <span class="small muted">
                  {" "}
                  {clock(inv.progress.processedSeconds)} / {clock(inv.progress.totalSeconds)}
                </span>
              )}
            </dd>
          </div>
          <div>
            <dt>ETA</dt>
            <dd>{left === undefined ? "–" : `~${duration(left)}`}</dd>
          </div>
          <div>
            <dt>Attempts</dt>
            <dd>
              {inv.attempts}/{inv.maxAttempts}
            </dd>
          </div>
          <div>
            <dt>Created</dt>
            <dd>{dateTime(inv.timing.createdAt)}</dd>
          </div>
          <div>
            <dt>Waited</dt>
            <dd>{duration(inv.timing.queuedMs)}</dd>
          </div>
          <div>
            <dt>Model time</dt>
            <dd>{duration(inv.timing.modelMs)}</dd>
          </div>
          <div>
            <dt>Total</dt>
            <dd>{duration(inv.timing.totalMs)}</dd>
          </div>
          {inv.customAttributes && (
            <div>
              <dt>Options</dt>
              <dd>
                <code>{inv.customAttributes}</code>
              </dd>
            </div>
          )}
        </dl>
        {!terminal && (
          <button type="button" onClick={async () => setError(await cancelInvocation(inv.inferenceId))}>
            Cancel
          </button>
        )}
      </header>
      {terminal && inv.state !== "Succeeded" && (
        <div class="card">
          <h2>Failure document</h2>
          <p class="error">{inv.error ? `${inv.error.code}: ${inv.error.message}` : inv.state}</p>
          {result && <pre data-testid="failure-document">{pretty(result.text)}</pre>}
        </div>
      )}
      {inv.state === "Succeeded" && result && <Result inv={inv} result={result} />}
    </section>
  );
}

function pretty(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

function transcriptOf(text: string): Transcript | undefined {
  try {
    const t = JSON.parse(text);
    return typeof t?.text === "string" && Array.isArray(t.segments) ? t : undefined;
  } catch {
    return undefined;
  }
}

function Result({ inv, result }: { inv: Invocation; result: { type: string; text: string } }) {
  const transcript = transcriptOf(result.text);
  const base = baseName(inv.inputLocation).replace(/\.[^.]*$/, "");
  const resultPath = `/v1/invocations/${encodeURIComponent(inv.inferenceId)}/result`;
  return (
    <div class="card">
      <h2>Transcript</h2>
      <p class="downloads">
        Download:{" "}
        {transcript ? (
          DOWNLOADS.map((d) => (
            <a href={`${resultPath}?format=${d.format}`} download={`${base}.${d.ext}`}>
              {d.ext}
            </a>
          ))
        ) : (
          <a href={resultPath} download={`${base}.out`}>
            result
          </a>
        )}
      </p>
      {transcript ? (
        <TranscriptViewer audio={objectPath(inv.inputLocation)} transcript={transcript} />
      ) : (
        <pre data-testid="transcript-text">{result.text}</pre>
      )}
    </div>
  );
}

/** The index of the segment playing at `t` (the last that started), or -1 before the first. */
function segmentAt(segments: Segment[], t: number): number {
  let lo = 0;
  let hi = segments.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (segments[mid]!.start <= t) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found >= 0 && t <= segments[found]!.end + 0.5 ? found : -1;
}

/** Audio player with the segments beside it: the playing one highlighted, a click seeks to one. */
export function TranscriptViewer({ audio, transcript }: { audio: string; transcript: Transcript }) {
  const player = useRef<HTMLAudioElement>(null);
  const [t, setT] = useState(0);
  const current = segmentAt(transcript.segments, t);
  const list = useRef<HTMLOListElement>(null);
  useEffect(() => {
    list.current?.querySelector('[aria-current="true"]')?.scrollIntoView({ block: "nearest" });
  }, [current]);
  const seek = (s: Segment) => {
    const a = player.current!;
    a.currentTime = s.start;
    setT(s.start);
    void a.play().catch(() => {});
  };
  return (
    <div class="viewer">
      <div class="player">
        <audio
          ref={player}
          controls
          preload="metadata"
          src={audio}
          onTimeUpdate={(e) => setT(e.currentTarget.currentTime)}
          onSeeked={(e) => setT(e.currentTarget.currentTime)}
        />
        <p class="small muted">
          {transcript.language && `Language: ${transcript.language} · `}
          {transcript.duration ? `${clock(transcript.duration)} of audio · ` : ""}
          {transcript.segments.length} segments
        </p>
      </div>
      <ol class="segments" ref={list} data-testid="segments">
        {transcript.segments.map((s, i) => (
          <li aria-current={i === current ? "true" : undefined}>
            <button type="button" class="segment" onClick={() => seek(s)} data-start={s.start}>
              <span class="ts">{clock(s.start)}</span>
              <span class="text">
                {s.words
                  ? s.words.map((w, j) => (
                      <>
                        {j > 0 && " "}
                        <span
                          class={i === current && t >= w.start && t < w.end ? "word now" : "word"}
                          title={`${clock(w.start)}–${clock(w.end)}`}
                        >
                          {w.word.trim()}
                        </span>
                      </>
                    ))
                  : s.text}
              </span>
            </button>
          </li>
        ))}
      </ol>
    </div>
  );
}
