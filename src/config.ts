import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { DEFAULT_QUANTIZATION, splitQuantName } from "./models/quantize.js";
import { loadNotifyOptions, type NotifyOptions } from "./notify/options.js";
import { isLoopbackHost } from "./auth/loopback.js";
import { isScope, SCOPES, type Scope } from "./auth/types.js";

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
  /** Who may call what (src/auth). */
  auth: AuthConfig;
  /** Allow `open` auth on a non-loopback address. @defaultValue false */
  allowOpenRemote: boolean;
  /**
   * `local:<command>` images run a command as the service's user: refused unless allowed, all
   * (`KIKITORI_ALLOW_LOCAL_IMAGES=1`) or by command (`KIKITORI_LOCAL_IMAGE_COMMANDS=/path/a,/path/b`).
   */
  localImages: { allowAll: boolean; commands: string[] };
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

export interface AuthConfig {
  /**
   * `open`: no credentials, loopback only; `keys`: API keys and SigV4 on every route;
   * `auto` (default): `keys` when SigV4 credentials are set or any API key exists, else `open`.
   */
  mode: "auto" | "open" | "keys";
  /** SigV4 credentials (`KIKITORI_ACCESS_KEY_ID` / `KIKITORI_SECRET_ACCESS_KEY`) and their scope. */
  credentials: { accessKeyId: string; secretAccessKey: string; scope: Scope }[];
  /** Who may read `/metrics`: a key of scope metrics or admin, or anyone. @defaultValue "key" */
  metrics: "key" | "public";
  /** Mark the session cookie `Secure` even on plain http (behind a TLS proxy). @defaultValue false */
  cookieSecure: boolean;
  /** A body must deliver 1 KiB per window of this length, else 408. @defaultValue 30 s */
  bodyTimeoutMs: number;
  /** An admin bearer token valid only for this process (the CLI's embedded server). */
  processToken?: string;
}

export type ConfigOverrides = Partial<Omit<Config, "auth">> & { auth?: Partial<AuthConfig> };

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
export function loadConfig(overrides: ConfigOverrides = {}, env: Env = process.env): Readonly<Config> {
  const sigv4Scope = env.KIKITORI_SIGV4_SCOPE ?? "admin";
  if (!isScope(sigv4Scope))
    throw new Error(`KIKITORI_SIGV4_SCOPE: expected one of ${SCOPES.join(", ")}, got "${sigv4Scope}"`);
  const credentials =
    env.KIKITORI_ACCESS_KEY_ID && env.KIKITORI_SECRET_ACCESS_KEY
      ? [
          {
            accessKeyId: env.KIKITORI_ACCESS_KEY_ID,
            secretAccessKey: env.KIKITORI_SECRET_ACCESS_KEY,
            scope: sigv4Scope,
          },
        ]
      : [];
  // `sigv4` is the name this setting had before API keys: it meant what `keys` means now.
  const authMode = env.KIKITORI_AUTH === "sigv4" ? "keys" : (env.KIKITORI_AUTH ?? "auto");
  if (authMode !== "open" && authMode !== "keys" && authMode !== "auto")
    throw new Error(`KIKITORI_AUTH: expected auto, open or keys, got "${authMode}"`);
  const metrics = env.KIKITORI_METRICS_AUTH ?? "key";
  if (metrics !== "key" && metrics !== "public")
    throw new Error(`KIKITORI_METRICS_AUTH: expected key or public, got "${metrics}"`);
  const auth: AuthConfig = {
    mode: authMode,
    credentials,
    metrics,
    cookieSecure: env.KIKITORI_COOKIE_SECURE === "1",
    bodyTimeoutMs: int(env.KIKITORI_BODY_TIMEOUT_MS, "KIKITORI_BODY_TIMEOUT_MS") ?? 30_000,
    ...overrides.auth,
  };
  const config: Config = {
    dataDir: resolve(env.KIKITORI_DATA_DIR ?? "kikitori-data"),
    host: env.KIKITORI_HOST ?? "127.0.0.1",
    port: int(env.KIKITORI_PORT, "KIKITORI_PORT") ?? 7600,
    modelsDir: defaultModelsDir(env),
    defaultModel: env.KIKITORI_DEFAULT_MODEL ?? DEFAULT_MODEL,
    allowOpenRemote: env.KIKITORI_ALLOW_OPEN_REMOTE === "1",
    localImages: {
      allowAll: env.KIKITORI_ALLOW_LOCAL_IMAGES === "1",
      commands: (env.KIKITORI_LOCAL_IMAGE_COMMANDS ?? "").split(",").filter(Boolean),
    },
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
    auth,
  };
  if (config.auth.mode === "open") checkOpenListener(config);
  return Object.freeze(config);
}

/** `open` mode (no credentials) only on a loopback address, unless the operator insists. */
export function checkOpenListener(config: Pick<Config, "host" | "allowOpenRemote">): void {
  if (!isLoopbackHost(config.host) && !config.allowOpenRemote) {
    throw new Error(
      `refusing to listen on ${config.host} without authentication: create an API key ("kikitori keys create"), ` +
        "set KIKITORI_ACCESS_KEY_ID/KIKITORI_SECRET_ACCESS_KEY, or KIKITORI_ALLOW_OPEN_REMOTE=1 to accept " +
        "unauthenticated requests from the network",
    );
  }
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
