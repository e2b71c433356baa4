import { WhisperEngine } from "../src/whisper/index.js";
const [model, ...files] = process.argv.slice(2);
const e = await WhisperEngine.load(model!, { threads: 2 });
for (const f of files) {
  const t0 = performance.now();
  const r = await e.transcribe(f, {});
  console.log(f, r.language, ((performance.now() - t0) / 1000).toFixed(2) + "s", JSON.stringify(r.text));
}
await e.close();
