"""The official `openai` Python SDK against a running warble: every response format, word and
segment timestamps, streaming, and the errors the SDK must classify as OpenAI's.

    python tools/openai/client.py BASE_URL KEY AUDIO_FILE MODEL LIMITED_KEY

Prints one JSON object: for each call, what the SDK returned (text, words, segments, events)
and the job id warble answered with (`x-warble-job-id`), so that the Rust test
(`api/tests/openai.rs`) can compare each with the job's own transcript. LIMITED_KEY is a key
whose quota is used up: the SDK must raise `RateLimitError` for it.
"""

import json
import sys

import openai

base, key, audio, model, limited = sys.argv[1:6]
client = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0, timeout=120)
out = {}


def create(**kwargs):
    """A transcription through the SDK's raw response: the parsed result and the job id."""
    with open(audio, "rb") as f:
        raw = client.audio.transcriptions.with_raw_response.create(model=model, file=f, **kwargs)
    return raw.parse(), raw.headers.get("x-warble-job-id")


result, job = create()
out["json"] = {"job": job, "text": result.text, "usage_seconds": result.usage.seconds}

for fmt in ["text", "srt", "vtt"]:
    result, job = create(response_format=fmt)
    assert isinstance(result, str), type(result)
    out[fmt] = {"job": job, "body": result}

result, job = create(response_format="verbose_json", timestamp_granularities=["word", "segment"])
out["verbose_both"] = {
    "job": job,
    "text": result.text,
    "language": result.language,
    "duration": result.duration,
    "words": [{"word": w.word, "start": w.start, "end": w.end} for w in result.words],
    "segments": [{"text": s.text, "start": s.start, "end": s.end} for s in result.segments],
}

result, job = create(response_format="verbose_json", timestamp_granularities=["word"], language="en")
out["verbose_words"] = {
    "job": job,
    "language": result.language,
    "words": len(result.words or []),
    "segments": result.segments,
}

with open(audio, "rb") as f:
    events = list(client.audio.transcriptions.create(model=model, file=f, stream=True))
out["stream"] = {
    "types": [e.type for e in events],
    "deltas": "".join(e.delta for e in events if e.type == "transcript.text.delta"),
    "done": events[-1].text,
}

# The whisper-1 alias, for tools that send nothing else.
with open(audio, "rb") as f:
    out["alias"] = client.audio.transcriptions.create(model="whisper-1", file=f).text


def error(call):
    """The SDK's exception class and the error body it parsed."""
    try:
        call()
    except openai.APIStatusError as e:
        return {"class": type(e).__name__, "status": e.status_code, "code": e.code,
                "type": e.type, "retry_after": e.response.headers.get("retry-after")}
    return None


def with_file(c, **kwargs):
    with open(audio, "rb") as f:
        return c.audio.transcriptions.create(file=f, **kwargs)


out["errors"] = {
    "bad_key": error(lambda: with_file(openai.OpenAI(base_url=base + "/v1", api_key="wbl_nope",
                                                     max_retries=0), model=model)),
    "quota": error(lambda: with_file(openai.OpenAI(base_url=base + "/v1", api_key=limited,
                                                   max_retries=0), model=model)),
    "model": error(lambda: with_file(client, model="gpt-4o-transcribe")),
    "format": error(lambda: with_file(client, model=model, response_format="diarized_json")),
}
try:
    with open(audio, "rb") as f:
        client.audio.translations.create(model=model, file=f)
    out["errors"]["translation"] = None
except openai.BadRequestError as e:
    out["errors"]["translation"] = {"class": type(e).__name__, "code": e.code}

out["models"] = [m.id for m in client.models.list()]
print(json.dumps(out))
