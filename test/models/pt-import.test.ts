/**
 * OpenAI checkpoints (`*.pt`): the zip and pickle readers against Python's own writers (pickle is the
 * reference implementation; the hostile cases are made with it too), and the importer on checkpoints
 * written from real and random weights, checked byte for byte against the ggml file of the same weights.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { findImporter } from "../../src/models/import/index.js";
import { ptImporter } from "../../src/models/import/pt.js";
import { PyGlobal, unpickle, type PyValue } from "../../src/models/pickle.js";
import { makeRandomGgmlModel } from "../../src/models/random-model.js";
import { sha256File } from "../../src/models/registry.js";
import { ZipArchive } from "../../src/models/zip.js";
import { assetsDir, baseModelPath, noBaseModel, openaiCheckpoint, repoRoot } from "../helpers/fixtures.js";

const writer = path.join(repoRoot, "scripts", "write-openai-checkpoint.py");
let tmp: string;
let randomGgml: string;
let randomPt: string;

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "kikitori-pt-test-"));
  randomGgml = path.join(tmp, "random.bin");
  await makeRandomGgmlModel(randomGgml, path.join(tmp, "random-ct2"), {
    tiktokenFile: path.join(assetsDir, "gpt2.tiktoken"),
    nState: 32,
  });
  randomPt = path.join(tmp, "tiny-random.pt");
  execFileSync("python3", [writer, randomGgml, randomPt]);
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Runs Python code that writes bytes to the file named by sys.argv[1]; returns them. */
function python(code: string): Buffer {
  const out = path.join(tmp, `py-${Math.random().toString(36).slice(2)}`);
  execFileSync("python3", ["-c", code, out]);
  return readFileSync(out);
}

test("pickles of plain data read the same as Python reads them, in every protocol", () => {
  for (const protocol of [0, 1, 2, 3, 4, 5]) {
    const data = python(`
import pickle, sys, collections
obj = {"int": 7, "neg": -300000, "big": 2**70, "float": 0.1, "str": "日本語 ok", "none": None,
       "t": True, "f": False, "tuple": (1, (2, 3), ()), "list": [1, "a", [2]], "bytes": b"\\x00\\xff",
       "od": collections.OrderedDict([("a", 1), ("b", 2)]), "set": {5}, "shared": None}
shared = [1, 2]
obj["shared"] = (shared, shared)
open(sys.argv[1], "wb").write(pickle.dumps(obj, protocol=${protocol}))`);
    const v = unpickle(data, {
      calls: { "collections.OrderedDict": () => new Map() },
    }) as Map<string, PyValue>;
    const get = (k: string) => v.get(k);
    assert.equal(get("int"), 7, `protocol ${protocol}`);
    assert.equal(get("neg"), -300000);
    assert.equal(get("big"), 2n ** 70n);
    assert.equal(get("float"), 0.1);
    assert.equal(get("str"), "日本語 ok");
    assert.equal(get("none"), null);
    assert.equal(get("t"), true);
    assert.equal(get("f"), false);
    assert.deepEqual(get("tuple"), [1, [2, 3], []]);
    assert.deepEqual(get("list"), [1, "a", [2]]);
    assert.deepEqual(
      [...(get("od") as Map<string, number>)],
      [
        ["a", 1],
        ["b", 2],
      ],
    );
    const shared = get("shared") as PyValue[][];
    assert.equal(shared[0], shared[1], "the memo keeps shared objects shared");
    assert.deepEqual(get("bytes"), Uint8Array.from([0, 255]));
    assert.deepEqual(get("set"), new Set([5]));
  }
});

test("a pickle that calls anything not explicitly allowed is refused, naming it; nothing runs", () => {
  const evil = python(`
import pickle, sys, os
class Evil:
    def __reduce__(self): return (os.system, ("touch /tmp/kikitori-pwned",))
open(sys.argv[1], "wb").write(pickle.dumps({"model_state_dict": Evil()}, protocol=2))`);
  assert.throws(
    () => unpickle(evil, { source: "evil.pkl" }),
    /evil\.pkl: refers to posix\.system, which kikitori does not interpret \(no code in a pickle is ever run\)/,
  );
  assert.ok(!existsSync("/tmp/kikitori-pwned"));
  const obj = python(`
import pickle, sys
class Thing: pass
open(sys.argv[1], "wb").write(pickle.dumps(Thing(), protocol=2))`);
  assert.throws(() => unpickle(obj), /refers to __main__\.Thing/);
  assert.throws(() => unpickle(evil.subarray(0, 20)), /truncated|underflow/);
  const g = unpickle(
    python(`import pickle, sys, collections
open(sys.argv[1], "wb").write(pickle.dumps(collections.OrderedDict, protocol=2))`),
    {
      values: new Set(["collections.OrderedDict"]),
    },
  );
  assert.ok(g instanceof PyGlobal && g.qualifiedName === "collections.OrderedDict");
});

test("the zip reader finds stored records aligned as PyTorch writes them, and inflates deflated ones", async () => {
  const zip = await ZipArchive.open(randomPt);
  try {
    assert.equal(zip.entries[0]!.name, "tiny-random/data.pkl");
    assert.equal(zip.entries.at(-1)!.name, "tiny-random/version");
    for (const e of zip.entries) assert.equal(e.dataOffset % 64, 0, `${e.name} starts on a 64-byte boundary`);
    assert.equal((await zip.read(zip.entries.at(-1)!)).toString(), "3\n");
  } finally {
    await zip.close();
  }
  const deflated = path.join(tmp, "deflated.zip");
  python(`
import sys, zipfile
with zipfile.ZipFile("${deflated}", "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("a/b.txt", "hello " * 1000)
    z.writestr("empty", "")
open(sys.argv[1], "wb").write(b"")`);
  const z = await ZipArchive.open(deflated);
  try {
    assert.equal((await z.read(z.entry("a/b.txt")!)).toString(), "hello ".repeat(1000));
    assert.equal(z.entry("a/b.txt")!.method, 8);
    await z.extract(z.entry("empty")!, path.join(tmp, "empty.out"));
  } finally {
    await z.close();
  }
});

test("a checkpoint written from a random model converts back to the same ggml bytes, and whisper.cpp's layout", async () => {
  assert.equal((await findImporter(randomPt)).name, "pt");
  const out = path.join(tmp, "from-pt.bin");
  const r = await ptImporter.import(randomPt, out);
  assert.equal(r.tensors, 50);
  assert.equal(r.hparams.nVocab, 51864);
  assert.equal(r.sha256, await sha256File(randomGgml), "byte-identical to the ggml file it was written from");
});

test("checkpoints that are not Whisper models are refused with the reason", async () => {
  const cases: [string, string, RegExp][] = [
    [
      "legacy",
      `import pickle, sys
f = open(sys.argv[1], "wb"); pickle.dump(0x1950a86a20f9469cfc6c, f, protocol=2); pickle.dump(1001, f, protocol=2)`,
      /legacy format \(before PyTorch 1\.6\)/,
    ],
    [
      "no-dims",
      `import sys, subprocess, zipfile, pickle
with zipfile.ZipFile(sys.argv[1], "w") as z: z.writestr("x/data.pkl", pickle.dumps({"model_state_dict": {}}, protocol=2))`,
      /not an OpenAI Whisper checkpoint \(no "dims"\)/,
    ],
    [
      "not-a-checkpoint",
      `import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z: z.writestr("readme.txt", "hi")`,
      /not a PyTorch checkpoint \(no <name>\/data\.pkl\)/,
    ],
  ];
  for (const [name, code, why] of cases) {
    const file = path.join(tmp, `${name}.pt`);
    await writeFile(file, python(code));
    const out = path.join(tmp, `${name}.bin`);
    await assert.rejects(ptImporter.import(file, out), why, name);
    assert.ok(!existsSync(out) && !existsSync(`${out}.partial`), `${name}: nothing left behind`);
  }
  // A state dict with a tensor whisper.cpp does not know (here: a renamed one) names the tensor.
  const renamed = path.join(tmp, "renamed.pt");
  await writeFile(
    renamed,
    python(`
import sys, zipfile
src = zipfile.ZipFile("${randomPt}")
with zipfile.ZipFile(sys.argv[1], "w") as z:
    for i in src.infolist():
        data = src.read(i)
        if i.filename.endswith("data.pkl"): data = data.replace(b"decoder.ln.bias", b"decoder.ln.beta")
        z.writestr(i.filename.replace("tiny-random", "renamed"), data)`),
  );
  await assert.rejects(
    ptImporter.import(renamed, path.join(tmp, "renamed.bin")),
    /tensor decoder\.ln\.beta is not part of a Whisper model whisper\.cpp can load/,
  );
});

test(
  "the OpenAI-format base.pt (real weights) converts to exactly the ggml base model",
  {
    skip:
      noBaseModel ||
      (existsSync(openaiCheckpoint) ? false : `no ${openaiCheckpoint} (scripts/fetch-test-model)`),
  },
  async () => {
    const out = path.join(tmp, "base-from-pt.bin");
    const r = await ptImporter.import(openaiCheckpoint, out);
    assert.deepEqual(Object.values(r.hparams), [51865, 1500, 512, 8, 6, 448, 512, 8, 6, 80, 1]);
    assert.equal(r.tensors, 245);
    assert.equal(r.sha256, await sha256File(baseModelPath));
  },
);
