import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createKey } from "../../src/auth/keys.js";
import { Api, noopModelServer, startTestServer, waitFor } from "../helpers/server.js";

/**
 * Multi-file jobs through the native API, on a real server whose endpoints run the no-op model server (it
 * answers each file with the SHA-256 of what it received, so every file's result can be told apart).
 * KIKITORI_TEST_BACKEND=postgres runs it on PostgreSQL; the store contract (test/queue) covers both.
 */
let k: Awaited<ReturnType<typeof startTestServer>>;
let alice: Api;
let bob: Api;
let alicePrefix: string;
const MAX_FILES = 5;

const audio = (n: number) => Buffer.from(`RIFF-not-really-audio-${n}-`.repeat(50 + n));
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

before(async () => {
  k = await startTestServer({ auth: { mode: "keys" }, maxJobFiles: MAX_FILES });
  alice = new Api(k.url, (await createKey(k.keys, { name: "alice", scope: "invoke" })).token);
  bob = new Api(k.url, (await createKey(k.keys, { name: "bob", scope: "invoke" })).token);
  alicePrefix = (await alice.ok("GET", "/v1/auth/whoami")).uploadPrefix;
  await k.api.endpoint(
    "noop",
    { image: `local:${noopModelServer}`, environment: { NOOP_DELAY_MS: "100" } },
    { maxConcurrentInvocationsPerInstance: 2 },
  );
  // One slot and a slow model: work queues behind the file in flight.
  await k.api.endpoint(
    "slow",
    { image: `local:${noopModelServer}`, environment: { NOOP_DELAY_MS: "2500" } },
    { maxConcurrentInvocationsPerInstance: 1 },
  );
});
after(() => k.close());

async function waitJob(api: Api, id: string, done: (job: any) => boolean, what: string) {
  let job: any;
  await waitFor(
    async () => {
      job = await api.ok("GET", `/v1/jobs/${id}`);
      return done(job);
    },
    30_000,
    what,
  );
  return job;
}

test("a job of three files: one id, each file an invocation, per-file results, derived state", async () => {
  const data = [audio(1), audio(2), audio(3)];
  const uris = await Promise.all(
    data.map((d, i) => k.api.put("kikitori", `in/job/${i}.wav`, d, "audio/wav")),
  );
  const res = await k.api.call("POST", "/v1/jobs", {
    endpoint: "noop",
    inputs: [{ uri: uris[0] }, { uri: uris[1], name: "second take" }, { uri: uris[2] }],
    options: { language: "en" },
  });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  const accepted = res.body;
  assert.match(accepted.id, /^[0-9a-f-]{36}$/);
  assert.ok(["queued", "running"].includes(accepted.state), accepted.state);
  assert.deepEqual(
    accepted.files.map((f: any) => [f.index, f.name, f.inferenceId]),
    [
      [0, "0.wav", `${accepted.id}-0`],
      [1, "second take", `${accepted.id}-1`],
      [2, "2.wav", `${accepted.id}-2`],
    ],
  );

  const job = await waitJob(k.api, accepted.id, (j) => j.state === "completed", "the job to complete");
  assert.deepEqual(job.counts, { queued: 0, running: 0, succeeded: 3, failed: 0, expired: 0, cancelled: 0 });
  assert.deepEqual(job.progress, { filesDone: 3, filesTotal: 3, percent: 100 });
  assert.equal(job.eta, undefined);
  assert.ok(Date.parse(job.finishedAt) >= Date.parse(job.createdAt));
  for (const [i, f] of job.files.entries()) {
    assert.equal(f.state, "Succeeded");
    assert.ok(f.outputLocation.includes(`/${job.id}/`), "a job's results lie together");
    // Each file's own result, in its place: the model server saw that file's bytes and the job's options.
    const r = await k.api.ok("GET", f.result);
    assert.equal(r.sha256, sha(data[i]!), `file ${i}`);
    assert.match(r.customAttributes, /language=en/);
    // Each file is an ordinary invocation.
    assert.equal((await k.api.ok("GET", `/v1/invocations/${f.inferenceId}`)).state, "Succeeded");
  }
  const list = await k.api.ok("GET", "/v1/jobs?limit=1");
  assert.equal(list.jobs[0].id, job.id);
  assert.equal(list.jobs[0].state, "completed");
  assert.equal(list.jobs[0].files, 3);
  assert.ok(list.next, "a full page has a cursor");
});

test("one bad entry refuses the whole job, naming it; nothing is queued", async () => {
  const good = await k.api.put("kikitori", "in/good.wav", audio(4));
  const empty = await k.api.put("kikitori", "in/empty.wav", Buffer.alloc(0));
  const before = (await k.api.ok("GET", "/v1/invocations?endpoint=noop&limit=1000")).invocations.length;
  const jobsBefore = (await k.api.ok("GET", "/v1/jobs")).jobs.length;
  const r = await k.api.call("POST", "/v1/jobs", {
    endpoint: "noop",
    inputs: [{ uri: good }, { uri: "s3://kikitori/in/missing.wav" }, { uri: good }, { uri: empty }],
  });
  assert.equal(r.status, 400, JSON.stringify(r.body));
  assert.match(r.body.error.message, /^inputs\[1\]\.uri: no object at s3:\/\/kikitori\/in\/missing\.wav/);
  assert.match(
    r.body.error.message,
    /inputs\[3\]\.uri: the object at s3:\/\/kikitori\/in\/empty\.wav is empty/,
  );
  assert.match(r.body.error.message, /nothing was queued/);
  const bad = await k.api.call("POST", "/v1/jobs", {
    endpoint: "noop",
    inputs: [{ uri: good }, { uri: "http://x/y" }],
  });
  assert.equal(bad.status, 400);
  assert.match(bad.body.error.message, /^inputs\[1\]\.uri: /);
  // The job's own fields are named as such.
  const noEndpoint = await k.api.call("POST", "/v1/jobs", { endpoint: "nope", inputs: [{ uri: good }] });
  assert.equal(noEndpoint.status, 404);
  assert.match(noEndpoint.body.error.message, /Endpoint "nope" does not exist/);
  const tooMany = await k.api.call("POST", "/v1/jobs", {
    endpoint: "noop",
    inputs: Array.from({ length: MAX_FILES + 1 }, () => ({ uri: good })),
  });
  assert.equal(tooMany.status, 400);
  assert.match(tooMany.body.error.message, /^inputs: a job takes at most 5 files \(got 6\)/);
  const none = await k.api.call("POST", "/v1/jobs", { endpoint: "noop", inputs: [] });
  assert.equal(none.status, 400);
  assert.equal(
    (await k.api.ok("GET", "/v1/invocations?endpoint=noop&limit=1000")).invocations.length,
    before,
  );
  assert.equal((await k.api.ok("GET", "/v1/jobs")).jobs.length, jobsBefore);
});

test("cancel: the file running stops, the queued ones end at once; the job is cancelled", async () => {
  const uris = await Promise.all([5, 6, 7].map((n) => k.api.put("kikitori", `in/c${n}.wav`, audio(n))));
  const { id } = await k.api.ok("POST", "/v1/jobs", {
    endpoint: "slow",
    inputs: uris.map((uri) => ({ uri })),
  });
  const running = await waitJob(k.api, id, (j) => j.files[0].state === "Running", "the first file to run");
  assert.equal(running.state, "running");
  assert.equal(running.files[2].state, "Queued");
  const cancelled = await k.api.ok("POST", `/v1/jobs/${id}/cancel`);
  assert.deepEqual(
    cancelled.files.slice(1).map((f: any) => f.state),
    ["Cancelled", "Cancelled"],
  );
  const job = await waitJob(k.api, id, (j) => j.progress.filesDone === 3, "every file to end");
  assert.equal(job.state, "cancelled");
  assert.ok(
    job.files.every((f: any) => f.state === "Cancelled"),
    JSON.stringify(job.files),
  );
  // Each file has its failure document, as any cancelled invocation.
  const doc = await k.api.ok("GET", job.files[2].result).catch((e: Error) => e.message);
  assert.match(String(doc), /422.*Cancelled/);
  // Cancelling again changes nothing.
  assert.equal((await k.api.ok("POST", `/v1/jobs/${id}/cancel`)).state, "cancelled");
});

test("a queued job's estimated finish is the latest of its files'", async () => {
  // The slow endpoint has a pace by now (the cancel test's first file may not have finished: run one).
  const warm = await k.api.put("kikitori", "in/warm.wav", audio(8));
  const w = await k.api.ok("POST", "/v1/endpoints/slow/invocations", { inputLocation: warm });
  await k.api.waitTerminal(w.inferenceId);
  const uris = await Promise.all([9, 10, 11].map((n) => k.api.put("kikitori", `in/e${n}.wav`, audio(n))));
  const job = await k.api.ok("POST", "/v1/jobs", { endpoint: "slow", inputs: uris.map((uri) => ({ uri })) });
  const view = await k.api.ok("GET", `/v1/jobs/${job.id}`);
  const files = await Promise.all(
    view.files.map((f: any) => k.api.ok("GET", `/v1/invocations/${f.inferenceId}`)),
  );
  assert.ok(view.eta, JSON.stringify(view));
  const latest = Math.max(...files.map((f: any) => Date.parse(f.eta)));
  assert.ok(
    Math.abs(Date.parse(view.eta) - latest) < 1000,
    `${view.eta} vs ${new Date(latest).toISOString()}`,
  );
  assert.ok(Date.parse(view.eta) > Date.now());
  await k.api.ok("POST", `/v1/jobs/${job.id}/cancel`);
});

test("multipart: files uploaded in one request become one job; a bad one refuses it, and nothing stays", async () => {
  const data = [audio(12), audio(13)];
  const form = new FormData();
  form.append("endpoint", "noop");
  form.append("options", JSON.stringify({ format: "json" }));
  data.forEach((d, i) => form.append("file", new Blob([d], { type: "audio/wav" }), `talk ${i}.wav`));
  const res = await fetch(`${k.url}/v1/jobs`, { method: "POST", body: form, headers: alice.headers() });
  const accepted = (await res.json()) as any;
  assert.equal(res.status, 202, JSON.stringify(accepted));
  assert.deepEqual(
    accepted.files.map((f: any) => f.name),
    ["talk 0.wav", "talk 1.wav"],
  );
  // Stored under the caller's own prefix, so the caller may read them back.
  assert.ok(
    accepted.files.every((f: any) => f.inputLocation.startsWith(`s3://kikitori/${alicePrefix}jobs/`)),
  );
  const job = await waitJob(alice, accepted.id, (j) => j.state === "completed", "the upload job");
  for (const [i, f] of job.files.entries())
    assert.equal((await alice.ok("GET", f.result)).sha256, sha(data[i]!));

  const bad = new FormData();
  bad.append("endpoint", "noop");
  bad.append("file", new Blob([audio(14)]), "fine.wav");
  bad.append("file", new Blob([]), "empty.wav");
  const refused = await fetch(`${k.url}/v1/jobs`, { method: "POST", body: bad, headers: alice.headers() });
  const body = (await refused.json()) as any;
  assert.equal(refused.status, 400);
  assert.match(body.error.message, /^files\[1\] \(empty\.wav\): the object at s3:\/\/kikitori\/\S+ is empty/);
  const key = /s3:\/\/kikitori\/(\S+)\/1\/empty\.wav/.exec(body.error.message)![1];
  assert.equal(
    (await alice.getObject(`s3://kikitori/${key}/0/fine.wav`)).status,
    404,
    "the good file was removed",
  );
});

test("auth: every job route refuses without credentials; a key sees only its own jobs and objects", async () => {
  const anon = new Api(k.url);
  for (const [method, path] of [
    ["POST", "/v1/jobs"],
    ["GET", "/v1/jobs"],
    ["GET", "/v1/jobs/x"],
    ["POST", "/v1/jobs/x/cancel"],
  ] as const) {
    const r = await anon.call(method, path, method === "POST" ? {} : undefined);
    assert.equal(r.status, 401, `${method} ${path}`);
    assert.equal(r.body.error.code, "MissingCredentials");
  }
  const own = await alice.put("kikitori", `${alicePrefix}mine.wav`, audio(15));
  const { id } = await alice.ok("POST", "/v1/jobs", { endpoint: "noop", inputs: [{ uri: own }] });
  // Another key's job does not exist for it, not in the list either; an admin sees every job.
  assert.equal((await bob.call("GET", `/v1/jobs/${id}`)).status, 404);
  assert.equal((await bob.call("POST", `/v1/jobs/${id}/cancel`)).status, 404);
  assert.ok(!(await bob.ok("GET", "/v1/jobs")).jobs.some((j: any) => j.id === id));
  assert.ok((await alice.ok("GET", "/v1/jobs")).jobs.some((j: any) => j.id === id));
  assert.equal((await k.api.ok("GET", `/v1/jobs/${id}`)).id, id);
  // An invoke key may not make a job of objects outside its prefix; the entry is named.
  const other = await bob.call("POST", "/v1/jobs", { endpoint: "noop", inputs: [{ uri: own }] });
  assert.equal(other.status, 403);
  assert.match(
    other.body.error.message,
    /^inputs\[0\]\.uri: a key of scope "invoke" may only use objects under uploads\//,
  );
});
