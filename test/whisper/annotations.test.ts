import { test } from "node:test";
import assert from "node:assert/strict";
import { isAnnotationOnly } from "../../src/whisper/engine.js";

test("segments that are only an annotation are recognised; words are not", () => {
  for (const t of [" [BLANK_AUDIO]", " [MUSIC PLAYING]", " [", " (inaudible)", " ♪", " ...", " -"]) {
    assert.equal(isAnnotationOnly(t), true, JSON.stringify(t));
  }
  for (const t of [" Hello.", " [laughs] hello", " - Got free.", " 3:2", " (and so on) we went"]) {
    assert.equal(isAnnotationOnly(t), false, JSON.stringify(t));
  }
});
