import { createHash, randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import type { Service } from "../core/service.js";
import type { Invocation } from "../core/types.js";
import { s3Location } from "../core/rules.js";
import { coerceError } from "../errors.js";
import type { OutboxEvent } from "../queue/types.js";
import type { Delivery, NewDelivery, NotifyStore } from "./store.js";
import { postChecked } from "./egress.js";
import { backoffMs, type NotifyOptions } from "./options.js";
import { sageMakerMessage } from "./sns-message.js";
import type { Topics } from "./topics.js";
import { newSecret, signedHeaders, webhookBody } from "./webhook.js";

/** SageMaker includes the inference response in its SNS message only up to this size. */
const SNS_RESPONSE_MAX_BYTES = 128 * 1024;
/** Progress webhooks are sent at most this often per invocation. */
const PROGRESS_EVERY_MS = 5000;

export interface DispatcherEvents {
  "delivery:delivered": [Delivery];
  "delivery:failed": [Delivery, string];
  error: [Error];
}

const shortHash = (s: string) => createHash("sha256").update(s).digest("hex").slice(0, 24);
/** A UUID-shaped id derived from `seed`: SNS MessageIds that stay the same when an event is expanded again. */
function stableUuid(seed: string): string {
  const h = createHash("sha256").update(seed).digest("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}
const secretScope = (endpoint: string) => `webhook:endpoint:${endpoint}`;

/**
 * Turns outbox events into durable deliveries (per webhook, per SNS subscription) and sends them with
 * exponential backoff and jitter until they succeed or `retryForMs` passes. Every step is committed before
 * the next, so a killed service resumes where it stopped: at worst a notification is sent twice, with the
 * same `webhook-id`.
 */
export class Dispatcher extends EventEmitter<DispatcherEvents> {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private again = false;
  /** Runs only between start() and stop(): on the cluster's leader. */
  private stopped = true;
  private readonly inflight = new Map<string, Promise<void>>();
  private readonly onFinished = () => this.wake();
  private liveScannedAt = 0;

  constructor(
    private readonly service: Service,
    private readonly store: NotifyStore,
    private readonly topics: Topics,
    private readonly o: NotifyOptions,
  ) {
    super();
  }

  readonly name = "outbox dispatch";

  start(): void {
    this.stopped = false;
    this.service.on("invocation:finished", this.onFinished);
    this.timer = setInterval(() => this.wake(), this.o.pollMs);
    this.wake();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.service.off("invocation:finished", this.onFinished);
    await this.running;
    await Promise.all(this.inflight.values());
  }

  /** Runs a pass soon; passes never overlap. */
  wake(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.pass()
      .catch((e: unknown) => {
        this.emit("error", coerceError(e));
      })
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.wake();
        }
      });
  }

  /** The endpoint's signing secret, created on first use. */
  async secretFor(endpoint: string): Promise<string> {
    return (await this.store.ensureSecret(secretScope(endpoint), newSecret(), Date.now())).secret;
  }

  /** Replaces the endpoint's secret and returns it: the only time the API shows a secret. */
  async rotateSecret(endpoint: string): Promise<{ secret: string; createdAt: number }> {
    const secret = newSecret();
    const createdAt = Date.now();
    await this.store.setSecret(secretScope(endpoint), secret, createdAt);
    return { secret, createdAt };
  }

  async secretInfo(endpoint: string): Promise<{ createdAt: number } | undefined> {
    const s = await this.store.getSecret(secretScope(endpoint));
    return s ? { createdAt: s.createdAt } : undefined;
  }

  private async pass(): Promise<void> {
    // The outbox hand-off in two idempotent steps, a batch of events at a time: their deliveries (ids derived
    // from the event) are added, then the events are marked delivered. A crash in between expands them
    // again, adding nothing new.
    const events = await this.service.pendingEvents(100);
    if (events.length) {
      const deliveries: NewDelivery[] = [];
      for (const ev of events) {
        if (this.stopped) return;
        deliveries.push(...(await this.deliveriesFor(ev)));
      }
      if (deliveries.length) await this.store.add(deliveries);
      await this.service.markEventsDelivered(events.map((ev) => ev.id));
    }
    // Live webhooks come from a scan of the running invocations: at most once per poll interval, however
    // many finishes wake the dispatcher in between (a burst of finishes used to rescan per batch).
    if (Date.now() - this.liveScannedAt >= this.o.pollMs) {
      this.liveScannedAt = Date.now();
      await this.liveWebhooks();
    }
    await this.deliverDue();
  }

  private newDelivery(
    inv: Invocation,
    type: "invocation.started" | "invocation.progress" | "invocation.completed",
    body: string,
    id = `msg_${randomUUID().replace(/-/g, "")}`,
  ): NewDelivery {
    const now = Date.now();
    return {
      id,
      invocationId: inv.id,
      kind: "webhook",
      eventType: type,
      target: inv.webhook!.url,
      scope: inv.endpoint,
      body,
      createdAt: now,
      giveUpAt: now + this.o.retryForMs,
    };
  }

  private async deliveriesFor(ev: OutboxEvent): Promise<NewDelivery[]> {
    if (ev.type !== "invocation.completed") return [];
    const inv = ev.payload as Invocation;
    const out: NewDelivery[] = [];
    if (inv.webhook && inv.webhook.events.includes("completed")) {
      const transcript = inv.webhook.includeTranscript ? await this.transcriptOf(inv) : undefined;
      out.push({
        ...this.newDelivery(
          inv,
          "invocation.completed",
          webhookBody("invocation.completed", inv, transcript),
          `msg_${shortHash(`completed:${inv.id}`)}`,
        ),
        eventId: ev.id,
      });
    }
    out.push(...(await this.snsDeliveries(inv, ev.id)));
    return out;
  }

  private async transcriptOf(inv: Invocation): Promise<{ text?: string; json?: unknown; omitted?: string }> {
    if (inv.state !== "Succeeded") return {};
    const doc = await this.readObject(inv.outputLocation, this.o.maxTranscriptBytes);
    if (!doc)
      return { omitted: `the transcript is larger than ${this.o.maxTranscriptBytes} bytes or unreadable` };
    const text = doc.body.toString("utf8");
    if (/json/.test(doc.contentType)) {
      try {
        return { json: JSON.parse(text) };
      } catch {
        return { text };
      }
    }
    return { text };
  }

  private async readObject(location: string, maxBytes: number) {
    try {
      const { bucket, key } = s3Location("location", location);
      const head = await this.service.objects.headObject(bucket, key);
      if (head.size > maxBytes) return undefined;
      const { info, body } = await this.service.objects.getObject(bucket, key);
      const chunks: Buffer[] = [];
      for await (const c of body) chunks.push(c as Buffer);
      return { body: Buffer.concat(chunks), contentType: info.contentType };
    } catch {
      return undefined;
    }
  }

  /** SageMaker-shaped messages to the endpoint config's SuccessTopic / ErrorTopic. */
  private async snsDeliveries(inv: Invocation, eventId: number): Promise<NewDelivery[]> {
    // The topics of the config it was accepted under: its endpoint may be deleted (or updated) by now.
    const n = inv.notification;
    if (!n) return [];
    const ok = inv.state === "Succeeded";
    const topic = ok ? n.successTopic : n.errorTopic;
    if (!topic || !(await this.store.getTopic(topic))) return [];
    const include = n.includeInferenceResponseIn?.includes(
      ok ? "SUCCESS_NOTIFICATION_TOPIC" : "ERROR_NOTIFICATION_TOPIC",
    );
    const response = include
      ? await this.readObject(ok ? inv.outputLocation : inv.failureLocation, SNS_RESPONSE_MAX_BYTES)
      : undefined;
    const message = JSON.stringify(sageMakerMessage(inv, this.o.region, response));
    const messageId = stableUuid(`sagemaker:${inv.id}:${topic}`);
    return (await this.topics.fanOut(topic, message, undefined, { invocationId: inv.id, eventId, messageId }))
      .deliveries;
  }

  /** `start` and `progress` webhooks of running invocations; ids are derived, so a restart does not repeat them. */
  private async liveWebhooks(): Promise<void> {
    const running = await this.service.listInvocations({ state: "Running", limit: 1000 });
    const add: NewDelivery[] = [];
    for (const inv of running) {
      const events = inv.webhook?.events ?? [];
      if (events.includes("start")) {
        const id = `msg_${shortHash(`start:${inv.id}`)}`;
        if (!(await this.store.getDelivery(id)))
          add.push(this.newDelivery(inv, "invocation.started", webhookBody("invocation.started", inv), id));
      }
      if (events.includes("progress") && inv.progressSeconds !== undefined) {
        const id = `msg_${shortHash(`progress:${inv.id}:${Math.floor(Date.now() / PROGRESS_EVERY_MS)}`)}`;
        if (!(await this.store.getDelivery(id)))
          add.push(
            this.newDelivery(
              inv,
              "invocation.progress",
              webhookBody("invocation.progress", inv, undefined, await this.service.estimate(inv)),
              id,
            ),
          );
      }
    }
    if (add.length) await this.store.add(add);
  }

  private async deliverDue(): Promise<void> {
    const free = this.o.concurrency - this.inflight.size;
    if (free <= 0 || this.stopped) return;
    const now = Date.now();
    // A claim outlives one attempt; after a crash the delivery is retried once the claim lapses.
    for (const d of await this.store.claimDue(now, now + this.o.requestTimeoutMs + 30_000, free)) {
      const p = this.attempt(d)
        .catch((e: unknown) => {
          this.emit("error", coerceError(e));
        })
        .finally(() => {
          this.inflight.delete(d.id);
          this.wake();
        });
      this.inflight.set(d.id, p);
    }
  }

  private async attempt(d: Delivery): Promise<void> {
    const n = d.attempts + 1;
    const at = Date.now();
    const headers =
      d.kind === "webhook"
        ? signedHeaders(await this.secretFor(d.scope ?? ""), d.id, new Date(at), d.body)
        : (d.headers ?? {});
    const r = await postChecked(d.target, this.o.egress, d.body, headers, {
      timeoutMs: this.o.requestTimeoutMs,
      maxResponseBytes: this.o.maxResponseBytes,
    });
    const attempt = { n, at, status: r.status, error: r.error, durationMs: Date.now() - at };
    if (r.ok) {
      await this.store.recordAttempt(d.id, attempt, { delivered: true });
      this.emit("delivery:delivered", { ...d, attempts: n });
      return;
    }
    const next = Date.now() + backoffMs(n, this.o);
    const giveUp = r.refused || next > d.giveUpAt;
    await this.store.recordAttempt(d.id, attempt, {
      delivered: false,
      nextAttemptAt: giveUp ? undefined : next,
    });
    if (giveUp) this.emit("delivery:failed", { ...d, attempts: n }, r.error ?? "failed");
  }
}
