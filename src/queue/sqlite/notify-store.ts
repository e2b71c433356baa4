import type Database from "better-sqlite3";
import type { Attempt, Delivery, NewDelivery, NotifyStore, Subscription, Topic } from "../../notify/store.js";
import { opt, toDelivery, toSubscription, toTopic, type Row } from "../rows.js";
import { relaxed, statementCache } from "./rows.js";

/** The notify tables, kept in the state store's SQLite file (its shared `db`). */
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

  async add(deliveries: NewDelivery[]): Promise<void> {
    this.db.transaction(() => deliveries.forEach((d) => this.insert(d)))();
  }

  async claimDue(now: number, claimUntil: number, limit: number): Promise<Delivery[]> {
    // One transaction in one process: SQLite serialises writers, so no two claims overlap.
    return relaxed(this.db, () => this.claim(now, claimUntil, limit));
  }

  private claim(now: number, claimUntil: number, limit: number): Delivery[] {
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

  async recordAttempt(
    id: string,
    a: Attempt,
    outcome: { delivered: true } | { delivered: false; nextAttemptAt?: number },
  ): Promise<void> {
    relaxed(this.db, () => this.record(id, a, outcome));
  }

  private record(
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

  async deliveriesOf(invocationId: string): Promise<(Delivery & { history: Attempt[] })[]> {
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

  async getDelivery(id: string): Promise<Delivery | undefined> {
    const r = this.q("SELECT * FROM notify_deliveries WHERE id = ?").get(id) as Row | undefined;
    return r ? toDelivery(r) : undefined;
  }

  async getSecret(scope: string): Promise<{ secret: string; createdAt: number } | undefined> {
    const r = this.q("SELECT secret, created_at FROM notify_secrets WHERE scope = ?").get(scope) as
      Row | undefined;
    return r ? { secret: String(r.secret), createdAt: Number(r.created_at) } : undefined;
  }

  async setSecret(scope: string, secret: string, now: number): Promise<void> {
    this.q(
      `INSERT INTO notify_secrets (scope, secret, created_at) VALUES (?, ?, ?)
         ON CONFLICT (scope) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at`,
    ).run(scope, secret, now);
  }

  async ensureSecret(scope: string, secret: string, now: number) {
    this.q("INSERT OR IGNORE INTO notify_secrets (scope, secret, created_at) VALUES (?, ?, ?)").run(
      scope,
      secret,
      now,
    );
    return (await this.getSecret(scope))!;
  }

  async createTopic(t: Topic): Promise<Topic> {
    this.q("INSERT OR IGNORE INTO sns_topics (arn, name, attributes, created_at) VALUES (?, ?, ?, ?)").run(
      t.arn,
      t.name,
      JSON.stringify(t.attributes),
      t.createdAt,
    );
    return toTopic(this.q("SELECT * FROM sns_topics WHERE name = ?").get(t.name) as Row);
  }

  async getTopic(arn: string): Promise<Topic | undefined> {
    const r = this.q("SELECT * FROM sns_topics WHERE arn = ?").get(arn) as Row | undefined;
    return r ? toTopic(r) : undefined;
  }

  async listTopics(): Promise<Topic[]> {
    return (this.q("SELECT * FROM sns_topics ORDER BY name").all() as Row[]).map(toTopic);
  }

  async deleteTopic(arn: string): Promise<boolean> {
    return this.db.transaction(() => {
      this.q("DELETE FROM sns_subscriptions WHERE topic_arn = ?").run(arn);
      return this.q("DELETE FROM sns_topics WHERE arn = ?").run(arn).changes > 0;
    })();
  }

  async addSubscription(s: Subscription): Promise<Subscription> {
    return this.db.transaction(() => {
      const existing = this.q(
        "SELECT * FROM sns_subscriptions WHERE topic_arn = ? AND protocol = ? AND endpoint = ?",
      ).get(s.topicArn, s.protocol, s.endpoint) as Row | undefined;
      if (existing) return toSubscription(existing);
      this.q(
        `INSERT INTO sns_subscriptions (arn, topic_arn, protocol, endpoint, token, status, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ).run(s.arn, s.topicArn, s.protocol, s.endpoint, s.token, s.status, s.createdAt);
      return toSubscription(this.q("SELECT * FROM sns_subscriptions WHERE arn = ?").get(s.arn) as Row);
    })();
  }

  async getSubscription(arn: string): Promise<Subscription | undefined> {
    const r = this.q("SELECT * FROM sns_subscriptions WHERE arn = ?").get(arn) as Row | undefined;
    return r ? toSubscription(r) : undefined;
  }

  async listSubscriptions(topicArn?: string): Promise<Subscription[]> {
    const rows = topicArn
      ? this.q("SELECT * FROM sns_subscriptions WHERE topic_arn = ? ORDER BY created_at, arn").all(topicArn)
      : this.q("SELECT * FROM sns_subscriptions ORDER BY created_at, arn").all();
    return (rows as Row[]).map(toSubscription);
  }

  async confirmSubscription(topicArn: string, token: string, now: number): Promise<Subscription | undefined> {
    const r = this.q(
      `UPDATE sns_subscriptions SET status = 'Confirmed', confirmed_at = COALESCE(confirmed_at, ?)
         WHERE topic_arn = ? AND token = ? RETURNING *`,
    ).get(now, topicArn, token) as Row | undefined;
    return r ? toSubscription(r) : undefined;
  }

  async deleteSubscription(arn: string): Promise<boolean> {
    return this.q("DELETE FROM sns_subscriptions WHERE arn = ?").run(arn).changes > 0;
  }
}
