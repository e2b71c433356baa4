import { randomUUID } from "node:crypto";
import type { FastifyReply } from "fastify";
import { XMLBuilder } from "fast-xml-parser";

/** awsQuery (STS, IAM, SNS): form-encoded requests, XML replies. */

const builder = new XMLBuilder({
  ignoreAttributes: false,
  attributeNamePrefix: "@_",
  suppressEmptyNode: false,
});

/** Form body (`Action=...&Version=...`) → its parameters. */
export function parseForm(body: Buffer): URLSearchParams {
  return new URLSearchParams(body.toString("utf8"));
}

/** `<{Action}Response xmlns><{Action}Result>…</{Action}Result><ResponseMetadata>…</…></…>`. */
export function sendQueryResult(
  reply: FastifyReply,
  action: string,
  namespace: string,
  result: Record<string, unknown> | undefined,
): FastifyReply {
  const requestId = randomUUID();
  const doc = {
    [`${action}Response`]: {
      "@_xmlns": namespace,
      ...(result ? { [`${action}Result`]: result } : {}),
      ResponseMetadata: { RequestId: requestId },
    },
  };
  return reply
    .code(200)
    .header("x-amzn-requestid", requestId)
    .header("content-type", "text/xml")
    .send(`<?xml version="1.0" encoding="UTF-8"?>\n${builder.build(doc) as string}`);
}

/** `<ErrorResponse><Error><Type>Sender</Type><Code/><Message/></Error><RequestId/></ErrorResponse>`. */
export function sendQueryError(
  reply: FastifyReply,
  err: { code: string; status: number; message: string },
): FastifyReply {
  const requestId = randomUUID();
  const doc = {
    ErrorResponse: {
      Error: { Type: err.status >= 500 ? "Receiver" : "Sender", Code: err.code, Message: err.message },
      RequestId: requestId,
    },
  };
  return reply
    .code(err.status)
    .header("x-amzn-requestid", requestId)
    .header("content-type", "text/xml")
    .send(`<?xml version="1.0" encoding="UTF-8"?>\n${builder.build(doc) as string}`);
}
