import { test } from "node:test";
import assert from "node:assert/strict";
import {
  BasicTextNormalizer,
  EnglishNumberNormalizer,
  EnglishSpellingNormalizer,
  EnglishTextNormalizer,
} from "../../src/eval/normalize.js";

// Expected outputs were produced by openai-whisper 20250625's own Python normalizers.
const ENGLISH_CASES: [string, string][] = [
  ["twenty five", "25"],
  ["Twenty-five dollars", "$25"],
  ["$20 million", "$20000000"],
  ["1st", "1st"],
  ["the 21st century", "the 21st century"],
  ["the 1960s", "the 1960s"],
  ["one oh one", "101"],
  ["one", "one"],
  ["I have one apple and two oranges", "i have one apple and 2 oranges"],
  ["two hundred and fifty", "250"],
  ["three point one four", "3.14"],
  ["one and a half", "one.5"],
  ["minus five", "-5"],
  ["fifty per cent", "50%"],
  ["two dollars and seven cents", "$2.07"],
  ["$2 and 7 cents", "$2.07"],
  ["nineteen eighty four", "1984"],
  ["twenty twenty", "2020"],
  ["double o seven", "007"],
  ["one decillion", "1000000000000000000000000000000000"],
  // The original's ordinal table spells it "nineth", so "ninth" stays a word.
  ["ninth", "ninth"],
  ["1,000,000", "1000000"],
  ["3.5 million", "3500000"],
  ["192.168.0.1", "192.168.0 one"],
  ["It cost $3.50.", "it cost $3.50"],
  ["Mr. Smith and Dr. Jones", "mister smith and doctor jones"],
  ["I won't go, can't stop, let's see", "i will not go can not stop let us see"],
  ["y'all gonna wanna", "you all going to want to"],
  ["he's been there; she'd gone", "he has been there she had gone"],
  [
    "it's mine and I'm done, we've seen, they're here, you'll see",
    "it is mine and i am done we have seen they are here you will see",
  ],
  ["café's been good", "cafe has been good"],
  ["Um, uh, hmm, I mean mm", "i mean"],
  ["[MUSIC] hello (laughs) <noise> world", "hello world"],
  ["The colour of the centre", "the color of the center"],
  ["I realise the organisation's behaviour", "i realize the organization is behavior"],
  ["STUFF IT INTO YOU HIS BELLY COUNSELLED HIM", "stuff it into you his belly counseled him"],
  [
    "NOR IS MISTER QUILTER'S MANNER LESS INTERESTING THAN HIS MATTER",
    "nor is mister quilter is manner less interesting than his matter",
  ],
  ["Café résumé naïve Œuvre", "cafe resume naive oeuvre"],
  ["Straße Łódź Þórr", "strasse lodz thorr"],
  ["Hello, world! How are you?", "hello world how are you"],
  ["the aspect ratio ... is therefore said to be 3:2", "the aspect ratio is therefore said to be 3 2"],
  ["hello\u00a0world\u2003x", "hello world x"],
  ["a\u001cb", "a b"],
];

test("EnglishTextNormalizer matches Whisper's Python output", () => {
  const normalizer = new EnglishTextNormalizer();
  for (const [input, expected] of ENGLISH_CASES) {
    assert.equal(normalizer.normalize(input), expected, `input ${JSON.stringify(input)}`);
  }
});

test("EnglishTextNormalizer makes the JFK reference and a typical transcript equal", () => {
  const normalizer = new EnglishTextNormalizer();
  const reference =
    "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.";
  const hypothesis =
    " And so, my fellow Americans, ask not what your country can do for you, ask what you can do for your country.";
  assert.equal(normalizer.normalize(hypothesis).trim(), normalizer.normalize(reference).trim());
});

test("EnglishNumberNormalizer works on its own", () => {
  const numbers = new EnglishNumberNormalizer();
  assert.equal(numbers.normalize("one hundred and twenty three thousand four hundred fifty six"), "123456");
  assert.equal(numbers.normalize("sixty fourth"), "64th");
  assert.equal(numbers.normalize("the twenties"), "the 20s");
  assert.equal(numbers.normalize("ten percent"), "10%");
  assert.equal(numbers.normalize(""), "");
});

test("EnglishSpellingNormalizer maps British spellings word by word", () => {
  const spelling = new EnglishSpellingNormalizer();
  assert.equal(spelling.normalize("the colour of  centres"), "the color of centers");
  assert.equal(spelling.normalize("colourful"), "colorful");
  assert.equal(spelling.normalize("Colour"), "Colour", "the map is lower case; callers lower-case first");
});

test("BasicTextNormalizer in its three modes", () => {
  const cases: [string, string, string, string][] = [
    ["[MUSIC] hello (laughs) <noise> world", " hello world", " hello world", " h e l l o w o r l d"],
    [
      "Café résumé naïve Œuvre",
      "café résumé naïve œuvre",
      "cafe resume naive oeuvre",
      "c a f é r é s u m é n a ï v e œ u v r e",
    ],
    [
      "Hello, world! How are you?",
      "hello world how are you ",
      "hello world how are you ",
      "h e l l o w o r l d h o w a r e y o u ",
    ],
    ["ﬁne ligature", "fine ligature", "fine ligature", "f i n e l i g a t u r e"],
    [
      "水をマレーシアから買わなくてはならないのです。",
      "水をマレーシアから買わなくてはならないのです ",
      "水をマレーシアから買わなくてはならないのてす ",
      "水 を マ レ ー シ ア か ら 買 わ な く て は な ら な い の で す ",
    ],
  ];
  const basic = new BasicTextNormalizer();
  const noDiacritics = new BasicTextNormalizer({ removeDiacritics: true });
  const split = new BasicTextNormalizer({ splitLetters: true });
  for (const [input, plain, stripped, letters] of cases) {
    assert.equal(basic.normalize(input), plain);
    assert.equal(noDiacritics.normalize(input), stripped);
    assert.equal(split.normalize(input), letters);
  }
});
