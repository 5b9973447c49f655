#!/usr/bin/env python3
"""Export a Parakeet TDT .nemo to onnx-asr's model directory layout (fp32, optionally int8).

Usage:
    /work/venv/nemo/bin/python tools/bench/export_onnx_asr.py MODEL.nemo [--out DIR] [--int8]
        [--int8-only] [--verify AUDIO.wav] [--threads N] [--max-audio-s S]

Restores the .nemo with NeMo (ASRModel.restore_from, CPU, fp32, eval, dither 0, pad_to 0) and exports it
with NeMo's own model.export() (the legacy TorchScript-based torch.onnx exporter, opset 17, the
path onnx-asr's docs/conversion.md uses), then writes what onnx_asr.load_model("nemo-conformer-tdt"
or "nemo-parakeet-tdt-0.6b-v2", DIR) reads:
    encoder-model.onnx + encoder-model.onnx.data   encoder; the weights (> 2 GB) in one external file
    decoder_joint-model.onnx                       prediction net (LSTM) + joint, one step per call
    vocab.txt                                      "token id" per line, blank "<blk>" last (id 1024)
    config.json                                    {"model_type": "nemo-conformer-tdt", "features_size": 128,
                                                    "subsampling_factor": 8, "max_tokens_per_step": 10}
--int8 also writes encoder-model.int8.onnx and decoder_joint-model.int8.onnx into the same directory
(onnx-asr resolves quantization="int8" as the glob "encoder-model?int8.onnx" next to the fp32 files):
onnxruntime.quantization.quantize_dynamic with its defaults except per_channel=True: every op type
ORT's dynamic quantiser supports (MatMul -> MatMulInteger, Conv -> ConvInteger, LSTM ->
DynamicQuantizeLSTM, ...), weights QInt8 (signed, per output channel), activations quantised at run
time to QUInt8 (DynamicQuantizeLinear). The encoder comes out at ~0.6 GB, like the ~650 MB
encoder-model.int8.onnx of onnx-asr's own parakeet-tdt-0.6b-v2 export (ONNX Runtime 1.32 runs
ConvInteger with int8 weights on CPU).
--int8-only quantises an existing fp32 export without exporting again.

Length limit: the exported encoder holds the relative positional encoding as a constant of
2 * pos_emb_max_len - 1 rows (PyTorch extends it on the fly, ONNX cannot), so by default it accepts at
most pos_emb_max_len = 5000 encoder frames = 400 s of audio; longer input fails in ONNX Runtime
("/layers.0/self_attn/Add_2 ... Attempting to broadcast an axis by a dimension other than 1. 2501 by
7501" for 600 s). --max-audio-s S raises the limit before export (encoder.set_max_audio_length).

--verify AUDIO transcribes AUDIO with NeMo (preprocessor + encoder + greedy_batch, as nemo_bench.py)
and with onnx-asr (fp32, and int8 if present) and prints both texts, the token counts and whether
the token ids are identical.

Default DIR: $BENCH_WORK/onnx-asr-fp32 (default BENCH_WORK=/work/bench-work); never inside the repo.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import wave
from pathlib import Path

WORK = Path(os.environ.get("BENCH_WORK", "/work/bench-work"))
CONFIG = {"model_type": "nemo-conformer-tdt", "features_size": 128, "subsampling_factor": 8, "max_tokens_per_step": 10}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", type=Path, help=".nemo file")
    ap.add_argument("--out", type=Path, default=WORK / "onnx-asr-fp32")
    ap.add_argument("--int8", action="store_true", help="also write int8 dynamic-quantised copies")
    ap.add_argument("--int8-only", action="store_true", help="only quantise an existing fp32 export in --out")
    ap.add_argument("--verify", metavar="AUDIO", help="compare NeMo and onnx-asr tokens on this WAV")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-audio-s", type=float, default=0,
                    help="longest input the encoder export must accept (default: the model's 400 s)")
    return ap.parse_args()


args = parse_args()
for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[var] = str(args.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(args.threads)


def restore(path):
    from nemo.collections.asr.models import ASRModel
    from nemo.utils import logging as nemo_logging

    nemo_logging.setLevel(nemo_logging.ERROR)
    model = ASRModel.restore_from(str(path), map_location=torch.device("cpu"))
    model = model.float().eval()
    model.preprocessor.featurizer.dither = 0.0
    model.preprocessor.featurizer.pad_to = 0
    return model


def export(model, out: Path):
    import onnx

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".export-") as tmp:
        t0 = time.perf_counter()
        model.export(str(Path(tmp, "model.onnx")))  # -> encoder-model.onnx, decoder_joint-model.onnx
        log(f"model.export() in {time.perf_counter() - t0:.1f} s: {sorted(os.listdir(tmp))[:6]} ...")
        t0 = time.perf_counter()
        enc = onnx.load(str(Path(tmp, "encoder-model.onnx")))  # pulls in the per-tensor external files
        for stale in ("encoder-model.onnx", "encoder-model.onnx.data"):
            Path(out, stale).unlink(missing_ok=True)
        onnx.save_model(enc, str(out / "encoder-model.onnx"), save_as_external_data=True,
                        all_tensors_to_one_file=True, location="encoder-model.onnx.data", size_threshold=1024)
        del enc
        shutil.copyfile(Path(tmp, "decoder_joint-model.onnx"), out / "decoder_joint-model.onnx")
        log(f"re-saved encoder with one external data file in {time.perf_counter() - t0:.1f} s")

    vocab = [*model.tokenizer.vocab, "<blk>"]
    assert len(vocab) == model.joint.num_classes_with_blank - model.joint.num_extra_outputs, len(vocab)
    with open(out / "vocab.txt", "w", encoding="utf-8") as f:
        for i, token in enumerate(vocab):
            f.write(f"{token} {i}\n")
    with open(out / "config.json", "w") as f:
        json.dump(CONFIG, f, indent=2)
        f.write("\n")


def quantize(out: Path):
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    for name in ("encoder-model", "decoder_joint-model"):
        src, dst = out / f"{name}.onnx", out / f"{name}.int8.onnx"
        t0 = time.perf_counter()
        quantize_dynamic(src, dst, per_channel=True, weight_type=QuantType.QInt8)
        kinds = {}
        for node in onnx.load(str(dst), load_external_data=False).graph.node:
            if node.op_type in ("MatMulInteger", "DynamicQuantizeLinear", "DynamicQuantizeLSTM", "ConvInteger",
                                "MatMul", "Conv", "Gemm", "LSTM"):
                kinds[node.op_type] = kinds.get(node.op_type, 0) + 1
        log(f"{dst.name}: {dst.stat().st_size / 2**20:.0f} MiB in {time.perf_counter() - t0:.1f} s; nodes {kinds}")


def read_wav(path):
    with wave.open(path, "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2, path
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0, w.getframerate()


def nemo_tokens(model, audio_path):
    audio, sr = read_wav(audio_path)
    signal = torch.from_numpy(audio).unsqueeze(0)
    with torch.inference_mode():
        mel, mel_len = model.preprocessor(input_signal=signal, length=torch.tensor([signal.shape[1]]))
        enc, enc_len = model.encoder(audio_signal=mel, length=mel_len)
        hyp = model.decoding.rnnt_decoder_predictions_tensor(encoder_output=enc, encoded_lengths=enc_len)[0]
    return hyp.y_sequence.tolist(), hyp.text, mel, mel_len, enc


def onnx_asr_tokens(out: Path, audio_path, quantization=None):
    import onnx_asr
    import onnxruntime as rt

    so = rt.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = args.threads, 1
    asr = onnx_asr.load_model("nemo-parakeet-tdt-0.6b-v2", out, quantization=quantization, sess_options=so,
                              providers=["CPUExecutionProvider"])
    inner, captured = asr.asr, []
    orig = inner._decoding

    def decoding(*a, **k):
        for tokens, ts, lp in orig(*a, **k):
            captured.append([int(t) for t in tokens])
            yield tokens, ts, lp

    inner._decoding = decoding
    text = asr.recognize(audio_path)
    return captured[0], text, inner


def verify(model, out: Path, audio_path):
    ids, text, mel, mel_len, enc = nemo_tokens(model, audio_path)
    print(f"NeMo         {len(ids)} tokens: {text[:120]!r}")
    for q in (None, "int8"):
        if q and not (out / "encoder-model.int8.onnx").exists():
            continue
        t0 = time.perf_counter()
        o_ids, o_text, inner = onnx_asr_tokens(out, audio_path, q)
        same = o_ids == ids
        print(f"onnx-asr {q or 'fp32'} {len(o_ids)} tokens: {o_text[:120]!r}  "
              f"(ids identical to NeMo: {same}; {time.perf_counter() - t0:.1f} s)")
        if not same:
            first = next((i for i, (a, b) in enumerate(zip(ids, o_ids)) if a != b), min(len(ids), len(o_ids)))
            print(f"  first difference at token {first}: NeMo {ids[first:first + 5]} onnx-asr {o_ids[first:first + 5]}")
        # Encoder alone on NeMo's own mel: the numerical gap between the exports and PyTorch.
        e_out, e_len = inner._encoder.run(["outputs", "encoded_lengths"],
                                          {"audio_signal": mel.numpy(), "length": mel_len.numpy()})
        n = int(e_len[0])
        diff = np.abs(e_out[:, :, :n] - enc.numpy()[:, :, :n]).max()
        print(f"  encoder on NeMo's mel: max |onnx - torch| = {diff:.3g} (torch max |x| {enc.abs().max():.3g}), "
              f"lengths {int(e_len[0])}")
        del inner


def main():
    from nemo import __version__ as nemo_version
    import onnxruntime

    log(f"NeMo {nemo_version}, torch {torch.__version__}, onnxruntime {onnxruntime.__version__}")
    model = None
    if not args.int8_only:
        t0 = time.perf_counter()
        model = restore(args.model)
        log(f"restored {args.model} in {time.perf_counter() - t0:.1f} s")
        if args.max_audio_s:
            frames = int(args.max_audio_s * 100) // 8 + 2  # 10 ms mel frames, subsampling 8
            model.encoder.set_max_audio_length(max(frames, model.encoder.pos_emb_max_len))
            log(f"encoder max audio length: {model.encoder.max_audio_length} frames")
        export(model, args.out)
    if args.int8 or args.int8_only:
        quantize(args.out)
    for f in sorted(args.out.iterdir()):
        log(f"  {f}: {f.stat().st_size:,} bytes")
    if args.verify:
        verify(model or restore(args.model), args.out, args.verify)


if __name__ == "__main__":
    main()
