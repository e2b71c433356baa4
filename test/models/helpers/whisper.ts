import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
const child = path.join(import.meta.dirname, "transcribe.ts");

/** Loads `model` in a child process (and transcribes `pcmFile` if given); returns its result and log. */
export async function loadInWhisper(
  model: string,
  pcmFile?: string,
): Promise<{ result: unknown; log: string }> {
  const { stdout, stderr } = await run(
    process.execPath,
    ["--import", "tsx", child, model, ...(pcmFile ? [pcmFile] : [])],
    {
      maxBuffer: 1 << 24,
      timeout: 300_000,
    },
  );
  return { result: JSON.parse(stdout.trim().split("\n").at(-1)!), log: stderr };
}
