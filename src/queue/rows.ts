import type {
  Deployment,
  Endpoint,
  HostRecord,
  InstanceRecord,
  Invocation,
  InvocationState,
  Job,
  Placement,
} from "../core/types.js";
import type { Delivery, Subscription, Topic } from "../notify/store.js";
import type { Scope } from "../auth/types.js";
import type { AwsResource, AwsResourceKind } from "./aws-store.js";
import type { ApiKeyRecord, SessionRecord } from "./key-store.js";
import type { ChunkLease, ChunkProgress } from "./chunks.js";
import type { Enqueued, OutboxEvent } from "./types.js";

/**
 * Result rows of either database as column name → value, and their mapping to kikitori's types. Both
 * backends use the same column names; numbers may arrive as strings (PostgreSQL's bigint), so every numeric
 * column goes through Number.
 */
export type Row = Record<string, unknown>;

/** A nullable column: undefined for SQL NULL, otherwise the value converted by `f`. */
export const opt = <T>(v: unknown, f: (x: unknown) => T): T | undefined =>
  v === null || v === undefined ? undefined : f(v);

export const str = (v: unknown) => opt(v, String);
export const num = (v: unknown) => opt(v, Number);
const json = <T>(v: unknown) => JSON.parse(String(v)) as T;

export function toInvocation(r: Row): Invocation {
  return {
    id: String(r.id),
    endpoint: String(r.endpoint),
    state: r.state as InvocationState,
    inputLocation: String(r.input_location),
    outputLocation: String(r.output_location),
    failureLocation: String(r.failure_location),
    contentType: str(r.content_type),
    accept: str(r.accept),
    customAttributes: str(r.custom_attributes),
    requestTtlSeconds: Number(r.request_ttl_s),
    invocationTimeoutSeconds: Number(r.invocation_timeout_s),
    attempts: Number(r.attempts),
    maxAttempts: Number(r.max_attempts),
    createdAt: Number(r.created_at),
    startedAt: num(r.started_at),
    finishedAt: num(r.finished_at),
    seq: Number(r.seq),
    leaseOwner: str(r.lease_owner),
    leaseExpiresAt: num(r.lease_expires_at),
    progressSeconds: num(r.progress_s),
    totalSeconds: num(r.total_s),
    error: r.error_code ? { code: String(r.error_code), message: String(r.error_message ?? "") } : undefined,
    modelTimeMs: num(r.model_time_ms),
    webhook: r.webhook ? (JSON.parse(String(r.webhook)) as Invocation["webhook"]) : undefined,
    principal: str(r.principal),
    notification: opt(r.notification, json<Invocation["notification"]>),
    inputBytes: num(r.input_bytes),
    jobId: str(r.job_id),
    jobIndex: num(r.job_index),
  };
}

export const toJob = (r: Row): Job => ({
  id: String(r.id),
  endpoint: String(r.endpoint),
  principal: str(r.principal),
  names: JSON.parse(String(r.names)) as string[],
  createdAt: Number(r.created_at),
  seq: Number(r.seq),
});

export function toInstance(r: Row): InstanceRecord {
  return {
    id: String(r.id),
    endpoint: String(r.endpoint),
    variant: String(r.variant),
    host: String(r.host),
    node: str(r.node),
    deployment: str(r.deployment),
    placement: str(r.placement),
    address: str(r.address),
    state: r.state as InstanceRecord["state"],
    port: num(r.port),
    pid: num(r.pid),
    reason: str(r.reason),
    startedAt: Number(r.started_at),
    inServiceAt: num(r.in_service_at),
    endedAt: num(r.ended_at),
  };
}

export const toHost = (r: Row): HostRecord => ({
  id: String(r.id),
  name: String(r.name),
  address: str(r.address),
  token: str(r.token),
  slots: Number(r.slots),
  cpus: Number(r.cpus),
  gpus: Number(r.gpus),
  models: JSON.parse(String(r.models)) as string[],
  serves: str(r.serves),
  state: r.state as HostRecord["state"],
  startedAt: Number(r.started_at),
  heartbeatAt: Number(r.heartbeat_at),
});

export const toPlacement = (r: Row): Placement => ({
  id: String(r.id),
  endpoint: String(r.endpoint),
  deployment: String(r.deployment),
  variant: String(r.variant),
  host: String(r.host),
  createdAt: Number(r.created_at),
});

export function toEndpoint(r: Row): Endpoint {
  return {
    name: String(r.name),
    configName: String(r.config_name),
    status: r.status as Endpoint["status"],
    failureReason: str(r.failure_reason),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    deployment: opt(r.deployment, json<Deployment>),
    pending: opt(r.pending, json<Deployment>),
  };
}

/** The endpoint's columns other than its name and creation time, in the order both backends write them. */
export const endpointColumns = (e: Omit<Endpoint, "name" | "createdAt">) => [
  e.configName,
  e.status,
  e.failureReason ?? null,
  e.updatedAt,
  e.deployment ? JSON.stringify(e.deployment) : null,
  e.pending ? JSON.stringify(e.pending) : null,
];

export function toDelivery(r: Row): Delivery {
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

export function toSubscription(r: Row): Subscription {
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

export const toTopic = (r: Row): Topic => ({
  arn: String(r.arn),
  name: String(r.name),
  attributes: JSON.parse(String(r.attributes)) as Record<string, string>,
  createdAt: Number(r.created_at),
});

/** An outbox event; an invocation's event holds its row (events written before 0.2.0: the Invocation itself). */
export function toOutboxEvent(r: Row): OutboxEvent {
  const payload = JSON.parse(String(r.payload)) as unknown;
  return {
    id: Number(r.id),
    invocationId: String(r.invocation_id),
    type: String(r.type),
    payload:
      payload && typeof payload === "object" && "input_location" in payload
        ? toInvocation(payload as Row)
        : payload,
    createdAt: Number(r.created_at),
  };
}

export const toAwsResource = (r: Row): AwsResource => ({
  kind: String(r.kind) as AwsResourceKind,
  name: String(r.name),
  body: String(r.body),
  updatedAt: Number(r.updated_at),
});

export const toApiKey = (r: Row): ApiKeyRecord => ({
  id: String(r.id),
  name: String(r.name),
  scope: String(r.scope) as Scope,
  hash: String(r.hash),
  createdAt: Number(r.created_at),
  revokedAt: num(r.revoked_at),
  lastUsedAt: num(r.last_used_at),
});

export const toSession = (r: Row): SessionRecord => ({
  hash: String(r.hash),
  keyId: String(r.key_id),
  createdAt: Number(r.created_at),
  expiresAt: Number(r.expires_at),
});

export const toChunkLease = (r: Row): ChunkLease => ({
  invocationId: String(r.invocation_id),
  idx: Number(r.idx),
  data: json(r.data),
  attempts: Number(r.attempts),
});

/** From COUNT/SUM columns n, done, speech, done_s, failed (no chunks: no plan). */
export const toChunkProgress = (r: Row): ChunkProgress | undefined =>
  Number(r.n) === 0
    ? undefined
    : {
        chunks: Number(r.n),
        done: Number(r.done ?? 0),
        ...(r.failed !== null && r.failed !== undefined ? { failed: String(r.failed) } : {}),
        speechSeconds: Number(r.speech),
        doneSeconds: Number(r.done_s),
      };

/** An endpoint's queue at one moment: how many are queued, their bytes, how many have no known size. */
export interface QueueTotals {
  count: number;
  bytes: number;
  unsized: number;
}

export const toQueueTotals = (r: Row | undefined): QueueTotals => ({
  count: Number(r?.n ?? 0),
  bytes: Number(r?.bytes ?? 0),
  unsized: Number(r?.unsized ?? 0),
});

/**
 * The queue ahead of each invocation of one group commit: the endpoint's queue before the commit
 * (`before`, by endpoint), then the batch's earlier invocations of the same endpoint, in seq order.
 */
export function stackAhead(before: Map<string, QueueTotals>, committed: Invocation[]): Enqueued[] {
  const totals = new Map([...before].map(([k, v]) => [k, { ...v }]));
  const bySeq = [...committed].sort((a, b) => a.seq - b.seq);
  const out = new Map<Invocation, Enqueued>();
  for (const inv of bySeq) {
    const t = totals.get(inv.endpoint) ?? { count: 0, bytes: 0, unsized: 0 };
    out.set(inv, { ...inv, ahead: { position: t.count + 1, bytesAhead: t.bytes, unsizedAhead: t.unsized } });
    totals.set(inv.endpoint, {
      count: t.count + 1,
      bytes: t.bytes + (inv.inputBytes ?? 0),
      unsized: t.unsized + (inv.inputBytes === undefined ? 1 : 0),
    });
  }
  return committed.map((inv) => out.get(inv)!);
}
