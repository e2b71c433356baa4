/** One notification to one target; its id is the stable `webhook-id` (or SNS MessageId) of every attempt. */
export interface Delivery {
  id: string;
  eventId?: number;
  invocationId?: string;
  kind: "webhook" | "sns";
  eventType: string;
  target: string;
  /** Webhooks: the endpoint whose secret signs it. SNS: the subscription ARN. */
  scope?: string;
  body: string;
  headers?: Record<string, string>;
  attempts: number;
  createdAt: number;
  nextAttemptAt: number;
  giveUpAt: number;
  lastStatus?: number;
  lastError?: string;
  deliveredAt?: number;
  failedAt?: number;
}

export type NewDelivery = Omit<
  Delivery,
  "attempts" | "lastStatus" | "lastError" | "deliveredAt" | "failedAt" | "nextAttemptAt"
>;

export interface Attempt {
  n: number;
  at: number;
  status?: number;
  error?: string;
  durationMs: number;
}

export interface Topic {
  arn: string;
  name: string;
  attributes: Record<string, string>;
  createdAt: number;
}

export interface Subscription {
  arn: string;
  topicArn: string;
  protocol: "http" | "https";
  endpoint: string;
  token: string;
  status: "PendingConfirmation" | "Confirmed";
  createdAt: number;
  confirmedAt?: number;
}

/**
 * Durable state of the notify box: deliveries (one notification to one target, with its attempts), signing
 * secrets, SNS-style topics and subscriptions. Each backend implements it (src/queue/<backend>/notify-store.ts)
 * and passes test/queue/notify-contract.ts. Every method is one short transaction of its own.
 */
export interface NotifyStore {
  /**
   * Adds deliveries; one whose id exists is left as it is. Ids derived from what caused them make this the
   * idempotent half of the outbox hand-off: expanding an outbox event twice adds its deliveries once.
   */
  add(deliveries: NewDelivery[]): Promise<void>;
  /**
   * Claims up to `limit` due deliveries: pushes their next attempt to `claimUntil`, so that a crash in the
   * middle of an attempt only delays the retry, and two dispatchers never claim the same delivery.
   */
  claimDue(now: number, claimUntil: number, limit: number): Promise<Delivery[]>;
  recordAttempt(
    id: string,
    attempt: Attempt,
    outcome: { delivered: true } | { delivered: false; nextAttemptAt?: number },
  ): Promise<void>;
  deliveriesOf(invocationId: string): Promise<(Delivery & { history: Attempt[] })[]>;
  getDelivery(id: string): Promise<Delivery | undefined>;

  getSecret(scope: string): Promise<{ secret: string; createdAt: number } | undefined>;
  /** Sets the secret of a scope, replacing any. */
  setSecret(scope: string, secret: string, now: number): Promise<void>;
  /** Sets the secret of a scope unless it has one; returns the one in force (two racing callers agree). */
  ensureSecret(scope: string, secret: string, now: number): Promise<{ secret: string; createdAt: number }>;

  /** Idempotent, as SNS's CreateTopic: an existing topic of that name is returned as is. */
  createTopic(t: Topic): Promise<Topic>;
  getTopic(arn: string): Promise<Topic | undefined>;
  listTopics(): Promise<Topic[]>;
  /** Removes the topic and its subscriptions; false when there was none. */
  deleteTopic(arn: string): Promise<boolean>;
  /** Subscribing the same endpoint twice returns the existing subscription, as SNS does. */
  addSubscription(s: Subscription): Promise<Subscription>;
  getSubscription(arn: string): Promise<Subscription | undefined>;
  listSubscriptions(topicArn?: string): Promise<Subscription[]>;
  confirmSubscription(topicArn: string, token: string, now: number): Promise<Subscription | undefined>;
  deleteSubscription(arn: string): Promise<boolean>;
}
