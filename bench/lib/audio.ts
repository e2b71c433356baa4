/**
 * Benchmark audio: English speech from the shared test data (decoded once with ffmpeg to 16 kHz mono
 * PCM), concatenated with silences into files of any length, with the matching reference text; a
 * one-second clip; and espeak-ng speech when the test data is missing.
 */
import { execFileSync } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";

const RATE = 16_000;

export interface Piece {
  name: string;
  pcm: Buffer;
  reference: string;
}

/** The English clips of the test data with exact references, one per distinct recording. */
export function speechPieces(testdata: string, tmp: string): Piece[] {
  const manifestPath = join(testdata, "manifest.json");
  if (!existsSync(manifestPath)) return espeakPieces(tmp);
  const manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as {
    file: string;
    transcript_file: string;
    language: string;
    exact_reference?: boolean;
  }[];
  const seen = new Set<string>();
  const pieces: Piece[] = [];
  for (const e of manifest) {
    // One speaker per channel would be mixed down; jfk exists in four containers: keep one of each.
    if (e.language !== "en" || !e.exact_reference || e.file.startsWith("stereo_")) continue;
    if (seen.has(e.transcript_file)) continue;
    seen.add(e.transcript_file);
    pieces.push({
      name: e.file,
      pcm: decode(join(testdata, e.file)),
      reference: readFileSync(join(testdata, e.transcript_file), "utf8").trim(),
    });
  }
  return pieces;
}

/**
 * The pieces at one loudness (RMS `dbfs`, peaks kept below full scale), as one recording's speakers would
 * be. The test data's clips lie 45 dB apart (two FLEURS clips near -65 dBFS beside JFK at -17): joined as
 * they are, every Whisper hears the quiet ones as background in some windows and not in others, and the
 * WER of a long file then measures that coin toss more than the weights.
 */
export function levelPieces(pieces: readonly Piece[], dbfs = -20): Piece[] {
  return pieces.map((p) => {
    const s = new Int16Array(p.pcm.buffer, p.pcm.byteOffset, p.pcm.length / 2);
    let sum = 0;
    let peak = 1;
    for (const v of s) {
      sum += v * v;
      peak = Math.max(peak, Math.abs(v));
    }
    const rms = Math.sqrt(sum / Math.max(1, s.length)) || 1;
    const gain = Math.min((32768 * 10 ** (dbfs / 20)) / rms, 32000 / peak);
    const pcm = Buffer.alloc(p.pcm.length);
    const out = new Int16Array(pcm.buffer, pcm.byteOffset, s.length);
    for (let i = 0; i < s.length; i++) out[i] = Math.round(s[i]! * gain);
    return { ...p, pcm };
  });
}

function espeakPieces(tmp: string): Piece[] {
  const sentences = [
    "The quick brown fox jumps over the lazy dog.",
    "A benchmark measures what users would otherwise pick instead.",
    "Speech recognition turns spoken words into written text.",
  ];
  return sentences.map((text, i) => {
    const wav = join(tmp, `espeak-${i}.wav`);
    execFileSync("espeak-ng", ["-w", wav, text]);
    return { name: `espeak-${i}`, pcm: decode(wav), reference: text };
  });
}

function decode(path: string): Buffer {
  return execFileSync(
    "ffmpeg",
    ["-nostdin", "-v", "error", "-i", path, "-f", "s16le", "-ac", "1", "-ar", `${RATE}`, "-"],
    { maxBuffer: 1024 ** 3 },
  );
}

export const seconds = (pcm: Buffer) => pcm.length / 2 / RATE;

/**
 * Writes the pieces, each followed by `gapSeconds` of silence, the whole pass followed by
 * `passGapSeconds` more, repeated until at least `minSeconds` of audio; returns the duration and the
 * reference of the whole file, and the reference of one pass.
 */
export function writeSpeech(
  path: string,
  pieces: readonly Piece[],
  minSeconds: number,
  gapSeconds = 1,
  passGapSeconds = 0,
): { seconds: number; reference: string; passes: number; passSeconds: number; passReference: string } {
  const gap = Buffer.alloc(Math.round(gapSeconds * RATE) * 2);
  const passGap = Buffer.alloc(Math.round(passGapSeconds * RATE) * 2);
  const pass = pieces.reduce((s, p) => s + p.pcm.length + gap.length, passGap.length);
  const passes = Math.max(1, Math.ceil((minSeconds * RATE * 2) / pass));
  const fd = openSync(path, "w");
  try {
    writeSync(fd, wavHeader(pass * passes));
    for (let i = 0; i < passes; i++)
      for (const [j, p] of pieces.entries()) {
        writeSync(fd, p.pcm);
        writeSync(fd, gap);
        if (j === pieces.length - 1) writeSync(fd, passGap);
      }
  } finally {
    closeSync(fd);
  }
  const passReference = pieces.map((p) => p.reference).join(" ");
  const reference = Array.from({ length: passes }, () => passReference).join(" ");
  return {
    seconds: (pass * passes) / 2 / RATE,
    reference,
    passes,
    passSeconds: pass / 2 / RATE,
    passReference,
  };
}

/** A WAV file of `seconds` of quiet noise (for the no-op model server, whose output ignores content). */
export function writeNoise(path: string, seconds: number): void {
  execFileSync("sox", [
    "-n",
    "-r",
    `${RATE}`,
    "-c",
    "1",
    "-b",
    "16",
    path,
    "synth",
    `${seconds}`,
    "whitenoise",
    "vol",
    "0.01",
  ]);
}

/** One second of speech (the start of the first piece), as a WAV file. */
export function writeOneSecond(path: string, pieces: readonly Piece[]): void {
  const first = pieces[0]!.pcm;
  const pcm = Buffer.alloc(RATE * 2);
  // Skip the first quarter second (often silence) when the piece is long enough.
  const start = first.length >= pcm.length * 1.25 ? RATE / 2 : 0;
  first.copy(pcm, 0, start, start + pcm.length);
  const fd = openSync(path, "w");
  try {
    writeSync(fd, wavHeader(pcm.length));
    writeSync(fd, pcm);
  } finally {
    closeSync(fd);
  }
}

function wavHeader(dataBytes: number): Buffer {
  const h = Buffer.alloc(44);
  h.write("RIFF", 0);
  h.writeUInt32LE(36 + dataBytes, 4);
  h.write("WAVE", 8);
  h.write("fmt ", 12);
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(1, 22);
  h.writeUInt32LE(RATE, 24);
  h.writeUInt32LE(RATE * 2, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write("data", 36);
  h.writeUInt32LE(dataBytes, 40);
  return h;
}

/** The variants of each clip in the mixed file: level and channel. */
const MIXED_VARIANTS = [
  { name: "studio", effects: ["norm", "-3"] },
  { name: "quiet", effects: ["norm", "-3", "vol", "-35dB"] },
  { name: "phone", effects: ["sinc", "300-3400", "rate", "8000", "rate", `${RATE}`, "norm", "-3"] },
  {
    name: "quiet phone",
    effects: ["sinc", "300-3400", "rate", "8000", "rate", `${RATE}`, "norm", "-3", "vol", "-35dB"],
  },
];

/**
 * The mixed long file: every piece four ways (as recorded and 35 dB quieter, studio and 8 kHz telephone
 * band; peaks normalised first), interleaved so loud and quiet, studio and telephone alternate, 2 s apart,
 * repeated until `minSeconds`. Each variant is also written on its own (`clips`), for the one-by-one run.
 */
export function writeMixed(
  dir: string,
  pieces: readonly Piece[],
  minSeconds: number,
): {
  path: string;
  seconds: number;
  reference: string;
  clips: { path: string; seconds: number; reference: string }[];
} {
  const raw = (pcm: Buffer, effects: string[]) =>
    execFileSync("sox", [...RAW, "-", ...RAW, "-", ...effects], { input: pcm, maxBuffer: 1024 ** 3 });
  const clips: Piece[] = [];
  for (const variant of MIXED_VARIANTS)
    for (const p of pieces)
      clips.push({
        name: `${p.name} (${variant.name})`,
        pcm: raw(p.pcm, variant.effects),
        reference: p.reference,
      });
  // Interleave: piece 1 studio, piece 2 quiet, piece 3 phone, ... so neighbours differ.
  const order = pieces.flatMap((_, i) =>
    MIXED_VARIANTS.map((_, v) => clips[v * pieces.length + ((i + v) % pieces.length)]!),
  );
  const path = join(dir, "mixed.wav");
  const file = writeSpeech(path, order, minSeconds, 2, 0);
  return {
    path,
    seconds: file.seconds,
    reference: file.reference,
    clips: order.map((c, i) => {
      const clipPath = join(dir, `mixed-${i}.wav`);
      writeSpeech(clipPath, [c], 0, 0, 0);
      return { path: clipPath, seconds: seconds(c.pcm), reference: c.reference };
    }),
  };
}

const RAW = ["-t", "raw", "-r", `${RATE}`, "-e", "signed-integer", "-b", "16", "-c", "1"];
