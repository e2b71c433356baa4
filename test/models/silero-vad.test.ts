/**
 * The Silero VAD converter against the published whisper.cpp model: converting the silero-vad 6.2.0
 * wheel (downloaded by pip, hash-pinned) must give ggml-silero-v6.2.0.bin byte for byte (its published
 * SHA-256). Needs PyPI, as scripts/fetch-test-model does offline.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { ModelRegistry, sha256File } from "../../src/models/registry.js";
import { SILERO_VAD_MODEL, SILERO_VAD_SHA256 } from "../../src/models/silero-vad.js";
import { tempDir } from "../helpers/fixtures.js";

test(
  "pull converts the silero-vad wheel into the published ggml-silero-v6.2.0.bin, byte for byte",
  { timeout: 300_000 },
  async () => {
    // Nothing listens on port 9 of 127.0.0.1: the public home is unreachable, so the wheel is converted.
    const registry = new ModelRegistry({
      dir: tempDir("kk-vad-pull-"),
      baseUrl: "http://127.0.0.1:9",
      known: { [SILERO_VAD_MODEL]: { sha256: SILERO_VAD_SHA256 } },
    });
    const entry = await registry.pull(SILERO_VAD_MODEL);
    assert.match(entry.source, /^PyPI silero-vad==6\.2\.0, converted \(http:\/\/127\.0\.0\.1:9\//);
    assert.equal(entry.bytes, 885_098);
    assert.equal(await sha256File(entry.file), SILERO_VAD_SHA256);
    // The header whisper.cpp reads: magic, model type, version, window and context sizes.
    const head = await readFile(entry.file);
    assert.equal(head.readUInt32LE(0), 0x67676d6c);
    assert.equal(head.toString("utf8", 8, 8 + head.readInt32LE(4)), "silero-16k");
    assert.deepEqual(
      [18, 22, 26, 30, 34].map((o) => head.readInt32LE(o)),
      [6, 2, 0, 512, 64],
    );
    assert.equal((await registry.pull(SILERO_VAD_MODEL)).source, "cache");
  },
);
