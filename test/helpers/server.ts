import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { loadConfig, type ConfigOverrides } from "../../src/config.js";
import { startKikitori, type Kikitori } from "../../src/main.js";
import { freshDatabase, type TestBackend } from "./backends.js";
import { repoRoot, tempDir } from "./fixtures.js";
import { createKey } from "../../src/auth/keys.js";

// Most server tests also want these; one import line serves them.
export { repoRoot, tempDir };
export const noopModelServer = join(repoRoot, "test", "fixtures", "noop-model-server.mjs");

/**
 * A real kikitori (HTTP, instances as processes) in a temporary data directory, on SQLite; on a fresh
 * PostgreSQL database instead when the run is `KIKITORI_TEST_BACKEND=postgres` (the whole suite on it) or
 * `backend` says so (a suite written with forEachBackend).
 * The test fixtures' `local:` model servers are allowed (the product refuses them by default). With keys
 * (SigV4 credentials or `auth.mode: "keys"`), `api` carries an admin API key made for the test.
 */
export async function startTestServer(
  over: ConfigOverrides = {},
  backend: TestBackend = process.env.KIKITORI_TEST_BACKEND === "postgres" ? "postgres" : "sqlite",
): Promise<Kikitori & { api: Api }> {
  const db = await freshDatabase(backend);
  const k = await startKikitori(
    loadConfig({
      ...db.config,
      port: 0,
      log: false,
      localImages: { allowAll: true, commands: [] },
      ...over,
    }),
  );
  const key =
    k.authMode === "keys"
      ? (await createKey(k.keys, { name: "test admin", scope: "admin" })).token
      : undefined;
  return Object.assign(k, { api: new Api(k.url, key) });
}

export class Api {
  constructor(
    readonly url: string,
    /** An API key sent as `Authorization: Bearer`. */
    readonly key?: string,
  ) {}
  /** Headers with the key, if any. */
  headers(more: Record<string, string> = {}): Record<string, string> {
    return this.key ? { authorization: `Bearer ${this.key}`, ...more } : more;
  }
  async call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    const res = await fetch(this.url + path, {
      method,
      headers: this.headers(body === undefined ? {} : { "content-type": "application/json" }),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON
    }
    return { status: res.status, body: parsed };
  }
  async ok(method: string, path: string, body?: unknown): Promise<any> {
    const r = await this.call(method, path, body);
    if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }
  async put(
    bucket: string,
    key: string,
    data: Buffer | Uint8Array,
    contentType = "application/octet-stream",
  ) {
    const res = await fetch(`${this.url}/v1/objects/${bucket}/${key}`, {
      method: "PUT",
      body: data,
      headers: this.headers({ "content-type": contentType }),
    });
    if (res.status !== 201) throw new Error(`PUT ${bucket}/${key}: ${res.status} ${await res.text()}`);
    return `s3://${bucket}/${key}`;
  }
  async getObject(location: string): Promise<{ status: number; text: string }> {
    const path = location.replace(/^s3:\/\//, "");
    const res = await fetch(`${this.url}/v1/objects/${path}`, { headers: this.headers() });
    return { status: res.status, text: await res.text() };
  }
  /** Creates a model, a config and an endpoint, and waits until it is InService. */
  async endpoint(
    name: string,
    model: { image: string; modelDataUrl?: string; environment?: Record<string, string> },
    config: { maxConcurrentInvocationsPerInstance?: number; initialInstanceCount?: number } = {},
  ): Promise<void> {
    await this.ok("POST", "/v1/models", { name, ...model });
    await this.ok("POST", "/v1/endpoint-configs", {
      name,
      variants: [{ modelName: name, initialInstanceCount: config.initialInstanceCount ?? 1 }],
      maxConcurrentInvocationsPerInstance: config.maxConcurrentInvocationsPerInstance,
    });
    await this.ok("POST", "/v1/endpoints", { name, configName: name });
    await waitFor(
      async () => (await this.ok("GET", `/v1/endpoints/${name}`)).status === "InService",
      60_000,
      `endpoint ${name} InService`,
    );
  }
  /**
   * Scales the endpoint's AllTraffic variant between 0 and 1 instance: a request at zero starts one
   * (step policy on HasBacklogWithoutCapacity), and it stops `scaleInCooldown` seconds after the backlog
   * is gone (target tracking on ApproximateBacklogSizePerInstance).
   */
  async scaleFromZero(endpoint: string, scaleInCooldown: number): Promise<void> {
    await this.ok("PUT", `/v1/endpoints/${endpoint}/variants/AllTraffic/scaling`, {
      minCapacity: 0,
      maxCapacity: 1,
      policies: [
        {
          policyName: "wake",
          policyType: "StepScaling",
          stepScaling: {
            AdjustmentType: "ChangeInCapacity",
            StepAdjustments: [{ MetricIntervalLowerBound: 0, ScalingAdjustment: 1 }],
          },
        },
        {
          policyName: "backlog",
          policyType: "TargetTrackingScaling",
          targetTracking: {
            TargetValue: 1,
            CustomizedMetricSpecification: {
              MetricName: "ApproximateBacklogSizePerInstance",
              Namespace: "AWS/SageMaker",
            },
            ScaleInCooldown: scaleInCooldown,
          },
        },
      ],
    });
  }
  async waitTerminal(id: string, timeoutMs = 120_000): Promise<any> {
    let last: any;
    await waitFor(
      async () => {
        last = await this.ok("GET", `/v1/invocations/${id}`);
        return !["Queued", "Running"].includes(last.state);
      },
      timeoutMs,
      `invocation ${id} to end`,
    );
    return last;
  }
}

export async function waitFor(
  cond: () => Promise<boolean> | boolean,
  timeoutMs: number,
  what: string,
  everyMs = 50,
) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

export interface ServeProcess {
  child: ChildProcess;
  api: Api;
  url: string;
  /** Everything the process wrote to stderr (its log) so far. */
  log(): string;
  kill9(): Promise<void>;
}

/**
 * Runs `kikitori serve` as its own process, so a test can kill it with SIGKILL. `port` (default: any free
 * one) lets a test restart it where its clients expect it.
 */
export async function serveProcess(
  dataDir: string,
  env: Record<string, string> = {},
  port = 0,
): Promise<ServeProcess> {
  const child = spawn(
    process.execPath,
    [join(repoRoot, "bin", "kikitori.js"), "serve", "--port", String(port), "--data-dir", dataDir],
    {
      // The fixtures' no-op model server is a `local:` command, refused unless allowed.
      env: {
        ...process.env,
        KIKITORI_QUIET: "1",
        KIKITORI_LEASE_MS: "3000",
        KIKITORI_LOCAL_IMAGE_COMMANDS: noopModelServer,
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let err = "";
  child.stderr!.on("data", (c: Buffer) => (err += c.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (c: Buffer) => {
      out += c.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.on("exit", (code) => reject(new Error(`serve exited with ${code}: ${out}${err}`)));
  });
  return {
    child,
    url,
    api: new Api(url),
    log: () => err,
    kill9: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGKILL");
      await new Promise((r) => child.once("exit", r));
    },
  };
}
