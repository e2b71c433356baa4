import type { Autoscaler } from "../../autoscale/autoscaler.js";
import type { JsonService } from "./context.js";
import { checkMembers, type JsonInput } from "./json-protocol.js";

/**
 * Application Auto Scaling (awsJson1_1, `X-Amz-Target: AnyScaleFrontendService.<Op>`) for SageMaker
 * variants: a pass-through to the Autoscaler, which holds every rule. This layer only refuses top-level
 * members kikitori does not implement, so a script learns early that a feature it relies on is missing.
 */

type Members = { supported: readonly string[]; ignored?: readonly string[] };

const TARGET_KEYS = ["ServiceNamespace", "ResourceId", "ScalableDimension"] as const;
const PAGE = ["MaxResults", "NextToken"] as const;

/** One operation: its accepted members, and the Autoscaler method that does the work. */
function op<I>(name: string, members: Members, call: (input: I) => Promise<unknown>) {
  return async (input: JsonInput): Promise<unknown> => {
    checkMembers(name, "", input, members.supported, members.ignored);
    // The Autoscaler checks every value; the cast only names the shape it expects.
    return call(input as I);
  };
}

export function autoscalingService(autoscaler: Autoscaler): JsonService {
  const a = autoscaler;
  return {
    protocol: "json",
    targetPrefix: "AnyScaleFrontendService",
    errorNames: { NotFound: "ObjectNotFoundException", ValidationError: "ValidationException" },
    ops: {
      RegisterScalableTarget: op(
        "RegisterScalableTarget",
        {
          supported: [...TARGET_KEYS, "MinCapacity", "MaxCapacity", "RoleARN", "SuspendedState"],
          ignored: ["Tags"],
        },
        (i: Parameters<Autoscaler["registerScalableTarget"]>[0]) => a.registerScalableTarget(i),
      ),
      DescribeScalableTargets: op(
        "DescribeScalableTargets",
        { supported: ["ServiceNamespace", "ResourceIds", "ScalableDimension", ...PAGE] },
        (i: Parameters<Autoscaler["describeScalableTargets"]>[0]) => a.describeScalableTargets(i),
      ),
      DeregisterScalableTarget: op(
        "DeregisterScalableTarget",
        { supported: TARGET_KEYS },
        (i: Parameters<Autoscaler["deregisterScalableTarget"]>[0]) => a.deregisterScalableTarget(i),
      ),
      PutScalingPolicy: op(
        "PutScalingPolicy",
        {
          supported: [
            "PolicyName",
            ...TARGET_KEYS,
            "PolicyType",
            "TargetTrackingScalingPolicyConfiguration",
            "StepScalingPolicyConfiguration",
          ],
        },
        (i: Parameters<Autoscaler["putScalingPolicy"]>[0]) => a.putScalingPolicy(i),
      ),
      DescribeScalingPolicies: op(
        "DescribeScalingPolicies",
        { supported: ["PolicyNames", ...TARGET_KEYS, ...PAGE] },
        (i: Parameters<Autoscaler["describeScalingPolicies"]>[0]) => a.describeScalingPolicies(i),
      ),
      DeleteScalingPolicy: op(
        "DeleteScalingPolicy",
        { supported: ["PolicyName", ...TARGET_KEYS] },
        (i: Parameters<Autoscaler["deleteScalingPolicy"]>[0]) => a.deleteScalingPolicy(i),
      ),
      DescribeScalingActivities: op(
        "DescribeScalingActivities",
        // Every activity kikitori records changed the capacity, so there are no not-scaled ones to include.
        { supported: [...TARGET_KEYS, ...PAGE], ignored: ["IncludeNotScaledActivities"] },
        (i: Parameters<Autoscaler["describeScalingActivities"]>[0]) => a.describeScalingActivities(i),
      ),
    },
  };
}
