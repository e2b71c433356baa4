import Fastify, { type FastifyInstance } from "fastify";
import swagger from "@fastify/swagger";
import type { Service } from "../core/service.js";
import { registerAuthLayer, type AuthLayerOptions } from "../auth/layer.js";
import { registerAuthRoutes } from "../auth/routes.js";
import { registerRest } from "./rest/routes.js";
import { registerJobRoutes } from "./rest/jobs.js";
import { restError } from "./errors.js";
import { documentErrors } from "./openapi.js";
import { registerOpenAi, type OpenAiOptions } from "./openai/routes.js";
import { registerAws, type AwsFrontDoorOptions } from "./aws/router.js";
import { registerDashboard } from "./dashboard.js";

/** One listener for every front door, behind one auth layer. */
export async function buildApp(
  service: Service,
  o: {
    logRequests: boolean;
    auth: AuthLayerOptions & { cookieSecure?: boolean };
    aws?: AwsFrontDoorOptions;
    openai?: OpenAiOptions;
  },
): Promise<FastifyInstance> {
  const app = Fastify({
    logger: o.logRequests ? { level: "warn" } : false,
    bodyLimit: 10 * 1024 * 1024,
    // S3 keys can be long and carry many encoded characters.
    routerOptions: { maxParamLength: 4096 },
    return503OnClosing: true,
  });
  // First: every route registered after this (here, in plugins, in main.ts) passes through it.
  const layer = registerAuthLayer(app, o.auth);
  app.decorate("authRoutes", layer.routes);
  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "kikitori native API",
        version: "0.1.0",
        description: "Asynchronous speech-to-text: upload audio, invoke an endpoint, get the transcript.",
      },
      components: {
        securitySchemes: {
          apiKey: { type: "http", scheme: "bearer", description: "kikitori API key (kk_…)" },
        },
      },
      security: [{ apiKey: [] }],
    },
    transformObject: (o) => documentErrors("openapiObject" in o ? o.openapiObject : o.swaggerObject),
  });
  app.setErrorHandler((e, req, reply) => {
    const { status, body } = restError(e);
    if (status >= 500) req.log.error(e);
    return reply.code(status).send(body);
  });
  const open = { config: { auth: { allow: "public" as const } }, schema: { hide: true } };
  app.get("/health", open, async () => ({ status: "ok" }));
  app.get("/openapi.json", open, async () => app.swagger());
  registerAuthRoutes(app, {
    keys: o.auth.keys,
    mode: o.auth.mode,
    cookieSecure: o.auth.cookieSecure ?? false,
  });
  await registerRest(app, service);
  await registerJobRoutes(app, service);
  if (o.openai) await registerOpenAi(app, service, o.openai);
  // Unknown native paths answer in the native dialect (S3's catch-all would otherwise answer in XML).
  app.all("/v1/*", open, async (req, reply) =>
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

declare module "fastify" {
  interface FastifyInstance {
    /** Every route with its auth declaration, as registered (for the route-walk test). */
    authRoutes: import("fastify").RouteOptions[];
  }
}
