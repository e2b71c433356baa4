/** The built-in Whisper model server box: what other folders may import. */
export { ModelLoadError, TranscriptionError } from "./addon.js";
export { parseCustomAttributes, type InvocationOptions } from "./attributes.js";
export {
  AudioDecodeError,
  openAudio,
  probeDurationSeconds,
  type AudioWindow,
  type DecodedAudio,
} from "./audio.js";
export { modelServerOptionsFromEnv } from "./config.js";
export { InvalidOptionError, WhisperEngine, type EngineOptions, type TranscribeControl } from "./engine.js";
export { CONTENT_TYPES, formatFromAccept, renderTranscript, timestamp } from "./formats.js";
export { LANGUAGE_NAMES } from "./languages.js";
export { findModelFile, MANIFEST } from "./model-dir.js";
export { startModelServer, type ModelServer, type ModelServerOptions } from "./server.js";
export * from "./types.js";
