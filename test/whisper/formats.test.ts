import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  CONTENT_TYPES,
  MAX_CUE_COLUMNS,
  formatFromAccept,
  renderTranscript,
  resultAttributes,
  splitCueText,
  timestamp,
} from "../../src/whisper/formats.js";
import { OUTPUT_FORMATS, type Transcript } from "../../src/whisper/types.js";

const transcript: Transcript = {
  text: "And so my fellow Americans, ask not.",
  language: "en",
  duration: 3725.5,
  segments: [
    {
      id: 0,
      start: 0,
      end: 2.5,
      text: " And so my fellow Americans,",
      words: [
        { word: "And", start: 0, end: 0.4 },
        { word: "Americans,", start: 1.2, end: 2.5 },
      ],
    },
    // Overlapping and backwards times, as whisper sometimes emits across windows.
    { id: 1, start: 2.4, end: 2.2, text: " ask\nnot." },
    { id: 2, start: 3723.0015, end: 3725.5, text: "   " },
    { id: 3, start: 3723.0015, end: 3725.5, text: " Late --> words" },
  ],
};

describe("timestamp", () => {
  it("formats SRT and VTT times with hours, zero padding and rounded milliseconds", () => {
    assert.equal(timestamp(0, ","), "00:00:00,000");
    assert.equal(timestamp(3723.0015, ","), "01:02:03,002");
    assert.equal(timestamp(59.9996, "."), "00:01:00.000");
    assert.equal(timestamp(36_000, "."), "10:00:00.000");
    assert.equal(timestamp(-1, ","), "00:00:00,000");
  });
});

describe("renderTranscript", () => {
  it("renders json with segments and words", () => {
    const json = JSON.parse(renderTranscript(transcript, "json"));
    assert.equal(json.text, transcript.text);
    assert.equal(json.language, "en");
    assert.equal(json.duration, 3725.5);
    assert.deepEqual(Object.keys(json.segments[0]), ["id", "start", "end", "text", "words"]);
    assert.equal(json.segments[1].words, undefined);
  });

  it("renders srt cues numbered from 1, on one line, with times that never run backwards", () => {
    const srt = renderTranscript(transcript, "srt");
    assert.equal(
      srt,
      "1\n00:00:00,000 --> 00:00:02,500\nAnd so my fellow Americans,\n\n" +
        "2\n00:00:02,400 --> 00:00:02,400\nask not.\n\n" +
        "3\n01:02:03,002 --> 01:02:05,500\nLate -> words\n",
    );
    assertMonotonic(srt, /(\d\d):(\d\d):(\d\d),(\d{3}) --> (\d\d):(\d\d):(\d\d),(\d{3})/g);
  });

  it("renders vtt with its header and dot milliseconds", () => {
    const vtt = renderTranscript(transcript, "vtt");
    assert.ok(vtt.startsWith("WEBVTT\n\n00:00:00.000 --> 00:00:02.500\nAnd so my fellow Americans,\n\n"));
    assertMonotonic(vtt, /(\d\d):(\d\d):(\d\d)\.(\d{3}) --> (\d\d):(\d\d):(\d\d)\.(\d{3})/g);
  });

  it("renders tsv in integer milliseconds like whisper", () => {
    assert.equal(
      renderTranscript(transcript, "tsv"),
      "start\tend\ttext\n0\t2500\tAnd so my fellow Americans,\n2400\t2400\task not.\n3723002\t3725500\tLate -> words\n",
    );
  });

  it("renders text with a trailing newline, and nothing for an empty transcript", () => {
    assert.equal(renderTranscript(transcript, "text"), `${transcript.text}\n`);
    assert.equal(renderTranscript({ ...transcript, text: "", segments: [] }, "text"), "");
    assert.equal(renderTranscript({ ...transcript, text: "", segments: [] }, "srt"), "");
  });

  it("renders OpenAI's verbose_json with the full language name and flat words", () => {
    const v = JSON.parse(renderTranscript(transcript, "verbose_json", { task: "translate" }));
    assert.equal(v.task, "translate");
    assert.equal(v.language, "english");
    assert.equal(v.duration, 3725.5);
    assert.deepEqual(Object.keys(v.segments[0]), [
      "id",
      "seek",
      "start",
      "end",
      "text",
      "tokens",
      "temperature",
      "avg_logprob",
      "compression_ratio",
      "no_speech_prob",
    ]);
    assert.ok(v.segments[0].compression_ratio > 0);
    assert.deepEqual(v.words, transcript.segments[0]!.words);
    assert.equal(
      JSON.parse(renderTranscript({ ...transcript, segments: [] }, "verbose_json")).task,
      "transcribe",
    );
  });

  it("has a content type for every format", () => {
    for (const f of OUTPUT_FORMATS) assert.ok(CONTENT_TYPES[f], f);
  });
});

describe("formatFromAccept", () => {
  it("maps each media type to its format", () => {
    assert.equal(formatFromAccept("application/json"), "json");
    assert.equal(formatFromAccept("text/plain"), "text");
    assert.equal(formatFromAccept("application/x-subrip"), "srt");
    assert.equal(formatFromAccept("text/vtt; charset=utf-8"), "vtt");
    assert.equal(formatFromAccept("text/tab-separated-values"), "tsv");
  });

  it("honours q-values and ignores what it cannot render", () => {
    assert.equal(formatFromAccept("text/plain;q=0.5, text/vtt"), "vtt");
    assert.equal(formatFromAccept("image/png, text/plain;q=0.1"), "text");
    assert.equal(formatFromAccept("text/vtt;q=0"), undefined);
    assert.equal(formatFromAccept("*/*"), undefined);
    assert.equal(formatFromAccept(undefined), undefined);
  });
});

function assertMonotonic(text: string, re: RegExp): void {
  let previous = -1;
  for (const m of text.matchAll(re)) {
    const n = m.slice(1).map(Number);
    const start = ((n[0]! * 60 + n[1]!) * 60 + n[2]!) * 1000 + n[3]!;
    const end = ((n[4]! * 60 + n[5]!) * 60 + n[6]!) * 1000 + n[7]!;
    assert.ok(start >= previous, `cue starting ${m[0]} runs backwards`);
    assert.ok(end >= start, `cue ${m[0]} ends before it starts`);
    previous = start;
  }
  assert.ok(previous >= 0, "no cues found");
}

describe("long segments become several cues, split where a reader expects", () => {
  const width = (t: string) =>
    [...t].reduce((w, c) => w + (/[\u3000-\u9fff\uff00-\uff60]/u.test(c) ? 2 : 1), 0);
  const ja =
    "抜群の運動神経を持ち合わせ、どんな要求にも応えてきた。水をマレーシアから買わなくてはならないのです。" +
    "そしてまた、彼は「新しい挑戦」を始めようとしている。";

  it("Japanese: at sentence ends, each piece within the width, nothing lost or broken", () => {
    const pieces = splitCueText(ja);
    assert.deepEqual(pieces, [
      "抜群の運動神経を持ち合わせ、どんな要求にも応えてきた。",
      "水をマレーシアから買わなくてはならないのです。",
      "そしてまた、彼は「新しい挑戦」を始めようとしている。",
    ]);
    assert.equal(pieces.join(""), ja);
    for (const p of pieces) assert.ok(width(p) <= MAX_CUE_COLUMNS && !p.includes("\ufffd"), p);
  });

  it("Japanese without punctuation: between characters, never before small kana, ー or closing marks", () => {
    const text =
      "ちょっとまってくださいキャッシュカードーをわすれたのでとりにいってきますからここでまっていてもらえますかしょうしょうおまちください";
    for (const max of [20, 21, 22, 23, 30]) {
      const pieces = splitCueText(text, max);
      assert.equal(pieces.join(""), text);
      for (const p of pieces) {
        assert.ok(width(p) <= max, `${p} fits ${max}`);
        assert.doesNotMatch(p, /^[ぁぃぅぇぉっゃゅょァィゥェォッャュョー」、。]/u, `${p} starts well`);
      }
    }
    // Grapheme clusters stay whole: a family emoji and a kana with a combining voiced mark.
    const clusters = "👩‍👩‍👧‍👦" + "か\u3099".repeat(30);
    for (const p of splitCueText(clusters, 10))
      assert.ok(!p.startsWith("\u3099") && !p.endsWith("\u200d"), p);
  });

  it("English: at a clause mark or a space, never inside a word", () => {
    const text =
      "Permission is hereby granted, free of charge, to any person obtaining a copy of this software and associated documentation files.";
    const pieces = splitCueText(text);
    assert.deepEqual(pieces, [
      "Permission is hereby granted, free of charge,",
      "to any person obtaining a copy of this software and associated documentation files.",
    ]);
    const words = text.split(" ");
    for (const p of splitCueText(text, 20)) for (const w of p.split(" ")) assert.ok(words.includes(w), w);
    assert.deepEqual(splitCueText("short"), ["short"]);
  });

  it("srt times: from word timings when the segment has them, else by characters; never backwards", () => {
    const t: Transcript = {
      text: ja,
      language: "ja",
      duration: 12,
      segments: [{ id: 0, start: 0, end: 12, text: ja }],
    };
    const srt = renderTranscript(t, "srt");
    assert.equal(srt.split("\n\n").length, 3);
    assertMonotonic(srt, /(\d\d):(\d\d):(\d\d),(\d{3}) --> (\d\d):(\d\d):(\d\d),(\d{3})/g);
    assert.match(srt, /^1\n00:00:00,000 --> 00:00:04,263\n抜群/); // 27 of 76 characters of 12 s
    const words = [
      { word: "抜群の運動神経を持ち合わせ、どんな要求にも応えてきた。", start: 0.5, end: 3 },
      { word: "水をマレーシアから買わなくてはならないのです。", start: 5, end: 8 },
      { word: "そしてまた、彼は「新しい挑戦」を始めようとしている。", start: 9, end: 11.5 },
    ];
    const timed = renderTranscript({ ...t, segments: [{ ...t.segments[0]!, start: 0.5, words }] }, "vtt");
    assert.match(timed, /00:00:00\.500 --> 00:00:05\.000\n抜群/);
    assert.match(timed, /00:00:05\.000 --> 00:00:09\.000\n水を/);
    assert.match(timed, /00:00:09\.000 --> 00:00:12\.000\nそして/);
  });
});

describe("the detected language", () => {
  const t: Transcript = {
    text: "水",
    language: "ja",
    languageProbability: 0.987654,
    duration: 1,
    segments: [],
  };
  it("json and verbose_json carry its probability; a given language has none", () => {
    assert.equal(JSON.parse(renderTranscript(t, "json")).language_probability, 0.9877);
    const v = JSON.parse(renderTranscript(t, "verbose_json"));
    assert.deepEqual([v.language, v.language_probability], ["japanese", 0.9877]);
    const given = { ...t, languageProbability: undefined };
    assert.equal("language_probability" in JSON.parse(renderTranscript(given, "json")), false);
  });
  it("the model server's custom attributes name it", () => {
    assert.equal(resultAttributes(t), "language=ja,language_probability=0.9877");
    assert.equal(resultAttributes({ ...t, languageProbability: undefined }), "language=ja");
  });
});
