import type pg from "pg";
import type { Attempt, Delivery, NewDelivery, NotifyStore, Subscription, Topic } from "../../notify/store.js";
import { opt, toDelivery, toSubscription, toTopic } from "../rows.js";
import { params, prepared, rows, tx } from "./db.js";

const DELIVERY_COLUMNS = 12;

/** The notify box's tables on PostgreSQL. */
export class PgNotifyStore implements NotifyStore {
  constructor(private readonly pool: pg.Pool) {}

  async add(deliveries: NewDelivery[]): Promise<void> {
    if (!deliveries.length) return;
    const values: unknown[] = [];
    const tuples = deliveries.map((d) => {
      const t = `(${params(DELIVERY_COLUMNS, values.length + 1)})`;
      values.push(
        d.id,
        d.eventId ?? null,
        d.invocationId ?? null,
        d.kind,
        d.eventType,
        d.target,
        d.scope ?? null,
        d.body,
        d.headers ? JSON.stringify(d.headers) : null,
        d.createdAt,
        d.createdAt,
        d.giveUpAt,
      );
      return t;
    });
    await this.pool.query(
      `INSERT INTO notify_deliveries (id, event_id, invocation_id, kind, event_type, target, scope, body, headers,
         created_at, next_attempt_at, give_up_at)
       VALUES ${tuples.join(", ")} ON CONFLICT (id) DO NOTHING`,
      values,
    );
  }

  async claimDue(now: number, claimUntil: number, limit: number): Promise<Delivery[]> {
    // SKIP LOCKED: two dispatchers claiming at once split the due deliveries between them.
    const rs = await prepared(
      this.pool,
      `WITH due AS (
         SELECT id FROM notify_deliveries
          WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $1
          ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED)
       UPDATE notify_deliveries d SET next_attempt_at = $2 FROM due WHERE d.id = due.id RETURNING d.*`,
      [now, claimUntil, limit],
    );
    return rs.map(toDelivery).sort((a, b) => a.createdAt - b.createdAt);
  }

  async recordAttempt(
    id: string,
    a: Attempt,
    outcome: { delivered: true } | { delivered: false; nextAttemptAt?: number },
  ): Promise<void> {
    const end = a.at + a.durationMs;
    await tx(this.pool, async (c) => {
      await c.query(
        `INSERT INTO notify_attempts (delivery_id, n, at, status, error, duration_ms) VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (delivery_id, n) DO UPDATE SET at = excluded.at, status = excluded.status,
             error = excluded.error, duration_ms = excluded.duration_ms`,
        [id, a.n, a.at, a.status ?? null, a.error ?? null, a.durationMs],
      );
      const [set, value] = outcome.delivered
        ? ["last_error = NULL, delivered_at = $4", end]
        : outcome.nextAttemptAt === undefined
          ? ["last_error = $5, failed_at = $4", end]
          : ["last_error = $5, next_attempt_at = $4", outcome.nextAttemptAt];
      await c.query(
        `UPDATE notify_deliveries SET attempts = $1, last_status = $2, ${set} WHERE id = $3`,
        outcome.delivered
          ? [a.n, a.status ?? null, id, value]
          : [a.n, a.status ?? null, id, value, a.error ?? null],
      );
    });
  }

  async deliveriesOf(invocationId: string): Promise<(Delivery & { history: Attempt[] })[]> {
    const ds = await rows(
      this.pool,
      `SELECT * FROM notify_deliveries WHERE invocation_id = $1 ORDER BY created_at, id COLLATE "C"`,
      [invocationId],
    );
    const as = await rows(
      this.pool,
      `SELECT a.* FROM notify_attempts a JOIN notify_deliveries d ON d.id = a.delivery_id
        WHERE d.invocation_id = $1 ORDER BY a.n`,
      [invocationId],
    );
    return ds.map((r) => ({
      ...toDelivery(r),
      history: as
        .filter((a) => a.delivery_id === r.id)
        .map((a) => ({
          n: Number(a.n),
          at: Number(a.at),
          status: opt(a.status, Number),
          error: opt(a.error, String),
          durationMs: Number(a.duration_ms),
        })),
    }));
  }

  async getDelivery(id: string): Promise<Delivery | undefined> {
    const [r] = await rows(this.pool, "SELECT * FROM notify_deliveries WHERE id = $1", [id]);
    return r ? toDelivery(r) : undefined;
  }

  async getSecret(scope: string): Promise<{ secret: string; createdAt: number } | undefined> {
    const [r] = await rows(this.pool, "SELECT secret, created_at FROM notify_secrets WHERE scope = $1", [
      scope,
    ]);
    return r ? { secret: String(r.secret), createdAt: Number(r.created_at) } : undefined;
  }

  async setSecret(scope: string, secret: string, now: number): Promise<void> {
    await this.pool.query(
      `INSERT INTO notify_secrets (scope, secret, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (scope) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at`,
      [scope, secret, now],
    );
  }

  async ensureSecret(scope: string, secret: string, now: number) {
    await this.pool.query(
      "INSERT INTO notify_secrets (scope, secret, created_at) VALUES ($1, $2, $3) ON CONFLICT (scope) DO NOTHING",
      [scope, secret, now],
    );
    return (await this.getSecret(scope))!;
  }

  async createTopic(t: Topic): Promise<Topic> {
    await this.pool.query(
      "INSERT INTO sns_topics (arn, name, attributes, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
      [t.arn, t.name, JSON.stringify(t.attributes), t.createdAt],
    );
    return toTopic((await rows(this.pool, "SELECT * FROM sns_topics WHERE name = $1", [t.name]))[0]!);
  }

  async getTopic(arn: string): Promise<Topic | undefined> {
    const [r] = await rows(this.pool, "SELECT * FROM sns_topics WHERE arn = $1", [arn]);
    return r ? toTopic(r) : undefined;
  }

  async listTopics(): Promise<Topic[]> {
    return (await rows(this.pool, `SELECT * FROM sns_topics ORDER BY name COLLATE "C"`)).map(toTopic);
  }

  async deleteTopic(arn: string): Promise<boolean> {
    return tx(this.pool, async (c) => {
      await c.query("DELETE FROM sns_subscriptions WHERE topic_arn = $1", [arn]);
      return ((await c.query("DELETE FROM sns_topics WHERE arn = $1", [arn])).rowCount ?? 0) > 0;
    });
  }

  async addSubscription(s: Subscription): Promise<Subscription> {
    await this.pool.query(
      `INSERT INTO sns_subscriptions (arn, topic_arn, protocol, endpoint, token, status, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (topic_arn, protocol, endpoint) DO NOTHING`,
      [s.arn, s.topicArn, s.protocol, s.endpoint, s.token, s.status, s.createdAt],
    );
    const [r] = await rows(
      this.pool,
      "SELECT * FROM sns_subscriptions WHERE topic_arn = $1 AND protocol = $2 AND endpoint = $3",
      [s.topicArn, s.protocol, s.endpoint],
    );
    return toSubscription(r!);
  }

  async getSubscription(arn: string): Promise<Subscription | undefined> {
    const [r] = await rows(this.pool, "SELECT * FROM sns_subscriptions WHERE arn = $1", [arn]);
    return r ? toSubscription(r) : undefined;
  }

  async listSubscriptions(topicArn?: string): Promise<Subscription[]> {
    const rs = topicArn
      ? await rows(
          this.pool,
          `SELECT * FROM sns_subscriptions WHERE topic_arn = $1 ORDER BY created_at, arn COLLATE "C"`,
          [topicArn],
        )
      : await rows(this.pool, `SELECT * FROM sns_subscriptions ORDER BY created_at, arn COLLATE "C"`);
    return rs.map(toSubscription);
  }

  async confirmSubscription(topicArn: string, token: string, now: number): Promise<Subscription | undefined> {
    const [r] = await rows(
      this.pool,
      `UPDATE sns_subscriptions SET status = 'Confirmed', confirmed_at = COALESCE(confirmed_at, $1)
         WHERE topic_arn = $2 AND token = $3 RETURNING *`,
      [now, topicArn, token],
    );
    return r ? toSubscription(r) : undefined;
  }

  async deleteSubscription(arn: string): Promise<boolean> {
    return ((await this.pool.query("DELETE FROM sns_subscriptions WHERE arn = $1", [arn])).rowCount ?? 0) > 0;
  }
}
