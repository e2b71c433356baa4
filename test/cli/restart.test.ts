import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { Api, noopModelServer, repoRoot, serveProcess, tempDir, waitFor } from "../helpers/server.js";

/**
 * `kikitori transcribe --url` rides through a restart of the server it talks to: the server is killed
 * (SIGKILL, no goodbye) while the files wait or run, and started again on the same port and data; the CLI
 * reconnects with backoff and writes every result, exiting 0.
 */

const cli = join(repoRoot, "bin", "kikitori.js");
const dataDir = tempDir("kk-cli-restart-");
const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) c.kill("SIGKILL");
});

/** `kikitori serve` on `port` (0: any), remembered so the test's end kills it. */
async function serve(port: number): Promise<{ proc: ChildProcess; url: string }> {
  const { child, api } = await serveProcess(dataDir, { NOOP_DELAY_MS: "1500" }, port);
  children.add(child);
  child.once("exit", () => children.delete(child));
  return { proc: child, url: api.url };
}

test("transcribe reconnects after the server restarts mid-run and finishes every file", async () => {
  const first = await serve(0);
  const port = Number(new URL(first.url).port);
  const api = new Api(first.url);
  // A no-op model server taking 1.5 s per request, one request at a time: the files queue behind each other.
  await api.ok("POST", "/v1/models", { name: "slow", image: `local:${noopModelServer}` });
  await api.ok("POST", "/v1/endpoint-configs", {
    name: "slow",
    variants: [{ modelName: "slow", initialInstanceCount: 1 }],
    maxConcurrentInvocationsPerInstance: 1,
  });
  await api.ok("POST", "/v1/endpoints", { name: "slow", configName: "slow" });
  const dir = tempDir("kk-cli-files-");
  const files = ["a", "b", "c", "d"].map((n) => {
    const f = join(dir, `${n}.wav`);
    writeFileSync(f, randomBytes(20_000 + n.charCodeAt(0)));
    return f;
  });
  const out = join(dir, "out");
  const run = spawn(
    process.execPath,
    [cli, "transcribe", ...files, "--url", first.url, "--endpoint", "slow", "--format", "json", "--out", out],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  children.add(run);
  let log = "";
  run.stdout!.on("data", (c: Buffer) => (log += c.toString()));
  run.stderr!.on("data", (c: Buffer) => (log += c.toString()));
  const exited = new Promise<number | null>((resolve) => run.once("exit", resolve));

  // Kill the server once all four are submitted and the first is being processed. The kill may fall between
  // the server's commit of the last one and the CLI reading its 202: the CLI then sends it again under the
  // same id (lost-answer.test.ts makes that happen every time).
  await waitFor(
    async () => {
      const invs = (await api.ok("GET", "/v1/invocations?endpoint=slow")).invocations as { state: string }[];
      return invs.length === 4 && invs.some((i) => i.state === "Running");
    },
    60_000,
    "four invocations, one running",
  );
  first.proc.kill("SIGKILL");
  await new Promise((r) => first.proc.once("exit", r));
  await new Promise((r) => setTimeout(r, 2000)); // the CLI sees the server gone
  await serve(port);

  const code = await exited;
  assert.equal(code, 0, log);
  assert.match(log, /reconnecting/, "the CLI noticed the restart");
  for (const f of files) {
    const name = f.replace(/^.*\//, "").replace(".wav", ".json");
    const result = JSON.parse(readFileSync(join(out, name), "utf8")) as { bytes: number };
    assert.equal(result.bytes, readFileSync(f).length, `${name}: the model saw the whole file`);
  }
});
