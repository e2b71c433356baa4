import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { Api, noopModelServer, repoRoot, serveProcess, tempDir } from "../helpers/server.js";

/**
 * `kikitori transcribe --url` when the answer to a submission is lost: the server commits the invocation,
 * then the connection drops before the CLI reads the 202 (what a server restart at that instant does). A
 * real HTTP proxy between the CLI and a real server forwards the first POST .../invocations, lets the server
 * answer, and cuts the CLI's connection instead of passing the answer on. The CLI sends the submission again
 * under the same invocation id; the file runs once, and its result is written.
 */

const cli = join(repoRoot, "bin", "kikitori.js");
const children = new Set<ChildProcess>();
let proxy: Server | undefined;
after(() => {
  for (const c of children) c.kill("SIGKILL");
  proxy?.close();
});

test("a submission whose 202 is lost is sent again under its id: every file runs once and finishes", async () => {
  const { child, api: server } = await serveProcess(tempDir("kk-cli-lost-"), { NOOP_DELAY_MS: "200" });
  children.add(child);
  const api = new Api(server.url);
  await api.ok("POST", "/v1/models", { name: "noop", image: `local:${noopModelServer}` });
  await api.ok("POST", "/v1/endpoint-configs", {
    name: "noop",
    variants: [{ modelName: "noop", initialInstanceCount: 1 }],
  });
  await api.ok("POST", "/v1/endpoints", { name: "noop", configName: "noop" });

  let dropped: { status: number; body: string } | undefined;
  proxy = createServer((req, res) => {
    const upstream = request(server.url + req.url, { method: req.method, headers: req.headers }, (answer) => {
      if (!dropped && req.method === "POST" && /\/invocations$/.test(req.url ?? "")) {
        // The server has answered (so it committed); the CLI never hears it.
        let body = "";
        answer.on("data", (c: Buffer) => (body += c.toString()));
        answer.on("end", () => {
          dropped = { status: answer.statusCode!, body };
          req.socket.destroy();
        });
        return;
      }
      res.writeHead(answer.statusCode!, answer.headers);
      answer.pipe(res);
    });
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => proxy!.listen(0, "127.0.0.1", resolve));
  const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;

  const dir = tempDir("kk-cli-lost-files-");
  const files = ["a", "b"].map((n) => {
    const f = join(dir, `${n}.wav`);
    writeFileSync(f, randomBytes(10_000 + n.charCodeAt(0)));
    return f;
  });
  const out = join(dir, "out");
  const run = spawn(
    process.execPath,
    [cli, "transcribe", ...files, "--url", proxyUrl, "--endpoint", "noop", "--format", "json", "--out", out],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  children.add(run);
  let log = "";
  run.stdout!.on("data", (c: Buffer) => (log += c.toString()));
  run.stderr!.on("data", (c: Buffer) => (log += c.toString()));
  const code = await new Promise<number | null>((resolve) => run.once("exit", resolve));

  assert.equal(code, 0, log);
  assert.equal(dropped?.status, 202, `the server accepted the first submission: ${JSON.stringify(dropped)}`);
  assert.match(log, /reconnecting/, "the CLI saw the connection drop");
  const lostId = (JSON.parse(dropped.body) as { inferenceId: string }).inferenceId;
  const invs = (await api.ok("GET", "/v1/invocations?endpoint=noop")).invocations as {
    inferenceId: string;
    inputLocation: string;
    state: string;
  }[];
  assert.equal(invs.length, files.length, `one invocation per file, none twice: ${JSON.stringify(invs)}`);
  assert.equal(new Set(invs.map((i) => i.inputLocation)).size, files.length);
  assert.ok(
    invs.some((i) => i.inferenceId === lostId && i.state === "Succeeded"),
    "the invocation whose answer was lost is the one that ran",
  );
  for (const f of files) {
    const name = f.replace(/^.*\//, "").replace(".wav", ".json");
    const result = JSON.parse(readFileSync(join(out, name), "utf8")) as { bytes: number };
    assert.equal(result.bytes, readFileSync(f).length, `${name}: the model saw the whole file`);
  }
});
