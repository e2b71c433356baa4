/**
 * Platform overhead through the real service (`kikitori serve` as a child process; this process is
 * only the client, so the two do not share an event loop), on SQLite and on PostgreSQL side by side:
 *  (a) latency: one-second clips submitted one at a time with free capacity, on the no-op model
 *      server: enqueue→start and end-to-end overhead (total − model time), p50/p99;
 *  (b) throughput: many invocations from concurrent keep-alive clients: accepted/s and completed/s
 *      (the third of three bursts, once V8 has compiled the hot paths; the first is reported beside it);
 *      and the same burst into an endpoint whose one instance is busy, so the service only accepts
 *      (what a burst costs when the model is slow, as real models are);
 *  (c) the same one-second clips on the built-in Whisper server with tiny.en: overhead.
 * Server-side figures come from the invocation record (createdAt, startedAt, finishedAt: millisecond
 * resolution; modelMs from the model server's x-kikitori-model-time-ms); client-side figures use
 * performance.now() around the HTTP calls (they include the long poll that reports the end).
 */
import { existsSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { noopServer, postgresDatabase, serve, sleep, type Client, type ServeChild } from "./lib/service.js";
import { summary, round, type Summary } from "./lib/stats.js";

export interface PlatformOptions {
  /** One-second clips for the latency part (no-op server). */
  clips: number;
  /** Requests and concurrent clients for the throughput part. */
  requests: number;
  concurrency: number;
  /** One-second clips on tiny.en (0 skips); the model file must exist. */
  tinyClips: number;
  modelPath: string;
  /** A one-second 16 kHz WAV. */
  clipPath: string;
  log: (msg: string) => void;
}

export interface LatencyResult {
  clips: number;
  /** Server side (invocation record, ms resolution). */
  enqueueToStartMs: Summary;
  overheadMs: Summary;
  modelMs: Summary;
  totalMs: Summary;
  /** Client side: the POST that enqueues (202), and submit → terminal state seen, minus model time. */
  acceptMs: Summary;
  clientOverheadMs: Summary;
}

const ms = (iso: string | undefined) => (iso ? Date.parse(iso) : NaN);

async function latency(client: Client, endpoint: string, clip: string, n: number, warmup: number) {
  const audio = readFileSync(clip);
  const inputs: string[] = [];
  for (let i = 0; i < n + warmup; i++)
    inputs.push(await client.put("bench", `${endpoint}/clip-${i}.wav`, audio, "audio/wav"));
  const rows: {
    e2s: number;
    overhead: number;
    model: number;
    total: number;
    accept: number;
    client: number;
  }[] = [];
  for (const [i, input] of inputs.entries()) {
    const t0 = performance.now();
    const accepted = await client.ok("POST", `/v1/endpoints/${endpoint}/invocations`, {
      inputLocation: input,
      contentType: "audio/wav",
    });
    const t1 = performance.now();
    const inv = await client.waitTerminal(accepted.inferenceId);
    const t2 = performance.now();
    if (inv.state !== "Succeeded")
      throw new Error(`${endpoint}: invocation ${accepted.inferenceId} ${inv.state}: ${inv.error?.message}`);
    if (i < warmup) continue;
    const model = inv.timing.modelMs as number;
    if (!Number.isFinite(model)) throw new Error(`${endpoint}: the model server reported no model time`);
    const total = ms(inv.timing.finishedAt) - ms(inv.timing.createdAt);
    rows.push({
      e2s: ms(inv.timing.startedAt) - ms(inv.timing.createdAt),
      overhead: total - model,
      model,
      total,
      accept: t1 - t0,
      client: t2 - t0 - model,
    });
  }
  return {
    clips: rows.length,
    enqueueToStartMs: summary(rows.map((r) => r.e2s)),
    overheadMs: summary(rows.map((r) => r.overhead)),
    modelMs: summary(rows.map((r) => r.model)),
    totalMs: summary(rows.map((r) => r.total)),
    acceptMs: summary(rows.map((r) => r.accept)),
    clientOverheadMs: summary(rows.map((r) => r.client)),
  } satisfies LatencyResult;
}

export interface ThroughputResult {
  requests: number;
  concurrency: number;
  instances: number;
  maxConcurrentPerInstance: number;
  acceptedPerSecond: number;
  completedPerSecond: number;
  acceptMs: Summary;
  submitSeconds: number;
  drainSeconds: number;
  /** The same burst into the freshly started service (the first of three; the third is measured). */
  firstBurst: { acceptedPerSecond: number; completedPerSecond: number };
}

export interface AcceptOnlyResult {
  requests: number;
  concurrency: number;
  acceptedPerSecond: number;
  acceptMs: Summary;
}

/** Submits `requests` invocations from `concurrency` keep-alive clients; per-request accept latency. */
export async function submitAll(
  client: Client,
  endpoint: string,
  input: string,
  requests: number,
  concurrency: number,
): Promise<{ acceptMs: number[]; seconds: number }> {
  const acceptMs: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < requests) {
        next++;
        const t = performance.now();
        const r = await client.call("POST", `/v1/endpoints/${endpoint}/invocations`, {
          inputLocation: input,
        });
        if (r.status !== 202) throw new Error(`invoke: ${r.status} ${JSON.stringify(r.body)}`);
        acceptMs.push(performance.now() - t);
      }
    }),
  );
  return { acceptMs, seconds: (performance.now() - t0) / 1000 };
}

/** Waits until the endpoint has nothing queued or running. */
export async function drained(client: Client, endpoint: string): Promise<void> {
  for (;;) {
    const busy = await Promise.all(
      ["Queued", "Running"].map((s) =>
        client.ok("GET", `/v1/invocations?endpoint=${endpoint}&state=${s}&limit=1`),
      ),
    );
    if (busy.every((b) => b.invocations.length === 0)) return;
    await sleep(20);
  }
}

async function throughput(
  client: Client,
  endpoint: string,
  input: string,
  requests: number,
  concurrency: number,
) {
  const t0 = performance.now();
  const submitted = await submitAll(client, endpoint, input, requests, concurrency);
  await drained(client, endpoint);
  const drainSeconds = (performance.now() - t0) / 1000;
  return {
    acceptedPerSecond: round(requests / submitted.seconds, 0),
    completedPerSecond: round(requests / drainSeconds, 0),
    acceptMs: summary(submitted.acceptMs),
    submitSeconds: round(submitted.seconds, 3),
    drainSeconds: round(drainSeconds, 3),
  };
}

export async function runPlatform(o: PlatformOptions) {
  const results: Record<string, unknown> = {
    store: "SQLite (WAL) and PostgreSQL, side by side",
    server: "kikitori serve as a child process",
  };
  const noop = { image: `local:${noopServer}`, environment: { NOOP_DELAY_MS: "0" } };
  // One slot held by an invocation that takes ten minutes: the burst behind it only queues.
  const busy = { image: `local:${noopServer}`, environment: { NOOP_DELAY_MS: "600000" } };
  // The same measurements on each state store, in one run: one service per store, both up at once, and
  // the phases interleaved (latency on each, then throughput on each) so that load on the machine hits both.
  const pg = await postgresDatabase(o.log);
  const stores: { name: "sqlite" | "postgres"; svc: ServeChild }[] = [];
  try {
    stores.push({ name: "sqlite", svc: await serve() });
    if (pg.url) stores.push({ name: "postgres", svc: await serve({ KIKITORI_DATABASE_URL: pg.url }) });
    else results.postgres = { skipped: pg.skipped };
    const instances = 2;
    const maxConcurrentPerInstance = 4;
    const inputs = new Map<string, string>();
    for (const { svc } of stores) {
      await svc.client.endpoint("noop", noop, { instances: 1, maxConcurrent: 4 });
      await svc.client.endpoint("tput", noop, { instances, maxConcurrent: maxConcurrentPerInstance });
      await svc.client.endpoint("busy", busy, { instances: 1, maxConcurrent: 1 });
      inputs.set(svc.url, await svc.client.put("bench", "tput.wav", readFileSync(o.clipPath), "audio/wav"));
    }
    const into = (name: string) =>
      name === "sqlite" ? results : (results.postgres as Record<string, unknown>);
    if (pg.url) results.postgres = { database: pg.version };
    for (const { name, svc } of stores) {
      o.log(`platform (${name}): latency, ${o.clips} clips on the no-op server`);
      into(name).noopLatency = await latency(svc.client, "noop", o.clipPath, o.clips, Math.min(10, o.clips));
    }
    for (const { name, svc } of stores) {
      o.log(`platform (${name}): throughput, ${o.requests} requests from ${o.concurrency} clients`);
      const input = inputs.get(svc.url)!;
      // A fresh process is still compiling its hot paths (V8 tiers up over the first few thousand
      // invocations: bench/cpu-per-invocation.ts). Measured: the third burst; the first is kept beside it.
      const first = await throughput(svc.client, "tput", input, o.requests, o.concurrency);
      await throughput(svc.client, "tput", input, o.requests, o.concurrency);
      into(name).noopThroughput = {
        requests: o.requests,
        concurrency: o.concurrency,
        instances,
        maxConcurrentPerInstance,
        ...(await throughput(svc.client, "tput", input, o.requests, o.concurrency)),
        firstBurst: {
          acceptedPerSecond: first.acceptedPerSecond,
          completedPerSecond: first.completedPerSecond,
        },
      } satisfies ThroughputResult;
    }
    for (const { name, svc } of stores) {
      o.log(`platform (${name}): ${o.requests} requests from ${o.concurrency} clients into a busy endpoint`);
      const input = inputs.get(svc.url)!;
      const submitted = await submitAll(svc.client, "busy", input, o.requests, o.concurrency);
      into(name).acceptOnly = {
        requests: o.requests,
        concurrency: o.concurrency,
        acceptedPerSecond: round(o.requests / submitted.seconds, 0),
        acceptMs: summary(submitted.acceptMs),
      } satisfies AcceptOnlyResult;
      // DeleteEndpoint fails its queue and stops the busy instance.
      await svc.client.ok("DELETE", "/v1/endpoints/busy");
    }
  } finally {
    for (const { svc } of stores) await svc.stop();
    await pg.drop();
  }
  if (o.tinyClips <= 0) results.tinyLatency = { skipped: "no tiny.en clips requested" };
  else if (!existsSync(o.modelPath))
    results.tinyLatency = { skipped: `${o.modelPath} does not exist (scripts/fetch-test-model)` };
  else {
    // The built-in image runs the default model (multilingual base since #13): ask for this file's model.
    const tiny = await serve({
      KIKITORI_MODELS: join(o.modelPath, ".."),
      KIKITORI_DEFAULT_MODEL: basename(o.modelPath)
        .replace(/^ggml-/, "")
        .replace(/\.bin$/, ""),
    });
    try {
      await tiny.client.endpoint("tiny", { image: "kikitori/whisper" }, { instances: 1, maxConcurrent: 1 });
      o.log(`platform: latency, ${o.tinyClips} clips on tiny.en`);
      results.tinyLatency = await latency(tiny.client, "tiny", o.clipPath, o.tinyClips, 1);
    } finally {
      await tiny.stop();
    }
  }
  return results;
}
