/** SageMaker's vocabulary, kept identical so AWS users feel at home. Times are epoch milliseconds. */

export interface Model {
  name: string;
  /** Which model server to run (see instances/images.ts). */
  image: string;
  /** `s3://bucket/key/model.tar.gz`, or undefined when the image needs no model data. */
  modelDataUrl?: string;
  environment: Record<string, string>;
  executionRoleArn?: string;
  createdAt: number;
}

export interface ProductionVariant {
  variantName: string;
  modelName: string;
  instanceType: string;
  initialInstanceCount: number;
}

export interface AsyncInferenceConfig {
  /** `s3://bucket/prefix` where `<InferenceId>.out` is written. */
  outputPath: string;
  /** `s3://bucket/prefix` where `<InferenceId>-error.out` is written; defaults to outputPath. */
  failurePath?: string;
  maxConcurrentInvocationsPerInstance: number;
  notification?: {
    successTopic?: string;
    errorTopic?: string;
    includeInferenceResponseIn?: ("SUCCESS_NOTIFICATION_TOPIC" | "ERROR_NOTIFICATION_TOPIC")[];
  };
}

export interface EndpointConfig {
  name: string;
  variants: ProductionVariant[];
  asyncConfig?: AsyncInferenceConfig;
  createdAt: number;
}

export const ENDPOINT_STATUSES = [
  "Creating",
  "InService",
  "Updating",
  "SystemUpdating",
  "RollingBack",
  "OutOfService",
  "Deleting",
  "Failed",
] as const;
export type EndpointStatus = (typeof ENDPOINT_STATUSES)[number];

/**
 * What an endpoint runs: its config and the config's models as they were at CreateEndpoint or UpdateEndpoint.
 * As on SageMaker, deleting the config or a model afterwards does not touch the endpoint.
 */
export interface Deployment {
  /** New for each CreateEndpoint and UpdateEndpoint: tells an update's new instances from the old ones. */
  id: string;
  config: EndpointConfig;
  models: Model[];
  createdAt: number;
}

export interface Endpoint {
  name: string;
  /** The config it runs (`deployment.config.name`). */
  configName: string;
  status: EndpointStatus;
  failureReason?: string;
  createdAt: number;
  updatedAt: number;
  /** What it runs. Absent only for an endpoint whose config was deleted before kikitori kept copies. */
  deployment?: Deployment;
  /**
   * An UpdateEndpoint in progress (blue/green): its instances start beside the current ones, and it becomes
   * `deployment` once all of them are InService; then the old instances drain.
   */
  pending?: Deployment;
}

export const INVOCATION_STATES = [
  "Queued",
  "Running",
  "Succeeded",
  "Failed",
  "Expired",
  "Cancelled",
] as const;
export type InvocationState = (typeof INVOCATION_STATES)[number];
export const TERMINAL_STATES: readonly InvocationState[] = ["Succeeded", "Failed", "Expired", "Cancelled"];
export const isTerminal = (s: InvocationState) => TERMINAL_STATES.includes(s);

export interface InvocationError {
  code: string;
  message: string;
}

export interface Invocation {
  id: string;
  endpoint: string;
  state: InvocationState;
  inputLocation: string;
  outputLocation: string;
  failureLocation: string;
  contentType?: string;
  accept?: string;
  customAttributes?: string;
  /** Seconds a request may wait in the queue before it expires. */
  requestTtlSeconds: number;
  /** Seconds the model server may take for one attempt. */
  invocationTimeoutSeconds: number;
  attempts: number;
  maxAttempts: number;
  createdAt: number;
  startedAt?: number;
  finishedAt?: number;
  /** Queue order; also the basis of the queue position. */
  seq: number;
  leaseOwner?: string;
  leaseExpiresAt?: number;
  /** Progress in audio seconds, as reported by the model server. */
  progressSeconds?: number;
  totalSeconds?: number;
  error?: InvocationError;
  /** Engine time of the successful attempt, for overhead metrics. */
  modelTimeMs?: number;
  /** Where the terminal event is delivered (native API field); see src/notify. */
  webhook?: WebhookTarget;
  /** Who created it (src/auth Principal.id); a key of the `invoke` scope sees only its own. */
  principal?: string;
  /** The SNS topics of the config it was accepted under (they outlive a deleted endpoint). */
  notification?: AsyncInferenceConfig["notification"];
  /** The input's size when it was enqueued (unknown for invocations enqueued before 0.2.0). */
  inputBytes?: number;
  /** The multi-file job it is a file of (src/core/jobs.ts), and its 0-based place in it. */
  jobId?: string;
  jobIndex?: number;
}

/**
 * A multi-file job: one request, many inputs. Its files are ordinary invocations (`jobId`, `jobIndex`); its
 * state is derived from theirs on read (src/core/jobs.ts), so it is never out of step with them.
 */
export interface Job {
  id: string;
  endpoint: string;
  /** Who created it (src/auth Principal.id); a key of the `invoke` scope sees only its own. */
  principal?: string;
  /** Each file's name (the upload's file name, or the manifest entry's name or key), by index. */
  names: string[];
  createdAt: number;
  /** Listing order. */
  seq: number;
}

/** A per-invocation webhook: events filter `start` | `progress` | `completed`; the transcript is opt-in. */
export interface WebhookTarget {
  url: string;
  events: string[];
  includeTranscript?: boolean;
}

export type InstanceState = "Pending" | "InService" | "Draining" | "Terminated" | "Failed";

export interface InstanceRecord {
  id: string;
  endpoint: string;
  variant: string;
  host: string;
  /** The kikitori process (worker host) that runs it: `<host>/<pid>/<process start, epoch ms>`. */
  node?: string;
  /** The endpoint's deployment (its copy of config and models) it runs: an update runs two for a while. */
  deployment?: string;
  /** The placement it runs for (src/cluster): the leader's assignment of one instance to a host. */
  placement?: string;
  /** Where its model server takes `POST /invocations` from any host of the cluster (synchronous invocations). */
  address?: string;
  state: InstanceState;
  port?: number;
  pid?: number;
  reason?: string;
  startedAt: number;
  inServiceAt?: number;
  endedAt?: number;
}

/** A worker host: one kikitori process with the worker role, as it registered itself and heartbeats. */
export interface HostRecord {
  /** The process: `<hostname>/<pid>/<process start, epoch ms>` (src/instances/node.ts THIS_NODE). */
  id: string;
  /** Its hostname (on Kubernetes, the pod's name). */
  name: string;
  /** The base URL other hosts reach it at (`http://10.0.0.2:7601`), when it listens for them. */
  address?: string;
  /** The bearer token its relay (`address`) accepts: a random secret of this process, kept in the store. */
  token?: string;
  /** How many instances it runs at most. */
  slots: number;
  cpus: number;
  gpus: number;
  /** Model data it has cached (ModelDataUrl values, ggml file names): placement prefers such hosts. */
  models: string[];
  /**
   * The one endpoint variant this host is dedicated to (`<endpoint>/<variant>`, KIKITORI_SERVES): it runs an
   * instance of it in every slot and nothing else. On Kubernetes a worker Deployment is one variant's hosts.
   */
  serves?: string;
  /** Ready takes new instances; Draining is stopping (scale-in); Gone left or lost its heartbeat. */
  state: "Ready" | "Draining" | "Gone";
  startedAt: number;
  heartbeatAt: number;
}

/** The leader's assignment of one instance of an endpoint variant to a worker host. */
export interface Placement {
  id: string;
  endpoint: string;
  /** Endpoint.deployment.id or Endpoint.pending.id: which copy of the config the instance runs. */
  deployment: string;
  variant: string;
  /** HostRecord.id */
  host: string;
  createdAt: number;
}
