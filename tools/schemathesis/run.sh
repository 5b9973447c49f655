#!/usr/bin/env bash
# Fuzzes a running warble API from its own OpenAPI document with schemathesis (PyPI):
# every operation, with generated valid and invalid input, as a valid key. Fails on any
# server error (5xx), on an operation that answers without the key (`ignored_auth`), and on
# responses that break the document (status codes, schemas, headers, content types).
#
#   tools/schemathesis/run.sh BASE_URL KEY [SECONDS [JOB_ID]]
#
# JOB_ID: a job the job routes are exercised on (default: an id no job has). The generator's
# seed is fixed so that a run can be repeated exactly; set SCHEMATHESIS_SEED to explore others.
# The API's own test suite runs this against a fresh server (api/tests/schemathesis.rs);
# `.ci/run` installs schemathesis into target/tools-venv. Elsewhere: `pip install
# schemathesis==4.32.5`, or set SCHEMATHESIS to its path.
#
# One worker: with two threads, hypothesis (under schemathesis) can trip over CPython 3.11's
# "AST constructor recursion depth mismatch" while describing its own strategies, an error of
# the tool, not of the API.
#
# One check is left out: `use_after_free`. DELETE /v1/jobs/{id} cancels the job and deletes
# its audio and transcript but keeps the record (status, times; the audit log says who), as
# hosted APIs do, so reading the job afterwards is 200 by design and its transcript 410 Gone.
set -euo pipefail
base="$1"
key="$2"
seconds="${3:-60}"
export WARBLE_FUZZ_JOB_ID="${4:-00000000000000000000000000}"
here="$(cd "$(dirname "$0")" && pwd)"
st="${SCHEMATHESIS:-}"
if [ -z "$st" ]; then
    if [ -x "$here/../../target/tools-venv/bin/schemathesis" ]; then
        st="$here/../../target/tools-venv/bin/schemathesis"
    else
        st="schemathesis"
    fi
fi
# JSON Lines (batches) are written and read by our hooks.
export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
export SCHEMATHESIS_HOOKS=hooks
exec "$st" --config-file "$here/schemathesis.toml" run "$base/openapi.json" \
    --url "$base" \
    --header "Authorization: Bearer $key" \
    --checks all \
    --exclude-checks use_after_free \
    --generation-with-security-parameters false \
    --max-time "$seconds" \
    --seed "${SCHEMATHESIS_SEED:-20261124}" \
    --workers 1 \
    --request-timeout 30 \
    --suppress-health-check too_slow,filter_too_much \
    --generation-database none \
    --no-color
