/** The shapes of the native API's answers that the pages read (see /openapi.json). */

import type { InvocationState } from "../../src/core/types.js";
// The core's vocabulary, shared as is (that file has no dependencies).
export { INVOCATION_STATES, isTerminal, type InvocationState } from "../../src/core/types.js";

export interface Invocation {
  inferenceId: string;
  endpoint: string;
  state: InvocationState;
  queuePosition?: number;
  inputLocation: string;
  outputLocation: string;
  failureLocation: string;
  customAttributes?: string;
  attempts: number;
  maxAttempts: number;
  progress?: { processedSeconds: number; totalSeconds: number; percent: number };
  timing: {
    createdAt: string;
    startedAt?: string;
    finishedAt?: string;
    queuedMs: number;
    totalMs?: number;
    modelMs?: number;
  };
  /** Estimated finish time (ISO), where the server gives one. */
  eta?: string;
  error?: { code: string; message: string };
}

export interface Instance {
  id: string;
  variant: string;
  state: "Pending" | "InService" | "Draining" | "Terminated" | "Failed";
  host: string;
  startedAt: number;
  inServiceAt?: number;
  reason?: string;
}

export interface Model {
  name: string;
  image: string;
  modelDataUrl?: string;
  environment: Record<string, string>;
  createdAt: number;
}

export interface ScalingPolicy {
  PolicyName: string;
  PolicyType: "TargetTrackingScaling" | "StepScaling";
  TargetTrackingScalingPolicyConfiguration?: {
    TargetValue: number;
    CustomizedMetricSpecification?: { MetricName: string };
    PredefinedMetricSpecification?: { PredefinedMetricType: string };
    ScaleInCooldown?: number;
    ScaleOutCooldown?: number;
  };
  StepScalingPolicyConfiguration?: {
    AdjustmentType?: string;
    Cooldown?: number;
    StepAdjustments?: {
      MetricIntervalLowerBound?: number;
      MetricIntervalUpperBound?: number;
      ScalingAdjustment: number;
    }[];
    KikitoriAlarm?: { MetricName: string; ComparisonOperator: string; Threshold: number };
  };
}

export interface EndpointDetail {
  name: string;
  configName: string;
  status: string;
  failureReason?: string;
  createdAt: number;
  updatedAt: number;
  config?: {
    variants: {
      variantName: string;
      modelName: string;
      instanceType: string;
      initialInstanceCount: number;
    }[];
    asyncConfig?: { outputPath: string; failurePath?: string; maxConcurrentInvocationsPerInstance: number };
  };
  instances: Instance[];
  backlog: { queued: number; running: number };
  models: Model[];
  scaling: {
    variant: string;
    target?: { MinCapacity: number; MaxCapacity: number };
    policies: ScalingPolicy[];
  }[];
}

export interface Sample {
  time: number;
  values: Record<string, number | undefined>;
}

export interface ScalingActivity {
  ActivityId: string;
  ResourceId: string;
  Description: string;
  Cause: string;
  StartTime: number;
  EndTime?: number;
  StatusCode: string;
  FromCapacity: number;
  ToCapacity: number;
  PolicyName?: string;
}

export interface Segment {
  id: number;
  start: number;
  end: number;
  text: string;
  words?: { start: number; end: number; word: string }[];
}

export interface Transcript {
  text: string;
  language: string;
  duration: number;
  segments: Segment[];
}

/** `GET /v1/auth/whoami`. */
export interface Principal {
  scope: "admin" | "invoke" | "metrics";
  mode: "open" | "keys";
  name?: string;
  /** The object key prefix this caller may upload under (`uploads/<principal>/`). */
  uploadPrefix?: string;
}

export interface ApiKey {
  id: string;
  name: string;
  scope: string;
  createdAt: string | number;
  lastUsedAt?: string | number;
  revokedAt?: string | number;
}
