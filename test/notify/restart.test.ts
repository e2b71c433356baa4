import { test, after } from "node:test";
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { freePort } from "../../src/instances/model-server.js";
import { Api, noopModelServer, serveProcess, tempDir, waitFor } from "../helpers/server.js";
import { Receiver } from "./receiver.js";

/** `kikitori serve` as a child process on `port`, so it can be killed with SIGKILL and restarted there. */
async function serve(port: number, dataDir: string): Promise<ChildProcess> {
  const env = {
    KIKITORI_WEBHOOK_ALLOW_LOOPBACK: "1",
    KIKITORI_WEBHOOK_BACKOFF_MS: "300",
    KIKITORI_WEBHOOK_MAX_BACKOFF_MS: "1000",
    KIKITORI_NOTIFY_POLL_MS: "100",
  };
  return (await serveProcess(dataDir, env, port)).child;
}

const receiver = await new Receiver().start();
let child: ChildProcess | undefined;
after(async () => {
  child?.kill("SIGKILL");
  await receiver.stop();
});

test("kill -9 between the state change and the delivery: delivered after restart, same webhook-id", async () => {
  const port = await freePort();
  const dataDir = tempDir("kk-notify-");
  const api = new Api(`http://127.0.0.1:${port}`);
  child = await serve(port, dataDir);
  await api.endpoint("kr", { image: `local:${noopModelServer}` });
  const input = await api.put("kikitori", "in/k.wav", Buffer.from("audio"));
  receiver.status = () => 503; // the receiver is down while the invocations finish
  const ids: string[] = [];
  for (let i = 0; i < 3; i++)
    ids.push(
      (
        await api.ok("POST", "/v1/endpoints/kr/invocations", {
          inputLocation: input,
          webhook: { url: receiver.url },
        })
      ).inferenceId,
    );
  for (const id of ids) await api.waitTerminal(id, 20_000);
  await waitFor(
    () => new Set(receiver.received.map((r) => r.headers["webhook-id"])).size === 3,
    10_000,
    "a failed attempt each",
  );
  child.kill("SIGKILL");
  await new Promise((r) => child!.once("exit", r));
  receiver.status = () => 200;
  const before = receiver.received.length;
  child = await serve(port, dataDir);
  await waitFor(
    () => receiver.received.slice(before).filter((r) => r.headers["webhook-id"]).length >= 3,
    20_000,
    "deliveries after restart",
  );
  for (const id of ids) {
    const got = receiver.received.filter((r) => JSON.parse(r.body).data.inferenceId === id);
    assert.equal(
      new Set(got.map((r) => r.headers["webhook-id"])).size,
      1,
      "stable webhook-id across the restart",
    );
    const [d] = (await api.ok("GET", `/v1/invocations/${id}/deliveries`)).deliveries;
    assert.equal(d.status, "Delivered");
    assert.equal(d.history[0].status, 503);
  }
  child.kill("SIGTERM");
});
