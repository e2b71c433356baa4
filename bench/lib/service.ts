/**
 * `kikitori serve` as a child process, so the benchmark client and the service do not share an event
 * loop, plus a small keep-alive JSON client and the process-tree memory readings the benchmarks need.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import pg from "pg";
import { root } from "./env.js";

/**
 * A JSON document from the API or a results file, read field by field (as the tests do): typing every
 * response shape would add noise, not safety.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export const noopServer = join(root, "test", "fixtures", "noop-model-server.mjs");

export interface ServeChild {
  url: string;
  pid: number;
  client: Client;
  stop(): Promise<void>;
  /** SIGKILL (a crash): the data directory stays, for a service started again on it. */
  kill9(): Promise<void>;
}

/** `kikitori serve` as a child process, on a new data directory or on `dataDir` (kept then: the caller's). */
export async function serve(env: Record<string, string> = {}, dataDir?: string): Promise<ServeChild> {
  const own = dataDir === undefined;
  dataDir ??= mkdtempSync(join(tmpdir(), "kk-bench-serve-"));
  const child: ChildProcess = spawn(
    process.execPath,
    [
      // Node flags for the service alone, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile it.
      ...(process.env.KIKITORI_BENCH_NODE_ARGS?.split(" ").filter(Boolean) ?? []),
      join(root, "bin", "kikitori.js"),
      "serve",
      "--port",
      "0",
      "--data-dir",
      dataDir,
    ],
    {
      // The no-op model server is a `local:` command, which the service refuses unless allowed.
      env: { ...process.env, KIKITORI_QUIET: "1", KIKITORI_LOCAL_IMAGE_COMMANDS: noopServer, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let stderr = "";
  child.stderr!.on("data", (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
  const lines = createInterface({ input: child.stdout! });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`kikitori serve did not start in 60 s: ${stderr}`)),
      60_000,
    );
    lines.on("line", (l) => {
      const m = /listening on (http:\/\/\S+)/.exec(l);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once("exit", (code) => reject(new Error(`kikitori serve exited with ${code}: ${stderr}`)));
  });
  const client = new Client(url);
  return {
    url,
    pid: child.pid!,
    client,
    stop: async () => {
      client.close();
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await once(child, "exit");
      }
      if (own) rmSync(dataDir, { recursive: true, force: true });
    },
    kill9: async () => {
      client.close();
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGKILL");
        await once(child, "exit");
      }
    },
  };
}

/**
 * A fresh database on the benchmarks' PostgreSQL server (`KIKITORI_BENCH_DATABASE_URL`, else the one
 * scripts/test-postgres starts: durable commits, the server's defaults), dropped by `drop()`. Without a
 * server, `skipped` says why.
 */
export async function postgresDatabase(
  log: (msg: string) => void,
): Promise<{ url?: string; version?: string; skipped?: string; drop(): Promise<void> }> {
  let server: string;
  try {
    server =
      process.env.KIKITORI_BENCH_DATABASE_URL ||
      execFileSync(join(root, "scripts", "test-postgres"), { encoding: "utf8" }).trim();
  } catch (e) {
    log(`no PostgreSQL: ${(e as Error).message}`);
    return {
      skipped: `no PostgreSQL server (scripts/test-postgres): ${(e as Error).message}`,
      drop: async () => {},
    };
  }
  const name = `kikitori_bench_${process.pid}`;
  const admin = async <T>(f: (c: pg.Client) => Promise<T>) => {
    const c = new pg.Client({ connectionString: server });
    await c.connect();
    try {
      return await f(c);
    } finally {
      await c.end();
    }
  };
  const version = await admin(async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${name}`);
    return String((await c.query("SHOW server_version")).rows[0].server_version);
  });
  const url = new URL(server);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    version: `PostgreSQL ${version}`,
    drop: () => admin(async (c) => void (await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))),
  };
}

/** JSON over keep-alive HTTP/1.1 (node:http, no dependencies). */
export class Client {
  readonly agent: Agent;
  constructor(
    readonly url: string,
    maxSockets = 64,
  ) {
    this.agent = new Agent({ keepAlive: true, maxSockets });
  }
  call(method: string, path: string, body?: unknown): Promise<{ status: number; body: Json }> {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return this.raw(method, path, data, data ? "application/json" : undefined).then((r) => {
      const text = r.body.toString();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // not JSON
      }
      return { status: r.status, body: parsed };
    });
  }
  async ok(method: string, path: string, body?: unknown): Promise<Json> {
    const r = await this.call(method, path, body);
    if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }
  raw(
    method: string,
    path: string,
    body?: Buffer | NodeJS.ReadableStream,
    contentType?: string,
  ): Promise<{ status: number; body: Buffer }> {
    return new Promise((resolve, reject) => {
      const req = request(
        this.url + path,
        { method, agent: this.agent, headers: contentType ? { "content-type": contentType } : {} },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      if (body === undefined || Buffer.isBuffer(body)) req.end(body);
      else body.pipe(req);
    });
  }
  /** Uploads an object; returns its s3:// location. */
  async put(bucket: string, key: string, body: Buffer | NodeJS.ReadableStream, contentType: string) {
    const r = await this.raw("PUT", `/v1/objects/${bucket}/${key}`, body, contentType);
    if (r.status !== 201) throw new Error(`PUT ${bucket}/${key}: ${r.status} ${r.body.toString()}`);
    return `s3://${bucket}/${key}`;
  }
  /** Model + config + endpoint, waiting until it is InService. */
  async endpoint(
    name: string,
    model: { image: string; environment?: Record<string, string> },
    opts: { instances?: number; maxConcurrent?: number } = {},
  ): Promise<void> {
    await this.ok("POST", "/v1/models", { name, ...model });
    await this.ok("POST", "/v1/endpoint-configs", {
      name,
      variants: [{ modelName: name, initialInstanceCount: opts.instances ?? 1 }],
      maxConcurrentInvocationsPerInstance: opts.maxConcurrent,
    });
    await this.ok("POST", "/v1/endpoints", { name, configName: name });
    const deadline = Date.now() + 120_000;
    for (;;) {
      const ep = await this.ok("GET", `/v1/endpoints/${name}`);
      if (ep.status === "InService" && (opts.instances ?? 1) === 0) return;
      if (ep.status === "InService" && ep.instances?.some((i: { state: string }) => i.state === "InService"))
        return;
      if (ep.status === "Failed") throw new Error(`endpoint ${name} failed: ${ep.failureReason}`);
      if (Date.now() > deadline) throw new Error(`endpoint ${name} not InService within 120 s`);
      await sleep(20);
    }
  }
  /** Long-polls an invocation until it is terminal. */
  async waitTerminal(id: string, timeoutMs = 3_600_000): Promise<Json> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const inv = await this.ok("GET", `/v1/invocations/${id}?wait=30`);
      if (!["Queued", "Running"].includes(inv.state)) return inv;
      if (Date.now() > deadline) throw new Error(`invocation ${id} not finished in ${timeoutMs} ms`);
    }
  }
  close() {
    this.agent.destroy();
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A process and its descendants (from /proc/<pid>/task/<tid>/children). */
export function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    try {
      for (const tid of readdirSync(`/proc/${out[i]}/task`)) {
        const kids = readFileSync(`/proc/${out[i]}/task/${tid}/children`, "utf8").trim();
        if (kids) out.push(...kids.split(/\s+/).map(Number));
      }
    } catch {
      // the process ended meanwhile
    }
  }
  return out;
}

/** Peak (VmHWM) and current (VmRSS) resident memory in MiB, and the command line, of one process. */
export function memoryOf(
  pid: number,
): { pid: number; cmd: string; peakMiB: number; rssMiB: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
    const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean).join(" ");
    return { pid, cmd: cmd.slice(0, 160), peakMiB: kb("VmHWM") / 1024, rssMiB: kb("VmRSS") / 1024 };
  } catch {
    return undefined;
  }
}
