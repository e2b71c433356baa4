// The models box: cache, import and packaging of whisper.cpp ggml models.
export {
  DEFAULT_MODELS_URL,
  KNOWN_MODELS,
  MODEL_MANIFEST,
  ModelRegistry,
  defaultModelsDir,
  findModelFile,
  modelFileName,
  sha256File,
  type ModelEntry,
  type ModelManifest,
  type RegistryOptions,
} from "./registry.js";
export {
  IMPORTERS,
  findImporter,
  type ImportProgress,
  type ImportResult,
  type ModelImporter,
} from "./import/index.js";
export { isGgmlFile, readGgmlInfo, type GgmlHparams, type GgmlInfo } from "./ggml.js";
export { modelsCommand } from "./cli.js";
export { makeRandomGgmlModel, writeRandomCt2Model, type RandomModelOptions } from "./random-model.js";
