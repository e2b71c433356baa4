import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFile, mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import type { ConfigOverrides } from "../../src/config.js";
import { noopModelServer, startTestServer, tempDir } from "../helpers/server.js";

const run = promisify(execFile);

export const CREDS = { accessKeyId: "AKIDKIKITORICOMPAT", secretAccessKey: "kikitori-compat-secret" };
export { testdataDir } from "../helpers/fixtures.js";

export type CompatServer = Awaited<ReturnType<typeof startCompatServer>>;

/** A real kikitori on 127.0.0.1 with SigV4 auth and one known credential. */
export async function startCompatServer(over: ConfigOverrides = {}) {
  const k = await startTestServer({
    auth: { mode: "keys", credentials: [{ ...CREDS, scope: "admin" }] },
    ...over,
  });
  const dir = tempDir("kk-compat-");
  return {
    url: k.url,
    kikitori: k,
    dir,
    noopModelServer,
    /** Some bytes named like audio: the no-op model server only counts and hashes them. */
    async speechFile(): Promise<string> {
      const path = join(dir, "clip.wav");
      await writeFile(path, randomBytes(48_000));
      return path;
    },
    close: () => k.close(),
  };
}

/**
 * A model.tar.gz made by `tar`, as SageMaker users make them. Each entry is a file's text, or, when it
 * names an existing absolute path, that file's contents.
 */
export async function makeModelTar(dir: string, files: Record<string, string>): Promise<string> {
  const stage = await mkdtemp(join(dir, "model-"));
  await mkdir(stage, { recursive: true });
  for (const [name, value] of Object.entries(files)) {
    if (value.startsWith("/")) await copyFile(value, join(stage, name));
    else await writeFile(join(stage, name), value);
  }
  const out = join(stage, "model.tar.gz");
  await run("tar", ["-czf", out, "-C", stage, ...Object.keys(files)]);
  return out;
}

/** Asserts that an SDK call fails with this error name and a message matching `message`. */
export async function rejects(p: Promise<unknown>, name: string, message: RegExp): Promise<void> {
  await assert.rejects(p, (e: Error) => {
    assert.equal(e.name, name, `${e.name}: ${e.message}`);
    assert.match(e.message, message);
    return true;
  });
}
