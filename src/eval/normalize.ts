/**
 * TypeScript port of OpenAI Whisper's text normalizers, used to score transcripts the way Whisper's
 * paper and most published WER figures do. Source: `whisper/normalizers/basic.py` and `english.py`
 * of openai-whisper 20250625 (the PyPI release; later main-branch commits add "half a million"
 * handling and glue currency symbols to numbers). `english-spelling.json` is Whisper's
 * `whisper/normalizers/english.json` unchanged (British → American, from tysto.com's UK-US list).
 * Original: https://github.com/openai/whisper, Copyright (c) 2022 OpenAI, MIT License.
 *
 * Python's `re` differs from JavaScript's RegExp in ways that change results, so the port spells
 * those out: `\b`, `\s` and `\d` are Unicode-aware in Python; `.` excludes only "\n";
 * integers are unbounded (hence bigint: "one decillion" is 10^33).
 */
import spellingMap from "./english-spelling.json" with { type: "json" };

// Python's str.isspace() set, which `\s` and str.split() use.
const WS = "[\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";
// Python's Unicode `\b`: a boundary between a word character ([\p{L}\p{N}_]) and anything else.
const W = "[\\p{L}\\p{N}_]";
const B = `(?:(?<=${W})(?!${W})|(?<!${W})(?=${W}))`;

/** Compiles a pattern written with Python's meanings of \b and \s. */
function py(pattern: string, flags = "gu"): RegExp {
  return new RegExp(pattern.replaceAll("\\b", B).replaceAll("\\s", WS), flags);
}

const WS_RUN = py("\\s+");
const BRACKETS = py("[<\\[][^>\\]]*[>\\]]");
const PARENTHESES = py("\\(([^)]+?)\\)");

/** Python's str.split() with no argument: split on whitespace runs, dropping empty ends. */
function splitWords(s: string): string[] {
  return s.split(WS_RUN).filter((w) => w.length > 0);
}

// Non-ASCII letters that NFKD does not decompose.
const ADDITIONAL_DIACRITICS = new Map(
  Object.entries({
    œ: "oe",
    Œ: "OE",
    ø: "o",
    Ø: "O",
    æ: "ae",
    Æ: "AE",
    ß: "ss",
    ẞ: "SS",
    đ: "d",
    Đ: "D",
    ð: "d",
    Ð: "D",
    þ: "th",
    Þ: "th",
    ł: "l",
    Ł: "L",
  }),
);

const NONSPACING_MARK = /^\p{Mn}$/u;
const MARK_SYMBOL_PUNCT = /^[\p{M}\p{S}\p{P}]$/u;

/** Replaces marks, symbols and punctuation with a space and drops diacritics (NFKD). */
export function removeSymbolsAndDiacritics(s: string, keep = ""): string {
  let out = "";
  for (const c of s.normalize("NFKD")) {
    if (keep.includes(c)) out += c;
    else if (ADDITIONAL_DIACRITICS.has(c)) out += ADDITIONAL_DIACRITICS.get(c);
    else if (NONSPACING_MARK.test(c)) continue;
    else out += MARK_SYMBOL_PUNCT.test(c) ? " " : c;
  }
  return out;
}

/** Replaces marks, symbols and punctuation with a space, keeping diacritics (NFKC). */
export function removeSymbols(s: string): string {
  let out = "";
  for (const c of s.normalize("NFKC")) out += MARK_SYMBOL_PUNCT.test(c) ? " " : c;
  return out;
}

export interface BasicTextNormalizerOptions {
  /** Strip diacritics (NFKD) instead of keeping them (NFKC). @defaultValue false */
  removeDiacritics?: boolean;
  /** Put a space between grapheme clusters, for character-level scoring. @defaultValue false */
  splitLetters?: boolean;
}

/** Whisper's language-independent normaliser: lower case, drop bracketed text and symbols. */
export class BasicTextNormalizer {
  readonly #clean: (s: string) => string;
  readonly #splitLetters: boolean;

  constructor(options: BasicTextNormalizerOptions = {}) {
    this.#clean = options.removeDiacritics ? (s) => removeSymbolsAndDiacritics(s) : removeSymbols;
    this.#splitLetters = options.splitLetters ?? false;
  }

  normalize(text: string): string {
    let s = text.toLowerCase();
    s = s.replace(BRACKETS, "").replace(PARENTHESES, "");
    s = this.#clean(s).toLowerCase();
    if (this.#splitLetters) {
      const segmenter = new Intl.Segmenter(undefined, { granularity: "grapheme" });
      s = Array.from(segmenter.segment(s), (g) => g.segment).join(" ");
    }
    return s.replace(WS_RUN, " ");
  }
}

type NumberValue = bigint | string | null;

const ARABIC_NUMBER = /^\p{Nd}+(\.\p{Nd}+)?$/u;
const DIGIT = /^\p{Nd}$/u;

/** Value of a Unicode decimal digit; digits come in runs of ten starting at zero. */
function digitValue(c: string): number {
  let start = c.codePointAt(0)!;
  while (DIGIT.test(String.fromCodePoint(start - 1))) start--;
  return (c.codePointAt(0)! - start) % 10;
}

/** Python int() of a string of Unicode decimal digits. */
function parseDigits(s: string): bigint {
  let n = 0n;
  for (const c of s) n = n * 10n + BigInt(digitValue(c));
  return n;
}

interface Fraction {
  numerator: bigint;
  denominator: bigint;
}

/** Python's Fraction(s) for the forms the number normaliser builds ("12", "2.5", "3."); null if invalid. */
function toFraction(value: bigint | string): Fraction | null {
  if (typeof value === "bigint") return { numerator: value, denominator: 1n };
  const m = /^(?=\p{Nd}|\.\p{Nd})(\p{Nd}*)(?:\.(\p{Nd}*))?$/u.exec(value.trim());
  if (!m) return null;
  const decimals = m[2] ?? "";
  return { numerator: parseDigits((m[1] ?? "") + decimals), denominator: 10n ** BigInt(decimals.length) };
}

/** `f * multiplier` when it is a whole number, else null. */
function scaledInteger(f: Fraction | null, multiplier: bigint): bigint | null {
  if (f === null) return null;
  const p = f.numerator * multiplier;
  return p % f.denominator === 0n ? p / f.denominator : null;
}

const ONES_NAMES = [
  "one",
  "two",
  "three",
  "four",
  "five",
  "six",
  "seven",
  "eight",
  "nine",
  "ten",
  "eleven",
  "twelve",
  "thirteen",
  "fourteen",
  "fifteen",
  "sixteen",
  "seventeen",
  "eighteen",
  "nineteen",
];
const TENS_NAMES = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"];
const MULTIPLIER_NAMES = [
  "hundred",
  "thousand",
  "million",
  "billion",
  "trillion",
  "quadrillion",
  "quintillion",
  "sextillion",
  "septillion",
  "octillion",
  "nonillion",
  "decillion",
];

type Suffixed = Map<string, [bigint, string]>;

/**
 * Turns spelled-out numbers into digits: "twenty five" → "25", "$20 million" → "$20000000",
 * "one oh one" → "101", "1960s" and "32nd" keep their suffix, "one(s)" stays a word.
 */
export class EnglishNumberNormalizer {
  readonly #zeros = new Set(["o", "oh", "zero"]);
  readonly #ones = new Map(ONES_NAMES.map((name, i) => [name, BigInt(i + 1)]));
  readonly #onesSuffixed: Suffixed;
  readonly #tens = new Map(TENS_NAMES.map((name, i) => [name, BigInt((i + 2) * 10)]));
  readonly #tensSuffixed: Suffixed;
  readonly #multipliers = new Map(
    MULTIPLIER_NAMES.map((name, i) => [name, i === 0 ? 100n : 1000n ** BigInt(i)]),
  );
  readonly #multipliersSuffixed: Suffixed;
  readonly #decimals: Set<string>;
  readonly #precedingPrefixers = new Map([
    ["minus", "-"],
    ["negative", "-"],
    ["plus", "+"],
    ["positive", "+"],
  ]);
  readonly #followingPrefixers = new Map([
    ["pound", "£"],
    ["pounds", "£"],
    ["euro", "€"],
    ["euros", "€"],
    ["dollar", "$"],
    ["dollars", "$"],
    ["cent", "¢"],
    ["cents", "¢"],
  ]);
  readonly #prefixes: Set<string>;
  readonly #suffixers = new Map<string, string | Map<string, string>>([
    ["per", new Map([["cent", "%"]])],
    ["percent", "%"],
  ]);
  readonly #specials = new Set(["and", "double", "triple", "point"]);
  readonly #words: Set<string>;

  constructor() {
    const onesPlural: Suffixed = new Map();
    const onesOrdinal: Suffixed = new Map([
      ["zeroth", [0n, "th"]],
      ["first", [1n, "st"]],
      ["second", [2n, "nd"]],
      ["third", [3n, "rd"]],
      ["fifth", [5n, "th"]],
      ["twelfth", [12n, "th"]],
    ]);
    for (const [name, value] of this.#ones) {
      onesPlural.set(name === "six" ? "sixes" : name + "s", [value, "s"]);
      // Faithful to the original, which also yields "nineth" rather than "ninth".
      if (value > 3n && value !== 5n && value !== 12n) {
        onesOrdinal.set(name + (name.endsWith("t") ? "h" : "th"), [value, "th"]);
      }
    }
    this.#onesSuffixed = new Map([...onesPlural, ...onesOrdinal]);
    const tensEntries = [...this.#tens];
    this.#tensSuffixed = new Map([
      ...tensEntries.map(([n, v]): [string, [bigint, string]] => [n.replace("y", "ies"), [v, "s"]]),
      ...tensEntries.map(([n, v]): [string, [bigint, string]] => [n.replace("y", "ieth"), [v, "th"]]),
    ]);
    const multiplierEntries = [...this.#multipliers];
    this.#multipliersSuffixed = new Map([
      ...multiplierEntries.map(([n, v]): [string, [bigint, string]] => [n + "s", [v, "s"]]),
      ...multiplierEntries.map(([n, v]): [string, [bigint, string]] => [n + "th", [v, "th"]]),
    ]);
    this.#decimals = new Set([...this.#ones.keys(), ...this.#tens.keys(), ...this.#zeros]);
    this.#prefixes = new Set([...this.#precedingPrefixers.values(), ...this.#followingPrefixers.values()]);
    this.#words = new Set([
      ...this.#zeros,
      ...this.#ones.keys(),
      ...this.#onesSuffixed.keys(),
      ...this.#tens.keys(),
      ...this.#tensSuffixed.keys(),
      ...this.#multipliers.keys(),
      ...this.#multipliersSuffixed.keys(),
      ...this.#precedingPrefixers.keys(),
      ...this.#followingPrefixers.keys(),
      ...this.#suffixers.keys(),
      ...this.#specials,
    ]);
  }

  normalize(text: string): string {
    const s = this.#preprocess(text);
    return this.#postprocess([...this.#processWords(splitWords(s))].join(" "));
  }

  *#processWords(words: string[]): Generator<string> {
    let prefix: string | null = null;
    let value: NumberValue = null;
    let skip = false;

    const output = (result: bigint | string): string => {
      let r = String(result);
      if (prefix !== null) r = prefix + r;
      value = null;
      prefix = null;
      return r;
    };
    // Python's `value or ""`: None, "" and 0 are all falsy.
    const orEmpty = (v: NumberValue): string => (v === null || v === "" || v === 0n ? "" : String(v));
    const isIn = (word: string | undefined, set: { has(k: string): boolean }): boolean =>
      word !== undefined && set.has(word);

    for (let i = 0; i < words.length; i++) {
      const prev = words[i - 1];
      const current = words[i]!;
      const next = words[i + 1];
      if (skip) {
        skip = false;
        continue;
      }

      const nextIsNumeric = next !== undefined && ARABIC_NUMBER.test(next);
      const hasPrefix = this.#prefixes.has(current[0]!);
      const currentWithoutPrefix = hasPrefix ? current.slice(1) : current;

      if (ARABIC_NUMBER.test(currentWithoutPrefix)) {
        // arabic numbers (potentially with signs and fractions)
        const f = toFraction(currentWithoutPrefix)!;
        if (value !== null) {
          if (typeof value === "string" && value.endsWith(".")) {
            // concatenate decimals / ip address components
            value = value + current;
            continue;
          }
          yield output(value);
        }
        prefix = hasPrefix ? current[0]! : prefix;
        value = f.denominator === 1n ? f.numerator : currentWithoutPrefix;
      } else if (!this.#words.has(current)) {
        if (value !== null) yield output(value);
        yield output(current);
      } else if (this.#zeros.has(current)) {
        value = orEmpty(value) + "0";
      } else if (this.#ones.has(current)) {
        const ones = this.#ones.get(current)!;
        if (value === null) {
          value = ones;
        } else if (typeof value === "string" || isIn(prev, this.#ones)) {
          if (isIn(prev, this.#tens) && ones < 10n) {
            value = replaceLastZero(String(value), ones);
          } else {
            value = String(value) + String(ones);
          }
        } else if (ones < 10n) {
          value = value % 10n === 0n ? value + ones : String(value) + String(ones);
        } else {
          value = value % 100n === 0n ? value + ones : String(value) + String(ones);
        }
      } else if (this.#onesSuffixed.has(current)) {
        // ordinal or cardinal; yield the number right away
        const [ones, suffix] = this.#onesSuffixed.get(current)!;
        if (value === null) {
          yield output(String(ones) + suffix);
        } else if (typeof value === "string" || isIn(prev, this.#ones)) {
          if (isIn(prev, this.#tens) && ones < 10n) {
            yield output(replaceLastZero(String(value), ones) + suffix);
          } else {
            yield output(String(value) + String(ones) + suffix);
          }
        } else if (ones < 10n) {
          yield output(
            value % 10n === 0n ? String(value + ones) + suffix : String(value) + String(ones) + suffix,
          );
        } else {
          yield output(
            value % 100n === 0n ? String(value + ones) + suffix : String(value) + String(ones) + suffix,
          );
        }
        value = null;
      } else if (this.#tens.has(current)) {
        const tens = this.#tens.get(current)!;
        if (value === null) value = tens;
        else if (typeof value === "string") value = value + String(tens);
        else value = value % 100n === 0n ? value + tens : String(value) + String(tens);
      } else if (this.#tensSuffixed.has(current)) {
        // ordinal or cardinal; yield the number right away
        const [tens, suffix] = this.#tensSuffixed.get(current)!;
        if (value === null) yield output(String(tens) + suffix);
        else if (typeof value === "string") yield output(value + String(tens) + suffix);
        else if (value % 100n === 0n) yield output(String(value + tens) + suffix);
        else yield output(String(value) + String(tens) + suffix);
      } else if (this.#multipliers.has(current)) {
        const multiplier = this.#multipliers.get(current)!;
        if (value === null) {
          value = multiplier;
        } else if (typeof value === "string" || value === 0n) {
          const p = scaledInteger(toFraction(value), multiplier);
          if (p !== null) {
            value = p;
          } else {
            yield output(value);
            value = multiplier;
          }
        } else {
          value = (value / 1000n) * 1000n + (value % 1000n) * multiplier;
        }
      } else if (this.#multipliersSuffixed.has(current)) {
        const [multiplier, suffix] = this.#multipliersSuffixed.get(current)!;
        if (value === null) {
          yield output(String(multiplier) + suffix);
        } else if (typeof value === "string") {
          const p = scaledInteger(toFraction(value), multiplier);
          if (p !== null) {
            yield output(String(p) + suffix);
          } else {
            yield output(value);
            yield output(String(multiplier) + suffix);
          }
        } else {
          value = (value / 1000n) * 1000n + (value % 1000n) * multiplier;
          yield output(String(value) + suffix);
        }
        value = null;
      } else if (this.#precedingPrefixers.has(current)) {
        // apply prefix (positive, minus, etc.) if it precedes a number
        if (value !== null) yield output(value);
        if (isIn(next, this.#words) || nextIsNumeric) prefix = this.#precedingPrefixers.get(current)!;
        else yield output(current);
      } else if (this.#followingPrefixers.has(current)) {
        // apply prefix (dollars, cents, etc.) only after a number
        if (value !== null) {
          prefix = this.#followingPrefixers.get(current)!;
          yield output(value);
        } else {
          yield output(current);
        }
      } else if (this.#suffixers.has(current)) {
        // apply suffix symbols (percent -> '%')
        if (value !== null) {
          const suffix = this.#suffixers.get(current)!;
          if (typeof suffix !== "string") {
            if (next !== undefined && suffix.has(next)) {
              yield output(String(value) + suffix.get(next)!);
              skip = true;
            } else {
              yield output(value);
              yield output(current);
            }
          } else {
            yield output(String(value) + suffix);
          }
        } else {
          yield output(current);
        }
      } else if (this.#specials.has(current)) {
        if (!isIn(next, this.#words) && !nextIsNumeric) {
          // apply special handling only if the next word can be numeric
          if (value !== null) yield output(value);
          yield output(current);
        } else if (current === "and") {
          // ignore "and" after hundreds, thousands, etc.
          if (!isIn(prev, this.#multipliers)) {
            if (value !== null) yield output(value);
            yield output(current);
          }
        } else if (current === "double" || current === "triple") {
          if (isIn(next, this.#ones) || isIn(next, this.#zeros)) {
            const repeats = current === "double" ? 2 : 3;
            const ones = this.#ones.get(next!) ?? 0n;
            value = orEmpty(value) + String(ones).repeat(repeats);
            skip = true;
          } else {
            if (value !== null) yield output(value);
            yield output(current);
          }
        } else if (current === "point") {
          if (isIn(next, this.#decimals) || nextIsNumeric) value = orEmpty(value) + ".";
        }
      }
    }
    if (value !== null) yield output(value);
  }

  #preprocess(text: string): string {
    // replace "<number> and a half" with "<number> point five"
    const results: string[] = [];
    const segments = text.split(py("\\band\\s+a\\s+half\\b", "u"));
    segments.forEach((segment, i) => {
      if (splitWords(segment).length === 0) return; // Python: segment.strip() is empty
      results.push(segment);
      if (i === segments.length - 1) return;
      const lastWord = splitWords(segment).at(-1)!;
      const numeric = this.#decimals.has(lastWord) || this.#multipliers.has(lastWord);
      results.push(numeric ? "point five" : "and a half");
    });
    let s = results.join(" ");

    // put a space at number/letter boundary
    s = s.replace(/([a-z])([0-9])/g, "$1 $2").replace(/([0-9])([a-z])/g, "$1 $2");
    // but remove spaces which could be a suffix
    return s.replace(py("([0-9])\\s+(st|nd|rd|th|s)\\b"), "$1$2");
  }

  #postprocess(s: string): string {
    // apply currency postprocessing; "$2 and ¢7" -> "$2.07"
    s = s.replace(
      py("([€£$])([0-9]+) (?:and )?¢([0-9]{1,2})\\b"),
      (_m, currency: string, integer: string, cents: string) =>
        `${currency}${integer}.${cents.padStart(2, "0")}`,
    );
    s = s.replace(py("[€£$]0[^\\n]([0-9]{1,2})\\b"), (_m, cents: string) => `¢${Number(cents)}`);
    // write "one(s)" instead of "1(s)", just for the readability
    return s.replace(py("\\b1(s?)\\b"), "one$1");
  }
}

/** "1920" + 1 → "1921": a ones word after a tens word fills in the tens' zero. */
function replaceLastZero(value: string, ones: bigint): string {
  if (!value.endsWith("0")) throw new Error(`number normaliser: expected "${value}" to end in 0`);
  return value.slice(0, -1) + String(ones);
}

/** British → American spellings, word by word ("colour" → "color"). */
export class EnglishSpellingNormalizer {
  readonly #mapping: ReadonlyMap<string, string> = new Map(
    Object.entries(spellingMap as Record<string, string>),
  );

  normalize(text: string): string {
    return splitWords(text)
      .map((word) => this.#mapping.get(word) ?? word)
      .join(" ");
  }
}

const IGNORE_PATTERNS = py("\\b(hmm|mm|mhm|mmm|uh|um)\\b");
const REPLACERS: [RegExp, string][] = (
  [
    // common contractions
    ["\\bwon't\\b", "will not"],
    ["\\bcan't\\b", "can not"],
    ["\\blet's\\b", "let us"],
    ["\\bain't\\b", "aint"],
    ["\\by'all\\b", "you all"],
    ["\\bwanna\\b", "want to"],
    ["\\bgotta\\b", "got to"],
    ["\\bgonna\\b", "going to"],
    ["\\bi'ma\\b", "i am going to"],
    ["\\bimma\\b", "i am going to"],
    ["\\bwoulda\\b", "would have"],
    ["\\bcoulda\\b", "could have"],
    ["\\bshoulda\\b", "should have"],
    ["\\bma'am\\b", "madam"],
    // contractions in titles/prefixes
    ["\\bmr\\b", "mister "],
    ["\\bmrs\\b", "missus "],
    ["\\bst\\b", "saint "],
    ["\\bdr\\b", "doctor "],
    ["\\bprof\\b", "professor "],
    ["\\bcapt\\b", "captain "],
    ["\\bgov\\b", "governor "],
    ["\\bald\\b", "alderman "],
    ["\\bgen\\b", "general "],
    ["\\bsen\\b", "senator "],
    ["\\brep\\b", "representative "],
    ["\\bpres\\b", "president "],
    ["\\brev\\b", "reverend "],
    ["\\bhon\\b", "honorable "],
    ["\\basst\\b", "assistant "],
    ["\\bassoc\\b", "associate "],
    ["\\blt\\b", "lieutenant "],
    ["\\bcol\\b", "colonel "],
    ["\\bjr\\b", "junior "],
    ["\\bsr\\b", "senior "],
    ["\\besq\\b", "esquire "],
    // perfect tenses; ideally any past participle, but that is harder
    ["'d been\\b", " had been"],
    ["'s been\\b", " has been"],
    ["'d gone\\b", " had gone"],
    ["'s gone\\b", " has gone"],
    ["'d done\\b", " had done"], // "'s done" is ambiguous
    ["'s got\\b", " has got"],
    // general contractions
    ["n't\\b", " not"],
    ["'re\\b", " are"],
    ["'s\\b", " is"],
    ["'d\\b", " would"],
    ["'ll\\b", " will"],
    ["'t\\b", " not"],
    ["'ve\\b", " have"],
    ["'m\\b", " am"],
  ] as const
).map(([pattern, replacement]) => [py(pattern), replacement]);

/** Whisper's English normaliser: contractions, titles, numbers, spellings, fillers, symbols. */
export class EnglishTextNormalizer {
  readonly #numbers = new EnglishNumberNormalizer();
  readonly #spellings = new EnglishSpellingNormalizer();

  normalize(text: string): string {
    let s = text.toLowerCase();
    s = s.replace(BRACKETS, "").replace(PARENTHESES, "");
    s = s.replace(IGNORE_PATTERNS, "");
    s = s.replace(py("\\s+'"), "'"); // when there's a space before an apostrophe
    for (const [pattern, replacement] of REPLACERS) s = s.replace(pattern, replacement);

    s = s.replace(/(\p{Nd}),(\p{Nd})/gu, "$1$2"); // remove commas between digits
    s = s.replace(/\.([^0-9]|$)/gu, " $1"); // remove periods not followed by numbers
    s = removeSymbolsAndDiacritics(s, ".%$¢€£"); // keep numeric symbols

    s = this.#numbers.normalize(s);
    s = this.#spellings.normalize(s);

    // now remove prefix/suffix symbols that are not preceded/followed by numbers
    s = s.replace(/[.$¢€£]([^0-9])/gu, " $1");
    s = s.replace(/([^0-9])%/gu, "$1 ");
    return s.replace(WS_RUN, " ");
  }
}
