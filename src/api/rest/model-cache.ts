import type { FastifyInstance } from "fastify";
import { ModelRegistry } from "../../models/registry.js";

/** `GET /v1/model-cache`: the ggml weights in the model cache (what `kikitori models list` shows). */
export function registerModelCache(app: FastifyInstance, o: { dir: string; defaultModel: string }): void {
  const registry = new ModelRegistry({ dir: o.dir });
  app.get(
    "/v1/model-cache",
    {
      config: { auth: { allow: "admin" } },
      schema: {
        tags: ["models"],
        summary: "The Whisper weights in the model cache: name, size, SHA-256, and which is the default",
        response: {
          200: {
            type: "object",
            properties: {
              models: {
                type: "array",
                items: {
                  type: "object",
                  properties: {
                    name: { type: "string" },
                    bytes: { type: "integer" },
                    sha256: { type: "string" },
                    default: { type: "boolean" },
                  },
                },
              },
            },
          },
        },
      },
    },
    async () => ({
      // File paths stay on the server.
      models: (await registry.list()).map((m) => ({
        name: m.name,
        bytes: m.bytes,
        sha256: m.sha256,
        default: m.name === o.defaultModel,
      })),
    }),
  );
}
