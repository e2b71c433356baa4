import { test } from "node:test";
import assert from "node:assert/strict";
import { ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import pg from "pg";
import { freshDatabase, testBackends } from "../helpers/backends.js";
import { MOTO_CREDENTIALS, startMoto } from "../helpers/moto.js";
import { noopModelServer, serveProcess, tempDir, waitFor, type ServeProcess } from "../helpers/server.js";

const TOTAL = 300;
const LEADS = "this process leads the cluster-wide loops";

async function keys(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const out: string[] = [];
  let token: string | undefined;
  do {
    const r = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    out.push(...(r.Contents ?? []).map((o) => o.Key!));
    token = r.NextContinuationToken;
  } while (token);
  return out;
}

test(
  "kill -9 one of two `kikitori serve` on one PostgreSQL database: all 300 end exactly once, one document each; the survivor leads",
  { skip: testBackends().includes("postgres") ? false : "KIKITORI_TEST_BACKEND excludes postgres" },
  async () => {
    // Distributed mode as deployed: state in PostgreSQL, objects in S3 (moto_server), two processes that
    // share nothing else (each its own data directory).
    const moto = await startMoto();
    const db = await freshDatabase("postgres");
    const env = {
      KIKITORI_QUIET: "0",
      KIKITORI_DATABASE_URL: db.config.databaseUrl!,
      KIKITORI_S3_ENDPOINT: moto.endpoint,
      KIKITORI_S3_ACCESS_KEY_ID: MOTO_CREDENTIALS.accessKeyId,
      KIKITORI_S3_SECRET_ACCESS_KEY: MOTO_CREDENTIALS.secretAccessKey,
      KIKITORI_LEASE_MS: "3000",
    };
    const s3 = new S3Client({
      endpoint: moto.endpoint,
      region: "us-east-1",
      credentials: { ...MOTO_CREDENTIALS },
      forcePathStyle: true,
    });
    const procs: ServeProcess[] = [];
    const orphanPids: number[] = [];
    try {
      const a = await serveProcess(tempDir(), env);
      procs.push(a);
      await waitFor(
        () => a.log().includes("leads the cluster-wide loops"),
        15_000,
        "the first process to lead",
      );
      const b = await serveProcess(tempDir(), env);
      procs.push(b);
      await a.api.endpoint(
        "noop",
        { image: `local:${noopModelServer}`, environment: { NOOP_DELAY_MS: "60" } },
        { maxConcurrentInvocationsPerInstance: 2, initialInstanceCount: 2 },
      );
      // Two instances for the cluster: the leader places one on each process (a variant is spread over
      // hosts), and both lease from the one queue.
      const instancesOf = async (p: ServeProcess) =>
        (
          (await b.api.ok("GET", "/v1/endpoints/noop")).instances as {
            node: string;
            state: string;
            pid: number;
          }[]
        ).filter((i) => i.node.includes(`/${p.child.pid}/`) && i.state === "InService");
      await waitFor(
        async () => (await instancesOf(b)).length === 1,
        30_000,
        "the second process's instance InService",
      );
      assert.equal(b.log().includes(LEADS), false, "one leader: the second process follows");

      const input = await a.api.put("inputs", "clip.wav", Buffer.from("some audio"));
      const ids: string[] = [];
      let next = 0;
      await Promise.all(
        Array.from({ length: 8 }, async (_, k) => {
          while (next < TOTAL) {
            next++;
            const r = await procs[k % 2]!.api.call("POST", "/v1/endpoints/noop/invocations", {
              inputLocation: input,
            });
            assert.equal(r.status, 202, JSON.stringify(r.body));
            ids.push(r.body.inferenceId);
          }
        }),
      );
      const succeeded = async () =>
        (await b.api.ok("GET", "/v1/invocations?state=Succeeded&limit=1000")).invocations.length;
      await waitFor(async () => (await succeeded()) >= 40, 60_000, "some to finish before the kill");
      orphanPids.push(...(await instancesOf(a)).map((i) => i.pid));
      const doneAtKill = await succeeded();
      const killedAt = Date.now();
      await a.kill9();

      await waitFor(() => b.log().includes(LEADS), 15_000, "the surviving process to take over leadership");
      const takeoverMs = Date.now() - killedAt;
      console.log(`kill -9 at ${doneAtKill}/${TOTAL} succeeded; the survivor led after ${takeoverMs} ms`);

      await waitFor(async () => (await succeeded()) === TOTAL, 180_000, `all ${TOTAL} to succeed`, 250);
      const all = ids.map(async (id) => b.api.ok("GET", `/v1/invocations/${id}`));
      const invs = await Promise.all(all);
      assert.equal(new Set(ids).size, TOTAL);
      assert.ok(
        invs.every((i) => i.state === "Succeeded"),
        "every accepted invocation succeeded",
      );
      assert.ok(
        invs.some((i) => i.attempts > 1),
        "the killed process's running work was retried by the survivor",
      );

      // Exactly one document each: TOTAL outputs, no failure documents, nothing else under the prefix.
      const outputs = await keys(s3, "kikitori", "async-output/");
      assert.deepEqual(
        outputs.filter((k) => k.endsWith("-error.out")),
        [],
        "no failure document",
      );
      assert.deepEqual(
        new Set(outputs),
        new Set(invs.map((i) => i.outputLocation.replace("s3://kikitori/", ""))),
      );
      // Ended exactly once: one terminal transition (one outbox event) per invocation.
      const client = new pg.Client({ connectionString: db.config.databaseUrl });
      await client.connect();
      try {
        const r = await client.query(
          "SELECT invocation_id, count(*)::int AS n FROM outbox GROUP BY invocation_id",
        );
        assert.equal(r.rows.length, TOTAL);
        assert.ok(
          r.rows.every((row) => row.n === 1),
          "one terminal event per invocation",
        );
      } finally {
        await client.end();
      }
    } finally {
      for (const p of procs) await p.kill9();
      // The killed process's model servers outlive it (as after a real crash); end them here.
      for (const pid of orphanPids) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      s3.destroy();
      await moto.stop();
    }
  },
);
