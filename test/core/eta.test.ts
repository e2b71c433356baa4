/** The arithmetic of estimated finish times (src/core/eta.ts); the end-to-end check is eta-batch.test.ts. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { estimateFinish, type EtaInputs } from "../../src/core/eta.js";
import { etaText } from "../../src/cli/transcribe.js";

const now = 1_000_000;
/** Seconds from now to the estimate. */
const left = (eta: number | undefined) => (eta === undefined ? undefined : (eta - now) / 1000);
const base: EtaInputs = { now, secondsPerByte: 0.001, running: [], slots: 1, coldStartSeconds: 0 };

test("a queued invocation waits for the work in flight and the bytes ahead, then its own", () => {
  const eta = estimateFinish(
    { state: "Queued", inputBytes: 2000 },
    {
      ...base,
      bytesAhead: 3000,
      // 1000 bytes, 0.4 s in: 0.6 s left.
      running: [{ state: "Running", startedAt: now - 400, inputBytes: 1000 }],
    },
  );
  assert.equal(eta, now + 5600);
});

test("slots share the queue ahead; the invocation's own work is not shared", () => {
  const eta = estimateFinish({ state: "Queued", inputBytes: 2000 }, { ...base, bytesAhead: 8000, slots: 4 });
  assert.equal(left(eta), 2 + 8 / 4);
});

test("with no instance in service the cold start comes first", () => {
  const eta = estimateFinish({ state: "Queued", inputBytes: 1000 }, { ...base, coldStartSeconds: 7.5 });
  assert.equal(left(eta), 8.5);
});

test("a running invocation with progress is estimated from its own pace", () => {
  // 20 of 100 audio seconds in 4 s: 16 s left, whatever the endpoint's pace per byte says.
  const eta = estimateFinish(
    { state: "Running", startedAt: now - 4000, progressSeconds: 20, totalSeconds: 100, inputBytes: 1 },
    base,
  );
  assert.equal(left(eta), 16);
});

test("a running invocation without progress: its bytes at the endpoint's pace, less the time spent", () => {
  const eta = estimateFinish({ state: "Running", startedAt: now - 1500, inputBytes: 4000 }, base);
  assert.equal(left(eta), 2.5);
  const late = estimateFinish({ state: "Running", startedAt: now - 9000, inputBytes: 4000 }, base);
  assert.equal(left(late), 0, "past its estimate: due now, never negative");
});

test("no estimate before the endpoint has shown a pace, nor for an unknown size", () => {
  assert.equal(
    estimateFinish({ state: "Queued", inputBytes: 1000 }, { ...base, secondsPerByte: undefined }),
    undefined,
  );
  assert.equal(estimateFinish({ state: "Queued" }, base), undefined);
});

test("the CLI's line: the finish time and what is left, or nothing without an estimate", () => {
  const finishAt = new Date(Date.UTC(2026, 0, 1, 12, 0, 0));
  const text = etaText(finishAt.toISOString(), finishAt.getTime() - 185_400);
  assert.equal(text, `, done by ${finishAt.toLocaleTimeString()} (in 3 min 5 s)`);
  assert.match(etaText(finishAt.toISOString(), finishAt.getTime() - 9_600), /\(in 10 s\)$/);
  assert.match(etaText(finishAt.toISOString(), finishAt.getTime() + 5_000), /\(in 0 s\)$/, "late: due now");
  assert.equal(etaText(undefined), "");
});
