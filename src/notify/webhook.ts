import { randomBytes } from "node:crypto";
import { Webhook } from "standardwebhooks";
import type { Invocation } from "../core/types.js";

/** Events a webhook may ask for, as Replicate's `webhook_events_filter`. */
export const WEBHOOK_EVENTS = ["start", "progress", "completed"] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

/** A new Standard Webhooks secret: `whsec_` + base64 of 32 random bytes. */
export const newSecret = () => `whsec_${randomBytes(32).toString("base64")}`;

/**
 * The Standard Webhooks headers of one attempt: `webhook-signature` is `v1,` + base64(HMAC-SHA256(key,
 * `${id}.${timestamp}.${body}`)) where key is the base64-decoded part of the secret after `whsec_`.
 */
export function signedHeaders(secret: string, id: string, at: Date, body: string): Record<string, string> {
  return {
    "webhook-id": id,
    "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
    "webhook-signature": new Webhook(secret).sign(id, at, body),
  };
}

const iso = (ms?: number) => (ms === undefined ? undefined : new Date(ms).toISOString());

/** The JSON body of a webhook: Standard Webhooks' `{ type, timestamp, data }` with the invocation's facts. */
export function webhookBody(
  type: "invocation.started" | "invocation.progress" | "invocation.completed",
  inv: Invocation,
  transcript?: { text?: string; json?: unknown; omitted?: string },
  /** The estimated finish (epoch ms), for progress events. */
  eta?: number,
): string {
  return JSON.stringify({
    type,
    timestamp: new Date().toISOString(),
    data: {
      inferenceId: inv.id,
      endpoint: inv.endpoint,
      state: inv.state,
      inputLocation: inv.inputLocation,
      outputLocation: inv.state === "Succeeded" ? inv.outputLocation : undefined,
      failureLocation:
        inv.state !== "Succeeded" && type === "invocation.completed" ? inv.failureLocation : undefined,
      attempts: inv.attempts,
      progress:
        inv.totalSeconds !== undefined
          ? { processedSeconds: inv.progressSeconds ?? 0, totalSeconds: inv.totalSeconds }
          : undefined,
      eta: iso(eta),
      timing: {
        createdAt: iso(inv.createdAt),
        startedAt: iso(inv.startedAt),
        finishedAt: iso(inv.finishedAt),
        queuedMs: inv.startedAt !== undefined ? inv.startedAt - inv.createdAt : undefined,
        totalMs: inv.finishedAt !== undefined ? inv.finishedAt - inv.createdAt : undefined,
        modelMs: inv.modelTimeMs,
      },
      error: inv.error,
      transcript: transcript?.json ?? transcript?.text,
      transcriptOmitted: transcript?.omitted,
    },
  });
}
