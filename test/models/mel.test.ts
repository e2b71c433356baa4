import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import assert from "node:assert/strict";
import { melFilterbank } from "../../src/models/mel.js";
import { readNpz } from "../../src/models/npz.js";
import { assetsDir } from "../helpers/fixtures.js";

const npzFile = path.join(assetsDir, "mel_filters.npz");

function bytesOf(a: Float32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

test("mel_80 block has the SHA-256 from ct2-to-ggml.md §5.3", () => {
  const mel = melFilterbank(80);
  assert.equal(mel.data.length, 80 * 201);
  const bytes = bytesOf(mel.data);
  assert.deepEqual([...bytes.subarray(0, 8)], [0x00, 0x00, 0x00, 0x80, 0xa4, 0xac, 0xcb, 0x3c]);
  assert.equal(
    createHash("sha256").update(bytes).digest("hex"),
    "4f2701b1d287d74a0dc9871026e9519d98cb76426615f2539b0d151a0ae4ec2e",
  );
});

test("mel_128 block has the SHA-256 from ct2-to-ggml.md §5.3", () => {
  const bytes = bytesOf(melFilterbank(128).data);
  assert.equal(
    createHash("sha256").update(bytes).digest("hex"),
    "2a5f9822897750e047c85dea37cc268d3be0ecfd23c28a5f10da129d99d05afe",
  );
});

test("mel filterbanks equal openai/whisper's mel_filters.npz bit for bit", async (t) => {
  if (!existsSync(npzFile)) return t.skip(`no ${npzFile} (set KIKITORI_ASSETS)`);
  const arrays = await readNpz(npzFile);
  for (const nMels of [80, 128]) {
    const ref = arrays.get(`mel_${nMels}`);
    assert.ok(ref, `mel_${nMels} in npz`);
    assert.equal(ref.dtype, "<f4");
    assert.deepEqual(ref.shape, [nMels, 201]);
    const ours = bytesOf(melFilterbank(nMels).data);
    for (let i = 0; i < ours.length; i += 4) {
      if (ours.readUInt32LE(i) !== ref.data.readUInt32LE(i)) {
        assert.fail(
          `mel_${nMels}[${(i / 4 / 201) | 0}][${(i / 4) % 201}] differs: ours ${ours.readFloatLE(i)}, npz ${ref.data.readFloatLE(i)}`,
        );
      }
    }
    assert.equal(ours.length, ref.data.length);
  }
});
