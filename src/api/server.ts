import Fastify, { type FastifyError, type FastifyInstance } from "fastify";
import swagger from "@fastify/swagger";
import type { Service } from "../core/service.js";
import { KikitoriError } from "../errors.js";
import { StoreError } from "../storage/errors.js";
import { registerRest } from "./rest/routes.js";
import { registerAws, type AwsFrontDoorOptions } from "./aws/router.js";

/** Maps any error to the native API's body `{ error: { code, message } }` with its status. */
export function restError(e: unknown): {
  status: number;
  body: { error: { code: string; message: string } };
} {
  if (e instanceof KikitoriError)
    return { status: e.status, body: { error: { code: e.code, message: e.message } } };
  if (e instanceof StoreError)
    return { status: e.status, body: { error: { code: e.code, message: e.message } } };
  const fe = e as FastifyError;
  if (fe.validation) {
    return { status: 400, body: { error: { code: "ValidationError", message: fe.message } } };
  }
  if (fe.statusCode && fe.statusCode < 500) {
    return { status: fe.statusCode, body: { error: { code: fe.code ?? "BadRequest", message: fe.message } } };
  }
  return { status: 500, body: { error: { code: "Internal", message: (e as Error).message ?? String(e) } } };
}

/** One listener for every front door. */
export async function buildApp(
  service: Service,
  o: { logRequests: boolean; aws?: AwsFrontDoorOptions },
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
  // The AWS protocols (S3 catch-all, SageMaker, Runtime, ...): specific routes above win over S3's `/*`.
  if (o.aws) await registerAws(app, o.aws);
  return app;
}
