/**
 * The model server over real HTTP, with real ffmpeg and the real tiny.en model (skipped without it).
 */
import assert from "node:assert/strict";
import { createReadStream } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { request, type IncomingHttpHeaders } from "node:http";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { after, before, describe, it } from "node:test";
import { startModelServer, type ModelServer } from "../../src/whisper/server.js";
import { errorRate, wordErrors } from "../../src/eval/metrics.js";
import { noModel, normalize, sox, tempDir, testdata } from "../helpers/fixtures.js";
import { modelDir } from "./helpers.js";

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

function call(
  port: number,
  method: string,
  path: string,
  opts: { file?: string; body?: Buffer; headers?: Record<string, string> } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method, path, headers: opts.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({
          status: res.statusCode!,
          headers: res.headers,
          body: Buffer.concat(chunks).toString("utf8"),
        }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
    if (opts.file) createReadStream(opts.file).pipe(req);
    else req.end(opts.body);
  });
}

const invoke = (port: number, file: string, headers: Record<string, string> = {}) =>
  call(port, "POST", "/invocations", {
    file,
    headers: { "content-type": "application/octet-stream", ...headers },
  });

async function progress(
  port: number,
): Promise<Record<string, { processedSeconds: number; totalSeconds: number }>> {
  return JSON.parse((await call(port, "GET", "/kikitori/progress")).body);
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("model server", { skip: noModel }, () => {
  let server: ModelServer;
  let dir: string;
  let longClip: string;
  let jfkReference = "";

  before(async () => {
    dir = tempDir();
    const models = join(dir, "model");
    await mkdir(models);
    server = await startModelServer({ port: 0, modelDir: await modelDir(models) });
    await server.ready;
    jfkReference = (await readFile(testdata("jfk.txt"), "utf8")).trim();
    // 66 s of speech: six JFKs back to back.
    longClip = join(dir, "long.wav");
    sox(Array(6).fill(testdata("jfk.wav")).concat(longClip));
  });
  after(() => server?.close());

  it("answers /ping once the model is loaded, and 404 elsewhere", async () => {
    const ping = await call(server.port, "GET", "/ping");
    assert.equal(ping.status, 200);
    assert.equal((await call(server.port, "GET", "/nope")).status, 404);
  });

  it("transcribes jfk.wav as JSON, with timing headers", async () => {
    const t0 = performance.now();
    const r = await invoke(server.port, testdata("jfk.wav"), { "x-kikitori-invocation-id": "jfk-1" });
    const wallMs = performance.now() - t0;
    assert.equal(r.status, 200, r.body);
    assert.match(r.headers["content-type"]!, /application\/json/);
    const body = JSON.parse(r.body);
    assert.equal(normalize(body.text), normalize(jfkReference));
    assert.equal(body.language, "en");
    assert.ok(Math.abs(body.duration - 11) < 0.01);
    assert.ok(body.segments.length >= 1);
    for (const s of body.segments)
      assert.ok(s.start >= 0 && s.end >= s.start && s.end <= 11.01, JSON.stringify(s));
    assert.equal(r.headers["x-kikitori-audio-seconds"], "11.000");
    const modelMs = Number(r.headers["x-kikitori-model-time-ms"]);
    assert.ok(modelMs > 0 && modelMs <= wallMs + 5);
    console.log(`# jfk.wav: model ${modelMs} ms for 11 s, RTF ${(modelMs / 11000).toFixed(3)}`);
  });

  for (const [name, maxWer] of [
    ["jfk.mp3", 0],
    ["jfk.flac", 0],
    ["jfk.m4a", 0],
    ["fleurs-en-004.ogg", 0.35],
  ] as const) {
    it(`transcribes ${name} streamed from the request body`, async () => {
      const r = await invoke(server.port, testdata(name), { accept: "text/plain" });
      assert.equal(r.status, 200, r.body);
      assert.match(r.headers["content-type"]!, /text\/plain/);
      const reference = await readFile(testdata(name.replace(/\.\w+$/, ".txt")), "utf8");
      const wer = errorRate(wordErrors(reference, r.body));
      assert.ok(wer <= maxWer, `WER ${wer.toFixed(2)}: ${r.body}`);
    });
  }

  it("renders srt (custom attribute) and vtt (Accept)", async () => {
    const srt = await invoke(server.port, testdata("jfk.wav"), {
      "x-amzn-sagemaker-custom-attributes": "format=srt",
    });
    assert.equal(srt.status, 200);
    assert.match(srt.headers["content-type"]!, /application\/x-subrip/);
    assert.match(srt.body, /^1\n00:00:00,\d{3} --> 00:00:\d\d,\d{3}\n\S/);
    const vtt = await invoke(server.port, testdata("jfk.wav"), { accept: "text/vtt" });
    assert.match(vtt.body, /^WEBVTT\n\n00:00:00\.\d{3} --> /);
  });

  it("gives word timestamps in verbose_json", async () => {
    const r = await invoke(server.port, testdata("jfk.wav"), {
      "x-amzn-sagemaker-custom-attributes":
        "format=verbose_json,word_timestamps=true,language=en,temperature=0",
    });
    assert.equal(r.status, 200, r.body);
    const v = JSON.parse(r.body);
    assert.equal(v.language, "english");
    assert.equal(v.task, "transcribe");
    assert.ok(v.words.length >= 20, `only ${v.words.length} words`);
    assert.equal(normalize(v.words.map((w: { word: string }) => w.word).join(" ")), normalize(jfkReference));
    let previous = 0;
    for (const w of v.words) {
      assert.ok(w.start >= previous - 0.01 && w.end >= w.start, JSON.stringify(w));
      previous = w.start;
    }
  });

  it("rejects a bad option with 400 naming it, and undecodable audio with 422 and the reason; then keeps serving", async () => {
    const bad = await invoke(server.port, testdata("jfk.wav"), {
      "x-amzn-sagemaker-custom-attributes": "beam_size=-3",
    });
    assert.equal(bad.status, 400);
    assert.deepEqual(Object.keys(JSON.parse(bad.body).error), ["code", "message", "field"]);
    assert.equal(JSON.parse(bad.body).error.field, "beam_size");

    const png = await call(server.port, "POST", "/invocations", {
      body: Buffer.from("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489", "hex"),
      headers: { "content-type": "audio/wav" },
    });
    assert.equal(png.status, 422);
    const error = JSON.parse(png.body).error;
    assert.equal(error.code, "InvalidAudio");
    assert.match(error.message, /cannot decode audio: .+/);

    const empty = await call(server.port, "POST", "/invocations", { body: Buffer.alloc(0) });
    assert.equal(empty.status, 422);
    assert.match(JSON.parse(empty.body).error.message, /empty/);

    assert.equal((await call(server.port, "GET", "/ping")).status, 200);
    const ok = await invoke(server.port, testdata("jfk.wav"));
    assert.equal(ok.status, 200);
  });

  it("returns empty text for 60 s of silence", async () => {
    const silence = join(dir, "silence.wav");
    sox(["-n", "-r", "16000", "-c", "1", silence, "trim", "0", "60"]);
    const r = await invoke(server.port, silence);
    assert.equal(r.status, 200);
    const body = JSON.parse(r.body);
    assert.equal(body.text, "");
    assert.deepEqual(body.segments, []);
    assert.equal(body.duration, 60);
  });

  it("answers /ping and reports progress while transcribing a 66 s clip", async () => {
    const work = invoke(server.port, longClip, { "x-kikitori-invocation-id": "long-1" });
    let pings = 0;
    let seen: { processedSeconds: number; totalSeconds: number } | undefined;
    let done = false;
    void work.finally(() => (done = true));
    while (!done) {
      const t0 = performance.now();
      const ping = await call(server.port, "GET", "/ping");
      assert.equal(ping.status, 200);
      assert.ok(performance.now() - t0 < 2000, `ping took ${performance.now() - t0} ms`);
      pings++;
      seen = (await progress(server.port))["long-1"] ?? seen;
      await new Promise((r) => setTimeout(r, 200));
    }
    const r = await work;
    assert.equal(r.status, 200, r.body);
    const modelMs = Number(r.headers["x-kikitori-model-time-ms"]);
    console.log(
      `# long.wav: model ${modelMs} ms for 66 s, RTF ${(modelMs / 66000).toFixed(3)}; ${pings} pings`,
    );
    assert.ok(pings >= 2);
    assert.ok(
      seen && seen.totalSeconds > 60 && seen.processedSeconds <= seen.totalSeconds,
      JSON.stringify(seen),
    );
    assert.ok(errorRate(wordErrors(Array(6).fill(jfkReference).join(" "), JSON.parse(r.body).text)) < 0.1);
    assert.deepEqual(await progress(server.port), {});
  });

  it("aborts the transcription when the client disconnects, freeing the server within 2 s", async () => {
    const req = request({
      host: "127.0.0.1",
      port: server.port,
      method: "POST",
      path: "/invocations",
      headers: { "x-kikitori-invocation-id": "gone-1" },
    });
    req.on("error", () => undefined);
    createReadStream(longClip).pipe(req);
    await until(
      "the long clip to start",
      async () => ((await progress(server.port))["gone-1"]?.totalSeconds ?? 0) > 60,
      30_000,
    );
    await new Promise((r) => setTimeout(r, 1000)); // well into whisper's first window
    const t0 = performance.now();
    req.destroy();
    await until("the invocation to end", async () => !("gone-1" in (await progress(server.port))), 2000);
    const goneMs = Math.round(performance.now() - t0);
    // The next request gets the freed slot at once: no time queued behind the aborted run.
    const t1 = performance.now();
    const r = await invoke(server.port, testdata("jfk.wav"));
    assert.equal(r.status, 200);
    const queuedMs = performance.now() - t1 - Number(r.headers["x-kikitori-model-time-ms"]);
    assert.ok(queuedMs < 2000, `waited ${queuedMs} ms for a slot`);
    console.log(
      `# abort: gone from progress after ${goneMs} ms; next request queued ${Math.round(queuedMs)} ms`,
    );
  });
});

describe("model server without a model", () => {
  it("listens, reports the load failure on /ping and /invocations, and closes", async () => {
    const dir = tempDir();
    const server = await startModelServer({ port: 0, modelDir: dir });
    await assert.rejects(server.ready, /no ggml whisper model/);
    const ping = await call(server.port, "GET", "/ping");
    assert.equal(ping.status, 500);
    assert.match(JSON.parse(ping.body).error.message, /no ggml whisper model/);
    const inv = await call(server.port, "POST", "/invocations", { body: Buffer.from("x") });
    assert.equal(inv.status, 500);
    await server.close();
  });
});
