import { Command, Option } from "commander";
import { loadConfig, type Config, type ConfigOverrides } from "../config.js";
import { startKikitori } from "../main.js";

interface ServeOptions {
  host?: string;
  port?: number;
  dataDir?: string;
  model?: string;
  role?: Config["role"];
}

const port = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`--port: not a port number: ${v}`);
  return n;
};

/** The options `serve` and `worker` share. */
function withCommonOptions(cmd: Command): Command {
  return cmd
    .option("--host <host>", "address to listen on (default 127.0.0.1, or $KIKITORI_HOST)")
    .option("--port <port>", "port (default 7600, or $KIKITORI_PORT)", port)
    .option("--data-dir <dir>", "data directory (default ./kikitori-data, or $KIKITORI_DATA_DIR)")
    .option(
      "--model <name>",
      "model of the built-in Whisper image when a Model has no ModelDataUrl (default base, multilingual; tiny.en for fast English)",
    );
}

async function run(opts: ServeOptions): Promise<void> {
  const overrides: ConfigOverrides = {};
  if (opts.host) overrides.host = opts.host;
  if (opts.port !== undefined) overrides.port = opts.port;
  if (opts.dataDir) overrides.dataDir = opts.dataDir;
  if (opts.model) overrides.defaultModel = opts.model;
  if (opts.role) overrides.role = opts.role;
  const k = await startKikitori(loadConfig(overrides));
  const what = k.config.role === "worker" ? `worker host ${k.host!.id} (relay ${k.host!.address})` : "";
  console.log(
    `kikitori listening on ${k.url} (role: ${k.config.role}${what ? `, ${what}` : ""}, data: ${k.config.dataDir}, auth: ${k.authMode})`,
  );
  const stop = (signal: string) => {
    console.log(`${signal}: draining instances and stopping`);
    void k.close().then(() => process.exit(0));
  };
  process.once("SIGINT", () => stop("SIGINT"));
  process.once("SIGTERM", () => stop("SIGTERM"));
}

export function serveCommand(): Command {
  return withCommonOptions(
    new Command("serve").description(
      "run the service: APIs, queue, autoscaler and instances (embedded defaults); --role splits it across machines",
    ),
  )
    .addOption(
      new Option(
        "--role <role>",
        "api: front doors and cluster-wide loops; worker: a host that runs instances; all: both (default, or $KIKITORI_ROLE)",
      ).choices(["all", "api", "worker"]),
    )
    .action(run);
}

export function workerCommand(): Command {
  return withCommonOptions(
    new Command("worker").description(
      "join a cluster as a worker host (needs KIKITORI_DATABASE_URL): register capacity, heartbeat, run the instances the leader places here",
    ),
  ).action((opts: ServeOptions) => run({ ...opts, role: "worker" }));
}
