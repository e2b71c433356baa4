import { test } from "node:test";
import assert from "node:assert/strict";
import {
  characterErrors,
  cjkCharacterErrors,
  editCounts,
  errorRate,
  normalizeCjk,
  sumCounts,
  totalEdits,
  wordErrors,
} from "../../src/eval/metrics.js";

const w = (s: string) => s.split(" ");

test("editCounts splits edits into substitutions, deletions and insertions", () => {
  assert.deepEqual(editCounts(w("a b c d"), w("a b c d")), {
    substitutions: 0,
    deletions: 0,
    insertions: 0,
    referenceLength: 4,
  });
  assert.deepEqual(editCounts(w("a b c d"), w("a x c d")), {
    substitutions: 1,
    deletions: 0,
    insertions: 0,
    referenceLength: 4,
  });
  assert.deepEqual(editCounts(w("a b c d"), w("a c d")), {
    substitutions: 0,
    deletions: 1,
    insertions: 0,
    referenceLength: 4,
  });
  assert.deepEqual(editCounts(w("a b c d"), w("a b y c d z")), {
    substitutions: 0,
    deletions: 0,
    insertions: 2,
    referenceLength: 4,
  });
  assert.deepEqual(editCounts(w("a b c"), []), {
    substitutions: 0,
    deletions: 3,
    insertions: 0,
    referenceLength: 3,
  });
  assert.deepEqual(editCounts([], w("a b")), {
    substitutions: 0,
    deletions: 0,
    insertions: 2,
    referenceLength: 0,
  });
});

test("editCounts finds the minimum, not a greedy alignment", () => {
  // kitten → sitting is the textbook distance 3 (2 substitutions, 1 insertion).
  const c = editCounts([..."kitten"], [..."sitting"]);
  assert.equal(totalEdits(c), 3);
  assert.deepEqual(c, { substitutions: 2, deletions: 0, insertions: 1, referenceLength: 6 });
  // A shifted sequence costs one deletion and one insertion, not n substitutions.
  assert.equal(totalEdits(editCounts(w("x a b c d e"), w("a b c d e y"))), 2);
});

test("errorRate can exceed 1 and rejects an empty reference with a non-empty hypothesis", () => {
  assert.equal(errorRate(editCounts(w("a"), w("b c d"))), 3);
  assert.equal(errorRate(editCounts([], [])), 0);
  assert.throws(() => errorRate(editCounts([], w("a"))), /reference is empty/);
});

test("overall rate is total edits over total reference words, not a mean of ratios", () => {
  const short = editCounts(w("a"), w("b")); // 100%
  const long = editCounts(w("a b c d e f g h i"), w("a b c d e f g h i")); // 0%
  const overall = sumCounts([short, long]);
  assert.equal(overall.referenceLength, 10);
  assert.equal(errorRate(overall), 0.1);
});

test("wordErrors applies Whisper's English normalisation to both sides", () => {
  const ref = "And so my fellow Americans, ask not what your country can do for you.";
  assert.equal(
    totalEdits(wordErrors(ref, " and so, my fellow americans: ask not what your country can do for you")),
    0,
  );
  const c = wordErrors("I have twenty five colours", "i've 25 colors too");
  // "i have 25 colors" vs "i have 25 colors too": one insertion.
  assert.deepEqual(c, { substitutions: 0, deletions: 0, insertions: 1, referenceLength: 4 });
  const raw = wordErrors("Hello World", "hello world", (s) => s);
  assert.equal(raw.substitutions, 2, "a custom normaliser replaces the default");
});

test("characterErrors counts characters of the normalised text", () => {
  const c = characterErrors("the cat", "the bat");
  assert.deepEqual(c, { substitutions: 1, deletions: 0, insertions: 0, referenceLength: 7 });
});

test("CJK character errors ignore punctuation, spacing and full-width forms", () => {
  assert.equal(
    normalizeCjk("水を、マレーシア から　買わなくては。ＡＢＣ１"),
    "水をマレーシアから買わなくてはabc1",
  );
  const ref = "水をマレーシアから買わなくてはならないのです。";
  assert.equal(totalEdits(cjkCharacterErrors(ref, "水を マレーシアから買わなくてはならないのです")), 0);
  const c = cjkCharacterErrors(ref, "水がマレーシアから買わなくてはならないです。");
  assert.deepEqual(c, { substitutions: 1, deletions: 1, insertions: 0, referenceLength: 22 });
});
