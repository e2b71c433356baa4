import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createReadStream } from "node:fs";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import OpenAI from "openai";
import { errorRate, wordErrors } from "../../src/eval/metrics.js";
import { modelPath, noModel, testdata } from "../helpers/fixtures.js";
import { serve, SIGV4, type Served } from "./serve.js";
import { readFileSync } from "node:fs";

/**
 * With keys set, the real clients still work: the OpenAI JS and Python SDKs with a bearer key (invoke
 * scope), boto3 with SigV4; and each refuses a wrong credential with the client's own error.
 */
let s: Served;
const reference = readFileSync(testdata("jfk.txt"), "utf8");

before(async () => {
  s = await serve({
    keys: true,
    env: { KIKITORI_MODELS: dirname(modelPath), KIKITORI_DEFAULT_MODEL: "tiny.en" },
  });
});
after(() => s.stop());

test(
  "the OpenAI JS SDK transcribes with an invoke key, and a wrong key is its AuthenticationError",
  { skip: noModel },
  async () => {
    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: s.invoke!, maxRetries: 0 });
    const r = await client.audio.transcriptions.create({
      file: createReadStream(testdata("jfk.wav")),
      model: "whisper-1",
    });
    assert.ok(errorRate(wordErrors(reference, r.text)) <= 0.1, r.text);
    const wrong = new OpenAI({
      baseURL: `${s.url}/v1`,
      apiKey: "kk_000000000000_" + "x".repeat(43),
      maxRetries: 0,
    });
    await assert.rejects(
      wrong.audio.transcriptions.create({ file: createReadStream(testdata("jfk.wav")), model: "whisper-1" }),
      (e: unknown) =>
        e instanceof OpenAI.AuthenticationError && e.status === 401 && e.code === "invalid_api_key",
    );
  },
);

test(
  "the OpenAI Python SDK (bearer key) and boto3 (SigV4) work with keys set",
  { skip: noModel },
  async () => {
    const { stdout } = await promisify(execFile)(
      "python3",
      [
        join(import.meta.dirname, "clients.py"),
        s.url,
        s.invoke!,
        SIGV4.accessKeyId,
        SIGV4.secretAccessKey,
        testdata("jfk.wav"),
      ],
      { timeout: 600_000, maxBuffer: 1 << 20 },
    );
    const out = JSON.parse(stdout) as Record<string, any>;
    assert.ok(errorRate(wordErrors(reference, out.openai_text)) <= 0.1, out.openai_text);
    assert.deepEqual(out.openai_wrong_key, [401, "invalid_api_key"]);
    assert.equal(out.caller, SIGV4.accessKeyId);
    assert.ok(errorRate(wordErrors(reference, JSON.parse(out.boto3_text).text)) <= 0.1, out.boto3_text);
    assert.ok(out.endpoints.includes("whisper"));
    assert.deepEqual(out.boto3_wrong_secret, [403, "InvalidSignatureException"]);
  },
);
