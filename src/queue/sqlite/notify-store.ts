import type Database from "better-sqlite3";
import type { OutboxEvent } from "../types.js";
import { opt, statementCache, type Row } from "./rows.js";

/** One notification to one target; its id is the stable `webhook-id` (or SNS MessageId) of every attempt. */
export interface Delivery {
  id: string;
  eventId?: number;
  invocationId?: string;
  kind: "webhook" | "sns";
  eventType: string;
  target: string;
  /** Webhooks: the endpoint whose secret signs it. SNS: the subscription ARN. */
  scope?: string;
  body: string;
  headers?: Record<string, string>;
  attempts: number;
  createdAt: number;
  nextAttemptAt: number;
  giveUpAt: number;
  lastStatus?: number;
  lastError?: string;
  deliveredAt?: number;
  failedAt?: number;
}

export type NewDelivery = Omit<
  Delivery,
  "attempts" | "lastStatus" | "lastError" | "deliveredAt" | "failedAt" | "nextAttemptAt"
>;

export interface Attempt {
  n: number;
  at: number;
  status?: number;
  error?: string;
  durationMs: number;
}

export interface Topic {
  arn: string;
  name: string;
  attributes: Record<string, string>;
  createdAt: number;
}

export interface Subscription {
  arn: string;
  topicArn: string;
  protocol: "http" | "https";
  endpoint: string;
  token: string;
  status: "PendingConfirmation" | "Confirmed";
  createdAt: number;
  confirmedAt?: number;
}

/** Durable state of the notify box. SQLite implements it; a PostgreSQL store must keep the same semantics. */
export interface NotifyStore {
  /** Turns outbox events into deliveries and marks the events delivered, in one transaction. */
  expand(event: OutboxEvent, deliveries: NewDelivery[]): void;
  /** Adds deliveries not tied to an outbox row (SNS confirmations, Publish); duplicates by id are ignored. */
  add(deliveries: NewDelivery[]): void;
  /**
   * Claims up to `limit` due deliveries: pushes their next attempt to `claimUntil`, so that a crash in the
   * middle of an attempt only delays the retry.
   */
  claimDue(now: number, claimUntil: number, limit: number): Delivery[];
  recordAttempt(
    id: string,
    attempt: Attempt,
    outcome: { delivered: true } | { delivered: false; nextAttemptAt?: number },
  ): void;
  deliveriesOf(invocationId: string): (Delivery & { history: Attempt[] })[];
  getDelivery(id: string): Delivery | undefined;

  getSecret(scope: string): { secret: string; createdAt: number } | undefined;
  setSecret(scope: string, secret: string, now: number): void;

  createTopic(t: Topic): Topic;
  getTopic(arn: string): Topic | undefined;
  listTopics(): Topic[];
  deleteTopic(arn: string): boolean;
  addSubscription(s: Subscription): Subscription;
  getSubscription(arn: string): Subscription | undefined;
  listSubscriptions(topicArn?: string): Subscription[];
  confirmSubscription(topicArn: string, token: string, now: number): Subscription | undefined;
  deleteSubscription(arn: string): boolean;
}

function toDelivery(r: Row): Delivery {
  return {
    id: String(r.id),
    eventId: opt(r.event_id, Number),
    invocationId: opt(r.invocation_id, String),
    kind: r.kind as Delivery["kind"],
    eventType: String(r.event_type),
    target: String(r.target),
    scope: opt(r.scope, String),
    body: String(r.body),
    headers: opt(r.headers, (h) => JSON.parse(String(h)) as Record<string, string>),
    attempts: Number(r.attempts),
    createdAt: Number(r.created_at),
    nextAttemptAt: Number(r.next_attempt_at),
    giveUpAt: Number(r.give_up_at),
    lastStatus: opt(r.last_status, Number),
    lastError: opt(r.last_error, String),
    deliveredAt: opt(r.delivered_at, Number),
    failedAt: opt(r.failed_at, Number),
  };
}

function toSubscription(r: Row): Subscription {
  return {
    arn: String(r.arn),
    topicArn: String(r.topic_arn),
    protocol: r.protocol as Subscription["protocol"],
    endpoint: String(r.endpoint),
    token: String(r.token),
    status: r.status as Subscription["status"],
    createdAt: Number(r.created_at),
    confirmedAt: opt(r.confirmed_at, Number),
  };
}

const toTopic = (r: Row): Topic => ({
  arn: String(r.arn),
  name: String(r.name),
  attributes: JSON.parse(String(r.attributes)) as Record<string, string>,
  createdAt: Number(r.created_at),
});

/** The notify tables, kept in the state store's SQLite file (its shared `db`). Synchronous: each call is short. */
export class SqliteNotifyStore implements NotifyStore {
  private readonly q: (sql: string) => Database.Statement;
  constructor(private readonly db: Database.Database) {
    this.q = statementCache(db);
  }

  private insert(d: NewDelivery): void {
    this.q(
      `INSERT OR IGNORE INTO notify_deliveries (id, event_id, invocation_id, kind, event_type, target, scope, body,
         headers, created_at, next_attempt_at, give_up_at)
       VALUES (@id, @eventId, @invocationId, @kind, @eventType, @target, @scope, @body, @headers, @createdAt,
         @createdAt, @giveUpAt)`,
    ).run({
      ...d,
      eventId: d.eventId ?? null,
      invocationId: d.invocationId ?? null,
      scope: d.scope ?? null,
      headers: d.headers ? JSON.stringify(d.headers) : null,
    });
  }

  expand(event: OutboxEvent, deliveries: NewDelivery[]): void {
    this.db.transaction(() => {
      for (const d of deliveries) this.insert(d);
      this.q("UPDATE outbox SET delivered_at = ? WHERE id = ?").run(Date.now(), event.id);
    })();
  }

  add(deliveries: NewDelivery[]): void {
    this.db.transaction(() => deliveries.forEach((d) => this.insert(d)))();
  }

  claimDue(now: number, claimUntil: number, limit: number): Delivery[] {
    return this.db.transaction(() => {
      const rows = this.q(
        `SELECT * FROM notify_deliveries WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= ?
           ORDER BY next_attempt_at LIMIT ?`,
      ).all(now, limit) as Row[];
      const claim = this.q("UPDATE notify_deliveries SET next_attempt_at = ? WHERE id = ?");
      for (const r of rows) claim.run(claimUntil, r.id);
      return rows.map(toDelivery);
    })();
  }

  recordAttempt(
    id: string,
    a: Attempt,
    outcome: { delivered: true } | { delivered: false; nextAttemptAt?: number },
  ): void {
    this.db.transaction(() => {
      this.q(
        "INSERT OR REPLACE INTO notify_attempts (delivery_id, n, at, status, error, duration_ms) VALUES (?, ?, ?, ?, ?, ?)",
      ).run(id, a.n, a.at, a.status ?? null, a.error ?? null, a.durationMs);
      const end = a.at + a.durationMs;
      if (outcome.delivered) {
        this.q(
          "UPDATE notify_deliveries SET attempts = ?, last_status = ?, last_error = NULL, delivered_at = ? WHERE id = ?",
        ).run(a.n, a.status ?? null, end, id);
      } else if (outcome.nextAttemptAt === undefined) {
        this.q(
          "UPDATE notify_deliveries SET attempts = ?, last_status = ?, last_error = ?, failed_at = ? WHERE id = ?",
        ).run(a.n, a.status ?? null, a.error ?? null, end, id);
      } else {
        this.q(
          "UPDATE notify_deliveries SET attempts = ?, last_status = ?, last_error = ?, next_attempt_at = ? WHERE id = ?",
        ).run(a.n, a.status ?? null, a.error ?? null, outcome.nextAttemptAt, id);
      }
    })();
  }

  deliveriesOf(invocationId: string): (Delivery & { history: Attempt[] })[] {
    const rows = this.q(
      "SELECT * FROM notify_deliveries WHERE invocation_id = ? ORDER BY created_at, id",
    ).all(invocationId) as Row[];
    return rows.map((r) => ({ ...toDelivery(r), history: this.attemptsOf(String(r.id)) }));
  }

  private attemptsOf(id: string): Attempt[] {
    const rows = this.q("SELECT * FROM notify_attempts WHERE delivery_id = ? ORDER BY n").all(id) as Row[];
    return rows.map((r) => ({
      n: Number(r.n),
      at: Number(r.at),
      status: opt(r.status, Number),
      error: opt(r.error, String),
      durationMs: Number(r.duration_ms),
    }));
  }

  getDelivery(id: string): Delivery | undefined {
    const r = this.q("SELECT * FROM notify_deliveries WHERE id = ?").get(id) as Row | undefined;
    return r ? toDelivery(r) : undefined;
  }

  getSecret(scope: string): { secret: string; createdAt: number } | undefined {
    const r = this.q("SELECT secret, created_at FROM notify_secrets WHERE scope = ?").get(scope) as
      Row | undefined;
    return r ? { secret: String(r.secret), createdAt: Number(r.created_at) } : undefined;
  }

  setSecret(scope: string, secret: string, now: number): void {
    this.q(
      `INSERT INTO notify_secrets (scope, secret, created_at) VALUES (?, ?, ?)
         ON CONFLICT (scope) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at`,
    ).run(scope, secret, now);
  }

  /** Idempotent, as SNS's CreateTopic: an existing topic of that name is returned as is. */
  createTopic(t: Topic): Topic {
    this.q("INSERT OR IGNORE INTO sns_topics (arn, name, attributes, created_at) VALUES (?, ?, ?, ?)").run(
      t.arn,
      t.name,
      JSON.stringify(t.attributes),
      t.createdAt,
    );
    return toTopic(this.q("SELECT * FROM sns_topics WHERE name = ?").get(t.name) as Row);
  }

  getTopic(arn: string): Topic | undefined {
    const r = this.q("SELECT * FROM sns_topics WHERE arn = ?").get(arn) as Row | undefined;
    return r ? toTopic(r) : undefined;
  }

  listTopics(): Topic[] {
    return (this.q("SELECT * FROM sns_topics ORDER BY name").all() as Row[]).map(toTopic);
  }

  deleteTopic(arn: string): boolean {
    return this.db.transaction(() => {
      this.q("DELETE FROM sns_subscriptions WHERE topic_arn = ?").run(arn);
      return this.q("DELETE FROM sns_topics WHERE arn = ?").run(arn).changes > 0;
    })();
  }

  /** Subscribing the same endpoint twice returns the existing subscription, as SNS does. */
  addSubscription(s: Subscription): Subscription {
    const existing = this.q(
      "SELECT * FROM sns_subscriptions WHERE topic_arn = ? AND protocol = ? AND endpoint = ?",
    ).get(s.topicArn, s.protocol, s.endpoint) as Row | undefined;
    if (existing) return toSubscription(existing);
    this.q(
      `INSERT INTO sns_subscriptions (arn, topic_arn, protocol, endpoint, token, status, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ).run(s.arn, s.topicArn, s.protocol, s.endpoint, s.token, s.status, s.createdAt);
    return s;
  }

  getSubscription(arn: string): Subscription | undefined {
    const r = this.q("SELECT * FROM sns_subscriptions WHERE arn = ?").get(arn) as Row | undefined;
    return r ? toSubscription(r) : undefined;
  }

  listSubscriptions(topicArn?: string): Subscription[] {
    const rows = topicArn
      ? this.q("SELECT * FROM sns_subscriptions WHERE topic_arn = ? ORDER BY created_at").all(topicArn)
      : this.q("SELECT * FROM sns_subscriptions ORDER BY created_at").all();
    return (rows as Row[]).map(toSubscription);
  }

  confirmSubscription(topicArn: string, token: string, now: number): Subscription | undefined {
    const r = this.q(
      `UPDATE sns_subscriptions SET status = 'Confirmed', confirmed_at = COALESCE(confirmed_at, ?)
         WHERE topic_arn = ? AND token = ? RETURNING *`,
    ).get(now, topicArn, token) as Row | undefined;
    return r ? toSubscription(r) : undefined;
  }

  deleteSubscription(arn: string): boolean {
    return this.q("DELETE FROM sns_subscriptions WHERE arn = ?").run(arn).changes > 0;
  }
}
