import { randomUUID } from "node:crypto";
import {
  SCALABLE_DIMENSION,
  SCALING_METRICS,
  SERVICE_NAMESPACE,
  type ScalableTarget,
  type ScalingPolicy,
  type ScalingStore,
  type StepScalingPolicyConfiguration,
  type TargetTrackingScalingPolicyConfiguration,
} from "../../autoscale/types.js";
import type { AwsContext, JsonService } from "./context.js";
import {
  AwsApiError,
  awsValidation,
  checkMembers,
  optionalArray,
  optionalInt,
  optionalObject,
  optionalString,
  page,
  requiredString,
  type JsonInput,
} from "./json-protocol.js";

/**
 * Application Auto Scaling (awsJson1_1, `X-Amz-Target: AnyScaleFrontendService.<Op>`) for SageMaker
 * variants: parses and checks the wire shapes, then stores them in the autoscaler's ScalingStore, which
 * the autoscale loop (src/autoscale/) reads and enforces.
 */

const notFound = (message: string) => new AwsApiError("ObjectNotFoundException", 400, message);

function checkTargetKeys(
  op: string,
  input: JsonInput,
): { resourceId: string; endpoint: string; variant: string } {
  const ns = requiredString(input, "ServiceNamespace");
  if (ns !== SERVICE_NAMESPACE)
    throw awsValidation(`${op}: ServiceNamespace ${ns} is not supported by kikitori (only sagemaker)`);
  const dim = requiredString(input, "ScalableDimension");
  if (dim !== SCALABLE_DIMENSION)
    throw awsValidation(
      `${op}: ScalableDimension ${dim} is not supported by kikitori (only ${SCALABLE_DIMENSION})`,
    );
  return parseResourceId(requiredString(input, "ResourceId"));
}

function parseResourceId(resourceId: string) {
  const m = /^endpoint\/([^/]+)\/variant\/([^/]+)$/.exec(resourceId);
  if (!m)
    throw awsValidation(
      `ResourceId must be endpoint/<EndpointName>/variant/<VariantName>, got "${resourceId}"`,
    );
  return { resourceId, endpoint: m[1]!, variant: m[2]! };
}

const noTarget = (resourceId: string) =>
  notFound(
    `No scalable target registered for service namespace: ${SERVICE_NAMESPACE}, resource ID: ${resourceId}, scalable dimension: ${SCALABLE_DIMENSION}`,
  );

function checkCapacity(field: string, v: number | undefined): number | undefined {
  if (v !== undefined && (v < 0 || v > 1000)) throw awsValidation(`${field} must be from 0 to 1000`);
  return v;
}

async function registerScalableTarget(store: ScalingStore, input: JsonInput, ctx: AwsContext) {
  const op = "RegisterScalableTarget";
  checkMembers(
    op,
    "",
    input,
    [
      "ServiceNamespace",
      "ResourceId",
      "ScalableDimension",
      "MinCapacity",
      "MaxCapacity",
      "RoleARN",
      "SuspendedState",
    ],
    ["Tags"],
  );
  const { resourceId, endpoint, variant } = checkTargetKeys(op, input);
  const e = await ctx.service.state.getEndpoint(endpoint);
  const config = e ? await ctx.service.state.getEndpointConfig(e.configName) : undefined;
  if (!e || !config?.variants.some((v) => v.variantName === variant))
    throw awsValidation(`${op}: the endpoint ${endpoint} has no variant ${variant}`);
  const prev = await store.getTarget(resourceId);
  const min = checkCapacity("MinCapacity", optionalInt(input, "MinCapacity")) ?? prev?.MinCapacity;
  const max = checkCapacity("MaxCapacity", optionalInt(input, "MaxCapacity")) ?? prev?.MaxCapacity;
  if (min === undefined || max === undefined)
    throw awsValidation(
      `${op}: MinCapacity and MaxCapacity are required when registering a new scalable target`,
    );
  if (min > max) throw awsValidation(`${op}: MinCapacity (${min}) must not exceed MaxCapacity (${max})`);
  const suspended = optionalObject(input, "SuspendedState");
  if (suspended)
    checkMembers(op, "SuspendedState.", suspended, [
      "DynamicScalingInSuspended",
      "DynamicScalingOutSuspended",
      "ScheduledScalingSuspended",
    ]);
  const target: ScalableTarget = {
    ServiceNamespace: SERVICE_NAMESPACE,
    ResourceId: resourceId,
    ScalableDimension: SCALABLE_DIMENSION,
    MinCapacity: min,
    MaxCapacity: max,
    RoleARN:
      optionalString(input, "RoleARN") ??
      prev?.RoleARN ??
      `arn:aws:iam::${ctx.accountId}:role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint`,
    CreationTime: prev?.CreationTime ?? Date.now() / 1000,
    SuspendedState: (suspended as ScalableTarget["SuspendedState"] | undefined) ?? prev?.SuspendedState ?? {},
    ScalableTargetARN:
      prev?.ScalableTargetARN ??
      `arn:aws:application-autoscaling:${ctx.region}:${ctx.accountId}:scalable-target/${randomUUID().replace(/-/g, "").slice(0, 28)}`,
  };
  await store.putTarget(target);
  return { ScalableTargetARN: target.ScalableTargetARN };
}

function metricName(op: string, cfg: JsonInput): void {
  const p = "TargetTrackingScalingPolicyConfiguration.";
  const pre = optionalObject(cfg, "PredefinedMetricSpecification", p);
  const custom = optionalObject(cfg, "CustomizedMetricSpecification", p);
  if (!pre === !custom)
    throw awsValidation(
      `${op}: give one of ${p}PredefinedMetricSpecification or ${p}CustomizedMetricSpecification`,
    );
  if (pre) {
    checkMembers(op, `${p}PredefinedMetricSpecification.`, pre, ["PredefinedMetricType", "ResourceLabel"]);
    const type = requiredString(pre, "PredefinedMetricType", `${p}PredefinedMetricSpecification.`);
    // kikitori tracks the async backlog; SageMaker's other predefined metrics (invocations per instance,
    // CPU) have no meaning for a queue-fed endpoint.
    if (type !== "ApproximateBacklogSizePerInstance")
      throw awsValidation(
        `${op}: PredefinedMetricType ${type} is not supported by kikitori (use ApproximateBacklogSizePerInstance)`,
      );
  }
  if (custom) {
    const cp = `${p}CustomizedMetricSpecification.`;
    checkMembers(op, cp, custom, ["MetricName", "Namespace", "Dimensions", "Statistic", "Unit"]);
    const name = requiredString(custom, "MetricName", cp);
    if (!(SCALING_METRICS as readonly string[]).includes(name))
      throw awsValidation(
        `${op}: ${cp}MetricName ${name} is not supported by kikitori (one of ${SCALING_METRICS.join(", ")})`,
      );
    const ns = requiredString(custom, "Namespace", cp);
    if (ns !== "AWS/SageMaker")
      throw awsValidation(`${op}: ${cp}Namespace ${ns} is not supported by kikitori (AWS/SageMaker)`);
    optionalArray(custom, "Dimensions", cp);
  }
}

function targetTrackingOf(op: string, cfg: JsonInput): TargetTrackingScalingPolicyConfiguration {
  const p = "TargetTrackingScalingPolicyConfiguration.";
  checkMembers(op, p, cfg, [
    "TargetValue",
    "PredefinedMetricSpecification",
    "CustomizedMetricSpecification",
    "ScaleInCooldown",
    "ScaleOutCooldown",
    "DisableScaleIn",
  ]);
  const tv = cfg.TargetValue;
  if (typeof tv !== "number" || !(tv > 0))
    throw awsValidation(`${op}: ${p}TargetValue is required (a number > 0)`);
  metricName(op, cfg);
  for (const f of ["ScaleInCooldown", "ScaleOutCooldown"]) {
    const v = optionalInt(cfg, f, p);
    if (v !== undefined && v < 0) throw awsValidation(`${op}: ${p}${f} must be >= 0`);
  }
  return cfg as unknown as TargetTrackingScalingPolicyConfiguration;
}

function stepScalingOf(op: string, cfg: JsonInput): StepScalingPolicyConfiguration {
  const p = "StepScalingPolicyConfiguration.";
  checkMembers(op, p, cfg, [
    "AdjustmentType",
    "StepAdjustments",
    "Cooldown",
    "MetricAggregationType",
    "MinAdjustmentMagnitude",
    "KikitoriAlarm",
  ]);
  const type = requiredString(cfg, "AdjustmentType", p);
  if (!["ChangeInCapacity", "ExactCapacity", "PercentChangeInCapacity"].includes(type))
    throw awsValidation(
      `${op}: ${p}AdjustmentType ${type} is not one of ChangeInCapacity, ExactCapacity, PercentChangeInCapacity`,
    );
  const steps = optionalArray(cfg, "StepAdjustments", p);
  if (!steps?.length) throw awsValidation(`${op}: ${p}StepAdjustments needs at least one step`);
  steps.forEach((s, i) => {
    const sp = `${p}StepAdjustments[${i}].`;
    if (typeof s !== "object" || s === null)
      throw awsValidation(`${op}: ${sp.slice(0, -1)} must be an object`);
    checkMembers(op, sp, s as JsonInput, [
      "MetricIntervalLowerBound",
      "MetricIntervalUpperBound",
      "ScalingAdjustment",
    ]);
    if (optionalInt(s as JsonInput, "ScalingAdjustment", sp) === undefined)
      throw awsValidation(`${op}: ${sp}ScalingAdjustment is required`);
  });
  const alarm = optionalObject(cfg, "KikitoriAlarm", p);
  if (alarm) {
    checkMembers(op, `${p}KikitoriAlarm.`, alarm, ["MetricName", "ComparisonOperator", "Threshold"]);
    const name = requiredString(alarm, "MetricName", `${p}KikitoriAlarm.`);
    if (!(SCALING_METRICS as readonly string[]).includes(name))
      throw awsValidation(
        `${op}: ${p}KikitoriAlarm.MetricName ${name} is not one of ${SCALING_METRICS.join(", ")}`,
      );
  }
  return cfg as unknown as StepScalingPolicyConfiguration;
}

async function putScalingPolicy(store: ScalingStore, input: JsonInput, ctx: AwsContext) {
  const op = "PutScalingPolicy";
  checkMembers(op, "", input, [
    "PolicyName",
    "ServiceNamespace",
    "ResourceId",
    "ScalableDimension",
    "PolicyType",
    "TargetTrackingScalingPolicyConfiguration",
    "StepScalingPolicyConfiguration",
  ]);
  const policyName = requiredString(input, "PolicyName");
  const { resourceId } = checkTargetKeys(op, input);
  const type = optionalString(input, "PolicyType") ?? "StepScaling";
  let tt: TargetTrackingScalingPolicyConfiguration | undefined;
  let step: StepScalingPolicyConfiguration | undefined;
  if (type === "TargetTrackingScaling") {
    const cfg = optionalObject(input, "TargetTrackingScalingPolicyConfiguration");
    if (!cfg)
      throw awsValidation(
        `${op}: TargetTrackingScalingPolicyConfiguration is required for TargetTrackingScaling`,
      );
    tt = targetTrackingOf(op, cfg);
  } else if (type === "StepScaling") {
    const cfg = optionalObject(input, "StepScalingPolicyConfiguration");
    if (!cfg) throw awsValidation(`${op}: StepScalingPolicyConfiguration is required for StepScaling`);
    step = stepScalingOf(op, cfg);
  } else {
    throw awsValidation(
      `${op}: PolicyType ${type} is not supported by kikitori (TargetTrackingScaling or StepScaling)`,
    );
  }
  if (!(await store.getTarget(resourceId))) throw noTarget(resourceId);
  const prev = (await store.listPolicies({ resourceId })).find((p) => p.PolicyName === policyName);
  const policy: ScalingPolicy = {
    PolicyARN:
      prev?.PolicyARN ??
      `arn:aws:autoscaling:${ctx.region}:${ctx.accountId}:scalingPolicy:${randomUUID()}:resource/sagemaker/${resourceId}:policyName/${policyName}`,
    PolicyName: policyName,
    ServiceNamespace: SERVICE_NAMESPACE,
    ResourceId: resourceId,
    ScalableDimension: SCALABLE_DIMENSION,
    PolicyType: type,
    ...(tt ? { TargetTrackingScalingPolicyConfiguration: tt } : {}),
    ...(step ? { StepScalingPolicyConfiguration: step } : {}),
    Alarms: [],
    CreationTime: prev?.CreationTime ?? Date.now() / 1000,
  };
  await store.putPolicy(policy);
  return { PolicyARN: policy.PolicyARN, Alarms: [] };
}

function namespaceOnly(op: string, input: JsonInput): void {
  const ns = requiredString(input, "ServiceNamespace");
  if (ns !== SERVICE_NAMESPACE)
    throw awsValidation(`${op}: ServiceNamespace ${ns} is not supported by kikitori (only sagemaker)`);
  const dim = optionalString(input, "ScalableDimension");
  if (dim !== undefined && dim !== SCALABLE_DIMENSION)
    throw awsValidation(`${op}: ScalableDimension ${dim} is not supported by kikitori`);
}

function withToken<T>(key: string, r: { items: T[]; nextToken?: string }) {
  return { [key]: r.items, ...(r.nextToken ? { NextToken: r.nextToken } : {}) };
}

export function autoscalingService(store: ScalingStore): JsonService {
  return {
    protocol: "json",
    targetPrefix: "AnyScaleFrontendService",
    errorNames: { NotFound: "ObjectNotFoundException", ValidationError: "ValidationException" },
    ops: {
      RegisterScalableTarget: (input, ctx) => registerScalableTarget(store, input, ctx),
      DescribeScalableTargets: async (input) => {
        checkMembers("DescribeScalableTargets", "", input, [
          "ServiceNamespace",
          "ResourceIds",
          "ScalableDimension",
          "MaxResults",
          "NextToken",
        ]);
        namespaceOnly("DescribeScalableTargets", input);
        const ids = optionalArray(input, "ResourceIds") as string[] | undefined;
        const all = (await store.listTargets()).filter((t) => !ids || ids.includes(t.ResourceId));
        return withToken("ScalableTargets", page(all, input, 50));
      },
      DeregisterScalableTarget: async (input) => {
        checkMembers("DeregisterScalableTarget", "", input, [
          "ServiceNamespace",
          "ResourceId",
          "ScalableDimension",
        ]);
        const { resourceId } = checkTargetKeys("DeregisterScalableTarget", input);
        if (!(await store.deleteTarget(resourceId))) throw noTarget(resourceId);
        return {};
      },
      PutScalingPolicy: (input, ctx) => putScalingPolicy(store, input, ctx),
      DescribeScalingPolicies: async (input) => {
        checkMembers("DescribeScalingPolicies", "", input, [
          "ServiceNamespace",
          "PolicyNames",
          "ResourceId",
          "ScalableDimension",
          "MaxResults",
          "NextToken",
        ]);
        namespaceOnly("DescribeScalingPolicies", input);
        const names = optionalArray(input, "PolicyNames") as string[] | undefined;
        const all = (await store.listPolicies({ resourceId: optionalString(input, "ResourceId") })).filter(
          (p) => !names || names.includes(p.PolicyName),
        );
        return withToken("ScalingPolicies", page(all, input, 50));
      },
      DeleteScalingPolicy: async (input) => {
        checkMembers("DeleteScalingPolicy", "", input, [
          "PolicyName",
          "ServiceNamespace",
          "ResourceId",
          "ScalableDimension",
        ]);
        const name = requiredString(input, "PolicyName");
        const { resourceId } = checkTargetKeys("DeleteScalingPolicy", input);
        if (!(await store.deletePolicy(resourceId, name)))
          throw notFound(
            `No scaling policy found for service namespace: sagemaker, resource ID: ${resourceId}, scalable dimension: ${SCALABLE_DIMENSION}: policy name: ${name}`,
          );
        return {};
      },
      DescribeScalingActivities: async (input) => {
        checkMembers("DescribeScalingActivities", "", input, [
          "ServiceNamespace",
          "ResourceId",
          "ScalableDimension",
          "MaxResults",
          "NextToken",
          "IncludeNotScaledActivities",
        ]);
        namespaceOnly("DescribeScalingActivities", input);
        const limit = optionalInt(input, "MaxResults") ?? 50;
        if (limit < 1 || limit > 50)
          throw awsValidation("DescribeScalingActivities: MaxResults must be from 1 to 50");
        const token = optionalString(input, "NextToken");
        const beforeSeq =
          token === undefined ? undefined : Number(Buffer.from(token, "base64url").toString("utf8"));
        if (beforeSeq !== undefined && !Number.isInteger(beforeSeq))
          throw awsValidation("NextToken is not a token this API issued");
        const { activities, lastSeq } = await store.listActivities({
          resourceId: optionalString(input, "ResourceId"),
          limit,
          beforeSeq,
        });
        return {
          ScalingActivities: activities,
          ...(lastSeq !== undefined && activities.length === limit
            ? { NextToken: Buffer.from(String(lastSeq)).toString("base64url") }
            : {}),
        };
      },
    },
  };
}
