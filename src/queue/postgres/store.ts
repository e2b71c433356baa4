import type pg from "pg";
import type {
  Endpoint,
  EndpointConfig,
  HostRecord,
  InstanceRecord,
  Invocation,
  InvocationState,
  Job,
  Model,
  Placement,
} from "../../core/types.js";
import { alreadyExists } from "../../errors.js";
import {
  endpointColumns,
  num,
  toEndpoint,
  toHost,
  toInstance,
  toInvocation,
  toJob,
  toOutboxEvent,
  toChunkLease,
  toChunkProgress,
  toPlacement,
  stackAhead,
  toQueueTotals,
} from "../rows.js";
import {
  endpointGuardHolds,
  type BacklogStats,
  type Checkpoint,
  type QueueAhead,
  type Enqueued,
  type Throughput,
  type EndpointGuard,
  type Guard,
  type HeartbeatResult,
  type InvocationFilter,
  type JobFilter,
  type NewInvocation,
  type StateCounts,
  type OutboxEvent,
  type Outcome,
  type StateStore,
} from "../types.js";
import type { ChunkLease, ChunkProgress, PlannedChunk } from "../chunks.js";
import { isUniqueViolation, params, prepared, rows, tx } from "./db.js";

/** The NOTIFY channels of the wake-ups (coordinator.ts listens). */
export const CHANNEL = {
  queued: "kikitori_queued",
  finished: "kikitori_finished",
  placement: "kikitori_placement",
} as const;

/** Columns of one new invocation, in INSERT order. */
const INSERT_COLUMNS = [
  "id",
  "endpoint",
  "state",
  "input_location",
  "output_location",
  "failure_location",
  "content_type",
  "accept",
  "custom_attributes",
  "request_ttl_s",
  "invocation_timeout_s",
  "max_attempts",
  "created_at",
  "expires_at",
  "webhook",
  "principal",
  "notification",
  "input_bytes",
  "job_id",
  "job_index",
];
const insertValues = (inv: NewInvocation): unknown[] => [
  inv.id,
  inv.endpoint,
  "Queued",
  inv.inputLocation,
  inv.outputLocation,
  inv.failureLocation,
  inv.contentType ?? null,
  inv.accept ?? null,
  inv.customAttributes ?? null,
  inv.requestTtlSeconds,
  inv.invocationTimeoutSeconds,
  inv.maxAttempts,
  inv.createdAt,
  inv.createdAt + inv.requestTtlSeconds * 1000,
  inv.webhook ? JSON.stringify(inv.webhook) : null,
  inv.principal ?? null,
  inv.notification ? JSON.stringify(inv.notification) : null,
  inv.inputBytes ?? null,
  inv.jobId ?? null,
  inv.jobIndex ?? null,
];
/** PostgreSQL takes at most 65535 parameters in one statement. */
const MAX_BATCH = Math.floor(65535 / INSERT_COLUMNS.length);

interface PendingEnqueue {
  inv: NewInvocation;
  resolve: (i: Enqueued) => void;
  reject: (e: unknown) => void;
}

/**
 * The StateStore on PostgreSQL. Leases take rows with `FOR UPDATE SKIP LOCKED`, so any number of
 * processes lease from one queue without waiting on each other or getting the same row; state changes that
 * make work leasable or end it send a NOTIFY in the same transaction (delivered on commit).
 */
export class PgStateStore implements StateStore {
  private pending: PendingEnqueue[] = [];
  private flushing = new Set<Promise<void>>();

  constructor(private readonly pool: pg.Pool) {}

  async close(): Promise<void> {
    while (this.pending.length || this.flushing.size) {
      if (this.pending.length) this.flush();
      await Promise.all(this.flushing);
    }
  }

  // --- models, configs, endpoints: JSON bodies keyed by name ---

  private async insertNamed(table: string, what: string, name: string, body: unknown, createdAt: number) {
    try {
      await this.pool.query(`INSERT INTO ${table} (name, body, created_at) VALUES ($1, $2, $3)`, [
        name,
        JSON.stringify(body),
        createdAt,
      ]);
    } catch (e) {
      if (isUniqueViolation(e)) throw alreadyExists(what, name);
      throw e;
    }
  }
  private async getNamed<T>(table: string, name: string): Promise<T | undefined> {
    const [r] = await rows(this.pool, `SELECT body FROM ${table} WHERE name = $1`, [name]);
    return r ? (JSON.parse(String(r.body)) as T) : undefined;
  }
  private async listNamed<T>(table: string): Promise<T[]> {
    const rs = await rows(this.pool, `SELECT body FROM ${table} ORDER BY created_at, name COLLATE "C"`);
    return rs.map((r) => JSON.parse(String(r.body)) as T);
  }
  private async deleteNamed(table: string, name: string): Promise<boolean> {
    return ((await this.pool.query(`DELETE FROM ${table} WHERE name = $1`, [name])).rowCount ?? 0) > 0;
  }

  createModel = (m: Model) => this.insertNamed("models", "Model", m.name, m, m.createdAt);
  getModel = (name: string) => this.getNamed<Model>("models", name);
  listModels = () => this.listNamed<Model>("models");
  deleteModel = (name: string) => this.deleteNamed("models", name);

  createEndpointConfig = (c: EndpointConfig) =>
    this.insertNamed("endpoint_configs", "EndpointConfig", c.name, c, c.createdAt);
  getEndpointConfig = (name: string) => this.getNamed<EndpointConfig>("endpoint_configs", name);
  listEndpointConfigs = () => this.listNamed<EndpointConfig>("endpoint_configs");
  deleteEndpointConfig = (name: string) => this.deleteNamed("endpoint_configs", name);

  async createEndpoint(e: Endpoint): Promise<void> {
    try {
      await this.pool.query(
        `INSERT INTO endpoints (name, created_at, config_name, status, failure_reason, updated_at, deployment, pending)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [e.name, e.createdAt, ...endpointColumns(e)],
      );
    } catch (err) {
      if (isUniqueViolation(err)) throw alreadyExists("Endpoint", e.name);
      throw err;
    }
  }
  async getEndpoint(name: string): Promise<Endpoint | undefined> {
    const [r] = await prepared(this.pool, "SELECT * FROM endpoints WHERE name = $1", [name]);
    return r ? toEndpoint(r) : undefined;
  }
  async listEndpoints(): Promise<Endpoint[]> {
    return (await rows(this.pool, `SELECT * FROM endpoints ORDER BY created_at, name COLLATE "C"`)).map(
      toEndpoint,
    );
  }
  async updateEndpoint(
    name: string,
    patch: Partial<Omit<Endpoint, "name" | "createdAt">>,
    guard?: EndpointGuard,
  ): Promise<boolean> {
    return tx(this.pool, async (c) => {
      const [r] = await rows(c, "SELECT * FROM endpoints WHERE name = $1 FOR UPDATE", [name]);
      if (!r || !endpointGuardHolds(toEndpoint(r), guard)) return false;
      const next = { ...toEndpoint(r), ...patch, updatedAt: patch.updatedAt ?? Date.now() };
      await c.query(
        `UPDATE endpoints SET config_name = $1, status = $2, failure_reason = $3, updated_at = $4,
           deployment = $5, pending = $6 WHERE name = $7`,
        [...endpointColumns(next), name],
      );
      return true;
    });
  }
  deleteEndpoint(name: string): Promise<boolean> {
    return tx(this.pool, async (c) => {
      // Its desired counts and placements go with it: a new endpoint of the same name starts afresh.
      await c.query("DELETE FROM desired_instances WHERE endpoint = $1", [name]);
      await c.query("DELETE FROM placements WHERE endpoint = $1", [name]);
      return ((await c.query("DELETE FROM endpoints WHERE name = $1", [name])).rowCount ?? 0) > 0;
    });
  }

  // --- invocations ---

  /**
   * Group commit: one INSERT (one commit, one NOTIFY per endpoint) at a time takes every enqueue that
   * arrived while the previous one was committing, so batches grow with the load instead of the commits.
   * Each promise resolves only after its commit; a duplicate id fails alone.
   */
  enqueue(inv: NewInvocation): Promise<Enqueued> {
    return new Promise((resolve, reject) => {
      this.pending.push({ inv, resolve, reject });
      if (this.pending.length === 1 && !this.flushing.size) setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    const batch = this.pending.splice(0, MAX_BATCH);
    if (!batch.length) return;
    const p = this.insertBatch(batch).finally(() => {
      this.flushing.delete(p);
      if (this.pending.length) this.flush();
    });
    this.flushing.add(p);
  }

  /** One INSERT per endpoint (each locks only its own queue's totals: no lock order to get wrong). */
  private async insertBatch(batch: PendingEnqueue[]): Promise<void> {
    const byEndpoint = new Map<string, PendingEnqueue[]>();
    for (const p of batch) {
      const group = byEndpoint.get(p.inv.endpoint);
      if (group) group.push(p);
      else byEndpoint.set(p.inv.endpoint, [p]);
    }
    for (const [endpoint, group] of byEndpoint) await this.insertEndpointBatch(endpoint, group);
  }

  private async insertEndpointBatch(endpoint: string, batch: PendingEnqueue[]): Promise<void> {
    const first = new Map<string, PendingEnqueue>();
    const values: unknown[] = [];
    const tuples: string[] = [];
    for (const p of batch) {
      if (first.has(p.inv.id)) continue;
      first.set(p.inv.id, p);
      tuples.push(`(${params(INSERT_COLUMNS.length, values.length + 1)})`);
      values.push(...insertValues(p.inv));
    }
    values.push(endpoint);
    let inserted: Map<string, Enqueued>;
    try {
      // `before` locks the endpoint's queue totals (migration 0015): the newest committed figures, which
      // no other commit can change before this one's trigger adds the new rows.
      const rs = await rows(
        this.pool,
        `WITH before AS (
           SELECT queued AS n, bytes, unsized FROM queue_totals WHERE endpoint = $${values.length} FOR UPDATE),
         ins AS (
           INSERT INTO invocations (${INSERT_COLUMNS.join(", ")}) VALUES ${tuples.join(", ")}
           ON CONFLICT (id) DO NOTHING RETURNING *),
         wake AS (SELECT pg_notify('${CHANNEL.queued}', $${values.length}) WHERE EXISTS (SELECT 1 FROM ins))
         SELECT ins.*, (SELECT count(*) FROM wake) AS woken,
                b.n AS before_n, b.bytes AS before_bytes, b.unsized AS before_unsized
           FROM ins LEFT JOIN before b ON true`,
        values,
      );
      const before = new Map([
        [
          endpoint,
          toQueueTotals({ n: rs[0]?.before_n, bytes: rs[0]?.before_bytes, unsized: rs[0]?.before_unsized }),
        ],
      ]);
      inserted = new Map(stackAhead(before, rs.map(toInvocation)).map((e) => [e.id, e]));
    } catch (e) {
      for (const p of batch) p.reject(e);
      return;
    }
    for (const p of batch) {
      const r = first.get(p.inv.id) === p ? inserted.get(p.inv.id) : undefined;
      if (r) p.resolve(r);
      else p.reject(alreadyExists("Invocation", p.inv.id));
    }
  }

  async getInvocation(id: string): Promise<Invocation | undefined> {
    const [r] = await prepared(this.pool, "SELECT * FROM invocations WHERE id = $1", [id]);
    return r ? toInvocation(r) : undefined;
  }

  async listInvocations(f: InvocationFilter): Promise<Invocation[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    const add = (cond: string, v: unknown) => {
      args.push(v);
      where.push(cond.replace("?", `$${args.length}`));
    };
    if (f.endpoint) add("endpoint = ?", f.endpoint);
    if (f.state) add("state = ?", f.state);
    if (f.principal) add("principal = ?", f.principal);
    if (f.beforeSeq !== undefined) add("seq < ?", f.beforeSeq);
    args.push(Math.min(Math.max(f.limit ?? 100, 1), 1000));
    const sql = `SELECT * FROM invocations ${where.length ? "WHERE " + where.join(" AND ") : ""}
                 ORDER BY seq DESC LIMIT $${args.length}`;
    return (await rows(this.pool, sql, args)).map(toInvocation);
  }

  async queuePosition(id: string): Promise<number | undefined> {
    const [r] = await rows(
      this.pool,
      `SELECT (SELECT count(*) FROM invocations q
                 WHERE q.endpoint = i.endpoint AND q.state = 'Queued' AND q.seq <= i.seq) AS pos
         FROM invocations i WHERE i.id = $1 AND i.state = 'Queued'`,
      [id],
    );
    return r ? Number(r.pos) : undefined;
  }

  async queueAhead(id: string): Promise<QueueAhead | undefined> {
    const [r] = await rows(
      this.pool,
      `SELECT count(q.seq) + 1 AS pos, COALESCE(sum(q.input_bytes), 0) AS bytes,
              count(q.seq) FILTER (WHERE q.seq IS NOT NULL AND q.input_bytes IS NULL) AS unsized
         FROM invocations i LEFT JOIN invocations q
           ON q.endpoint = i.endpoint AND q.state = 'Queued' AND q.seq < i.seq
        WHERE i.id = $1 AND i.state = 'Queued' GROUP BY i.seq`,
      [id],
    );
    return r
      ? { position: Number(r.pos), bytesAhead: Number(r.bytes), unsizedAhead: Number(r.unsized) }
      : undefined;
  }

  async throughput(endpoint: string, limit: number): Promise<Throughput> {
    const [r] = await rows(
      this.pool,
      `SELECT count(*) AS n, COALESCE(sum(input_bytes), 0) AS bytes,
              COALESCE(sum(finished_at - started_at), 0) AS ms
         FROM (SELECT input_bytes, started_at, finished_at FROM invocations
                WHERE endpoint = $1 AND state = 'Succeeded' AND input_bytes IS NOT NULL AND started_at IS NOT NULL
                ORDER BY seq DESC LIMIT $2) recent`,
      [endpoint, limit],
    );
    return { invocations: Number(r!.n), bytes: Number(r!.bytes), seconds: Number(r!.ms) / 1000 };
  }

  async backlog(endpoint: string): Promise<BacklogStats> {
    const [r] = await prepared(
      this.pool,
      // The queued count from the totals (0015), the oldest from the head of the queue: O(running), not O(queue).
      `SELECT (SELECT queued FROM queue_totals WHERE endpoint = $1) AS queued,
              (SELECT count(*) FROM invocations WHERE endpoint = $1 AND state = 'Running') AS running,
              (SELECT created_at FROM invocations WHERE endpoint = $1 AND state = 'Queued' ORDER BY seq LIMIT 1) AS oldest`,
      [endpoint],
    );
    return { queued: Number(r!.queued ?? 0), running: Number(r!.running), oldestQueuedAt: num(r!.oldest) };
  }

  async lease(
    endpoint: string,
    owner: string,
    max: number,
    leaseMs: number,
    now: number,
  ): Promise<Invocation[]> {
    if (max <= 0) return [];
    // SKIP LOCKED: rows another leaser is taking right now are passed over, not waited for.
    const rs = await prepared(
      this.pool,
      `WITH picked AS (
         SELECT seq FROM invocations
          WHERE endpoint = $1 AND state = 'Queued' AND expires_at > $4 AND attempts < max_attempts
          ORDER BY seq LIMIT $3 FOR UPDATE SKIP LOCKED)
       UPDATE invocations i
          SET state = 'Running', lease_owner = $2, lease_expires_at = $5, attempts = i.attempts + 1,
              started_at = COALESCE(i.started_at, $4), progress_s = NULL
         FROM picked WHERE i.seq = picked.seq
        RETURNING i.*`,
      [endpoint, owner, max, now, now + leaseMs],
    );
    return rs.map(toInvocation).sort((a, b) => a.seq - b.seq);
  }

  async heartbeat(
    id: string,
    owner: string,
    leaseMs: number,
    now: number,
    progress?: { processedSeconds: number; totalSeconds: number },
  ): Promise<HeartbeatResult> {
    const [r] = await prepared(
      this.pool,
      `UPDATE invocations SET lease_expires_at = $1, progress_s = COALESCE($2, progress_s), total_s = COALESCE($3, total_s)
         WHERE id = $4 AND state = 'Running' AND lease_owner = $5
         RETURNING cancel_requested`,
      [now + leaseMs, progress?.processedSeconds ?? null, progress?.totalSeconds ?? null, id, owner],
    );
    if (!r) return "lost";
    return r.cancel_requested ? "cancel-requested" : "ok";
  }

  /** ` AND state IN (…) [AND lease_owner = …]`, numbering its parameters after `args`. */
  private guardSql(guard: Guard, args: unknown[]): string {
    const from = params(guard.from.length, args.length + 1);
    args.push(...guard.from);
    let sql = ` AND state IN (${from})`;
    if (guard.owner !== undefined) {
      args.push(guard.owner);
      sql += ` AND lease_owner = $${args.length}`;
    }
    return sql;
  }

  async requeue(id: string, guard: Guard): Promise<boolean> {
    const args: unknown[] = [id];
    const where = this.guardSql(guard, args);
    const rs = await rows(
      this.pool,
      `WITH r AS (
         UPDATE invocations SET state = 'Queued', lease_owner = NULL, lease_expires_at = NULL
          WHERE id = $1${where} RETURNING endpoint)
       SELECT pg_notify('${CHANNEL.queued}', endpoint) FROM r`,
      args,
    );
    return rs.length > 0;
  }

  async finish(id: string, outcome: Outcome, guard: Guard, now: number): Promise<Invocation | undefined> {
    const args: unknown[] = [
      outcome.state,
      now,
      outcome.error?.code ?? null,
      outcome.error?.message ?? null,
      outcome.modelTimeMs ?? null,
      id,
    ];
    const where = this.guardSql(guard, args);
    args.push(CHANNEL.finished);
    // One statement, so one round trip and no transaction held open between them: the state change, its
    // checkpoints and chunks gone, and the terminal event in the outbox (committed with the state change,
    // so a crash cannot lose it; the payload is the row, mapped as every read of it is).
    const [r] = await prepared(
      this.pool,
      `WITH done AS (
         UPDATE invocations SET state = $1, finished_at = $2, error_code = $3, error_message = $4, model_time_ms = $5,
                lease_owner = NULL, lease_expires_at = NULL WHERE id = $6${where} RETURNING *),
       checkpoints AS (DELETE FROM invocation_checkpoints WHERE invocation_id IN (SELECT id FROM done)),
       chunks AS (DELETE FROM invocation_chunks WHERE invocation_id IN (SELECT id FROM done)),
       event AS (INSERT INTO outbox (invocation_id, type, payload, created_at)
                 SELECT id, 'invocation.completed', row_to_json(done)::text, $2 FROM done)
       SELECT done.*, pg_notify($${args.length}, done.id) AS notified FROM done`,
      args,
    );
    return r ? toInvocation(r) : undefined;
  }

  async saveCheckpoints(id: string, owner: string, checkpoints: Checkpoint[]): Promise<boolean> {
    const [r] = await rows(
      this.pool,
      `WITH held AS (SELECT 1 FROM invocations WHERE id = $1 AND state = 'Running' AND lease_owner = $2),
         ins AS (INSERT INTO invocation_checkpoints (invocation_id, key, data)
                 SELECT $1, k, d FROM unnest($3::bigint[], $4::text[]) AS c(k, d) WHERE EXISTS (SELECT 1 FROM held)
                 ON CONFLICT DO NOTHING)
       SELECT EXISTS (SELECT 1 FROM held) AS held`,
      [id, owner, checkpoints.map((c) => c.key), checkpoints.map((c) => JSON.stringify(c.data))],
    );
    return r!.held === true;
  }

  async listCheckpoints(id: string): Promise<Checkpoint[]> {
    const rs = await rows(
      this.pool,
      "SELECT key, data FROM invocation_checkpoints WHERE invocation_id = $1 ORDER BY key",
      [id],
    );
    return rs.map((r) => ({ key: Number(r.key), data: JSON.parse(String(r.data)) as unknown }));
  }

  // --- chunks of long invocations (src/queue/chunks.ts) ---

  async saveChunkPlan(id: string, owner: string, variant: string, chunks: PlannedChunk[]): Promise<boolean> {
    return tx(this.pool, async (c) => {
      // The parent's row lock orders concurrent plans of one invocation; a stored plan is kept whole.
      const [parent] = await rows(
        c,
        "SELECT endpoint, seq FROM invocations WHERE id = $1 AND state = 'Running' AND lease_owner = $2 FOR UPDATE",
        [id, owner],
      );
      if (!parent) return false;
      const [planned] = await rows(c, "SELECT 1 FROM invocation_chunks WHERE invocation_id = $1 LIMIT 1", [
        id,
      ]);
      if (planned || !chunks.length) return true;
      await c.query(
        `INSERT INTO invocation_chunks (invocation_id, idx, endpoint, variant, parent_seq, data, speech_s)
           SELECT $1, i, $2, $3, $4, d, s FROM unnest($5::int[], $6::text[], $7::float8[]) AS c(i, d, s)`,
        [
          id,
          parent.endpoint,
          variant,
          parent.seq,
          chunks.map((ch) => ch.idx),
          chunks.map((ch) => JSON.stringify(ch.data)),
          chunks.map((ch) => ch.speechSeconds),
        ],
      );
      await c.query("SELECT pg_notify($1, $2)", [CHANNEL.queued, parent.endpoint]);
      return true;
    });
  }

  async leaseChunks(
    endpoint: string,
    variant: string,
    owner: string,
    max: number,
    leaseMs: number,
    now: number,
  ): Promise<ChunkLease[]> {
    if (max <= 0) return [];
    // SKIP LOCKED: chunks another instance is taking right now are passed over, not waited for.
    const rs = await rows(
      this.pool,
      `WITH picked AS (
         SELECT c.invocation_id, c.idx FROM invocation_chunks c JOIN invocations i ON i.id = c.invocation_id
          WHERE c.endpoint = $1 AND c.variant = $2 AND c.state = 'queued'
            AND i.state = 'Running' AND NOT i.cancel_requested AND c.attempts < i.max_attempts
          ORDER BY c.parent_seq, c.idx LIMIT $4 FOR UPDATE OF c SKIP LOCKED)
       UPDATE invocation_chunks c
          SET state = 'running', lease_owner = $3, lease_expires_at = $5, attempts = c.attempts + 1
         FROM picked WHERE c.invocation_id = picked.invocation_id AND c.idx = picked.idx
        RETURNING c.invocation_id, c.idx, c.data, c.attempts, c.parent_seq`,
      [endpoint, variant, owner, max, now + leaseMs],
    );
    return rs
      .sort((a, b) => Number(a.parent_seq) - Number(b.parent_seq) || Number(a.idx) - Number(b.idx))
      .map(toChunkLease);
  }

  async heartbeatChunk(
    id: string,
    idx: number,
    owner: string,
    leaseMs: number,
    now: number,
  ): Promise<HeartbeatResult> {
    const [r] = await rows(
      this.pool,
      `UPDATE invocation_chunks c SET lease_expires_at = $1 FROM invocations i
        WHERE c.invocation_id = $2 AND c.idx = $3 AND c.state = 'running' AND c.lease_owner = $4
          AND i.id = c.invocation_id
        RETURNING i.cancel_requested`,
      [now + leaseMs, id, idx, owner],
    );
    if (!r) return "lost";
    return r.cancel_requested ? "cancel-requested" : "ok";
  }

  async finishChunk(
    id: string,
    idx: number,
    owner: string,
    outcome: { result: unknown } | { error: string },
  ): Promise<boolean> {
    const done = "result" in outcome;
    const r = await this.pool.query(
      `UPDATE invocation_chunks SET state = $1, result = $2, error = $3, lease_owner = NULL, lease_expires_at = NULL
        WHERE invocation_id = $4 AND idx = $5 AND state = 'running' AND lease_owner = $6`,
      [
        done ? "done" : "failed",
        done ? JSON.stringify(outcome.result) : null,
        done ? null : outcome.error,
        id,
        idx,
        owner,
      ],
    );
    return (r.rowCount ?? 0) > 0;
  }

  async releaseChunks(
    which: { id: string; idx: number; owner: string } | { lapsedBefore: number },
    error: string,
  ): Promise<string[]> {
    const [where, args] =
      "lapsedBefore" in which
        ? ["c.lease_expires_at <= $2", [which.lapsedBefore]]
        : ["c.invocation_id = $2 AND c.idx = $3 AND c.lease_owner = $4", [which.id, which.idx, which.owner]];
    const rs = await rows(
      this.pool,
      `WITH r AS (
         UPDATE invocation_chunks c
            SET state = CASE WHEN c.attempts < i.max_attempts THEN 'queued' ELSE 'failed' END,
                error = CASE WHEN c.attempts < i.max_attempts THEN NULL ELSE $1 END,
                lease_owner = NULL, lease_expires_at = NULL
           FROM invocations i
          WHERE i.id = c.invocation_id AND c.state = 'running' AND ${where}
          RETURNING c.endpoint, c.state)
       SELECT endpoint, state, CASE WHEN state = 'queued' THEN pg_notify('${CHANNEL.queued}', endpoint) END FROM r`,
      [error, ...args],
    );
    return rs.filter((r) => r.state === "queued").map((r) => String(r.endpoint));
  }

  async chunkProgress(id: string): Promise<ChunkProgress | undefined> {
    const [r] = await rows(
      this.pool,
      `SELECT count(*) AS n, count(*) FILTER (WHERE state = 'done') AS done, COALESCE(sum(speech_s), 0) AS speech,
              COALESCE(sum(speech_s) FILTER (WHERE state = 'done'), 0) AS done_s,
              (SELECT error FROM invocation_chunks WHERE invocation_id = $1 AND state = 'failed' ORDER BY idx LIMIT 1) AS failed
         FROM invocation_chunks WHERE invocation_id = $1`,
      [id],
    );
    return toChunkProgress(r!);
  }

  async chunkResults(id: string): Promise<{ idx: number; data: unknown; result: unknown }[]> {
    const rs = await rows(
      this.pool,
      "SELECT idx, data, result FROM invocation_chunks WHERE invocation_id = $1 AND state = 'done' ORDER BY idx",
      [id],
    );
    return rs.map((r) => ({
      idx: Number(r.idx),
      data: JSON.parse(String(r.data)) as unknown,
      result: JSON.parse(String(r.result)) as unknown,
    }));
  }

  async requestCancel(id: string): Promise<boolean> {
    const r = await this.pool.query(
      "UPDATE invocations SET cancel_requested = TRUE WHERE id = $1 AND state = 'Running'",
      [id],
    );
    return (r.rowCount ?? 0) > 0;
  }

  async findExpiredQueued(now: number, limit: number): Promise<Invocation[]> {
    const rs = await rows(
      this.pool,
      "SELECT * FROM invocations WHERE state = 'Queued' AND expires_at <= $1 ORDER BY seq LIMIT $2",
      [now, limit],
    );
    return rs.map(toInvocation);
  }

  async findLapsedLeases(now: number, limit: number): Promise<Invocation[]> {
    const rs = await rows(
      this.pool,
      "SELECT * FROM invocations WHERE state = 'Running' AND lease_expires_at <= $1 ORDER BY seq LIMIT $2",
      [now, limit],
    );
    return rs.map(toInvocation);
  }

  async findStranded(limit: number): Promise<Invocation[]> {
    const rs = await rows(
      this.pool,
      `SELECT * FROM invocations i WHERE state IN ('Queued', 'Running')
         AND NOT EXISTS (SELECT 1 FROM endpoints e WHERE e.name = i.endpoint) ORDER BY seq LIMIT $1`,
      [limit],
    );
    return rs.map(toInvocation);
  }

  // --- multi-file jobs ---

  async createJob(job: Omit<Job, "seq">, files: NewInvocation[]): Promise<{ job: Job; files: Invocation[] }> {
    try {
      return await tx(this.pool, async (c) => {
        const [row] = await rows(
          c,
          "INSERT INTO jobs (id, endpoint, principal, names, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING *",
          [job.id, job.endpoint, job.principal ?? null, JSON.stringify(job.names), job.createdAt],
        );
        const inserted: Invocation[] = [];
        for (let i = 0; i < files.length; i += MAX_BATCH) {
          const batch = files.slice(i, i + MAX_BATCH);
          const values: unknown[] = [];
          const tuples = batch.map((f) => {
            const t = `(${params(INSERT_COLUMNS.length, values.length + 1)})`;
            values.push(...insertValues(f));
            return t;
          });
          const rs = await rows(
            c,
            `INSERT INTO invocations (${INSERT_COLUMNS.join(", ")}) VALUES ${tuples.join(", ")} RETURNING *`,
            values,
          );
          inserted.push(...rs.map(toInvocation).sort((a, b) => (a.jobIndex ?? 0) - (b.jobIndex ?? 0)));
        }
        await c.query("SELECT pg_notify($1, $2)", [CHANNEL.queued, job.endpoint]);
        return { job: toJob(row!), files: inserted };
      });
    } catch (e) {
      if (isUniqueViolation(e)) throw alreadyExists("Job", job.id);
      throw e;
    }
  }

  async getJob(id: string): Promise<Job | undefined> {
    const [r] = await rows(this.pool, "SELECT * FROM jobs WHERE id = $1", [id]);
    return r ? toJob(r) : undefined;
  }

  async listJobs(f: JobFilter): Promise<Job[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    const add = (cond: string, v: unknown) => {
      args.push(v);
      where.push(cond.replace("?", `$${args.length}`));
    };
    if (f.principal !== undefined) add("principal = ?", f.principal);
    if (f.beforeSeq !== undefined) add("seq < ?", f.beforeSeq);
    args.push(Math.min(Math.max(f.limit ?? 100, 1), 1000));
    const sql = `SELECT * FROM jobs ${where.length ? "WHERE " + where.join(" AND ") : ""}
                 ORDER BY seq DESC LIMIT $${args.length}`;
    return (await rows(this.pool, sql, args)).map(toJob);
  }

  async jobFiles(id: string): Promise<Invocation[]> {
    return (
      await rows(this.pool, "SELECT * FROM invocations WHERE job_id = $1 ORDER BY job_index", [id])
    ).map(toInvocation);
  }

  async jobCounts(ids: string[]): Promise<Map<string, StateCounts>> {
    const out = new Map<string, StateCounts>();
    if (!ids.length) return out;
    const rs = await rows(
      this.pool,
      "SELECT job_id, state, count(*) AS n FROM invocations WHERE job_id = ANY($1) GROUP BY job_id, state",
      [ids],
    );
    for (const r of rs) {
      const counts = out.get(String(r.job_id)) ?? {};
      counts[r.state as InvocationState] = Number(r.n);
      out.set(String(r.job_id), counts);
    }
    return out;
  }

  // --- instances ---

  async upsertInstance(i: InstanceRecord): Promise<void> {
    await this.pool.query(
      `INSERT INTO instances (id, endpoint, variant, host, state, port, pid, reason, started_at, in_service_at, ended_at, node,
           placement, address, deployment)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
         ON CONFLICT (id) DO UPDATE SET state = excluded.state, port = excluded.port, pid = excluded.pid,
           reason = excluded.reason, in_service_at = excluded.in_service_at, ended_at = excluded.ended_at,
           address = excluded.address`,
      [
        i.id,
        i.endpoint,
        i.variant,
        i.host,
        i.state,
        i.port ?? null,
        i.pid ?? null,
        i.reason ?? null,
        i.startedAt,
        i.inServiceAt ?? null,
        i.endedAt ?? null,
        i.node ?? null,
        i.placement ?? null,
        i.address ?? null,
        i.deployment ?? null,
      ],
    );
  }

  async listInstances(filter: { endpoint?: string; live?: boolean }): Promise<InstanceRecord[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.endpoint) {
      args.push(filter.endpoint);
      where.push(`endpoint = $${args.length}`);
    }
    if (filter.live) where.push("state IN ('Pending', 'InService', 'Draining')");
    const sql = `SELECT * FROM instances ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY started_at, id COLLATE "C"`;
    return (await rows(this.pool, sql, args)).map(toInstance);
  }

  // --- the cluster ---

  async upsertHost(h: HostRecord): Promise<void> {
    await this.pool.query(
      `INSERT INTO hosts (id, name, address, token, slots, cpus, gpus, models, serves, state, started_at, heartbeat_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, address = excluded.address, token = excluded.token,
           slots = excluded.slots,
           cpus = excluded.cpus, gpus = excluded.gpus, models = excluded.models, serves = excluded.serves, state = excluded.state,
           heartbeat_at = excluded.heartbeat_at`,
      [
        h.id,
        h.name,
        h.address ?? null,
        h.token ?? null,
        h.slots,
        h.cpus,
        h.gpus,
        JSON.stringify(h.models),
        h.serves ?? null,
        h.state,
        h.startedAt,
        h.heartbeatAt,
      ],
    );
  }

  async listHosts(): Promise<HostRecord[]> {
    return (await rows(this.pool, `SELECT * FROM hosts ORDER BY started_at, id COLLATE "C"`)).map(toHost);
  }

  async markHostGone(id: string, heartbeatBefore: number): Promise<boolean> {
    const r = await this.pool.query(
      "UPDATE hosts SET state = 'Gone' WHERE id = $1 AND heartbeat_at < $2 AND state <> 'Gone'",
      [id, heartbeatBefore],
    );
    return (r.rowCount ?? 0) > 0;
  }

  async setDesired(endpoint: string, variant: string, desired: number, now: number): Promise<void> {
    await this.pool.query(
      `WITH up AS (
         INSERT INTO desired_instances (endpoint, variant, desired, updated_at) VALUES ($1, $2, $3, $4)
           ON CONFLICT (endpoint, variant) DO UPDATE SET desired = excluded.desired, updated_at = excluded.updated_at
           RETURNING endpoint)
       SELECT pg_notify('${CHANNEL.placement}', '') FROM up`,
      [endpoint, variant, desired, now],
    );
  }

  async listDesired(
    endpoint?: string,
  ): Promise<{ endpoint: string; variant: string; desired: number; updatedAt: number }[]> {
    const rs =
      endpoint === undefined
        ? await rows(
            this.pool,
            `SELECT * FROM desired_instances ORDER BY endpoint COLLATE "C", variant COLLATE "C"`,
          )
        : await rows(
            this.pool,
            `SELECT * FROM desired_instances WHERE endpoint = $1 ORDER BY variant COLLATE "C"`,
            [endpoint],
          );
    return rs.map((r) => ({
      endpoint: String(r.endpoint),
      variant: String(r.variant),
      desired: Number(r.desired),
      updatedAt: Number(r.updated_at),
    }));
  }

  async applyPlacements(change: { add: Placement[]; remove: string[] }): Promise<void> {
    if (!change.add.length && !change.remove.length) return;
    await tx(this.pool, async (c) => {
      const hosts = new Set<string>();
      if (change.remove.length) {
        const gone = await rows(c, "DELETE FROM placements WHERE id = ANY($1::text[]) RETURNING host", [
          change.remove,
        ]);
        for (const r of gone) hosts.add(String(r.host));
      }
      for (const p of change.add) {
        await c.query(
          `INSERT INTO placements (id, endpoint, deployment, variant, host, created_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (id) DO NOTHING`,
          [p.id, p.endpoint, p.deployment, p.variant, p.host, p.createdAt],
        );
        hosts.add(p.host);
      }
      // Delivered on commit: each host whose assignment changed converges at once.
      for (const h of hosts) await c.query("SELECT pg_notify($1, $2)", [CHANNEL.placement, h]);
    });
  }

  async listPlacements(filter: { host?: string; endpoint?: string }): Promise<Placement[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.host !== undefined) {
      args.push(filter.host);
      where.push(`host = $${args.length}`);
    }
    if (filter.endpoint !== undefined) {
      args.push(filter.endpoint);
      where.push(`endpoint = $${args.length}`);
    }
    const sql = `SELECT * FROM placements ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY created_at, id COLLATE "C"`;
    return (await rows(this.pool, sql, args)).map(toPlacement);
  }

  // --- outbox ---

  async pendingEvents(limit: number): Promise<OutboxEvent[]> {
    const rs = await prepared(
      this.pool,
      "SELECT * FROM outbox WHERE delivered_at IS NULL ORDER BY id LIMIT $1",
      [limit],
    );
    return rs.map(toOutboxEvent);
  }

  async markEventsDelivered(ids: number[]): Promise<void> {
    if (!ids.length) return;
    await prepared(this.pool, "UPDATE outbox SET delivered_at = $1 WHERE id = ANY($2::bigint[])", [
      Date.now(),
      ids,
    ]);
  }
}
