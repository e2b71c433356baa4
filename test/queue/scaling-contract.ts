import assert from "node:assert/strict";
import type { ScalableTarget, ScalingActivity, ScalingPolicy } from "../../src/autoscale/types.js";
import type { TestDatabase } from "../helpers/backends.js";
import { withStores } from "./state-contract.js";

const target = (resource: string, min = 0): ScalableTarget => ({
  ServiceNamespace: "sagemaker",
  ResourceId: resource,
  ScalableDimension: "sagemaker:variant:DesiredInstanceCount",
  MinCapacity: min,
  MaxCapacity: 4,
  RoleARN: "arn:role",
  CreationTime: 1,
  SuspendedState: {},
  ScalableTargetARN: `arn:${resource}`,
});
const policy = (resource: string, name: string): ScalingPolicy => ({
  PolicyARN: `arn:${resource}:${name}`,
  PolicyName: name,
  ServiceNamespace: "sagemaker",
  ResourceId: resource,
  ScalableDimension: "sagemaker:variant:DesiredInstanceCount",
  PolicyType: "TargetTrackingScaling",
  TargetTrackingScalingPolicyConfiguration: { TargetValue: 2 },
  Alarms: [],
  CreationTime: 1,
});
const activity = (resource: string, i: number): ScalingActivity => ({
  ActivityId: `act-${resource}-${i}`,
  ServiceNamespace: "sagemaker",
  ResourceId: resource,
  ScalableDimension: "sagemaker:variant:DesiredInstanceCount",
  Description: `Setting desired instance count to ${i}.`,
  Cause: "test",
  StartTime: i,
  StatusCode: "InProgress",
  FromCapacity: i - 1,
  ToCapacity: i,
});

/** The behaviour every ScalingStore shows, on every backend; each method of the contract is exercised. */
export function scalingStoreContract(name: string, fresh: () => Promise<TestDatabase>): void {
  const t = withStores(`scaling ${name}`, fresh);
  const A = "endpoint/a/variant/AllTraffic";
  const B = "endpoint/b/variant/AllTraffic";

  t(
    "targets and policies: put replaces, list in key order, delete a target with its policies",
    async ({ scaling: s }) => {
      await s.putTarget(target(B));
      await s.putTarget(target(A));
      await s.putTarget(target(A, 1));
      assert.deepEqual(await s.getTarget(A), target(A, 1));
      assert.equal(await s.getTarget("endpoint/none/variant/x"), undefined);
      assert.deepEqual(
        (await s.listTargets()).map((x) => x.ResourceId),
        [A, B],
      );
      await s.putPolicy(policy(A, "p2"));
      await s.putPolicy(policy(A, "p1"));
      await s.putPolicy({ ...policy(A, "p1"), PolicyType: "StepScaling" });
      await s.putPolicy(policy(B, "p1"));
      assert.deepEqual(
        (await s.listPolicies({ resourceId: A })).map((p) => [p.PolicyName, p.PolicyType]),
        [
          ["p1", "StepScaling"],
          ["p2", "TargetTrackingScaling"],
        ],
      );
      assert.deepEqual(
        (await s.listPolicies({})).map((p) => `${p.ResourceId}:${p.PolicyName}`),
        [`${A}:p1`, `${A}:p2`, `${B}:p1`],
      );
      assert.equal(await s.deletePolicy(A, "p2"), true);
      assert.equal(await s.deletePolicy(A, "p2"), false);
      assert.equal(await s.deleteTarget(A), true);
      assert.equal(await s.deleteTarget(A), false);
      assert.deepEqual(
        (await s.listPolicies({})).map((p) => p.ResourceId),
        [B],
        "A's policies went with it",
      );
    },
  );

  t(
    "activities: newest first, updated in place, paged by seq and filtered by resource or prefix",
    async ({ scaling: s }) => {
      for (let i = 1; i <= 5; i++) await s.addActivity(activity(i % 2 ? A : B, i));
      await s.updateActivity({ ...activity(A, 3), StatusCode: "Successful", EndTime: 9 });
      const first = await s.listActivities({ limit: 2 });
      assert.deepEqual(
        first.activities.map((a) => a.StartTime),
        [5, 4],
      );
      const next = await s.listActivities({ limit: 2, beforeSeq: first.lastSeq });
      assert.deepEqual(
        next.activities.map((a) => [a.StartTime, a.StatusCode]),
        [
          [3, "Successful"],
          [2, "InProgress"],
        ],
      );
      const rest = await s.listActivities({ limit: 2, beforeSeq: next.lastSeq });
      assert.deepEqual(
        rest.activities.map((a) => a.StartTime),
        [1],
      );
      assert.deepEqual(
        (await s.listActivities({ limit: 10, resourceId: B })).activities.map((a) => a.StartTime),
        [4, 2],
      );
      assert.deepEqual(
        (await s.listActivities({ limit: 10, resourcePrefix: "endpoint/a/" })).activities.map(
          (a) => a.StartTime,
        ),
        [5, 3, 1],
      );
      assert.deepEqual(await s.listActivities({ limit: 10, resourcePrefix: "endpoint/zz" }), {
        activities: [],
        lastSeq: undefined,
      });
    },
  );
}
