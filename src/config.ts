import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { DEFAULT_QUANTIZATION, splitQuantName } from "./models/quantize.js";
import { loadNotifyOptions, type NotifyOptions } from "./notify/options.js";

/** Every option of the service, with its default in one place (`loadConfig`). */
export interface Config {
  /** Holds the SQLite database, the objects and the model-data cache. @defaultValue `./kikitori-data` */
  dataDir: string;
  /** @defaultValue `127.0.0.1` */
  host: string;
  /** @defaultValue `7600` (0 picks a free port) */
  port: number;
  /** Where ggml models are cached (`kikitori models`). @defaultValue `~/.cache/kikitori/models` */
  modelsDir: string;
  /** Model used by the built-in Whisper image when a Model has no ModelDataUrl. @defaultValue `base` (multilingual) */
  defaultModel: string;
  /** AWS-style authentication: `open` accepts any request (local development only). */
  auth: { mode: "open" | "sigv4"; credentials: { accessKeyId: string; secretAccessKey: string }[] };
  /** Allow `open` auth on a non-loopback address. @defaultValue false */
  allowOpenRemote: boolean;
  /** @defaultValue 1 GiB (SageMaker's async input limit) */
  maxInputBytes: number;
  /** Attempts per invocation before it fails (lost leases, crashed instances). @defaultValue 3 */
  maxAttempts: number;
  /** @defaultValue 30 s */
  leaseMs: number;
  /** @defaultValue 1 s */
  heartbeatMs: number;
  /** @defaultValue 120 s */
  startupHealthTimeoutMs: number;
  /** @defaultValue 10 s */
  shutdownGraceMs: number;
  /** @defaultValue 3 */
  maxConsecutiveStartFailures: number;
  /** Print instance and request logs. @defaultValue true */
  log: boolean;
  /** Webhooks, SNS-style topics, live events (src/notify/options.ts; `KIKITORI_WEBHOOK_*`). */
  notify: NotifyOptions;
}

type Env = Record<string, string | undefined>;

/** The built-in model: multilingual, so any language works out of the box (tiny.en is the fast English one). */
export const DEFAULT_MODEL = "base";

const int = (v: string | undefined, name: string): number | undefined => {
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}: expected a non-negative number, got "${v}"`);
  return n;
};

export function defaultModelsDir(env: Env = process.env): string {
  return env.KIKITORI_MODELS ?? join(homedir(), ".cache", "kikitori", "models");
}

/** Builds the configuration from defaults, then the environment (`KIKITORI_*`), then explicit overrides. */
export function loadConfig(overrides: Partial<Config> = {}, env: Env = process.env): Readonly<Config> {
  const credentials =
    env.KIKITORI_ACCESS_KEY_ID && env.KIKITORI_SECRET_ACCESS_KEY
      ? [{ accessKeyId: env.KIKITORI_ACCESS_KEY_ID, secretAccessKey: env.KIKITORI_SECRET_ACCESS_KEY }]
      : [];
  const authMode = (env.KIKITORI_AUTH ?? (credentials.length ? "sigv4" : "open")) as Config["auth"]["mode"];
  if (authMode !== "open" && authMode !== "sigv4")
    throw new Error(`KIKITORI_AUTH: expected open or sigv4, got "${authMode}"`);
  const config: Config = {
    dataDir: resolve(env.KIKITORI_DATA_DIR ?? "kikitori-data"),
    host: env.KIKITORI_HOST ?? "127.0.0.1",
    port: int(env.KIKITORI_PORT, "KIKITORI_PORT") ?? 7600,
    modelsDir: defaultModelsDir(env),
    defaultModel: env.KIKITORI_DEFAULT_MODEL ?? DEFAULT_MODEL,
    auth: { mode: authMode, credentials },
    allowOpenRemote: env.KIKITORI_ALLOW_OPEN_REMOTE === "1",
    maxInputBytes: int(env.KIKITORI_MAX_INPUT_BYTES, "KIKITORI_MAX_INPUT_BYTES") ?? 1024 ** 3,
    maxAttempts: int(env.KIKITORI_MAX_ATTEMPTS, "KIKITORI_MAX_ATTEMPTS") ?? 3,
    leaseMs: int(env.KIKITORI_LEASE_MS, "KIKITORI_LEASE_MS") ?? 30_000,
    heartbeatMs: int(env.KIKITORI_HEARTBEAT_MS, "KIKITORI_HEARTBEAT_MS") ?? 1000,
    startupHealthTimeoutMs:
      int(env.KIKITORI_STARTUP_HEALTH_TIMEOUT_MS, "KIKITORI_STARTUP_HEALTH_TIMEOUT_MS") ?? 120_000,
    shutdownGraceMs: int(env.KIKITORI_SHUTDOWN_GRACE_MS, "KIKITORI_SHUTDOWN_GRACE_MS") ?? 10_000,
    maxConsecutiveStartFailures: 3,
    log: env.KIKITORI_QUIET !== "1",
    notify: loadNotifyOptions(env),
    ...overrides,
  };
  if (config.auth.mode === "sigv4" && config.auth.credentials.length === 0) {
    throw new Error(
      "auth mode sigv4 needs credentials: set KIKITORI_ACCESS_KEY_ID and KIKITORI_SECRET_ACCESS_KEY",
    );
  }
  const loopback = ["127.0.0.1", "localhost", "::1"].includes(config.host) || config.host.startsWith("127.");
  if (config.auth.mode === "open" && !loopback && !config.allowOpenRemote) {
    throw new Error(
      `refusing to listen on ${config.host} without authentication: set KIKITORI_ACCESS_KEY_ID/KIKITORI_SECRET_ACCESS_KEY, ` +
        "or KIKITORI_ALLOW_OPEN_REMOTE=1 to accept unauthenticated requests from the network",
    );
  }
  return Object.freeze(config);
}

/**
 * The file of model `name`: its quantized variant `<name>-<DEFAULT_QUANTIZATION>` where that is cached
 * (kikitori's default weights, src/models/quantize.ts), else the model itself.
 */
export function modelFile(config: Pick<Config, "modelsDir">, name: string): string {
  const quantized = join(config.modelsDir, `ggml-${name}-${DEFAULT_QUANTIZATION}.bin`);
  if (DEFAULT_QUANTIZATION !== "f16" && !splitQuantName(name).type && existsSync(quantized)) return quantized;
  return join(config.modelsDir, `ggml-${name}.bin`);
}
