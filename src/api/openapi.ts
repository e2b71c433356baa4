/**
 * Completes the native API's OpenAPI document: every operation may answer the catalogue's errors in the
 * native shape `{ error: { code, message } }` (OpenAI's routes in OpenAI's shape), which each route need not repeat.
 */
const ERROR_STATUSES: Record<string, string> = {
  "400": "Bad request: a field or parameter is wrong (the message names it)",
  "401": "Missing or invalid API key",
  "403": "The key's scope does not allow this, or the object lies outside the caller's prefix",
  "404": "No such resource (or not the caller's)",
  "408": "The request body arrived too slowly",
  "409": "Conflict with the resource's current state",
  "413": "Too large",
  "415": "Unsupported media type",
  "422": "The invocation failed: its failure document",
  "501": "Not implemented by kikitori",
  "503": "A model server is unavailable",
  "507": "The server is out of storage",
};

const errorBody = (error: object) => ({
  "application/json": { schema: { type: "object", required: ["error"], properties: { error } } },
});

const nativeError = errorBody({
  type: "object",
  required: ["code", "message"],
  properties: { code: { type: "string" }, message: { type: "string" } },
});

/** OpenAI's own error shape, which its SDKs parse: `param` and `code` may be null. */
const openAiError = errorBody({
  type: "object",
  required: ["message", "type"],
  properties: {
    message: { type: "string" },
    type: { type: "string" },
    param: { type: ["string", "null"] },
    code: { type: ["string", "null"] },
  },
});

type Operation = { responses?: Record<string, unknown> };

export function documentErrors<T extends object>(doc: T): T {
  const paths = (doc as { paths?: Record<string, Record<string, Operation> | undefined> }).paths ?? {};
  for (const [path, item] of Object.entries(paths)) {
    const content = path.startsWith("/v1/audio/") ? openAiError : nativeError;
    for (const op of Object.values(item ?? {})) {
      if (typeof op !== "object" || op === null || !("responses" in op)) continue;
      const responses = (op.responses ??= {});
      for (const [status, description] of Object.entries(ERROR_STATUSES))
        responses[status] ??= { description, content };
    }
  }
  return doc;
}
