import { test } from "node:test";
import assert from "node:assert/strict";
import type { Kikitori } from "../../src/main.js";
import { startTestServer, noopModelServer, waitFor, type Api } from "../helpers/server.js";

// Scaling with real processes: the no-op model server (a local-command image) keeps these fast and
// deterministic; the policies, the loop, the instance manager and the queue are the real ones.
const noop = (delayMs: number) => ({
  image: `local:${noopModelServer}`,
  environment: { NOOP_DELAY_MS: String(delayMs) },
});

const wakeOnRequest = {
  policyName: "wake",
  policyType: "StepScaling",
  stepScaling: {
    AdjustmentType: "ChangeInCapacity",
    StepAdjustments: [{ MetricIntervalLowerBound: 0, ScalingAdjustment: 1 }],
    Cooldown: 1,
  },
};
const track = (target: number, scaleInCooldownS: number) => ({
  policyName: "backlog",
  policyType: "TargetTrackingScaling",
  targetTracking: {
    TargetValue: target,
    CustomizedMetricSpecification: {
      MetricName: "ApproximateBacklogSizePerInstance",
      Namespace: "AWS/SageMaker",
      Dimensions: [{ Name: "EndpointName", Value: "zero" }],
      Statistic: "Average",
    },
    ScaleInCooldown: scaleInCooldownS,
    ScaleOutCooldown: 1,
  },
});

async function zeroEndpoint(
  k: Kikitori & { api: Api },
  delayMs: number,
  maxCapacity: number,
  target: number,
) {
  await k.api.endpoint("zero", noop(delayMs), { initialInstanceCount: 0 });
  await k.api.ok("PUT", "/v1/endpoints/zero/variants/AllTraffic/scaling", {
    minCapacity: 0,
    maxCapacity,
    policies: [wakeOnRequest, track(target, 2)],
  });
}

const live = async (k: Kikitori) => (await k.service.listInstances({ endpoint: "zero", live: true })).length;
const invoke = async (api: Api, input: string) =>
  (await api.ok("POST", "/v1/endpoints/zero/invocations", { inputLocation: input })).inferenceId as string;

test("scale from zero on a request, and back to zero after the cooldown; /metrics and activities show it", async () => {
  const k = await startTestServer();
  try {
    await zeroEndpoint(k, 100, 2, 2);
    const config = await k.api.ok("GET", "/v1/endpoints/zero/variants/AllTraffic/scaling");
    assert.equal(config.target.ResourceId, "endpoint/zero/variant/AllTraffic");
    assert.deepEqual(config.policies.map((p: { PolicyName: string }) => p.PolicyName).sort(), [
      "backlog",
      "wake",
    ]);
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal(await live(k), 0, "no instance without work");

    const input = await k.api.put("input", "a.wav", Buffer.from("abc"));
    const t0 = Date.now();
    const id = await invoke(k.api, input);
    let inServiceMs = 0;
    await waitFor(
      async () => {
        const ep = await k.api.ok("GET", "/v1/endpoints/zero");
        if (ep.instances.some((i: { state: string }) => i.state === "InService"))
          inServiceMs = Date.now() - t0;
        return inServiceMs > 0;
      },
      10_000,
      "an instance InService",
      10,
    );
    const done = await k.api.waitTerminal(id, 10_000);
    assert.equal(done.state, "Succeeded");
    console.log(
      `scale-from-zero (noop): InService after ${inServiceMs} ms, result after ${Date.now() - t0} ms`,
    );
    assert.ok(inServiceMs < 3000, `InService in ${inServiceMs} ms`);

    await waitFor(async () => (await live(k)) === 0, 15_000, "back to zero instances", 100);
    const scaledIn = Date.now() - t0;
    assert.ok(scaledIn >= 2000, `scaled in only after the 2 s ScaleInCooldown (${scaledIn} ms)`);

    await waitFor(
      async () => {
        const acts = (await k.api.ok("GET", "/v1/endpoints/zero/scaling-activities")).activities;
        return acts.length >= 2 && acts.every((a: { StatusCode: string }) => a.StatusCode === "Successful");
      },
      5000,
      "activities Successful",
    );
    const acts = (await k.api.ok("GET", "/v1/endpoints/zero/scaling-activities")).activities.reverse();
    assert.deepEqual(
      acts.map((a: { FromCapacity: number; ToCapacity: number }) => [a.FromCapacity, a.ToCapacity]),
      [
        [0, 1],
        [1, 0],
      ],
    );
    assert.match(acts[0].Cause, /policy wake \(StepScaling\): alarm HasBacklogWithoutCapacity 1/);
    assert.match(acts[1].Cause, /policy backlog \(TargetTrackingScaling\): ApproximateBacklogSize 0/);
    assert.equal(acts[0].Description, "Setting desired instance count to 1.");
    assert.ok(acts[0].EndTime >= acts[0].StartTime);

    const prom = await (await fetch(`${k.url}/metrics`)).text();
    assert.match(prom, /kikitori_invocations_processed_total\{endpoint="zero"\} 1/);
    assert.match(prom, /kikitori_approximate_backlog_size\{endpoint="zero"\} 0/);
    assert.match(prom, /kikitori_desired_instance_count\{endpoint="zero",variant="AllTraffic"\} 0/);
    assert.match(prom, /kikitori_model_latency_seconds_count\{endpoint="zero"\} 1/);
    assert.match(prom, /kikitori_time_in_backlog_seconds_count\{endpoint="zero"\} 1/);

    const series = await k.api.ok("GET", `/v1/endpoints/zero/metrics?name=InstanceCount&since=${t0 - 2000}`);
    const values = series.samples.map((s: { value: number }) => s.value);
    assert.ok(values.includes(1) && values.at(-1) === 0, `InstanceCount series ${values}`);
    const bad = await k.api.call("GET", "/v1/endpoints/zero/metrics?name=Nope");
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /name: must be one of ApproximateBacklogSize/);
  } finally {
    await k.close();
  }
});

test("a burst of 40 scales out to MaxCapacity 3 (never above), drains, and returns to zero", async () => {
  const k = await startTestServer();
  let maxLive = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      maxLive = Math.max(maxLive, await live(k));
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  try {
    await zeroEndpoint(k, 150, 3, 2);
    const input = await k.api.put("input", "a.wav", Buffer.from("abc"));
    const ids = await Promise.all(Array.from({ length: 40 }, () => invoke(k.api, input)));
    for (const id of ids) assert.equal((await k.api.waitTerminal(id, 60_000)).state, "Succeeded");
    assert.equal(maxLive, 3, `scaled out to exactly 3 (max seen ${maxLive})`);
    await waitFor(async () => (await live(k)) === 0, 20_000, "back to zero", 100);
    const acts = (await k.api.ok("GET", "/v1/endpoints/zero/scaling-activities")).activities;
    assert.ok(acts.every((a: { ToCapacity: number }) => a.ToCapacity <= 3));
    assert.ok(acts.some((a: { Cause: string }) => /capped at MaxCapacity 3/.test(a.Cause)));
    assert.equal(acts[0].ToCapacity, 0);
  } finally {
    sampling = false;
    await sampler;
    await k.close();
  }
});

test("scaling configuration is validated, field by field", async () => {
  const k = await startTestServer();
  try {
    await k.api.endpoint("zero", noop(0), { initialInstanceCount: 0 });
    const put = (body: unknown, variant = "AllTraffic") =>
      k.api.call("PUT", `/v1/endpoints/zero/variants/${variant}/scaling`, body);
    const cases: [unknown, RegExp, string?][] = [
      [{ maxCapacity: 2 }, /MinCapacity: is required/],
      [{ minCapacity: 3, maxCapacity: 2 }, /MinCapacity: 3 is above MaxCapacity 2/],
      [{ minCapacity: -1, maxCapacity: 2 }, /MinCapacity: must be an integer from 0 to 100/],
      [{ minCapacity: 0, maxCapacity: 1 }, /ResourceId: endpoint zero has no variant Other/, "Other"],
      [
        {
          minCapacity: 0,
          maxCapacity: 1,
          policies: [
            { policyName: "p", policyType: "TargetTrackingScaling", targetTracking: { TargetValue: 0 } },
          ],
        },
        /TargetTrackingScalingPolicyConfiguration.TargetValue: must be a number above 0/,
      ],
      [
        {
          minCapacity: 0,
          maxCapacity: 1,
          policies: [
            {
              policyName: "p",
              policyType: "TargetTrackingScaling",
              targetTracking: {
                TargetValue: 1,
                CustomizedMetricSpecification: { MetricName: "CPUUtilization", Namespace: "AWS/SageMaker" },
              },
            },
          ],
        },
        /CustomizedMetricSpecification.MetricName: kikitori scales on ApproximateBacklogSize/,
      ],
      [
        {
          minCapacity: 0,
          maxCapacity: 1,
          policies: [
            {
              policyName: "p",
              policyType: "StepScaling",
              stepScaling: {
                AdjustmentType: "ChangeInCapacity",
                StepAdjustments: [
                  { MetricIntervalLowerBound: 0, ScalingAdjustment: 1 },
                  { MetricIntervalLowerBound: 0.5, ScalingAdjustment: 2 },
                ],
              },
            },
          ],
        },
        /StepScalingPolicyConfiguration.StepAdjustments: the step intervals overlap/,
      ],
    ];
    for (const [body, message, variant] of cases) {
      const r = await put(body, variant);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match(r.body.error.message, message);
    }
    assert.equal((await k.api.call("GET", "/v1/endpoints/zero/variants/AllTraffic/scaling")).status, 404);
  } finally {
    await k.close();
  }
});
