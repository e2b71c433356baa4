import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { tempDir } from "../helpers/server.js";
import { serve, type Served } from "./serve.js";

/**
 * Schemathesis (property-based API testing from the OpenAPI document) against a real `kikitori serve`
 * with an admin API key: bounded examples, a fixed seed, every operation of /openapi.json. It must find
 * no 500 and no response that breaks the document (status codes, content types, bodies).
 */
const st = (() => {
  try {
    execFileSync("st", ["--version"], { stdio: "ignore" });
    return undefined;
  } catch {
    return "schemathesis (st) is not installed: scripts/setup installs it";
  }
})();

let s: Served;
before(async () => {
  s = await serve({ keys: true });
});
after(() => s.stop());

test(
  "schemathesis finds no server error and no schema violation",
  { skip: st, timeout: 600_000 },
  async () => {
    const dir = tempDir("kk-st-");
    const report = join(dir, "report.json");
    const run = await promisify(execFile)(
      "st",
      [
        "run",
        `${s.url}/openapi.json`,
        "--header",
        `Authorization: Bearer ${s.admin}`,
        "--max-examples",
        "8",
        "--seed",
        "1",
        "--phases",
        "examples,coverage,fuzzing",
        "--workers",
        "1",
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance",
        "--request-timeout",
        "30",
        "--report",
        "junit",
        "--report-junit-path",
        report,
        "--no-color",
      ],
      // Its cache (.schemathesis/) goes to the temp dir, not the work tree.
      { timeout: 540_000, maxBuffer: 16 << 20, cwd: dir },
    ).catch((e: { stdout?: string; stderr?: string; code?: number }) => ({
      stdout: e.stdout ?? "",
      stderr: e.stderr ?? "",
      failed: e.code,
    }));
    const out = run.stdout + run.stderr;
    const summary = /Test cases:\n\s*(\d+) generated/.exec(out);
    assert.ok(summary && Number(summary[1]) > 100, `schemathesis ran: ${out.slice(-3000)}`);
    assert.doesNotMatch(out, /Server error|ST100/, out.slice(-6000));
    assert.equal(
      (run as { failed?: number }).failed,
      undefined,
      `schemathesis reported failures:\n${out.slice(-6000)}`,
    );
    assert.match(readFileSync(report, "utf8"), /<testsuite/);
  },
);
