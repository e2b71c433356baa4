import type { FastifyInstance } from "fastify";
import { validation } from "../errors.js";
import { METRIC_NAMES, type MetricName, type Metrics } from "./metrics.js";

/** `GET /metrics` (Prometheus text) and `GET /v1/endpoints/{name}/metrics` (time series from memory). */
export function registerMetricsRoutes(
  app: FastifyInstance,
  metrics: Metrics,
  o: { prometheusAuth: "key" | "public" } = { prometheusAuth: "key" },
): void {
  const allow = o.prometheusAuth === "public" ? "public" : "metrics";
  app.get("/metrics", { config: { auth: { allow } }, schema: { hide: true } }, async (_req, reply) => {
    const { contentType, body } = await metrics.prometheus();
    return reply.type(contentType).send(body);
  });
  app.get<{ Params: { name: string }; Querystring: { name?: string; since?: string } }>(
    "/v1/endpoints/:name/metrics",
    {
      config: { auth: { allow: "metrics" } },
      schema: {
        tags: ["metrics"],
        description:
          "One sample per second (last hour) of a SageMaker async metric; `since` is epoch ms or an ISO time.",
      },
    },
    async (req) => {
      const name = req.query.name ?? "ApproximateBacklogSize";
      if (!METRIC_NAMES.includes(name as MetricName)) {
        throw validation("name", `must be one of ${METRIC_NAMES.join(", ")} (got ${JSON.stringify(name)})`);
      }
      let since = 0;
      if (req.query.since !== undefined) {
        since = /^\d+$/.test(req.query.since) ? Number(req.query.since) : Date.parse(req.query.since);
        if (!Number.isFinite(since))
          throw validation("since", "must be epoch milliseconds or an ISO 8601 time");
      }
      return {
        endpoint: req.params.name,
        name,
        samples: metrics.series(req.params.name, name as MetricName, since).map((s) => ({
          time: new Date(s.t).toISOString(),
          value: s.value,
        })),
      };
    },
  );
}
