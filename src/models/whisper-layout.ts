// What a whisper.cpp ggml model holds for given hyper-parameters: the tensors whisper.cpp loads (names are
// OpenAI's state_dict keys, in state_dict order), their shapes and element types (ct2-to-ggml.md §3.5-3.6),
// and the vocabulary block. Shared by the importers of every source format.
import { readFile } from "node:fs/promises";
import { LANGUAGE_NAMES } from "../whisper/languages.js";
import { GGML_F16, GGML_F32, type GgmlHparams, type GgmlType } from "./ggml.js";

export interface WhisperTensor {
  /** OpenAI state_dict key = whisper.cpp tensor name. */
  name: string;
  /** Dimensions in the ggml file, innermost first. */
  ne: number[];
  type: GgmlType;
}

/** True for multilingual vocabularies (whisper.cpp's rule: n_vocab ≥ 51865). */
export const isMultilingual = (nVocab: number) => nVocab >= 51865;

/**
 * Every tensor of the model in OpenAI's state_dict order (what convert-pt-to-ggml.py writes; whisper.cpp
 * accepts any order). 1-D tensors, conv biases (kept 2-D as [S, 1]) and positional embeddings are F32 in an
 * F16 file, the rest F16, as whisper.cpp allocates them.
 */
export function whisperTensors(h: GgmlHparams): WhisperTensor[] {
  const S = h.nAudioState;
  const F = 4 * S; // Whisper's MLP width
  const out: WhisperTensor[] = [];
  const add = (name: string, type: GgmlType, ...shape: number[]) =>
    out.push({ name, type: h.ftype === 0 ? GGML_F32 : type, ne: shape.reverse() });
  const norm = (p: string) => {
    add(`${p}.weight`, GGML_F32, S);
    add(`${p}.bias`, GGML_F32, S);
  };
  const attention = (p: string) => {
    add(`${p}.query.weight`, GGML_F16, S, S);
    add(`${p}.query.bias`, GGML_F32, S);
    add(`${p}.key.weight`, GGML_F16, S, S);
    add(`${p}.value.weight`, GGML_F16, S, S);
    add(`${p}.value.bias`, GGML_F32, S);
    add(`${p}.out.weight`, GGML_F16, S, S);
    add(`${p}.out.bias`, GGML_F32, S);
  };
  const mlp = (p: string) => {
    add(`${p}.mlp.0.weight`, GGML_F16, F, S);
    add(`${p}.mlp.0.bias`, GGML_F32, F);
    add(`${p}.mlp.2.weight`, GGML_F16, S, F);
    add(`${p}.mlp.2.bias`, GGML_F32, S);
    norm(`${p}.mlp_ln`);
  };
  add("encoder.positional_embedding", GGML_F32, h.nAudioCtx, S);
  add("encoder.conv1.weight", GGML_F16, S, h.nMels, 3);
  add("encoder.conv1.bias", GGML_F32, S, 1);
  add("encoder.conv2.weight", GGML_F16, S, S, 3);
  add("encoder.conv2.bias", GGML_F32, S, 1);
  for (let i = 0; i < h.nAudioLayer; i++) {
    attention(`encoder.blocks.${i}.attn`);
    norm(`encoder.blocks.${i}.attn_ln`);
    mlp(`encoder.blocks.${i}`);
  }
  norm("encoder.ln_post");
  add("decoder.positional_embedding", GGML_F32, h.nTextCtx, S);
  add("decoder.token_embedding.weight", GGML_F16, h.nVocab, S);
  for (let i = 0; i < h.nTextLayer; i++) {
    attention(`decoder.blocks.${i}.attn`);
    norm(`decoder.blocks.${i}.attn_ln`);
    attention(`decoder.blocks.${i}.cross_attn`);
    norm(`decoder.blocks.${i}.cross_attn_ln`);
    mlp(`decoder.blocks.${i}`);
  }
  norm("decoder.ln");
  return out;
}

/**
 * The ggml vocabulary block from one of Whisper's tiktoken files (bundled in src/models/assets): token
 * bytes by rank. English-only files end at rank 50255; `<|endoftext|>` is appended as id 50256, as in the
 * published ggml files and the CTranslate2 importer's output (ct2-to-ggml.md §3.3), so that both give the
 * same block. Multilingual files already hold 50257 entries (id 50256 is the empty token).
 */
export async function tiktokenVocabulary(multilingual: boolean): Promise<Buffer[]> {
  const file = new URL(`./assets/${multilingual ? "multilingual" : "gpt2"}.tiktoken`, import.meta.url);
  const tokens: Buffer[] = [];
  for (const line of (await readFile(file, "utf8")).split("\n")) {
    if (!line) continue;
    const [b64, rank] = line.split(" ");
    if (Number(rank) !== tokens.length) throw new Error(`${file.pathname}: rank ${rank} out of order`);
    tokens.push(Buffer.from(b64!, "base64"));
  }
  if (!multilingual) tokens.push(Buffer.from("<|endoftext|>"));
  if (tokens.length !== 50257) throw new Error(`${file.pathname}: ${tokens.length} tokens, expected 50257`);
  return tokens;
}

/** Whisper's languages in token order (whisper.cpp's g_lang and openai-whisper's LANGUAGES agree). */
const LANGUAGE_CODES = Object.keys(LANGUAGE_NAMES);

/**
 * Where whisper.cpp puts the special tokens for a vocabulary of `nVocab` (whisper_vocab: fixed ids, moved
 * by one for multilingual models and by the number of languages beyond 99). The ggml file carries no
 * special tokens, so a model whose own vocabulary puts them elsewhere would silently decode garbage.
 */
export function specialTokens(nVocab: number) {
  const multilingual = isMultilingual(nVocab);
  const languages = nVocab - 51765 - (multilingual ? 1 : 0);
  const m = multilingual ? 1 : 0;
  const dt = multilingual ? languages - 98 : 0;
  return {
    eot: 50256 + m,
    sot: 50257 + m,
    /** Language tokens: `<|en|>` first, one per entry of LANGUAGE_CODES. */
    languages: Array.from({ length: languages }, (_, i) => ({ id: 50258 + m + i, code: LANGUAGE_CODES[i] })),
    translate: 50357 + dt,
    transcribe: 50358 + dt,
    noTimestamps: 50362 + dt,
    timestampBegin: 50363 + dt,
  };
}

/**
 * Checks a model's own vocabulary (token strings by id) and language ids against specialTokens: the
 * language, task and timestamp tokens must sit where whisper.cpp will look for them.
 */
export function checkSpecialTokens(
  where: string,
  tokens: readonly string[],
  nVocab: number,
  langIds?: unknown,
): void {
  const s = specialTokens(nVocab);
  if (s.languages.length < 1 || s.languages.length > LANGUAGE_CODES.length) {
    throw new Error(
      `${where}: ${nVocab} tokens leave room for ${s.languages.length} languages; whisper.cpp knows ${LANGUAGE_CODES.length}`,
    );
  }
  const expect: [number, string][] = [
    [s.sot, "<|startoftranscript|>"],
    ...s.languages.map((l): [number, string] => [l.id, `<|${l.code}|>`]),
    [s.translate, "<|translate|>"],
    [s.transcribe, "<|transcribe|>"],
    [s.noTimestamps, "<|notimestamps|>"],
    [s.timestampBegin, "<|0.00|>"],
  ];
  for (const [id, token] of expect) {
    // Older Hugging Face vocabularies spell Hebrew with its former ISO code.
    if (tokens[id] !== token && !(token === "<|he|>" && tokens[id] === "<|iw|>")) {
      throw new Error(
        `${where}: token ${id} is ${JSON.stringify(tokens[id])}, but whisper.cpp uses id ${id} as ${token} in a model of ${nVocab} tokens`,
      );
    }
  }
  // (English-only models never detect a language; their configs' lang_ids are often the multilingual ids.)
  if (
    isMultilingual(nVocab) &&
    langIds !== undefined &&
    JSON.stringify(langIds) !== JSON.stringify(s.languages.map((l) => l.id))
  ) {
    throw new Error(
      `${where}: lang_ids ${JSON.stringify(langIds).slice(0, 60)}… are not the language tokens whisper.cpp uses (${s.languages[0]!.id}…${s.languages.at(-1)!.id})`,
    );
  }
}

/**
 * whisper.cpp's alignment-head presets (include/whisper.h `whisper_alignment_heads_preset`, the tables in
 * src/whisper.cpp): the cross-attention heads its DTW word timestamps use. The ggml format cannot carry a
 * model's own heads, so an importer reports which preset matches them.
 */
const ALIGNMENT_PRESETS: Readonly<Record<string, readonly (readonly [number, number])[]>> = {
  "tiny.en": [
    [1, 0],
    [2, 0],
    [2, 5],
    [3, 0],
    [3, 1],
    [3, 2],
    [3, 3],
    [3, 4],
  ],
  tiny: [
    [2, 2],
    [3, 0],
    [3, 2],
    [3, 3],
    [3, 4],
    [3, 5],
  ],
  "base.en": [
    [3, 3],
    [4, 7],
    [5, 1],
    [5, 5],
    [5, 7],
  ],
  base: [
    [3, 1],
    [4, 2],
    [4, 3],
    [4, 7],
    [5, 1],
    [5, 2],
    [5, 4],
    [5, 6],
  ],
  "small.en": [
    [6, 6],
    [7, 0],
    [7, 3],
    [7, 8],
    [8, 2],
    [8, 5],
    [8, 7],
    [9, 0],
    [9, 4],
    [9, 8],
    [9, 10],
    [10, 0],
    [10, 1],
    [10, 2],
    [10, 3],
    [10, 6],
    [10, 11],
    [11, 2],
    [11, 4],
  ],
  small: [
    [5, 3],
    [5, 9],
    [8, 0],
    [8, 4],
    [8, 7],
    [8, 8],
    [9, 0],
    [9, 7],
    [9, 9],
    [10, 5],
  ],
  "medium.en": [
    [11, 4],
    [14, 1],
    [14, 12],
    [14, 14],
    [15, 4],
    [16, 0],
    [16, 4],
    [16, 9],
    [17, 12],
    [17, 14],
    [18, 7],
    [18, 10],
    [18, 15],
    [20, 0],
    [20, 3],
    [20, 9],
    [20, 14],
    [21, 12],
  ],
  medium: [
    [13, 15],
    [15, 4],
    [15, 15],
    [16, 1],
    [20, 0],
    [23, 4],
  ],
  "large-v1": [
    [9, 19],
    [11, 2],
    [11, 4],
    [11, 17],
    [22, 7],
    [22, 11],
    [22, 17],
    [23, 2],
    [23, 15],
  ],
  "large-v2": [
    [10, 12],
    [13, 17],
    [16, 11],
    [16, 12],
    [16, 13],
    [17, 15],
    [17, 16],
    [18, 4],
    [18, 11],
    [18, 19],
    [19, 11],
    [21, 2],
    [21, 3],
    [22, 3],
    [22, 9],
    [22, 12],
    [23, 5],
    [23, 7],
    [23, 13],
    [25, 5],
    [26, 1],
    [26, 12],
    [27, 15],
  ],
  "large-v3": [
    [7, 0],
    [10, 17],
    [12, 18],
    [13, 12],
    [16, 1],
    [17, 14],
    [19, 11],
    [21, 4],
    [24, 1],
    [25, 6],
  ],
};

/**
 * Validates a model's alignment heads ([decoder layer, head] pairs, as in CTranslate2's config.json) against
 * its shape, and names the whisper.cpp preset with exactly these heads ("custom" when none has them).
 */
export function alignmentPreset(where: string, heads: unknown, h: GgmlHparams): string {
  if (!Array.isArray(heads) || heads.some((p) => !Array.isArray(p) || p.length !== 2)) {
    throw new Error(`${where}: alignment_heads must be a list of [layer, head] pairs`);
  }
  for (const [layer, head] of heads as [number, number][]) {
    if (!(
      Number.isInteger(layer) &&
      layer >= 0 &&
      layer < h.nTextLayer &&
      Number.isInteger(head) &&
      head >= 0 &&
      head < h.nTextHead
    )) {
      throw new Error(
        `${where}: alignment head [${layer}, ${head}] is outside the decoder's ${h.nTextLayer} layers × ${h.nTextHead} heads`,
      );
    }
  }
  const key = JSON.stringify([...heads].sort((a, b) => a[0] - b[0] || a[1] - b[1]));
  return Object.entries(ALIGNMENT_PRESETS).find(([, p]) => JSON.stringify(p) === key)?.[0] ?? "custom";
}
