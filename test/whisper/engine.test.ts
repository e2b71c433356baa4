/** The engine against the real tiny.en model (skipped without it): abort, queueing, option checks. */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { after, before, describe, it } from "node:test";
import { ModelLoadError } from "../../src/whisper/addon.js";
import { InvalidOptionError, WhisperEngine } from "../../src/whisper/engine.js";
import { modelPath, noModel, normalize, sox, tempDir, testdata } from "../helpers/fixtures.js";

describe("WhisperEngine", { skip: noModel }, () => {
  let engine: WhisperEngine;
  let longClip: string;

  before(async () => {
    engine = await WhisperEngine.load(modelPath, { slots: 1 });
    longClip = join(tempDir(), "long.wav");
    sox(Array(6).fill(testdata("jfk.wav")).concat(longClip));
  });
  after(() => engine?.close());

  it("runs whisper.cpp in a worker whose OpenMP threads sleep at barriers (no spinning on busy cores)", async () => {
    const children = readdirSync("/proc")
      .filter((d) => /^\d+$/.test(d))
      .filter((pid) => {
        try {
          return (
            readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")[1] === String(process.pid)
          );
        } catch {
          return false;
        }
      });
    const environments = children.map((pid) => readFileSync(`/proc/${pid}/environ`, "utf8").split("\0"));
    const worker = environments.find((env) => env.includes("OMP_WAIT_POLICY=passive"));
    assert.ok(worker, `a child with OMP_WAIT_POLICY=passive among ${children.length} children`);
  });

  it("rejects within 2 s of an abort and frees its slot for the next call", async () => {
    const ac = new AbortController();
    let abortedAt = 0;
    const work = engine.transcribe(
      longClip,
      {},
      {
        signal: ac.signal,
        onProgress: (p) => {
          if (p.processedSeconds > 0 && !ac.signal.aborted) {
            abortedAt = performance.now();
            ac.abort(new Error("cancelled by test"));
          }
        },
      },
    );
    await assert.rejects(work, /cancelled by test/);
    assert.ok(performance.now() - abortedAt < 2000, `took ${performance.now() - abortedAt} ms`);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(engine.running, 0);
    // The killed worker is restarted for the next call.
    const t = await engine.transcribe(testdata("librispeech_1089-134686-0001.wav"), { language: "en" });
    assert.match(normalize(t.text), /belly/);
  });

  it("queues calls beyond its slots and runs them in order", async () => {
    const order: string[] = [];
    const a = engine.transcribe(testdata("librispeech_1089-134686-0001.wav")).then(() => order.push("a"));
    const b = engine.transcribe(testdata("librispeech_1272-141231-0000.flac")).then(() => order.push("b"));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(engine.running, 1);
    assert.equal(engine.queued, 1);
    await Promise.all([a, b]);
    assert.deepEqual(order, ["a", "b"]);
  });

  it("runs beam search when beam_size > 1, with word timings inside the audio", async () => {
    const t = await engine.transcribe(testdata("jfk.wav"), { beamSize: 5, wordTimestamps: true });
    assert.match(normalize(t.text), /ask not what your country can do for you/);
    const words = t.segments.flatMap((s) => s.words ?? []);
    assert.ok(words.length >= 20, `only ${words.length} words`);
    for (const w of words)
      assert.ok(0 <= w.start && w.start <= w.end && w.end <= t.duration, JSON.stringify(w));
  });

  it("refuses options the model cannot honour, naming the field", async () => {
    await assert.rejects(
      engine.transcribe(testdata("jfk.wav"), { language: "ja" }),
      (e: unknown) =>
        e instanceof InvalidOptionError && e.field === "language" && /English-only/.test(e.message),
    );
    await assert.rejects(
      engine.transcribe(testdata("jfk.wav"), { language: "xx" }),
      (e: unknown) => e instanceof InvalidOptionError && e.field === "language",
    );
  });
});

describe("WhisperEngine.load", () => {
  it("turns a corrupt model that aborts whisper.cpp into a ModelLoadError, without crashing", async () => {
    // whisper.cpp GGML_ASSERTs (SIGABRT) on this; the worker process takes the blow.
    const path = join(tempDir(), "corrupt.bin");
    await writeFile(path, Buffer.concat([Buffer.from("lmgg", "latin1"), Buffer.alloc(200, 7)]));
    await assert.rejects(
      WhisperEngine.load(path),
      (e: unknown) => e instanceof ModelLoadError && /exited \(SIGABRT\) while loading/.test(e.message),
    );
  });

  it("names a missing model file and a non-ggml one", async () => {
    const dir = tempDir();
    await assert.rejects(WhisperEngine.load(join(dir, "none.bin")), /model file .*none\.bin does not exist/);
    await writeFile(join(dir, "text.bin"), "hello world");
    await assert.rejects(WhisperEngine.load(join(dir, "text.bin")), /not a ggml whisper model/);
  });
});
