import type { EgressPolicy } from "./egress.js";

/** Options of the notify box (webhooks, SNS-style topics, live events). */
export interface NotifyOptions {
  egress: EgressPolicy;
  /** How long a notification is retried before it is given up. @defaultValue 24 h */
  retryForMs: number;
  /** First retry delay; doubles each attempt, with jitter. @defaultValue 5 s */
  initialBackoffMs: number;
  /** @defaultValue 10 min */
  maxBackoffMs: number;
  /** Per-request timeout of a delivery. @defaultValue 10 s */
  requestTimeoutMs: number;
  /** The receiver's reply is read up to this size. @defaultValue 64 KiB */
  maxResponseBytes: number;
  /** Transcripts larger than this are left out of webhook bodies (opt-in `includeTranscript`). @defaultValue 256 KiB */
  maxTranscriptBytes: number;
  /** How often the dispatcher looks for due deliveries (it is also woken by finished invocations). @defaultValue 500 ms */
  pollMs: number;
  /** Deliveries in flight at once. @defaultValue 8 */
  concurrency: number;
  /** Region and account used in SNS topic ARNs and SageMaker-shaped messages. */
  region: string;
  accountId: string;
  /** Base URL put in SNS SubscribeURL/UnsubscribeURL/SigningCertURL; default: the Host of the Subscribe request. */
  publicUrl?: string;
}

type Env = Record<string, string | undefined>;

const num = (env: Env, name: string, dflt: number): number => {
  const v = env[name];
  if (v === undefined || v === "") return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}: expected a non-negative number, got "${v}"`);
  return n;
};
const list = (v: string | undefined) =>
  v
    ? v
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean)
    : [];

/** Defaults, then `KIKITORI_WEBHOOK_*` / `KIKITORI_NOTIFY_*` environment variables (called by config.ts). */
export function loadNotifyOptions(env: Env, ids: Pick<NotifyOptions, "region" | "accountId">): NotifyOptions {
  return {
    egress: {
      allowLoopback: env.KIKITORI_WEBHOOK_ALLOW_LOOPBACK === "1",
      allowPrivate: env.KIKITORI_WEBHOOK_ALLOW_PRIVATE === "1",
      allowHosts: list(env.KIKITORI_WEBHOOK_ALLOW_HOSTS),
      denyHosts: list(env.KIKITORI_WEBHOOK_DENY_HOSTS),
    },
    retryForMs: num(env, "KIKITORI_WEBHOOK_RETRY_FOR_MS", 24 * 3600_000),
    initialBackoffMs: num(env, "KIKITORI_WEBHOOK_BACKOFF_MS", 5000),
    maxBackoffMs: num(env, "KIKITORI_WEBHOOK_MAX_BACKOFF_MS", 600_000),
    requestTimeoutMs: num(env, "KIKITORI_WEBHOOK_TIMEOUT_MS", 10_000),
    maxResponseBytes: 64 * 1024,
    maxTranscriptBytes: num(env, "KIKITORI_WEBHOOK_MAX_TRANSCRIPT_BYTES", 256 * 1024),
    pollMs: num(env, "KIKITORI_NOTIFY_POLL_MS", 500),
    concurrency: 8,
    ...ids,
    publicUrl: env.KIKITORI_PUBLIC_URL,
  };
}

/** Exponential backoff with equal jitter: a random delay in [base/2, base], base doubling per attempt. */
export function backoffMs(
  attempt: number,
  o: Pick<NotifyOptions, "initialBackoffMs" | "maxBackoffMs">,
): number {
  const base = Math.min(o.maxBackoffMs, o.initialBackoffMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(base / 2 + Math.random() * (base / 2));
}
