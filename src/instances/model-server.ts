import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { request } from "node:http";
import { fileURLToPath } from "node:url";
import { containerName, containerRunArgs } from "./container.js";
import type { ImageSpec } from "./images.js";

/** A free TCP port on the loopback interface. */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === "object" && addr ? addr.port : 0));
    });
  });
}

/** Node arguments that run one of our own modules as a child, from sources (tsx) or from the build. */
export function nodeModuleCommand(relativeToSrc: string): { command: string; args: string[] } {
  const here = fileURLToPath(import.meta.url);
  const fromSources = here.endsWith(".ts");
  const srcRoot = new URL("../", import.meta.url);
  const file = fileURLToPath(new URL(relativeToSrc.replace(/\.ts$/, fromSources ? ".ts" : ".js"), srcRoot));
  return { command: process.execPath, args: fromSources ? ["--import", "tsx", file] : [file] };
}

export interface SpawnOptions {
  /** The instance's id: a container is named after it (containerName). */
  instanceId: string;
  /** Container labels (endpoint, variant), for `podman ps --filter label=…`. */
  labels: Record<string, string>;
  image: ImageSpec;
  port: number;
  modelDir: string;
  environment: Record<string, string>;
  maxConcurrency: number;
  onOutput?: (line: string) => void;
}

/** Starts a model server process honouring the SageMaker container contract. */
export function spawnModelServer(o: SpawnOptions): ChildProcess {
  const { command, args } =
    o.image.kind === "builtin"
      ? nodeModuleCommand("whisper/main.ts")
      : o.image.kind === "container"
        ? {
            command: o.image.runtime.command,
            args: containerRunArgs(o.image.runtime, {
              image: o.image.image,
              name: containerName(o.instanceId),
              port: o.port,
              modelDir: o.modelDir,
              environment: o.environment,
              labels: { ...o.labels, "kikitori.instance": o.instanceId },
            }),
          }
        : { command: o.image.command, args: [...o.image.args, "serve"] };
  const child = spawn(command, args, {
    env: {
      ...childEnvironment(process.env),
      ...o.environment,
      SAGEMAKER_BIND_TO_PORT: String(o.port),
      SM_MODEL_DIR: o.modelDir,
      KIKITORI_MAX_CONCURRENCY: String(o.maxConcurrency),
      // The built-in server exits when its parent's pipe closes, so a killed service leaves no orphans.
      KIKITORI_EXIT_WITH_PARENT: "1",
    },
    stdio: ["pipe", "pipe", "pipe"],
  });
  const forward = (chunk: Buffer) => {
    for (const line of chunk.toString("utf8").split("\n")) if (line.trim()) o.onOutput?.(line);
  };
  child.stdout?.on("data", forward);
  child.stderr?.on("data", forward);
  return child;
}

/** Names of the service's own secrets (credentials, database URLs, tokens): never passed to children. */
const SECRET_NAME =
  /SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL|PRIVATE|API_?KEY|ACCESS_KEY|SESSION|DATABASE_URL|_DSN$|^PGPASS/i;

/**
 * The service's environment as a model server may see it: without its secrets (a model server is other
 * people's code, and `/proc/<pid>/environ` of a container is readable to it). The model's own
 * Environment is added on top by the caller.
 */
export function childEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([k]) => !SECRET_NAME.test(k)));
}

/** GET /ping; resolves with the status code, or 0 when nothing answers within the timeout. */
export function ping(port: number, timeoutMs: number, host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host, port, path: "/ping", method: "GET", timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(0));
    req.end();
  });
}
