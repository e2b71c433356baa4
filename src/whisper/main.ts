/**
 * The built-in model server as a process (what an instance driver starts):
 *   SM_MODEL_DIR=/path/to/model SAGEMAKER_BIND_TO_PORT=8080 node --import tsx src/whisper/main.ts
 * Logs one JSON line per event to stdout; exits 1 if the model cannot be loaded.
 */
import { modelServerOptionsFromEnv } from "./config.js";
import { startModelServer } from "./server.js";

const log = (line: string) => process.stdout.write(line + "\n");

async function main(): Promise<void> {
  const server = await startModelServer({ ...modelServerOptionsFromEnv(process.env), log });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(JSON.stringify({ event: "stopping", signal }));
    void server.close().then(() => process.exit(0));
  };
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));
  // Started by kikitori with a pipe on stdin: the pipe closes when the service dies, even by SIGKILL
  // (which no signal handler sees), so an instance never outlives the service that owns it.
  if (process.env.KIKITORI_EXIT_WITH_PARENT === "1") {
    process.stdin.once("close", () => stop("parent gone"));
    process.stdin.resume();
  }
  await server.ready;
}

main().catch((e: unknown) => {
  process.stderr.write(`kikitori model server: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
