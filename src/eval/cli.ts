/** `kikitori eval <manifest>`: transcribe a manifest's clips with the built-in engine and score them. */
import { writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { Command, InvalidArgumentError } from "commander";
import { DEFAULT_MODEL, defaultModelsDir, modelFile } from "../config.js";
import { WhisperEngine } from "../whisper/index.js";
import { evaluate, formatReport, type TranscribeFn } from "./harness.js";

/** The English model of the tests and speed benchmarks: $KIKITORI_TEST_MODEL, else tiny.en in the cache. */
export function defaultModelPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.KIKITORI_TEST_MODEL || join(homedir(), ".cache", "kikitori", "models", "ggml-tiny.en.bin");
}

/** The service's default model ($KIKITORI_DEFAULT_MODEL, else multilingual base) in the model cache. */
export function serviceModelPath(env: NodeJS.ProcessEnv = process.env): string {
  return modelFile({ modelsDir: defaultModelsDir(env) }, env.KIKITORI_DEFAULT_MODEL ?? DEFAULT_MODEL);
}

/** Adapts the engine to the harness: greedy decoding, the clip's language, the transcript's text. */
export function engineTranscriber(engine: WhisperEngine): TranscribeFn {
  return async (audioPath, { language }) => (await engine.transcribe(audioPath, { language })).text;
}

function positiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("must be a positive integer");
  return n;
}

export function evalCommand(): Command {
  return new Command("eval")
    .description("transcribe the clips of a manifest and report word / character error rates")
    .argument("<manifest>", "JSON array of clips: file, transcript_file, language (see testdata/speech)")
    .option("--model <path>", "ggml model file (default: the service's default model)", serviceModelPath())
    .option("--threads <n>", "threads per transcription", positiveInteger)
    .option("--json <path>", "also write the full report (texts, counts, timings) as JSON")
    .option("--language-filter <code>", "only clips in this language, e.g. en")
    .action(
      async (
        manifest: string,
        opts: { model: string; threads?: number; json?: string; languageFilter?: string },
      ) => {
        const engine = await WhisperEngine.load(opts.model, { threads: opts.threads });
        try {
          const report = await evaluate(manifest, engineTranscriber(engine), {
            languageFilter: opts.languageFilter,
            onClip: (r) => process.stderr.write(`${r.clip}${"error" in r ? ": FAILED" : ""}\n`),
          });
          process.stdout.write(formatReport(report) + "\n");
          if (opts.json) {
            const body = {
              manifest,
              model: opts.model,
              threads: opts.threads,
              date: new Date().toISOString(),
              ...report,
            };
            await writeFile(opts.json, JSON.stringify(body, null, 2) + "\n");
          }
          if (report.failed.length > 0) process.exitCode = 1;
        } finally {
          await engine.close();
        }
      },
    );
}
