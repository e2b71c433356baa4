/**
 * The embedded service end to end with the real parts: HTTP, SQLite, instances as processes, the built-in
 * Whisper server (whisper.cpp) and real tiny.en weights. Skips with a message when the model is missing
 * (run scripts/fetch-test-model) or the shared test data is absent.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Kikitori } from "../../src/main.js";
import { errorRate, sumCounts, wordErrors, type EditCounts } from "../../src/eval/metrics.js";
import { startTestServer, tempDir, type Api } from "../helpers/server.js";
import { ffmpeg, modelPath, noModel, repoRoot, sox, testdata } from "../helpers/fixtures.js";
import { readSse } from "../../src/notify/index.js";
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const skip = noModel;
let k: (Kikitori & { api: Api }) | undefined;

before(async () => {
  if (skip) return;
  k = await startTestServer({ modelsDir: join(modelPath, "..") });
  await k.api.endpoint("whisper", {
    image: "kikitori/whisper",
    environment: { KIKITORI_MODEL_FILE: modelPath },
  });
});
after(async () => k?.close());

const ENGLISH = [
  "jfk.wav",
  "jfk.mp3",
  "jfk.flac",
  "jfk.m4a",
  "librispeech_1089-134686-0001.wav",
  "librispeech_1272-128104-0001.flac",
  "librispeech_1272-141231-0000.flac",
  "ljspeech_LJ050-0131.wav",
  "fleurs-en-003.ogg",
  "fleurs-en-004.ogg",
  "fleurs-en-008.ogg",
];
const durations = new Map<string, number>(
  (JSON.parse(readFileSync(testdata("manifest.json"), "utf8")) as { file: string; duration_s: number }[]).map(
    (c) => [c.file, c.duration_s],
  ),
);
const reference = (clip: string) =>
  readFileSync(
    testdata(clip.replace(/^jfk\..*$/, "jfk.txt").replace(/\.(wav|flac|ogg|mp3|m4a)$/, ".txt")),
    "utf8",
  );

async function submit(api: Api, file: string, options: Record<string, unknown>, key = file) {
  const input = await api.put("input", `${Date.now()}-${Math.random()}/${key}`, readFileSync(file));
  const r = await api.call("POST", "/v1/endpoints/whisper/invocations", { inputLocation: input, options });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  return r.body.inferenceId as string;
}

/** Parses srt or vtt cue timings into seconds. */
function cueTimes(text: string): [number, number][] {
  const re = /(\d\d):(\d\d):(\d\d)[,.](\d\d\d) --> (\d\d):(\d\d):(\d\d)[,.](\d\d\d)/g;
  const secs = (h: string, m: string, s: string, ms: string) => +h * 3600 + +m * 60 + +s + +ms / 1000;
  return [...text.matchAll(re)].map((m) => [
    secs(m[1]!, m[2]!, m[3]!, m[4]!),
    secs(m[5]!, m[6]!, m[7]!, m[8]!),
  ]);
}

test(
  "20 clips submitted at once all succeed and match their references; srt/vtt timings are sane",
  { skip },
  async () => {
    const api = k!.api;
    const jobs: { clip: string; format: string; id: string }[] = [];
    for (let i = 0; i < 20; i++) {
      const clip = ENGLISH[i % ENGLISH.length]!;
      const format = i % 5 === 1 ? "srt" : i % 5 === 2 ? "vtt" : "json";
      jobs.push({ clip, format, id: await submit(api, testdata(clip), { language: "en", format }) });
    }
    const counts: EditCounts[] = [];
    const problems: string[] = [];
    // Wait for every job before judging, so a failure here leaves no backlog for the next test.
    for (const job of jobs) {
      const inv = await api.waitTerminal(job.id, 600_000);
      if (inv.state !== "Succeeded") {
        problems.push(`${job.clip}: ${inv.state} ${JSON.stringify(inv.error)}`);
        continue;
      }
      const out = (await api.getObject(inv.outputLocation)).text;
      if (job.format === "json") {
        const doc = JSON.parse(out);
        const c = wordErrors(reference(job.clip), doc.text);
        // One word wrong in a four-word clip is 25 %: the 10 % bar is for the whole set (below).
        if (errorRate(c) > 0.3)
          problems.push(`${job.clip}: WER ${errorRate(c).toFixed(2)} for "${doc.text}"`);
        counts.push(c);
      } else {
        const cues = cueTimes(out);
        if (cues.length === 0) problems.push(`${job.clip}: no ${job.format} cues in ${out}`);
        const duration = durations.get(job.clip)!;
        let last = 0;
        for (const [start, end] of cues) {
          if (start < last - 1e-9 || end < start)
            problems.push(`${job.clip}: ${job.format} cues not monotonic: ${out}`);
          if (end > duration + 0.5)
            problems.push(`${job.clip}: cue end ${end} beyond the audio (${duration} s)`);
          last = end;
        }
        if (job.format === "vtt" && !out.startsWith("WEBVTT"))
          problems.push(`${job.clip}: vtt without header`);
      }
    }
    assert.deepEqual(problems, []);
    assert.ok(errorRate(sumCounts(counts)) <= 0.1, `overall WER ${errorRate(sumCounts(counts))}`);
  },
);

test(
  "bad audio fails with a failure document naming the reason, and the instance serves the next",
  { skip },
  async () => {
    const api = k!.api;
    const dir = tempDir("kk-bad-");
    // A real PNG header and image data, renamed .wav.
    ffmpeg(["-f", "lavfi", "-i", "color=c=red:s=16x16", "-frames:v", "1", join(dir, "p.png")]);
    const pngBytes = readFileSync(join(dir, "p.png"));
    const mp3 = readFileSync(testdata("jfk.mp3"));
    const cases: [string, Buffer][] = [
      ["picture.wav", pngBytes],
      ["truncated.mp3", mp3.subarray(0, 300)],
      ["noise.bin", Buffer.from("this is not audio at all, just text".repeat(10))],
    ];
    for (const [name, bytes] of cases) {
      const input = await api.put("input", `bad/${name}`, bytes);
      const id = (await api.ok("POST", "/v1/endpoints/whisper/invocations", { inputLocation: input }))
        .inferenceId;
      const inv = await api.waitTerminal(id, 60_000);
      assert.equal(inv.state, "Failed", `${name} should fail`);
      const doc = JSON.parse((await api.getObject(inv.failureLocation)).text);
      assert.equal(doc.ErrorCode, "InvalidAudio", `${name}: ${JSON.stringify(doc)}`);
      assert.match(doc.FailureReason, /audio|decode|invalid|format/i);
      assert.equal((await api.getObject(inv.outputLocation)).status, 404);
    }
    const ok = await api.waitTerminal(await submit(api, testdata("jfk.wav"), { language: "en" }));
    assert.equal(ok.state, "Succeeded", "the instance still serves after bad input");
  },
);

test("ten minutes of silence ends Succeeded with an empty transcript", { skip }, async () => {
  const api = k!.api;
  const file = join(tempDir("kk-silence-"), "silence.flac");
  sox(["-n", "-r", "16000", "-c", "1", file, "trim", "0", "600"]);
  const inv = await api.waitTerminal(await submit(api, file, { language: "en" }), 300_000);
  assert.equal(inv.state, "Succeeded");
  const doc = JSON.parse((await api.getObject(inv.outputLocation)).text);
  assert.equal(doc.text.trim(), "", `no invented words: "${doc.text}"`);
  assert.ok(Math.abs(doc.duration - 600) < 1, `duration ${doc.duration}`);
});

test(
  "live events for a 66 s clip: queued → started → progress (monotonic) → completed; the CLI shows them",
  { skip },
  async () => {
    const api = k!.api;
    const long = join(tempDir("kk-long-"), "long.wav");
    // About 66 s of real speech: the JFK clip six times.
    sox([...Array(6).fill(testdata("jfk.wav")), long]);
    // A first clip keeps the instance busy, so the second one is seen waiting at position 1.
    await submit(api, long, { language: "en" });
    const id = await submit(api, long, { language: "en" });
    const res = await fetch(`${api.url}/v1/invocations/${id}/events`);
    assert.equal(res.headers.get("content-type")?.split(";")[0], "text/event-stream");
    const events: { event: string; data: any }[] = [];
    for await (const e of readSse(res.body!)) events.push({ event: e.event, data: JSON.parse(e.data) });
    const kinds = events.map((e) => e.event);
    assert.equal(kinds[0], "queued", kinds.join(","));
    assert.equal(events[0]!.data.position, 1);
    assert.ok(kinds.indexOf("started") > 0, kinds.join(","));
    assert.equal(kinds.at(-1), "completed");
    assert.equal(events.at(-1)!.data.state, "Succeeded");
    const progress = events
      .filter((e) => e.event === "progress")
      .map((e) => e.data.processedSeconds as number);
    assert.ok(progress.length >= 2, `progress events: ${progress}`);
    for (let i = 1; i < progress.length; i++)
      assert.ok(progress[i]! > progress[i - 1]!, `monotonic: ${progress}`);
    assert.ok(kinds.indexOf("started") < kinds.indexOf("progress"));

    // The CLI follows the same stream; without a terminal it prints one line per stage.
    const cli = await promisify(execFile)(
      process.execPath,
      [
        join(repoRoot, "bin", "kikitori.js"),
        "transcribe",
        long,
        "--url",
        api.url,
        "--endpoint",
        "whisper",
        "--language",
        "en",
        "--out",
        "-",
      ],
      { maxBuffer: 1 << 20 },
    );
    assert.match(cli.stderr, /long\.wav: uploading/);
    assert.match(cli.stderr, /long\.wav: transcribing \d+%/);
    const reference = Array(6)
      .fill(readFileSync(testdata("jfk.txt"), "utf8"))
      .join(" ");
    assert.ok(errorRate(wordErrors(reference, cli.stdout)) < 0.1, cli.stdout);
  },
);
