import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FsObjectStore } from "../../src/storage/index.js";
import { ModelDataCache, unpackModelArchive } from "../../src/instances/model-data.js";
import { tempDir } from "../helpers/server.js";

// Hostile archives are built here with Python's tarfile, which writes what it is told (absolute names,
// `..`, links, headers that declare sizes the data never delivers).
const BUILD = String.raw`
import io, sys, tarfile, gzip
kind, out, outside = sys.argv[1], sys.argv[2], sys.argv[3]
buf = io.BytesIO()
def add(tf, name, data=b"x", **kw):
    ti = tarfile.TarInfo(name); ti.size = len(data)
    for k, v in kw.items(): setattr(ti, k, v)
    tf.addfile(ti, io.BytesIO(data) if ti.type == tarfile.REGTYPE else None)
if kind == "bomb":
    # A header declaring 50 GB followed by almost nothing: refused from the header alone.
    ti = tarfile.TarInfo("weights.bin"); ti.size = 50 * 1024**3
    buf.write(ti.tobuf(format=tarfile.GNU_FORMAT)); buf.write(b"\0" * 4096)
else:
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        add(tf, "model.bin", b"good")
        if kind == "dotdot": add(tf, "../../escaped.txt", b"pwned")
        if kind == "absolute": add(tf, outside, b"pwned")
        if kind == "symlink": add(tf, "link", type=tarfile.SYMTYPE, linkname="/etc", size=0)
        if kind == "hardlink": add(tf, "hard", type=tarfile.LNKTYPE, linkname="/etc/passwd", size=0)
        if kind == "device": add(tf, "dev", type=tarfile.CHRTYPE, devmajor=1, devminor=3, size=0)
        if kind == "many":
            for i in range(200): add(tf, f"f{i}.txt", b"x")
        if kind == "big": add(tf, "big.bin", b"\0" * 200_000)
open(out, "wb").write(gzip.compress(buf.getvalue()))
`;

function build(kind: string, dir: string, outside = "/tmp/never"): string {
  const out = join(dir, `${kind}.tar.gz`);
  execFileSync("python3", ["-c", BUILD, kind, out, outside]);
  return out;
}

const listAll = (dir: string): string[] =>
  readdirSync(dir, { recursive: true, withFileTypes: false }) as string[];

test("hostile model archives are refused with a clear reason and write nothing outside the model dir", async () => {
  const root = tempDir("kk-md-");
  const work = join(root, "work");
  execFileSync("mkdir", ["-p", work]);
  const outside = join(root, "outside-absolute.txt");
  writeFileSync(join(root, "victim.txt"), "untouched");
  const limits = { maxBytes: 100_000, maxEntries: 100 };
  const cases: [string, RegExp][] = [
    ["dotdot", /entry "\.\.\/\.\.\/escaped\.txt" points outside the model directory/],
    ["absolute", /has an absolute path/],
    ["symlink", /entry "link" is a symbolic link to "\/etc"/],
    ["hardlink", /entry "hard" is a hard link to "\/etc\/passwd"/],
    ["device", /entry "dev" has unsupported type CharacterDevice/],
    ["many", /more than 100 entries/],
    ["big", /expands to more than 100000 bytes/],
    ["bomb", /expands to more than 100000 bytes/],
  ];
  for (const [kind, why] of cases) {
    const archive = build(kind, root, outside);
    const dest = join(work, kind, "model");
    await assert.rejects(unpackModelArchive(archive, dest, limits), (e: Error) => {
      assert.match(e.message, new RegExp(`model archive .*${kind}\\.tar\\.gz refused: `));
      assert.match(e.message, why, kind);
      return true;
    });
    assert.ok(!existsSync(dest), `${kind}: no model dir was created`);
  }
  // The default limits refuse the declared 50 GB too.
  await assert.rejects(unpackModelArchive(build("bomb", root), join(work, "bomb2")), /expands to more than/);
  assert.deepEqual(listAll(work), [], "nothing was written under the work dir");
  assert.ok(!existsSync(outside), "no file at the absolute path");
  assert.ok(!existsSync(join(root, "escaped.txt")) && !existsSync(join(root, "..", "escaped.txt")));
  assert.equal(readFileSync(join(root, "victim.txt"), "utf8"), "untouched");

  // A good archive unpacks.
  const good = join(work, "ok", "model");
  await unpackModelArchive(build("ok", root), good, limits);
  assert.deepEqual(listAll(good), ["model.bin"]);
});

test("model data is downloaded once per version, checksum-verified against the store, and cached", async () => {
  const root = tempDir("kk-md-");
  const objects = new FsObjectStore({ root: join(root, "objects") });
  await objects.createBucket("models");
  const archive = readFileSync(build("ok", root));
  await objects.putObject("models", "m/model.tar.gz", archive);
  const cache = new ModelDataCache(join(root, "cache"), objects);
  const [a, b] = await Promise.all([
    cache.resolve("s3://models/m/model.tar.gz"),
    cache.resolve("s3://models/m/model.tar.gz"),
  ]);
  assert.equal(a, b, "one download for concurrent instances");
  assert.deepEqual(listAll(a), ["model.bin"]);
  const marker = JSON.parse(readFileSync(join(a, "..", ".kikitori-model-data.json"), "utf8"));
  assert.match(marker.sha256, /^[0-9a-f]{64}$/);

  // A declared SHA-256 that the bytes do not match is refused.
  await objects.putObject("models", "m/bad.tar.gz", archive, { metadata: { sha256: "0".repeat(64) } });
  await assert.rejects(
    cache.resolve("s3://models/m/bad.tar.gz"),
    /ModelDataUrl: s3:\/\/models\/m\/bad\.tar\.gz failed checksum verification: SHA-256 [0-9a-f]{64} does not match x-amz-meta-sha256 0{64}/,
  );
  // A hostile archive in the store is refused through the same path.
  await objects.putObject("models", "m/evil.tar.gz", readFileSync(build("dotdot", root)));
  await assert.rejects(cache.resolve("s3://models/m/evil.tar.gz"), /points outside the model directory/);
  assert.ok(!existsSync(join(root, "escaped.txt")) && !existsSync(join(root, "cache", "escaped.txt")));
});
