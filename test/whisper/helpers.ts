/** Whisper-only fixtures; the shared ones (test data, model path, tempDir, sox, ffmpeg) are in test/helpers. */
import { symlink } from "node:fs/promises";
import { join } from "node:path";
import { modelPath } from "../helpers/fixtures.js";

/** A SageMaker-style model directory holding (a link to) the test model. */
export async function modelDir(dir: string): Promise<string> {
  await symlink(modelPath, join(dir, "ggml-tiny.en.bin"));
  return dir;
}
