#!/usr/bin/env bash
# Run the Python side of the engine comparison on the same random-weight model: onnx-asr fp32 and
# int8 on the 60 s file, onnx-asr fp32 once on the 10 min file (RSS capped), and NeMo on the 60 s
# file. Before each timing it waits until the machine has been idle for QUIET_S seconds in a row
# (no rustc, and all CPUs together under 10% of one core busy, from /proc/stat): a cargo build or
# another benchmark on the same cores would distort it; the JSON still records disturbed runs.
# JSON lines go to $BENCH_WORK/results/<name>.json, stderr to <name>.log.
#
# Usage: tools/bench/compare_onnx_asr.sh [THREADS] [RUNS]      (defaults 2 and 3)
# Needs: make_big_model.py, make_audio.sh (60 s and 600 s), export_onnx_asr.py --int8 done first.
set -euo pipefail

work=${BENCH_WORK:-/work/bench-work}
py=${PYTHON:-/work/venv/nemo/bin/python}
threads=${1:-2}
runs=${2:-3}
quiet_s=${QUIET_S:-20}
max_wait_s=${MAX_WAIT_S:-0}  # give up waiting for quiet after this many seconds (0: never)
max_rss_gb=${MAX_RSS_GB:-16}
here=$(cd "$(dirname "$0")" && pwd)
model=$work/parakeet-tdt-0.6b-v2-random.nemo
onnx_dir=$work/onnx-asr-fp32
out=$work/results
mkdir -p "$out"

busy_ticks() {  # all CPUs' busy ticks so far (everything but idle and iowait)
  awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat
}

wait_quiet() {
  local quiet=0 b0 b1 hz start=$SECONDS
  hz=$(getconf CLK_TCK)
  while [ "$quiet" -lt "$quiet_s" ]; do
    if [ "$max_wait_s" -gt 0 ] && [ $((SECONDS - start)) -ge "$max_wait_s" ]; then
      echo "  gave up waiting for a quiet machine after $max_wait_s s" | tee -a "$out/commands.txt"
      return
    fi
    b0=$(busy_ticks)
    sleep 1
    b1=$(busy_ticks)
    if pgrep -x rustc >/dev/null || [ $(((b1 - b0) * 10)) -gt "$hz" ]; then quiet=0; else quiet=$((quiet + 1)); fi
  done
}

run() {  # name, command...
  local name=$1
  shift
  wait_quiet
  echo "$(date -u +%FT%TZ) $name: $*" | tee -a "$out/commands.txt"
  local t0=$SECONDS
  "$@" >"$out/$name.json" 2>"$out/$name.log" || echo "$name: exit $?" | tee -a "$out/commands.txt"
  echo "  $((SECONDS - t0)) s; $(tail -c 400 "$out/$name.json")"
}

run onnx-asr-fp32-60 "$py" "$here/onnx_asr_bench.py" "$onnx_dir" "$work/speech60.wav" \
  --threads "$threads" --runs "$runs" --max-rss-gb "$max_rss_gb"
run onnx-asr-int8-60 "$py" "$here/onnx_asr_bench.py" "$onnx_dir" "$work/speech60.wav" \
  --threads "$threads" --runs "$runs" --quantization int8 --max-rss-gb "$max_rss_gb"
run nemo-60 "$py" "$here/nemo_bench.py" "$model" "$work/speech60.wav" --threads "$threads" --runs "$runs"
# The default export accepts at most 400 s; export_onnx_asr.py --max-audio-s 660 --out $work/onnx-asr-fp32-long.
long_dir=$onnx_dir
[ -d "$work/onnx-asr-fp32-long" ] && long_dir=$work/onnx-asr-fp32-long
run onnx-asr-fp32-600 "$py" "$here/onnx_asr_bench.py" "$long_dir" "$work/speech600.wav" \
  --threads "$threads" --runs 0 --max-rss-gb "$max_rss_gb"
