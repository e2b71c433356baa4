// GPT-2 byte-level token strings ↔ raw bytes, and reading CTranslate2 vocabulary files (§1.10, §3.3).
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";

/** Code point used by GPT-2's bytes_to_unicode for each byte value. */
const BYTE_TO_CODEPOINT: number[] = (() => {
  const table = new Array<number>(256);
  let next = 0x100;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    table[b] = printable ? b : next++;
  }
  return table;
})();

const CODEPOINT_TO_BYTE = new Map(BYTE_TO_CODEPOINT.map((cp, b) => [cp, b]));

/** Raw bytes of a GPT-2 byte-level token string; throws on a code point outside the 256-entry table. */
export function tokenToBytes(token: string): Buffer {
  const out = Buffer.alloc(token.length);
  let n = 0;
  for (const ch of token) {
    const b = CODEPOINT_TO_BYTE.get(ch.codePointAt(0)!);
    if (b === undefined) throw new Error(`token ${JSON.stringify(token)} is not a GPT-2 byte-level string`);
    out[n++] = b;
  }
  return out.subarray(0, n);
}

/** GPT-2 byte-level string for raw bytes (inverse of tokenToBytes). */
export function bytesToToken(bytes: Uint8Array): string {
  return String.fromCodePoint(...Array.from(bytes, (b) => BYTE_TO_CODEPOINT[b]!));
}

/**
 * Token strings of a CTranslate2 model directory, index = token id. Like CTranslate2, prefers
 * vocabulary.json and falls back to vocabulary.txt (one token per line; empty tokens are kept).
 */
export async function readCt2Vocabulary(dir: string): Promise<{ file: string; tokens: string[] }> {
  const json = path.join(dir, "vocabulary.json");
  if (existsSync(json)) {
    let tokens: unknown;
    try {
      tokens = JSON.parse(await readFile(json, "utf8"));
    } catch (err) {
      throw new Error(`${json}: invalid JSON (${(err as Error).message})`, { cause: err });
    }
    if (!Array.isArray(tokens) || !tokens.every((t) => typeof t === "string")) {
      throw new Error(`${json}: expected a JSON array of token strings`);
    }
    return { file: json, tokens };
  }
  const txt = path.join(dir, "vocabulary.txt");
  if (!existsSync(txt)) throw new Error(`${dir}: no vocabulary.json or vocabulary.txt`);
  const lines = (await readFile(txt, "utf8")).split("\n");
  if (lines.at(-1) === "") lines.pop();
  const tokens = lines.every((l) => l.endsWith("\r")) ? lines.map((l) => l.slice(0, -1)) : lines;
  return { file: txt, tokens };
}
