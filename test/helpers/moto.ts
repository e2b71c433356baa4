/**
 * moto_server (PyPI `moto[server]`, installed by scripts/setup): an S3-compatible server that kikitori did
 * not write, on a free loopback port, for as long as the test file needs it.
 */
import { spawn } from "node:child_process";
import { freePort } from "../../src/instances/model-server.js";

export const MOTO_CREDENTIALS = { accessKeyId: "testing", secretAccessKey: "testing" };

export async function startMoto(): Promise<{ endpoint: string; stop(): Promise<void> }> {
  const port = await freePort();
  const child = spawn("moto_server", ["-H", "127.0.0.1", "-p", String(port)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const endpoint = `http://127.0.0.1:${port}`;
  await new Promise<void>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(
      () => reject(new Error(`moto_server did not start within 60 s: ${out}`)),
      60_000,
    );
    const seen = (c: Buffer) => {
      out += c.toString();
      if (out.includes("Running on")) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on("data", seen);
    child.stderr!.on("data", seen);
    child.once("error", (e) =>
      reject(
        new Error(
          `moto_server could not start (${e.message}); scripts/setup installs moto[server] from PyPI`,
        ),
      ),
    );
    child.once("exit", (code) => reject(new Error(`moto_server exited with ${code}: ${out}`)));
  });
  return {
    endpoint,
    stop: async () => {
      if (child.exitCode !== null) return;
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
    },
  };
}
