import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after } from "node:test";
import type { NotifyOptions } from "../../src/notify/options.js";
import { loadConfig } from "../../src/config.js";
import { startTestServer } from "../helpers/server.js";

export interface Received {
  headers: IncomingMessage["headers"];
  body: string;
  path: string;
}

/** A real HTTP receiver on 127.0.0.1 that records every request and answers with `status()`. */
export class Receiver {
  readonly received: Received[] = [];
  status: (r: Received) => number | { status: number; headers: Record<string, string> } = () => 200;
  private server?: Server;
  port = 0;

  async start(port = 0): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const r = {
          headers: req.headers,
          body: Buffer.concat(chunks).toString("utf8"),
          path: req.url ?? "/",
        };
        this.received.push(r);
        const s = this.status(r);
        if (typeof s === "number") res.writeHead(s).end("ok");
        else res.writeHead(s.status, s.headers).end();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(port, "127.0.0.1", resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

/**
 * A test server whose notifications may reach loopback receivers quickly (short backoff and poll), plus one
 * receiver; both stop when the test file ends.
 */
export async function startNotifyServer(over: Partial<NotifyOptions> = {}) {
  const k = await startTestServer({
    notify: {
      ...loadConfig({}, {}).notify,
      egress: { allowLoopback: true, allowPrivate: false, allowHosts: [], denyHosts: [] },
      initialBackoffMs: 200,
      pollMs: 100,
      ...over,
    },
  });
  const receiver = await new Receiver().start();
  after(async () => {
    await receiver.stop();
    await k.close();
  });
  return { k, receiver };
}
