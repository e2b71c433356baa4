/** Container tests' fixtures: whether podman is here, and the repository's image builds (containers/build). */
import { execFile, spawnSync } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { repoRoot } from "./fixtures.js";

const run = promisify(execFile);

export const noPodman =
  spawnSync("podman", ["--version"]).status === 0
    ? false
    : "podman is not installed (scripts/setup installs it with runc and mmdebstrap)";

/**
 * Builds one of containers/build's images and returns its reference. The first build on a machine takes
 * minutes (Debian packages, wheels, npm ci); later ones find the image by the hash of its inputs.
 */
export async function buildImage(target: "seed-whisper" | "kikitori"): Promise<string> {
  const { stdout } = await run(join(repoRoot, "containers", "build"), [target], {
    timeout: 45 * 60_000,
    maxBuffer: 64 << 20,
  });
  return stdout.trim();
}

export const podman = async (...args: string[]): Promise<string> =>
  (await run("podman", args, { timeout: 5 * 60_000 })).stdout.trim();
