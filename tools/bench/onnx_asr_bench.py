#!/usr/bin/env python3
"""Time onnx-asr (ONNX Runtime, CPU, fp32 or int8) on one WAV: load, first file, then timed runs.

Usage:
    /work/venv/nemo/bin/python tools/bench/onnx_asr_bench.py DIR AUDIO.wav --threads N --runs R
        [--quantization int8] [--max-rss-gb 16]

DIR is an onnx-asr model directory (export_onnx_asr.py writes one). One fresh process: sets the
OMP/MKL/OpenBLAS thread counts (onnx-asr's NumPy mel runs on NumPy), then with time.perf_counter():
    load        onnx_asr.load_model("nemo-parakeet-tdt-0.6b-v2", DIR, quantization=...,
                sess_options=SessionOptions(intra_op_num_threads=N, inter_op_num_threads=1),
                providers=["CPUExecutionProvider"]): both InferenceSessions, graph optimisation included
    first file  the first recognize() call of the process (what a user waits for after loading)
    runs        R more recognize() calls; per run:
        mel      onnx-asr's preprocessor (NumPy mel on CPU; onnx-asr's default for the CPU provider)
        encoder  the encoder InferenceSession (asr._encode)
        decode   the rest: onnx-asr's greedy TDT loop in Python, one decoder_joint session run per
                 step (prediction LSTM + joint), and token -> text
        total    the whole recognize() call (end to end)
The audio is read once with the wave module and passed as a float32 array (16 kHz), as
nemo_bench.py does; recognize() gets the whole file in one call (no VAD, no chunking).
The stage split wraps onnx-asr's internal methods (asr._preprocessor, asr._encode, asr._decode,
asr._decoding; onnx-asr 0.12.0); it adds one Python call per step, nothing measurable.

Prints progress to stderr and one JSON object on the last line of stdout, like nemo_bench.py:
per stage median and min in seconds, rtf = audio seconds / total seconds, tokens and decoder steps,
peak RSS (ru_maxrss), the environment, others_cpu_s / disturbed_runs (CPU seconds other processes
used during each timed run, from /proc/stat; "disturbed" = over 5% of one core) for the runs and
separately for the first file, train_py_running and rustc_running.
--max-rss-gb G: a watchdog thread kills the process when its RSS passes G GiB (checked every 0.1 s)
and still prints the JSON line, with "status": "rss_limit" and how far it got; any exception gives
"status": "error: ...". Use it for long files, so that the machine does not swap.
"""
import argparse
import json
import os
import platform
import resource
import sys
import threading
import time


def parse_args():
    ap = argparse.ArgumentParser(description="onnx-asr CPU timing")
    ap.add_argument("model_dir", help="onnx-asr model directory (export_onnx_asr.py)")
    ap.add_argument("audio", help="16 kHz mono 16-bit WAV")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quantization", default=None, help="e.g. int8 (files *.int8.onnx in the same directory)")
    ap.add_argument("--model-name", default="nemo-parakeet-tdt-0.6b-v2")
    ap.add_argument("--max-rss-gb", type=float, default=None, help="kill and report when RSS exceeds this")
    return ap.parse_args()


args = parse_args()
for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[var] = str(args.threads)



def log(msg):
    print(msg, file=sys.stderr, flush=True)


from bench_common import DISTURBED_SHARE, Neighbours, busy_others, read_wav, stats  # noqa: E402


def rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# --- state shared with the watchdog ----------------------------------------------------------
result = {"engine": "onnx-asr", "status": "running"}
progress = {"stage": "start", "t0": time.perf_counter()}
print_lock = threading.Lock()
printed = False


def emit():
    global printed
    with print_lock:
        if not printed:
            printed = True
            result["peak_rss_mib"] = max(peak_rss_mib(), result.get("peak_rss_mib", 0.0))
            result["loadavg_after"] = os.getloadavg()[0]
            print(json.dumps(result), flush=True)


def watchdog(limit_mib):
    peak = 0.0
    while True:
        cur = rss_mib()
        peak = max(peak, cur)
        if cur > limit_mib:
            result["status"] = (f"rss_limit: RSS {cur / 1024:.1f} GiB > {limit_mib / 1024:.1f} GiB in stage "
                                f"'{progress['stage']}' after {time.perf_counter() - progress['t0']:.1f} s of it")
            result["peak_rss_mib"] = peak
            log(result["status"])
            emit()
            os._exit(3)
        time.sleep(0.1)


def main():
    import onnx_asr
    import onnxruntime as rt

    audio, sr = read_wav(args.audio)
    if sr != 16000:
        sys.exit(f"{args.audio}: {sr} Hz, need 16000 Hz")
    audio_s = len(audio) / sr
    result.update({
        "quantization": args.quantization or "fp32",
        "model": os.path.abspath(args.model_dir),
        "audio": os.path.abspath(args.audio),
        "audio_s": audio_s,
        "threads": args.threads,
        "runs": args.runs,
        "onnxruntime": rt.__version__,
        "onnx_asr": getattr(onnx_asr, "__version__", None) or _dist_version("onnx-asr"),
        "cpu": platform.processor() or platform.machine(),
        "nproc": os.cpu_count(),
    })
    if args.max_rss_gb:
        threading.Thread(target=watchdog, args=(args.max_rss_gb * 1024,), daemon=True).start()

    train_pids_before, rustc_before = busy_others(), busy_others("rustc", exact=True)
    so = rt.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    so.execution_mode = rt.ExecutionMode.ORT_SEQUENTIAL
    progress.update(stage="load", t0=time.perf_counter())
    t0 = time.perf_counter()
    model = onnx_asr.load_model(args.model_name, args.model_dir, quantization=args.quantization,
                                sess_options=so, providers=["CPUExecutionProvider"])
    load_s = time.perf_counter() - t0
    result["load_s"] = round(load_s, 3)
    result["rss_after_load_mib"] = round(rss_mib(), 1)
    asr = model.asr
    log(f"loaded {type(asr).__name__} ({args.quantization or 'fp32'}) in {load_s:.1f} s, "
        f"RSS {rss_mib():.0f} MiB, preprocessor {type(asr._preprocessor).__name__}, "
        f"providers {asr._encoder.get_providers()}")

    # Stage timers around onnx-asr's internals (instance attributes shadow the methods).
    cur = {}
    orig_pre, orig_encode, orig_decode, orig_decoding = asr._preprocessor, asr._encode, asr._decode, asr._decoding

    def pre(*a, **k):
        progress.update(stage="mel", t0=time.perf_counter())
        t = time.perf_counter()
        out = orig_pre(*a, **k)
        cur["mel"] = time.perf_counter() - t
        return out

    def encode(*a, **k):
        progress.update(stage="encoder", t0=time.perf_counter())
        t = time.perf_counter()
        out = orig_encode(*a, **k)
        cur["encoder"] = time.perf_counter() - t
        cur["encoder_frames"] = int(out[1][0])
        progress.update(stage="decode", t0=time.perf_counter())
        return out

    def decode(*a, **k):
        cur["steps"] = cur.get("steps", 0) + 1
        return orig_decode(*a, **k)

    def decoding(*a, **k):
        for tokens, ts, lp in orig_decoding(*a, **k):
            cur["tokens"] = [int(t) for t in tokens]
            yield tokens, ts, lp

    asr._preprocessor, asr._encode, asr._decode, asr._decoding = pre, encode, decode, decoding

    def run_once():
        cur.clear()
        start = time.perf_counter()
        text = model.recognize(audio, sample_rate=16000)
        total = time.perf_counter() - start
        t = {"mel": cur["mel"], "encoder": cur["encoder"],
             "decode": total - cur["mel"] - cur["encoder"], "total": total}
        return t, cur["tokens"], cur["steps"], cur["encoder_frames"], text

    watch = Neighbours()
    first, tokens, steps, frames, text = run_once()
    others, wall = watch.stop()
    result.update({
        "first_file": {k: round(v, 4) for k, v in first.items()},
        "first_others_cpu_s": round(others, 2),
        "first_disturbed": others > DISTURBED_SHARE * wall,
        "rss_after_first_mib": round(rss_mib(), 1),
        "rtf_first": audio_s / first["total"],
        "tokens": len(tokens), "decoder_steps": steps, "encoder_frames": frames, "text_chars": len(text),
    })
    log("first file: " + ", ".join(f"{k} {v:.3f} s" for k, v in first.items())
        + f"; {len(tokens)} tokens, {steps} decoder steps, {frames} encoder frames, RSS {rss_mib():.0f} MiB")

    disturbed, others_cpu = [], []
    times = {"mel": [], "encoder": [], "decode": [], "total": []}
    for i in range(args.runs):
        watch = Neighbours()
        t, run_tokens, steps, frames, text = run_once()
        others, wall = watch.stop()
        others_cpu.append(round(others, 2))
        if others > DISTURBED_SHARE * wall:
            disturbed.append(i + 1)
        if run_tokens != tokens:
            log("WARNING: tokens differ between runs")
        for k, v in t.items():
            times[k].append(v)
        log(f"run {i + 1}/{args.runs}: " + ", ".join(f"{k} {v:.3f} s" for k, v in t.items()))
    progress.update(stage="done", t0=time.perf_counter())
    train_pids_after, rustc_after = busy_others(), busy_others("rustc", exact=True)

    if args.runs:
        total = stats(times["total"])
        result.update({k: stats(v) for k, v in times.items()})
        result.update({"rtf": audio_s / total["median"], "rtf_best": audio_s / total["min"]})
    result.update({
        "status": "ok",
        "train_py_running": bool(train_pids_before or train_pids_after),
        "rustc_running": bool(rustc_before or rustc_after),
        "others_cpu_s": others_cpu,
        "disturbed_runs": disturbed,
    })


def _dist_version(name):
    try:
        from importlib.metadata import version
        return version(name)
    except Exception:  # noqa: BLE001
        return None


if __name__ == "__main__":
    try:
        main()
    except BaseException as e:  # noqa: BLE001 (report how far it got, e.g. an allocation failure)
        result["status"] = (f"error: {type(e).__name__}: {str(e)[:300]} (stage '{progress['stage']}' after "
                            f"{time.perf_counter() - progress['t0']:.1f} s of it)")
        log(result["status"])
        emit()
        sys.exit(1)
    emit()
