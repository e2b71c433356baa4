/**
 * Resume after a crash, end to end with the real parts (HTTP, each store backend, the built-in Whisper
 * server as a process, tiny.en and the Silero VAD model): a long file is transcribed once without harm,
 * then again with its instance killed (SIGKILL) past half-way. The file's chunks are rows of the store
 * (chunks.test.ts): the second attempt, on a new instance, finds the plan and the chunks the first one
 * finished, and only the rest are decoded; the transcript is the same as the one made without a crash. Then the same with the service itself killed (SIGKILL) and
 * started again on the same state.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { modelPath } from "../helpers/fixtures.js";
import { longFile, noLongFileModels as skip, vadModel } from "../helpers/long-file.js";
import { forEachBackend, freshDatabase } from "../helpers/backends.js";
import { serveProcess, startTestServer, tempDir, waitFor, type Api } from "../helpers/server.js";

forEachBackend((backend) => {
  test(
    `${backend}: an instance killed past half-way: the next attempt decodes only the chunks left`,
    { skip },
    async (t) => {
      const k = await startTestServer({ modelsDir: join(modelPath, "..") }, backend);
      try {
        await k.api.endpoint("whisper", {
          image: "kikitori/whisper",
          environment: { KIKITORI_MODEL_FILE: modelPath, KIKITORI_VAD_MODEL: vadModel },
        });
        const input = await k.api.put("kikitori", "resume/long.wav", readFileSync(longFile()), "audio/wav");
        const invoke = async () =>
          (
            await k.api.ok("POST", "/v1/endpoints/whisper/invocations", {
              inputLocation: input,
              contentType: "audio/wav",
              options: { language: "en", format: "json" },
            })
          ).inferenceId as string;
        const result = async (id: string) =>
          JSON.parse((await k.api.getObject((await k.api.waitTerminal(id, 300_000)).outputLocation)).text);

        const whole = await result(await invoke());
        assert.ok(whole.speech.chunks >= 3, `chunks: ${JSON.stringify(whole.speech)}`);
        assert.equal(whole.speech.resumed, 0);

        const id = await invoke();
        await waitFor(
          async () => ((await k.api.ok("GET", `/v1/invocations/${id}`)).progress?.percent ?? 0) >= 55,
          300_000,
          "the second run past 55 %",
        );
        const [instance] = (await k.api.ok("GET", "/v1/endpoints/whisper")).instances;
        process.kill(instance.pid, "SIGKILL");
        const view = await k.api.waitTerminal(id, 300_000);
        assert.equal(view.state, "Succeeded", JSON.stringify(view.error));
        assert.equal(view.attempts, 2, "the crash cost one attempt");
        const resumed = JSON.parse((await k.api.getObject(view.outputLocation)).text);
        t.diagnostic(`chunks ${resumed.speech.chunks}, done before the crash ${resumed.speech.resumed}`);
        assert.ok(
          resumed.speech.resumed >= 0.5 * resumed.speech.chunks,
          `at least half of the chunks were kept from before the crash: ${JSON.stringify(resumed.speech)}`,
        );
        assert.equal(resumed.text, whole.text);
        assert.deepEqual(resumed.segments, whole.segments);
      } finally {
        await k.close();
      }
    },
  );
});

/** Transcribes `input` as json on the built-in endpoint; the invocation id. */
async function invoke(api: Api, input: string): Promise<string> {
  const body = {
    inputLocation: input,
    contentType: "audio/wav",
    options: { language: "en", format: "json" },
  };
  return (await api.ok("POST", "/v1/endpoints/whisper/invocations", body)).inferenceId as string;
}

async function pastHalfWay(api: Api, id: string): Promise<void> {
  await waitFor(
    async () => ((await api.ok("GET", `/v1/invocations/${id}`)).progress?.percent ?? 0) >= 55,
    300_000,
    "the run past 55 %",
  );
}

forEachBackend((backend) => {
  test(
    `${backend}: the service killed past half-way and started again: the chunks done are not decoded again`,
    { skip },
    async (t) => {
      const db = await freshDatabase(backend);
      const env: Record<string, string> = {
        KIKITORI_MODELS: join(modelPath, ".."),
        ...(db.config.databaseUrl ? { KIKITORI_DATABASE_URL: db.config.databaseUrl } : {}),
      };
      const dataDir = tempDir("kk-resume-serve-");
      const first = await serveProcess(dataDir, env);
      let second: Awaited<ReturnType<typeof serveProcess>> | undefined;
      try {
        await first.api.endpoint("whisper", {
          image: "kikitori/whisper",
          environment: { KIKITORI_MODEL_FILE: modelPath, KIKITORI_VAD_MODEL: vadModel },
        });
        const input = await first.api.put(
          "kikitori",
          "resume/long.wav",
          readFileSync(longFile()),
          "audio/wav",
        );
        const id = await invoke(first.api, input);
        await pastHalfWay(first.api, id);
        await first.kill9();

        second = await serveProcess(dataDir, env);
        const view = await second.api.waitTerminal(id, 300_000);
        assert.equal(view.state, "Succeeded", JSON.stringify(view.error));
        const resumed = JSON.parse((await second.api.getObject(view.outputLocation)).text);
        t.diagnostic(`chunks ${resumed.speech.chunks}, done before the crash ${resumed.speech.resumed}`);
        assert.ok(
          resumed.speech.resumed >= 0.5 * resumed.speech.chunks,
          `at least half of the chunks were kept from before the crash: ${JSON.stringify(resumed.speech)}`,
        );
        // The same file again, uninterrupted, on the restarted service.
        const whole = await second.api.waitTerminal(await invoke(second.api, input), 300_000);
        const reference = JSON.parse((await second.api.getObject(whole.outputLocation)).text);
        assert.equal(reference.speech.resumed, 0);
        assert.equal(resumed.text, reference.text);
        assert.deepEqual(resumed.segments, reference.segments);
      } finally {
        await first.kill9();
        await second?.kill9();
      }
    },
  );
});
