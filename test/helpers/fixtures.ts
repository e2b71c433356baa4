/** Fixtures shared by every test area: paths to test data and models, temporary directories, audio tools. */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { EnglishTextNormalizer } from "../../src/eval/normalize.js";
import { defaultModelsDir } from "../../src/models/registry.js";

export const repoRoot = resolve(fileURLToPath(new URL("../..", import.meta.url)));

/** Real speech with exact transcripts, carried in the repository (README.md, manifest.json there). */
export const testdataDir = resolve(repoRoot, process.env.KIKITORI_TESTDATA ?? "testdata/speech");

export function testdata(name: string): string {
  return join(testdataDir, name);
}

/** Whisper assets (mel filters, tokenizers), carried in the repository. */
export const assetsDir = resolve(repoRoot, process.env.KIKITORI_ASSETS ?? "testdata/assets");

/** Real tiny.en weights, as made by scripts/fetch-test-model. */
export const modelPath = process.env.KIKITORI_TEST_MODEL ?? join(defaultModelsDir(), "ggml-tiny.en.bin");
export const hasModel = existsSync(modelPath);
export const noModel = hasModel
  ? false
  : `no whisper model at ${modelPath} (set KIKITORI_TEST_MODEL to a ggml tiny.en file)`;

/** Real multilingual base weights (the default model), as made by scripts/fetch-test-model. */
export const baseModelPath = join(defaultModelsDir(), "ggml-base.bin");
export const noBaseModel = existsSync(baseModelPath)
  ? false
  : `no multilingual model at ${baseModelPath} (run scripts/fetch-test-model)`;

/** An OpenAI-format checkpoint written from the base weights by scripts/fetch-test-model. */
export const openaiCheckpoint = join(defaultModelsDir(), "fixtures", "base.pt");

const tempDirs: string[] = [];
// Removed when the test file's process ends: node:test's after() inside before() runs too early.
process.on("exit", () => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** A fresh temporary directory, removed when the test process exits. */
export function tempDir(prefix = "kk-"): string {
  const path = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(path);
  return path;
}

const english = new EnglishTextNormalizer();

/** Whisper's English normaliser, the one the project's scorer (src/eval/metrics.ts) uses. */
export const normalize = (text: string): string => english.normalize(text);

export function sox(args: string[]): void {
  execFileSync("sox", args, { stdio: "ignore" });
}

export function ffmpeg(args: string[]): void {
  execFileSync("ffmpeg", ["-hide_banner", "-loglevel", "error", "-y", ...args], { stdio: "ignore" });
}
