/**
 * A child process holding one whisper.cpp context (see isolated.ts). Protocol over IPC:
 *   parent → { type: "transcribe", id, pcm: Int16Array, params }
 *   child  → { type: "ready" } | { type: "progress", id, pct } | { type: "result", id, result }
 *          | { type: "failed", id, message } | { type: "loadFailed", message }
 */
import { loadNativeModel, type NativeTranscribeParams } from "./addon.js";

interface TranscribeMessage {
  type: "transcribe";
  id: number;
  pcm: Int16Array;
  params: NativeTranscribeParams;
}

const send = (m: unknown) => process.send?.(m);
// The parent going away (even by crashing) ends this process: nothing else would.
process.on("disconnect", () => process.exit(0));

const [modelPath, gpu] = process.argv.slice(2);
try {
  const model = await loadNativeModel(modelPath!, { gpu: gpu === "gpu" });
  process.on("message", (m: TranscribeMessage) => {
    if (m.type !== "transcribe") return;
    const run = model.transcribe(m.pcm, m.params, (pct) => send({ type: "progress", id: m.id, pct }));
    run.result.then(
      (result) => send({ type: "result", id: m.id, result }),
      (e: unknown) => send({ type: "failed", id: m.id, message: e instanceof Error ? e.message : String(e) }),
    );
  });
  send({ type: "ready" });
} catch (e) {
  send({ type: "loadFailed", message: e instanceof Error ? e.message : String(e) });
  process.disconnect();
}
