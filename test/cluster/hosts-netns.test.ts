import { test } from "node:test";
import type { ChildProcess } from "node:child_process";
import assert from "node:assert/strict";
import { ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { InvokeEndpointCommand, SageMakerRuntimeClient } from "@aws-sdk/client-sagemaker-runtime";
import {
  DescribeEndpointCommand,
  SageMakerClient,
  UpdateEndpointWeightsAndCapacitiesCommand,
} from "@aws-sdk/client-sagemaker";
import pg from "pg";
import { noopModelServer, waitFor } from "../helpers/server.js";
import { MOTO_CREDENTIALS } from "../helpers/moto.js";
import {
  adminKey,
  CLUSTER_CREDENTIALS,
  clusterEnv,
  createNetns,
  kikitoriIn,
  netnsUnavailable,
  startMotoIn,
  startPostgresIn,
} from "../helpers/netns.js";

// Three machines in Linux network namespaces, sharing only the network: PostgreSQL, S3 (moto_server) and
// the API process in one, a worker host in each of the other two. Every kikitori is its own process.
// Coordination is the point, not transcription: the model is the no-op model server (a fixed delay).
const unavailable = netnsUnavailable();

async function kill9(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGKILL");
  await new Promise((r) => child.once("exit", r));
}
const PER_PHASE = 100;

test(
  "two worker hosts and an API in network namespaces: a host killed with -9, a host cut off, an API restarted; every invocation ends exactly once",
  { skip: unavailable ?? false, timeout: 600_000 },
  async () => {
    const n = createNetns(["db", "w1", "w2"]);
    const procs: { child: ChildProcess }[] = [];
    let s3: S3Client | undefined;
    let sm: SageMakerClient | undefined;
    let smr: SageMakerRuntimeClient | undefined;
    try {
      const [databaseUrl, s3Endpoint] = await Promise.all([startPostgresIn(n, "db"), startMotoIn(n, "db")]);
      const key = await adminKey(databaseUrl);
      const env = {
        ...clusterEnv(databaseUrl, s3Endpoint),
        KIKITORI_QUIET: "0",
        KIKITORI_LEASE_MS: "4000",
        KIKITORI_HEARTBEAT_MS: "500",
        KIKITORI_HOST_HEARTBEAT_MS: "500",
        KIKITORI_HOST_TTL_MS: "3000",
        KIKITORI_INSTANCE_SLOTS: "4",
      };
      const startApi = (port: string) =>
        kikitoriIn(n, "db", ["serve", "--role", "api", "--port", port], env, key);
      const startWorker = (ns: string) => kikitoriIn(n, ns, ["worker", "--port", "7601"], env, key);
      let api = await startApi("7600");
      procs.push(api);
      const workers = await Promise.all([startWorker("w1"), startWorker("w2")]);
      procs.push(...workers);
      const hostOf = { w1: workers[0]!, w2: workers[1]! };
      const hostId = async (ns: "w1" | "w2") =>
        ((await hostOf[ns].api.ok("GET", "/health")) as { host: string }).host;
      const ids = { w1: await hostId("w1"), w2: await hostId("w2") };

      s3 = new S3Client({
        endpoint: s3Endpoint,
        region: "us-east-1",
        credentials: { ...MOTO_CREDENTIALS },
        forcePathStyle: true,
      });
      sm = new SageMakerClient({
        endpoint: api.url,
        region: "us-east-1",
        credentials: CLUSTER_CREDENTIALS,
      });
      const db = new pg.Client({ connectionString: databaseUrl });
      await db.connect();
      const q = async <T = Record<string, unknown>>(sql: string, args: unknown[] = []) =>
        (await db.query(sql, args)).rows as T[];

      await api.api.endpoint(
        "noop",
        { image: `local:${noopModelServer}`, environment: { NOOP_DELAY_MS: "600" } },
        { maxConcurrentInvocationsPerInstance: 2, initialInstanceCount: 2 },
      );
      // Spread: one instance on each host, each InService.
      const liveOn = async () => {
        const rows = await q<{ node: string; state: string }>(
          "SELECT node, state FROM instances WHERE endpoint = 'noop' AND state IN ('Pending','InService')",
        );
        const count = (ns: "w1" | "w2") =>
          rows.filter((r) => r.node === ids[ns] && r.state === "InService").length;
        return { w1: count("w1"), w2: count("w2") };
      };
      await waitFor(
        async () => JSON.stringify(await liveOn()) === '{"w1":1,"w2":1}',
        60_000,
        "one instance per host",
      );
      const described = await sm.send(new DescribeEndpointCommand({ EndpointName: "noop" }));
      assert.equal(
        described.ProductionVariants?.[0]?.CurrentInstanceCount,
        2,
        "DescribeEndpoint counts the cluster",
      );
      // Synchronous InvokeEndpoint: the API process has no instance of its own; it streams each request
      // to an InService instance on a worker host, through that host's listener.
      const runtime = (smr = new SageMakerRuntimeClient({
        endpoint: api.url,
        region: "us-east-1",
        credentials: CLUSTER_CREDENTIALS,
      }));
      for (let i = 0; i < 4; i++) {
        const body = `synchronous ${i}`;
        const r = await runtime.send(
          new InvokeEndpointCommand({
            EndpointName: "noop",
            Body: Buffer.from(body),
            ContentType: "audio/wav",
          }),
        );
        assert.equal(r.InvokedProductionVariant, "AllTraffic");
        assert.equal(
          JSON.parse(Buffer.from(r.Body!).toString()).bytes,
          body.length,
          "the model server got the body",
        );
      }
      // A worker's listener serves only the bearer of its host's token (kept in the store).
      const [w1Instance] = await q<{ id: string }>(
        "SELECT id FROM instances WHERE node = $1 AND state = 'InService'",
        [ids.w1],
      );
      const refused = await fetch(`${hostOf.w1.url}/instances/${w1Instance!.id}/invocations`, {
        method: "POST",
        body: "x",
        headers: { authorization: "Bearer not-the-token" },
      });
      assert.equal(refused.status, 401);

      const input = await api.api.put("kikitori", "inputs/clip.wav", Buffer.from("some audio"));
      const submit = async (count: number) => {
        const out: string[] = [];
        for (let i = 0; i < count; i++) {
          const r = await api.api.call("POST", "/v1/endpoints/noop/invocations", { inputLocation: input });
          assert.equal(r.status, 202, JSON.stringify(r.body));
          out.push(r.body.inferenceId as string);
        }
        return out;
      };
      const succeeded = async (of: string[]) =>
        Number(
          (
            await q<{ n: number }>(
              "SELECT count(*)::int AS n FROM invocations WHERE id = ANY($1) AND state = 'Succeeded'",
              [of],
            )
          )[0]!.n,
        );

      // --- Phase 1: kill -9 every process of host w1 mid-run; kill -9 the API and restart it ---
      const phase1 = await submit(PER_PHASE);
      await waitFor(async () => (await succeeded(phase1)) >= 20, 60_000, "20 done before the kill");
      const runningOn = async (host: string) =>
        Number(
          (
            await q<{ n: number }>(
              `SELECT count(*)::int AS n FROM invocations v JOIN instances i ON v.lease_owner = i.id
                WHERE v.state = 'Running' AND i.node = $1`,
              [host],
            )
          )[0]!.n,
        );
      assert.ok((await runningOn(ids.w1)) > 0, "w1 is running work when it is killed");
      const killed = n.killAll("w1");
      const killedAt = Date.now();
      console.log(`kill -9 of host w1 (${killed} processes) at ${await succeeded(phase1)}/${PER_PHASE}`);
      const before = (await api.api.ok("GET", `/v1/invocations/${phase1[50]}`)) as Record<string, unknown>;
      await kill9(api.child);
      api = await startApi("7600");
      procs.push(api);
      const after = (await api.api.ok("GET", `/v1/invocations/${phase1[50]}`)) as Record<string, unknown>;
      assert.equal(
        after.outputLocation,
        before.outputLocation,
        "the restarted API answers for the same invocation",
      );
      // The lost host's instance is placed on the survivor; its leased work is retried there.
      await waitFor(
        async () => (await liveOn()).w2 === 2,
        60_000,
        "the lost host's instance re-placed on w2",
      );
      console.log(`w1's instance InService on w2 ${Date.now() - killedAt} ms after the kill`);
      await waitFor(
        async () => (await succeeded(phase1)) === PER_PHASE,
        120_000,
        "phase 1 all succeeded",
        250,
      );
      const hosts1 = await q<{ id: string; state: string }>("SELECT id, state FROM hosts");
      assert.equal(hosts1.find((h) => h.id === ids.w1)?.state, "Gone", "w1 declared lost");

      // --- Phase 2: w1 back as a new host, a third instance placed on it, then its network cut ---
      const w1b = await startWorker("w1");
      procs.push(w1b);
      const w1bId = ((await w1b.api.ok("GET", "/health")) as { host: string }).host;
      await sm.send(
        new UpdateEndpointWeightsAndCapacitiesCommand({
          EndpointName: "noop",
          DesiredWeightsAndCapacities: [{ VariantName: "AllTraffic", DesiredInstanceCount: 3 }],
        }),
      );
      ids.w1 = w1bId;
      await waitFor(
        async () => JSON.stringify(await liveOn()) === '{"w1":1,"w2":2}',
        60_000,
        "the third instance on w1",
      );
      const phase2 = await submit(PER_PHASE);
      await waitFor(async () => (await succeeded(phase2)) >= 20, 60_000, "20 done before the cut");
      assert.ok((await runningOn(w1bId)) > 0, "w1 is running work when it is cut off");
      n.link("w1", "down");
      const cutAt = Date.now();
      console.log(`w1's network cut at ${await succeeded(phase2)}/${PER_PHASE}`);
      await waitFor(async () => (await liveOn()).w2 === 3, 60_000, "the cut host's instance re-placed on w2");
      console.log(`w1's instance InService on w2 ${Date.now() - cutAt} ms after the cut`);
      await waitFor(
        async () => (await succeeded(phase2)) === PER_PHASE,
        180_000,
        "phase 2 all succeeded",
        250,
      ).catch(async (e: Error) => {
        // Say where the rest are (seen once under load, not reproduced alone): state, attempts, lease owner.
        const rest = await q<Record<string, unknown>>(
          `SELECT state, attempts, lease_owner, count(*)::int AS n FROM invocations
             WHERE id = ANY($1) AND state <> 'Succeeded' GROUP BY 1, 2, 3`,
          [phase2],
        );
        throw new Error(`${e.message}; not succeeded: ${JSON.stringify(rest)}`);
      });
      // The cut host comes back: whatever it still finishes late must not add a document or an end.
      n.link("w1", "up");
      await waitFor(
        async () => (await q("SELECT 1 FROM hosts WHERE id = $1 AND state = 'Ready'", [w1bId])).length === 1,
        60_000,
        "w1 heartbeating again",
      );
      await waitFor(
        async () =>
          (
            await q(
              "SELECT 1 FROM instances WHERE node = $1 AND state IN ('Pending','InService','Draining')",
              [w1bId],
            )
          ).length === 0,
        60_000,
        "w1 drained the instance it lost",
      );

      // --- Exactly once, with one document each ---
      const all = [...phase1, ...phase2];
      const states = await q<{ state: string; attempts: number; output_location: string }>(
        "SELECT state, attempts, output_location FROM invocations WHERE id = ANY($1)",
        [all],
      );
      assert.equal(states.length, 2 * PER_PHASE);
      assert.ok(
        states.every((s) => s.state === "Succeeded"),
        "every accepted invocation succeeded",
      );
      assert.ok(
        states.some((s) => s.attempts > 1),
        "work of the lost hosts was retried elsewhere",
      );
      const ends = await q<{ n: number }>(
        "SELECT count(*)::int AS n FROM outbox WHERE invocation_id = ANY($1) GROUP BY invocation_id",
        [all],
      );
      assert.equal(ends.length, 2 * PER_PHASE);
      assert.ok(
        ends.every((e) => e.n === 1),
        "one terminal event per invocation",
      );
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const r = await s3.send(
          new ListObjectsV2Command({ Bucket: "kikitori", Prefix: "async-output/", ContinuationToken: token }),
        );
        keys.push(...(r.Contents ?? []).map((o) => o.Key!));
        token = r.NextContinuationToken;
      } while (token);
      assert.deepEqual(
        keys.filter((k) => k.endsWith("-error.out")),
        [],
        "no failure document",
      );
      assert.deepEqual(
        new Set(keys),
        new Set(states.map((s) => s.output_location.replace("s3://kikitori/", ""))),
        "exactly the output documents of the accepted invocations",
      );
      await db.end();
    } finally {
      s3?.destroy();
      sm?.destroy();
      smr?.destroy();
      for (const p of procs) await kill9(p.child);
      n.destroy();
    }
  },
);
