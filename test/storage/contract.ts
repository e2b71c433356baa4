import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import type { ObjectStore } from "../../src/storage/index.js";
import { StoreError } from "../../src/storage/index.js";

export interface StoreHarness {
  store: ObjectStore;
  /** Smallest part the store accepts for all but the last part of a multipart upload. */
  minPartBytes: number;
  /**
   * Where the server behind the store differs from S3 as kikitori's stores behave, and the contract checks
   * the server's way instead: `recreate-bucket-ok` (us-east-1 S3 and moto answer 200 to creating a bucket
   * one already owns), `part-order-unchecked` (moto completes an upload whose parts are out of order),
   * `aborted-upload-500` (moto answers a part for an aborted upload with an HTML error page, not NoSuchUpload).
   */
  quirks?: ("recreate-bucket-ok" | "part-order-unchecked" | "aborted-upload-500")[];
  cleanup(): Promise<void>;
}

const md5 = (b: Buffer) => createHash("md5").update(b).digest("hex");

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks);
}

async function rejectsCode(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof StoreError, `expected StoreError ${code}, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

/** Behaviour every ObjectStore must have; run by each backend's test file. */
export function storeContract(name: string, makeHarness: () => Promise<StoreHarness>): void {
  describe(`ObjectStore contract: ${name}`, () => {
    let h: StoreHarness;
    let s: ObjectStore;
    let n = 0;
    /** A fresh bucket per test keeps tests independent without a fresh store. */
    const bucket = async () => {
      const b = `contract-${process.pid}-${Date.now() % 100000}-${n++}`;
      await s.createBucket(b);
      return b;
    };

    before(async () => {
      h = await makeHarness();
      s = h.store;
    });
    after(async () => {
      await h.cleanup();
    });

    it("creates, heads, lists and deletes buckets", async () => {
      const b = await bucket();
      assert.equal((await s.headBucket(b)).name, b);
      assert.ok((await s.listBuckets()).some((x) => x.name === b));
      if (h.quirks?.includes("recreate-bucket-ok")) await s.createBucket(b);
      else await rejectsCode(s.createBucket(b), "BucketAlreadyOwnedByYou");
      await s.deleteBucket(b);
      await rejectsCode(s.headBucket(b), "NoSuchBucket");
    });

    it("refuses bad bucket names", async () => {
      for (const bad of ["ab", "UPPER", "-lead", "a..b", "192.168.1.1", "x".repeat(64), "../x"])
        await rejectsCode(s.createBucket(bad), "InvalidBucketName");
    });

    it("refuses to delete a bucket that holds objects", async () => {
      const b = await bucket();
      await s.putObject(b, "k", Buffer.from("x"));
      await rejectsCode(s.deleteBucket(b), "BucketNotEmpty");
      await s.deleteObject(b, "k");
      await s.deleteBucket(b);
    });

    it("puts and gets a buffer with metadata and etag", async () => {
      const b = await bucket();
      const data = Buffer.from("hello, kikitori");
      const info = await s.putObject(b, "dir/hello.txt", data, {
        contentType: "text/plain",
        metadata: { "Inference-Id": "abc" },
      });
      assert.equal(info.etag, md5(data));
      assert.equal(info.size, data.length);
      const head = await s.headObject(b, "dir/hello.txt");
      assert.equal(head.contentType, "text/plain");
      assert.deepEqual(head.metadata, { "inference-id": "abc" });
      assert.equal(head.etag, md5(data));
      const got = await s.getObject(b, "dir/hello.txt");
      assert.deepEqual(await readAll(got.body), data);
    });

    it("streams a large body in and out", async () => {
      const b = await bucket();
      const chunk = Buffer.alloc(1024 * 1024, 7);
      const total = 12;
      async function* gen() {
        for (let i = 0; i < total; i++) yield chunk;
      }
      const info = await s.putObject(b, "big.bin", Readable.from(gen()));
      assert.equal(info.size, total * chunk.length);
      const { body } = await s.getObject(b, "big.bin");
      let size = 0;
      for await (const c of body) size += (c as Buffer).length;
      assert.equal(size, total * chunk.length);
    });

    it("accepts arbitrary unicode keys with spaces and slashes", async () => {
      const b = await bucket();
      const keys = ["a b/c d.wav", "日本語/聞き取り.mp3", "emoji/🎤.ogg", "x".repeat(1000), "trailing/"];
      for (const k of keys) await s.putObject(b, k, Buffer.from(k));
      for (const k of keys) assert.equal((await readAll((await s.getObject(b, k)).body)).toString(), k);
    });

    it("refuses empty and over-long keys", async () => {
      const b = await bucket();
      await assert.rejects(s.putObject(b, "", Buffer.from("x")), StoreError);
      await rejectsCode(s.putObject(b, "é".repeat(513), Buffer.from("x")), "KeyTooLongError");
    });

    it("overwrites atomically and reports NoSuchKey / NoSuchBucket", async () => {
      const b = await bucket();
      await s.putObject(b, "k", Buffer.from("one"));
      await s.putObject(b, "k", Buffer.from("two"));
      assert.equal((await readAll((await s.getObject(b, "k")).body)).toString(), "two");
      await rejectsCode(s.getObject(b, "missing"), "NoSuchKey");
      await rejectsCode(s.headObject(b, "missing"), "NoSuchKey");
      await rejectsCode(s.getObject("no-such-bucket-kikitori", "k"), "NoSuchBucket");
      await rejectsCode(s.putObject("no-such-bucket-kikitori", "k", Buffer.from("x")), "NoSuchBucket");
    });

    it("serves byte ranges", async () => {
      const b = await bucket();
      const data = Buffer.from("0123456789");
      await s.putObject(b, "r", data);
      const cases: [Parameters<ObjectStore["getObject"]>[2], string, number, number][] = [
        [{ start: 2, end: 4 }, "234", 2, 4],
        [{ start: 7 }, "789", 7, 9],
        [{ start: 8, end: 100 }, "89", 8, 9],
        [{ suffix: 3 }, "789", 7, 9],
        [{ suffix: 50 }, "0123456789", 0, 9],
      ];
      for (const [range, want, start, end] of cases) {
        const got = await s.getObject(b, "r", range);
        assert.equal((await readAll(got.body)).toString(), want, JSON.stringify(range));
        assert.deepEqual(got.range, { start, end });
        assert.equal(got.info.size, 10);
      }
      await rejectsCode(s.getObject(b, "r", { start: 10 }), "InvalidRange");
    });

    it("enforces maxBytes and leaves nothing behind", async () => {
      const b = await bucket();
      await rejectsCode(s.putObject(b, "too-big", Buffer.alloc(100), { maxBytes: 99 }), "EntityTooLarge");
      await rejectsCode(s.headObject(b, "too-big"), "NoSuchKey");
      await s.putObject(b, "exact", Buffer.alloc(99), { maxBytes: 99 });
    });

    it("deletes objects, and deleting a missing key is fine", async () => {
      const b = await bucket();
      await s.putObject(b, "k", Buffer.from("x"));
      await s.deleteObject(b, "k");
      await s.deleteObject(b, "k");
      await rejectsCode(s.headObject(b, "k"), "NoSuchKey");
    });

    it("copies objects, keeping or replacing metadata", async () => {
      const b = await bucket();
      const b2 = await bucket();
      await s.putObject(b, "src", Buffer.from("copy me"), { contentType: "audio/wav", metadata: { a: "1" } });
      const kept = await s.copyObject(b, "src", b2, "dst");
      assert.equal(kept.etag, md5(Buffer.from("copy me")));
      const h1 = await s.headObject(b2, "dst");
      assert.equal(h1.contentType, "audio/wav");
      assert.deepEqual(h1.metadata, { a: "1" });
      await s.copyObject(b, "src", b, "dst2", { contentType: "text/plain", metadata: { b: "2" } });
      const h2 = await s.headObject(b, "dst2");
      assert.equal(h2.contentType, "text/plain");
      assert.deepEqual(h2.metadata, { b: "2" });
      assert.equal((await readAll((await s.getObject(b2, "dst")).body)).toString(), "copy me");
      await rejectsCode(s.copyObject(b, "missing", b, "x"), "NoSuchKey");
    });

    it("lists with prefix, delimiter, startAfter and maxKeys in byte order", async () => {
      const b = await bucket();
      const keys = ["a/1", "a/2", "a/b/3", "b", "c/1", "c/2", "d", "z", "é"]; // "é" is 0xC3 0xA9: after "z"
      for (const k of keys) await s.putObject(b, k, Buffer.from(k));
      const all = await s.listObjects(b);
      assert.deepEqual(
        all.objects.map((o) => o.key),
        keys,
      );
      assert.equal(all.truncated, false);

      const top = await s.listObjects(b, { delimiter: "/" });
      assert.deepEqual(top.commonPrefixes, ["a/", "c/"]);
      assert.deepEqual(
        top.objects.map((o) => o.key),
        ["b", "d", "z", "é"],
      );

      const inA = await s.listObjects(b, { prefix: "a/", delimiter: "/" });
      assert.deepEqual(
        inA.objects.map((o) => o.key),
        ["a/1", "a/2"],
      );
      assert.deepEqual(inA.commonPrefixes, ["a/b/"]);

      // Page through with delimiter, two entries at a time: every entry exactly once.
      const seen: string[] = [];
      let startAfter: string | undefined;
      for (let page = 0; page < 10; page++) {
        const r = await s.listObjects(b, { delimiter: "/", maxKeys: 2, startAfter });
        seen.push(...r.commonPrefixes, ...r.objects.map((o) => o.key));
        if (!r.truncated) break;
        assert.ok(r.nextStartAfter);
        startAfter = r.nextStartAfter;
      }
      assert.deepEqual(seen.sort(), ["a/", "b", "c/", "d", "z", "é"].sort());

      const after = await s.listObjects(b, { startAfter: "c/1" });
      assert.deepEqual(
        after.objects.map((o) => o.key),
        ["c/2", "d", "z", "é"],
      );
      const none = await s.listObjects(b, { prefix: "nothing" });
      assert.deepEqual(none.objects, []);
    });

    it("uploads multipart with an S3-style etag, and aborts", async () => {
      const b = await bucket();
      const p1 = Buffer.alloc(h.minPartBytes, 1);
      const p2 = Buffer.alloc(h.minPartBytes, 2);
      const p3 = Buffer.from("tail");
      const id = await s.createMultipartUpload(b, "mp.bin", {
        contentType: "audio/flac",
        metadata: { m: "x" },
      });
      const parts = [];
      parts.push(await s.uploadPart(id, 2, p2));
      parts.push(await s.uploadPart(id, 1, Readable.from([p1])));
      parts.push(await s.uploadPart(id, 3, p3));
      assert.deepEqual(
        (await s.listParts(id)).map((p) => p.partNumber),
        [1, 2, 3],
      );
      if (!h.quirks?.includes("part-order-unchecked")) {
        await rejectsCode(
          s.completeMultipartUpload(id, [
            { partNumber: 2, etag: md5(p2) },
            { partNumber: 1, etag: md5(p1) },
          ]),
          "InvalidPartOrder",
        );
      }
      await rejectsCode(s.completeMultipartUpload(id, [{ partNumber: 1, etag: md5(p2) }]), "InvalidPart");
      const info = await s.completeMultipartUpload(id, [
        { partNumber: 1, etag: `"${md5(p1)}"` },
        { partNumber: 2, etag: md5(p2) },
        { partNumber: 3, etag: md5(p3) },
      ]);
      const want = createHash("md5")
        .update(Buffer.concat([p1, p2, p3].map((p) => Buffer.from(md5(p), "hex"))))
        .digest("hex");
      assert.equal(info.etag, `${want}-3`);
      const head = await s.headObject(b, "mp.bin");
      assert.equal(head.size, p1.length + p2.length + p3.length);
      assert.equal(head.contentType, "audio/flac");
      assert.deepEqual(head.metadata, { m: "x" });
      const body = await readAll((await s.getObject(b, "mp.bin")).body);
      assert.deepEqual(body, Buffer.concat([p1, p2, p3]));
      await rejectsCode(s.listParts(id), "NoSuchUpload");

      const id2 = await s.createMultipartUpload(b, "aborted");
      await s.uploadPart(id2, 1, Buffer.from("x"));
      await s.abortMultipartUpload(id2);
      if (h.quirks?.includes("aborted-upload-500"))
        await assert.rejects(s.uploadPart(id2, 1, Buffer.from("x")));
      else await rejectsCode(s.uploadPart(id2, 1, Buffer.from("x")), "NoSuchUpload");
      await rejectsCode(s.headObject(b, "aborted"), "NoSuchKey");
    });

    it("refuses a small non-final part", async () => {
      const b = await bucket();
      const id = await s.createMultipartUpload(b, "small");
      const a = await s.uploadPart(id, 1, Buffer.from("tiny"));
      const c = await s.uploadPart(id, 2, Buffer.from("tail"));
      await rejectsCode(
        s.completeMultipartUpload(id, [
          { partNumber: 1, etag: a.etag },
          { partNumber: 2, etag: c.etag },
        ]),
        "EntityTooSmall",
      );
      await s.abortMultipartUpload(id);
    });
  });
}
