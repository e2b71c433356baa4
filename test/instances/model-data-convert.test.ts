/**
 * Model data in any format the built-in server can run: a model.tar.gz holding an OpenAI checkpoint, a
 * CTranslate2 directory or a ggml file. The non-ggml ones are converted once per model version, beside the
 * unpacked original (which other images still read as it is). Random weights keep it fast; the real
 * base.pt goes through the same path in test/compat/boto3.test.ts.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { ModelDataCache } from "../../src/instances/model-data.js";
import { findModelFile, sha256File } from "../../src/models/registry.js";
import { makeRandomGgmlModel } from "../../src/models/random-model.js";
import { FsObjectStore } from "../../src/storage/index.js";
import { assetsDir, repoRoot, tempDir } from "../helpers/fixtures.js";

const root = tempDir("kk-md-convert-");
const ggml = join(root, "src", "random.bin");
const ct2 = join(root, "src", "faster-whisper-random");
const pt = join(root, "src", "random.pt");
let ggmlSha: string;

before(async () => {
  await mkdir(join(root, "src"), { recursive: true });
  await makeRandomGgmlModel(ggml, ct2, { tiktokenFile: join(assetsDir, "gpt2.tiktoken"), nState: 32 });
  execFileSync("python3", [join(repoRoot, "scripts", "write-openai-checkpoint.py"), ggml, pt]);
  ggmlSha = await sha256File(ggml);
});

/** `tar -czf` of `entries` (paths relative to `dir`), as users make model.tar.gz. */
function tarball(name: string, dir: string, entries: string[]): Buffer {
  const out = join(root, `${name}.tar.gz`);
  execFileSync("tar", ["-czf", out, "-C", dir, ...entries]);
  return readFileSync(out);
}

test("a .pt, a CTranslate2 directory and a ggml file in model.tar.gz all run; conversions happen once", async () => {
  const objects = new FsObjectStore({ root: join(root, "objects") });
  await objects.createBucket("models");
  const cache = new ModelDataCache(join(root, "cache"), objects);
  await objects.putObject("models", "pt.tar.gz", tarball("pt", join(root, "src"), ["random.pt"]));
  await objects.putObject(
    "models",
    "ct2.tar.gz",
    tarball("ct2", join(root, "src"), ["faster-whisper-random"]),
  );
  await objects.putObject("models", "ggml.tar.gz", tarball("ggml", join(root, "src"), ["random.bin"]));

  for (const kind of ["pt", "ct2"]) {
    const url = `s3://models/${kind}.tar.gz`;
    const [a, b] = await Promise.all([
      cache.resolve(url, { builtin: true }),
      cache.resolve(url, { builtin: true }),
    ]);
    assert.equal(a, b, `${kind}: one conversion for concurrent instances`);
    const file = await findModelFile(a);
    assert.equal(await sha256File(file), ggmlSha, `${kind}: converted to the same ggml bytes`);
    const manifest = JSON.parse(readFileSync(join(a, "kikitori-model.json"), "utf8"));
    assert.equal(manifest.convertedFrom.format, kind);
    // Other images get the data as uploaded.
    const raw = await cache.resolve(url);
    assert.deepEqual(readdirSync(raw), [kind === "pt" ? "random.pt" : "faster-whisper-random"]);
    // Cached: resolving again converts nothing (the file is not rewritten).
    const mtime = statSync(file).mtimeMs;
    assert.equal(await cache.resolve(url, { builtin: true }), a);
    assert.equal(statSync(file).mtimeMs, mtime);
  }
  const plain = await cache.resolve("s3://models/ggml.tar.gz", { builtin: true });
  assert.equal(plain, await cache.resolve("s3://models/ggml.tar.gz"), "a ggml archive needs no conversion");
});

test("model data without a runnable model, or with several, is refused naming what it holds", async () => {
  const objects = new FsObjectStore({ root: join(root, "objects2") });
  await objects.createBucket("models");
  const cache = new ModelDataCache(join(root, "cache2"), objects);
  const dir = join(root, "junk");
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "notes.txt"), "not a model");
  await objects.putObject("models", "junk.tar.gz", tarball("junk", dir, ["notes.txt"]));
  await assert.rejects(
    cache.resolve("s3://models/junk.tar.gz", { builtin: true }),
    /model data s3:\/\/models\/junk\.tar\.gz holds no Whisper model kikitori can run: .* \(found: notes\.txt\)/,
  );
  await objects.putObject(
    "models",
    "two.tar.gz",
    tarball("two", join(root, "src"), ["random.pt", "faster-whisper-random"]),
  );
  await assert.rejects(
    cache.resolve("s3://models/two.tar.gz", { builtin: true }),
    /holds several models \(faster-whisper-random, random\.pt\)/,
  );
});
