// What a whisper.cpp ggml model holds for given hyper-parameters: the tensors whisper.cpp loads (names are
// OpenAI's state_dict keys, in state_dict order), their shapes and element types (ct2-to-ggml.md §3.5-3.6),
// and the vocabulary block. Shared by the importers of every source format.
import { readFile } from "node:fs/promises";
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
