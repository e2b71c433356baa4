/**
 * Languages other than English, end to end with the default (multilingual base) model: the CLI on a fresh
 * data directory, as a first command after scripts/setup. Skips with a message when the base model is
 * missing (scripts/fetch-test-model).
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createReadStream, readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { InvokeEndpointCommand, SageMakerRuntimeClient } from "@aws-sdk/client-sagemaker-runtime";
import OpenAI from "openai";
import type { Kikitori } from "../../src/main.js";
import { cjkCharacterErrors, errorRate } from "../../src/eval/metrics.js";
import { baseModelPath, noBaseModel, repoRoot, tempDir, testdata } from "../helpers/fixtures.js";
import { startTestServer, type Api } from "../helpers/server.js";

const run = promisify(execFile);
const JAPANESE = /[\u3040-\u30ff\u4e00-\u9fff]/;
const skip = noBaseModel;
let k: (Kikitori & { api: Api }) | undefined;

before(async () => {
  if (skip) return;
  // The service's own default model, nothing set: what a fresh clone runs.
  k = await startTestServer({ modelsDir: join(baseModelPath, "..") });
  await k.api.endpoint("whisper", { image: "kikitori/whisper" });
});
after(async () => k?.close());

async function transcribe(clip: string, options: Record<string, unknown>): Promise<string> {
  const api = k!.api;
  const input = await api.put("input", `${Date.now()}-${clip}`, readFileSync(testdata(clip)));
  const r = await api.call("POST", "/v1/endpoints/whisper/invocations", { inputLocation: input, options });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const done = await api.waitTerminal(r.body.inferenceId, 600_000);
  assert.equal(done.state, "Succeeded", JSON.stringify(done.error));
  return (await api.getObject(done.outputLocation)).text;
}

test("no language given: Japanese is detected, and the json result says so", { skip }, async () => {
  const doc = JSON.parse(await transcribe("jsut_basic5000_0001_ja.wav", { format: "json" }));
  assert.equal(doc.language, "ja");
  assert.ok(doc.language_probability > 0.5 && doc.language_probability <= 1, JSON.stringify(doc));
  assert.match(doc.text, JAPANESE);
  assert.ok(
    errorRate(cjkCharacterErrors(readFileSync(testdata("jsut_basic5000_0001_ja.txt"), "utf8"), doc.text)) <
      0.5,
  );
});

test("task=translate gives English from Japanese", { skip }, async () => {
  // (The 3 s clip: base translates it in one pass; longer ones may need the temperature fallback's retries.)
  const text = await transcribe("jsut_basic5000_0001_ja.wav", { format: "text", task: "translate" });
  assert.doesNotMatch(text, JAPANESE, text);
  assert.ok(
    text
      .trim()
      .split(/\s+/)
      .filter((w) => /^[A-Za-z,.'!?-]+$/.test(w)).length >= 3,
    text,
  );
});

test("Japanese subtitles: cues of whole characters, in order, within the audio", { skip }, async () => {
  const srt = await transcribe("qwen3asr_demo_ja1.wav", { format: "srt", language: "ja" });
  assert.match(srt, /^1\n00:00:0\d,\d{3} --> 00:00:0\d,\d{3}\n/);
  assert.match(srt, JAPANESE);
  assert.ok(!srt.includes("\ufffd"), srt);
  const vtt = await transcribe("jsut_basic5000_0001_ja.wav", { format: "vtt", language: "ja" });
  assert.ok(vtt.startsWith("WEBVTT\n\n") && JAPANESE.test(vtt) && !vtt.includes("\ufffd"), vtt);
});

test("SageMaker's InvokeEndpoint returns the detected language in CustomAttributes", { skip }, async () => {
  const smr = new SageMakerRuntimeClient({
    endpoint: k!.url,
    region: "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
  });
  const r = await smr.send(
    new InvokeEndpointCommand({
      EndpointName: "whisper",
      Body: readFileSync(testdata("jsut_basic5000_0001_ja.wav")),
      ContentType: "audio/wav",
    }),
  );
  assert.match(r.CustomAttributes ?? "", /^language=ja,language_probability=0\.\d+$/);
  assert.match(JSON.parse(Buffer.from(r.Body!).toString("utf8")).text, JAPANESE);
});

test("the openai client: verbose_json names the detected language", { skip }, async () => {
  const client = new OpenAI({ baseURL: `${k!.url}/v1`, apiKey: "unused-locally", maxRetries: 0 });
  const v = await client.audio.transcriptions.create({
    file: createReadStream(testdata("jsut_basic5000_0001_ja.wav")),
    model: "whisper",
    response_format: "verbose_json",
  });
  assert.equal(v.language, "japanese");
  assert.ok((v as unknown as { language_probability: number }).language_probability > 0.5);
  assert.match(v.text, JAPANESE);
});

test(
  "`kikitori transcribe ja.wav --out -` on a fresh data directory prints the Japanese text",
  { skip, timeout: 600_000 },
  async (t) => {
    const clip = "jsut_basic5000_0001_ja";
    const env = { ...process.env };
    delete env.KIKITORI_DEFAULT_MODEL;
    const { stdout, stderr } = await run(
      process.execPath,
      [join(repoRoot, "bin", "kikitori.js"), "transcribe", testdata(`${clip}.wav`), "--out", "-"],
      { env: { ...env, KIKITORI_DATA_DIR: tempDir("kk-ja-cli-") }, maxBuffer: 1 << 20 },
    );
    const reference = readFileSync(testdata(`${clip}.txt`), "utf8");
    const cer = errorRate(cjkCharacterErrors(reference, stdout));
    t.diagnostic(`${stdout.trim()} (CER ${(cer * 100).toFixed(1)}%)`);
    assert.match(stdout, JAPANESE);
    assert.ok(cer < 0.5, `CER ${cer}: ${stdout}`);
    assert.match(stderr, /jsut_basic5000_0001_ja\.wav: done \(language ja, probability 0\.\d\d\)/);
  },
);
