import type {
  EndpointConfig,
  Endpoint,
  EndpointStatus,
  InstanceRecord,
  Invocation,
  InvocationError,
  InvocationState,
  HostRecord,
  Job,
  Model,
  Placement,
} from "../core/types.js";
import type { ChunkStore } from "./chunks.js";

export type NewInvocation = Omit<
  Invocation,
  "state" | "attempts" | "seq" | "startedAt" | "finishedAt" | "leaseOwner" | "leaseExpiresAt" | "error"
>;

export interface Outcome {
  state: Extract<InvocationState, "Succeeded" | "Failed" | "Expired" | "Cancelled">;
  error?: InvocationError;
  modelTimeMs?: number;
}

/** Guards a state change so that exactly one writer wins. */
export interface Guard {
  /** The change applies only from these states. */
  from: InvocationState[];
  /** And only while this lease owner holds it (for Running). */
  owner?: string;
}

/** Guards an endpoint change: it applies only while every given condition holds. */
export interface EndpointGuard {
  /** The endpoint is in one of these states. */
  status?: EndpointStatus[];
  /** Its pending deployment (an update in progress) has this id. */
  pending?: string;
}

/** Whether the endpoint passes the guard (both backends check it on the row they hold locked). */
export function endpointGuardHolds(e: Endpoint, guard: EndpointGuard = {}): boolean {
  if (guard.status && !guard.status.includes(e.status)) return false;
  if (guard.pending !== undefined && e.pending?.id !== guard.pending) return false;
  return true;
}

export type HeartbeatResult = "ok" | "lost" | "cancel-requested";

export interface InvocationFilter {
  endpoint?: string;
  state?: InvocationState;
  limit?: number;
  /** Only invocations created by this principal (src/auth: `key/<id>`, `sigv4/<akid>`, `open`). */
  principal?: string;
  /** Newest first; continue from invocations created before this seq. */
  beforeSeq?: number;
}

/** The queued invocations ahead of one, for its estimated finish time. */
/** A committed invocation and the queue ahead of it at its commit. */
export type Enqueued = Invocation & { ahead: QueueAhead };

export interface QueueAhead {
  /** 1-based position among the endpoint's queued invocations. */
  position: number;
  /** Input bytes of the queued invocations ahead of it (those of unknown size not counted). */
  bytesAhead: number;
  /** How many of those ahead have no known size. */
  unsizedAhead: number;
}

/** What the endpoint's recent successful invocations took: wall seconds from lease to finish, input bytes. */
export interface Throughput {
  invocations: number;
  bytes: number;
  seconds: number;
}

/** Part of a running invocation's work, done and kept for a later attempt; `key` names the part. */
export interface Checkpoint {
  key: number;
  data: unknown;
}

export interface BacklogStats {
  queued: number;
  running: number;
  oldestQueuedAt?: number;
}

/** A durable event written in the same transaction as the state change that caused it. */
export interface OutboxEvent {
  id: number;
  invocationId: string;
  type: string;
  payload: unknown;
  createdAt: number;
}

export interface JobFilter {
  /** Only jobs created by this principal. */
  principal?: string;
  limit?: number;
  /** Newest first; continue from jobs created before this seq. */
  beforeSeq?: number;
}

/** How many of a job's files are in each state. */
export type StateCounts = Partial<Record<InvocationState, number>>;

/**
 * Multi-file jobs (src/core/jobs.ts): a job row and its files, which are ordinary invocations carrying
 * `jobId` and `jobIndex`. Part of the StateStore, since a job and its files commit in one transaction.
 */
export interface JobStore {
  /**
   * Commits the job and every file in one transaction, all or nothing (a duplicate job or invocation id:
   * AlreadyExists, and nothing is stored); the files are queued as `enqueue` queues them (NOTIFY `queued`).
   */
  createJob(job: Omit<Job, "seq">, files: NewInvocation[]): Promise<{ job: Job; files: Invocation[] }>;
  getJob(id: string): Promise<Job | undefined>;
  /** Newest first, at most 1000. */
  listJobs(filter: JobFilter): Promise<Job[]>;
  /** The job's files, by index. */
  jobFiles(id: string): Promise<Invocation[]>;
  /** For each of these jobs, how many of its files are in each state (jobs without files are absent). */
  jobCounts(ids: string[]): Promise<Map<string, StateCounts>>;
}

/**
 * Durable state and the work queue. SQLite implements it for the embedded default; a PostgreSQL
 * implementation must pass the same contract tests (test/queue/contract.ts).
 */
export interface StateStore extends ChunkStore, JobStore {
  close(): Promise<void>;

  createModel(m: Model): Promise<void>;
  getModel(name: string): Promise<Model | undefined>;
  listModels(): Promise<Model[]>;
  deleteModel(name: string): Promise<boolean>;

  createEndpointConfig(c: EndpointConfig): Promise<void>;
  getEndpointConfig(name: string): Promise<EndpointConfig | undefined>;
  listEndpointConfigs(): Promise<EndpointConfig[]>;
  deleteEndpointConfig(name: string): Promise<boolean>;

  createEndpoint(e: Endpoint): Promise<void>;
  getEndpoint(name: string): Promise<Endpoint | undefined>;
  listEndpoints(): Promise<Endpoint[]>;
  /** Applies the patch if the endpoint exists and the guard holds, atomically; true when it did. */
  updateEndpoint(
    name: string,
    patch: Partial<Omit<Endpoint, "name" | "createdAt">>,
    guard?: EndpointGuard,
  ): Promise<boolean>;
  deleteEndpoint(name: string): Promise<boolean>;

  /** Durable when the promise resolves. Throws AlreadyExists for a duplicate id. */
  /**
   * Commits a new invocation; also says what was queued ahead of it at its commit (one aggregate per
   * endpoint per group commit, so a burst of accepts does not count the queue once each).
   */
  enqueue(inv: NewInvocation): Promise<Enqueued>;
  getInvocation(id: string): Promise<Invocation | undefined>;
  listInvocations(filter: InvocationFilter): Promise<Invocation[]>;
  /** 1-based position among the endpoint's queued invocations, or undefined when not queued. */
  queuePosition(id: string): Promise<number | undefined>;
  backlog(endpoint: string): Promise<BacklogStats>;
  /** The queued invocations ahead of this one, or undefined when it is not queued. */
  queueAhead(id: string): Promise<QueueAhead | undefined>;
  /** The last `limit` successful invocations of the endpoint whose input size is known, summed. */
  throughput(endpoint: string, limit: number): Promise<Throughput>;

  /**
   * Takes up to `max` queued, unexpired invocations of the endpoint, oldest first, counting an attempt for
   * each; an invocation whose attempts reached maxAttempts is never leased.
   */
  lease(endpoint: string, owner: string, max: number, leaseMs: number, now: number): Promise<Invocation[]>;
  heartbeat(
    id: string,
    owner: string,
    leaseMs: number,
    now: number,
    progress?: { processedSeconds: number; totalSeconds: number },
  ): Promise<HeartbeatResult>;
  /**
   * Keeps checkpoints of a Running invocation while `owner` holds its lease (false otherwise; a key already
   * kept is left as it is). They are deleted when the invocation finishes.
   */
  saveCheckpoints(id: string, owner: string, checkpoints: Checkpoint[]): Promise<boolean>;
  /** The invocation's checkpoints, by key. */
  listCheckpoints(id: string): Promise<Checkpoint[]>;
  /** Puts a Running invocation back in the queue (lease lost, instance gone). */
  requeue(id: string, guard: Guard): Promise<boolean>;
  /** Moves to a terminal state if the guard holds: the invocation as this call ended it, else undefined. */
  finish(id: string, outcome: Outcome, guard: Guard, now: number): Promise<Invocation | undefined>;
  /** Marks a Running invocation for cancellation; its runner sees it at the next heartbeat. */
  requestCancel(id: string): Promise<boolean>;

  /** Queued invocations whose TTL has passed. */
  findExpiredQueued(now: number, limit: number): Promise<Invocation[]>;
  /** Running invocations whose lease ran out. */
  findLapsedLeases(now: number, limit: number): Promise<Invocation[]>;
  /** Queued or running invocations whose endpoint is gone (deleted before DeleteEndpoint failed its work). */
  findStranded(limit: number): Promise<Invocation[]>;

  upsertInstance(i: InstanceRecord): Promise<void>;
  listInstances(filter: { endpoint?: string; live?: boolean }): Promise<InstanceRecord[]>;

  // --- the cluster: hosts, desired counts, placements (src/cluster) ---

  /** Registers a host or renews its heartbeat (every field replaced). */
  upsertHost(h: HostRecord): Promise<void>;
  listHosts(): Promise<HostRecord[]>;
  /**
   * Marks a host Gone if its last heartbeat is older than `heartbeatBefore`; false when it heartbeated since
   * (or is Gone already), so a host that came back is never declared lost by a stale decision.
   */
  markHostGone(id: string, heartbeatBefore: number): Promise<boolean>;
  /** Sets a variant's desired instance count; NOTIFYs `placement` (the leader re-places). */
  setDesired(endpoint: string, variant: string, desired: number, now: number): Promise<void>;
  /** Desired counts that were set (a variant without one keeps its InitialInstanceCount). */
  listDesired(
    endpoint?: string,
  ): Promise<{ endpoint: string; variant: string; desired: number; updatedAt: number }[]>;
  /**
   * Adds and removes placements in one transaction; NOTIFYs `placement` with each host whose placements
   * changed. Adding an existing id or removing a missing one changes nothing (a leader may repeat a pass).
   */
  applyPlacements(change: { add: Placement[]; remove: string[] }): Promise<void>;
  listPlacements(filter: { host?: string; endpoint?: string }): Promise<Placement[]>;

  /** Outbox: undelivered events, oldest first. */
  pendingEvents(limit: number): Promise<OutboxEvent[]>;
  markEventsDelivered(ids: number[]): Promise<void>;
}

/**
 * Wake-ups between processes, raised by the store when it commits the change: `queued` (payload: the
 * endpoint name) when work becomes leasable, `finished` (payload: the invocation id) when one ends,
 * `placement` (payload: a host id, or "" for the leader) when placements or desired counts change.
 */
export type WakeTopic = "queued" | "finished" | "placement";

/**
 * What a backend offers for running as several processes on one database: one leader at a time for the
 * cluster-wide loops, and wake-ups. src/queue/leader.ts builds the leader's life cycle on `tryLead`.
 */
export interface Coordinator {
  /**
   * Becomes the leader if no live process is, or confirms that this process still is; false otherwise.
   * A leader that dies (its database session ends) is replaced at the next call of another process.
   */
  tryLead(): Promise<boolean>;
  /** Gives leadership up, so another process takes it at once (shutdown). */
  resign(): Promise<void>;
  /** Calls `fn` for each wake-up on `topic` committed by any process, this one included. */
  onWake(topic: WakeTopic, fn: (payload: string) => void): void;
  close(): Promise<void>;
}
