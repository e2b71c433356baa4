import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** One schema change: `migrations/<backend>/NNNN-name.sql`, applied once, in name order, and recorded. */
export interface Migration {
  name: string;
  sql: string;
}

// The folder at the repository root, from src/queue or dist/queue alike.
const ROOT = fileURLToPath(new URL("../../migrations/", import.meta.url));

/** The backend's migrations, in the order they run. */
export function migrationsOf(backend: "sqlite" | "postgres"): Migration[] {
  const dir = `${ROOT}${backend}/`;
  return readdirSync(dir)
    .filter((f) => /^\d{4}-[\w-]+\.sql$/.test(f))
    .sort()
    .map((f) => ({ name: f.slice(0, -".sql".length), sql: readFileSync(dir + f, "utf8") }));
}
