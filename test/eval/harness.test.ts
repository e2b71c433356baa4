import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { evaluate, formatReport, readManifest } from "../../src/eval/harness.js";

function manifestDir(entries: unknown, files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), "kikitori-eval-test-"));
  writeFileSync(join(dir, "manifest.json"), JSON.stringify(entries));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

test("readManifest names the entry and field that is wrong", async () => {
  const dir = manifestDir([
    { file: "a.wav", transcript_file: "a.txt", language: "en" },
    { file: "b.wav", language: "en" },
  ]);
  await assert.rejects(
    readManifest(join(dir, "manifest.json")),
    /entry 1: "transcript_file" must be a non-empty string/,
  );
  const bad = manifestDir({ file: "a.wav" });
  await assert.rejects(readManifest(join(bad, "manifest.json")), /expected a JSON array/);
  const typed = manifestDir([
    { file: "a.wav", transcript_file: "a.txt", language: "en", exact_reference: "yes" },
  ]);
  await assert.rejects(
    readManifest(join(typed, "manifest.json")),
    /entry 0: "exact_reference" must be a boolean/,
  );
});

test("evaluate scores English by word and Japanese by character, and sums per language", async () => {
  const dir = manifestDir(
    [
      { file: "a.wav", transcript_file: "a.txt", language: "en" },
      { file: "b.wav", transcript_file: "b.txt", language: "en" },
      { file: "c.wav", transcript_file: "c.txt", language: "ja" },
      { file: "d.mp3", transcript_file: "d.txt", language: "en", exact_reference: false },
      { file: "e.mp3", transcript_file: "e.txt", language: "en+de" },
    ],
    {
      "a.txt": "Ask not what your country can do for you.\n",
      "b.txt": "twenty five colours\n",
      "c.txt": "水をマレーシアから買わなくてはならないのです。\n",
    },
  );
  const hypotheses: Record<string, string> = {
    "a.wav": " ask NOT what the country can do for you",
    "b.wav": "25 colors",
    "c.wav": "水をマレーシアから買わなくてはならないのです",
  };
  const seen: { file: string; language?: string }[] = [];
  const report = await evaluate(join(dir, "manifest.json"), async (path, { language }) => {
    seen.push({ file: basename(path), language });
    return hypotheses[basename(path)]!;
  });
  assert.deepEqual(seen, [
    { file: "a.wav", language: "en" },
    { file: "b.wav", language: "en" },
    { file: "c.wav", language: "ja" },
  ]);
  assert.deepEqual(
    report.clips.map((c) => [c.clip, c.metric, c.counts.substitutions, c.counts.referenceLength]),
    [
      ["a.wav", "wer", 1, 9],
      ["b.wav", "wer", 0, 2],
      ["c.wav", "cer", 0, 22],
    ],
  );
  const en = report.languages.find((l) => l.language === "en")!;
  assert.equal(en.rate, 1 / 11, "one edit over eleven reference words");
  assert.deepEqual(
    report.skipped.map((s) => s.clip),
    ["d.mp3", "e.mp3"],
  );
  const table = formatReport(report);
  assert.match(table, /a\.wav\s+en\s+wer\s+11\.1%/);
  assert.match(table, /overall \(2 clips\)\s+en\s+wer\s+9\.1%/);
  assert.match(table, /skipped d\.mp3: reference is another model's output/);

  const filtered = await evaluate(join(dir, "manifest.json"), async (path) => hypotheses[basename(path)]!, {
    languageFilter: "ja",
  });
  assert.deepEqual(
    filtered.clips.map((c) => c.clip),
    ["c.wav"],
  );
});

test("a failing transcription or a missing reference is reported, not thrown", async () => {
  const dir = manifestDir(
    [
      { file: "a.wav", transcript_file: "a.txt", language: "en" },
      { file: "b.wav", transcript_file: "missing.txt", language: "en" },
    ],
    { "a.txt": "hello" },
  );
  const report = await evaluate(join(dir, "manifest.json"), async () => {
    throw new Error("decoder exploded");
  });
  assert.deepEqual(report.failed[0], { clip: "a.wav", error: "decoder exploded" });
  assert.match(report.failed[1]!.error, /^reference .*missing\.txt: ENOENT/);
  assert.match(formatReport(report), /FAILED a\.wav: decoder exploded/);
});

test("a stereo clip with one reference line per channel is scored channel by channel", async () => {
  const dir = manifestDir(
    [{ file: "stereo.wav", transcript_file: "stereo.txt", language: "en", channels: 2 }],
    { "stereo.txt": "LEFT: left side words\nRIGHT: right side words\n" },
  );
  // Left channel: a 440 Hz tone; right channel: silence. The transcriber reports what it got.
  execFileSync("ffmpeg", [
    ...["-nostdin", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=1:sample_rate=16000"],
    ...["-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "1"],
    ...["-filter_complex", "[0:a][1:a]join=inputs=2:channel_layout=stereo", join(dir, "stereo.wav")],
  ]);
  // The transcriber "hears" the tone only if the harness really handed it the left channel alone.
  const report = await evaluate(join(dir, "manifest.json"), async (path) => {
    const probe = spawnSync("ffmpeg", ["-nostdin", "-i", path, "-af", "volumedetect", "-f", "null", "-"], {
      encoding: "utf8",
    });
    const meanDb = Number(/mean_volume: (-?[\d.]+) dB/.exec(probe.stderr)?.[1]);
    return meanDb > -30 ? "left side words" : "right side";
  });
  assert.deepEqual(
    report.clips.map((c) => [c.clip, c.reference, c.counts.deletions]),
    [
      ["stereo.wav#ch0", "left side words", 0],
      ["stereo.wav#ch1", "right side words", 1],
    ],
  );
});
