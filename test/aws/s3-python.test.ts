import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { CREDS, startS3 } from "./s3-server.js";

const run = promisify(execFile);
type Server = Awaited<ReturnType<typeof startS3>>;

async function has(cmd: string, args: string[]): Promise<boolean> {
  return run(cmd, args).then(
    () => true,
    () => false,
  );
}

const awsEnv = (endpoint: string) => ({
  ...process.env,
  AWS_ACCESS_KEY_ID: CREDS.accessKeyId,
  AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey,
  AWS_DEFAULT_REGION: "us-east-1",
  AWS_CONFIG_FILE: "/dev/null",
  AWS_SHARED_CREDENTIALS_FILE: "/dev/null",
  ENDPOINT: endpoint,
});

describe("S3 front door with boto3 and the AWS CLI", () => {
  let srv: Server;
  let dir: string;
  before(async () => {
    srv = await startS3();
    dir = await mkdtemp(join(tmpdir(), "kikitori-s3cli-"));
    await srv.store.createBucket("py-bucket");
  });
  after(async () => {
    await srv.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("boto3: multipart upload_file of 20 MB, download, presigned URL, bad secret", async (t) => {
    if (!(await has("python3", ["-c", "import boto3"]))) return t.skip("python3 with boto3 is not installed");
    const script = `
import os, sys, hashlib, urllib.request, boto3, botocore, botocore.config
from boto3.s3.transfer import TransferConfig
ep, d = os.environ["ENDPOINT"], sys.argv[1]
s3 = boto3.client("s3", endpoint_url=ep, region_name="us-east-1")
src = os.path.join(d, "in.bin"); dst = os.path.join(d, "out.bin")
with open(src, "wb") as f: f.write(os.urandom(20 * 1024 * 1024))
s3.upload_file(src, "py-bucket", "audio/big file.bin", Config=TransferConfig(multipart_threshold=8*1024*1024))
etag = s3.head_object(Bucket="py-bucket", Key="audio/big file.bin")["ETag"]
assert etag.endswith('-3"'), etag
s3.download_file("py-bucket", "audio/big file.bin", dst)
h = lambda p: hashlib.sha256(open(p, "rb").read()).hexdigest()
assert h(src) == h(dst), "download differs"
s3.put_object(Bucket="py-bucket", Key="small.txt", Body=b"hi boto")
url = s3.generate_presigned_url("get_object", Params={"Bucket": "py-bucket", "Key": "small.txt"}, ExpiresIn=60)
assert urllib.request.urlopen(url).read() == b"hi boto"
v4 = boto3.client("s3", endpoint_url=ep, region_name="us-east-1", config=botocore.config.Config(signature_version="s3v4"))
url = v4.generate_presigned_url("get_object", Params={"Bucket": "py-bucket", "Key": "small.txt"}, ExpiresIn=60)
assert "X-Amz-Signature" in url and urllib.request.urlopen(url).read() == b"hi boto"
keys = [o["Key"] for o in s3.list_objects_v2(Bucket="py-bucket")["Contents"]]
assert keys == ["audio/big file.bin", "small.txt"], keys
bad = boto3.client("s3", endpoint_url=ep, region_name="us-east-1", aws_secret_access_key="wrong", aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"])
try:
    bad.list_buckets(); raise SystemExit("wrong secret accepted")
except botocore.exceptions.ClientError as e:
    assert e.response["Error"]["Code"] == "SignatureDoesNotMatch", e.response
print("ok")
`;
    const { stdout } = await run("python3", ["-c", script, dir], {
      env: awsEnv(srv.endpoint),
      timeout: 120_000,
    });
    assert.equal(stdout.trim(), "ok");
  });

  it("aws cli: s3 cp of 100 MB (multipart) both ways, s3 ls, unknown key", async (t) => {
    if (!(await has("aws", ["--version"]))) return t.skip("the AWS CLI is not installed");
    const env = awsEnv(srv.endpoint);
    const big = join(dir, "cli.bin");
    await run("sh", ["-c", `head -c 100000000 /dev/urandom > '${big}'`]);
    const aws = (...args: string[]) =>
      run("aws", ["--endpoint-url", srv.endpoint, ...args], { env, timeout: 240_000, maxBuffer: 1 << 24 });
    await aws("s3", "cp", big, "s3://py-bucket/cli/100mb.bin");
    assert.equal((await srv.store.headObject("py-bucket", "cli/100mb.bin")).size, 100_000_000);
    assert.match((await srv.store.headObject("py-bucket", "cli/100mb.bin")).etag, /-\d+$/);
    await aws("s3", "cp", "s3://py-bucket/cli/100mb.bin", big + ".back");
    await run("cmp", [big, big + ".back"]);
    await rm(big);
    await rm(big + ".back");
    const ls = await aws("s3", "ls", "s3://py-bucket/cli/");
    assert.match(ls.stdout, /100000000 100mb\.bin/);
    const buckets = await aws("s3", "ls");
    assert.match(buckets.stdout, /py-bucket/);
    await assert.rejects(
      run("aws", ["--endpoint-url", srv.endpoint, "s3", "ls"], {
        env: { ...env, AWS_ACCESS_KEY_ID: "AKIDNOBODY" },
      }),
      /InvalidAccessKeyId/,
    );
  });
});
