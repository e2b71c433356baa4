import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { request } from "node:http";
import { after, before, describe, it } from "node:test";
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { Sha256 } from "@aws-crypto/sha256-js";
import { HttpRequest } from "@smithy/protocol-http";
import { SignatureV4 } from "@smithy/signature-v4";
import { Readable } from "node:stream";
import { S3ObjectStore } from "../../src/storage/s3.js";
import { storeContract } from "../storage/contract.js";
import { CREDS, startS3 } from "./s3-server.js";

type Server = Awaited<ReturnType<typeof startS3>>;

function client(endpoint: string, creds = CREDS, forcePathStyle = true) {
  return new S3Client({ endpoint, region: "us-east-1", credentials: creds, forcePathStyle });
}

/** A plain HTTP call, for what SDKs won't send (hostile paths, presigned URLs); the path is sent as is. */
function http(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: Buffer } = {},
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  const m = /^http:\/\/([^/]+):(\d+)(\/.*)$/.exec(url)!;
  return new Promise((resolve, reject) => {
    const req = request(
      { host: m[1], port: Number(m[2]), path: m[3], method: opts.method ?? "GET", headers: opts.headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
      },
    );
    req.on("error", reject);
    req.end(opts.body);
  });
}

describe("S3 front door with @aws-sdk/client-s3", () => {
  let srv: Server;
  let s3: S3Client;
  before(async () => {
    srv = await startS3();
    s3 = client(srv.endpoint);
    await s3.send(new CreateBucketCommand({ Bucket: "sdk-bucket" }));
  });
  after(async () => {
    s3.destroy();
    await srv.stop();
  });

  it("puts (aws-chunked with CRC32 trailer), gets, ranges and heads", async () => {
    const body = Buffer.from("hello from the sdk ".repeat(1000));
    // A stream of unknown length makes the SDK use aws-chunked encoding with a checksum trailer.
    await s3.send(
      new PutObjectCommand({
        Bucket: "sdk-bucket",
        Key: "dir/ünïcode key+plus.txt",
        Body: Readable.from([body.subarray(0, 5000), body.subarray(5000)]),
        ContentLength: body.length,
        ContentType: "text/plain",
        Metadata: { job: "42" },
      }),
    );
    const got = await s3.send(
      new GetObjectCommand({ Bucket: "sdk-bucket", Key: "dir/ünïcode key+plus.txt" }),
    );
    assert.deepEqual(Buffer.from(await got.Body!.transformToByteArray()), body);
    assert.equal(got.ContentType, "text/plain");
    assert.deepEqual(got.Metadata, { job: "42" });
    assert.equal(got.ETag, `"${createHash("md5").update(body).digest("hex")}"`);

    const part = await s3.send(
      new GetObjectCommand({ Bucket: "sdk-bucket", Key: "dir/ünïcode key+plus.txt", Range: "bytes=6-9" }),
    );
    assert.equal(await part.Body!.transformToString(), "from");
    assert.equal(part.ContentRange, `bytes 6-9/${body.length}`);

    const head = await s3.send(
      new HeadObjectCommand({ Bucket: "sdk-bucket", Key: "dir/ünïcode key+plus.txt" }),
    );
    assert.equal(head.ContentLength, body.length);
    await assert.rejects(
      s3.send(new HeadObjectCommand({ Bucket: "sdk-bucket", Key: "missing" })),
      (e: Error) => e.name === "NotFound",
    );
    await assert.rejects(
      s3.send(new GetObjectCommand({ Bucket: "sdk-bucket", Key: "missing" })),
      (e: Error) => e.name === "NoSuchKey",
    );
  });

  it("lists v1 and v2, copies and deletes", async () => {
    for (const k of ["l/a", "l/b", "l/sub/c", "l/sub/d"])
      await s3.send(new PutObjectCommand({ Bucket: "sdk-bucket", Key: k, Body: k }));
    const v2 = await s3.send(
      new ListObjectsV2Command({ Bucket: "sdk-bucket", Prefix: "l/", Delimiter: "/", MaxKeys: 2 }),
    );
    assert.deepEqual(
      v2.Contents?.map((c) => c.Key),
      ["l/a", "l/b"],
    );
    assert.equal(v2.IsTruncated, true);
    const v2b = await s3.send(
      new ListObjectsV2Command({
        Bucket: "sdk-bucket",
        Prefix: "l/",
        Delimiter: "/",
        ContinuationToken: v2.NextContinuationToken,
      }),
    );
    assert.deepEqual(
      v2b.CommonPrefixes?.map((c) => c.Prefix),
      ["l/sub/"],
    );
    const v1 = await s3.send(new ListObjectsCommand({ Bucket: "sdk-bucket", Prefix: "l/sub/" }));
    assert.deepEqual(
      v1.Contents?.map((c) => c.Key),
      ["l/sub/c", "l/sub/d"],
    );

    await s3.send(
      new CopyObjectCommand({ Bucket: "sdk-bucket", Key: "l/copy", CopySource: "sdk-bucket/l/a" }),
    );
    const copy = await s3.send(new GetObjectCommand({ Bucket: "sdk-bucket", Key: "l/copy" }));
    assert.equal(await copy.Body!.transformToString(), "l/a");

    await s3.send(new DeleteObjectCommand({ Bucket: "sdk-bucket", Key: "l/copy" }));
    const del = await s3.send(
      new DeleteObjectsCommand({
        Bucket: "sdk-bucket",
        Delete: { Objects: [{ Key: "l/a" }, { Key: "l/b" }, { Key: "l/../x" }] },
      }),
    );
    assert.deepEqual(
      del.Deleted?.map((d) => d.Key),
      ["l/a", "l/b"],
    );
    assert.equal(del.Errors?.[0]?.Key, "l/../x");
    const left = await s3.send(new ListObjectsV2Command({ Bucket: "sdk-bucket", Prefix: "l/" }));
    assert.deepEqual(
      left.Contents?.map((c) => c.Key),
      ["l/sub/c", "l/sub/d"],
    );
    const buckets = await s3.send(new ListBucketsCommand({}));
    assert.ok(buckets.Buckets?.some((b) => b.Name === "sdk-bucket"));
  });

  it("uploads multipart", async () => {
    const p1 = Buffer.alloc(5 * 1024 * 1024, 1);
    const p2 = Buffer.from("last part");
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: "sdk-bucket", Key: "mp" }));
    const e1 = await s3.send(
      new UploadPartCommand({ Bucket: "sdk-bucket", Key: "mp", UploadId, PartNumber: 1, Body: p1 }),
    );
    const e2 = await s3.send(
      new UploadPartCommand({ Bucket: "sdk-bucket", Key: "mp", UploadId, PartNumber: 2, Body: p2 }),
    );
    const done = await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: "sdk-bucket",
        Key: "mp",
        UploadId,
        MultipartUpload: {
          Parts: [
            { PartNumber: 1, ETag: e1.ETag },
            { PartNumber: 2, ETag: e2.ETag },
          ],
        },
      }),
    );
    assert.match(done.ETag ?? "", /^"[0-9a-f]{32}-2"$/);
    const head = await s3.send(new HeadObjectCommand({ Bucket: "sdk-bucket", Key: "mp" }));
    assert.equal(head.ContentLength, p1.length + p2.length);
  });

  it("works virtual-host style (bucket.localhost)", async () => {
    const vh = client(`http://localhost:${srv.port}`, CREDS, false);
    try {
      await vh.send(new PutObjectCommand({ Bucket: "sdk-bucket", Key: "vhost.txt", Body: "vh" }));
      const got = await vh.send(new GetObjectCommand({ Bucket: "sdk-bucket", Key: "vhost.txt" }));
      assert.equal(await got.Body!.transformToString(), "vh");
    } catch (err) {
      // bucket.localhost must resolve to 127.0.0.1 (RFC 6761; glibc's resolver may not do it).
      if ((err as NodeJS.ErrnoException).code === "ENOTFOUND") return;
      throw err;
    } finally {
      vh.destroy();
    }
    // Same thing without DNS: the Host header alone picks the bucket.
    const r = await http(`${srv.endpoint}/vhost.txt`, {
      headers: { host: `sdk-bucket.localhost:${srv.port}` },
    });
    assert.equal(r.status, 403); // unsigned
  });

  it("rejects wrong secrets, unknown keys and unsigned requests", async () => {
    const bad = client(srv.endpoint, { accessKeyId: CREDS.accessKeyId, secretAccessKey: "wrong" });
    await assert.rejects(
      bad.send(new ListBucketsCommand({})),
      (e: Error) => e.name === "SignatureDoesNotMatch",
    );
    bad.destroy();
    const unknown = client(srv.endpoint, { accessKeyId: "AKIDNOBODY", secretAccessKey: "x" });
    await assert.rejects(
      unknown.send(new ListBucketsCommand({})),
      (e: Error) => e.name === "InvalidAccessKeyId",
    );
    unknown.destroy();
    const anon = await http(`${srv.endpoint}/sdk-bucket`);
    assert.equal(anon.status, 403);
    assert.match(anon.body, /<Code>AccessDenied<\/Code>/);
    assert.match(anon.body, /<RequestId>/);
  });

  it("refuses .. and %2e%2e keys with 400 before the store", async () => {
    const open = await startS3({ mode: "open" });
    try {
      await open.store.createBucket("b-open");
      for (const p of ["/b-open/../x", "/b-open/a/%2e%2e/%2E%2E/x", "/b-open/%2e%2e", "/b-open/a/..%2fx"]) {
        const r = await http(`${open.endpoint}${p}`, { method: "PUT", body: Buffer.from("x") });
        assert.equal(r.status, 400, p);
        assert.match(r.body, /<Code>InvalidArgument<\/Code>/);
      }
      assert.deepEqual((await open.store.listObjects("b-open")).objects, []);
      // Native routes stay reachable next to the catch-all.
      assert.equal((await http(`${open.endpoint}/v1/health`)).body, '{"ok":true}');
      const ni = await http(`${open.endpoint}/b-open?policy`);
      assert.equal(ni.status, 501);
      assert.match(ni.body, /NotImplemented.*policy/s);
    } finally {
      await open.stop();
    }
  });

  it("serves presigned GET and PUT, and refuses expired ones", async () => {
    const signer = new SignatureV4({
      credentials: CREDS,
      region: "us-east-1",
      service: "s3",
      sha256: Sha256,
      uriEscapePath: false,
    });
    const presign = async (method: string, key: string, expiresIn: number, signingDate = new Date()) => {
      const req = await signer.presign(
        new HttpRequest({
          method,
          protocol: "http:",
          hostname: "127.0.0.1",
          port: srv.port,
          path: `/sdk-bucket/${encodeURIComponent(key)}`,
          headers: { host: `127.0.0.1:${srv.port}`, "x-amz-content-sha256": "UNSIGNED-PAYLOAD" },
        }),
        {
          expiresIn,
          signingDate,
          unsignableHeaders: new Set(["x-amz-content-sha256"]),
          unhoistableHeaders: new Set(["x-amz-content-sha256"]),
        },
      );
      const qs = Object.entries(req.query ?? {})
        .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
        .join("&");
      return `${srv.endpoint}${req.path}?${qs}`;
    };
    const put = await http(await presign("PUT", "presigned file.txt", 60), {
      method: "PUT",
      body: Buffer.from("via url"),
    });
    assert.equal(put.status, 200, put.body);
    const get = await http(await presign("GET", "presigned file.txt", 60));
    assert.equal(get.body, "via url");
    const old = await http(await presign("GET", "presigned file.txt", 60, new Date(Date.now() - 120_000)));
    assert.equal(old.status, 403);
    assert.match(old.body, /Request has expired/);
    const tampered = (await presign("GET", "presigned file.txt", 60)).replace(
      "presigned%20file",
      "presigned%20filx",
    );
    assert.match((await http(tampered)).body, /SignatureDoesNotMatch/);
  });
});

storeContract("S3ObjectStore against kikitori's own S3 front door", async () => {
  const srv = await startS3();
  const store = new S3ObjectStore({
    endpoint: srv.endpoint,
    region: "us-east-1",
    credentials: CREDS,
    forcePathStyle: true,
  });
  return {
    store,
    minPartBytes: 5 * 1024 * 1024,
    cleanup: async () => {
      await store.close();
      await srv.stop();
    },
  };
});
