/**
 * Speech detection with the real Silero VAD model (converted by src/models/silero-vad.ts, fetched by
 * scripts/fetch-test-model) and the real tiny.en model: regions on real speech and on silence, long files
 * cut at speech into chunks and stitched back.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { errorRate, wordErrors } from "../../src/eval/metrics.js";
import { defaultModelsDir, modelFileName } from "../../src/models/registry.js";
import { SILERO_VAD_MODEL } from "../../src/models/silero-vad.js";
import { WhisperEngine } from "../../src/whisper/engine.js";
import { renderTranscript } from "../../src/whisper/formats.js";
import { loadAddon, type AddonVad } from "../../src/whisper/native.js";
import type { ChunkResult, Transcript } from "../../src/whisper/types.js";
import { ffmpeg, modelPath, noModel, normalize, sox, tempDir, testdata } from "../helpers/fixtures.js";

const vadModel = join(defaultModelsDir(), modelFileName(SILERO_VAD_MODEL));
const noVad = existsSync(vadModel) ? noModel : `no VAD model at ${vadModel} (run scripts/fetch-test-model)`;
const read = (name: string) => normalize(readFileSync(testdata(name), "utf8"));

describe("Silero VAD (whisper.cpp, converted weights)", { skip: noVad }, () => {
  let vad: AddonVad;
  const dir = tempDir("kk-vad-");
  before(async () => {
    vad = await loadAddon().loadVad(vadModel, 1);
  });
  after(() => vad?.release());

  const pcm = (file: string) => {
    const raw = join(dir, "pcm.raw");
    sox([file, "-t", "raw", "-r", "16000", "-c", "1", "-b", "16", "-e", "signed-integer", raw]);
    const b = readFileSync(raw);
    return new Int16Array(b.buffer, b.byteOffset, b.length / 2);
  };

  it("finds JFK's four phrases, inside the clip, with the pauses between them", async () => {
    const regions = await vad.segments(pcm(testdata("jfk.wav")));
    assert.equal(regions.length, 4, JSON.stringify(regions));
    assert.ok(
      regions[0]!.start < 0.6 && regions[3]!.end > 10 && regions[3]!.end <= 11.01,
      JSON.stringify(regions),
    );
    for (let i = 1; i < regions.length; i++) assert.ok(regions[i]!.start > regions[i - 1]!.end);
  });

  it("finds nothing in a minute of silence or of steady noise", async () => {
    const silence = join(dir, "silence.wav");
    const noise = join(dir, "noise.wav");
    sox(["-n", "-r", "16000", "-c", "1", "-b", "16", silence, "trim", "0", "60"]);
    sox(["-n", "-r", "16000", "-c", "1", "-b", "16", noise, "synth", "60", "brownnoise", "vol", "0.05"]);
    assert.deepEqual(await vad.segments(pcm(silence)), []);
    assert.deepEqual(await vad.segments(pcm(noise)), []);
  });
});

describe("long files cut at speech", { skip: noVad }, () => {
  let engine: WhisperEngine;
  const dir = tempDir("kk-vad-");
  // Loud and very quiet recordings in turn (the FLEURS clips average −64 dBFS), with 2 s between them.
  const clips = [
    "jfk.wav",
    "fleurs-en-003.ogg",
    "librispeech_1089-134686-0001.wav",
    "fleurs-en-004.ogg",
    "ljspeech_LJ050-0131.wav",
    "fleurs-en-008.ogg",
    "jfk.wav",
  ];
  const mixed = join(dir, "mixed.wav");
  let withVad: Transcript;
  before(async () => {
    engine = await WhisperEngine.load(modelPath, { vadModel });
    const parts = clips.flatMap((c, i) => {
      const part = join(dir, `part-${i}.wav`);
      ffmpeg(["-i", testdata(c), "-af", "apad=pad_dur=2", "-ar", "16000", "-ac", "1", part]);
      return [part];
    });
    sox([...parts, mixed]);
    withVad = await engine.transcribe(mixed, { language: "en" });
  });
  after(() => engine?.close());

  it("is on by default for audio over 30 s: quiet speech beside loud speech is transcribed", () => {
    assert.ok(withVad.duration > 60, `duration ${withVad.duration}`);
    assert.ok(withVad.speech && withVad.speech.chunks >= 2, JSON.stringify(withVad.speech));
    const heard = normalize(withVad.text);
    for (const quiet of ["fleurs-en-003.txt", "fleurs-en-004.txt"]) {
      const words = wordErrors(read(quiet), heard);
      // Every word of the quiet clip found in the transcript counts; a lost clip counts all its words.
      const missing = read(quiet)
        .split(" ")
        .filter((w) => !heard.split(" ").includes(w));
      assert.ok(missing.length <= 3, `${quiet}: missing ${missing.join(" ")} (${JSON.stringify(words)})`);
    }
    const reference = clips.map((c) => read(c.replace(/\.\w+$/, ".txt"))).join(" ");
    const wer = errorRate(wordErrors(reference, withVad.text));
    assert.ok(wer < 0.15, `WER ${wer}: ${withVad.text}`);
  });

  it("stitches chunks back: timestamps in order and within the audio, subtitles numbered 1..n, no loops", () => {
    const segs = withVad.segments;
    assert.ok(segs.length >= clips.length, `${segs.length} segments`);
    segs.forEach((s, i) => {
      assert.equal(s.id, i);
      assert.ok(s.start >= 0 && s.end >= s.start && s.end <= withVad.duration, JSON.stringify(s));
      if (i > 0) assert.ok(s.start >= segs[i - 1]!.start, `segment ${i} starts before ${i - 1}`);
    });
    // The last JFK phrase lies in the last 13 s of the file.
    assert.ok(segs.at(-1)!.end > withVad.duration - 13, `${segs.at(-1)!.end} of ${withVad.duration}`);
    const cues = renderTranscript(withVad, "srt").trim().split(/\n\n+/);
    assert.deepEqual(
      cues.map((c) => Number(c.split("\n")[0])),
      cues.map((_, i) => i + 1),
    );
    for (let i = 1; i < segs.length; i++)
      assert.notEqual(
        normalize(segs[i]!.text),
        normalize(segs[i - 1]!.text),
        `segment ${i} repeats ${i - 1}`,
      );
  });

  it("a 10-minute silent file gives no text and decodes no chunk", async () => {
    const silent = join(dir, "silent.wav");
    sox(["-n", "-r", "16000", "-c", "1", "-b", "16", silent, "trim", "0", "600"]);
    const t = await engine.transcribe(silent, {});
    assert.equal(t.text, "");
    assert.deepEqual(t.segments, []);
    assert.equal(t.duration, 600);
    assert.deepEqual(t.speech, { regions: 0, seconds: 0, chunks: 0, resumed: 0 });
  });

  it("resumes from checkpointed chunks: only the others are decoded, and the transcript is the same", async () => {
    const checkpoints: ChunkResult[] = [];
    const whole = await engine.transcribe(mixed, { language: "en" }, { onChunk: (c) => checkpoints.push(c) });
    assert.equal(checkpoints.length, whole.speech!.chunks, "one checkpoint per chunk");
    assert.ok(checkpoints.length >= 3, `${checkpoints.length} chunks`);
    // As if the first attempt died 60 % of the way through.
    const kept = checkpoints.slice(0, Math.ceil(checkpoints.length * 0.6));
    const decodedAgain: ChunkResult[] = [];
    const resumed = await engine.transcribe(
      mixed,
      { language: "en" },
      { resume: new Map(kept.map((c) => [c.start, c])), onChunk: (c) => decodedAgain.push(c) },
    );
    assert.equal(resumed.speech!.resumed, kept.length);
    assert.deepEqual(
      decodedAgain.map((c) => c.start),
      checkpoints.slice(kept.length).map((c) => c.start),
      "only the chunks after the checkpoint are decoded",
    );
    assert.equal(resumed.text, whole.text);
    assert.deepEqual(resumed.segments, whole.segments);

    // A checkpoint of a chunk cut otherwise (same start, another end) is not taken: that chunk is decoded.
    const moved = kept.map((c, i) => (i === 0 ? { ...c, end: c.end + 1 } : c));
    const again = await engine.transcribe(
      mixed,
      { language: "en" },
      { resume: new Map(moved.map((c) => [c.start, c])) },
    );
    assert.equal(again.speech!.resumed, kept.length - 1);
    assert.equal(again.text, whole.text);
  });

  it("vad=false keeps the energy windowing", async () => {
    const t = await engine.transcribe(mixed, { language: "en", vad: false });
    assert.equal(t.speech, undefined);
    assert.ok(t.text.length > 0);
  });
});
