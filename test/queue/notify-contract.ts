import assert from "node:assert/strict";
import type { NewDelivery, Subscription } from "../../src/notify/store.js";
import type { TestDatabase } from "../helpers/backends.js";
import { newInvocation, withStores } from "./state-contract.js";

const delivery = (id: string, over: Partial<NewDelivery> = {}): NewDelivery => ({
  id,
  kind: "webhook",
  eventType: "invocation.completed",
  target: "https://example.test/hook",
  scope: "ep",
  body: `{"id":"${id}"}`,
  createdAt: 1000,
  giveUpAt: 100_000,
  ...over,
});

/** The behaviour every NotifyStore shows, on every backend; each method of the contract is exercised. */
export function notifyStoreContract(name: string, fresh: () => Promise<TestDatabase>): void {
  const t = withStores(`notify ${name}`, fresh);

  t(
    "deliveries: added once by id, claimed when due, attempts recorded until delivered or given up",
    async ({ notify: s }) => {
      await s.add([
        delivery("d1", { invocationId: "inv", eventId: 7 }),
        delivery("d2", {
          invocationId: "inv",
          kind: "sns",
          headers: { "x-amz-sns-message-type": "Notification" },
        }),
        delivery("d3", { createdAt: 5000 }),
      ]);
      await s.add([delivery("d1", { body: "changed" })]);
      await s.add([]);
      const d1 = await s.getDelivery("d1");
      assert.deepEqual(
        [d1?.body, d1?.eventId, d1?.attempts, d1?.nextAttemptAt, d1?.giveUpAt],
        ['{"id":"d1"}', 7, 0, 1000, 100_000],
        "the first add wins; due at creation",
      );
      assert.deepEqual((await s.getDelivery("d2"))?.headers, { "x-amz-sns-message-type": "Notification" });
      assert.equal(await s.getDelivery("nope"), undefined);

      assert.deepEqual(
        (await s.claimDue(999, 50_000, 10)).map((d) => d.id),
        [],
        "nothing due yet",
      );
      const claimed = await s.claimDue(2000, 50_000, 10);
      assert.deepEqual(claimed.map((d) => d.id).sort(), ["d1", "d2"]);
      assert.deepEqual(await s.claimDue(2000, 50_000, 10), [], "a claim hides them until it lapses");
      assert.deepEqual(
        (await s.claimDue(6000, 50_000, 1)).map((d) => d.id),
        ["d3"],
        "at most `limit`",
      );

      await s.recordAttempt(
        "d1",
        { n: 1, at: 2000, status: 500, error: "HTTP 500", durationMs: 30 },
        { delivered: false, nextAttemptAt: 9000 },
      );
      await s.recordAttempt("d1", { n: 2, at: 9000, status: 204, durationMs: 12 }, { delivered: true });
      await s.recordAttempt("d2", { n: 1, at: 2000, error: "refused", durationMs: 1 }, { delivered: false });
      const of = await s.deliveriesOf("inv");
      assert.deepEqual(
        of.map((d) => d.id),
        ["d1", "d2"],
      );
      const [a, b] = of;
      assert.deepEqual(
        [a!.attempts, a!.lastStatus, a!.lastError, a!.deliveredAt, a!.failedAt],
        [2, 204, undefined, 9012, undefined],
      );
      assert.deepEqual(a!.history, [
        { n: 1, at: 2000, status: 500, error: "HTTP 500", durationMs: 30 },
        { n: 2, at: 9000, status: 204, error: undefined, durationMs: 12 },
      ]);
      assert.deepEqual(
        [b!.attempts, b!.lastError, b!.failedAt, b!.deliveredAt],
        [1, "refused", 2001, undefined],
      );
      await s.recordAttempt("d3", { n: 1, at: 6000, status: 200, durationMs: 1 }, { delivered: true });
      assert.deepEqual(
        await s.claimDue(1e12, 1e12 + 1, 10),
        [],
        "delivered and failed ones are never claimed",
      );
      assert.deepEqual(await s.deliveriesOf("other"), []);
    },
  );

  t(
    "outbox delivery exactly once: two dispatchers expand one event and claim its deliveries once",
    async ({ state, notify }, db) => {
      const inv = await state.enqueue(newInvocation());
      await state.finish(
        inv.id,
        { state: "Failed", error: { code: "ModelError", message: "x" } },
        { from: ["Queued"] },
        10,
      );
      const other = await db.open();
      try {
        // Both see the event before either marks it (a crash between the steps looks the same).
        const seen = await Promise.all([state.pendingEvents(10), other.state.pendingEvents(10)]);
        await Promise.all(
          [notify, other.notify].map(async (n, k) => {
            for (const ev of seen[k]!) {
              await n.add([
                delivery(`msg_completed_${ev.invocationId}`, {
                  invocationId: ev.invocationId,
                  eventId: ev.id,
                  createdAt: 10,
                }),
              ]);
              await [state, other.state][k]!.markEventsDelivered([ev.id]);
            }
          }),
        );
        assert.deepEqual(await state.pendingEvents(10), []);
        assert.equal((await notify.deliveriesOf(inv.id)).length, 1, "one delivery for the one event");
        const claims = await Promise.all([
          notify.claimDue(100, 10_000, 10),
          other.notify.claimDue(100, 10_000, 10),
        ]);
        assert.equal(claims.flat().length, 1, "claimed by one dispatcher only");
      } finally {
        await other.close();
      }
    },
  );

  t("concurrent claims from two connections split the due deliveries", async ({ notify }, db) => {
    await notify.add(Array.from({ length: 60 }, (_, i) => delivery(`c${i}`, { createdAt: i })));
    const other = await db.open();
    try {
      const got: string[] = [];
      await Promise.all(
        [notify, other.notify].map(async (n) => {
          for (;;) {
            const c = await n.claimDue(1000, 1_000_000, 4);
            if (!c.length) return;
            got.push(...c.map((d) => d.id));
          }
        }),
      );
      assert.equal(got.length, 60);
      assert.equal(new Set(got).size, 60, "no delivery claimed twice");
    } finally {
      await other.close();
    }
  });

  t("secrets: set replaces, ensure keeps the first, racing ensures agree", async ({ notify: s }, db) => {
    assert.equal(await s.getSecret("x"), undefined);
    await s.setSecret("x", "one", 1);
    await s.setSecret("x", "two", 2);
    assert.deepEqual(await s.getSecret("x"), { secret: "two", createdAt: 2 });
    assert.deepEqual(await s.ensureSecret("x", "three", 3), { secret: "two", createdAt: 2 });
    const other = await db.open();
    try {
      const [a, b] = await Promise.all([
        s.ensureSecret("y", "mine", 4),
        other.notify.ensureSecret("y", "theirs", 5),
      ]);
      assert.deepEqual(a, b);
    } finally {
      await other.close();
    }
  });

  t(
    "topics and subscriptions: idempotent create, confirm by token, list, delete with the topic",
    async ({ notify: s }) => {
      const topic = {
        arn: "arn:aws:sns:us-east-1:0:t",
        name: "t",
        attributes: { DisplayName: "T" },
        createdAt: 1,
      };
      assert.deepEqual(await s.createTopic(topic), topic);
      assert.deepEqual(
        await s.createTopic({ ...topic, arn: "arn:other", attributes: {} }),
        topic,
        "same name: the existing topic",
      );
      await s.createTopic({ arn: "arn:aws:sns:us-east-1:0:a", name: "a", attributes: {}, createdAt: 2 });
      assert.deepEqual(
        (await s.listTopics()).map((x) => x.name),
        ["a", "t"],
      );
      assert.deepEqual(await s.getTopic(topic.arn), topic);
      assert.equal(await s.getTopic("arn:none"), undefined);

      const sub = (arn: string, endpoint: string, createdAt: number): Subscription => ({
        arn,
        topicArn: topic.arn,
        protocol: "https",
        endpoint,
        token: `tok-${arn}`,
        status: "PendingConfirmation",
        createdAt,
      });
      const s1 = await s.addSubscription(sub("s1", "https://one.test/", 1));
      assert.deepEqual(
        await s.addSubscription(sub("s1b", "https://one.test/", 2)),
        s1,
        "same endpoint: the existing subscription",
      );
      await s.addSubscription(sub("s2", "https://two.test/", 3));
      assert.deepEqual(
        (await s.listSubscriptions(topic.arn)).map((x) => x.arn),
        ["s1", "s2"],
      );
      assert.deepEqual(
        (await s.listSubscriptions()).map((x) => x.arn),
        ["s1", "s2"],
      );
      assert.equal(await s.confirmSubscription(topic.arn, "wrong", 5), undefined);
      const confirmed = await s.confirmSubscription(topic.arn, "tok-s1", 5);
      assert.deepEqual([confirmed?.status, confirmed?.confirmedAt], ["Confirmed", 5]);
      assert.equal(
        (await s.confirmSubscription(topic.arn, "tok-s1", 6))?.confirmedAt,
        5,
        "confirming again keeps the time",
      );
      assert.equal((await s.getSubscription("s1"))?.status, "Confirmed");
      assert.equal(await s.deleteSubscription("s2"), true);
      assert.equal(await s.deleteSubscription("s2"), false);
      assert.equal(await s.getSubscription("s2"), undefined);
      assert.equal(await s.deleteTopic(topic.arn), true);
      assert.equal(await s.deleteTopic(topic.arn), false);
      assert.deepEqual(await s.listSubscriptions(), [], "its subscriptions went with it");
    },
  );
}
