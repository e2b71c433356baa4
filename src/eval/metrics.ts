/**
 * Word and character error rates. An error rate is (substitutions + deletions + insertions) divided
 * by the reference length; overall figures sum edits and reference lengths across clips (the
 * corpus-level rate Whisper and jiwer report), never average per-clip ratios.
 */
import { EnglishTextNormalizer } from "./normalize.js";

export interface EditCounts {
  substitutions: number;
  deletions: number;
  insertions: number;
  /** Tokens (words or characters) in the reference: the denominator. */
  referenceLength: number;
}

/** Minimum edits turning `reference` into `hypothesis` (Levenshtein), split by kind. */
export function editCounts<T>(reference: readonly T[], hypothesis: readonly T[]): EditCounts {
  const n = reference.length;
  const m = hypothesis.length;
  // cost[i][j]: edits between reference[0..i) and hypothesis[0..j), in one flat array.
  const width = m + 1;
  const cost = new Uint32Array((n + 1) * width);
  for (let i = 0; i <= n; i++) cost[i * width] = i;
  for (let j = 0; j <= m; j++) cost[j] = j;
  for (let i = 1; i <= n; i++) {
    for (let j = 1; j <= m; j++) {
      const same = reference[i - 1] === hypothesis[j - 1];
      cost[i * width + j] = Math.min(
        cost[(i - 1) * width + (j - 1)]! + (same ? 0 : 1),
        cost[(i - 1) * width + j]! + 1,
        cost[i * width + (j - 1)]! + 1,
      );
    }
  }
  // Walk back along one optimal path to split the total into kinds.
  const counts: EditCounts = { substitutions: 0, deletions: 0, insertions: 0, referenceLength: n };
  let i = n;
  let j = m;
  while (i > 0 || j > 0) {
    const here = cost[i * width + j]!;
    if (i > 0 && j > 0) {
      const same = reference[i - 1] === hypothesis[j - 1];
      if (here === cost[(i - 1) * width + (j - 1)]! + (same ? 0 : 1)) {
        if (!same) counts.substitutions++;
        i--;
        j--;
        continue;
      }
    }
    if (i > 0 && here === cost[(i - 1) * width + j]! + 1) {
      counts.deletions++;
      i--;
    } else {
      counts.insertions++;
      j--;
    }
  }
  return counts;
}

export function totalEdits(c: EditCounts): number {
  return c.substitutions + c.deletions + c.insertions;
}

/** Edits per reference token; 0 for an empty reference matched by an empty hypothesis. */
export function errorRate(c: EditCounts): number {
  const edits = totalEdits(c);
  if (c.referenceLength === 0) {
    if (edits === 0) return 0;
    throw new RangeError("error rate: the reference is empty, so any hypothesis token has no denominator");
  }
  return edits / c.referenceLength;
}

/** Sums counts so that the overall rate is total edits / total reference tokens. */
export function sumCounts(all: readonly EditCounts[]): EditCounts {
  const sum: EditCounts = { substitutions: 0, deletions: 0, insertions: 0, referenceLength: 0 };
  for (const c of all) {
    sum.substitutions += c.substitutions;
    sum.deletions += c.deletions;
    sum.insertions += c.insertions;
    sum.referenceLength += c.referenceLength;
  }
  return sum;
}

function words(s: string): string[] {
  return s.split(/\s+/u).filter((w) => w.length > 0);
}

const english = new EnglishTextNormalizer();

/** Normalises both sides with Whisper's English normaliser (default) and counts word edits. */
export function wordErrors(
  reference: string,
  hypothesis: string,
  normalize: (s: string) => string = (s) => english.normalize(s),
): EditCounts {
  return editCounts(words(normalize(reference)), words(normalize(hypothesis)));
}

/** Character edits over normalised text with whitespace runs collapsed to one space. */
export function characterErrors(
  reference: string,
  hypothesis: string,
  normalize: (s: string) => string = (s) => english.normalize(s),
): EditCounts {
  const chars = (s: string) => [...words(normalize(s)).join(" ")];
  return editCounts(chars(reference), chars(hypothesis));
}

/**
 * Text for CJK character scoring: NFKC (full-width Latin and digits become ASCII, half-width kana
 * full-width), lower case, and no punctuation, symbols or whitespace, since Japanese and Chinese
 * transcripts differ mostly in punctuation and spacing conventions, not in what was said.
 */
export function normalizeCjk(s: string): string {
  return s
    .normalize("NFKC")
    .toLowerCase()
    .replace(/[\p{P}\p{S}\p{Z}\s]/gu, "");
}

/** Character edits for Japanese / Chinese / Korean text, one token per code point. */
export function cjkCharacterErrors(reference: string, hypothesis: string): EditCounts {
  return editCounts([...normalizeCjk(reference)], [...normalizeCjk(hypothesis)]);
}
