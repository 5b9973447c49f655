#!/usr/bin/env python3
"""Time NeMo (PyTorch, CPU, fp32) on one WAV, stage by stage: mel, encoder, greedy TDT decoding.

Usage:
    /work/venv/nemo/bin/python tools/bench/nemo_bench.py MODEL.nemo AUDIO.wav --threads N --runs R

One process: sets OMP/MKL thread counts before importing torch and torch.set_num_threads(N),
restores the model on CPU in fp32 eval mode with dither 0 (pad_to as in the model's config), reads
the 16 kHz mono WAV, runs the whole pipeline once as a warm-up, then R timed runs under
torch.inference_mode(). Each run times, with time.perf_counter():
    mel      model.preprocessor(input_signal, length)
    encoder  model.encoder(audio_signal, length)
    decode   model.decoding.rnnt_decoder_predictions_tensor(encoder_output, encoded_lengths)
             (the model's configured strategy, greedy_batch = NeMo 3.0's label-looping
             GreedyBatchedTDTInfer; includes NeMo's token -> text step)
    total    the three together (end to end, not the sum of separately timed parts)
Prints progress to stderr and one JSON object on the last line of stdout: per stage median and min
in seconds, rtf = audio seconds / total seconds (higher is faster; rtf_best uses the fastest
total), the tokens decoded, peak RSS (ru_maxrss), the environment, others_cpu_s (CPU seconds other
processes used during each timed run, from /proc/stat) and disturbed_runs (runs where that exceeded
5% of one core): on a shared machine, only undisturbed runs are clean timings.
"""
import argparse
import json
import os
import platform
import resource
import sys
import time


def parse_args():
    ap = argparse.ArgumentParser(description="NeMo CPU timing, stage by stage")
    ap.add_argument("model", help=".nemo file")
    ap.add_argument("audio", help="16 kHz mono 16-bit WAV")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    return ap.parse_args()


args = parse_args()
for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[var] = str(args.threads)

import torch  # noqa: E402

torch.set_num_threads(args.threads)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


from bench_common import DISTURBED_SHARE, Neighbours, busy_others, read_wav, stats  # noqa: E402


def main():
    import nemo
    from nemo.collections.asr.models import ASRModel
    from nemo.utils import logging as nemo_logging

    nemo_logging.setLevel(nemo_logging.ERROR)
    t0 = time.perf_counter()
    model = ASRModel.restore_from(args.model, map_location=torch.device("cpu"))
    model = model.float().eval()
    model.preprocessor.featurizer.dither = 0.0
    load_s = time.perf_counter() - t0
    log(f"loaded {type(model).__name__} in {load_s:.1f} s, "
        f"{sum(p.numel() for p in model.parameters()):,} parameters, decoding "
        f"{type(model.decoding.decoding).__name__} ({model.cfg.decoding.strategy})")

    audio, sr = read_wav(args.audio)
    if sr != model.cfg.preprocessor.sample_rate:
        sys.exit(f"{args.audio}: {sr} Hz, model wants {model.cfg.preprocessor.sample_rate} Hz")
    signal = torch.from_numpy(audio).unsqueeze(0)
    length = torch.tensor([signal.shape[1]], dtype=torch.long)
    audio_s = signal.shape[1] / sr

    def run_once():
        t = {}
        start = time.perf_counter()
        mel, mel_len = model.preprocessor(input_signal=signal, length=length)
        t1 = time.perf_counter()
        enc, enc_len = model.encoder(audio_signal=mel, length=mel_len)
        t2 = time.perf_counter()
        hyps = model.decoding.rnnt_decoder_predictions_tensor(encoder_output=enc, encoded_lengths=enc_len)
        t3 = time.perf_counter()
        t["mel"], t["encoder"], t["decode"], t["total"] = t1 - start, t2 - t1, t3 - t2, t3 - start
        hyp = hyps[0] if isinstance(hyps, (list, tuple)) else hyps
        if isinstance(hyp, (list, tuple)):  # older NeMo: (best, all)
            hyp = hyp[0]
        tokens = hyp.y_sequence
        tokens = tokens.tolist() if hasattr(tokens, "tolist") else list(tokens)
        shapes = {"mel": list(mel.shape), "encoder": list(enc.shape), "encoded_len": int(enc_len[0])}
        return t, tokens, hyp.text, shapes

    train_pids_before = busy_others()
    disturbed = []  # timed runs during which other processes used > DISTURBED_SHARE of a core
    others_cpu = []  # CPU seconds used by other processes during each timed run
    times = {"mel": [], "encoder": [], "decode": [], "total": []}
    with torch.inference_mode():
        first_file = None  # the first transcription of the process, what a user waits for after loading
        for i in range(args.warmup):
            t, tokens, text, shapes = run_once()
            first_file = first_file or {k: round(v, 4) for k, v in t.items()}
            log(f"warm-up {i + 1}: " + ", ".join(f"{k} {v:.3f} s" for k, v in t.items()))
        for i in range(args.runs):
            watch = Neighbours()
            t, run_tokens, text, shapes = run_once()
            others, wall = watch.stop()
            others_cpu.append(round(others, 2))
            if others > DISTURBED_SHARE * wall:
                disturbed.append(i + 1)
            if args.warmup and run_tokens != tokens:
                log("WARNING: tokens differ between runs")
            tokens = run_tokens
            for k, v in t.items():
                times[k].append(v)
            log(f"run {i + 1}/{args.runs}: " + ", ".join(f"{k} {v:.3f} s" for k, v in t.items()))
    train_pids_after = busy_others()

    total = stats(times["total"])
    result = {
        "engine": "nemo",
        "model": os.path.abspath(args.model),
        "audio": os.path.abspath(args.audio),
        "audio_s": audio_s,
        "threads": args.threads,
        "torch_threads": torch.get_num_threads(),
        "runs": args.runs,
        "warmup": args.warmup,
        "load_s": round(load_s, 3),
        "first_file": first_file,
        "mel": stats(times["mel"]),
        "encoder": stats(times["encoder"]),
        "decode": stats(times["decode"]),
        "total": total,
        "rtf": audio_s / total["median"],
        "rtf_best": audio_s / total["min"],
        "tokens": len(tokens),
        "text_chars": len(text or ""),
        "shapes": shapes,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "decoding": f"{type(model.decoding.decoding).__name__}/{model.cfg.decoding.strategy}",
        "torch": torch.__version__,
        "nemo": nemo.__version__,
        "cpu": platform.processor() or platform.machine(),
        "nproc": os.cpu_count(),
        "train_py_running": bool(train_pids_before or train_pids_after),
        "others_cpu_s": others_cpu,
        "disturbed_runs": disturbed,
        "loadavg_after": os.getloadavg()[0],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
