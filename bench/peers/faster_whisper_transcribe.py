"""Transcribe audio files with faster-whisper and print one JSON object on stdout.

The peer side of bench/engine-quality.ts and bench/engine-speed.ts: greedy decoding (beam_size=1;
a served request may ask for {"beam_size": 5}), no VAD, faster-whisper's
defaults otherwise (condition_on_previous_text, without_timestamps, temperature fallback), so that
the comparison with kikitori's engine uses the same weights and the same decoding strategy.

usage: faster_whisper_transcribe.py --model DIR --compute-type float32 --threads 2 [--language en] [FILE...]

With files, prints one JSON object holding every result. Without, it serves: it reads one JSON line
{"path": ..., "language": ..., "beam_size": 1, "load": false, "pipeline": "sequential"} at a time from stdin and answers each
with one JSON line, so that a caller can time transcriptions with the model loaded once. "pipeline":
"batched" runs faster-whisper's BatchedInferencePipeline instead (Silero VAD cuts the audio into ≤ 30 s
chunks, decoded in batches of 8, its own defaults otherwise): the long-audio benchmark's peer; "vad" is the
sequential pipeline with vad_filter=True (Silero VAD first, speech merged into ≤ 30 s windows).
"""

import argparse
import json
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="CTranslate2 model directory (holds model.bin)")
    parser.add_argument("--compute-type", default="float32")
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--language", default=None)
    parser.add_argument("files", nargs="*")
    args = parser.parse_args()

    import ctranslate2
    import faster_whisper
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    phases = {}

    class Timed:
        """CTranslate2's Whisper model with its generate() calls timed (prompt and decoding of one window each)."""

        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def generate(self, *a, **kw):
            t = time.perf_counter()
            results = self.inner.generate(*a, **kw)
            phases["generate_s"] += time.perf_counter() - t
            phases["generate_runs"] += 1
            phases["tokens"] += sum(len(r.sequences_ids[0]) for r in results)
            return results

    def load():
        m = WhisperModel(
            args.model, device="cpu", compute_type=args.compute_type, cpu_threads=args.threads, num_workers=1
        )
        # Where the time goes (bench/engine-evidence.ts): the encoder passes and the decoding, timed apart.
        encode = m.encode

        def timed_encode(features):
            t = time.perf_counter()
            out = encode(features)
            phases["encode_s"] += time.perf_counter() - t
            phases["encode_runs"] += 1
            return out

        m.encode = timed_encode
        m.model = Timed(m.model)
        return m

    started = time.perf_counter()
    model = load()
    load_s = time.perf_counter() - started

    def transcribe(path: str, language, beam_size: int = 1, fresh: bool = False, pipeline: str = "sequential") -> dict:
        """fresh: load a new model for this file, and count the loading in wall_s."""
        started = time.perf_counter()
        phases.update(encode_s=0.0, encode_runs=0, generate_s=0.0, generate_runs=0, tokens=0)
        m = load() if fresh else model
        if pipeline == "batched":
            segments, info = BatchedInferencePipeline(model=m).transcribe(
                path, language=language, beam_size=beam_size, batch_size=8
            )
        else:
            segments, info = m.transcribe(
                path, language=language, beam_size=beam_size, vad_filter=pipeline == "vad"
            )
        # segments is a lazy generator: the decoding happens while it is consumed.
        text = "".join(segment.text for segment in segments)
        return {
            "file": path,
            "text": text,
            "wall_s": time.perf_counter() - started,
            "phases": dict(phases),
            "audio_s": info.duration,
            "language": info.language,
            "language_probability": info.language_probability,
        }

    versions = {
        "faster_whisper": faster_whisper.__version__,
        "ctranslate2": ctranslate2.__version__,
        "python": sys.version.split()[0],
        "compute_type": args.compute_type,
        "threads": args.threads,
        "load_s": load_s,
    }
    if not args.files:
        print(json.dumps({"ready": True, **versions}), flush=True)
        for line in sys.stdin:
            request = json.loads(line)
            result = transcribe(
                request["path"],
                request.get("language"),
                request.get("beam_size", 1),
                request.get("load", False),
                request.get("pipeline", "sequential"),
            )
            print(json.dumps(result, ensure_ascii=False), flush=True)
        return 0

    clips = [transcribe(path, args.language) for path in args.files]
    json.dump({**versions, "clips": clips}, sys.stdout, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
