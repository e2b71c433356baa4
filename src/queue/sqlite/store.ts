import Database from "better-sqlite3";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
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
  type Outcome,
  type OutboxEvent,
  type StateStore,
} from "../types.js";
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
  type QueueTotals,
  type Row,
} from "../rows.js";
import type { ChunkLease, ChunkProgress, PlannedChunk } from "../chunks.js";
import { placeholders, relaxed, statementCache } from "./rows.js";
import { migrate } from "./schema.js";

/** The embedded StateStore: one SQLite file in WAL mode. Every method is one short transaction. */
export class SqliteStateStore implements StateStore {
  /** Shared with the stores of other boxes (autoscale, notify) that keep their tables in the same file. */
  readonly db: Database.Database;
  private readonly q: (sql: string) => Database.Statement;

  constructor(file: string) {
    if (file !== ":memory:") mkdirSync(dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma("journal_mode = WAL");
    // FULL: a 202 reply means the invocation survived a power cut, not only a process crash. The work
    // loop's own transitions relax this (see `relaxed`).
    this.db.pragma("synchronous = FULL");
    this.db.pragma("busy_timeout = 5000");
    this.db.pragma("foreign_keys = ON");
    this.q = statementCache(this.db);
    migrate(this.db);
  }

  async close(): Promise<void> {
    if (this.pendingEnqueues.length) this.flushEnqueues();
    this.db.close();
  }

  // --- models, configs, endpoints: stored as JSON bodies keyed by name ---

  async createModel(m: Model): Promise<void> {
    this.insertNamed("models", "Model", m.name, m, m.createdAt);
  }
  async getModel(name: string): Promise<Model | undefined> {
    return this.getNamed<Model>("models", name);
  }
  async listModels(): Promise<Model[]> {
    return this.listNamed<Model>("models");
  }
  async deleteModel(name: string): Promise<boolean> {
    return this.q("DELETE FROM models WHERE name = ?").run(name).changes > 0;
  }

  async createEndpointConfig(c: EndpointConfig): Promise<void> {
    this.insertNamed("endpoint_configs", "EndpointConfig", c.name, c, c.createdAt);
  }
  async getEndpointConfig(name: string): Promise<EndpointConfig | undefined> {
    return this.getNamed<EndpointConfig>("endpoint_configs", name);
  }
  async listEndpointConfigs(): Promise<EndpointConfig[]> {
    return this.listNamed<EndpointConfig>("endpoint_configs");
  }
  async deleteEndpointConfig(name: string): Promise<boolean> {
    return this.q("DELETE FROM endpoint_configs WHERE name = ?").run(name).changes > 0;
  }

  private insertNamed(table: string, what: string, name: string, body: unknown, createdAt: number): void {
    try {
      this.q(`INSERT INTO ${table} (name, body, created_at) VALUES (?, ?, ?)`).run(
        name,
        JSON.stringify(body),
        createdAt,
      );
    } catch (e) {
      if ((e as { code?: string }).code === "SQLITE_CONSTRAINT_PRIMARYKEY") throw alreadyExists(what, name);
      throw e;
    }
  }
  private getNamed<T>(table: string, name: string): T | undefined {
    const r = this.q(`SELECT body FROM ${table} WHERE name = ?`).get(name) as Row | undefined;
    return r ? (JSON.parse(String(r.body)) as T) : undefined;
  }
  private listNamed<T>(table: string): T[] {
    const rows = this.q(`SELECT body FROM ${table} ORDER BY created_at, name`).all() as Row[];
    return rows.map((r) => JSON.parse(String(r.body)) as T);
  }

  async createEndpoint(e: Endpoint): Promise<void> {
    try {
      this.q(
        `INSERT INTO endpoints (name, created_at, config_name, status, failure_reason, updated_at, deployment, pending)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(e.name, e.createdAt, ...endpointColumns(e));
    } catch (err) {
      if ((err as { code?: string }).code === "SQLITE_CONSTRAINT_PRIMARYKEY")
        throw alreadyExists("Endpoint", e.name);
      throw err;
    }
  }
  async getEndpoint(name: string): Promise<Endpoint | undefined> {
    const r = this.q("SELECT * FROM endpoints WHERE name = ?").get(name) as Row | undefined;
    return r ? toEndpoint(r) : undefined;
  }
  async listEndpoints(): Promise<Endpoint[]> {
    return (this.q("SELECT * FROM endpoints ORDER BY created_at, name").all() as Row[]).map(toEndpoint);
  }
  async updateEndpoint(
    name: string,
    patch: Partial<Omit<Endpoint, "name" | "createdAt">>,
    guard?: EndpointGuard,
  ): Promise<boolean> {
    // Read and write with no await between them: nothing else in this process interleaves.
    const r = this.q("SELECT * FROM endpoints WHERE name = ?").get(name) as Row | undefined;
    if (!r || !endpointGuardHolds(toEndpoint(r), guard)) return false;
    const next = { ...toEndpoint(r), ...patch, updatedAt: patch.updatedAt ?? Date.now() };
    this.q(
      `UPDATE endpoints SET config_name = ?, status = ?, failure_reason = ?, updated_at = ?, deployment = ?,
         pending = ? WHERE name = ?`,
    ).run(...endpointColumns(next), name);
    return true;
  }
  async deleteEndpoint(name: string): Promise<boolean> {
    return this.db.transaction(() => {
      // Its desired counts and placements go with it: a new endpoint of the same name starts afresh.
      this.q("DELETE FROM desired_instances WHERE endpoint = ?").run(name);
      this.q("DELETE FROM placements WHERE endpoint = ?").run(name);
      return this.q("DELETE FROM endpoints WHERE name = ?").run(name).changes > 0;
    })();
  }

  // --- invocations ---

  private readonly insertInvocation = (inv: NewInvocation) =>
    this.q(
      `INSERT INTO invocations (id, endpoint, state, input_location, output_location, failure_location,
           content_type, accept, custom_attributes, request_ttl_s, invocation_timeout_s, max_attempts,
           created_at, expires_at, webhook, principal, notification, input_bytes, job_id, job_index)
         VALUES (@id, @endpoint, 'Queued', @inputLocation, @outputLocation, @failureLocation, @contentType,
           @accept, @customAttributes, @requestTtlSeconds, @invocationTimeoutSeconds, @maxAttempts,
           @createdAt, @expiresAt, @webhook, @principal, @notification, @inputBytes, @jobId, @jobIndex)
         RETURNING *`,
    ).get({
      ...inv,
      contentType: inv.contentType ?? null,
      accept: inv.accept ?? null,
      customAttributes: inv.customAttributes ?? null,
      expiresAt: inv.createdAt + inv.requestTtlSeconds * 1000,
      webhook: inv.webhook ? JSON.stringify(inv.webhook) : null,
      principal: inv.principal ?? null,
      notification: inv.notification ? JSON.stringify(inv.notification) : null,
      inputBytes: inv.inputBytes ?? null,
      jobId: inv.jobId ?? null,
      jobIndex: inv.jobIndex ?? null,
    }) as Row;

  private pendingEnqueues: {
    inv: NewInvocation;
    resolve: (i: Enqueued) => void;
    reject: (e: unknown) => void;
  }[] = [];

  /**
   * Group commit: enqueues that arrive in the same turn of the event loop share one transaction, so one
   * fsync makes them all durable. Each promise resolves only after that commit.
   */
  async enqueue(inv: NewInvocation): Promise<Enqueued> {
    return new Promise((resolve, reject) => {
      this.pendingEnqueues.push({ inv, resolve, reject });
      if (this.pendingEnqueues.length === 1) setImmediate(() => this.flushEnqueues());
    });
  }

  private flushEnqueues(): void {
    const batch = this.pendingEnqueues;
    this.pendingEnqueues = [];
    const results: (Invocation | Error)[] = [];
    const before = new Map<string, QueueTotals>();
    try {
      this.db.transaction(() => {
        for (const endpoint of new Set(batch.map((p) => p.inv.endpoint)))
          before.set(endpoint, this.queueTotals(endpoint));
        for (const { inv } of batch) {
          // A savepoint per row: a duplicate id fails alone, not the whole batch.
          this.db.exec("SAVEPOINT enqueue");
          try {
            results.push(toInvocation(this.insertInvocation(inv)));
            this.db.exec("RELEASE enqueue");
          } catch (e) {
            this.db.exec("ROLLBACK TO enqueue");
            this.db.exec("RELEASE enqueue");
            const duplicate = (e as { code?: string }).code === "SQLITE_CONSTRAINT_UNIQUE";
            results.push(duplicate ? alreadyExists("Invocation", inv.id) : (e as Error));
          }
        }
      })();
    } catch (e) {
      for (const p of batch) p.reject(e);
      return;
    }
    const committed = results.filter((r): r is Invocation => !(r instanceof Error));
    const enqueued = new Map(stackAhead(before, committed).map((e) => [e.id, e]));
    batch.forEach((p, i) => {
      const r = results[i]!;
      if (r instanceof Error) p.reject(r);
      else p.resolve(enqueued.get(r.id)!);
    });
  }

  private queueTotals(endpoint: string): QueueTotals {
    return toQueueTotals(
      this.q(
        "SELECT queued AS n, bytes, unsized FROM queue_totals WHERE endpoint = ?", // kept by triggers (0015)
      ).get(endpoint) as Row,
    );
  }

  async getInvocation(id: string): Promise<Invocation | undefined> {
    const r = this.q("SELECT * FROM invocations WHERE id = ?").get(id) as Row | undefined;
    return r ? toInvocation(r) : undefined;
  }

  async listInvocations(f: InvocationFilter): Promise<Invocation[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (f.endpoint) {
      where.push("endpoint = ?");
      args.push(f.endpoint);
    }
    if (f.state) {
      where.push("state = ?");
      args.push(f.state);
    }
    if (f.principal) {
      where.push("principal = ?");
      args.push(f.principal);
    }
    if (f.beforeSeq !== undefined) {
      where.push("seq < ?");
      args.push(f.beforeSeq);
    }
    const sql = `SELECT * FROM invocations ${where.length ? "WHERE " + where.join(" AND ") : ""}
                 ORDER BY seq DESC LIMIT ?`;
    args.push(Math.min(Math.max(f.limit ?? 100, 1), 1000));
    return (this.q(sql).all(...args) as Row[]).map(toInvocation);
  }

  async queuePosition(id: string): Promise<number | undefined> {
    const r = this.q(
      `SELECT (SELECT COUNT(*) FROM invocations q
                 WHERE q.endpoint = i.endpoint AND q.state = 'Queued' AND q.seq <= i.seq) AS pos
         FROM invocations i WHERE i.id = ? AND i.state = 'Queued'`,
    ).get(id) as Row | undefined;
    return r ? Number(r.pos) : undefined;
  }

  async queueAhead(id: string): Promise<QueueAhead | undefined> {
    const r = this.q(
      `SELECT COUNT(q.seq) + 1 AS pos, COALESCE(SUM(q.input_bytes), 0) AS bytes,
              SUM(q.seq IS NOT NULL AND q.input_bytes IS NULL) AS unsized
         FROM invocations i LEFT JOIN invocations q
           ON q.endpoint = i.endpoint AND q.state = 'Queued' AND q.seq < i.seq
        WHERE i.id = ? AND i.state = 'Queued' GROUP BY i.seq`,
    ).get(id) as Row | undefined;
    return r
      ? { position: Number(r.pos), bytesAhead: Number(r.bytes), unsizedAhead: Number(r.unsized ?? 0) }
      : undefined;
  }

  async throughput(endpoint: string, limit: number): Promise<Throughput> {
    const r = this.q(
      `SELECT COUNT(*) AS n, COALESCE(SUM(input_bytes), 0) AS bytes,
              COALESCE(SUM(finished_at - started_at), 0) AS ms
         FROM (SELECT input_bytes, started_at, finished_at FROM invocations
                WHERE endpoint = ? AND state = 'Succeeded' AND input_bytes IS NOT NULL AND started_at IS NOT NULL
                ORDER BY seq DESC LIMIT ?)`,
    ).get(endpoint, limit) as Row;
    return { invocations: Number(r.n), bytes: Number(r.bytes), seconds: Number(r.ms) / 1000 };
  }

  async backlog(endpoint: string): Promise<BacklogStats> {
    const r = this.q(
      // The queued count from the totals (0015), the oldest from the head of the queue: O(running), not O(queue).
      `SELECT (SELECT queued FROM queue_totals WHERE endpoint = @e) AS queued,
              (SELECT COUNT(*) FROM invocations WHERE endpoint = @e AND state = 'Running') AS running,
              (SELECT created_at FROM invocations WHERE endpoint = @e AND state = 'Queued' ORDER BY seq LIMIT 1) AS oldest`,
    ).get({ e: endpoint }) as Row;
    return { queued: Number(r.queued ?? 0), running: Number(r.running ?? 0), oldestQueuedAt: num(r.oldest) };
  }

  private leaseRows(endpoint: string, owner: string, max: number, leaseMs: number, now: number): Row[] {
    return this.q(
      `UPDATE invocations
             SET state = 'Running', lease_owner = @owner, lease_expires_at = @until, attempts = attempts + 1,
                 started_at = COALESCE(started_at, @now), progress_s = NULL
           WHERE seq IN (SELECT seq FROM invocations
                         -- "+expires_at": not an index term, so the planner walks invocations_queue in
                         -- seq order and stops after @max rows, instead of sorting every queued row.
                         WHERE endpoint = @endpoint AND state = 'Queued' AND +expires_at > @now
                           AND attempts < max_attempts
                         ORDER BY seq LIMIT @max)
           RETURNING *`,
    ).all({ endpoint, owner, max, now, until: now + leaseMs }) as Row[];
  }

  async lease(
    endpoint: string,
    owner: string,
    max: number,
    leaseMs: number,
    now: number,
  ): Promise<Invocation[]> {
    if (max <= 0) return [];
    // A single UPDATE ... RETURNING is atomic in SQLite: two leasers never get the same row.
    return relaxed(this.db, () => this.leaseRows(endpoint, owner, max, leaseMs, now))
      .map(toInvocation)
      .sort((a, b) => a.seq - b.seq);
  }

  async heartbeat(
    id: string,
    owner: string,
    leaseMs: number,
    now: number,
    progress?: { processedSeconds: number; totalSeconds: number },
  ): Promise<HeartbeatResult> {
    const r = relaxed(this.db, () =>
      this.q(
        `UPDATE invocations SET lease_expires_at = ?, progress_s = COALESCE(?, progress_s), total_s = COALESCE(?, total_s)
           WHERE id = ? AND state = 'Running' AND lease_owner = ?
           RETURNING cancel_requested`,
      ).get(now + leaseMs, progress?.processedSeconds ?? null, progress?.totalSeconds ?? null, id, owner),
    ) as Row | undefined;
    if (!r) return "lost";
    return Number(r.cancel_requested) ? "cancel-requested" : "ok";
  }

  private guardSql(guard: Guard, args: unknown[]): string {
    let sql = ` AND state IN (${placeholders(guard.from.length)})`;
    args.push(...guard.from);
    if (guard.owner !== undefined) {
      sql += " AND lease_owner = ?";
      args.push(guard.owner);
    }
    return sql;
  }

  async requeue(id: string, guard: Guard): Promise<boolean> {
    const args: unknown[] = [id];
    const sql =
      "UPDATE invocations SET state = 'Queued', lease_owner = NULL, lease_expires_at = NULL WHERE id = ?" +
      this.guardSql(guard, args);
    return this.q(sql).run(...args).changes > 0;
  }

  private finishRow(id: string, outcome: Outcome, guard: Guard, now: number): Invocation | undefined {
    const args: unknown[] = [
      outcome.state,
      now,
      outcome.error?.code ?? null,
      outcome.error?.message ?? null,
      outcome.modelTimeMs ?? null,
      id,
    ];
    const sql =
      `UPDATE invocations SET state = ?, finished_at = ?, error_code = ?, error_message = ?, model_time_ms = ?,
           lease_owner = NULL, lease_expires_at = NULL WHERE id = ?` + this.guardSql(guard, args);
    const row = this.q(sql + " RETURNING *").get(...args) as Row | undefined;
    if (!row) return undefined;
    this.q("DELETE FROM invocation_checkpoints WHERE invocation_id = ?").run(id);
    this.q("DELETE FROM invocation_chunks WHERE invocation_id = ?").run(id);
    // The terminal event is committed with the state change (the outbox), so a crash cannot lose it; its
    // payload is the row, as on PostgreSQL.
    this.q("INSERT INTO outbox (invocation_id, type, payload, created_at) VALUES (?, ?, ?, ?)").run(
      id,
      "invocation.completed",
      JSON.stringify(row),
      now,
    );
    return toInvocation(row);
  }

  async finish(id: string, outcome: Outcome, guard: Guard, now: number): Promise<Invocation | undefined> {
    return relaxed(this.db, () => this.db.transaction(() => this.finishRow(id, outcome, guard, now))());
  }

  async saveCheckpoints(id: string, owner: string, checkpoints: Checkpoint[]): Promise<boolean> {
    return this.db.transaction(() => {
      const held = this.q(
        "SELECT 1 FROM invocations WHERE id = ? AND state = 'Running' AND lease_owner = ?",
      ).get(id, owner);
      if (!held) return false;
      const insert = this.q(
        "INSERT INTO invocation_checkpoints (invocation_id, key, data) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
      );
      for (const c of checkpoints) insert.run(id, c.key, JSON.stringify(c.data));
      return true;
    })();
  }

  async listCheckpoints(id: string): Promise<Checkpoint[]> {
    const rs = this.q(
      "SELECT key, data FROM invocation_checkpoints WHERE invocation_id = ? ORDER BY key",
    ).all(id) as Row[];
    return rs.map((r) => ({ key: Number(r.key), data: JSON.parse(String(r.data)) as unknown }));
  }

  // --- chunks of long invocations (src/queue/chunks.ts) ---

  async saveChunkPlan(id: string, owner: string, variant: string, chunks: PlannedChunk[]): Promise<boolean> {
    return this.db.transaction(() => {
      const parent = this.q(
        "SELECT endpoint, seq FROM invocations WHERE id = ? AND state = 'Running' AND lease_owner = ?",
      ).get(id, owner) as Row | undefined;
      if (!parent) return false;
      // A stored plan is kept whole.
      if (this.q("SELECT 1 FROM invocation_chunks WHERE invocation_id = ? LIMIT 1").get(id)) return true;
      const insert = this.q(
        `INSERT INTO invocation_chunks (invocation_id, idx, endpoint, variant, parent_seq, data, speech_s)
           VALUES (?, ?, ?, ?, ?, ?, ?)`,
      );
      for (const c of chunks)
        insert.run(id, c.idx, parent.endpoint, variant, parent.seq, JSON.stringify(c.data), c.speechSeconds);
      return true;
    })();
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
    const rs = this.q(
      `UPDATE invocation_chunks
          SET state = 'running', lease_owner = @owner, lease_expires_at = @until, attempts = attempts + 1
        WHERE rowid IN (SELECT c.rowid FROM invocation_chunks c JOIN invocations i ON i.id = c.invocation_id
                         WHERE c.endpoint = @endpoint AND c.variant = @variant AND c.state = 'queued'
                           AND i.state = 'Running' AND i.cancel_requested = 0 AND c.attempts < i.max_attempts
                         ORDER BY c.parent_seq, c.idx LIMIT @max)
        RETURNING invocation_id, idx, data, attempts, parent_seq`,
    ).all({ endpoint, variant, owner, max, until: now + leaseMs }) as Row[];
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
    const r = this.q(
      `UPDATE invocation_chunks SET lease_expires_at = ?
        WHERE invocation_id = ? AND idx = ? AND state = 'running' AND lease_owner = ?
        RETURNING (SELECT cancel_requested FROM invocations WHERE id = invocation_id) AS cancel`,
    ).get(now + leaseMs, id, idx, owner) as Row | undefined;
    if (!r) return "lost";
    return Number(r.cancel) ? "cancel-requested" : "ok";
  }

  async finishChunk(
    id: string,
    idx: number,
    owner: string,
    outcome: { result: unknown } | { error: string },
  ): Promise<boolean> {
    const done = "result" in outcome;
    return (
      this.q(
        `UPDATE invocation_chunks SET state = ?, result = ?, error = ?, lease_owner = NULL, lease_expires_at = NULL
          WHERE invocation_id = ? AND idx = ? AND state = 'running' AND lease_owner = ?`,
      ).run(
        done ? "done" : "failed",
        done ? JSON.stringify(outcome.result) : null,
        done ? null : outcome.error,
        id,
        idx,
        owner,
      ).changes > 0
    );
  }

  async releaseChunks(
    which: { id: string; idx: number; owner: string } | { lapsedBefore: number },
    error: string,
  ): Promise<string[]> {
    const [where, args] =
      "lapsedBefore" in which
        ? ["lease_expires_at <= ?", [which.lapsedBefore]]
        : ["invocation_id = ? AND idx = ? AND lease_owner = ?", [which.id, which.idx, which.owner]];
    const retry = "attempts < (SELECT max_attempts FROM invocations WHERE id = invocation_id)";
    const rs = this.q(
      `UPDATE invocation_chunks
          SET state = CASE WHEN ${retry} THEN 'queued' ELSE 'failed' END,
              error = CASE WHEN ${retry} THEN NULL ELSE ? END,
              lease_owner = NULL, lease_expires_at = NULL
        WHERE state = 'running' AND ${where}
        RETURNING endpoint, state`,
    ).all(error, ...args) as Row[];
    return rs.filter((r) => r.state === "queued").map((r) => String(r.endpoint));
  }

  async chunkProgress(id: string): Promise<ChunkProgress | undefined> {
    const r = this.q(
      `SELECT COUNT(*) AS n, SUM(state = 'done') AS done, COALESCE(SUM(speech_s), 0) AS speech,
              COALESCE(SUM(CASE WHEN state = 'done' THEN speech_s ELSE 0 END), 0) AS done_s,
              (SELECT error FROM invocation_chunks WHERE invocation_id = ? AND state = 'failed' ORDER BY idx LIMIT 1) AS failed
         FROM invocation_chunks WHERE invocation_id = ?`,
    ).get(id, id) as Row;
    return toChunkProgress(r);
  }

  async chunkResults(id: string): Promise<{ idx: number; data: unknown; result: unknown }[]> {
    const rs = this.q(
      "SELECT idx, data, result FROM invocation_chunks WHERE invocation_id = ? AND state = 'done' ORDER BY idx",
    ).all(id) as Row[];
    return rs.map((r) => ({
      idx: Number(r.idx),
      data: JSON.parse(String(r.data)) as unknown,
      result: JSON.parse(String(r.result)) as unknown,
    }));
  }

  async requestCancel(id: string): Promise<boolean> {
    return (
      this.q("UPDATE invocations SET cancel_requested = 1 WHERE id = ? AND state = 'Running'").run(id)
        .changes > 0
    );
  }

  async findExpiredQueued(now: number, limit: number): Promise<Invocation[]> {
    return (
      this.q("SELECT * FROM invocations WHERE state = 'Queued' AND expires_at <= ? ORDER BY seq LIMIT ?").all(
        now,
        limit,
      ) as Row[]
    ).map(toInvocation);
  }

  async findLapsedLeases(now: number, limit: number): Promise<Invocation[]> {
    return (
      this.q(
        "SELECT * FROM invocations WHERE state = 'Running' AND lease_expires_at <= ? ORDER BY seq LIMIT ?",
      ).all(now, limit) as Row[]
    ).map(toInvocation);
  }

  async findStranded(limit: number): Promise<Invocation[]> {
    return (
      this.q(
        `SELECT * FROM invocations i WHERE state IN ('Queued', 'Running')
           AND NOT EXISTS (SELECT 1 FROM endpoints e WHERE e.name = i.endpoint) ORDER BY seq LIMIT ?`,
      ).all(limit) as Row[]
    ).map(toInvocation);
  }

  // --- multi-file jobs ---

  async createJob(job: Omit<Job, "seq">, files: NewInvocation[]): Promise<{ job: Job; files: Invocation[] }> {
    try {
      return this.db.transaction(() => {
        const row = this.q(
          `INSERT INTO jobs (id, endpoint, principal, names, created_at) VALUES (?, ?, ?, ?, ?) RETURNING *`,
        ).get(job.id, job.endpoint, job.principal ?? null, JSON.stringify(job.names), job.createdAt) as Row;
        return { job: toJob(row), files: files.map((f) => toInvocation(this.insertInvocation(f))) };
      })();
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === "SQLITE_CONSTRAINT_UNIQUE" || code === "SQLITE_CONSTRAINT_PRIMARYKEY")
        throw alreadyExists("Job", job.id);
      throw e;
    }
  }

  async getJob(id: string): Promise<Job | undefined> {
    const r = this.q("SELECT * FROM jobs WHERE id = ?").get(id) as Row | undefined;
    return r ? toJob(r) : undefined;
  }

  async listJobs(f: JobFilter): Promise<Job[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (f.principal !== undefined) {
      where.push("principal = ?");
      args.push(f.principal);
    }
    if (f.beforeSeq !== undefined) {
      where.push("seq < ?");
      args.push(f.beforeSeq);
    }
    args.push(Math.min(Math.max(f.limit ?? 100, 1), 1000));
    const sql = `SELECT * FROM jobs ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY seq DESC LIMIT ?`;
    return (this.q(sql).all(...args) as Row[]).map(toJob);
  }

  async jobFiles(id: string): Promise<Invocation[]> {
    return (this.q("SELECT * FROM invocations WHERE job_id = ? ORDER BY job_index").all(id) as Row[]).map(
      toInvocation,
    );
  }

  async jobCounts(ids: string[]): Promise<Map<string, StateCounts>> {
    const out = new Map<string, StateCounts>();
    if (!ids.length) return out;
    const rs = this.q(
      `SELECT job_id, state, COUNT(*) AS n FROM invocations WHERE job_id IN (${placeholders(ids.length)})
         GROUP BY job_id, state`,
    ).all(...ids) as Row[];
    for (const r of rs) {
      const counts = out.get(String(r.job_id)) ?? {};
      counts[r.state as InvocationState] = Number(r.n);
      out.set(String(r.job_id), counts);
    }
    return out;
  }

  // --- instances ---

  async upsertInstance(i: InstanceRecord): Promise<void> {
    this.q(
      `INSERT INTO instances (id, endpoint, variant, host, node, state, port, pid, reason, started_at, in_service_at, ended_at,
           deployment, placement, address)
         VALUES (@id, @endpoint, @variant, @host, @node, @state, @port, @pid, @reason, @startedAt, @inServiceAt, @endedAt,
           @deployment, @placement, @address)
         ON CONFLICT (id) DO UPDATE SET state = excluded.state, port = excluded.port, pid = excluded.pid,
           reason = excluded.reason, in_service_at = excluded.in_service_at, ended_at = excluded.ended_at,
           address = excluded.address`,
    ).run({
      ...i,
      node: i.node ?? null,
      deployment: i.deployment ?? null,
      placement: i.placement ?? null,
      address: i.address ?? null,
      port: i.port ?? null,
      pid: i.pid ?? null,
      reason: i.reason ?? null,
      inServiceAt: i.inServiceAt ?? null,
      endedAt: i.endedAt ?? null,
    });
  }

  async listInstances(filter: { endpoint?: string; live?: boolean }): Promise<InstanceRecord[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.endpoint) {
      where.push("endpoint = ?");
      args.push(filter.endpoint);
    }
    if (filter.live) where.push("state IN ('Pending', 'InService', 'Draining')");
    const sql = `SELECT * FROM instances ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY started_at`;
    return (this.q(sql).all(...args) as Row[]).map(toInstance);
  }

  // --- the cluster ---

  async upsertHost(h: HostRecord): Promise<void> {
    this.q(
      `INSERT INTO hosts (id, name, address, token, slots, cpus, gpus, models, serves, state, started_at, heartbeat_at)
         VALUES (@id, @name, @address, @token, @slots, @cpus, @gpus, @models, @serves, @state, @startedAt, @heartbeatAt)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, address = excluded.address, token = excluded.token,
           slots = excluded.slots,
           cpus = excluded.cpus, gpus = excluded.gpus, models = excluded.models, serves = excluded.serves, state = excluded.state,
           heartbeat_at = excluded.heartbeat_at`,
    ).run({
      ...h,
      address: h.address ?? null,
      token: h.token ?? null,
      serves: h.serves ?? null,
      models: JSON.stringify(h.models),
    });
  }

  async listHosts(): Promise<HostRecord[]> {
    return (this.q("SELECT * FROM hosts ORDER BY started_at, id").all() as Row[]).map(toHost);
  }

  async markHostGone(id: string, heartbeatBefore: number): Promise<boolean> {
    return (
      this.q("UPDATE hosts SET state = 'Gone' WHERE id = ? AND heartbeat_at < ? AND state <> 'Gone'").run(
        id,
        heartbeatBefore,
      ).changes > 0
    );
  }

  async setDesired(endpoint: string, variant: string, desired: number, now: number): Promise<void> {
    this.q(
      `INSERT INTO desired_instances (endpoint, variant, desired, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (endpoint, variant) DO UPDATE SET desired = excluded.desired, updated_at = excluded.updated_at`,
    ).run(endpoint, variant, desired, now);
  }

  async listDesired(
    endpoint?: string,
  ): Promise<{ endpoint: string; variant: string; desired: number; updatedAt: number }[]> {
    const rs = (
      endpoint === undefined
        ? this.q("SELECT * FROM desired_instances ORDER BY endpoint, variant").all()
        : this.q("SELECT * FROM desired_instances WHERE endpoint = ? ORDER BY variant").all(endpoint)
    ) as Row[];
    return rs.map((r) => ({
      endpoint: String(r.endpoint),
      variant: String(r.variant),
      desired: Number(r.desired),
      updatedAt: Number(r.updated_at),
    }));
  }

  async applyPlacements(change: { add: Placement[]; remove: string[] }): Promise<void> {
    this.db.transaction(() => {
      for (const id of change.remove) this.q("DELETE FROM placements WHERE id = ?").run(id);
      for (const p of change.add)
        this.q(
          `INSERT INTO placements (id, endpoint, deployment, variant, host, created_at)
             VALUES (@id, @endpoint, @deployment, @variant, @host, @createdAt)
             ON CONFLICT (id) DO NOTHING`,
        ).run(p);
    })();
  }

  async listPlacements(filter: { host?: string; endpoint?: string }): Promise<Placement[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.host !== undefined) {
      where.push("host = ?");
      args.push(filter.host);
    }
    if (filter.endpoint !== undefined) {
      where.push("endpoint = ?");
      args.push(filter.endpoint);
    }
    const sql = `SELECT * FROM placements ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY created_at, id`;
    return (this.q(sql).all(...args) as Row[]).map(toPlacement);
  }

  // --- outbox ---

  async pendingEvents(limit: number): Promise<OutboxEvent[]> {
    const rows = this.q("SELECT * FROM outbox WHERE delivered_at IS NULL ORDER BY id LIMIT ?").all(
      limit,
    ) as Row[];
    return rows.map(toOutboxEvent);
  }

  async markEventsDelivered(ids: number[]): Promise<void> {
    if (!ids.length) return;
    relaxed(this.db, () =>
      this.q(`UPDATE outbox SET delivered_at = ? WHERE id IN (${placeholders(ids.length)})`).run(
        Date.now(),
        ...ids,
      ),
    );
  }
}
