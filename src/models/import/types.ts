// The seam between model formats and the registry: one importer per source format.
import type { GgmlHparams } from "../ggml.js";

export interface ImportProgress {
  bytesDone: number;
  bytesTotal: number;
}

export interface ImportResult {
  /** Importer name, e.g. "ct2". */
  format: string;
  source: string;
  /** The ggml file written. */
  file: string;
  bytes: number;
  sha256: string;
  tensors: number;
  hparams: GgmlHparams;
  /**
   * The model's own alignment heads ([decoder layer, head], for DTW word timings) where its format carries
   * them, and the whisper.cpp preset that has the same heads ("custom" if none: ggml cannot store them).
   */
  alignment?: { heads: [number, number][]; preset: string };
}

export interface ModelImporter {
  /** Short format name used in messages and manifests ("ct2"). */
  readonly name: string;
  readonly description: string;
  /** Cheap check (file names, magic bytes) whether `src` is in this format. */
  detect(src: string): Promise<boolean>;
  /**
   * Converts `src` into a whisper.cpp ggml file at `outFile`, streaming (never the whole model in
   * memory). Writes `<outFile>.partial` and renames it, so a failed import leaves nothing behind.
   */
  import(src: string, outFile: string, onProgress?: (p: ImportProgress) => void): Promise<ImportResult>;
}
