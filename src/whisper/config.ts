/** The model server's settings from the environment (SageMaker's variables plus KIKITORI_*). */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { defaultModelsDir, modelFileName } from "../models/registry.js";
import { SILERO_VAD_MODEL } from "../models/silero-vad.js";
import type { ModelServerOptions } from "./server.js";

type Env = Record<string, string | undefined>;

export function modelServerOptionsFromEnv(env: Env): ModelServerOptions {
  return {
    port: integer(env, "SAGEMAKER_BIND_TO_PORT", 8080, 0, 65535),
    host: env.KIKITORI_BIND_HOST || "127.0.0.1",
    modelDir: env.SM_MODEL_DIR || "/opt/ml/model",
    maxConcurrency: integer(env, "KIKITORI_MAX_CONCURRENCY", 1, 1, 64),
    gpu: boolean(env, "KIKITORI_GPU", false),
    threads: env.KIKITORI_THREADS ? integer(env, "KIKITORI_THREADS", 0, 1, 256) : undefined,
    vadModel: vadModel(env),
  };
}

/** KIKITORI_VAD_MODEL ("" for none), else the Silero VAD model in the model cache when it is there. */
function vadModel(env: Env): string | undefined {
  if (env.KIKITORI_VAD_MODEL !== undefined) return env.KIKITORI_VAD_MODEL || undefined;
  const cached = join(defaultModelsDir(env), modelFileName(SILERO_VAD_MODEL));
  return existsSync(cached) ? cached : undefined;
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new Error(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
  }
  return n;
}

function boolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name]?.toLowerCase();
  if (raw === undefined || raw === "") return fallback;
  if (["1", "true", "yes"].includes(raw)) return true;
  if (["0", "false", "no"].includes(raw)) return false;
  throw new Error(`${name} must be true or false, got "${env[name]}"`);
}
