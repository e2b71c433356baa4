// One transcription of jfk.wav (one encoder pass), 1 thread, greedy, through a whisper.cpp addon called
// from Node: what bench/engine-evidence.ts counts with callgrind.
//   valgrind --tool=callgrind --callgrind-out-file=new.out node bench/peers/addon-once.mjs kikitori MODEL
//   valgrind --tool=callgrind --callgrind-out-file=old.out node bench/peers/addon-once.mjs smart-whisper MODEL DIR
// (DIR: a node_modules holding smart-whisper 0.8.1, the old engine's addon, called as kikitori called it.)
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { URL, fileURLToPath } from "node:url";

const [which, model, dir] = process.argv.slice(2);
const root = fileURLToPath(new URL("../..", import.meta.url));
const bytes = execFileSync(
  "ffmpeg",
  [
    "-nostdin",
    "-v",
    "error",
    "-i",
    `${root}testdata/speech/jfk.wav`,
    "-f",
    "s16le",
    "-ac",
    "1",
    "-ar",
    "16000",
    "-",
  ],
  { maxBuffer: 1 << 28 },
);
const pcm = new Int16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2);
if (which === "smart-whisper") {
  const sw = createRequire(`${dir}/`)(`${dir}/smart-whisper`);
  const m = await sw.WhisperModel.load(model, false);
  const samples = Float32Array.from(pcm, (s) => s / 32768);
  const task = await sw.TranscribeTask.run(m, samples, {
    format: "detail",
    strategy: 0,
    beam_size: 1,
    best_of: 5,
    n_threads: 1,
    language: "en",
    temperature: 0,
    temperature_inc: 0.2,
    suppress_non_speech_tokens: false,
  });
  console.log((await task.result).map((s) => s.text).join(""));
  await m.free();
} else {
  const addon = createRequire(import.meta.url)(`${root}node_modules/.kikitori-whisper/kikitori_whisper.node`);
  const m = await addon.load(model, { flashAttn: true });
  const r = await m.transcribe(pcm, { threads: 1, language: "en", maxPasses: 1 });
  console.log(r.segments.map((s) => s.text).join(""));
  m.release();
}
