// Runs `kikitori models ...` without the main CLI: node --import tsx scripts/models.ts list
import { modelsCommand } from "../src/models/index.js";

modelsCommand()
  .name("models")
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  });
