#!/usr/bin/env bash
# Runs the whole platform on one machine with the embedded defaults: the API on
# 127.0.0.1:8080 and one worker (a separate process), SQLite at ./data/warble.db and uploads
# under ./data/blobs. Ctrl-C stops both. Every WARBLE_* variable of the README applies.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p warble-api -p warble-worker
# The first admin key, kept in ./data/admin.key (readable by you only) unless one is given.
if [ -z "${WARBLE_ADMIN_KEY:-}" ]; then
    if [ ! -s data/admin.key ]; then
        mkdir -p data
        (umask 077 && printf 'wbl_%s\n' "$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')" >data/admin.key)
    fi
    WARBLE_ADMIN_KEY="$(cat data/admin.key)"
    export WARBLE_ADMIN_KEY
    echo "admin key: ./data/admin.key (export WARBLE_KEY=\$(cat data/admin.key))"
fi
target/release/api migrate
target/release/worker run &
worker=$!
target/release/api &
api=$!
trap 'kill -TERM "$api" "$worker" 2>/dev/null; wait' INT TERM
wait -n "$api" "$worker"
kill -TERM "$api" "$worker" 2>/dev/null || true
wait
