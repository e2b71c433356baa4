import { randomBytes, randomUUID } from "node:crypto";
import { KikitoriError, notFound, validation } from "../errors.js";
import type { NewDelivery, NotifyStore, Subscription, Topic } from "./store.js";
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

  private signingKeyPem?: string;

  /** The key that signs envelopes: one per installation, made on first use (racing processes agree on one). */
  private async signingKey(): Promise<string> {
    this.signingKeyPem ??= (
      await this.store.ensureSecret(SIGNING_KEY_SCOPE, newSigningKey(), Date.now())
    ).secret;
    return this.signingKeyPem;
  }

  private certificate?: string;

  /** The X.509 certificate (PEM) whose public key verifies every envelope's Signature (at SigningCertURL). */
  signingCertificate = async () => (this.certificate ??= signingCertificatePem(await this.signingKey()));
  /** SNS's shape of the name (`SimpleNotificationService-<32 hex>.pem`), so validators' URL checks pass. */
  signingCertUrl = async () =>
    `${this.baseUrl}/sns/SimpleNotificationService-${keyFingerprint(await this.signingKey())}.pem`;

  async createTopic(name: string, attributes: Record<string, string> = {}): Promise<Topic> {
    if (!/^[A-Za-z0-9_-]{1,256}$/.test(name)) {
      throw validation(
        "Name",
        "1 to 256 letters, digits, hyphens and underscores (FIFO topics are not supported)",
      );
    }
    return this.store.createTopic({ arn: this.topicArn(name), name, attributes, createdAt: Date.now() });
  }

  async getTopic(arn: string): Promise<Topic> {
    const t = await this.store.getTopic(arn);
    if (!t) throw notFound("Topic", arn);
    return t;
  }

  listTopics = () => this.store.listTopics();

  async deleteTopic(arn: string): Promise<void> {
    await this.store.deleteTopic(arn);
  }

  /** Records a pending subscription and sends the endpoint a SubscriptionConfirmation to GET. */
  async subscribe(topicArn: string, protocol: string, endpoint: string): Promise<Subscription> {
    await this.getTopic(topicArn);
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
    const sub = await this.store.addSubscription({
      arn: `${topicArn}:${randomUUID()}`,
      topicArn,
      protocol,
      endpoint,
      token: randomBytes(64).toString("hex"),
      status: "PendingConfirmation",
      createdAt: Date.now(),
    });
    if (sub.status === "PendingConfirmation") await this.sendConfirmation(sub);
    return sub;
  }

  private async sendConfirmation(sub: Subscription): Promise<void> {
    const q = (action: string) =>
      `${this.baseUrl}/sns/?Action=${action}&TopicArn=${encodeURIComponent(sub.topicArn)}&Token=${sub.token}`;
    const envelope = await this.envelope({
      Type: "SubscriptionConfirmation",
      MessageId: randomUUID(),
      Token: sub.token,
      TopicArn: sub.topicArn,
      Message: `You have chosen to subscribe to the topic ${sub.topicArn}.\nTo confirm the subscription, visit the SubscribeURL included in this message.`,
      SubscribeURL: q("ConfirmSubscription"),
      Timestamp: new Date().toISOString(),
    });
    await this.store.add([this.delivery(sub, envelope)]);
    this.wake();
  }

  async confirm(topicArn: string, token: string): Promise<Subscription> {
    const sub = await this.store.confirmSubscription(topicArn, token, Date.now());
    if (!sub) throw new KikitoriError("NotFound", "no pending subscription of that topic has this Token");
    return sub;
  }

  async unsubscribe(arn: string): Promise<void> {
    if (!(await this.store.deleteSubscription(arn))) throw notFound("Subscription", arn);
  }

  listSubscriptions = (topicArn?: string) => this.store.listSubscriptions(topicArn);

  /** Publishes to every confirmed subscription; returns the MessageId. */
  async publish(topicArn: string, message: string, subject?: string): Promise<string> {
    const { messageId, deliveries } = await this.fanOut(topicArn, message, subject);
    await this.store.add(deliveries);
    this.wake();
    return messageId;
  }

  /**
   * The deliveries of one message to a topic. The dispatcher passes a `messageId` derived from the outbox
   * event, so expanding the event again yields the same delivery ids (added once).
   */
  async fanOut(
    topicArn: string,
    message: string,
    subject?: string,
    cause: { invocationId?: string; eventId?: number; messageId?: string } = {},
  ): Promise<{ messageId: string; deliveries: NewDelivery[] }> {
    await this.getTopic(topicArn);
    if (typeof message !== "string" || message.length === 0) throw validation("Message", "is required");
    if (Buffer.byteLength(message) > MAX_MESSAGE_BYTES)
      throw validation("Message", `larger than ${MAX_MESSAGE_BYTES} bytes`);
    const messageId = cause.messageId ?? randomUUID();
    const subscriptions = (await this.store.listSubscriptions(topicArn)).filter(
      (s) => s.status === "Confirmed",
    );
    const deliveries: NewDelivery[] = [];
    for (const sub of subscriptions) {
      const envelope = await this.envelope({
        Type: "Notification",
        MessageId: messageId,
        TopicArn: topicArn,
        Subject: subject,
        Message: message,
        Timestamp: new Date().toISOString(),
      });
      envelope.UnsubscribeURL = `${this.baseUrl}/sns/?Action=Unsubscribe&SubscriptionArn=${encodeURIComponent(sub.arn)}`;
      deliveries.push({
        ...this.delivery(sub, envelope),
        invocationId: cause.invocationId,
        eventId: cause.eventId,
      });
    }
    return { messageId, deliveries };
  }

  private async envelope(
    fields: Omit<Envelope, "Signature" | "SignatureVersion" | "SigningCertURL">,
  ): Promise<Envelope> {
    return signEnvelope(fields, await this.signingKey(), await this.signingCertUrl());
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
