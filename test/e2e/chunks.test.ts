/**
 * One long file across many instances, end to end with the real parts (HTTP, each store backend, the
 * built-in Whisper server as processes, tiny.en and the Silero VAD model): the file is planned by the
 * instance that leases it, its chunks are decoded by every idle instance of the endpoint, and the stitched
 * transcript is the one a single instance makes. Cancel stops all chunks. (Resume after a kill -9 of an
 * instance or of the service: resume.test.ts.)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { modelPath } from "../helpers/fixtures.js";
import { longFile, noLongFileModels as skip, vadModel } from "../helpers/long-file.js";
import { forEachBackend } from "../helpers/backends.js";
import { startTestServer, waitFor } from "../helpers/server.js";

const environment = { KIKITORI_MODEL_FILE: modelPath, KIKITORI_VAD_MODEL: vadModel, KIKITORI_THREADS: "1" };
const words = (text: string) => text.toLowerCase().match(/[a-z0-9']+/g) ?? [];

forEachBackend((backend) => {
  test(
    `${backend}: two instances decode the chunks of one file; the stitched transcript is a single instance's`,
    { skip },
    async (t) => {
      const k = await startTestServer({ modelsDir: join(modelPath, "..") }, backend);
      try {
        // Which instance leased how many chunks (observed on the real method, which still does the work).
        const leased = new Map<string, number>();
        const leaseChunks = k.service.leaseChunks.bind(k.service);
        k.service.leaseChunks = async (endpoint, variant, owner, max, leaseMs) => {
          const got = await leaseChunks(endpoint, variant, owner, max, leaseMs);
          if (endpoint === "pair") leased.set(owner, (leased.get(owner) ?? 0) + got.length);
          return got;
        };
        const image = "kikitori/whisper";
        await k.api.endpoint("pair", { image, environment }, { initialInstanceCount: 2 });
        await k.api.endpoint("solo", { image, environment }, { initialInstanceCount: 1 });
        const input = await k.api.put("kikitori", "chunks/long.wav", readFileSync(longFile()), "audio/wav");
        const run = async (endpoint: string, format: string) => {
          const { inferenceId } = await k.api.ok("POST", `/v1/endpoints/${endpoint}/invocations`, {
            inputLocation: input,
            contentType: "audio/wav",
            options: { language: "en", format },
          });
          const view = await k.api.waitTerminal(inferenceId as string, 300_000);
          assert.equal(view.state, "Succeeded", JSON.stringify(view.error));
          return (await k.api.getObject(view.outputLocation)).text;
        };

        const pair = JSON.parse(await run("pair", "json"));
        t.diagnostic(`chunks leased per instance: ${JSON.stringify([...leased.values()])}`);
        assert.equal(leased.size, 2, "both instances decoded chunks");
        assert.ok([...leased.values()].every((n) => n >= 1));
        assert.ok(pair.speech.chunks >= 3, JSON.stringify(pair.speech));
        assert.equal(
          [...leased.values()].reduce((a, b) => a + b, 0),
          pair.speech.chunks,
          "each chunk decoded once",
        );
        // Stitched: ids continuous, times monotonic and within the file.
        const segs = pair.segments as { id: number; start: number; end: number; text: string }[];
        assert.deepEqual(
          segs.map((s) => s.id),
          segs.map((_, i) => i),
        );
        for (let i = 0; i < segs.length; i++) {
          assert.ok(segs[i]!.start <= segs[i]!.end && segs[i]!.end <= pair.duration, JSON.stringify(segs[i]));
          if (i > 0) assert.ok(segs[i]!.start >= segs[i - 1]!.start, `segment ${i} starts before ${i - 1}`);
        }
        assert.ok(segs.at(-1)!.end > pair.duration - 20, "the last segment lies near the end of the file");

        // One instance, as subtitles: the same words, cues numbered 1..n.
        const srt = await run("solo", "srt");
        const cues = srt.trim().split(/\n\s*\n/);
        assert.deepEqual(
          cues.map((c) => Number(c.split("\n")[0])),
          cues.map((_, i) => i + 1),
        );
        const srtText = cues.map((c) => c.split("\n").slice(2).join(" ")).join(" ");
        assert.deepEqual(words(srtText), words(pair.text), "the same words on one instance and on two");
      } finally {
        await k.close();
      }
    },
  );
});

test("cancel stops every chunk of a long file, and its audio is removed", { skip }, async () => {
  const k = await startTestServer({ modelsDir: join(modelPath, "..") });
  try {
    await k.api.endpoint("whisper", { image: "kikitori/whisper", environment }, { initialInstanceCount: 2 });
    const input = await k.api.put("kikitori", "chunks/long.wav", readFileSync(longFile()), "audio/wav");
    const { inferenceId: id } = await k.api.ok("POST", "/v1/endpoints/whisper/invocations", {
      inputLocation: input,
      contentType: "audio/wav",
    });
    // At least one: two instances may finish their first chunks between two polls.
    await waitFor(async () => ((await k.service.chunkProgress(id))?.done ?? 0) >= 1, 300_000, "a chunk done");
    const before = await k.service.chunkProgress(id);
    assert.ok(before && before.chunks >= 3 && before.done < before.chunks, JSON.stringify(before));
    await k.api.ok("POST", `/v1/invocations/${id}/cancel`);
    const view = await k.api.waitTerminal(id, 30_000);
    assert.equal(view.state, "Cancelled");
    assert.equal(await k.service.chunkProgress(id), undefined, "its chunks are gone");
    await waitFor(
      () => k.manager.instancesOf("whisper").every((i) => i.inFlight === 0),
      10_000,
      "idle instances",
    );
    const work = await k.api.getObject(`s3://kikitori/.kikitori/work/${id}.pcm`);
    assert.equal(work.status, 404, "the planned audio is deleted");
  } finally {
    await k.close();
  }
});
