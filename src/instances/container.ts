import { execFile, spawnSync } from "node:child_process";
import { hostname } from "node:os";
import { promisify } from "node:util";

/**
 * The container driver's side of a container runtime (docker, or podman with no daemon at all): how to
 * find one, the `run` command line of an instance as SageMaker runs a model container, how to stop and
 * remove it, and what a runtime's failure on this host means.
 */
export interface ContainerRuntime {
  /** The program (`docker`, `podman`, or a path). */
  command: string;
  /** Its global options, before the subcommand (podman: `--runtime runc`, `--cgroup-manager cgroupfs`). */
  globalArgs: string[];
  /** Options added to every `run` (`--ulimit …`, `--gpus all`, `--device nvidia.com/gpu=all`). */
  runArgs: string[];
}

const run = promisify(execFile);
const words = (s: string | undefined) => (s ?? "").trim().split(/\s+/).filter(Boolean);

let detected: { runtime: ContainerRuntime | null; why: string } | undefined;

/**
 * The first container runtime that answers `info`: `KIKITORI_CONTAINER_RUNTIME` (a command line, e.g.
 * `podman --runtime runc`) when set, else docker, then podman. `KIKITORI_CONTAINER_RUN_OPTIONS` is added
 * to every `run`. Looked up once per process; `why` says what was tried when none answers.
 */
export function detectContainerRuntime(env: NodeJS.ProcessEnv = process.env): {
  runtime: ContainerRuntime | null;
  why: string;
} {
  if (detected) return detected;
  const chosen = words(env.KIKITORI_CONTAINER_RUNTIME);
  const candidates = chosen.length ? [chosen] : [["docker"], ["podman"]];
  const tried: string[] = [];
  for (const [command, ...globalArgs] of candidates as [string, ...string[]][]) {
    const r = spawnSync(command, [...globalArgs, "info"], { encoding: "utf8", timeout: 10_000 });
    if (r.status === 0) {
      detected = {
        runtime: { command, globalArgs, runArgs: words(env.KIKITORI_CONTAINER_RUN_OPTIONS) },
        why: "",
      };
      return detected;
    }
    const reason = r.error
      ? (r.error as NodeJS.ErrnoException).code === "ENOENT"
        ? "not installed"
        : r.error.message
      : (r.stderr.trim().split("\n").pop() ?? `exit code ${r.status}`);
    tried.push(`${[command, ...globalArgs].join(" ")} info: ${reason}`);
  }
  detected = { runtime: null, why: tried.join("; ") };
  return detected;
}

/** The container of an instance is named after it, so it can be found again after a restart. */
export const containerName = (instanceId: string) => `kikitori-${instanceId}`;

/** The runtime's command line for one instance, as SageMaker runs a model container. */
export function containerRunArgs(
  rt: ContainerRuntime,
  o: {
    image: string;
    name: string;
    port: number;
    modelDir: string;
    environment: Record<string, string>;
    labels?: Record<string, string>;
  },
): string[] {
  const env = Object.entries({
    ...o.environment,
    SAGEMAKER_BIND_TO_PORT: "8080",
    SM_MODEL_DIR: "/opt/ml/model",
  });
  const labels = Object.entries({ "kikitori.host": hostname(), ...o.labels });
  return [
    ...rt.globalArgs,
    "run",
    "--rm",
    "--name",
    o.name,
    ...labels.flatMap(([k, v]) => ["--label", `${k}=${v}`]),
    "--publish",
    `127.0.0.1:${o.port}:8080`,
    "--volume",
    `${o.modelDir}:/opt/ml/model:ro`,
    ...env.flatMap(([k, v]) => ["--env", `${k}=${v}`]),
    ...rt.runArgs,
    o.image,
    "serve",
  ];
}

/**
 * Stops a container as `docker stop` does (SIGTERM, SIGKILL after the grace period), then removes it.
 * A container that is already gone is not an error.
 */
export async function stopContainer(rt: ContainerRuntime, name: string, graceMs: number): Promise<void> {
  const seconds = String(Math.max(0, Math.ceil(graceMs / 1000)));
  await run(rt.command, [...rt.globalArgs, "stop", "--time", seconds, name], {
    timeout: graceMs + 30_000,
  }).catch(() => {});
  await removeContainer(rt, name);
}

export async function removeContainer(rt: ContainerRuntime, name: string): Promise<void> {
  await run(rt.command, [...rt.globalArgs, "rm", "--force", name], { timeout: 30_000 }).catch(() => {});
}

/**
 * What a container runtime's failure to start a container means on this host, and what to change; undefined
 * when the output shows none of the known causes. Matched on the runtimes' own messages (runc, crun,
 * podman, docker).
 */
export function explainContainerFailure(output: string): string | undefined {
  if (/error setting rlimit|setrlimit/i.test(output))
    return (
      "the OCI runtime may not raise the container's rlimits to the runtime's defaults on this host " +
      "(they exceed this host's hard limits): set `default_ulimits = []` in the [containers] section of a " +
      "containers.conf (e.g. /etc/containers/containers.conf.d/kikitori.conf; scripts/setup writes it where " +
      "needed), or give explicit `--ulimit` values in KIKITORI_CONTAINER_RUN_OPTIONS"
    );
  if (/cgroup/i.test(output) && /systemd|dbus/i.test(output))
    return "the runtime's cgroup manager (systemd) is not usable here: use cgroupfs, e.g. KIKITORI_CONTAINER_RUNTIME='podman --cgroup-manager cgroupfs'";
  if (/OCI runtime .*not found|default OCI runtime|runtime .* not found in/i.test(output))
    return "no OCI runtime: install runc or crun, or name one, e.g. KIKITORI_CONTAINER_RUNTIME='podman --runtime runc'";
  if (
    /image not known|unable to find image|pull access denied|manifest unknown|repository .* not found|initializing source/i.test(
      output,
    )
  )
    return "the image is not in the runtime's local store and could not be pulled: build it there (podman build -t NAME …) or load it (podman load)";
  if (/address already in use|port is already allocated/i.test(output))
    return "the loopback port chosen for the container was taken meanwhile; the instance is started again on another";
  return undefined;
}
