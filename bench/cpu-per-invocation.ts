/**
 * Where the CPU of one invocation goes while the service accepts and completes at once (issue #12's
 * "accepts while work completes"): `kikitori serve` in a child process, 2 no-op instances × 4 slots, bursts
 * of one-second clips from 32 keep-alive clients, each burst drained before the next. CPU time is read
 * from /proc per process: this client, the service, the service's children (the no-op model servers) and
 * PostgreSQL's processes (every `postgres` process on the machine: run it on a quiet machine). CPU
 * seconds depend far less on the neighbours of a shared machine than accepts/s do.
 *
 *   node --import tsx bench/cpu-per-invocation.ts [--store sqlite|postgres|both] [--requests 2000] [--bursts 3]
 *     [--accept-only] [--out bench/results/cpu-per-invocation.json]
 * --accept-only: the bursts queue behind one ten-minute invocation, so the service only accepts (CPU per accept).
 * PostgreSQL: KIKITORI_BENCH_DATABASE_URL, else the local test server (scripts/test-postgres).
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { levelPieces, speechPieces, writeOneSecond } from "./lib/audio.js";
import { defaultTestdata, header, root } from "./lib/env.js";
import { median } from "./lib/stats.js";
import { noopServer, postgresDatabase, processTree, serve } from "./lib/service.js";
import { drained, submitAll } from "./platform.js";

const { values: a } = parseArgs({
  options: {
    store: { type: "string", default: "both" },
    requests: { type: "string", default: "2000" },
    bursts: { type: "string", default: "3" },
    "accept-only": { type: "boolean", default: false },
    out: { type: "string", default: join(root, "bench", "results", "cpu-per-invocation.json") },
  },
});
const requests = Number(a.requests);
const bursts = Number(a.bursts);
const acceptOnly = a["accept-only"]!;
const stores = a.store === "both" ? ["sqlite", "postgres"] : [a.store!];
const log = (m: string) => process.stderr.write(`[cpu] ${m}\n`);

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on Linux). */
const TICKS = 100;

/** User + system CPU seconds of one process (0 once it is gone). */
function cpuOf(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) / TICKS;
  } catch {
    return 0;
  }
}

/** CPU seconds of every PostgreSQL process on the machine. */
function postgresCpu(): number {
  let total = 0;
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (readFileSync(`/proc/${p}/comm`, "utf8").startsWith("postgres")) total += cpuOf(Number(p));
    } catch {
      // gone between the listing and the read
    }
  }
  return total;
}

interface Burst {
  acceptedPerSecond: number;
  /** While processing only. */
  completedPerSecond?: number;
  /** CPU milliseconds per invocation by role. */
  cpuMsPerInvocation: Record<string, number>;
}

async function measure(store: string, clip: string) {
  const pg = store === "postgres" ? await postgresDatabase(log) : undefined;
  if (pg && !pg.url) return { store, skipped: pg.skipped };
  const svc = await serve(pg?.url ? { KIKITORI_DATABASE_URL: pg.url } : {});
  try {
    const noop = { image: `local:${noopServer}`, environment: { NOOP_DELAY_MS: "0" } };
    // Accepting only: one slot held by an invocation that takes ten minutes, so every burst only queues.
    const busy = { image: `local:${noopServer}`, environment: { NOOP_DELAY_MS: "600000" } };
    await svc.client.endpoint(
      "tput",
      acceptOnly ? busy : noop,
      acceptOnly ? { instances: 1, maxConcurrent: 1 } : { instances: 2, maxConcurrent: 4 },
    );
    const input = await svc.client.put("bench", "tput.wav", readFileSync(clip), "audio/wav");
    const settle = () => (acceptOnly ? Promise.resolve() : drained(svc.client, "tput"));
    // Warm-up: connections, prepared statements, JIT.
    await submitAll(svc.client, "tput", input, 200, 32);
    await settle();
    const children = () =>
      processTree(svc.pid)
        .slice(1)
        .reduce((s, p) => s + cpuOf(p), 0);
    const runs: Burst[] = [];
    for (let i = 0; i < bursts; i++) {
      const before = {
        client: process.cpuUsage(),
        service: cpuOf(svc.pid),
        children: children(),
        pg: postgresCpu(),
      };
      const started = performance.now();
      const r = await submitAll(svc.client, "tput", input, requests, 32);
      await settle();
      const seconds = (performance.now() - started) / 1000;
      const client = process.cpuUsage(before.client);
      const perInvocationMs = (s: number) => Math.round((s / requests) * 1e6) / 1000;
      const run: Burst = {
        acceptedPerSecond: Math.round(requests / r.seconds),
        ...(acceptOnly ? {} : { completedPerSecond: Math.round(requests / seconds) }),
        cpuMsPerInvocation: {
          client: perInvocationMs((client.user + client.system) / 1e6),
          service: perInvocationMs(cpuOf(svc.pid) - before.service),
          modelServers: perInvocationMs(children() - before.children),
          ...(pg ? { postgres: perInvocationMs(postgresCpu() - before.pg) } : {}),
        },
      };
      log(`${store} burst ${i + 1}: ${JSON.stringify(run)}`);
      runs.push(run);
    }
    const roles = Object.keys(runs[0]!.cpuMsPerInvocation);
    return {
      store,
      runs,
      medianCpuMsPerInvocation: Object.fromEntries(
        roles.map((k) => [k, median(runs.map((r) => r.cpuMsPerInvocation[k]!))]),
      ),
    };
  } finally {
    await svc.stop();
    await pg?.drop();
  }
}

const tmp = mkdtempSync(join(tmpdir(), "kk-cpu-"));
try {
  const clip = join(tmp, "one-second.wav");
  writeOneSecond(clip, levelPieces(speechPieces(defaultTestdata(), tmp)));
  const results = [];
  for (const store of stores) results.push(await measure(store, clip));
  writeFileSync(
    a.out!,
    JSON.stringify(
      {
        ...header(`node --import tsx bench/cpu-per-invocation.ts ${process.argv.slice(2).join(" ")}`),
        requests,
        bursts,
        setup: acceptOnly
          ? "one-second clips from 32 keep-alive clients, queued behind one ten-minute invocation (accepting only)"
          : "2 no-op instances × 4 slots, one-second clips from 32 keep-alive clients, each burst drained",
        results,
      },
      null,
      2,
    ) + "\n",
  );
  log(`wrote ${a.out}`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
