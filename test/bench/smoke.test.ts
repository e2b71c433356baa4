/**
 * The benchmark suite in smoke mode (bench/run.ts --smoke), so it cannot rot: it must run end to end
 * into a temporary results directory, and every result file must hold finite, ordered figures.
 * Parts whose inputs are missing (tiny.en model, CTranslate2 weights) are skipped by the suite with
 * a note; the platform, scale-from-zero and growth parts need nothing but the repository.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const root = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const out = mkdtempSync(join(tmpdir(), "kk-bench-smoke-"));
const read = (name: string) => JSON.parse(readFileSync(join(out, `${name}.json`), "utf8"));

function assertSummary(s: any, what: string) {
  for (const k of ["p50", "p99", "min", "max", "mean"])
    assert.ok(
      Number.isFinite(s?.[k]) && s[k] >= 0,
      `${what}.${k} is a finite non-negative number: ${s?.[k]}`,
    );
  assert.ok(s.p99 >= s.p50, `${what}: p99 ${s.p99} ≥ p50 ${s.p50}`);
  assert.ok(s.n > 0, `${what}: has samples`);
}

function assertHeader(r: any, name: string) {
  assert.equal(r.error, undefined, `${name}: the part failed: ${r.error}`);
  assert.equal(r.mode, "smoke");
  assert.match(r.command, /npm run bench -- --smoke/);
  assert.ok(!Number.isNaN(Date.parse(r.date)), `${name}: date`);
  assert.ok(r.machine.cores > 0 && r.machine.cpuModel, `${name}: machine`);
}

describe("bench suite, smoke mode", { timeout: 540_000 }, () => {
  before(async () => {
    await promisify(execFile)(
      process.execPath,
      ["--import", "tsx", "bench/run.ts", "--smoke", "--out", out],
      {
        cwd: root,
        timeout: 520_000,
      },
    );
  });
  after(() => rmSync(out, { recursive: true, force: true }));

  it("platform: latency and throughput on the no-op model server, on SQLite and PostgreSQL", () => {
    const r = read("platform");
    assertHeader(r, "platform");
    assert.equal(r.store, "SQLite (WAL) and PostgreSQL, side by side");
    assert.match(r.postgres.database, /^PostgreSQL \d+/);
    for (const [name, on] of [
      ["sqlite", r],
      ["postgres", r.postgres],
    ]) {
      for (const k of ["enqueueToStartMs", "overheadMs", "totalMs", "acceptMs", "clientOverheadMs"])
        assertSummary(on.noopLatency[k], `${name} noopLatency.${k}`);
      assert.ok(on.noopLatency.overheadMs.p50 <= on.noopLatency.totalMs.p50, "overhead is part of the total");
      const t = on.noopThroughput;
      assert.ok(Number.isFinite(t.acceptedPerSecond) && t.acceptedPerSecond > 0, `${name} accepted/s`);
      assert.ok(
        t.completedPerSecond > 0 && t.completedPerSecond <= t.acceptedPerSecond,
        `${name} completed/s ≤ accepted/s`,
      );
      assertSummary(t.acceptMs, `${name} noopThroughput.acceptMs`);
      assert.ok(
        t.firstBurst.acceptedPerSecond > 0 &&
          t.firstBurst.completedPerSecond <= t.firstBurst.acceptedPerSecond,
        `${name}: the first (cold) burst is reported beside the measured one`,
      );
      const a = on.acceptOnly;
      assert.ok(Number.isFinite(a.acceptedPerSecond) && a.acceptedPerSecond > 0, `${name} accept-only /s`);
      assert.equal(
        a.acceptMs.n,
        a.requests,
        `${name}: every request of the busy-endpoint burst was accepted`,
      );
    }
  });

  it("engine speed: RTFx and WER for each configuration, ratios against faster-whisper", (t) => {
    const r = read("engine-speed");
    if (r.skipped) return t.skip(r.skipped);
    assertHeader(r, "engine-speed");
    assert.ok(r.configs.length >= 1);
    for (const c of r.configs) {
      assert.ok(Number.isFinite(c.rtfxMedian) && c.rtfxMedian > 0, `${c.engine}: RTFx ${c.rtfxMedian}`);
      assert.ok(c.rtfxBest >= c.rtfxMedian, `${c.engine}: best RTFx ≥ median`);
      assert.ok(Number.isFinite(c.wer) && c.wer >= 0, `${c.engine}: WER ${c.wer}`);
      assert.ok(c.hypothesis.trim().length > 0, `${c.engine}: transcribed something`);
      // CPU time of the engine's processes (Linux /proc): the engine's own work, so more than nothing.
      assert.ok(c.medianCpuSeconds > 0, `${c.engine}: CPU seconds ${c.medianCpuSeconds}`);
    }
    assert.ok(r.words > 0, `the reference has words: ${r.words}`);
    for (const x of r.ratios) {
      assert.ok(Number.isFinite(x.speedRatio) && x.speedRatio > 0, "speed ratio");
      assert.ok(Number.isFinite(x.cpuRatio) && x.cpuRatio > 0, "CPU ratio");
    }
  });

  it("scale from zero: the no-op model reaches InService and answers", () => {
    const r = read("scale-from-zero");
    assertHeader(r, "scale-from-zero");
    const noop = r.results["noop (local-command model server)"];
    assert.ok(noop.medianToInServiceMs > 0 && noop.medianToResultMs >= noop.medianToInServiceMs);
  });

  it("scale across hosts: one worker host and two, in network namespaces, the same batch", (t) => {
    const r = read("hosts-scale");
    if (r.skipped) return t.skip(r.skipped);
    assertHeader(r, "hosts-scale");
    assert.equal(r.oneHostSeconds.length, r.twoHostsSeconds.length);
    const floor = (r.files * r.workMs) / 1000;
    for (const x of r.oneHostSeconds)
      assert.ok(x >= floor, `one host cannot beat its model work: ${x} ≥ ${floor}`);
    for (const x of r.twoHostsSeconds) assert.ok(x >= floor / 2, `two hosts: ${x} ≥ ${floor / 2}`);
    assert.ok(r.speedup > 1, `two hosts finish the batch sooner than one: ${r.speedup}×`);
  });

  it("long audio: memory readings and a non-empty transcript", (t) => {
    const r = read("long-audio");
    if (r.skipped) return t.skip(r.skipped);
    assertHeader(r, "long-audio");
    assert.ok(
      r.memory.servicePeakMiB > 20 && r.memory.servicePeakMiB < 4096,
      `service peak ${r.memory.servicePeakMiB}`,
    );
    assert.ok(r.memory.instanceProcesses.length >= 1, "the instance's processes were found");
    const k = r.quality.kikitori;
    for (const name of ["pass", "long", "longNoVad", "mixed", "mixedNoVad", "mixedClips"])
      assert.ok(k[name].wer < 1 && k[name].counts.referenceLength > 0, `${name}: ${JSON.stringify(k[name])}`);
    assert.ok(r.rtfx > 0 && Number.isFinite(r.rtfx));
  });

  it("one long file across instances: 1 and 2 instances agree; a kill costs an attempt, not the transcript", (t) => {
    const c = read("long-chunks");
    if (c.skipped) return t.skip(c.skipped);
    assertHeader(c, "long-chunks");
    assert.ok(c.file.chunks >= 2, `chunks: ${JSON.stringify(c.file)}`);
    assert.ok(c.speedUp.ratio > 0 && Number.isFinite(c.speedUp.ratio));
    assert.equal(c.speedUp.identicalWords, true);
    for (const k of ["instanceKilled", "serviceKilled"]) {
      const run = c.resume[k];
      assert.equal(run.attempts, 2, `${k}: ${JSON.stringify(run)}`);
      assert.ok(run.resumedChunks >= 1 && run.sameWords, `${k}: ${JSON.stringify(run)}`);
      assert.ok(run.cpuRatio > 0 && Number.isFinite(run.cpuRatio));
    }
  });

  it("growth: figures per queue depth and per file length, with verdicts", () => {
    const r = read("growth");
    assertHeader(r, "growth");
    assert.deepEqual(
      r.byDepth.map((d: any) => d.queued),
      [1, 10],
    );
    for (const d of r.byDepth) {
      assertSummary(d.acceptMs, `depth ${d.queued} acceptMs`);
      assertSummary(d.readMs, `depth ${d.queued} readMs`);
      assert.equal(d.failed, 0);
      assert.ok(d.drained >= d.queued, "the backlog drained");
    }
    assert.equal(r.byLength.length, 2);
    for (const l of r.byLength) assert.ok(l.serviceRssPeakMiB > 0 && l.overheadMs >= 0);
    for (const g of Object.values(r.growth) as any[])
      assert.match(g.verdict, /flat|sublinear|linear|superlinear/);
  });

  it("renders BENCHMARKS.md with its figures", () => {
    const md = readFileSync(join(out, "BENCHMARKS.md"), "utf8");
    assert.match(md, /## Targets/);
    assert.match(md, /\| SQLite \(WAL\) \| \d+ \|/, "the side-by-side table: SQLite");
    assert.match(md, /\| PostgreSQL \d[^|]* \| \d+ \|/, "and PostgreSQL");
    assert.ok(existsSync(join(out, "figures", "platform-latency.svg")));
    assert.match(
      readFileSync(join(out, "figures", "platform-latency.svg"), "utf8"),
      /^<svg[^>]*>[\s\S]*command: npm run bench/,
    );
  });
});
