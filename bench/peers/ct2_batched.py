"""What CTranslate2 gives kikitori's VAD chunks decoded in batches (bench/engine-evidence.ts, section "batched").

Issue #14 asks for 1.2x faster-whisper. whisper.cpp cannot get there on this CPU (its encoder pass costs
1.45x CTranslate2's); CTranslate2 itself is faster-whisper's core, so its only lever left is decoding
independent windows together. This measures that lever before anyone builds an engine on it: kikitori's
chunks (independent by design) through CTranslate2's Whisper.generate in batches, with timestamps, greedy
or beam search, against faster-whisper's sequential pipeline on the same file, rounds interleaved.
Log-mel features are computed inside the timed part (an engine would compute them too); no temperature
fallback and no re-decoding of dropped regions (kikitori's engine does both; they only add time).

usage: ct2_batched.py --model DIR --threads 2 --audio FILE --chunks DIR --rounds 2 --beams 1,5 --batches 1,4,8
--chunks holds <set>-<nn>.raw files (16 kHz s16le mono, one chunk each); prints one JSON object.
"""

import argparse
import glob
import json
import os
import time


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--audio", required=True)
    p.add_argument("--chunks", required=True)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--beams", default="1,5")
    p.add_argument("--batches", default="1,4,8")
    a = p.parse_args()

    import ctranslate2
    import numpy as np
    from faster_whisper import WhisperModel
    from faster_whisper.audio import decode_audio

    fw = WhisperModel(a.model, device="cpu", compute_type="int8", cpu_threads=a.threads, num_workers=1)
    model = fw.model  # the same ctranslate2.models.Whisper faster-whisper decodes with
    tok = fw.hf_tokenizer
    prompt = ["<|startoftranscript|>"] + (["<|en|>", "<|transcribe|>"] if model.is_multilingual else [])
    sot = [tok.token_to_id(t) for t in prompt]
    eot = tok.token_to_id("<|endoftext|>")
    features = fw.feature_extractor
    sets = {}
    for f in sorted(glob.glob(os.path.join(a.chunks, "*.raw"))):
        sets.setdefault(os.path.basename(f).split("-")[0], []).append(
            np.fromfile(f, dtype=np.int16).astype(np.float32) / 32768
        )
    audio = decode_audio(a.audio)

    def batched(chunks, beam, batch):
        texts = []
        for i in range(0, len(chunks), batch):
            group = chunks[i : i + batch]
            mels = [features(c, padding=max(0, 480000 - len(c)))[:, :3000] for c in group]
            x = ctranslate2.StorageView.from_array(np.ascontiguousarray(np.stack(mels)))
            for r in model.generate(x, [sot] * len(group), beam_size=beam, max_length=448, suppress_blank=True,
                                    suppress_tokens=[-1]):
                texts.append(tok.decode([t for t in r.sequences_ids[0] if t < eot]))
        return " ".join(t.strip() for t in texts)

    runs = []
    for _ in range(a.rounds):
        for beam in map(int, a.beams.split(",")):
            t = time.perf_counter()
            segments, _info = fw.transcribe(audio, beam_size=beam, language="en")
            text = " ".join(s.text.strip() for s in segments)
            runs.append({"label": "faster-whisper int8 sequential", "beam": beam, "chunks": None, "batch": None,
                         "seconds": time.perf_counter() - t, "text": text})
            for name, chunks in sets.items():
                for batch in map(int, a.batches.split(",")):
                    t = time.perf_counter()
                    text = batched(chunks, beam, batch)
                    runs.append({"label": f"CTranslate2 int8, kikitori's chunks ({name})", "beam": beam,
                                 "chunks": len(chunks), "batch": batch, "seconds": time.perf_counter() - t,
                                 "text": text})
    print(json.dumps({"ctranslate2": ctranslate2.__version__, "runs": runs}))


if __name__ == "__main__":
    main()
