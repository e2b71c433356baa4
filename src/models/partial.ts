// Write-then-rename, so readers of a cache never see a half-written file.
import { rename, rm } from "node:fs/promises";

export function partialPath(file: string): string {
  return `${file}.partial`;
}

/** Runs `write(tmpFile)` and renames the result to `file`; on failure removes the partial file. */
export async function writeViaPartial<T>(file: string, write: (tmp: string) => Promise<T>): Promise<T> {
  const tmp = partialPath(file);
  try {
    const result = await write(tmp);
    await rename(tmp, file);
    return result;
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
