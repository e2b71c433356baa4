/** Planning chunks from speech regions (src/whisper/chunks.ts): pure arithmetic on sample ranges. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { CHUNK_SAMPLES, UTTERANCE_GAP_SAMPLES, planChunks } from "../../src/whisper/chunks.js";
import { SAMPLE_RATE } from "../../src/whisper/energy.js";

const s = (seconds: number) => Math.round(seconds * SAMPLE_RATE);
const region = (from: number, to: number): [number, number] => [s(from), s(to)];

test("regions of one utterance share a chunk; a silence of an utterance gap or more starts a new one", () => {
  const gap = UTTERANCE_GAP_SAMPLES / SAMPLE_RATE;
  const chunks = planChunks([
    region(0, 4),
    region(4 + gap - 0.1, 8), // a pause inside the utterance
    region(8 + gap, 12), // a silence as long as the gap: the next utterance
    region(12 + 3 * gap, 14),
  ]);
  assert.deepEqual(
    chunks.map((c) => c.regions),
    [[region(0, 4), region(4 + gap - 0.1, 8)], [region(8 + gap, 12)], [region(12 + 3 * gap, 14)]],
  );
});

test("one long utterance fills chunks of at most a window, pauses between its regions counted", () => {
  // 10 regions of 5 s, 0.5 s apart: packed with a 1 s pause between regions, 5 fit in 29 s, the 6th would not.
  const regions = Array.from({ length: 10 }, (_, i) => region(i * 5.5, i * 5.5 + 5));
  const chunks = planChunks(regions);
  assert.deepEqual(
    chunks.map((c) => c.regions.length),
    [5, 5],
  );
  for (const c of chunks) {
    const packed = c.regions.reduce((n, [a, b]) => n + b - a, 0) + (c.regions.length - 1) * SAMPLE_RATE;
    assert.ok(packed <= CHUNK_SAMPLES, `${packed / SAMPLE_RATE} s`);
  }
  assert.deepEqual(
    chunks.flatMap((c) => c.regions),
    regions,
    "every region once, in order",
  );
});

test("no regions, no chunks", () => {
  assert.deepEqual(planChunks([]), []);
});
