import type { FastifyInstance } from "fastify";
import type { Service } from "../../core/service.js";
import { invocationEvents, type Notifier } from "../../notify/index.js";
import { registerSnsLinks } from "../aws/sns.js";
import { sendEventStream } from "./sse.js";
import { visibleInvocation } from "../../auth/keys.js";

/**
 * Live events and notification routes of the native API: the SSE stream of an invocation, its
 * delivery attempts, per-endpoint webhook secrets, and the SNS links subscribers follow.
 */
export async function registerEvents(
  app: FastifyInstance,
  service: Service,
  notifier: Notifier,
): Promise<void> {
  app.get<{ Params: { id: string } }>(
    "/v1/invocations/:id/events",
    {
      config: { auth: { allow: "invoke" } },
      schema: {
        tags: ["invocations"],
        summary:
          "Server-sent events: queued (position, eta), started, progress (audio seconds, eta), completed; the stream ends after completed",
      },
    },
    async (req, reply) => {
      // 404 before the stream starts (also for another caller\'s invocation).
      await visibleInvocation(req.principal, req.params.id, (id) => service.getInvocation(id));
      return sendEventStream(req, reply, (signal) => invocationEvents(service, req.params.id, signal));
    },
  );

  app.get<{ Params: { id: string } }>(
    "/v1/invocations/:id/deliveries",
    {
      config: { auth: { allow: "invoke" } },
      schema: {
        tags: ["invocations"],
        summary: "Webhook and SNS deliveries of this invocation, with every attempt",
      },
    },
    async (req) => {
      await visibleInvocation(req.principal, req.params.id, (id) => service.getInvocation(id));
      const iso = (ms?: number) => (ms === undefined ? undefined : new Date(ms).toISOString());
      return {
        deliveries: (await notifier.store.deliveriesOf(req.params.id)).map((d) => ({
          id: d.id,
          kind: d.kind,
          eventType: d.eventType,
          target: d.target,
          status: d.deliveredAt ? "Delivered" : d.failedAt ? "Failed" : "Pending",
          attempts: d.attempts,
          lastStatus: d.lastStatus,
          lastError: d.lastError,
          createdAt: iso(d.createdAt),
          nextAttemptAt: d.deliveredAt || d.failedAt ? undefined : iso(d.nextAttemptAt),
          giveUpAt: iso(d.giveUpAt),
          deliveredAt: iso(d.deliveredAt),
          failedAt: iso(d.failedAt),
          history: d.history.map((a) => ({ ...a, at: iso(a.at) })),
        })),
      };
    },
  );

  app.post<{ Params: { name: string } }>(
    "/v1/endpoints/:name/webhook-secret",
    {
      config: { auth: { allow: "admin" } },
      schema: {
        tags: ["endpoints"],
        summary:
          "Create or rotate the endpoint's webhook signing secret (whsec_…); the reply is the only time it is shown",
        response: { 201: { description: "The new secret" } },
      },
    },
    async (req, reply) => {
      await service.getEndpoint(req.params.name);
      const { secret, createdAt } = await notifier.dispatcher.rotateSecret(req.params.name);
      return reply
        .code(201)
        .send({ endpoint: req.params.name, secret, createdAt: new Date(createdAt).toISOString() });
    },
  );

  app.get<{ Params: { name: string } }>(
    "/v1/endpoints/:name/webhook-secret",
    {
      config: { auth: { allow: "admin" } },
      schema: {
        tags: ["endpoints"],
        summary: "Whether the endpoint has a webhook secret, and since when (never the secret)",
      },
    },
    async (req) => {
      await service.getEndpoint(req.params.name);
      const info = await notifier.dispatcher.secretInfo(req.params.name);
      return {
        endpoint: req.params.name,
        exists: !!info,
        createdAt: info ? new Date(info.createdAt).toISOString() : undefined,
      };
    },
  );

  registerSnsLinks(app, notifier.topics, notifier.options.accountId);
}
