/** Shared fixtures for the whisper tests: test data, the tiny.en model, generated audio. */
import { execFileSync } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { mkdtemp, symlink } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = resolve(fileURLToPath(import.meta.url), "../../..");

export const testdataDir = resolve(repoRoot, process.env.KIKITORI_TESTDATA ?? "../shared/testdata");
export const hasTestdata = existsSync(join(testdataDir, "jfk.wav"));
export const noTestdata = hasTestdata ? false : `no test data at ${testdataDir} (set KIKITORI_TESTDATA)`;

export const modelPath =
  process.env.KIKITORI_TEST_MODEL ?? join(homedir(), ".cache/kikitori/models/ggml-tiny.en.bin");
export const hasModel = existsSync(modelPath);
export const noModel = hasModel
  ? false
  : `no whisper model at ${modelPath} (set KIKITORI_TEST_MODEL to a ggml tiny.en file)`;

export function testdata(name: string): string {
  return join(testdataDir, name);
}

const tempDirs: string[] = [];
// Removed when the test file's process ends: node:test's after() inside before() runs too early.
process.on("exit", () => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** A fresh temporary directory, removed when the test process exits. */
export async function tempDir(): Promise<string> {
  const path = await mkdtemp(join(tmpdir(), "kikitori-whisper-test-"));
  tempDirs.push(path);
  return path;
}

/** A SageMaker-style model directory holding (a link to) the test model. */
export async function modelDir(dir: string): Promise<string> {
  await symlink(modelPath, join(dir, "ggml-tiny.en.bin"));
  return dir;
}

/** Lower case, no punctuation, single spaces: to compare transcripts with references. */
export function normalize(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s']/gu, " ")
    .replace(/\s+/g, " ")
    .trim();
}

export function sox(args: string[]): void {
  execFileSync("sox", args, { stdio: "ignore" });
}

export function ffmpeg(args: string[]): void {
  execFileSync("ffmpeg", ["-hide_banner", "-loglevel", "error", "-y", ...args], { stdio: "ignore" });
}

/** Word error rate of `hypothesis` against `reference`, both normalized first. */
export function wordErrorRate(reference: string, hypothesis: string): number {
  const r = normalize(reference).split(" ").filter(Boolean);
  const h = normalize(hypothesis).split(" ").filter(Boolean);
  let prev = Array.from({ length: h.length + 1 }, (_, j) => j);
  for (let i = 1; i <= r.length; i++) {
    const cur = [i];
    for (let j = 1; j <= h.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (r[i - 1] === h[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[h.length]! / Math.max(1, r.length);
}
