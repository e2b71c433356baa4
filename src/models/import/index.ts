// Registered source formats: CTranslate2 (faster-whisper) directories and OpenAI .pt checkpoints.
import { ct2Importer } from "./ct2.js";
import { ptImporter } from "./pt.js";
import type { ModelImporter } from "./types.js";

export type { ImportProgress, ImportResult, ModelImporter } from "./types.js";
export { ct2Importer } from "./ct2.js";
export { ptImporter } from "./pt.js";

export const IMPORTERS: readonly ModelImporter[] = [ct2Importer, ptImporter];

/** The importer for `src`; throws naming `src` and the supported formats when none matches. */
export async function findImporter(src: string): Promise<ModelImporter> {
  for (const imp of IMPORTERS) if (await imp.detect(src)) return imp;
  const known = IMPORTERS.map((i) => `${i.name}: ${i.description}`).join("; ");
  throw new Error(`${src}: not a model format kikitori can import (supported: ${known})`);
}
