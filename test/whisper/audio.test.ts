import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createReadStream } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, describe, it } from "node:test";
import { AudioDecodeError, openAudio, type AudioWindow } from "../../src/whisper/audio.js";
import { hasSound, quietestCut } from "../../src/whisper/energy.js";
import { ffmpeg, sox, tempDir, testdata } from "../helpers/fixtures.js";

async function collect(
  input: string | Readable,
  windowSeconds = 300,
  cutSearchSeconds = 10,
): Promise<AudioWindow[]> {
  const out: AudioWindow[] = [];
  for await (const w of await openAudio(input, { windowSeconds, cutSearchSeconds })) out.push(w);
  return out;
}

const seconds = (ws: AudioWindow[]) => ws.reduce((n, w) => n + w.samples.length, 0) / 16000;

describe("openAudio", () => {
  for (const name of [
    "jfk.wav",
    "jfk.flac",
    "jfk.mp3",
    "jfk.m4a",
    "fleurs-en-008.ogg",
    "stereo_diarization.wav",
  ]) {
    it(`decodes ${name} from a path and from a stream to the same 16 kHz mono samples`, async () => {
      const fromPath = await collect(testdata(name));
      const fromStream = await collect(createReadStream(testdata(name)));
      assert.equal(fromPath.length, 1);
      if (name.endsWith(".wav")) {
        const audio = await openAudio(createReadStream(testdata(name)));
        assert.ok(
          Math.abs(audio.durationSeconds! - seconds(fromPath)) < 0.05,
          "WAV header duration from a stream",
        );
        await audio.close();
      }
      assert.ok(Math.abs(seconds(fromPath) - seconds(fromStream)) < 0.05);
      assert.ok(seconds(fromPath) > 4 && seconds(fromPath) < 12, `${seconds(fromPath)} s`);
    });
  }

  it("decodes an MP4 whose index is at the end from a stream (spooled to disk)", async () => {
    const dir = tempDir();
    const m4a = join(dir, "moov-at-end.m4a");
    ffmpeg(["-i", testdata("jfk.wav"), "-c:a", "aac", m4a]);
    const ws = await collect(createReadStream(m4a));
    assert.ok(Math.abs(seconds(ws) - 11) < 0.1);
  });

  it("cuts windows at quiet points near the window end, losing no samples", async () => {
    const audio = await openAudio(testdata("jfk.wav"), { windowSeconds: 4, cutSearchSeconds: 1.5 });
    assert.equal(audio.durationSeconds, 11);
    const ws: AudioWindow[] = [];
    for await (const w of audio) ws.push(w);
    assert.equal(seconds(ws), 11);
    let expectedStart = 0;
    for (const w of ws.slice(0, -1)) {
      assert.equal(w.startSeconds, expectedStart);
      assert.ok(w.samples.length / 16000 >= 2.5 && w.samples.length / 16000 <= 4);
      expectedStart += w.samples.length / 16000;
    }
  });

  it("streams long input in bounded windows", async () => {
    // 12 minutes of tone from ffmpeg's generator, through a pipe: never more than one window held.
    const gen = spawn(
      "ffmpeg",
      ["-loglevel", "error", "-f", "lavfi", "-i", "sine=f=440:d=720:r=8000", "-f", "wav", "pipe:1"],
      {
        stdio: ["ignore", "pipe", "ignore"],
      },
    );
    const audio = await openAudio(gen.stdout, { windowSeconds: 300, cutSearchSeconds: 10 });
    let total = 0;
    let longest = 0;
    for await (const w of audio) {
      total += w.samples.length;
      longest = Math.max(longest, w.samples.length);
    }
    assert.equal(total / 16000, 720);
    assert.ok(longest <= 300 * 16000);
  });

  const bad: Array<[string, Buffer, RegExp]> = [
    [
      "a PNG named .wav",
      Buffer.from("89504e470d0a1a0a0000000d4948445200000001", "hex"),
      /no audio stream|Invalid data/,
    ],
    ["0 bytes", Buffer.alloc(0), /empty \(0 bytes\)/],
    [
      "random bytes",
      Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 251)),
      /cannot decode audio: ./,
    ],
  ];
  for (const [what, data, reason] of bad) {
    it(`rejects ${what} with AudioDecodeError and ffmpeg's reason, from a path and a stream`, async () => {
      const dir = tempDir();
      const path = join(dir, "input.wav");
      await writeFile(path, data);
      for (const input of [path, Readable.from([data])]) {
        await assert.rejects(
          collect(input),
          (e: unknown) => e instanceof AudioDecodeError && reason.test(e.message),
        );
      }
    });
  }

  it("rejects a truncated mp3 (header only) with the reason", async () => {
    const dir = tempDir();
    const path = join(dir, "truncated.mp3");
    await writeFile(path, (await readFile(testdata("jfk.mp3"))).subarray(0, 300));
    await assert.rejects(collect(path), (e: unknown) => e instanceof AudioDecodeError && e.reason.length > 0);
  });

  it("stops decoding promptly when aborted", async () => {
    // An endless tone: only the abort can end this iteration.
    const gen = spawn(
      "ffmpeg",
      ["-loglevel", "error", "-f", "lavfi", "-i", "sine=f=440:r=8000", "-f", "wav", "pipe:1"],
      {
        stdio: ["ignore", "pipe", "ignore"],
      },
    );
    after(() => void gen.kill("SIGKILL"));
    const ac = new AbortController();
    const audio = await openAudio(gen.stdout, { windowSeconds: 5, cutSearchSeconds: 1, signal: ac.signal });
    let windows = 0;
    let abortedAt = 0;
    await assert.rejects(
      (async () => {
        for await (const _ of audio) {
          if (++windows === 2) {
            abortedAt = Date.now();
            ac.abort(new Error("stop"));
          }
        }
      })(),
      /stop/,
    );
    assert.ok(Date.now() - abortedAt < 1000);
  });
});

describe("energy", () => {
  it("finds the quiet gap and gates silence", () => {
    const pcm = new Int16Array(16000 * 3);
    for (let i = 0; i < pcm.length; i++)
      pcm[i] = i >= 16000 && i < 32000 ? 0 : Math.round(8000 * Math.sin(i / 5));
    const cut = quietestCut(pcm, 0, pcm.length);
    assert.ok(cut >= 16000 && cut < 32000, `cut at ${cut}`);
    assert.equal(hasSound(new Int16Array(16000 * 60)), false);
    assert.equal(hasSound(pcm), true);
  });

  it("gates silence and steady noise, but not quiet speech", async () => {
    const dir = tempDir();
    const gated = async (path: string) => hasSound((await collect(path))[0]!.samples);
    const silence = join(dir, "silence.wav");
    sox(["-n", "-r", "16000", "-c", "1", silence, "trim", "0", "5"]);
    assert.equal(await gated(silence), false);
    const noise = join(dir, "noise.wav");
    sox(["-n", "-r", "16000", "-c", "1", noise, "synth", "5", "whitenoise", "vol", "0.02"]);
    assert.equal(await gated(noise), false);
    // This FLEURS clip peaks near -50 dBFS: an absolute threshold would drop it.
    assert.equal(await gated(testdata("fleurs-en-004.ogg")), true);
  });
});
