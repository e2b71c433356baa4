import path from "node:path";
import { defaultModelsDir } from "../../../src/models/registry.js";

const root = path.resolve(import.meta.dirname, "../../..");
export const assetsDir = process.env.KIKITORI_ASSETS ?? path.resolve(root, "../shared/assets");
export const testdataDir = process.env.KIKITORI_TESTDATA ?? path.resolve(root, "../shared/testdata");
/** Real tiny.en weights, as made by scripts/fetch-test-model. */
export const testModel = process.env.KIKITORI_TEST_MODEL ?? path.join(defaultModelsDir(), "ggml-tiny.en.bin");
