#!/usr/bin/env python3
"""The official openai Python SDK against kikitori: stream=True (transcript.text.delta / .done events),
and `usage` on a json response. Environment: KK_URL, KK_AUDIO. Prints one JSON line."""
import json
import os

from openai import OpenAI

client = OpenAI(base_url=os.environ["KK_URL"] + "/v1", api_key="unused-locally", max_retries=0)
report = {"deltas": [], "types": []}
with open(os.environ["KK_AUDIO"], "rb") as f:
    stream = client.audio.transcriptions.create(model="gpt-4o-transcribe", file=f, stream=True)
    for event in stream:
        report["types"].append(event.type)
        if event.type == "transcript.text.delta":
            report["deltas"].append(event.delta)
        elif event.type == "transcript.text.done":
            report["text"] = event.text
            report["usage"] = event.usage.model_dump(exclude_none=True) if event.usage else None
with open(os.environ["KK_AUDIO"], "rb") as f:
    plain = client.audio.transcriptions.create(model="whisper-1", file=f)
    report["plain_text"] = plain.text
    report["plain_usage"] = plain.usage.model_dump(exclude_none=True) if plain.usage else None
print(json.dumps(report))
