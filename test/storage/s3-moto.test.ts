import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { GetObjectCommand, HeadObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { loadConfig } from "../../src/config.js";
import { S3ObjectStore } from "../../src/storage/s3.js";
import { noopModelServer, startTestServer } from "../helpers/server.js";
import { MOTO_CREDENTIALS, startMoto } from "../helpers/moto.js";
import { storeContract } from "./contract.js";

// The S3 object store against an S3 server kikitori did not write: moto_server (its own front door is
// covered in test/aws/s3-sdk.test.ts).
let moto: Awaited<ReturnType<typeof startMoto>>;
before(async () => {
  moto = await startMoto();
});
after(async () => {
  await moto.stop();
});

storeContract("S3ObjectStore against moto_server", async () => {
  const store = new S3ObjectStore({
    endpoint: moto.endpoint,
    region: "us-east-1",
    credentials: { ...MOTO_CREDENTIALS },
    forcePathStyle: true,
  });
  return {
    store,
    minPartBytes: 5 * 1024 * 1024,
    quirks: ["recreate-bucket-ok", "part-order-unchecked", "aborted-upload-500"],
    cleanup: () => store.close(),
  };
});

test("kikitori with KIKITORI_S3_* settings keeps inputs and results in that S3 server", async () => {
  const env = {
    KIKITORI_S3_ENDPOINT: moto.endpoint,
    KIKITORI_S3_ACCESS_KEY_ID: MOTO_CREDENTIALS.accessKeyId,
    KIKITORI_S3_SECRET_ACCESS_KEY: MOTO_CREDENTIALS.secretAccessKey,
    KIKITORI_BUCKET: "kikitori-results",
  };
  const { objectStore, defaultBucket } = loadConfig({}, env);
  assert.deepEqual(objectStore, {
    kind: "s3",
    endpoint: moto.endpoint,
    region: "us-east-1",
    credentials: MOTO_CREDENTIALS,
    forcePathStyle: true,
  });
  const k = await startTestServer({ objectStore, defaultBucket });
  const s3 = new S3Client({
    endpoint: moto.endpoint,
    region: "us-east-1",
    credentials: MOTO_CREDENTIALS,
    forcePathStyle: true,
  });
  try {
    await k.api.endpoint("noop", { image: `local:${noopModelServer}` });
    const input = await k.api.put("inputs-on-moto", "a.wav", Buffer.from("some audio"));
    // The upload went to moto, not to the data directory.
    const head = await s3.send(new HeadObjectCommand({ Bucket: "inputs-on-moto", Key: "a.wav" }));
    assert.equal(head.ContentLength, 10);
    const r = await k.api.ok("POST", "/v1/endpoints/noop/invocations", { inputLocation: input });
    assert.match(r.outputLocation, /^s3:\/\/kikitori-results\/async-output\//);
    const done = await k.api.waitTerminal(r.inferenceId);
    assert.equal(done.state, "Succeeded");
    const key = done.outputLocation.replace("s3://kikitori-results/", "");
    const out = await s3.send(new GetObjectCommand({ Bucket: "kikitori-results", Key: key }));
    assert.equal(
      JSON.parse(await out.Body!.transformToString()).bytes,
      10,
      "the model's response, stored in moto",
    );
  } finally {
    s3.destroy();
    await k.close();
  }
});
