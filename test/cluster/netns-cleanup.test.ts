import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { join } from "node:path";
import { createNetns, netnsUnavailable } from "../helpers/netns.js";
import { repoRoot, waitFor } from "../helpers/server.js";

// The multi-host tests leave no network namespaces behind: not when a test fails (the process exits: its
// exit hook removes them), and not even when the test process is killed with -9 (the next run removes what
// a dead run made). CI machines and this shared one run these tests again and again.
const unavailable = netnsUnavailable();
const namespaces = () =>
  execFileSync("ip", ["netns", "list"], { encoding: "utf8" })
    .split("\n")
    .map((l) => l.split(" ")[0]!)
    .filter(Boolean);
const helper = join(repoRoot, "test", "helpers", "netns.ts");

async function child(
  script: string,
): Promise<{ pid: number; exited: Promise<number | null>; kill9(): void }> {
  const c = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    cwd: repoRoot,
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  c.stdout.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => c.once("exit", (code) => r(code)));
  await waitFor(() => out.includes("ready") || c.exitCode !== null, 30_000, "the child's namespaces");
  return { pid: c.pid!, exited, kill9: () => c.kill("SIGKILL") };
}

test(
  "network namespaces: removed when the process exits or is stopped without destroy(), and after a kill -9 by the next run",
  { skip: unavailable ?? false, timeout: 120_000 },
  async () => {
    const tagOf = (pid: number) => `kk${pid % 100000}`;
    const left = (pid: number) => namespaces().filter((n) => n.startsWith(tagOf(pid)));
    // A run that ends without destroy() (a test cut off by its timeout: the runner exits): the exit hook.
    const ended = await child(
      `import { createNetns } from ${JSON.stringify(helper)};
       createNetns(["a", "b"]); console.log("ready"); process.exitCode = 1;`,
    );
    assert.equal(await ended.exited, 1);
    assert.deepEqual(left(ended.pid), [], "gone with the process that made them");
    // A run stopped by SIGTERM (CI's own timeout): the signal hook, then the signal's default.
    const stopped = await child(
      `import { createNetns } from ${JSON.stringify(helper)};
       createNetns(["a", "b"]); console.log("ready"); setInterval(() => {}, 1000);`,
    );
    assert.equal(left(stopped.pid).length, 2, "the child made its namespaces");
    process.kill(stopped.pid, "SIGTERM");
    await stopped.exited;
    assert.deepEqual(left(stopped.pid), [], "gone with the SIGTERM");

    // A run killed with -9 cannot clean up: the next createNetns does.
    const killed = await child(
      `import { createNetns } from ${JSON.stringify(helper)};
       createNetns(["a", "b"]); console.log("ready"); setInterval(() => {}, 1000);`,
    );
    killed.kill9();
    await killed.exited;
    assert.equal(left(killed.pid).length, 2, "left behind by -9");
    const mine = createNetns(["x"]);
    try {
      assert.deepEqual(left(killed.pid), [], "the next run removed them");
      assert.ok(namespaces().includes(mine.names.x!));
    } finally {
      mine.destroy();
    }
    assert.ok(!namespaces().includes(mine.names.x!), "destroy() removes this run's own");
  },
);
