/**
 * A child process holding one whisper.cpp context (see isolated.ts). Protocol over IPC:
 *   parent → { type: "transcribe", id, pcm: Int16Array, params } | { type: "detect", id, pcm, threads }
 *          | { type: "speech", id, pcm, opts } | { type: "abort", id }
 *   child  → { type: "ready" } | { type: "result", id, result } | { type: "failed", id, message }
 *          | { type: "loadFailed", message }
 */
import { loadNativeModel, type NativeRun, type SpeechOptions, type WhisperParams } from "./addon.js";

type Request =
  | { type: "transcribe"; id: number; pcm: Int16Array; params: WhisperParams }
  | { type: "detect"; id: number; pcm: Int16Array; threads: number }
  | { type: "speech"; id: number; pcm: Int16Array; opts: SpeechOptions }
  | { type: "abort"; id: number };

const send = (m: unknown) => process.send?.(m);
// The parent going away (even by crashing) ends this process: nothing else would.
process.on("disconnect", () => process.exit(0));

const [modelPath, gpu] = process.argv.slice(2);
try {
  const model = await loadNativeModel(modelPath!, { gpu: gpu === "gpu" });
  let current: { id: number; run: NativeRun<unknown> } | undefined;
  process.on("message", (m: Request) => {
    if (m.type === "abort") {
      if (current?.id === m.id) current.run.stop();
      return;
    }
    const run: NativeRun<unknown> =
      m.type === "transcribe"
        ? model.transcribe(m.pcm, m.params)
        : m.type === "speech"
          ? model.speech(m.pcm, m.opts)
          : model.detectLanguage(m.pcm, m.threads);
    current = { id: m.id, run };
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
