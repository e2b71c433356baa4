import { Command } from "commander";
import { loadConfig, type ConfigOverrides } from "../config.js";
import { startKikitori } from "../main.js";

export function serveCommand(): Command {
  return new Command("serve")
    .description("run the service: APIs, queue, autoscaler and instances (embedded defaults)")
    .option("--host <host>", "address to listen on (default 127.0.0.1, or $KIKITORI_HOST)")
    .option("--port <port>", "port (default 7600, or $KIKITORI_PORT)", (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`--port: not a port number: ${v}`);
      return n;
    })
    .option("--data-dir <dir>", "data directory (default ./kikitori-data, or $KIKITORI_DATA_DIR)")
    .option(
      "--model <name>",
      "model of the built-in Whisper image when a Model has no ModelDataUrl (default base, multilingual; tiny.en for fast English)",
    )
    .action(async (opts: { host?: string; port?: number; dataDir?: string; model?: string }) => {
      const overrides: ConfigOverrides = {};
      if (opts.host) overrides.host = opts.host;
      if (opts.port !== undefined) overrides.port = opts.port;
      if (opts.dataDir) overrides.dataDir = opts.dataDir;
      if (opts.model) overrides.defaultModel = opts.model;
      const k = await startKikitori(loadConfig(overrides));
      console.log(`kikitori listening on ${k.url} (data: ${k.config.dataDir}, auth: ${k.authMode})`);
      const stop = (signal: string) => {
        console.log(`${signal}: draining instances and stopping`);
        void k.close().then(() => process.exit(0));
      };
      process.once("SIGINT", () => stop("SIGINT"));
      process.once("SIGTERM", () => stop("SIGTERM"));
    });
}
