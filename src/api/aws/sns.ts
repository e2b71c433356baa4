import type { FastifyInstance, FastifyReply } from "fastify";
import { KikitoriError } from "../../errors.js";
import type { Subscription } from "../../notify/index.js";
import type { Topics } from "../../notify/topics.js";
import type { QueryService } from "./context.js";
import { AwsApiError } from "./json-protocol.js";
import { sendQueryError, sendQueryResult } from "./query-protocol.js";

const NAMESPACE = "http://sns.amazonaws.com/doc/2010-03-31/";

/** SNS's error names for kikitori's codes. */
function snsError(e: unknown): unknown {
  if (!(e instanceof KikitoriError)) return e;
  if (e.code === "NotFound") return new AwsApiError("NotFound", 404, e.message);
  if (e.code === "ValidationError") return new AwsApiError("InvalidParameter", 400, e.message);
  return e;
}

const required = (p: URLSearchParams, name: string): string => {
  const v = p.get(name);
  if (!v) throw new AwsApiError("InvalidParameter", 400, `Invalid parameter: ${name} is required`);
  return v;
};

/** `Attributes.entry.N.key` / `.value` pairs of an awsQuery map. */
function attributeMap(p: URLSearchParams, prefix: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 1; p.has(`${prefix}.entry.${i}.key`); i++) {
    out[p.get(`${prefix}.entry.${i}.key`)!] = p.get(`${prefix}.entry.${i}.value`) ?? "";
  }
  return out;
}

const member = (s: Subscription, accountId: string) => ({
  SubscriptionArn: s.status === "Confirmed" ? s.arn : "PendingConfirmation",
  Owner: accountId,
  Protocol: s.protocol,
  Endpoint: s.endpoint,
  TopicArn: s.topicArn,
});

/**
 * The SNS awsQuery service for the AWS router (`services.sns`): topics, http/https subscriptions with the
 * confirmation handshake, and Publish. Topics feed SageMaker's AsyncInferenceConfig NotificationConfig.
 */
export function snsService(topics: Topics, accountId = "000000000000"): QueryService {
  type Action = QueryService["actions"][string];
  const wrap =
    (
      f: (
        p: URLSearchParams,
      ) => Promise<Record<string, unknown> | undefined> | Record<string, unknown> | undefined,
    ): Action =>
    async (p) => {
      try {
        return await f(p);
      } catch (e) {
        throw snsError(e);
      }
    };
  return {
    protocol: "query",
    namespace: NAMESPACE,
    actions: {
      CreateTopic: wrap(async (p) => ({
        TopicArn: (await topics.createTopic(required(p, "Name"), attributeMap(p, "Attributes"))).arn,
      })),
      DeleteTopic: wrap(async (p) => {
        await topics.deleteTopic(required(p, "TopicArn"));
        return undefined;
      }),
      ListTopics: wrap(async () => ({
        Topics: { member: (await topics.listTopics()).map((t) => ({ TopicArn: t.arn })) },
      })),
      GetTopicAttributes: wrap(async (p) => {
        const t = await topics.getTopic(required(p, "TopicArn"));
        const subs = await topics.listSubscriptions(t.arn);
        const attrs: Record<string, string> = {
          TopicArn: t.arn,
          Owner: accountId,
          DisplayName: t.attributes.DisplayName ?? "",
          SubscriptionsConfirmed: String(subs.filter((s) => s.status === "Confirmed").length),
          SubscriptionsPending: String(subs.filter((s) => s.status !== "Confirmed").length),
          SubscriptionsDeleted: "0",
          ...t.attributes,
        };
        return { Attributes: { entry: Object.entries(attrs).map(([key, value]) => ({ key, value })) } };
      }),
      Subscribe: wrap(async (p) => {
        const sub = await topics.subscribe(
          required(p, "TopicArn"),
          required(p, "Protocol"),
          required(p, "Endpoint"),
        );
        const showArn = sub.status === "Confirmed" || p.get("ReturnSubscriptionArn") === "true";
        return { SubscriptionArn: showArn ? sub.arn : "pending confirmation" };
      }),
      ConfirmSubscription: wrap(async (p) => ({
        SubscriptionArn: (await topics.confirm(required(p, "TopicArn"), required(p, "Token"))).arn,
      })),
      Unsubscribe: wrap(async (p) => {
        await topics.unsubscribe(required(p, "SubscriptionArn"));
        return undefined;
      }),
      ListSubscriptions: wrap(async () => ({
        Subscriptions: { member: (await topics.listSubscriptions()).map((s) => member(s, accountId)) },
      })),
      ListSubscriptionsByTopic: wrap(async (p) => {
        const arn = required(p, "TopicArn");
        await topics.getTopic(arn);
        const subs = await topics.listSubscriptions(arn);
        return { Subscriptions: { member: subs.map((s) => member(s, accountId)) } };
      }),
      Publish: wrap(async (p) => {
        if (p.get("TargetArn") || p.get("PhoneNumber"))
          throw new AwsApiError(
            "InvalidParameter",
            400,
            "Invalid parameter: only TopicArn targets are supported",
          );
        return {
          MessageId: await topics.publish(
            required(p, "TopicArn"),
            required(p, "Message"),
            p.get("Subject") ?? undefined,
          ),
        };
      }),
    },
  };
}

/**
 * The unsigned GET routes a subscriber follows: `SubscribeURL` (ConfirmSubscription with the Token as the
 * proof), `UnsubscribeURL`, and the key that verifies envelope signatures (`SigningCertURL`).
 */
export function registerSnsLinks(app: FastifyInstance, topics: Topics, accountId = "000000000000"): void {
  const sns = snsService(topics, accountId);
  app.get<{ Querystring: Record<string, string> }>(
    "/sns/",
    // Public, as on AWS: the subscription's token (ConfirmSubscription) or its unguessable ARN is the proof.
    { config: { auth: { allow: "public" } }, schema: { hide: true } },
    async (req, reply) => {
      const action = req.query.Action;
      if (action !== "ConfirmSubscription" && action !== "Unsubscribe") {
        return sendQueryError(reply, {
          code: "InvalidAction",
          status: 400,
          message: "only ConfirmSubscription and Unsubscribe links",
        });
      }
      try {
        const handler = sns.actions[action]!;
        const result = await handler(new URLSearchParams(req.query), undefined as never);
        return sendQueryResult(reply, action, NAMESPACE, result);
      } catch (e) {
        const err =
          e instanceof AwsApiError ? e : new AwsApiError("InternalFailure", 500, (e as Error).message);
        return sendQueryError(reply, err);
      }
    },
  );
  // The certificate at SigningCertURL; signing-key.pem is the name envelopes signed before 0.2 carry.
  const sendCertificate = async (reply: FastifyReply) =>
    reply.header("content-type", "application/x-pem-file").send(await topics.signingCertificate());
  app.get(
    "/sns/signing-key.pem",
    { config: { auth: { allow: "public" } }, schema: { hide: true } },
    async (_req, reply) => sendCertificate(reply),
  );
  app.get<{ Params: { file: string } }>(
    "/sns/SimpleNotificationService-:file",
    { config: { auth: { allow: "public" } }, schema: { hide: true } },
    async (req, reply) =>
      (await topics.signingCertUrl()).endsWith(`/SimpleNotificationService-${req.params.file}`)
        ? sendCertificate(reply)
        : reply.code(404).send({ error: "NotFound", message: "no such signing certificate" }),
  );
}
