import type { Service } from "../core/service.js";
import { validation } from "../errors.js";
import type { NotifyStore } from "./store.js";
import { Dispatcher } from "./dispatcher.js";
import { checkTarget, EgressRefused, type EgressPolicy } from "./egress.js";
import type { NotifyOptions } from "./options.js";
import { Topics } from "./topics.js";
import { WEBHOOK_EVENTS } from "./webhook.js";

export { loadNotifyOptions, type NotifyOptions } from "./options.js";
export {
  waitForChange,
  invocationEvents,
  invocationListEvents,
  sseFrame,
  readSse,
  type LiveEvent,
} from "./live.js";
export { Topics } from "./topics.js";
export { Dispatcher } from "./dispatcher.js";
export { WEBHOOK_EVENTS } from "./webhook.js";
export type * from "./store.js";

/**
 * The notify box as main.ts wires it: the store, SNS-style topics and the delivery loop (the dispatcher: a
 * cluster-wide loop that main.ts starts on the leader).
 */
export interface Notifier {
  store: NotifyStore;
  topics: Topics;
  dispatcher: Dispatcher;
  options: NotifyOptions;
  /** This service's URL for SNS links, unless `publicUrl` is configured; set once it listens. */
  setBaseUrl(baseUrl: string): void;
}

/** Refuses a webhook before its invocation is accepted: unknown events, or a URL the egress policy forbids. */
export async function checkWebhook(
  webhook: { url: string; events: string[] },
  policy: EgressPolicy,
): Promise<void> {
  const bad = webhook.events.filter((e) => !(WEBHOOK_EVENTS as readonly string[]).includes(e));
  if (bad.length)
    throw validation("webhook.events", `unknown event ${bad.join(", ")}; use ${WEBHOOK_EVENTS.join(", ")}`);
  try {
    await checkTarget(webhook.url, policy);
  } catch (e) {
    if (e instanceof EgressRefused) throw validation("webhook.url", e.message);
    throw e;
  }
}

export function createNotifier(
  service: Service,
  store: NotifyStore,
  options: NotifyOptions,
  log: (msg: string) => void,
): Notifier {
  // Topics wake the dispatcher, which needs the topics: the closure reads `d` once both exist.
  const topics: Topics = new Topics(store, options, () => d.wake());
  const d = new Dispatcher(service, store, topics, options);
  d.on("error", (e) => log(`notify: ${e.message}`));
  d.on("delivery:failed", (del, why) =>
    log(`notify: gave up on ${del.kind} ${del.id} to ${del.target}: ${why}`),
  );
  return {
    store,
    topics,
    dispatcher: d,
    options,
    setBaseUrl(baseUrl) {
      topics.baseUrl = options.publicUrl ?? baseUrl;
    },
  };
}
