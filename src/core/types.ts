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

export type EndpointStatus =
  | "Creating"
  | "InService"
  | "Updating"
  | "SystemUpdating"
  | "RollingBack"
  | "OutOfService"
  | "Deleting"
  | "Failed";

export interface Endpoint {
  name: string;
  configName: string;
  status: EndpointStatus;
  failureReason?: string;
  createdAt: number;
  updatedAt: number;
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
  /** The kikitori process that runs it: `<host>/<pid>/<process start, epoch ms>`. */
  node?: string;
  state: InstanceState;
  port?: number;
  pid?: number;
  reason?: string;
  startedAt: number;
  inServiceAt?: number;
  endedAt?: number;
}
