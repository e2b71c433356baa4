import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:net";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import {
  bearer,
  noopModelServer,
  presign,
  raw,
  serve,
  sign,
  SIGV4,
  type RawResponse,
  type Served,
} from "./serve.js";
import { waitFor } from "../helpers/server.js";

/**
 * The attack run of issue #11, replayed against a real `kikitori serve` with API keys and SigV4
 * credentials set. Each case asserts the exact refusal: status and error code.
 */
let s: Served;

before(async () => {
  s = await serve({
    keys: true,
    env: {
      KIKITORI_BODY_TIMEOUT_MS: "1500",
      KIKITORI_MAX_INPUT_BYTES: "200000",
      // The no-op model server may run (by allow-list); any other local: command may not.
      KIKITORI_LOCAL_IMAGE_COMMANDS: noopModelServer,
    },
  });
});
after(() => s.stop());

const json = { "content-type": "application/json" };
const amzJson = { "content-type": "application/x-amz-json-1.1" };

describe("unsigned and wrongly signed requests, on every route family", () => {
  const wrongKey = "kk_0123456789ab_" + "x".repeat(43);

  const native: [string, string, string?][] = [
    ["GET", "/v1/models"],
    ["POST", "/v1/models", JSON.stringify({ name: "m", image: "local:/bin/sh" })],
    ["DELETE", "/v1/endpoints/victim"],
    ["PUT", "/v1/objects/kikitori/uploads/x/a.wav", "RIFF"],
    ["GET", "/v1/objects/kikitori/secret.txt"],
    ["POST", "/v1/endpoints/e/invocations", JSON.stringify({ inputLocation: "s3://kikitori/a" })],
    ["GET", "/v1/invocations"],
    ["GET", "/v1/invocations/x/events"],
    ["GET", "/v1/invocations/x/deliveries"],
    ["GET", "/metrics"],
    ["GET", "/v1/endpoints/e/metrics"],
    ["PUT", "/v1/endpoints/e/variants/AllTraffic/scaling", JSON.stringify({ minCapacity: 0 })],
    ["GET", "/v1/endpoints/e/scaling-activities"],
    ["POST", "/v1/endpoints/e/webhook-secret"],
    ["GET", "/v1/keys"],
    ["GET", "/v1/auth/whoami"],
  ];
  for (const [method, path, body] of native) {
    it(`native ${method} ${path}: 401 MissingCredentials without a key, 401 InvalidCredentials with a wrong one`, async () => {
      const none = await raw(s, { method, path, headers: body ? json : {}, body });
      assert.equal(none.status, 401, none.text);
      assert.equal(none.json?.error?.code, "MissingCredentials");
      const wrong = await raw(s, { method, path, headers: { ...json, ...bearer(wrongKey) }, body });
      assert.equal(wrong.status, 401, wrong.text);
      assert.equal(wrong.json?.error?.code, "InvalidCredentials");
      const sigv4 = await raw(s, {
        method,
        path,
        headers: {
          authorization: `AWS4-HMAC-SHA256 Credential=${SIGV4.accessKeyId}/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00`,
        },
      });
      assert.equal(sigv4.status, 401);
      assert.match(sigv4.json?.error?.message, /not an AWS signature/);
    });
  }

  it("management routes refuse an invoke-scoped key: 403 InsufficientScope", async () => {
    for (const [method, path, body] of [
      ["POST", "/v1/models", JSON.stringify({ name: "m", image: "kikitori/whisper" })],
      ["DELETE", "/v1/endpoints/victim", undefined],
      ["POST", "/v1/endpoints/e/webhook-secret", undefined],
      ["PUT", "/v1/endpoints/e/variants/AllTraffic/scaling", "{}"],
      ["GET", "/metrics", undefined],
      ["POST", "/v1/keys", JSON.stringify({ name: "x", scope: "admin" })],
    ] as const) {
      const r = await raw(s, { method, path, headers: { ...json, ...bearer(s.invoke) }, body });
      assert.equal(r.status, 403, `${method} ${path}: ${r.text}`);
      assert.equal(r.json?.error?.code, "InsufficientScope");
    }
  });

  it("OpenAI: 401 with OpenAI's error shape and code invalid_api_key", async () => {
    for (const auth of [{}, bearer(wrongKey)]) {
      const r = await raw(s, {
        method: "POST",
        path: "/v1/audio/transcriptions",
        headers: { "content-type": "multipart/form-data; boundary=x", ...auth },
        body: "--x--\r\n",
      });
      assert.equal(r.status, 401);
      assert.equal(r.json?.error?.code, "invalid_api_key");
      assert.equal(r.json?.error?.type, "invalid_request_error");
    }
  });

  it("SageMaker, Application Auto Scaling: 403 MissingAuthenticationToken unsigned, InvalidSignature wrongly signed", async () => {
    for (const [target, service] of [
      ["SageMaker.DeleteEndpoint", "sagemaker"],
      ["AnyScaleFrontendService.DescribeScalableTargets", "application-autoscaling"],
    ]) {
      const body = JSON.stringify({ EndpointName: "victim", ServiceNamespace: "sagemaker" });
      const headers = { ...amzJson, "x-amz-target": target! };
      const unsigned = await raw(s, { method: "POST", path: "/", headers, body });
      assert.equal(unsigned.status, 403);
      assert.equal(unsigned.json.__type, "MissingAuthenticationTokenException");
      const wrong = await sign(s, { path: "/", headers, body, service: service!, secret: "wrong" });
      const r = await raw(s, { method: "POST", path: wrong.path, headers: wrong.headers, body });
      assert.equal(r.status, 403);
      assert.equal(r.json.__type, "InvalidSignatureException");
    }
  });

  it("SageMaker Runtime: unsigned and wrongly signed invocations are 403", async () => {
    const path = "/endpoints/victim/async-invocations";
    const headers = { "x-amzn-sagemaker-inputlocation": "s3://kikitori/a.wav" };
    const unsigned = await raw(s, { method: "POST", path, headers });
    assert.equal(unsigned.status, 403);
    assert.equal(unsigned.json.__type, "MissingAuthenticationTokenException");
    const wrong = await sign(s, { path, headers, service: "sagemaker", secret: "wrong" });
    const r = await raw(s, { method: "POST", path, headers: wrong.headers });
    assert.equal(r.status, 403);
    assert.equal(r.json.__type, "InvalidSignatureException");
  });

  it("S3: unsigned GET is AccessDenied, a wrong secret SignatureDoesNotMatch (S3's XML)", async () => {
    const unsigned = await raw(s, { path: "/kikitori/secret.txt" });
    assert.equal(unsigned.status, 403);
    assert.match(unsigned.text, /<Code>AccessDenied<\/Code>/);
    const wrong = await sign(s, {
      method: "GET",
      path: "/kikitori/secret.txt",
      service: "s3",
      secret: "wrong",
      headers: { "x-amz-content-sha256": "UNSIGNED-PAYLOAD" },
    });
    const r = await raw(s, { path: wrong.path, headers: wrong.headers });
    assert.equal(r.status, 403);
    assert.match(r.text, /<Code>SignatureDoesNotMatch<\/Code>/);
  });

  it("STS, IAM, SNS (awsQuery): unsigned is 403 in XML", async () => {
    for (const body of ["Action=GetCallerIdentity", "Action=GetRole&RoleName=r", "Action=ListTopics"]) {
      const r = await raw(s, {
        method: "POST",
        path: "/",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body,
      });
      assert.equal(r.status, 403, body);
      assert.match(r.text, /<Code>MissingAuthenticationTokenException<\/Code>/);
    }
  });

  it("a request signed for another service is refused (credential scope must name the API called)", async () => {
    const body = JSON.stringify({});
    const headers = { ...amzJson, "x-amz-target": "SageMaker.ListModels" };
    const signed = await sign(s, { path: "/", headers, body, service: "s3" });
    const r = await raw(s, { method: "POST", path: "/", headers: signed.headers, body });
    assert.equal(r.status, 403);
    assert.equal(r.json.__type, "InvalidSignatureException");
    assert.match(r.json.message, /scoped to correct service: 'sagemaker'/);
  });
});

describe("SigV4 done fully", () => {
  it("body swap on a signed JSON request (AWS SDK for JavaScript signs x-amz-content-sha256): 403", async () => {
    const honest = JSON.stringify({
      ModelName: "m1",
      PrimaryContainer: { Image: "kikitori/whisper" },
      ExecutionRoleArn: "arn:aws:iam::000000000000:role/kikitori-execution-role",
    });
    const headers = { ...amzJson, "x-amz-target": "SageMaker.CreateModel" };
    const signed = await sign(s, { path: "/", headers, body: honest, service: "sagemaker" });
    assert.ok(signed.headers["x-amz-content-sha256"], "the signer sent the payload hash");
    const evil = honest.replace("kikitori/whisper", "local:/bin/sh");
    const r = await raw(s, { method: "POST", path: "/", headers: signed.headers, body: evil });
    assert.equal(r.status, 403);
    assert.equal(r.json.__type, "InvalidSignatureException");
    assert.match(r.json.message, /x-amz-content-sha256 does not match the request body/);
    // The honest request itself passes.
    const ok = await raw(s, { method: "POST", path: "/", headers: signed.headers, body: honest });
    assert.equal(ok.status, 200, ok.text);
  });

  it("presigned URLs: far-future dates, lifetimes over 7 days and SigV2 without a cap are refused", async () => {
    await raw(s, {
      method: "PUT",
      path: "/v1/objects/kikitori/uploads/p.txt",
      headers: bearer(s.admin),
      body: "presigned",
    });
    const good = await fetch(await presign(s, { path: "/kikitori/uploads/p.txt" }));
    assert.equal(good.status, 200);
    assert.equal(await good.text(), "presigned");

    const future = await fetch(
      await presign(s, { path: "/kikitori/uploads/p.txt", date: new Date(Date.now() + 365 * 86400_000) }),
    );
    assert.equal(future.status, 403);
    const text = await future.text();
    assert.match(text, /<Code>AccessDenied<\/Code>/);
    assert.match(text, /not valid yet/);

    const long = await presign(s, { path: "/kikitori/uploads/p.txt" });
    const tooLong = await fetch(long.replace(/X-Amz-Expires=\d+/, "X-Amz-Expires=604801"));
    assert.equal(tooLong.status, 403);
    assert.match(await tooLong.text(), /<Code>AccessDenied<\/Code>/);

    const v2 = await fetch(
      `${s.url}/kikitori/uploads/p.txt?AWSAccessKeyId=${SIGV4.accessKeyId}&Expires=${Math.floor(Date.now() / 1000) + 400 * 86400}&Signature=x`,
    );
    assert.equal(v2.status, 403);
    assert.match(await v2.text(), /Expires may be at most 604800 seconds/);

    const noHost = long.replace("X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=x-amz-date");
    const unsignedHost = await fetch(noHost);
    assert.equal(unsignedHost.status, 403);
    assert.match(await unsignedHost.text(), /SignedHeaders must include host/);
  });
});

describe("open mode is loopback-only and refuses DNS rebinding and foreign origins", () => {
  let open: Served;
  before(async () => {
    open = await serve({ keys: false });
  });
  after(() => open.stop());

  it("a loopback Host answers; a foreign Host or Origin is 403 HostNotAllowed / OriginNotAllowed", async () => {
    assert.equal((await raw(open, { path: "/v1/models" })).status, 200);
    assert.equal(
      (await raw(open, { path: "/v1/models", headers: { host: `localhost:${open.port}` } })).status,
      200,
    );
    for (const host of [
      "evil.example",
      `evil.example:${open.port}`,
      "127.0.0.1.evil.example",
      "127.evil.example",
    ]) {
      const r = await raw(open, { path: "/v1/models", headers: { host } });
      assert.equal(r.status, 403, host);
      assert.equal(r.json.error.code, "HostNotAllowed");
    }
    const cross = await raw(open, {
      method: "POST",
      path: "/v1/models",
      headers: { ...json, origin: "http://evil.example" },
      body: JSON.stringify({ name: "m", image: "kikitori/whisper" }),
    });
    assert.equal(cross.status, 403);
    assert.equal(cross.json.error.code, "OriginNotAllowed");
    const rebound = await raw(open, { path: "/", headers: { host: "evil.example" } });
    assert.equal(rebound.status, 403, "the AWS doors too");
    assert.match(rebound.text, /AccessDenied/);
  });

  it("open mode refuses to listen on a non-loopback address", async () => {
    await assert.rejects(
      serve({ keys: false, env: { KIKITORI_HOST: "0.0.0.0" } }),
      /refusing to listen on 0\.0\.0\.0 without authentication/,
    );
  });
});

describe("local: images run commands: refused unless the operator allows them", () => {
  it("native and SageMaker CreateModel refuse local:/bin/sh, naming the setting", async () => {
    const r = await raw(s, {
      method: "POST",
      path: "/v1/models",
      headers: { ...json, ...bearer(s.admin) },
      body: JSON.stringify({ name: "shell", image: "local:/bin/sh -c id" }),
    });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, "ValidationError");
    assert.match(r.json.error.message, /KIKITORI_ALLOW_LOCAL_IMAGES=1/);
    const body = JSON.stringify({
      ModelName: "shell",
      PrimaryContainer: { Image: "local:/bin/sh" },
      ExecutionRoleArn: "arn:aws:iam::000000000000:role/r",
    });
    const headers = { ...amzJson, "x-amz-target": "SageMaker.CreateModel" };
    const signed = await sign(s, { path: "/", headers, body, service: "sagemaker" });
    const sm = await raw(s, { method: "POST", path: "/", headers: signed.headers, body });
    assert.equal(sm.status, 400);
    assert.equal(sm.json.__type, "ValidationException");
    assert.match(sm.json.message, /KIKITORI_LOCAL_IMAGE_COMMANDS/);
  });
});

describe("bodies: slow ones are dropped, oversized ones close the connection", () => {
  it("a body trickling 1 byte at a time gets 408 and the connection closed; no temp file stays", async () => {
    const started = Date.now();
    const result = await new Promise<{ text: string; closedAfterMs: number }>((resolve, reject) => {
      const sock = connect(s.port, s.host);
      let text = "";
      let timer: NodeJS.Timeout | undefined;
      sock.on("connect", () => {
        sock.write(
          `PUT /v1/objects/kikitori/uploads/slow.wav HTTP/1.1\r\nhost: ${s.host}:${s.port}\r\nauthorization: Bearer ${s.admin}\r\ncontent-length: 100000\r\n\r\n`,
        );
        timer = setInterval(() => sock.writable && sock.write("x"), 300);
      });
      sock.on("data", (c) => (text += c.toString()));
      sock.on("error", () => {});
      sock.on("close", () => {
        clearInterval(timer);
        resolve({ text, closedAfterMs: Date.now() - started });
      });
      setTimeout(() => reject(new Error("the slow connection was never closed")), 20_000).unref();
    });
    assert.match(result.text, /^HTTP\/1\.1 408/);
    assert.match(result.text, /"code":"RequestTimeout"/);
    assert.ok(result.closedAfterMs < 10_000, `closed after ${result.closedAfterMs} ms`);
    await waitFor(
      () => readdirSync(join(s.dataDir, "objects", "tmp")).length === 0,
      5000,
      "temp files removed",
    );
    const gone = await raw(s, { path: "/v1/objects/kikitori/uploads/slow.wav", headers: bearer(s.admin) });
    assert.equal(gone.status, 404);
  });

  it("413 closes the connection: native upload over the limit, AWS JSON body over 1 MiB", async () => {
    const big = await raw(s, {
      method: "PUT",
      path: "/v1/objects/kikitori/uploads/big.wav",
      headers: bearer(s.admin),
      body: Buffer.alloc(300_000),
    });
    assert.equal(big.status, 413);
    assert.equal(big.json.error.code, "EntityTooLarge");
    assert.equal(big.headers.connection, "close");
    const huge = Buffer.alloc(2 * 1024 * 1024, 0x20);
    const aws = await raw(s, {
      method: "POST",
      path: "/",
      headers: {
        ...amzJson,
        "x-amz-target": "SageMaker.ListModels",
        authorization:
          "AWS4-HMAC-SHA256 Credential=x/20260101/us-east-1/sagemaker/aws4_request, SignedHeaders=host, Signature=0",
      },
      body: huge,
    }).catch((e: Error): RawResponse => ({ status: 0, headers: {}, text: e.message, json: undefined }));
    // The server answers 413 before reading the rest; the client may see the answer or the reset.
    if (aws.status !== 0) {
      assert.equal(aws.status, 413);
      assert.equal(aws.json.__type, "RequestEntityTooLarge");
      assert.equal(aws.headers.connection, "close");
    }
  });
});

describe("the OpenAI route checks first and leaves nothing behind", () => {
  const form = (fields: Record<string, string>, file?: { name: string; data: Buffer }) => {
    const f = new FormData();
    for (const [k, v] of Object.entries(fields)) f.append(k, v);
    if (file) f.append("file", new Blob([file.data]), file.name);
    return f;
  };
  const post = (body: FormData) =>
    fetch(`${s.url}/v1/audio/transcriptions`, { method: "POST", headers: bearer(s.invoke), body });
  const audio = {
    name: "a.wav",
    data: readFileSync(join(import.meta.dirname, "..", "..", "samples", "jfk.wav")).subarray(0, 100_000),
  };

  it("bad model, format, language, temperature, empty and oversized files: 4xx, no object left", async () => {
    const cases: [FormData, number, string][] = [
      [form({ model: "no-such-model" }, audio), 404, "model_not_found"],
      [form({ model: "whisper-1", response_format: "docx" }, audio), 400, "response_format"],
      [form({ model: "whisper-1", language: "xx-klingon" }, audio), 400, "language"],
      [form({ model: "whisper-1", temperature: "7" }, audio), 400, "temperature"],
      [form({ model: "whisper-1" }, { name: "e.wav", data: Buffer.alloc(0) }), 400, "file"],
      [form({ model: "whisper-1" }, { name: "big.wav", data: Buffer.alloc(250_000) }), 413, "file"],
      // Fields after the file: stored first, then refused, then removed.
      [
        (() => {
          const f = form({}, audio);
          f.append("model", "whisper-1");
          f.append("language", "zz");
          return f;
        })(),
        400,
        "language",
      ],
    ];
    const refusedEarly: string[] = [];
    for (const [body, status, what] of cases) {
      const r = await post(body).catch((e: Error) => e);
      // Refused before the file was read, the answer may reach fetch only as a cut connection (undici
      // reports its upload's failure first); what must hold in every case is checked below: no leftovers.
      if (r instanceof Error) {
        refusedEarly.push(`${status} ${what}`);
        continue;
      }
      const b = (await r.json()) as { error: { param: string | null; code: string | null } };
      assert.equal(r.status, status, JSON.stringify(b));
      assert.ok(b.error.param === what || b.error.code === what, JSON.stringify(b));
    }
    const broken = await fetch(`${s.url}/v1/audio/transcriptions`, {
      method: "POST",
      headers: { ...bearer(s.invoke), "content-type": "multipart/form-data; boundary=zz" },
      body: '--zz\r\ncontent-disposition: form-data; name="file"; filename="a.wav"\r\n\r\nRIFF....',
    });
    assert.equal(broken.status, 400, await broken.text());
    const listed = await raw(s, { path: "/v1/objects/kikitori/openai/", headers: bearer(s.admin) });
    assert.notEqual(listed.status, 200);
    // Nothing under openai/ in the object store (listed through S3 with SigV4).
    const l = await sign(s, {
      method: "GET",
      path: "/kikitori",
      query: { "list-type": "2", prefix: "openai/" },
      service: "s3",
      headers: { "x-amz-content-sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
    });
    const list = await raw(s, { path: l.path, headers: l.headers });
    assert.equal(list.status, 200, list.text);
    assert.match(list.text, /<KeyCount>0<\/KeyCount>/);
    assert.ok(refusedEarly.length < cases.length, `every case was cut off: ${refusedEarly.join(", ")}`);
  });
});

describe("bad input is a 4xx, never a 500", () => {
  const s3 = async (method: string, path: string, body: string, query?: Record<string, string>) => {
    const h = await sign(s, {
      method,
      path,
      query,
      body,
      service: "s3",
      headers: {
        "x-amz-content-sha256": (await import("node:crypto")).createHash("sha256").update(body).digest("hex"),
      },
    });
    return raw(s, { method, path: h.path, headers: h.headers, body });
  };

  it("hostile XML in DeleteObjects and CompleteMultipartUpload: 400 MalformedXML", async () => {
    await raw(s, { method: "PUT", path: "/v1/buckets/kikitori", headers: bearer(s.admin) });
    const docs = [
      `<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><Delete><Object><Key>&b;</Key></Object></Delete>`,
      "<Delete>" + "<a>".repeat(50_000) + "</a>".repeat(50_000) + "</Delete>",
      "<Delete><__proto__><Object><Key>x</Key></Object></__proto__></Delete>",
    ];
    for (const doc of docs) {
      const r = await s3("POST", "/kikitori", doc, { delete: "" });
      assert.equal(r.status, 400, r.text.slice(0, 300));
      assert.match(r.text, /<Code>MalformedXML<\/Code>/);
    }
    const c = await s3("POST", "/kikitori/uploads/m.bin", "", { uploads: "" });
    const uploadId = /<UploadId>([^<]+)</.exec(c.text)?.[1];
    assert.ok(uploadId, c.text);
    const r = await s3(
      "POST",
      "/kikitori/uploads/m.bin",
      "<CompleteMultipartUpload><Part><__proto__>1</__proto__></Part></CompleteMultipartUpload>",
      { uploadId: uploadId! },
    );
    assert.equal(r.status, 400);
    assert.match(r.text, /<Code>MalformedXML<\/Code>/);
  });

  it("CR/LF in response-content-type: 400 InvalidArgument", async () => {
    await raw(s, {
      method: "PUT",
      path: "/v1/objects/kikitori/uploads/h.txt",
      headers: bearer(s.admin),
      body: "x",
    });
    const r = await s3("GET", "/kikitori/uploads/h.txt", "", {
      "response-content-type": "text/plain\r\nset-cookie: a=b",
    });
    assert.equal(r.status, 400);
    assert.match(r.text, /<Code>InvalidArgument<\/Code>/);
  });

  it("CustomAttributes over 1,024 characters: 400 ValidationError", async () => {
    const r = await raw(s, {
      method: "POST",
      path: "/v1/endpoints/none/invocations",
      headers: { ...json, ...bearer(s.admin) },
      body: JSON.stringify({
        inputLocation: "s3://kikitori/uploads/h.txt",
        customAttributes: "a".repeat(1025),
      }),
    });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, "ValidationError");
    assert.match(r.json.error.message, /CustomAttributes: must be at most 1024 characters/);
  });

  it("`..` keys: one rule, refused by the native door and S3 alike", async () => {
    const native = await raw(s, {
      method: "PUT",
      path: "/v1/objects/kikitori/uploads/a/%2E%2E/x",
      headers: bearer(s.admin),
      body: "x",
    });
    assert.equal(native.status, 400);
    assert.equal(native.json.error.code, "ValidationError");
    assert.match(native.json.error.message, /must not contain ".." path segments/);
    const viaS3 = await s3("PUT", "/kikitori/uploads/a/%2E%2E/x", "x");
    assert.equal(viaS3.status, 400);
    assert.match(
      viaS3.text,
      /<Code>InvalidArgument<\/Code><Message>[^<]*must not contain &quot;..&quot; path segments/,
    );
  });

  it("webhooks to embedded-IPv4 IPv6 forms and 198.18.0.0/15 are refused", async () => {
    await raw(s, {
      method: "PUT",
      path: "/v1/objects/kikitori/uploads/w.wav",
      headers: bearer(s.admin),
      body: "RIFF",
    });
    for (const url of [
      "http://[::127.0.0.1]/h",
      "http://[::ffff:7f00:1]/h",
      "http://[64:ff9b::a9fe:a9fe]/h",
      "http://[2002:a9fe:a9fe::1]/h",
      "http://198.18.0.1/h",
    ]) {
      const r = await raw(s, {
        method: "POST",
        path: "/v1/endpoints/none/invocations",
        headers: { ...json, ...bearer(s.admin) },
        body: JSON.stringify({ inputLocation: "s3://kikitori/uploads/w.wav", webhook: { url } }),
      });
      // The endpoint does not exist either: the webhook is refused when it is checked, or 404 first.
      assert.ok(r.status === 400 || r.status === 404, `${url}: ${r.text}`);
    }
  });
});

describe("an invoke key sees only its own", () => {
  it("uploads only under its prefix, and other callers' invocations are 404", async () => {
    const who = await raw(s, { path: "/v1/auth/whoami", headers: bearer(s.invoke) });
    assert.equal(who.status, 200);
    assert.equal(who.json.scope, "invoke");
    const mine = await raw(s, {
      method: "PUT",
      path: `/v1/objects/kikitori/${who.json.uploadPrefix}a.wav`,
      headers: bearer(s.invoke),
      body: "RIFF",
    });
    assert.equal(mine.status, 201, mine.text);
    const theirs = await raw(s, {
      method: "PUT",
      path: "/v1/objects/kikitori/models/model.tar.gz",
      headers: bearer(s.invoke),
      body: "x",
    });
    assert.equal(theirs.status, 403);
    assert.equal(theirs.json.error.code, "Forbidden");
    const read = await raw(s, { path: "/v1/objects/kikitori/uploads/p.txt", headers: bearer(s.invoke) });
    assert.equal(read.status, 403);
  });
});

describe("secrets never reach model servers", () => {
  it("the SigV4 secret is absent from /proc/<child>/environ", async () => {
    const headers = { ...json, ...bearer(s.admin) };
    const mk = async (path: string, body: unknown) => {
      const r = await raw(s, { method: "POST", path, headers, body: JSON.stringify(body) });
      assert.ok(r.status < 300, `${path}: ${r.text}`);
    };
    await mk("/v1/models", { name: "envcheck", image: `local:${noopModelServer}` });
    await mk("/v1/endpoint-configs", { name: "envcheck", modelName: "envcheck" });
    await mk("/v1/endpoints", { name: "envcheck", configName: "envcheck" });
    let children: number[] = [];
    await waitFor(
      () => {
        children = childPids(s.child.pid!);
        return children.some((pid) => environ(pid).includes("SAGEMAKER_BIND_TO_PORT="));
      },
      30_000,
      "the model server process",
      200,
    );
    const model = children.find((pid) => environ(pid).includes("SAGEMAKER_BIND_TO_PORT="))!;
    const env = environ(model);
    assert.ok(!env.includes(SIGV4.secretAccessKey), "the SigV4 secret is in the child's environment");
    assert.ok(!env.includes("KIKITORI_SECRET_ACCESS_KEY"));
    // The service itself has it: the check above read the right kind of file.
    assert.ok(environ(s.child.pid!).includes(SIGV4.secretAccessKey));
  });
});

function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    const c = readFileSync(`/proc/${pid}/task/${t}/children`, "utf8").trim();
    for (const p of c ? c.split(/\s+/).map(Number) : []) out.push(p, ...childPids(p));
  }
  return out;
}

function environ(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/environ`, "utf8");
  } catch {
    return "";
  }
}
