/**
 * A long file for the end-to-end tests of long invocations (resume.test.ts, chunks.test.ts): the test
 * clips, loud and quiet, 2 s apart, twice (about two minutes, 80 s of speech: 3 chunks); and the VAD model
 * they need.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { defaultModelsDir, modelFileName } from "../../src/models/registry.js";
import { SILERO_VAD_MODEL } from "../../src/models/silero-vad.js";
import { ffmpeg, noModel, sox, tempDir, testdata } from "./fixtures.js";

export const vadModel = join(defaultModelsDir(), modelFileName(SILERO_VAD_MODEL));
/** Why tests of long files skip: no tiny.en or no VAD model (scripts/fetch-test-model fetches both). */
export const noLongFileModels =
  noModel || (existsSync(vadModel) ? false : `no VAD model at ${vadModel} (scripts/fetch-test-model)`);

export function longFile(): string {
  const dir = tempDir("kk-long-");
  const clips = [
    "jfk.wav",
    "librispeech_1089-134686-0001.wav",
    "fleurs-en-003.ogg",
    "ljspeech_LJ050-0131.wav",
    "librispeech_1272-128104-0001.flac",
    "fleurs-en-004.ogg",
  ];
  const parts = [...clips, ...clips].map((c, i) => {
    const part = join(dir, `part-${i}.wav`);
    ffmpeg(["-i", testdata(c), "-af", "apad=pad_dur=2", "-ar", "16000", "-ac", "1", part]);
    return part;
  });
  const out = join(dir, "long.wav");
  sox([...parts, out]);
  return out;
}
