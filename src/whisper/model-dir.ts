/** Finds the ggml model file in a SageMaker model directory (model.tar.gz unpacked). */
import { readFile, readdir } from "node:fs/promises";
import { isAbsolute, join, relative } from "node:path";
import { ModelLoadError, isGgmlFile } from "./addon.js";

export const MANIFEST = "kikitori-model.json";

/**
 * The manifest's `file` if there is a manifest, else the one `*.bin` file that starts with the ggml magic.
 * Throws ModelLoadError naming the directory and what was found.
 */
export async function findModelFile(modelDir: string): Promise<string> {
  let entries: string[];
  try {
    entries = await readdir(modelDir);
  } catch (e) {
    throw new ModelLoadError(`cannot read model directory ${modelDir}: ${(e as Error).message}`, {
      cause: e,
    });
  }
  if (entries.includes(MANIFEST)) return fromManifest(modelDir);
  const candidates: string[] = [];
  for (const name of entries.filter((n) => n.endsWith(".bin")).sort()) {
    const path = join(modelDir, name);
    if (await isGgmlFile(path).catch(() => false)) candidates.push(path);
  }
  if (candidates.length === 1) return candidates[0]!;
  if (candidates.length === 0) {
    throw new ModelLoadError(`no ggml whisper model (*.bin starting with the ggml magic) in ${modelDir}`);
  }
  throw new ModelLoadError(
    `${candidates.length} ggml models in ${modelDir} (${candidates.join(", ")}); name one in ${MANIFEST} as {"file": "..."}`,
  );
}

async function fromManifest(modelDir: string): Promise<string> {
  const where = join(modelDir, MANIFEST);
  let manifest: unknown;
  try {
    manifest = JSON.parse(await readFile(where, "utf8"));
  } catch (e) {
    throw new ModelLoadError(`${where}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
  const file = (manifest as { file?: unknown } | null)?.file;
  if (typeof file !== "string" || file === "") {
    throw new ModelLoadError(`${where}: "file" must be a non-empty string naming the ggml model`);
  }
  const path = join(modelDir, file);
  const rel = relative(modelDir, path);
  if (isAbsolute(file) || rel.startsWith("..")) {
    throw new ModelLoadError(`${where}: "file" must stay inside the model directory, got "${file}"`);
  }
  return path;
}
