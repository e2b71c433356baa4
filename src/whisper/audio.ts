/**
 * Audio decoding through Debian's ffmpeg, streamed: any container/codec/rate/channels in, 16 kHz mono s16
 * windows out. Only one window (plus a pipe's worth) of PCM is held in memory, whatever the input length.
 */
import { spawn, execFile } from "node:child_process";
import { createWriteStream, statSync } from "node:fs";
import { mkdtemp, open, rm, stat, type FileHandle } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { SAMPLE_RATE, quietestCut } from "./energy.js";

/** The input is not decodable audio. `reason` is ffmpeg's own explanation where it gave one. */
export class AudioDecodeError extends Error {
  readonly code = "InvalidAudio";
  constructor(readonly reason: string) {
    super(`cannot decode audio: ${reason}`);
    this.name = "AudioDecodeError";
  }
}

export interface AudioWindow {
  /** Seconds from the start of the audio. */
  startSeconds: number;
  /** 16 kHz mono signed 16-bit samples. */
  samples: Int16Array;
}

export interface DecodeOptions {
  /** Longest window yielded. @defaultValue 300 */
  windowSeconds?: number;
  /** How far back from a window's end to look for a quiet cut point. @defaultValue 10 */
  cutSearchSeconds?: number;
  /** Stops ffmpeg and ends iteration with the signal's reason. */
  signal?: AbortSignal;
}

export interface DecodedAudio extends AsyncIterable<AudioWindow> {
  /** Known from ffprobe (files) or ffmpeg's header line (streams); undefined while unknown. */
  readonly durationSeconds: number | undefined;
  /** Stops ffmpeg and removes any spooled file. Safe to call more than once. */
  close(): Promise<void>;
}

const STDERR_LINES_KEPT = 200;

/** Container duration from ffprobe, or undefined when the container does not say. */
export async function probeDurationSeconds(path: string): Promise<number | undefined> {
  const out = await new Promise<string>((resolve) => {
    execFile(
      "ffprobe",
      ["-v", "error", "-show_entries", "format=duration", "-of", "default=nw=1:nk=1", path],
      { timeout: 30_000 },
      (err, stdout) => resolve(err ? "" : stdout),
    );
  });
  const seconds = Number.parseFloat(out.trim());
  return Number.isFinite(seconds) && seconds > 0 ? seconds : undefined;
}

/**
 * Opens `input` (a file path, or a stream such as an HTTP request body) for windowed decoding.
 *
 * ffmpeg decodes at full speed into a temporary PCM file that the windows are read from as it grows
 * (32 kB per second of audio, on disk, never all in memory). Decoding thus runs ahead of transcription:
 * the input stream keeps flowing (a paused HTTP socket would not notice its client leave), bad input is
 * reported early, and the exact duration is known long before the end.
 *
 * MP4-family streams are spooled to a file before decoding: their index may sit at the end, which a pipe
 * cannot seek to.
 */
export async function openAudio(input: string | Readable, opts: DecodeOptions = {}): Promise<DecodedAudio> {
  const windowSamples = Math.round((opts.windowSeconds ?? 300) * SAMPLE_RATE);
  const searchSamples = Math.min(windowSamples - 1, Math.round((opts.cutSearchSeconds ?? 10) * SAMPLE_RATE));
  let source: string | Readable = input;
  let durationSeconds: number | undefined;

  if (typeof input === "string") {
    const st = await stat(input).catch(() => undefined);
    if (!st?.isFile()) throw new AudioDecodeError(`${input} is not a readable file`);
    if (st.size === 0) throw new AudioDecodeError(`${input} is empty (0 bytes)`);
    durationSeconds = await probeDurationSeconds(input);
  }
  const spoolDir = await mkdtemp(join(tmpdir(), "kikitori-audio-"));
  const removeSpool = () => rm(spoolDir, { recursive: true, force: true });
  const pcmPath = join(spoolDir, "audio.s16le");
  let pcm: FileHandle;
  try {
    if (typeof input !== "string") {
      const { head, stream } = await peek(input, 4096);
      if (head.length === 0) throw new AudioDecodeError("the input is empty (0 bytes)");
      source = stream;
      // ffmpeg reports no duration for WAV on a pipe, but the header says it.
      durationSeconds = wavDurationSeconds(head);
      if (head.subarray(4, 8).toString("latin1") === "ftyp") {
        source = join(spoolDir, "input.mp4");
        await pipeline(stream, createWriteStream(source), { signal: opts.signal });
        durationSeconds = await probeDurationSeconds(source);
      }
    }
    // Created before ffmpeg starts so that reading can begin at once; ffmpeg truncates the same inode.
    pcm = await open(pcmPath, "w+");
  } catch (e) {
    await removeSpool();
    throw e;
  }

  const ffmpeg = spawn(
    "ffmpeg",
    [
      ...["-hide_banner", "-nostats", "-nostdin", "-loglevel", "level+info"],
      ...["-i", typeof source === "string" ? source : "pipe:0"],
      ...["-map", "0:a:0", "-ac", "1", "-ar", String(SAMPLE_RATE), "-acodec", "pcm_s16le", "-f", "s16le"],
      ...["-y", pcmPath],
    ],
    { stdio: [typeof source === "string" ? "ignore" : "pipe", "ignore", "pipe"] },
  );
  // -nostdin stops ffmpeg reading keys from stdin; with "pipe:0" as input it still reads the data.
  const stderr: string[] = [];
  let stderrRest = "";
  ffmpeg.stderr!.setEncoding("utf8");
  ffmpeg.stderr!.on("data", (text: string) => {
    const lines = (stderrRest + text).split(/\r?\n/);
    stderrRest = lines.pop() ?? "";
    for (const line of lines) {
      const m = durationSeconds === undefined && /Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)/.exec(line);
      if (m) durationSeconds = Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]);
      stderr.push(line.slice(0, 500));
      if (stderr.length > STDERR_LINES_KEPT) stderr.shift();
    }
  });
  let exit: { code: number | null; spawnError?: Error } | undefined;
  const exited = new Promise<void>((resolve) => {
    ffmpeg.once("error", (spawnError) => {
      exit = { code: null, spawnError };
      resolve();
    });
    ffmpeg.once("close", (code) => {
      exit ??= { code };
      // Once ffmpeg is done the decoded length is exact; until then, the container's estimate stands.
      const bytes = code === 0 ? statSync(pcmPath, { throwIfNoEntry: false })?.size : undefined;
      if (bytes !== undefined) durationSeconds = bytes / 2 / SAMPLE_RATE;
      resolve();
    });
  });

  let inputError: Error | undefined;
  if (typeof source !== "string") {
    const stream = source;
    // ffmpeg closes its stdin early when it gives up on the input; that EPIPE is reported via its exit code.
    ffmpeg.stdin!.on("error", () => undefined);
    stream.once("error", (e) => {
      inputError = e;
      ffmpeg.kill("SIGKILL");
    });
    stream.pipe(ffmpeg.stdin!);
  }

  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    if (ffmpeg.exitCode === null && ffmpeg.signalCode === null) ffmpeg.kill("SIGKILL");
    if (typeof source !== "string") source.unpipe(ffmpeg.stdin!);
    await exited;
    await pcm.close();
    await removeSpool();
  };
  const onAbort = () => void close();
  opts.signal?.addEventListener("abort", onAbort, { once: true });

  async function* windows(): AsyncGenerator<AudioWindow> {
    let pending: Int16Array = new Int16Array(0);
    let odd: Buffer[] = [];
    let startSample = 0;
    let position = 0;
    const buffer = Buffer.alloc(1 << 20);
    try {
      for (;;) {
        opts.signal?.throwIfAborted();
        // Checked before reading: once ffmpeg has exited, a read of 0 bytes means all of it was read.
        const finished = exit !== undefined;
        const { bytesRead } = await pcm.read(buffer, 0, buffer.length, position);
        position += bytesRead;
        if (bytesRead > 0)
          ({ samples: pending, rest: odd } = joinSamples(pending, [...odd, buffer.subarray(0, bytesRead)]));
        while (pending.length >= windowSamples) {
          const cut = quietestCut(pending, windowSamples - searchSamples, windowSamples);
          yield { startSeconds: startSample / SAMPLE_RATE, samples: pending.slice(0, cut) };
          startSample += cut;
          pending = pending.slice(cut);
        }
        if (bytesRead > 0) continue;
        if (finished) break;
        await Promise.race([exited, new Promise((r) => setTimeout(r, 20))]);
      }
      opts.signal?.throwIfAborted();
      if (inputError) throw inputError;
      const { code, spawnError } = exit!;
      if (spawnError)
        throw new Error(`cannot run ffmpeg (is it installed and on PATH?): ${spawnError.message}`);
      if (code !== 0) throw new AudioDecodeError(ffmpegReason(stderr, code));
      if (position < 2)
        throw new AudioDecodeError(`no audio samples decoded (${ffmpegReason(stderr, code)})`);
      if (pending.length > 0) yield { startSeconds: startSample / SAMPLE_RATE, samples: pending };
    } finally {
      opts.signal?.removeEventListener("abort", onAbort);
      await close();
    }
  }

  return {
    get durationSeconds() {
      return durationSeconds;
    },
    close,
    [Symbol.asyncIterator]: windows,
  };
}

/** Duration from a RIFF/WAVE header's fmt byte rate and data size; undefined if absent or streaming-sized. */
export function wavDurationSeconds(head: Buffer): number | undefined {
  if (
    head.length < 12 ||
    head.toString("latin1", 0, 4) !== "RIFF" ||
    head.toString("latin1", 8, 12) !== "WAVE"
  ) {
    return undefined;
  }
  let byteRate = 0;
  for (let at = 12; at + 8 <= head.length;) {
    const id = head.toString("latin1", at, at + 4);
    const size = head.readUInt32LE(at + 4);
    if (id === "fmt " && at + 16 <= head.length) byteRate = head.readUInt32LE(at + 16);
    if (id === "data") {
      // 0 and 0xFFFFFFFF mark a header written before the length was known.
      return byteRate > 0 && size > 0 && size < 0xffffffff ? size / byteRate : undefined;
    }
    at += 8 + size + (size & 1);
  }
  return undefined;
}

/** Appends whole samples from byte chunks to `pending`; an odd trailing byte stays in `rest`. */
function joinSamples(pending: Int16Array, chunks: Buffer[]): { samples: Int16Array; rest: Buffer[] } {
  const bytes = Buffer.concat(chunks);
  const whole = bytes.length & ~1;
  const samples = new Int16Array(pending.length + whole / 2);
  samples.set(pending);
  // Copy through a byte view: `bytes` may sit at an odd offset in Node's pool, so no Int16Array view of it.
  new Uint8Array(samples.buffer, pending.length * 2).set(bytes.subarray(0, whole));
  return { samples, rest: whole < bytes.length ? [bytes.subarray(whole)] : [] };
}

/** ffmpeg's error lines (its own words), else its warnings, else the exit code. */
function ffmpegReason(lines: string[], code: number | null): string {
  const pick = (level: string) =>
    lines
      .filter((l) => l.includes(`[${level}]`))
      .map((l) => l.replace(/\[[^\]]*\]\s*/g, "").trim())
      .filter((l) => l.length > 0);
  // ffmpeg's words for "found nothing to decode" name our -map option; say what it means instead.
  const errors = [...pick("fatal"), ...pick("error")].map((l) =>
    /Stream map '0:a:0' matches no streams/.test(l) ? "no audio stream found in the input" : l,
  );
  const chosen = errors.length > 0 ? errors : pick("warning");
  if (chosen.length > 0) return [...new Set(chosen)].slice(-4).join("; ");
  return code === 0 ? "ffmpeg found no audio in the input" : `ffmpeg exited with code ${code}`;
}

/** Reads at least `n` bytes (or all, if shorter) and gives back a stream that still starts at byte 0. */
async function peek(input: Readable, n: number): Promise<{ head: Buffer; stream: Readable }> {
  const parts: Buffer[] = [];
  let length = 0;
  const ended = await new Promise<boolean>((resolve, reject) => {
    const cleanup = () => {
      input.off("readable", onReadable);
      input.off("end", onEnd);
      input.off("error", onError);
    };
    const onReadable = () => {
      let chunk: Buffer | null;
      while ((chunk = input.read() as Buffer | null) !== null) {
        parts.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
        length += chunk.length;
        if (length >= n) {
          cleanup();
          return resolve(false);
        }
      }
    };
    const onEnd = () => {
      cleanup();
      resolve(true);
    };
    const onError = (e: Error) => {
      cleanup();
      reject(e);
    };
    input.on("readable", onReadable);
    input.once("end", onEnd);
    input.once("error", onError);
  });
  const head = Buffer.concat(parts);
  if (ended) return { head, stream: Readable.from([head]) };
  // A fresh stream rather than unshift(): unshifting into an HTTP request body reordered bytes at times.
  const stream = new PassThrough();
  stream.write(head);
  input.once("error", (e) => stream.destroy(e));
  input.pipe(stream);
  return { head, stream };
}
