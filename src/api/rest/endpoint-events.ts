import type { FastifyInstance } from "fastify";
import type { Service } from "../../core/service.js";
import type { Autoscaler } from "../../autoscale/autoscaler.js";
import { SERVICE_NAMESPACE } from "../../autoscale/types.js";
import type { Metrics } from "../../metrics/metrics.js";
import { endpointView } from "./routes.js";
import { sendEventStream, type SseEvent } from "./sse.js";

/** One sample a second: the stream looks that often (and at once when this process changes the endpoint). */
const TICK_MS = 1000;

export interface EndpointEventsDeps {
  service: Service;
  metrics: Metrics;
  autoscaler: Autoscaler;
}

/** The endpoint as a dashboard shows it: its view, its models, and each variant's scaling target and policies. */
export async function endpointDetail(d: EndpointEventsDeps, name: string) {
  const view = await endpointView(d.service, name);
  const variants = view.config?.variants ?? [];
  const models = view.deployment?.models ?? [];
  const scaling = [];
  for (const v of variants) {
    const ResourceId = `endpoint/${name}/variant/${v.variantName}`;
    const targets = await d.autoscaler.describeScalableTargets({
      ServiceNamespace: SERVICE_NAMESPACE,
      ResourceIds: [ResourceId],
    });
    const policies = await d.autoscaler.describeScalingPolicies({
      ServiceNamespace: SERVICE_NAMESPACE,
      ResourceId,
    });
    scaling.push({
      variant: v.variantName,
      target: targets.ScalableTargets[0],
      policies: policies.ScalingPolicies,
    });
  }
  return { ...view, models, scaling };
}

/**
 * The life of one endpoint as events: `endpoint` (its detail, whenever it changes), `samples` (the
 * 1-second metric samples: first the last `historySeconds`, then each new one) and `activity` (each
 * scaling activity, again when its status changes). Ends with `deleted` when the endpoint goes away.
 */
export async function* endpointEvents(
  d: EndpointEventsDeps,
  name: string,
  historySeconds: number,
  signal: AbortSignal,
): AsyncGenerator<SseEvent> {
  let detail = "";
  let since = Date.now() - historySeconds * 1000;
  const activities = new Map<string, string>();
  while (!signal.aborted) {
    if (!(await d.service.findEndpoint(name))) {
      yield { event: "deleted", data: { name } };
      return;
    }
    const next = await endpointDetail(d, name);
    const json = JSON.stringify(next);
    if (json !== detail) yield { event: "endpoint", data: next };
    detail = json;
    const samples = d.metrics.samples(name, since);
    if (samples.length) {
      yield { event: "samples", data: samples.map((s) => ({ time: s.t, values: s.values })) };
      since = samples.at(-1)!.t + 1;
    }
    const { ScalingActivities } = await d.autoscaler.describeScalingActivities({
      ServiceNamespace: SERVICE_NAMESPACE,
      EndpointName: name,
      MaxResults: 50,
    });
    for (const a of ScalingActivities.reverse()) {
      const state = `${a.StatusCode}|${a.EndTime}`;
      if (activities.get(a.ActivityId) !== state) yield { event: "activity", data: a };
      activities.set(a.ActivityId, state);
    }
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        d.service.off("endpoint:changed", onChange);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const onChange = (e: { name: string }) => {
        if (e.name === name) done();
      };
      const timer = setTimeout(done, TICK_MS);
      d.service.on("endpoint:changed", onChange);
      signal.addEventListener("abort", done);
    });
  }
}

/** `GET /v1/endpoints/{name}/events`: the endpoint's status, metrics and scaling, live. */
export function registerEndpointEvents(app: FastifyInstance, d: EndpointEventsDeps): void {
  app.get<{ Params: { name: string }; Querystring: { historySeconds?: number } }>(
    "/v1/endpoints/:name/events",
    {
      config: { auth: { allow: "admin" } },
      schema: {
        tags: ["endpoints"],
        summary:
          "Server-sent events: endpoint (status, models, instances, backlog, scaling target and policies, on change), " +
          "samples (1-second metric samples, first the last historySeconds), activity (scaling activities), deleted",
        params: { type: "object", properties: { name: { type: "string" } } },
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: { historySeconds: { type: "integer", minimum: 0, maximum: 3600, default: 900 } },
        },
      },
    },
    async (req, reply) => {
      await d.service.getEndpoint(req.params.name); // 404 before the stream starts
      return sendEventStream(req, reply, (signal) =>
        endpointEvents(d, req.params.name, req.query.historySeconds ?? 900, signal),
      );
    },
  );
}
