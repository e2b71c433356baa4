import { test } from "node:test";
import assert from "node:assert/strict";
import { decide, stepScaling, targetTracking, type VariantView } from "../../src/autoscale/policy.js";
import type { ScalableTarget, ScalingMetricName, ScalingPolicy } from "../../src/autoscale/types.js";

const T0 = 1_000_000;
function view(
  current: number,
  now: Partial<Record<ScalingMetricName, number>>,
  o: {
    peak?: Partial<Record<ScalingMetricName, number>>;
    lastActivityAt?: number;
    lastScaleOutAt?: number;
    at?: number;
  } = {},
): VariantView {
  return {
    now: o.at ?? T0,
    current,
    latest: (n) => now[n] ?? 0,
    maxOver: (n) => Math.max(now[n] ?? 0, o.peak?.[n] ?? 0),
    lastActivityAt: o.lastActivityAt,
    lastScaleOutAt: o.lastScaleOutAt,
    policyLastAt: new Map(),
  };
}
const free = { in: false, out: false };
const backlog = (n: number, instances: number) => ({
  ApproximateBacklogSize: n,
  ApproximateBacklogSizePerInstance: instances ? n / instances : n,
  HasBacklogWithoutCapacity: n > 0 && instances === 0 ? 1 : 0,
});
const tt = (over: object = {}) => ({
  TargetValue: 2,
  CustomizedMetricSpecification: {
    MetricName: "ApproximateBacklogSizePerInstance",
    Namespace: "AWS/SageMaker",
  },
  ScaleInCooldown: 10,
  ScaleOutCooldown: 5,
  ...over,
});
const target = (min: number, max: number): ScalableTarget => ({
  ServiceNamespace: "sagemaker",
  ResourceId: "endpoint/e/variant/v",
  ScalableDimension: "sagemaker:variant:DesiredInstanceCount",
  MinCapacity: min,
  MaxCapacity: max,
  RoleARN: "r",
  CreationTime: 0,
  SuspendedState: {},
  ScalableTargetARN: "a",
});
const policy = (name: string, type: ScalingPolicy["PolicyType"], cfg: object): ScalingPolicy => ({
  PolicyARN: name,
  PolicyName: name,
  ServiceNamespace: "sagemaker",
  ResourceId: "endpoint/e/variant/v",
  ScalableDimension: "sagemaker:variant:DesiredInstanceCount",
  PolicyType: type,
  ...(type === "StepScaling"
    ? { StepScalingPolicyConfiguration: cfg as never }
    : { TargetTrackingScalingPolicyConfiguration: cfg as never }),
  Alarms: [],
  CreationTime: 0,
});
const zeroStep = policy("wake", "StepScaling", {
  AdjustmentType: "ChangeInCapacity",
  StepAdjustments: [{ MetricIntervalLowerBound: 0, ScalingAdjustment: 1 }],
});

test("target tracking: desired = ceil(backlog / target), within cooldowns", () => {
  assert.equal(targetTracking("p", tt(), free, view(1, backlog(7, 1))).desired, 4);
  assert.equal(targetTracking("p", tt(), free, view(2, backlog(4, 2))).desired, 2, "on target: hold");
  // Scale-out waits ScaleOutCooldown (5 s) after the last scale-out.
  assert.equal(
    targetTracking("p", tt(), free, view(1, backlog(7, 1), { lastScaleOutAt: T0 - 4000 })).desired,
    1,
  );
  assert.equal(
    targetTracking("p", tt(), free, view(1, backlog(7, 1), { lastScaleOutAt: T0 - 5000 })).desired,
    4,
  );
  // Scale-in waits ScaleInCooldown (10 s) after the last activity, and the metric must have been low all that time.
  assert.equal(
    targetTracking("p", tt(), free, view(3, backlog(0, 3), { lastActivityAt: T0 - 9000 })).desired,
    3,
  );
  assert.equal(
    targetTracking("p", tt(), free, view(3, backlog(0, 3), { lastActivityAt: T0 - 10_000 })).desired,
    0,
  );
  const busyEarlier = view(3, backlog(0, 3), {
    lastActivityAt: T0 - 60_000,
    peak: { ApproximateBacklogSize: 3 },
  });
  assert.equal(targetTracking("p", tt(), free, busyEarlier).desired, 2, "sized for the window's peak");
  assert.equal(targetTracking("p", tt({ DisableScaleIn: true }), free, view(3, backlog(0, 3))).desired, 3);
  assert.equal(targetTracking("p", tt(), { in: true, out: false }, view(3, backlog(0, 3))).desired, 3);
  assert.equal(targetTracking("p", tt(), { in: false, out: true }, view(1, backlog(9, 1))).desired, 1);
});

test("target tracking on a non-per-instance metric scales proportionally", () => {
  const cfg = tt({
    TargetValue: 30,
    CustomizedMetricSpecification: {
      MetricName: "ApproximateAgeOfOldestRequest",
      Namespace: "AWS/SageMaker",
    },
  });
  assert.equal(targetTracking("p", cfg, free, view(2, { ApproximateAgeOfOldestRequest: 90 })).desired, 6);
  assert.equal(targetTracking("p", cfg, free, view(0, { ApproximateAgeOfOldestRequest: 1 })).desired, 1);
});

test("step scaling: default alarm HasBacklogWithoutCapacity > 0, intervals relative to the threshold, Cooldown", () => {
  const cfg = zeroStep.StepScalingPolicyConfiguration!;
  assert.equal(stepScaling("wake", "arn:wake", cfg, free, view(0, backlog(1, 0)))?.desired, 1);
  assert.equal(
    stepScaling("wake", "arn:wake", cfg, free, view(1, backlog(5, 1))),
    undefined,
    "no alarm with capacity",
  );
  const v = view(0, backlog(1, 0));
  (v.policyLastAt as Map<string, number>).set("wake", T0 - 1000);
  assert.equal(stepScaling("wake", "arn:wake", { ...cfg, Cooldown: 2 }, free, v), undefined, "in Cooldown");
  const tiers = {
    AdjustmentType: "ChangeInCapacity" as const,
    KikitoriAlarm: {
      MetricName: "ApproximateBacklogSize" as const,
      ComparisonOperator: "GreaterThanOrEqualToThreshold" as const,
      Threshold: 10,
    },
    StepAdjustments: [
      { MetricIntervalLowerBound: 0, MetricIntervalUpperBound: 10, ScalingAdjustment: 1 },
      { MetricIntervalLowerBound: 10, ScalingAdjustment: 3 },
    ],
  };
  assert.equal(stepScaling("t", "arn:t", tiers, free, view(2, { ApproximateBacklogSize: 9 })), undefined);
  assert.equal(stepScaling("t", "arn:t", tiers, free, view(2, { ApproximateBacklogSize: 10 }))?.desired, 3);
  assert.equal(stepScaling("t", "arn:t", tiers, free, view(2, { ApproximateBacklogSize: 25 }))?.desired, 5);
  const pct = {
    ...tiers,
    AdjustmentType: "PercentChangeInCapacity" as const,
    StepAdjustments: [{ MetricIntervalLowerBound: 0, ScalingAdjustment: 50 }],
  };
  assert.equal(
    stepScaling("t", "arn:t", pct, free, view(1, { ApproximateBacklogSize: 10 }))?.desired,
    2,
    "0.5 rounds up to 1",
  );
  assert.equal(
    stepScaling("t", "arn:t", pct, free, view(5, { ApproximateBacklogSize: 10 }))?.desired,
    7,
    "2.5 rounds down to 2",
  );
  assert.equal(
    stepScaling(
      "t",
      "arn:t",
      { ...pct, MinAdjustmentMagnitude: 4 },
      free,
      view(5, { ApproximateBacklogSize: 10 }),
    )?.desired,
    9,
  );
  const exact = {
    ...tiers,
    AdjustmentType: "ExactCapacity" as const,
    StepAdjustments: [{ MetricIntervalLowerBound: 0, ScalingAdjustment: 4 }],
  };
  assert.equal(stepScaling("t", "arn:t", exact, free, view(1, { ApproximateBacklogSize: 10 }))?.desired, 4);
});

test("decide: largest scale-out wins, bounded by MaxCapacity; scale-in needs every policy to agree", () => {
  const track = policy("track", "TargetTrackingScaling", tt({ ScaleOutCooldown: 0, ScaleInCooldown: 0 }));
  const d = decide(target(0, 3), [zeroStep, track], view(0, backlog(40, 0)));
  assert.equal(d.desired, 3);
  assert.match(
    d.cause,
    /ApproximateBacklogSize 40 \/ TargetValue 2 per instance = 20.*capped at MaxCapacity 3/,
  );
  assert.deepEqual(d.policies, ["track"]);
  const wake = decide(target(0, 3), [zeroStep, track], view(0, backlog(1, 0)));
  assert.equal(wake.desired, 1);
  assert.deepEqual(wake.policies.sort(), ["track", "wake"]);
  assert.equal(decide(target(0, 3), [zeroStep, track], view(2, backlog(0, 2))).desired, 0);
  const holder = policy("hold", "TargetTrackingScaling", tt({ DisableScaleIn: true }));
  assert.equal(decide(target(0, 3), [track, holder], view(2, backlog(0, 2))).desired, 2, "one policy holds");
  assert.equal(decide(target(1, 3), [track], view(2, backlog(0, 2))).desired, 1, "MinCapacity");
  const none = decide(target(2, 4), [], view(0, {}));
  assert.equal(none.desired, 2);
  assert.match(none.cause, /below MinCapacity 2/);
  assert.equal(decide(target(0, 3), [], view(5, {})).desired, 3);
  assert.deepEqual(decide(target(0, 3), [track], view(1, backlog(2, 1))), {
    desired: 1,
    cause: "",
    policies: [],
  });
  const suspended = { ...target(0, 3), SuspendedState: { DynamicScalingOutSuspended: true } };
  assert.equal(decide(suspended, [zeroStep, track], view(0, backlog(4, 0))).desired, 0);
});
