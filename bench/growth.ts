/**
 * Cost of growth, on the no-op model server through the service (`kikitori serve` as a child):
 *  - queue depth: with N invocations already queued (the model server paused with SIGSTOP, so nothing
 *    drains), the latency of enqueueing one more, of reading one (its queue position), and accepts/s
 *    from concurrent clients; then the server resumes and the backlog drains: completions/s and the
 *    per-invocation dispatch overhead (finishedAt − startedAt − model time);
 *  - file length: upload time and overhead (total − model time: streaming the input through the
 *    instance to the model server and storing the output) for files of increasing length, with the
 *    service's resident memory sampled during each.
 * Each series gets a growth exponent between consecutive points (log Δy / log Δx: 0 flat, 1 linear).
 */
import { createReadStream, statSync } from "node:fs";
import { join } from "node:path";
import { drained, submitAll } from "./platform.js";
import { writeNoise } from "./lib/audio.js";
import { memoryOf, noopServer, processTree, serve, type Client, type Json } from "./lib/service.js";
import { round, summary } from "./lib/stats.js";

export interface GrowthOptions {
  depths: number[];
  /** File lengths in seconds. */
  lengths: number[];
  probes: number;
  acceptRequests: number;
  concurrency: number;
  tmp: string;
  log: (msg: string) => void;
}

/** Exponent b in y ∝ x^b between consecutive points, and a word for the whole series. */
export function growth(xs: readonly number[], ys: readonly number[]) {
  const exponents: number[] = [];
  for (let i = 1; i < xs.length; i++) {
    const a = Math.max(ys[i - 1]!, 1e-9);
    const b = Math.max(ys[i]!, 1e-9);
    exponents.push(round(Math.log(b / a) / Math.log(xs[i]! / xs[i - 1]!), 2));
  }
  const worst = Math.max(...exponents);
  const verdict =
    exponents.length === 0
      ? "one point"
      : worst < 0.25
        ? "flat (does not grow)"
        : worst < 0.8
          ? "sublinear"
          : worst <= 1.2
            ? "linear"
            : "superlinear";
  return { exponents, verdict };
}

async function fill(client: Client, endpoint: string, input: string, n: number) {
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < n) {
        next++;
        await client.ok("POST", `/v1/endpoints/${endpoint}/invocations`, { inputLocation: input });
      }
    }),
  );
}

async function allInvocations(client: Client, endpoint: string) {
  const out: Json[] = [];
  let before: number | undefined;
  for (;;) {
    const page = await client.ok(
      "GET",
      `/v1/invocations?endpoint=${endpoint}&limit=1000${before ? `&before=${before}` : ""}`,
    );
    out.push(...page.invocations);
    if (page.next === undefined) return out;
    before = page.next;
  }
}

export async function runGrowth(o: GrowthOptions) {
  const svc = await serve();
  const noop = { image: `local:${noopServer}`, environment: { NOOP_DELAY_MS: "0" } };
  try {
    const wav = join(o.tmp, "growth-1s.wav");
    writeNoise(wav, 1);
    const input = await svc.client.put("bench", "growth.wav", createReadStream(wav), "audio/wav");
    const byDepth = [];
    for (const [i, depth] of o.depths.entries()) {
      const endpoint = `depth${i}`;
      await svc.client.endpoint(endpoint, noop, { instances: 1, maxConcurrent: 4 });
      const server = processTree(svc.pid).find((pid) => memoryOf(pid)?.cmd.includes("noop-model-server"));
      if (!server) throw new Error("growth: cannot find the no-op model server process");
      process.kill(server, "SIGSTOP");
      let resumed = false;
      try {
        o.log(`growth: ${depth} queued`);
        await fill(svc.client, endpoint, input, depth);
        const accept: number[] = [];
        const read: number[] = [];
        let last = "";
        for (let p = 0; p < o.probes; p++) {
          const t = performance.now();
          const inv = await svc.client.ok("POST", `/v1/endpoints/${endpoint}/invocations`, {
            inputLocation: input,
          });
          accept.push(performance.now() - t);
          last = inv.inferenceId;
        }
        let position = 0;
        for (let p = 0; p < o.probes; p++) {
          const t = performance.now();
          position = (await svc.client.ok("GET", `/v1/invocations/${last}`)).queuePosition;
          read.push(performance.now() - t);
        }
        const burst = await submitAll(svc.client, endpoint, input, o.acceptRequests, o.concurrency);
        const resumedAt = Date.now();
        process.kill(server, "SIGCONT");
        resumed = true;
        await drained(svc.client, endpoint);
        const done = await allInvocations(svc.client, endpoint);
        const finished = done.map((d) => Date.parse(d.timing.finishedAt));
        const dispatch = done
          .filter((d) => d.state === "Succeeded")
          .map((d) => Date.parse(d.timing.finishedAt) - Date.parse(d.timing.startedAt) - d.timing.modelMs);
        byDepth.push({
          queued: depth,
          queuePositionRead: position,
          acceptMs: summary(accept),
          readMs: summary(read),
          acceptedPerSecond: round(o.acceptRequests / burst.seconds, 0),
          drained: done.length,
          drainPerSecond: round(done.length / ((Math.max(...finished) - resumedAt) / 1000), 0),
          dispatchOverheadMs: summary(dispatch),
          failed: done.filter((d) => d.state !== "Succeeded").length,
        });
      } finally {
        if (!resumed) process.kill(server, "SIGCONT");
      }
      await svc.client.ok("DELETE", `/v1/endpoints/${endpoint}`);
    }
    await svc.client.endpoint("files", noop, { instances: 1, maxConcurrent: 1 });
    const byLength = [];
    for (const seconds of o.lengths) {
      o.log(`growth: ${seconds} s file`);
      const path = join(o.tmp, `growth-${seconds}s.wav`);
      writeNoise(path, seconds);
      const bytes = statSync(path).size;
      let rssPeak = 0;
      const sample = () => (rssPeak = Math.max(rssPeak, memoryOf(svc.pid)?.rssMiB ?? 0));
      sample();
      const sampler = setInterval(sample, 50);
      try {
        const t0 = performance.now();
        const loc = await svc.client.put("bench", `file-${seconds}.wav`, createReadStream(path), "audio/wav");
        const t1 = performance.now();
        const accepted = await svc.client.ok("POST", "/v1/endpoints/files/invocations", {
          inputLocation: loc,
        });
        const inv = await svc.client.waitTerminal(accepted.inferenceId);
        if (inv.state !== "Succeeded")
          throw new Error(`growth: ${seconds} s file ${inv.state}: ${inv.error?.message}`);
        sample();
        const total = Date.parse(inv.timing.finishedAt) - Date.parse(inv.timing.createdAt);
        byLength.push({
          seconds,
          megabytes: round(bytes / 1e6, 1),
          uploadMs: round(t1 - t0, 1),
          overheadMs: total - inv.timing.modelMs,
          enqueueToStartMs: Date.parse(inv.timing.startedAt) - Date.parse(inv.timing.createdAt),
          serviceRssPeakMiB: round(rssPeak, 1),
        });
      } finally {
        clearInterval(sampler);
      }
    }
    const xsD = byDepth.map((d) => Math.max(1, d.queued));
    const xsL = byLength.map((l) => l.seconds);
    return {
      probes: o.probes,
      byDepth,
      byLength,
      growth: {
        acceptP50VsDepth: growth(
          xsD,
          byDepth.map((d) => d.acceptMs.p50),
        ),
        readP50VsDepth: growth(
          xsD,
          byDepth.map((d) => d.readMs.p50),
        ),
        acceptsPerSecondVsDepth: growth(
          xsD,
          byDepth.map((d) => d.acceptedPerSecond),
        ),
        dispatchP50VsDepth: growth(
          xsD,
          byDepth.map((d) => Math.max(1, d.dispatchOverheadMs.p50)),
        ),
        overheadVsLength: growth(
          xsL,
          byLength.map((l) => Math.max(1, l.overheadMs)),
        ),
        uploadVsLength: growth(
          xsL,
          byLength.map((l) => l.uploadMs),
        ),
        serviceRssVsLength: growth(
          xsL,
          byLength.map((l) => l.serviceRssPeakMiB),
        ),
      },
    };
  } finally {
    await svc.stop();
  }
}
