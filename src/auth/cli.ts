import { Command, Option } from "commander";
import { openBackends } from "../backends.js";
import { loadConfig } from "../config.js";
import type { KeyStore } from "../queue/key-store.js";
import { createKey, keyView, revokeKey } from "./keys.js";
import { SCOPES } from "./types.js";

/** Opens the configured key store (the data directory's, or KIKITORI_DATABASE_URL's) for one command. */
async function withKeys<T>(dataDir: string | undefined, f: (keys: KeyStore) => Promise<T>): Promise<T> {
  const backends = await openBackends(loadConfig(dataDir ? { dataDir } : {}));
  try {
    return await f(backends.keys);
  } finally {
    await backends.close();
  }
}

const dataDirOption = () =>
  new Option("--data-dir <dir>", "data directory (default ./kikitori-data, or $KIKITORI_DATA_DIR)");

/** `kikitori keys create|list|revoke`: API keys for the native REST, OpenAI and SSE doors. */
export function keysCommand(): Command {
  const keys = new Command("keys").description(
    "API keys (Authorization: Bearer) for the native, OpenAI and event APIs; stored hashed",
  );
  keys
    .command("create")
    .description("create a key and print it (the only time it is shown)")
    .requiredOption("--name <name>", "who or what uses it, e.g. 'ci' or 'alice laptop'")
    .addOption(
      new Option(
        "--scope <scope>",
        "invoke: invoke and read own results; metrics: /metrics; admin: everything",
      )
        .choices([...SCOPES])
        .default("invoke"),
    )
    .addOption(dataDirOption())
    .action(async (o: { name: string; scope: string; dataDir?: string }) => {
      const { key, token } = await withKeys(o.dataDir, (k) => createKey(k, o));
      process.stderr.write(
        `created key ${key.id} "${key.name}" (scope ${key.scope}); it is shown once, store it now.\n` +
          "A running server in auto mode that was open (no keys) locks its doors when restarted.\n",
      );
      process.stdout.write(`${token}\n`);
    });
  keys
    .command("list")
    .description("list keys (never the keys themselves)")
    .option("--json", "print JSON")
    .addOption(dataDirOption())
    .action(async (o: { json?: boolean; dataDir?: string }) => {
      const list = (await withKeys(o.dataDir, (k) => k.listKeys())).map(keyView);
      if (o.json) return void process.stdout.write(JSON.stringify(list, null, 2) + "\n");
      const rows = [["ID", "NAME", "SCOPE", "CREATED", "LAST USED", "REVOKED"]];
      for (const k of list)
        rows.push([k.id, k.name, k.scope, k.createdAt ?? "", k.lastUsedAt ?? "-", k.revokedAt ?? "-"]);
      const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
      for (const r of rows)
        process.stdout.write(
          r
            .map((c, i) => c.padEnd(widths[i]!))
            .join("  ")
            .trimEnd() + "\n",
        );
    });
  keys
    .command("revoke")
    .description("revoke a key at once (and end its browser sessions)")
    .argument("<id>", "the key's id (from `keys list`)")
    .addOption(dataDirOption())
    .action(async (id: string, o: { dataDir?: string }) => {
      const key = await withKeys(o.dataDir, (k) => revokeKey(k, id));
      process.stdout.write(`revoked key ${key.id} "${key.name}"\n`);
    });
  return keys;
}
