/**
 * Application Auto Scaling's vocabulary for SageMaker variants, with AWS's field names so the AWS wire
 * protocol (src/api/aws/autoscaling.ts) passes them through unchanged. Times are epoch seconds (the
 * awsJson1_1 timestamp format), so the objects serialise to the wire as they are.
 */

export const SERVICE_NAMESPACE = "sagemaker";
export const SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount";

export type ServiceNamespace = typeof SERVICE_NAMESPACE;
export type ScalableDimension = typeof SCALABLE_DIMENSION;

export interface SuspendedState {
  DynamicScalingInSuspended?: boolean;
  DynamicScalingOutSuspended?: boolean;
  ScheduledScalingSuspended?: boolean;
}

export interface ScalableTarget {
  ServiceNamespace: ServiceNamespace;
  /** `endpoint/<EndpointName>/variant/<VariantName>` */
  ResourceId: string;
  ScalableDimension: ScalableDimension;
  MinCapacity: number;
  MaxCapacity: number;
  RoleARN: string;
  /** Epoch seconds. */
  CreationTime: number;
  SuspendedState: SuspendedState;
  ScalableTargetARN: string;
}

/** The async-inference metrics a policy can scale on (namespace AWS/SageMaker, dimension EndpointName). */
export const SCALING_METRICS = [
  "ApproximateBacklogSize",
  "ApproximateBacklogSizePerInstance",
  "ApproximateAgeOfOldestRequest",
  "HasBacklogWithoutCapacity",
] as const;
export type ScalingMetricName = (typeof SCALING_METRICS)[number];

export type MetricStatistic = "Average" | "Minimum" | "Maximum" | "SampleCount" | "Sum";

export interface MetricDimension {
  Name: string;
  Value: string;
}

export interface CustomizedMetricSpecification {
  MetricName: string;
  Namespace: string;
  Dimensions?: MetricDimension[];
  Statistic?: MetricStatistic;
  Unit?: string;
}

export interface PredefinedMetricSpecification {
  PredefinedMetricType: string;
  ResourceLabel?: string;
}

export interface TargetTrackingScalingPolicyConfiguration {
  TargetValue: number;
  PredefinedMetricSpecification?: PredefinedMetricSpecification;
  CustomizedMetricSpecification?: CustomizedMetricSpecification;
  /** Seconds after a scaling activity before this policy may scale in. @defaultValue 300 */
  ScaleInCooldown?: number;
  /** Seconds after a scale-out before this policy may scale out again. @defaultValue 300 */
  ScaleOutCooldown?: number;
  DisableScaleIn?: boolean;
}

export type AdjustmentType = "ChangeInCapacity" | "ExactCapacity" | "PercentChangeInCapacity";
export type ComparisonOperator =
  | "GreaterThanThreshold"
  | "GreaterThanOrEqualToThreshold"
  | "LessThanThreshold"
  | "LessThanOrEqualToThreshold";

export interface StepAdjustment {
  /** Relative to the alarm threshold; absent means minus infinity. */
  MetricIntervalLowerBound?: number;
  /** Relative to the alarm threshold; absent means plus infinity. */
  MetricIntervalUpperBound?: number;
  ScalingAdjustment: number;
}

/**
 * kikitori extension, kept as an alias of a CloudWatch alarm: the alarm that triggers a step policy, as part
 * of the policy. A step policy named in a CloudWatch alarm's AlarmActions (PutMetricAlarm) follows that
 * alarm instead. Without either, the policy binds to `HasBacklogWithoutCapacity > 0`, so a request at zero
 * instances starts one at once.
 */
export interface KikitoriStepAlarm {
  MetricName: ScalingMetricName;
  ComparisonOperator: ComparisonOperator;
  Threshold: number;
}

export const DEFAULT_STEP_ALARM: KikitoriStepAlarm = {
  MetricName: "HasBacklogWithoutCapacity",
  ComparisonOperator: "GreaterThanThreshold",
  Threshold: 0,
};

export interface StepScalingPolicyConfiguration {
  AdjustmentType: AdjustmentType;
  StepAdjustments: StepAdjustment[];
  /** Seconds after this policy scaled before it may scale again. @defaultValue 0 */
  Cooldown?: number;
  MetricAggregationType?: "Average" | "Minimum" | "Maximum";
  /** For PercentChangeInCapacity: the smallest change in instances. */
  MinAdjustmentMagnitude?: number;
  /** kikitori extension, see KikitoriStepAlarm. */
  KikitoriAlarm?: KikitoriStepAlarm;
}

export type PolicyType = "TargetTrackingScaling" | "StepScaling";

export interface ScalingPolicy {
  PolicyARN: string;
  PolicyName: string;
  ServiceNamespace: ServiceNamespace;
  ResourceId: string;
  ScalableDimension: ScalableDimension;
  PolicyType: PolicyType;
  StepScalingPolicyConfiguration?: StepScalingPolicyConfiguration;
  TargetTrackingScalingPolicyConfiguration?: TargetTrackingScalingPolicyConfiguration;
  /** The CloudWatch alarms whose AlarmActions name this policy (filled when described). */
  Alarms: { AlarmName: string; AlarmARN: string }[];
  /** Epoch seconds. */
  CreationTime: number;
}

export type ActivityStatusCode =
  "Pending" | "InProgress" | "Successful" | "Overridden" | "Unfulfilled" | "Failed";

export interface ScalingActivity {
  ActivityId: string;
  ServiceNamespace: ServiceNamespace;
  ResourceId: string;
  ScalableDimension: ScalableDimension;
  /** e.g. "Setting desired instance count to 3." */
  Description: string;
  /** Why: the policy, the metric value and the arithmetic. */
  Cause: string;
  /** Epoch seconds. */
  StartTime: number;
  /** Epoch seconds; set when the variant reached the count (or the activity was overridden). */
  EndTime?: number;
  StatusCode: ActivityStatusCode;
  StatusMessage?: string;
  /** kikitori extension: the desired count before and after. */
  FromCapacity: number;
  ToCapacity: number;
  /** kikitori extension: the policy that caused it, when one did. */
  PolicyName?: string;
}

/** A page of results, as the Describe* operations return them. */
/** The three members that name a scalable target in every request about one. */
export interface TargetKeys {
  ServiceNamespace: string;
  ResourceId: string;
  ScalableDimension: string;
}

export interface Page {
  MaxResults?: number;
  NextToken?: string;
}

/**
 * Durable scaling configuration and history. SQLite implements it (src/queue/sqlite/scaling-store.ts);
 * a PostgreSQL store implements the same interface.
 */
export interface ScalingStore {
  putTarget(t: ScalableTarget): Promise<void>;
  getTarget(resourceId: string): Promise<ScalableTarget | undefined>;
  listTargets(): Promise<ScalableTarget[]>;
  /** Removes the target with its policies; false when there was none. */
  deleteTarget(resourceId: string): Promise<boolean>;

  putPolicy(p: ScalingPolicy): Promise<void>;
  listPolicies(filter: { resourceId?: string }): Promise<ScalingPolicy[]>;
  deletePolicy(resourceId: string, policyName: string): Promise<boolean>;

  addActivity(a: ScalingActivity): Promise<void>;
  updateActivity(a: ScalingActivity): Promise<void>;
  /** Newest first; `beforeSeq` continues a listing. */
  listActivities(filter: {
    resourceId?: string;
    /** Only resources whose id starts with this. */
    resourcePrefix?: string;
    limit: number;
    beforeSeq?: number;
  }): Promise<{ activities: ScalingActivity[]; lastSeq?: number }>;
}
