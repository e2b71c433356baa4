/**
 * Languages other than English, end to end with the default (multilingual base) model: the CLI on a fresh
 * data directory, as a first command after scripts/setup. Skips with a message when the base model is
 * missing (scripts/fetch-test-model).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { cjkCharacterErrors, errorRate } from "../../src/eval/metrics.js";
import { noBaseModel, repoRoot, tempDir, testdata } from "../helpers/fixtures.js";

const run = promisify(execFile);
const JAPANESE = /[\u3040-\u30ff\u4e00-\u9fff]/;

test(
  "`kikitori transcribe ja.wav --out -` on a fresh data directory prints the Japanese text",
  { skip: noBaseModel, timeout: 600_000 },
  async (t) => {
    const clip = "jsut_basic5000_0001_ja";
    const env = { ...process.env };
    delete env.KIKITORI_DEFAULT_MODEL;
    const { stdout } = await run(
      process.execPath,
      [join(repoRoot, "bin", "kikitori.js"), "transcribe", testdata(`${clip}.wav`), "--out", "-"],
      { env: { ...env, KIKITORI_DATA_DIR: tempDir("kk-ja-cli-") }, maxBuffer: 1 << 20 },
    );
    const reference = readFileSync(testdata(`${clip}.txt`), "utf8");
    const cer = errorRate(cjkCharacterErrors(reference, stdout));
    t.diagnostic(`${stdout.trim()} (CER ${(cer * 100).toFixed(1)}%)`);
    assert.match(stdout, JAPANESE);
    assert.ok(cer < 0.5, `CER ${cer}: ${stdout}`);
  },
);
