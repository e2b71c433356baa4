/**
 * Scale-from-zero: the time from an asynchronous invocation at zero instances to the instance being
 * InService, and to the result, through the real path (queue → autoscaler step policy on
 * HasBacklogWithoutCapacity → instance manager → model server process → /ping → runner → output).
 * Runs the no-op model server and, when ~/.cache/kikitori/models/ggml-tiny.en.bin exists, the built-in
 * Whisper server with tiny.en on a short espeak-ng clip. Each run uses a fresh endpoint at zero
 * instances (the model file is already in the page cache after the first). Target: ≤ 1.5 s to InService.
 * Writes bench/results/scale-from-zero.json and prints it.
 *
 *   node --import tsx bench/scale-from-zero.ts [--runs 3] [--noop-only] [--out bench/results/scale-from-zero.json]
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { loadConfig, modelFile } from "../src/config.js";
import { startKikitori, type Kikitori } from "../src/main.js";

const root = resolve(fileURLToPath(new URL("..", import.meta.url)));
const { values: args } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    "noop-only": { type: "boolean", default: false },
    out: { type: "string", default: join(root, "bench", "results", "scale-from-zero.json") },
  },
});
const runs = Number(args.runs);
const NS = { ServiceNamespace: "sagemaker", ScalableDimension: "sagemaker:variant:DesiredInstanceCount" };

interface Run {
  toInServiceMs: number;
  toResultMs: number;
}

async function once(
  k: Kikitori,
  name: string,
  image: string,
  input: string,
  contentType: string,
): Promise<Run> {
  const { service, autoscaler } = k;
  await service.createModel({ name, image, environment: {} });
  await service.createEndpointConfig({
    name,
    variants: [{ modelName: name, initialInstanceCount: 0 }],
    asyncConfig: { maxConcurrentInvocationsPerInstance: 1 },
  });
  await service.createEndpoint({ name, configName: name });
  const ResourceId = `endpoint/${name}/variant/AllTraffic`;
  await autoscaler.registerScalableTarget({ ...NS, ResourceId, MinCapacity: 0, MaxCapacity: 1 });
  await autoscaler.putScalingPolicy({
    ...NS,
    ResourceId,
    PolicyName: "wake",
    PolicyType: "StepScaling",
    StepScalingPolicyConfiguration: {
      AdjustmentType: "ChangeInCapacity",
      StepAdjustments: [{ MetricIntervalLowerBound: 0, ScalingAdjustment: 1 }],
    },
  });
  while ((await service.getEndpoint(name)).status !== "InService") await sleep(10);
  await sleep(300);
  if (k.manager.instancesOf(name).length) throw new Error(`${name}: expected zero instances`);
  const t0 = performance.now();
  const inv = await service.invokeAsync({ endpoint: name, inputLocation: input, contentType });
  let toInServiceMs = 0;
  for (;;) {
    const now = performance.now();
    if (!toInServiceMs && k.manager.instancesOf(name).some((i) => i.state === "InService"))
      toInServiceMs = now - t0;
    const cur = await service.getInvocation(inv.id);
    if (cur && !["Queued", "Running"].includes(cur.state)) {
      if (cur.state !== "Succeeded") throw new Error(`${name}: ${cur.state}: ${cur.error?.message}`);
      if (!toInServiceMs) toInServiceMs = now - t0;
      await service.deleteEndpoint(name);
      return { toInServiceMs: Math.round(toInServiceMs), toResultMs: Math.round(now - t0) };
    }
    if (now - t0 > 60_000) throw new Error(`${name}: no result within 60 s`);
    await sleep(2);
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const dir = mkdtempSync(join(tmpdir(), "kk-bench-"));
const config = loadConfig({
  dataDir: dir,
  port: 0,
  log: false,
  localImages: { allowAll: false, commands: [join(root, "test", "fixtures", "noop-model-server.mjs")] },
});
const k = await startKikitori(config);
const results: Record<string, unknown> = {};
try {
  await k.service.objects.createBucket("bench").catch(() => {});
  await k.service.objects.putObject("bench", "noop.bin", Buffer.from("abc"));
  const setups: { label: string; image: string; input: string; contentType: string }[] = [
    {
      label: "noop (local-command model server)",
      image: `local:${join(root, "test", "fixtures", "noop-model-server.mjs")}`,
      input: "s3://bench/noop.bin",
      contentType: "application/octet-stream",
    },
  ];
  if (args["noop-only"]) {
    results["kikitori/whisper tiny.en (builtin)"] = "skipped: --noop-only";
  } else if (existsSync(modelFile(config, "tiny.en"))) {
    const wav = join(dir, "hello.wav");
    execFileSync("espeak-ng", ["-w", wav, "Scaling from zero takes about a second."]);
    await k.service.objects.putObject("bench", "hello.wav", readFileSync(wav));
    setups.push({
      label: "kikitori/whisper tiny.en (builtin)",
      image: "kikitori/whisper",
      input: "s3://bench/hello.wav",
      contentType: "audio/wav",
    });
  } else {
    results["kikitori/whisper tiny.en (builtin)"] = `skipped: ${modelFile(config, "tiny.en")} does not exist`;
  }
  for (const s of setups) {
    const all: Run[] = [];
    for (let i = 0; i < runs; i++)
      all.push(await once(k, `b${setups.indexOf(s)}-${i}`, s.image, s.input, s.contentType));
    results[s.label] = {
      runs: all,
      medianToInServiceMs: median(all.map((r) => r.toInServiceMs)),
      medianToResultMs: median(all.map((r) => r.toResultMs)),
    };
  }
} finally {
  await k.close();
}
const report = {
  command: `node --import tsx bench/scale-from-zero.ts --runs ${runs}${args["noop-only"] ? " --noop-only" : ""}`,
  date: new Date().toISOString(),
  machine: {
    cores: cpus().length,
    cpuModel:
      /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? cpus()[0]?.model.trim(),
    memoryGiB: Math.round(totalmem() / 1024 ** 3),
    node: process.version,
    note: "shared machine: other processes may have run at the same time",
  },
  targetToInServiceMs: 1500,
  results,
};
mkdirSync(dirname(args.out!), { recursive: true });
writeFileSync(args.out!, JSON.stringify(report, null, 2) + "\n");
console.log(JSON.stringify(report, null, 2));
