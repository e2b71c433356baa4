import { timingSafeEqual } from "node:crypto";
import { createServer, request, type IncomingMessage, type ServerResponse } from "node:http";
import type { Instance } from "../instances/instance.js";

/** Request headers a synchronous invocation carries to the model server (as runtime.ts sends them). */
const FORWARDED = [
  "content-type",
  "content-length",
  "accept",
  "x-amzn-sagemaker-custom-attributes",
  "x-amzn-sagemaker-inference-id",
];

export interface WorkerListener {
  url: string;
  close(): Promise<void>;
}

/**
 * A worker host's own listener: `GET /health` (liveness and readiness for Kubernetes probes) and the relay
 * `POST /instances/<id>/invocations`, which streams a synchronous invocation from an API process to one of
 * this host's model servers (they listen on loopback only). The relay takes only the bearer token this host
 * registered in the store (HostHeartbeat.token), so only processes with the cluster's database reach it.
 */
export async function startWorkerListener(o: {
  host: string;
  port: number;
  token: string;
  /** This host's instance by id. */
  find: (instanceId: string) => Instance | undefined;
  health: () => Record<string, unknown>;
}): Promise<WorkerListener> {
  const expected = Buffer.from(`Bearer ${o.token}`);
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://worker");
    if (req.method === "GET" && url.pathname === "/health") return json(res, 200, o.health());
    const m = /^\/instances\/([\w-]+)\/invocations$/.exec(url.pathname);
    if (req.method !== "POST" || !m)
      return json(res, 404, { message: `no route ${req.method} ${url.pathname}` });
    const auth = Buffer.from(req.headers.authorization ?? "");
    if (auth.length !== expected.length || !timingSafeEqual(auth, expected))
      return json(res, 401, { message: "the relay takes this host's token from the cluster's store" });
    const instance = o.find(m[1]!);
    if (!instance || instance.state !== "InService")
      return json(res, 503, { message: `instance ${m[1]} is not InService on this host` });
    relay(req, res, instance.o.port);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port, o.host, resolve);
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : o.port;
  return {
    url: `http://${o.host.includes(":") ? `[${o.host}]` : o.host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function relay(req: IncomingMessage, res: ServerResponse, port: number): void {
  const headers: Record<string, string> = {};
  for (const h of FORWARDED) {
    const v = req.headers[h];
    if (typeof v === "string") headers[h] = v;
  }
  const up = request({ host: "127.0.0.1", port, method: "POST", path: "/invocations", headers }, (r) => {
    res.writeHead(r.statusCode ?? 502, r.headers);
    r.pipe(res);
  });
  up.on("error", (e) => {
    if (!res.headersSent) json(res, 502, { message: `model server: ${e.message}` });
    else res.destroy(e);
  });
  req.pipe(up);
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}
