import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { request as httpRequest } from "node:http";
import { join } from "node:path";
import { Sha256 } from "@aws-crypto/sha256-js";
import { HttpRequest } from "@smithy/protocol-http";
import { SignatureV4 } from "@smithy/signature-v4";
import { noopModelServer, repoRoot, tempDir } from "../helpers/server.js";

export const SIGV4 = { accessKeyId: "AKIDSECURITYTEST", secretAccessKey: "security-test-secret-value-1f3a" };
const cli = join(repoRoot, "bin", "kikitori.js");

export interface Served {
  url: string;
  host: string;
  port: number;
  child: ChildProcess;
  dataDir: string;
  admin?: string;
  invoke?: string;
  stop(): Promise<void>;
}

/** `kikitori keys create`, through the real CLI: prints the key on stdout. */
export function createKeyCli(dataDir: string, name: string, scope: string): string {
  return execFileSync(
    process.execPath,
    [cli, "keys", "create", "--name", name, "--scope", scope, "--data-dir", dataDir],
    {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    },
  ).trim();
}

/**
 * A real `kikitori serve` process. With `keys`, an admin and an invoke key are created through the CLI
 * first and SigV4 credentials are set, so every door is in keys mode.
 */
export async function serve(
  o: { keys: boolean; env?: Record<string, string>; dataDir?: string } = { keys: true },
): Promise<Served> {
  const dataDir = o.dataDir ?? tempDir("kk-sec-");
  const admin = o.keys ? createKeyCli(dataDir, "security admin", "admin") : undefined;
  const invoke = o.keys ? createKeyCli(dataDir, "security invoke", "invoke") : undefined;
  const child = spawn(process.execPath, [cli, "serve", "--port", "0", "--data-dir", dataDir], {
    env: {
      ...process.env,
      KIKITORI_QUIET: "1",
      ...(o.keys
        ? { KIKITORI_ACCESS_KEY_ID: SIGV4.accessKeyId, KIKITORI_SECRET_ACCESS_KEY: SIGV4.secretAccessKey }
        : {}),
      ...o.env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${out}`)), 60_000);
    const onData = (c: Buffer) => {
      out += c.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", (code) => reject(new Error(`serve exited with ${code}: ${out}`)));
  });
  const u = new URL(url);
  return {
    url,
    host: u.hostname,
    port: Number(u.port),
    child,
    dataDir,
    admin,
    invoke,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

export const bearer = (key: string | undefined): Record<string, string> =>
  key ? { authorization: `Bearer ${key}` } : {};

/** Signs a request the way the AWS SDK for JavaScript does (x-amz-content-sha256 included, and signed). */
export async function sign(
  s: Served,
  o: {
    method?: string;
    path: string;
    query?: Record<string, string>;
    headers?: Record<string, string>;
    body?: string | Buffer;
    service: string;
    secret?: string;
    date?: Date;
  },
): Promise<{ headers: Record<string, string>; path: string }> {
  const signer = new SignatureV4({
    credentials: { accessKeyId: SIGV4.accessKeyId, secretAccessKey: o.secret ?? SIGV4.secretAccessKey },
    region: "us-east-1",
    service: o.service,
    sha256: Sha256,
    uriEscapePath: o.service !== "s3",
  });
  const req = await signer.sign(
    new HttpRequest({
      method: o.method ?? "POST",
      protocol: "http:",
      hostname: s.host,
      port: s.port,
      path: o.path,
      query: o.query,
      headers: { host: `${s.host}:${s.port}`, ...o.headers },
      body: o.body,
    }),
    { signingDate: o.date },
  );
  const qs = o.query
    ? "?" +
      Object.entries(o.query)
        .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
        .join("&")
    : "";
  return { headers: req.headers as Record<string, string>, path: o.path + qs };
}

/** Presigns a GET URL (S3 query authentication). */
export async function presign(
  s: Served,
  o: { path: string; date?: Date; expiresIn?: number; service?: string; hoist?: boolean },
): Promise<string> {
  const signer = new SignatureV4({
    credentials: SIGV4,
    region: "us-east-1",
    service: o.service ?? "s3",
    sha256: Sha256,
    uriEscapePath: false,
  });
  const req = await signer.presign(
    new HttpRequest({
      method: "GET",
      protocol: "http:",
      hostname: s.host,
      port: s.port,
      path: o.path,
      // S3 presigned URLs never sign the payload, as @aws-sdk/s3-request-presigner makes them.
      headers: { host: `${s.host}:${s.port}`, "x-amz-content-sha256": "UNSIGNED-PAYLOAD" },
    }),
    {
      signingDate: o.date,
      expiresIn: o.expiresIn ?? 3600,
      unsignableHeaders: new Set(["x-amz-content-sha256"]),
      unhoistableHeaders: new Set(["x-amz-content-sha256"]),
    },
  );
  const qs = Object.entries(req.query as Record<string, string>)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join("&");
  return `${s.url}${o.path}?${qs}`;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any;
}

/** One HTTP request on its own connection (no client-side normalisation of Host, path or headers). */
export function raw(
  s: Served,
  o: { method?: string; path: string; headers?: Record<string, string>; body?: string | Buffer },
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: s.host,
        port: s.port,
        method: o.method ?? "GET",
        path: o.path,
        headers: { host: `${s.host}:${s.port}`, ...o.headers },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(o.body);
  });
}

export { noopModelServer };
