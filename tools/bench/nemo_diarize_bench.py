#!/usr/bin/env python3
"""Time NeMo's Sortformer (PyTorch, CPU, fp32) diarizing one WAV: the model's own forward pass.

Usage:
    /work/venv/nemo/bin/python tools/bench/nemo_diarize_bench.py MODEL.nemo AUDIO.wav \
        --threads N --runs R [--probs OUT.f32]

One process: sets the OMP/MKL thread counts before importing torch and torch.set_num_threads(N),
restores the model on CPU in fp32 eval mode with dither 0, reads the 16 kHz mono 16-bit WAV, runs
SortformerEncLabelModel.forward(audio_signal, audio_signal_length) under torch.no_grad() (with the
model's streaming_mode, so the chunked pass with the speaker cache for a streaming model) once as a
warm-up, then R timed runs (time.perf_counter() around the whole call: mel features and every
streaming step). --probs writes the last run's frame probabilities (frames x speakers, row-major,
little-endian f32). Prints one JSON object on the last line of stdout: median and min seconds,
frames, speakers, peak RSS (ru_maxrss), versions and the 1-minute load average after the runs.
"""
import argparse
import json
import os
import resource
import sys
import time
import wave


def parse_args():
    ap = argparse.ArgumentParser(description="NeMo Sortformer CPU timing")
    ap.add_argument("model", help=".nemo file")
    ap.add_argument("audio", help="16 kHz mono 16-bit WAV")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--probs", help="write the frame probabilities here (f32, frames x speakers)")
    return ap.parse_args()


args = parse_args()
for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[var] = str(args.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(args.threads)


def read_wav(path):
    with wave.open(path, "rb") as w:
        if w.getnchannels() != 1 or w.getsampwidth() != 2 or w.getframerate() != 16000:
            sys.exit(f"{path}: need 16 kHz mono 16-bit PCM")
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return pcm.astype(np.float32) / 32768.0


def main():
    import nemo
    from nemo.collections.asr.models import SortformerEncLabelModel

    model = SortformerEncLabelModel.restore_from(args.model, map_location="cpu")
    model = model.float().eval()
    model.preprocessor.featurizer.dither = 0.0
    samples = read_wav(args.audio)
    signal = torch.from_numpy(samples)[None]
    length = torch.tensor([len(samples)])

    times, preds = [], None
    with torch.no_grad():
        for i in range(1 + args.runs):
            t0 = time.perf_counter()
            preds = model.forward(audio_signal=signal, audio_signal_length=length)
            elapsed = time.perf_counter() - t0
            print(f"{'warm-up' if i == 0 else f'run {i}'}: {elapsed:.3f} s", file=sys.stderr, flush=True)
            if i > 0:
                times.append(elapsed)
    preds = preds[0].float().numpy()
    if args.probs:
        preds.astype("<f4").tofile(args.probs)
    print(json.dumps({
        "engine": "nemo",
        "streaming_mode": bool(model.streaming_mode),
        "audio_s": len(samples) / 16000,
        "threads": torch.get_num_threads(),
        "runs": args.runs,
        "median_s": float(np.median(times)),
        "min_s": min(times),
        "frames": preds.shape[0],
        "speakers": preds.shape[1],
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "torch": torch.__version__,
        "nemo": nemo.__version__,
        "loadavg_after": os.getloadavg()[0],
    }))


if __name__ == "__main__":
    main()
