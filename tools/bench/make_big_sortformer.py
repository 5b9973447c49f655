#!/usr/bin/env python3
"""Build nvidia/diar_streaming_sortformer_4spk-v2.1's architecture in NeMo with RANDOM weights.

For speed and memory benchmarks only (warble's candle Sortformer vs NeMo/PyTorch on the same
shapes): the weights are NeMo's random initialisation, so the speakers found are meaningless, but
every tensor has the real model's shape and a streaming step does the real model's work. Nothing
is downloaded.

Output (about 470 MB, never commit it): $BENCH_WORK/sortformer-v2.1-random.nemo
(default BENCH_WORK=/work/bench-work).

Usage: /work/venv/nemo/bin/python tools/bench/make_big_sortformer.py [--out PATH] [--seed 0]

Where the config values come from
---------------------------------
[A] NeMo's own config for the streaming Sortformer, GitHub NVIDIA/NeMo,
    examples/speaker_tasks/diarization/conf/neural_diarizer/streaming_sortformer_diarizer_4spk-v2.yaml:
    every section below (preprocessor 128 mels; FastConformer 17 layers, d_model 512, 8 heads,
    dw_striding x8 with 256 channels, xscaling true; Transformer 18 layers, hidden 192, inner 768,
    8 heads, post-LN; sortformer_modules fc 512 / tf 192 and the speaker-cache constants), the
    training-only sections (dropouts, loss) included, so the model builds exactly as NeMo does.
[B] The streaming geometry: the v2.1 model card's recommended highest-latency setting
    ("30.4 s": chunk 340, right context 40, FIFO 40, update period 300, cache 188 frames of 80 ms),
    as quoted by several public ports of the model (code search); [A]'s own values are the
    training defaults (chunk 188, FIFO 0, update period 1). The left context (1) is [A]'s.
"""
import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # building is not timed; stay light on a shared box

import torch  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

WORK = Path(os.environ.get("BENCH_WORK", "/work/bench-work"))

STREAMING = {                       # [B]
    "spkcache_len": 188, "fifo_len": 40, "chunk_len": 340, "spkcache_update_period": 300,
    "chunk_left_context": 1, "chunk_right_context": 40,
}


def model_config() -> dict:
    ds = {"manifest_filepath": None, "sample_rate": 16000, "num_spks": 4, "session_len_sec": 90,
          "soft_label_thres": 0.5, "soft_targets": False, "labels": None, "batch_size": 4,
          "shuffle": False, "num_workers": 0, "validation_mode": True, "use_lhotse": False,
          "window_stride": 0.01, "subsampling_factor": 8, "defer_setup": True}
    return {
        "sample_rate": 16000, "pil_weight": 0.5, "ats_weight": 0.5, "max_num_of_spks": 4,  # [A]
        "streaming_mode": True,                                                           # [A]
        "model_defaults": {"fc_d_model": 512, "tf_d_model": 192},                         # [A]
        "train_ds": dict(ds), "validation_ds": dict(ds),
        "preprocessor": {                                                                 # [A]
            "_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor",
            "normalize": "per_feature", "window_size": 0.025, "sample_rate": 16000,
            "window_stride": 0.01, "window": "hann", "features": 128, "n_fft": 512,
            "frame_splicing": 1, "dither": 0.00001,
        },
        "sortformer_modules": {                                                           # [A]
            "_target_": "nemo.collections.asr.modules.sortformer_modules.SortformerModules",
            "num_spks": 4, "dropout_rate": 0.5, "fc_d_model": 512, "tf_d_model": 192,
            **STREAMING,                                                                  # [B]
            "spkcache_sil_frames_per_spk": 3, "scores_add_rnd": 0, "pred_score_threshold": 0.25,
            "max_index": 99999, "scores_boost_latest": 0.05, "sil_threshold": 0.2,
            "strong_boost_rate": 0.75, "weak_boost_rate": 1.5, "min_pos_scores_rate": 0.5,
            "causal_attn_rate": 0.5, "causal_attn_rc": 7,
        },
        "encoder": {                                                                      # [A]
            "_target_": "nemo.collections.asr.modules.ConformerEncoder",
            "feat_in": 128, "feat_out": -1, "n_layers": 17, "d_model": 512,
            "subsampling": "dw_striding", "subsampling_factor": 8, "subsampling_conv_channels": 256,
            "causal_downsampling": False, "ff_expansion_factor": 4, "self_attention_model": "rel_pos",
            "n_heads": 8, "att_context_size": [-1, -1], "att_context_style": "regular",
            "xscaling": True, "untie_biases": True, "pos_emb_max_len": 5000, "conv_kernel_size": 9,
            "conv_norm_type": "batch_norm", "conv_context_size": None, "dropout": 0.1,
            "dropout_pre_encoder": 0.1, "dropout_emb": 0.0, "dropout_att": 0.1,
            "stochastic_depth_drop_prob": 0.0, "stochastic_depth_mode": "linear",
            "stochastic_depth_start_layer": 1,
        },
        "transformer_encoder": {                                                          # [A]
            "_target_": "nemo.collections.asr.modules.transformer.transformer_encoders.TransformerEncoder",
            "num_layers": 18, "hidden_size": 192, "inner_size": 768, "num_attention_heads": 8,
            "attn_score_dropout": 0.5, "attn_layer_dropout": 0.5, "ffn_dropout": 0.5,
            "hidden_act": "relu", "pre_ln": False, "pre_ln_final_layer_norm": True,
        },
        "loss": {"_target_": "nemo.collections.asr.losses.bce_loss.BCELoss", "weight": None,
                 "reduction": "mean"},
        "lr": 0.0001,
        "optim": {"name": "adamw", "lr": 0.0001, "betas": [0.9, 0.98], "weight_decay": 1e-3,
                  "sched": {"name": "InverseSquareRootAnnealing", "warmup_steps": 500,
                            "warmup_ratio": None, "min_lr": 1e-06}},
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=WORK / "sortformer-v2.1-random.nemo")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    from nemo.collections.asr.models import SortformerEncLabelModel

    t0 = time.time()
    model = SortformerEncLabelModel(cfg=OmegaConf.create(model_config()))
    model.eval()
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    print(f"built in {time.time() - t0:.1f} s: {count(model):,} parameters (encoder "
          f"{count(model.encoder):,}, transformer {count(model.transformer_encoder):,})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.save_to(str(args.out))
    print(f"saved {args.out}: {args.out.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
