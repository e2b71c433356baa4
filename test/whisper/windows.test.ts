import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { SAMPLE_RATE } from "../../src/whisper/energy.js";
import { keptRanges, packWindow, packedLength, toSource } from "../../src/whisper/windows.js";

const s = (seconds: number) => Math.round(seconds * SAMPLE_RATE);

/** A "speech-like" tone burst (a 200 Hz tone with a 4 Hz envelope) of `seconds`, else digital silence. */
function audio(parts: Array<["speech" | "silence", number]>): Int16Array {
  const out = new Int16Array(parts.reduce((n, [, sec]) => n + s(sec), 0));
  let at = 0;
  for (const [kind, sec] of parts) {
    if (kind === "speech")
      for (let i = 0; i < s(sec); i++)
        out[at + i] = Math.round(
          8000 *
            Math.sin((2 * Math.PI * 200 * i) / SAMPLE_RATE) *
            (0.6 + 0.4 * Math.sin((2 * Math.PI * 4 * i) / SAMPLE_RATE)),
        );
    at += s(sec);
  }
  return out;
}

describe("windows: packing silence", () => {
  test("silences over 0.6 s shrink to 0.2 s on each side of speech; short pauses stay", () => {
    const pcm = audio([
      ["silence", 2],
      ["speech", 3],
      ["silence", 0.4],
      ["speech", 2],
      ["silence", 3],
      ["speech", 1],
      ["silence", 2],
    ]);
    const ranges = keptRanges(pcm);
    const kept = ranges.reduce((n, [a, b]) => n + b - a, 0);
    // 3 + 0.4 + 2 + 1 s of speech and pause, plus 0.2 s before the first speech, 0.4 s in the 3 s gap, 0.2 s after the end.
    assert.ok(
      Math.abs(kept - s(3 + 0.4 + 2 + 1 + 0.2 + 0.4 + 0.2)) <= 2 * 320,
      `kept ${kept / SAMPLE_RATE} s`,
    );
    assert.equal(packedLength(pcm), kept);
    // Every sample of speech is kept.
    for (const [from, to] of [
      [s(2), s(5)],
      [s(5.4), s(7.4)],
      [s(10.4), s(11.4)],
    ] as const)
      assert.ok(
        ranges.some(([a, b]) => a <= from && b >= to),
        `speech ${from}..${to} kept`,
      );
  });

  test("pack: false keeps everything", () => {
    const pcm = audio([
      ["silence", 2],
      ["speech", 1],
    ]);
    assert.deepEqual(keptRanges(pcm, false), [[0, pcm.length]]);
  });

  test("all silence packs to nothing", () => {
    assert.equal(packedLength(new Int16Array(s(5))), 0);
  });
});

describe("windows: packWindow and the map back to source time", () => {
  test("a window holds at most maxSamples of packed audio and maps its times back", () => {
    // 10 × (4 s speech + 2 s silence) = 60 s; packed: ≈ 10 × 4.4 s.
    const parts: Array<["speech" | "silence", number]> = [];
    for (let i = 0; i < 10; i++) parts.push(["speech", 4], ["silence", 2]);
    const pcm = audio(parts);
    const w = packWindow(pcm, s(30), { final: false });
    assert.ok(
      w.samples.length <= s(30) && w.samples.length > s(25),
      `window ${w.samples.length / SAMPLE_RATE} s`,
    );
    // It covers more source than its own length: the silences were shortened.
    assert.ok(w.sourceLength > w.samples.length + s(8), `source ${w.sourceLength / SAMPLE_RATE} s`);
    // The start of the second burst (source 6.0 s) sits at packed 4.4 s.
    const second = w.spans[1]!;
    assert.equal(toSource(w.spans, second.packed, "start"), second.source);
    assert.ok(
      Math.abs(second.source - s(5.8)) <= 320,
      `second span starts at ${second.source / SAMPLE_RATE}`,
    );
    // A seam: "end" stays in the earlier span, "start" moves to the later one.
    const first = w.spans[0]!;
    assert.equal(toSource(w.spans, first.length, "end"), first.source + first.length);
    assert.equal(toSource(w.spans, first.length, "start"), second.source);
    // The window's samples are the source's samples, span by span.
    for (const sp of w.spans)
      assert.deepEqual(
        w.samples.subarray(sp.packed, sp.packed + sp.length),
        pcm.subarray(sp.source, sp.source + sp.length),
      );
  });

  test("the last window of a file reaches its end", () => {
    const pcm = audio([
      ["speech", 3],
      ["silence", 1],
    ]);
    const w = packWindow(pcm, s(30), { final: true });
    assert.equal(w.sourceLength, pcm.length);
  });

  test("a full window with more audio after it is cut at a quiet frame of its last 5 s", () => {
    const parts: Array<["speech" | "silence", number]> = [];
    for (let i = 0; i < 20; i++) parts.push(["speech", 2.5], ["silence", 0.5]);
    const pcm = audio(parts);
    const w = packWindow(pcm, s(30), { final: true, pack: false });
    assert.ok(w.samples.length < s(30) && w.samples.length >= s(25));
    // The cut falls in one of the 0.5 s pauses (silence at the cut point).
    assert.equal(pcm[w.sourceLength], 0);
    assert.equal(w.sourceLength, w.samples.length);
  });
});
