/**
 * Which file a whisper worker process (worker.ts) runs, and with which Node flags.
 *
 * Compiled (dist/), it is worker.js with the parent's flags. From the TypeScript sources, a worker started
 * through tsx spends about half its start in tsx (to "ready" with tiny.en: 330-360 ms through tsx, 167-171 ms
 * as plain JavaScript), and every model load, restart after an abort and scale-from-zero pays it. So the
 * worker and the modules it imports are bundled by esbuild into one plain-JS file beside the addon
 * (node_modules/.kikitori-whisper/, where native.ts finds the addon by the same relative path), reused while
 * its sources are unchanged, and started without tsx. Where that cannot be done (no esbuild: an install
 * without dev packages runs dist/ anyway; node_modules not writable), the worker runs through tsx as before,
 * and the process says so once (a Node warning).
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ADDON_PATH } from "./native.js";

export interface WorkerEntry {
  file: string;
  execArgv: string[];
}

const FROM_SOURCES = import.meta.url.endsWith(".ts");
const SOURCE = fileURLToPath(new URL(FROM_SOURCES ? "./worker.ts" : "./worker.js", import.meta.url));
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const BUNDLES = dirname(ADDON_PATH);
/** The bundle's inputs (paths from ROOT), written after the bundle it describes. */
const MANIFEST = join(BUNDLES, "worker-inputs.json");

let entry: Promise<WorkerEntry> | undefined;

/** The worker to fork: decided once per process. */
export function workerEntry(): Promise<WorkerEntry> {
  entry ??= FROM_SOURCES
    ? bundled().catch((e: unknown) => {
        // Said once per process: the workers still start, at about twice the time.
        process.emitWarning(`whisper worker not bundled (${(e as Error).message}); it runs through tsx`);
        return { file: SOURCE, execArgv: process.execArgv };
      })
    : Promise.resolve({ file: SOURCE, execArgv: process.execArgv });
  return entry;
}

async function bundled(): Promise<WorkerEntry> {
  if (!existsSync(BUNDLES)) throw new Error("the addon is not built");
  const execArgv = withoutTsx(process.execArgv);
  const known = readInputs();
  const current = known && bundlePath(known);
  if (current && existsSync(current)) return { file: current, execArgv };
  const { build } = await import("esbuild");
  const out = await build({
    entryPoints: [SOURCE],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    packages: "external",
    metafile: true,
    write: false,
    logLevel: "silent",
  });
  // esbuild names inputs relative to the working directory.
  const inputs = Object.keys(out.metafile.inputs)
    .map((p) => resolve(p).slice(ROOT.length))
    .sort();
  // Earlier bundles stay (a running process may restart its worker from one); npm ci clears them.
  const file = bundlePath(inputs)!;
  writeAtomically(file, out.outputFiles[0]!.contents);
  writeAtomically(MANIFEST, JSON.stringify(inputs));
  return { file, execArgv };
}

function readInputs(): string[] | undefined {
  try {
    const inputs: unknown = JSON.parse(readFileSync(MANIFEST, "utf8"));
    return Array.isArray(inputs) && inputs.every((p) => typeof p === "string") ? inputs : undefined;
  } catch {
    return undefined;
  }
}

/** The bundle of these inputs as they are now, named by a hash of their contents (undefined: one is gone). */
function bundlePath(inputs: readonly string[]): string | undefined {
  const hash = createHash("sha256");
  for (const p of inputs) {
    const path = join(ROOT, p);
    if (!existsSync(path)) return undefined;
    hash.update(p).update("\0").update(readFileSync(path)).update("\0");
  }
  return join(BUNDLES, `worker-${hash.digest("hex").slice(0, 16)}.mjs`);
}

/**
 * A reader never sees half a file. Not models/partial.ts's writeViaPartial: its one `.partial` name per file
 * is shared, and processes starting workers at once may write the same bundle; here each writes its own.
 */
function writeAtomically(file: string, contents: string | Uint8Array): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, contents);
    renameSync(tmp, file);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** The parent's Node flags without tsx's loader (`--import tsx`, `--import=tsx/esm`, ...). */
export function withoutTsx(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (["--import", "--require", "-r", "--loader"].includes(a) && args[i + 1]?.startsWith("tsx")) i++;
    else if (!/^--(import|require|loader)=tsx/.test(a)) out.push(a);
  }
  return out;
}
