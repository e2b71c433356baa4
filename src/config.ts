import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { DEFAULT_QUANTIZATION, splitQuantName } from "./models/quantize.js";
import { defaultModelsDir } from "./models/registry.js";
import { loadNotifyOptions, type NotifyOptions } from "./notify/options.js";
import { isLoopbackHost } from "./auth/loopback.js";
import { isScope, SCOPES, type Scope } from "./auth/types.js";

export { defaultModelsDir };

/** Every option of the service, with its default in one place (`loadConfig`). */
export interface Config {
  /**
   * Holds the SQLite database, the objects (unless S3 holds them) and the model-data cache.
   * @defaultValue `./kikitori-data`
   */
  dataDir: string;
  /**
   * PostgreSQL for state, queue and coordination, e.g. `postgres://user:pass@host:5432/kikitori`
   * (`KIKITORI_DATABASE_URL`); unset means the embedded SQLite file in dataDir.
   */
  databaseUrl?: string;
  /** Most PostgreSQL connections this process opens (the pool, plus one for LISTEN and leadership). @defaultValue 10 */
  databasePoolMax: number;
  /** Where objects live: the data directory, or an S3-compatible store (`KIKITORI_S3_*`). @defaultValue fs */
  objectStore: ObjectStoreConfig;
  /** Bucket for outputs when an endpoint config names none, and for uploads through the native API. @defaultValue `kikitori` */
  defaultBucket: string;
  /** Region in ARNs, SNS messages and S3 replies (`KIKITORI_REGION`). @defaultValue `us-east-1` */
  region: string;
  /** Account in ARNs (`KIKITORI_ACCOUNT_ID`). @defaultValue `000000000000` */
  accountId: string;
  /** How often a follower tries to become the leader of cluster-wide loops. @defaultValue 1 s */
  leaderPollMs: number;
  /**
   * What this process does (`KIKITORI_ROLE`, `serve --role`): `api` runs the front doors and the cluster-wide
   * loops (autoscaler, placement, sweeper, outbox), `worker` registers as a host and runs the instances placed
   * on it, `all` both (the single command). Split roles need PostgreSQL. @defaultValue all
   */
  role: "all" | "api" | "worker";
  /** Instances this host runs at most (`KIKITORI_INSTANCE_SLOTS`). @defaultValue 1 for a dedicated host, else 100 */
  instanceSlots: number;
  /**
   * The one endpoint variant this worker host runs, in every slot (`KIKITORI_SERVES=<endpoint>[/<variant>]`,
   * variant AllTraffic by default): a Kubernetes worker Deployment is one variant's hosts, scaled by KEDA.
   */
  serves?: string;
  /** GPUs this host offers to models with KIKITORI_GPU=1 (`KIKITORI_GPUS`). @defaultValue 1 with KIKITORI_GPU=1, else 0 */
  gpus: number;
  /** A host heartbeats this often (`KIKITORI_HOST_HEARTBEAT_MS`). @defaultValue 1 s */
  hostHeartbeatMs: number;
  /** A host silent this long is lost; its instances are placed elsewhere (`KIKITORI_HOST_TTL_MS`). @defaultValue 10 s */
  hostTtlMs: number;
  /**
   * The URL other processes reach a worker's listener at (`KIKITORI_ADVERTISE_URL`, e.g. the pod IP); by
   * default `http://<host>:<port>`, with this machine's first external IPv4 address for a wildcard host.
   */
  advertiseUrl?: string;
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
  /** Most files in one multi-file job (`POST /v1/jobs`). @defaultValue 1000 */
  maxJobFiles: number;
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

export type ObjectStoreConfig =
  | { kind: "fs" }
  | {
      kind: "s3";
      /** Omitted means AWS itself. */
      endpoint?: string;
      region: string;
      /** Omitted means the AWS SDK's own chain (AWS_ACCESS_KEY_ID, profiles, instance roles). */
      credentials?: { accessKeyId: string; secretAccessKey: string };
      forcePathStyle: boolean;
    };

type Env = Record<string, string | undefined>;

/** The built-in model: multilingual, so any language works out of the box (tiny.en is the fast English one). */
export const DEFAULT_MODEL = "base";

const int = (v: string | undefined, name: string): number | undefined => {
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}: expected a non-negative number, got "${v}"`);
  return n;
};

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
  const region = env.KIKITORI_REGION ?? "us-east-1";
  const accountId = env.KIKITORI_ACCOUNT_ID ?? "000000000000";
  const config: Config = {
    dataDir: resolve(env.KIKITORI_DATA_DIR ?? "kikitori-data"),
    databaseUrl: env.KIKITORI_DATABASE_URL || undefined,
    databasePoolMax: int(env.KIKITORI_DATABASE_POOL_MAX, "KIKITORI_DATABASE_POOL_MAX") ?? 10,
    objectStore: objectStoreConfig(env, region),
    defaultBucket: env.KIKITORI_BUCKET ?? "kikitori",
    region,
    accountId,
    leaderPollMs: int(env.KIKITORI_LEADER_POLL_MS, "KIKITORI_LEADER_POLL_MS") ?? 1000,
    role: (env.KIKITORI_ROLE || "all") as Config["role"],
    instanceSlots:
      int(env.KIKITORI_INSTANCE_SLOTS, "KIKITORI_INSTANCE_SLOTS") ?? (env.KIKITORI_SERVES ? 1 : 100),
    serves: servesOf(env.KIKITORI_SERVES),
    gpus: int(env.KIKITORI_GPUS, "KIKITORI_GPUS") ?? (env.KIKITORI_GPU === "1" ? 1 : 0),
    hostHeartbeatMs: int(env.KIKITORI_HOST_HEARTBEAT_MS, "KIKITORI_HOST_HEARTBEAT_MS") ?? 1000,
    hostTtlMs: int(env.KIKITORI_HOST_TTL_MS, "KIKITORI_HOST_TTL_MS") ?? 10_000,
    advertiseUrl: env.KIKITORI_ADVERTISE_URL || undefined,
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
    maxJobFiles: int(env.KIKITORI_MAX_JOB_FILES, "KIKITORI_MAX_JOB_FILES") ?? 1000,
    leaseMs: int(env.KIKITORI_LEASE_MS, "KIKITORI_LEASE_MS") ?? 30_000,
    heartbeatMs: int(env.KIKITORI_HEARTBEAT_MS, "KIKITORI_HEARTBEAT_MS") ?? 1000,
    startupHealthTimeoutMs:
      int(env.KIKITORI_STARTUP_HEALTH_TIMEOUT_MS, "KIKITORI_STARTUP_HEALTH_TIMEOUT_MS") ?? 120_000,
    shutdownGraceMs: int(env.KIKITORI_SHUTDOWN_GRACE_MS, "KIKITORI_SHUTDOWN_GRACE_MS") ?? 10_000,
    maxConsecutiveStartFailures: 3,
    log: env.KIKITORI_QUIET !== "1",
    notify: loadNotifyOptions(env, { region, accountId }),
    ...overrides,
    auth,
  };
  if (config.databaseUrl && !/^postgres(ql)?:\/\//.test(config.databaseUrl)) {
    throw new Error(
      `KIKITORI_DATABASE_URL: expected postgres://user:password@host:port/database, got "${config.databaseUrl}"`,
    );
  }
  if (config.databasePoolMax < 2) throw new Error("KIKITORI_DATABASE_POOL_MAX: at least 2 connections");
  if (!["all", "api", "worker"].includes(config.role))
    throw new Error(`KIKITORI_ROLE: expected all, api or worker, got "${config.role}"`);
  if (config.role !== "all" && !config.databaseUrl) {
    throw new Error(
      `role ${config.role}: API and worker processes share their state through PostgreSQL; set KIKITORI_DATABASE_URL ` +
        "(and KIKITORI_S3_ENDPOINT for objects every host can read), or run `kikitori serve` for one machine",
    );
  }
  if (config.serves && config.role === "api")
    throw new Error("KIKITORI_SERVES names what a worker host runs; this process has the api role");
  if (config.hostTtlMs <= config.hostHeartbeatMs)
    throw new Error("KIKITORI_HOST_TTL_MS must be longer than KIKITORI_HOST_HEARTBEAT_MS");
  // A worker's listener serves only /health and the token-checked relay: no API to leave open.
  if (config.role !== "worker" && config.auth.mode === "open") checkOpenListener(config);
  return Object.freeze(config);
}

/** `<endpoint>/<variant>` from KIKITORI_SERVES (`<endpoint>` alone: its AllTraffic variant). */
function servesOf(v: string | undefined): string | undefined {
  if (!v) return undefined;
  const m = /^([a-zA-Z0-9](?:-*[a-zA-Z0-9])*)(?:\/([a-zA-Z0-9](?:-*[a-zA-Z0-9])*))?$/.exec(v);
  if (!m) throw new Error(`KIKITORI_SERVES: expected <endpoint> or <endpoint>/<variant>, got "${v}"`);
  return `${m[1]}/${m[2] ?? "AllTraffic"}`;
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

/** S3 when `KIKITORI_S3_ENDPOINT` names a server or `KIKITORI_OBJECT_STORE=s3` (AWS itself); else the data directory. */
function objectStoreConfig(env: Env, region: string): ObjectStoreConfig {
  const kind = env.KIKITORI_OBJECT_STORE ?? (env.KIKITORI_S3_ENDPOINT ? "s3" : "fs");
  if (kind === "fs") return { kind };
  if (kind !== "s3") throw new Error(`KIKITORI_OBJECT_STORE: expected fs or s3, got "${kind}"`);
  const endpoint = env.KIKITORI_S3_ENDPOINT || undefined;
  if (endpoint && !/^https?:\/\//.test(endpoint))
    throw new Error(`KIKITORI_S3_ENDPOINT: expected an http(s):// URL, got "${endpoint}"`);
  const id = env.KIKITORI_S3_ACCESS_KEY_ID;
  const secret = env.KIKITORI_S3_SECRET_ACCESS_KEY;
  if (!id !== !secret)
    throw new Error(
      "KIKITORI_S3_ACCESS_KEY_ID and KIKITORI_S3_SECRET_ACCESS_KEY go together: set both or neither",
    );
  const pathStyle = env.KIKITORI_S3_FORCE_PATH_STYLE;
  if (pathStyle !== undefined && pathStyle !== "0" && pathStyle !== "1")
    throw new Error(`KIKITORI_S3_FORCE_PATH_STYLE: expected 0 or 1, got "${pathStyle}"`);
  return {
    kind,
    endpoint,
    region: env.KIKITORI_S3_REGION ?? region,
    credentials: id && secret ? { accessKeyId: id, secretAccessKey: secret } : undefined,
    // Self-hosted S3 servers rarely have wildcard DNS for bucket subdomains; AWS itself does.
    forcePathStyle: pathStyle === undefined ? !!endpoint : pathStyle === "1",
  };
}
