import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { noopModelServer, repoRoot, startTestServer, tempDir } from "../helpers/server.js";

const cli = join(repoRoot, "bin", "kikitori.js");
const run = (args: string[]) =>
  promisify(execFile)(process.execPath, [cli, ...args], { env: { ...process.env, KIKITORI_QUIET: "1" } });

test("kikitori jobs: submit local files and s3:// objects as one job, wait, write each result; list; cancel", async (t) => {
  const k = await startTestServer();
  t.after(() => k.close());
  await k.api.endpoint("noop", { image: `local:${noopModelServer}` });
  await k.api.endpoint("idle", { image: `local:${noopModelServer}` }, { initialInstanceCount: 0 });
  const dir = tempDir("kk-cli-jobs-");
  const files = ["one.wav", "two.wav"].map((name, i) => {
    writeFileSync(join(dir, name), `audio number ${i} `.repeat(100 + i));
    return join(dir, name);
  });
  const stored = Buffer.from("stored audio ".repeat(80));
  const uri = await k.api.put("kikitori", "in/stored.wav", stored);
  const out = join(dir, "results");
  const submitted = await run([
    "jobs",
    "submit",
    ...files,
    uri,
    "--endpoint",
    "noop",
    "--url",
    k.url,
    "--out",
    out,
  ]);
  const id = submitted.stdout.split("\n")[0]!;
  assert.match(id, /^[0-9a-f-]{36}$/);
  assert.match(submitted.stderr, new RegExp(`job ${id}: completed, 3/3 files ended`));
  // One result per file, in job order, each that file's (the no-op model server answers with its SHA-256).
  const written = readdirSync(out).sort();
  assert.deepEqual(written, ["000-one.json", "001-two.json", "002-stored.json"]);
  const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
  const inputs = [readFileSync(files[0]!), readFileSync(files[1]!), stored];
  written.forEach((f, i) =>
    assert.equal(JSON.parse(readFileSync(join(out, f), "utf8")).sha256, sha(inputs[i]!), f),
  );

  const list = await run(["jobs", "list", "--url", k.url]);
  assert.match(list.stdout, new RegExp(`^${id}\tcompleted\t3 files\t3 succeeded\t`));

  const queued = (await run(["jobs", "submit", uri, "--endpoint", "idle", "--url", k.url])).stdout.trim();
  const cancelled = await run(["jobs", "cancel", queued, "--url", k.url]);
  assert.match(cancelled.stderr, new RegExp(`job ${queued}: cancelled, 1/1 files ended`));
  // show: each file's line; a job that did not complete exits non-zero.
  const shown = await run(["jobs", "show", queued, "--url", k.url]).catch(
    (e: { code: number; stdout: string }) => e,
  );
  assert.equal((shown as { code?: number }).code, 1);
  assert.match(shown.stdout, /^0\tCancelled\tstored\.wav\t/);
});
