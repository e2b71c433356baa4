import { randomBytes, randomUUID } from "node:crypto";
import { KikitoriError, notFound, validation } from "../errors.js";
import type { NewDelivery, NotifyStore, Subscription, Topic } from "../queue/sqlite/notify-store.js";
import { checkTarget, EgressRefused, type EgressPolicy } from "./egress.js";
import {
  keyFingerprint,
  newSigningKey,
  signEnvelope,
  signingCertificatePem,
  type Envelope,
} from "./sns-message.js";

const SIGNING_KEY_SCOPE = "sns:signing-key";
/** SNS's limit on a message. */
const MAX_MESSAGE_BYTES = 256 * 1024;

export interface TopicsOptions {
  region: string;
  accountId: string;
  retryForMs: number;
  egress: EgressPolicy;
}

/**
 * SNS-style topics with http/https subscriptions: the confirmation handshake, and fan-out of published
 * messages into durable deliveries (sent by the dispatcher, retried like webhooks).
 */
export class Topics {
  /** Base URL of this service for SubscribeURL, UnsubscribeURL and SigningCertURL; set once listening. */
  baseUrl = "http://127.0.0.1";

  constructor(
    private readonly store: NotifyStore,
    private readonly o: TopicsOptions,
    private readonly wake: () => void,
  ) {}

  topicArn = (name: string) => `arn:aws:sns:${this.o.region}:${this.o.accountId}:${name}`;

  private signingKey(): string {
    const cur = this.store.getSecret(SIGNING_KEY_SCOPE);
    if (cur) return cur.secret;
    this.store.setSecret(SIGNING_KEY_SCOPE, newSigningKey(), Date.now());
    return this.store.getSecret(SIGNING_KEY_SCOPE)!.secret;
  }

  private certificate?: string;

  /** The X.509 certificate (PEM) whose public key verifies every envelope's Signature (at SigningCertURL). */
  signingCertificate = () => (this.certificate ??= signingCertificatePem(this.signingKey()));
  /** SNS's shape of the name (`SimpleNotificationService-<32 hex>.pem`), so validators' URL checks pass. */
  signingCertUrl = () =>
    `${this.baseUrl}/sns/SimpleNotificationService-${keyFingerprint(this.signingKey())}.pem`;

  createTopic(name: string, attributes: Record<string, string> = {}): Topic {
    if (!/^[A-Za-z0-9_-]{1,256}$/.test(name)) {
      throw validation(
        "Name",
        "1 to 256 letters, digits, hyphens and underscores (FIFO topics are not supported)",
      );
    }
    return this.store.createTopic({ arn: this.topicArn(name), name, attributes, createdAt: Date.now() });
  }

  getTopic(arn: string): Topic {
    const t = this.store.getTopic(arn);
    if (!t) throw notFound("Topic", arn);
    return t;
  }

  listTopics = () => this.store.listTopics();

  deleteTopic(arn: string): void {
    this.store.deleteTopic(arn);
  }

  /** Records a pending subscription and sends the endpoint a SubscriptionConfirmation to GET. */
  async subscribe(topicArn: string, protocol: string, endpoint: string): Promise<Subscription> {
    this.getTopic(topicArn);
    if (protocol !== "http" && protocol !== "https") {
      throw validation("Protocol", `"${protocol}" is not supported; use http or https`);
    }
    if (!endpoint?.startsWith(`${protocol}://`)) {
      throw validation("Endpoint", `must be a ${protocol}:// URL for protocol ${protocol}`);
    }
    try {
      await checkTarget(endpoint, this.o.egress);
    } catch (e) {
      if (e instanceof EgressRefused) throw validation("Endpoint", e.message);
      throw e;
    }
    const sub = this.store.addSubscription({
      arn: `${topicArn}:${randomUUID()}`,
      topicArn,
      protocol,
      endpoint,
      token: randomBytes(64).toString("hex"),
      status: "PendingConfirmation",
      createdAt: Date.now(),
    });
    if (sub.status === "PendingConfirmation") this.sendConfirmation(sub);
    return sub;
  }

  private sendConfirmation(sub: Subscription): void {
    const q = (action: string) =>
      `${this.baseUrl}/sns/?Action=${action}&TopicArn=${encodeURIComponent(sub.topicArn)}&Token=${sub.token}`;
    const envelope = this.envelope({
      Type: "SubscriptionConfirmation",
      MessageId: randomUUID(),
      Token: sub.token,
      TopicArn: sub.topicArn,
      Message: `You have chosen to subscribe to the topic ${sub.topicArn}.\nTo confirm the subscription, visit the SubscribeURL included in this message.`,
      SubscribeURL: q("ConfirmSubscription"),
      Timestamp: new Date().toISOString(),
    });
    this.store.add([this.delivery(sub, envelope)]);
    this.wake();
  }

  confirm(topicArn: string, token: string): Subscription {
    const sub = this.store.confirmSubscription(topicArn, token, Date.now());
    if (!sub) throw new KikitoriError("NotFound", "no pending subscription of that topic has this Token");
    return sub;
  }

  unsubscribe(arn: string): void {
    if (!this.store.deleteSubscription(arn)) throw notFound("Subscription", arn);
  }

  listSubscriptions = (topicArn?: string) => this.store.listSubscriptions(topicArn);

  /** Publishes to every confirmed subscription; returns the MessageId. */
  publish(topicArn: string, message: string, subject?: string): string {
    const { messageId, deliveries } = this.fanOut(topicArn, message, subject);
    this.store.add(deliveries);
    this.wake();
    return messageId;
  }

  /** The deliveries of one message to a topic (for the dispatcher, which commits them with its outbox row). */
  fanOut(
    topicArn: string,
    message: string,
    subject?: string,
    invocationId?: string,
    eventId?: number,
  ): { messageId: string; deliveries: NewDelivery[] } {
    this.getTopic(topicArn);
    if (typeof message !== "string" || message.length === 0) throw validation("Message", "is required");
    if (Buffer.byteLength(message) > MAX_MESSAGE_BYTES)
      throw validation("Message", `larger than ${MAX_MESSAGE_BYTES} bytes`);
    const messageId = randomUUID();
    const deliveries = this.store
      .listSubscriptions(topicArn)
      .filter((s) => s.status === "Confirmed")
      .map((sub) => {
        const envelope = this.envelope({
          Type: "Notification",
          MessageId: messageId,
          TopicArn: topicArn,
          Subject: subject,
          Message: message,
          Timestamp: new Date().toISOString(),
        });
        envelope.UnsubscribeURL = `${this.baseUrl}/sns/?Action=Unsubscribe&SubscriptionArn=${encodeURIComponent(sub.arn)}`;
        return { ...this.delivery(sub, envelope), invocationId, eventId };
      });
    return { messageId, deliveries };
  }

  private envelope(fields: Omit<Envelope, "Signature" | "SignatureVersion" | "SigningCertURL">): Envelope {
    return signEnvelope(fields, this.signingKey(), this.signingCertUrl());
  }

  private delivery(sub: Subscription, e: Envelope): NewDelivery {
    const now = Date.now();
    return {
      id: `${e.MessageId}:${sub.arn.slice(sub.arn.lastIndexOf(":") + 1)}`,
      kind: "sns",
      eventType: e.Type,
      target: sub.endpoint,
      scope: sub.arn,
      body: JSON.stringify(e),
      headers: {
        "content-type": "text/plain; charset=UTF-8",
        "x-amz-sns-message-type": e.Type,
        "x-amz-sns-message-id": e.MessageId,
        "x-amz-sns-topic-arn": e.TopicArn,
        ...(e.Type === "Notification" ? { "x-amz-sns-subscription-arn": sub.arn } : {}),
      },
      createdAt: now,
      giveUpAt: now + this.o.retryForMs,
    };
  }
}
