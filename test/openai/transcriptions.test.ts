/**
 * The OpenAI-compatible API with the real `openai` client: multipart upload, the default endpoint made
 * on first use, response formats, and errors in OpenAI's shape. The transcription parts need the real
 * tiny.en model (scripts/fetch-test-model) and skip with a message without it.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createReadStream, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import OpenAI, { toFile } from "openai";
import type { Kikitori } from "../../src/main.js";
import { errorRate, wordErrors } from "../../src/eval/metrics.js";
import { startTestServer, tempDir, type Api } from "../helpers/server.js";
import { modelPath, noModel, testdata } from "../helpers/fixtures.js";

let k: Kikitori & { api: Api };
let client: OpenAI;

before(async () => {
  k = await startTestServer({ defaultModel: "tiny.en", modelsDir: join(modelPath, "..") });
  client = new OpenAI({ baseURL: `${k.url}/v1`, apiKey: "unused-locally", maxRetries: 0 });
});
after(async () => k.close());

test("transcriptions: json, text and srt through the openai client", { skip: noModel }, async () => {
  const reference = readFileSync(testdata("jfk.txt"), "utf8");
  const json = await client.audio.transcriptions.create({
    file: createReadStream(testdata("jfk.wav")),
    model: "whisper-1",
  });
  assert.equal(errorRate(wordErrors(reference, json.text)), 0, json.text);
  const text = await client.audio.transcriptions.create({
    file: createReadStream(testdata("jfk.mp3")),
    model: "whisper-1",
    response_format: "text",
    language: "en",
  });
  assert.ok(errorRate(wordErrors(reference, String(text))) <= 0.1, String(text));
  const srt = await client.audio.transcriptions.create({
    file: createReadStream(testdata("jfk.flac")),
    model: "whisper-1",
    response_format: "srt",
  });
  assert.match(String(srt), /^1\r?\n00:00:00,000 --> 00:00:\d\d,\d\d\d/);
  const verbose = await client.audio.transcriptions.create({
    file: createReadStream(testdata("jfk.wav")),
    model: "whisper-1",
    response_format: "verbose_json",
    timestamp_granularities: ["word"],
  });
  assert.equal(verbose.language, "english");
  assert.ok((verbose.words?.length ?? 0) >= 20, "per-word timings");
  // whisper.cpp's token data, not placeholders: token ids, log-probabilities, no-speech probabilities.
  // (Segment-level verbose_json: with word granularity the engine regroups words and drops them, #14.)
  const segmentLevel = await client.audio.transcriptions.create({
    file: createReadStream(testdata("jfk.wav")),
    model: "whisper-1",
    response_format: "verbose_json",
  });
  const segments = segmentLevel.segments ?? [];
  assert.ok(segments.length > 0);
  for (const seg of segments) {
    assert.ok(seg.tokens.length > 0 && seg.tokens.every((t) => Number.isInteger(t) && t >= 0), "token ids");
    assert.ok(seg.avg_logprob < 0 && seg.avg_logprob > -5, `avg_logprob ${seg.avg_logprob}`);
    assert.ok(seg.no_speech_prob >= 0 && seg.no_speech_prob <= 1, `no_speech_prob ${seg.no_speech_prob}`);
    assert.ok(seg.compression_ratio > 0);
  }
  assert.ok(
    segments.some((s) => s.no_speech_prob > 0),
    "no_speech_prob is measured, not a constant 0",
  );
  const invs = (await k.api.ok("GET", "/v1/invocations?endpoint=whisper")).invocations;
  assert.equal(invs.length, 5, "each call went through the asynchronous core");
});

test("bad requests answer in OpenAI's error shape, naming the parameter", async () => {
  const dir = tempDir("kk-openai-");
  const empty = join(dir, "empty.wav");
  writeFileSync(empty, "");
  await assert.rejects(
    client.audio.transcriptions.create({ file: createReadStream(empty), model: "whisper-1" }),
    (e: InstanceType<typeof OpenAI.APIError>) =>
      e.status === 400 && e.param === "file" && /empty/.test(e.message),
  );
  await assert.rejects(
    client.audio.transcriptions.create({
      file: await toFile(Buffer.from("RIFF"), "a.wav"),
      model: "whisper-1",
      response_format: "docx" as "json",
    }),
    (e: InstanceType<typeof OpenAI.APIError>) => e.status === 400 && e.param === "response_format",
  );
  const raw = await fetch(`${k.url}/v1/audio/transcriptions`, {
    method: "POST",
    body: "{}",
    headers: { "content-type": "application/json" },
  });
  assert.equal(raw.status, 400);
  const body = (await raw.json()) as any;
  assert.equal(body.error.type, "invalid_request_error");
  assert.equal(body.error.param, "file");
});

test("undecodable audio fails as a 400 naming the file", { skip: noModel }, async () => {
  await assert.rejects(
    client.audio.transcriptions.create({
      file: await toFile(Buffer.from("not audio ".repeat(50)), "x.wav"),
      model: "whisper-1",
    }),
    (e: InstanceType<typeof OpenAI.APIError>) => e.status === 400 && e.param === "file",
  );
});

test(
  "openai Python SDK: stream=True yields deltas that join to the final text, and usage",
  { skip: noModel },
  async (t) => {
    const run = promisify(execFile);
    if (
      !(await run("python3", ["-c", "import openai"]).then(
        () => true,
        () => false,
      ))
    )
      return t.skip("python3 with the openai package is not installed (scripts/setup)");
    const { stdout } = await run("python3", [join(import.meta.dirname, "stream_transcription.py")], {
      env: { ...process.env, KK_URL: k.url, KK_AUDIO: testdata("jfk.wav") },
      timeout: 600_000,
    });
    const r = JSON.parse(stdout.trim().split("\n").pop()!);
    assert.ok(r.deltas.length >= 2, `several deltas: ${JSON.stringify(r.deltas)}`);
    assert.equal(r.deltas.join(""), r.text, "the deltas concatenate to the final text");
    assert.equal(r.types.at(-1), "transcript.text.done");
    assert.equal(r.text, r.plain_text);
    assert.match(r.text, /ask not what your country can do for you/i);
    assert.deepEqual(r.usage, { type: "duration", seconds: 11 });
    assert.deepEqual(r.plain_usage, { type: "duration", seconds: 11 });
  },
);
