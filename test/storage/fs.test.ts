import assert from "node:assert/strict";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { describe, it } from "node:test";
import { FsObjectStore, parseS3Url, StoreError } from "../../src/storage/index.js";
import { storeContract } from "./contract.js";

storeContract("fs", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kikitori-fs-"));
  // Small parts keep the multipart contract test fast; S3's 5 MiB default is tested below.
  const store = new FsObjectStore({ root: join(dir, "objects"), minPartBytes: 64 * 1024 });
  return {
    store,
    minPartBytes: 64 * 1024,
    cleanup: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

/** Every file under `dir`, relative, recursively. */
async function tree(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath ?? e.path, e.name).slice(dir.length + 1));
}

describe("FsObjectStore on disk", () => {
  it("keeps hostile keys inside the root", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kikitori-fs-"));
    const root = join(dir, "deep", "objects");
    const store = new FsObjectStore({ root });
    try {
      await store.createBucket("bkt");
      // Keys with a ".." segment are refused by the one key rule (src/storage/validate.ts)...
      for (const k of ["../x", "a/../../x", "../../../../../../tmp/pwned", ".."])
        await assert.rejects(
          store.putObject("bkt", k, Buffer.from(k)),
          /must not contain "\.\." path segments/,
        );
      // ...and every other hostile-looking key is stored as data, never as a path.
      const hostile = ["/abs", "%2e%2e/x", ".", "a\\..\\..\\x", "./x", "a/..b/x"];
      for (const k of hostile) await store.putObject("bkt", k, Buffer.from(k));
      await assert.rejects(store.putObject("bkt", "nul\0byte", Buffer.from("x")), StoreError);
      // Nothing outside the root, and every file inside it is the index or a random-named blob.
      assert.deepEqual(
        await tree(join(dir, "deep")).then((f) => f.filter((p) => !p.startsWith("objects/"))),
        [],
      );
      for (const f of await tree(root))
        assert.match(f, /^(index\.sqlite(-wal|-shm)?|blobs\/[0-9a-f]{2}\/[0-9a-f]{32})$/);
      for (const k of hostile) {
        const { body } = await store.getObject("bkt", k);
        const chunks: Buffer[] = [];
        for await (const c of body) chunks.push(c as Buffer);
        assert.equal(Buffer.concat(chunks).toString(), k);
      }
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("leaves no temp file or blob after a refused or failed put", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kikitori-fs-"));
    const store = new FsObjectStore({ root: dir });
    try {
      await store.createBucket("bkt");
      await assert.rejects(
        store.putObject("bkt", "k", Buffer.alloc(1000), { maxBytes: 10 }),
        /EntityTooLarge|exceeds/,
      );
      const failing = new Readable({
        read() {
          this.push(Buffer.alloc(100));
          this.destroy(new Error("client went away"));
        },
      });
      await assert.rejects(store.putObject("bkt", "k2", failing), /client went away/);
      assert.deepEqual(
        (await tree(dir)).filter((f) => !f.startsWith("index.sqlite")),
        [],
      );
      // Overwrite and delete free the old blobs.
      await store.putObject("bkt", "k", Buffer.from("1"));
      await store.putObject("bkt", "k", Buffer.from("2"));
      assert.equal((await tree(dir)).filter((f) => f.startsWith("blobs/")).length, 1);
      await store.deleteObject("bkt", "k");
      assert.equal((await tree(dir)).filter((f) => f.startsWith("blobs/")).length, 0);
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("survives reopening and sweeps stale temp files", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kikitori-fs-"));
    let store = new FsObjectStore({ root: dir });
    try {
      await store.createBucket("bkt");
      await store.putObject("bkt", "k", Buffer.from("persisted"));
      await store.close();
      const stale = join(dir, "tmp", "leftover");
      await writeFile(stale, "x");
      const old = new Date(Date.now() - 2 * 60 * 60 * 1000);
      await import("node:fs/promises").then((f) => f.utimes(stale, old, old));
      store = new FsObjectStore({ root: dir });
      assert.equal((await store.headObject("bkt", "k")).size, "persisted".length);
      assert.deepEqual(await readdir(join(dir, "tmp")), []);
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("enforces S3's 5 MiB minimum part by default", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kikitori-fs-"));
    const store = new FsObjectStore({ root: dir, fsync: false });
    try {
      await store.createBucket("bkt");
      const id = await store.createMultipartUpload("bkt", "k");
      const a = await store.uploadPart(id, 1, Buffer.alloc(5 * 1024 * 1024 - 1));
      const b = await store.uploadPart(id, 2, Buffer.from("x"));
      await assert.rejects(
        store.completeMultipartUpload(id, [
          { partNumber: 1, etag: a.etag },
          { partNumber: 2, etag: b.etag },
        ]),
        /at least 5242880 bytes/,
      );
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("parseS3Url", () => {
  it("splits bucket and key", () => {
    assert.deepEqual(parseS3Url("s3://my-bucket/key/with/slashes and spaces.wav"), {
      bucket: "my-bucket",
      key: "key/with/slashes and spaces.wav",
    });
  });
  it("names what is wrong", () => {
    assert.throws(() => parseS3Url("http://b/k"), /Not an S3 URL/);
    assert.throws(() => parseS3Url("s3://bucket"), /no object key/);
    assert.throws(() => parseS3Url("s3://bucket/"), /no object key/);
    assert.throws(() => parseS3Url("s3://Bad_Bucket/k"), /Invalid bucket name/);
  });
});
