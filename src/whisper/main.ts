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
  await server.ready;
}

main().catch((e: unknown) => {
  process.stderr.write(`kikitori model server: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
