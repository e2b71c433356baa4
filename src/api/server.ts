import Fastify, { type FastifyInstance } from "fastify";
import swagger from "@fastify/swagger";
import type { Service } from "../core/service.js";
import { registerRest } from "./rest/routes.js";
import { restError } from "./errors.js";
import { registerOpenAi, type OpenAiOptions } from "./openai/routes.js";
import { registerAws, type AwsFrontDoorOptions } from "./aws/router.js";
import { registerDashboard } from "./dashboard.js";

/** One listener for every front door. */
export async function buildApp(
  service: Service,
  o: { logRequests: boolean; aws?: AwsFrontDoorOptions; openai?: OpenAiOptions },
): Promise<FastifyInstance> {
  const app = Fastify({
    logger: o.logRequests ? { level: "warn" } : false,
    bodyLimit: 10 * 1024 * 1024,
    // S3 keys can be long and carry many encoded characters.
    routerOptions: { maxParamLength: 4096 },
    return503OnClosing: true,
  });
  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "kikitori native API",
        version: "0.1.0",
        description: "Asynchronous speech-to-text: upload audio, invoke an endpoint, get the transcript.",
      },
    },
  });
  app.setErrorHandler((e, req, reply) => {
    const { status, body } = restError(e);
    if (status >= 500) req.log.error(e);
    return reply.code(status).send(body);
  });
  app.get("/health", { schema: { hide: true } }, async () => ({ status: "ok" }));
  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());
  await registerRest(app, service);
  if (o.openai) await registerOpenAi(app, service, o.openai);
  // Unknown native paths answer in the native dialect (S3's catch-all would otherwise answer in XML).
  app.all("/v1/*", { schema: { hide: true } }, async (req, reply) =>
    reply.code(404).send({
      error: { code: "NotFound", message: `no such route: ${req.method} ${req.url.split("?")[0]}` },
    }),
  );
  // The AWS protocols (S3 catch-all, SageMaker, Runtime, ...): specific routes above win over S3's `/*`.
  if (o.aws) await registerAws(app, o.aws);
  // `GET /` is the dashboard for a browser, and S3's ListBuckets (its `/*` route) for everyone else.
  await registerDashboard(app);
  return app;
}
