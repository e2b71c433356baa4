import type { FastifyInstance } from "fastify";
import { notFound, validation } from "../errors.js";
import type { Autoscaler } from "./autoscaler.js";
import { SCALABLE_DIMENSION, SERVICE_NAMESPACE } from "./types.js";

const NS = { ServiceNamespace: SERVICE_NAMESPACE, ScalableDimension: SCALABLE_DIMENSION };

interface ScalingBody {
  minCapacity?: number;
  maxCapacity?: number;
  suspendedState?: Record<string, boolean>;
  /** Each: { policyName, policyType, targetTracking? | stepScaling? } with AWS's field names inside. */
  policies?: { policyName: string; policyType: string; targetTracking?: unknown; stepScaling?: unknown }[];
}

/**
 * Native scaling routes over the same Autoscaler as the AWS front door:
 * `PUT|GET|DELETE /v1/endpoints/{name}/variants/{variant}/scaling` and
 * `GET /v1/endpoints/{name}/scaling-activities`.
 */
export function registerScalingRoutes(app: FastifyInstance, autoscaler: Autoscaler): void {
  const rid = (p: { name: string; variant: string }) => `endpoint/${p.name}/variant/${p.variant}`;
  type P = { Params: { name: string; variant: string } };

  app.put<P & { Body: ScalingBody }>(
    "/v1/endpoints/:name/variants/:variant/scaling",
    { config: { auth: { allow: "admin" } }, schema: { tags: ["scaling"] } },
    async (req) => {
      const b = req.body ?? {};
      const ResourceId = rid(req.params);
      if (b.policies !== undefined && !Array.isArray(b.policies))
        throw validation("policies", "must be a list");
      const existed = (await autoscaler.describeScalableTargets({ ...NS, ResourceIds: [ResourceId] }))
        .ScalableTargets.length;
      try {
        await autoscaler.registerScalableTarget({
          ...NS,
          ResourceId,
          MinCapacity: b.minCapacity,
          MaxCapacity: b.maxCapacity,
          SuspendedState: b.suspendedState,
        });
        if (b.policies) {
          const keep = new Set(b.policies.map((p) => p.policyName));
          for (const p of b.policies) {
            await autoscaler.putScalingPolicy({
              ...NS,
              ResourceId,
              PolicyName: p.policyName,
              PolicyType: p.policyType,
              TargetTrackingScalingPolicyConfiguration: p.targetTracking as never,
              StepScalingPolicyConfiguration: p.stepScaling as never,
            });
          }
          // The body is the whole configuration: policies it leaves out are removed.
          const existing = await autoscaler.describeScalingPolicies({ ...NS, ResourceId });
          for (const p of existing.ScalingPolicies)
            if (!keep.has(p.PolicyName))
              await autoscaler.deleteScalingPolicy({ ...NS, ResourceId, PolicyName: p.PolicyName });
        }
      } catch (e) {
        // A body refused half-way leaves no new target behind.
        if (!existed) await autoscaler.deregisterScalableTarget({ ...NS, ResourceId }).catch(() => {});
        throw e;
      }
      return scalingOf(autoscaler, ResourceId);
    },
  );
  app.get<P>(
    "/v1/endpoints/:name/variants/:variant/scaling",
    { config: { auth: { allow: "admin" } }, schema: { tags: ["scaling"] } },
    async (req) => scalingOf(autoscaler, rid(req.params)),
  );
  app.delete<P>(
    "/v1/endpoints/:name/variants/:variant/scaling",
    {
      config: { auth: { allow: "admin" } },
      schema: { tags: ["scaling"], response: { 204: { description: "Deregistered", type: "null" } } },
    },
    async (req, reply) => {
      await autoscaler.deregisterScalableTarget({ ...NS, ResourceId: rid(req.params) });
      return reply.code(204).send();
    },
  );
  app.get<{ Params: { name: string }; Querystring: { limit?: string; nextToken?: string } }>(
    "/v1/endpoints/:name/scaling-activities",
    { config: { auth: { allow: "admin" } }, schema: { tags: ["scaling"] } },
    async (req) => {
      const r = await autoscaler.describeScalingActivities({
        ServiceNamespace: SERVICE_NAMESPACE,
        EndpointName: req.params.name,
        MaxResults: req.query.limit === undefined ? undefined : Number(req.query.limit),
        NextToken: req.query.nextToken,
      });
      return { activities: r.ScalingActivities, nextToken: r.NextToken };
    },
  );
}

async function scalingOf(autoscaler: Autoscaler, ResourceId: string) {
  const t = await autoscaler.describeScalableTargets({
    ServiceNamespace: SERVICE_NAMESPACE,
    ResourceIds: [ResourceId],
  });
  const target = t.ScalableTargets[0];
  if (!target) throw notFound("Scalable target", ResourceId);
  const p = await autoscaler.describeScalingPolicies({ ...NS, ResourceId });
  return { target, policies: p.ScalingPolicies };
}
