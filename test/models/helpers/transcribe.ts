// Child process for tests: loads a ggml model with whisper.cpp (through the addon) and, given a
// 16 kHz mono s16le PCM file, transcribes it. Prints the result as JSON on stdout; whisper.cpp's
// load log goes to stderr, which the parent inspects. A child keeps the native addon out of the
// test runner.
import { readFile } from "node:fs/promises";
import { initWhisper } from "@fugood/whisper.node";

const [model, pcmFile] = process.argv.slice(2);
const ctx = await initWhisper({ filePath: model!, useGpu: false });
try {
  if (pcmFile) {
    const pcm = await readFile(pcmFile);
    const audio = pcm.buffer.slice(pcm.byteOffset, pcm.byteOffset + pcm.byteLength);
    const r = await ctx.transcribeData(audio, { language: "en", maxThreads: 2 }).promise;
    console.log(JSON.stringify(r));
  } else console.log(JSON.stringify({ loaded: true }));
} finally {
  await ctx.release();
}
