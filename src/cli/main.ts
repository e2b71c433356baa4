import { Command, CommanderError } from "commander";
import { serveCommand, workerCommand } from "./serve.js";
import { transcribeCommand } from "./transcribe.js";
import { jobsCommand } from "./jobs.js";
import { evalCommand } from "../eval/cli.js";
import { modelsCommand } from "../models/index.js";
import { awsEnvCommand } from "./aws-env.js";
import { keysCommand } from "../auth/cli.js";

const program = new Command("kikitori")
  .description(
    "self-hostable asynchronous speech-to-text (SageMaker Async Inference for Whisper, in one program)",
  )
  .version("0.1.0")
  .showHelpAfterError()
  .exitOverride();

for (const cmd of [
  serveCommand(),
  workerCommand(),
  transcribeCommand(),
  jobsCommand(),
  modelsCommand(),
  keysCommand(),
  evalCommand(),
  awsEnvCommand(),
]) {
  // Unknown flags and extra arguments fail, in every command.
  program.addCommand(
    cmd.allowUnknownOption(false).allowExcessArguments(false).showHelpAfterError().exitOverride(),
  );
}

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) process.exit(e.exitCode);
  console.error(`kikitori: ${(e as Error).message}`);
  process.exit(1);
}
