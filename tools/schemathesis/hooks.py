"""schemathesis hooks for warble's JSON Lines: `POST /v1/batches` takes `application/jsonl`
and `GET /v1/batches/{id}/results` answers `application/x-ndjson`. The OpenAPI document
describes each as an array of its lines' objects; these turn a generated array into lines,
and the lines of an answer back into an array to check against the document. Loaded by
run.sh through SCHEMATHESIS_HOOKS."""

import json

import schemathesis


@schemathesis.serializer("application/jsonl")
def jsonl(ctx, value):
    items = value if isinstance(value, list) else [value]
    return {"data": "".join(json.dumps(item) + "\n" for item in items).encode()}


@schemathesis.deserializer("application/x-ndjson")
def ndjson(ctx, response):
    text = response.content.decode(response.encoding or "utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]
