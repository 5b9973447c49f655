//! Engine behaviour beyond single-file parity: batching, checksums, long audio in bounded memory.

mod common;

use common::{fingerprint, speech_files};

use warble_parakeet::checkpoint;
use warble_parakeet::{DecoderKind, Error, LoadOptions, Parakeet, TranscribeOptions};

fn hybrid() -> Parakeet {
    Parakeet::load(
        common::fixture("models/hybrid.nemo").to_str().unwrap(),
        &LoadOptions::default(),
    )
    .unwrap()
}

#[test]
fn a_padded_batch_gives_what_each_utterance_gives_alone() {
    let model = hybrid();
    let files = speech_files();
    let batch: Vec<&[f32]> = files.iter().map(Vec::as_slice).collect();
    for decoder in [DecoderKind::Tdt, DecoderKind::Ctc] {
        let options = TranscribeOptions {
            decoder: Some(decoder),
            ..TranscribeOptions::default()
        };
        let together = model.transcribe_batch(&batch, &options).unwrap();
        assert_eq!(together.len(), files.len());
        for (samples, batched) in files.iter().zip(&together) {
            let alone = model.transcribe(samples, &options).unwrap();
            assert_eq!(fingerprint(batched), fingerprint(&alone), "{decoder}");
            assert_eq!(batched.duration, alone.duration);
        }
    }
}

/// Issue 15: the attention window came from the longest item, so a short utterance batched
/// with long audio ran with local attention. The threshold is lowered to 5 s and the window to
/// 4 frames so that a few seconds of audio show it.
#[test]
fn a_short_utterance_batched_with_long_audio_keeps_full_attention() {
    let model = hybrid();
    let files = speech_files();
    let long: Vec<f32> = files.concat();
    let options = TranscribeOptions {
        decoder: Some(DecoderKind::Tdt),
        long_audio_secs: Some(5.0),
        long_audio_window: 4,
        ..TranscribeOptions::default()
    };
    let local = warble_parakeet::encoder::AttentionWindow::Local(4);
    assert_eq!(model.window_for(long.len(), &options), local);
    let short = &files[0];
    let alone = model.transcribe(short, &options).unwrap();
    // The window matters for this utterance: under the long audio's, it reads differently.
    let squeezed = TranscribeOptions {
        long_audio_secs: Some(0.0),
        ..options.clone()
    };
    assert_ne!(
        fingerprint(&model.transcribe(short, &squeezed).unwrap()),
        fingerprint(&alone)
    );

    let batch: Vec<&[f32]> = vec![short, &long, &files[1]];
    let together = model.transcribe_batch(&batch, &options).unwrap();
    assert_eq!(together.len(), batch.len());
    for (samples, batched) in batch.iter().zip(&together) {
        let alone = model.transcribe(samples, &options).unwrap();
        assert_eq!(fingerprint(batched), fingerprint(&alone));
        assert_eq!(batched.duration, alone.duration);
    }
}

/// Issue 15: words of audio cut short ended after the audio did (a 0.2 s cut gave 0.24 s). Cut
/// the recording at every 0.1 s from 0.2 s on (most cuts fall inside a word), and the 0.2 s
/// from 0.3 s: every token, word and segment lies inside the audio, starts at or before it
/// ends, and starts and ends keep their order.
#[test]
fn times_stay_inside_audio_cut_anywhere() {
    let model = hybrid();
    let speech = &speech_files()[0];
    let mut cuts: Vec<&[f32]> = (2..)
        .map(|tenths| tenths * 1600)
        .take_while(|&n| n < speech.len())
        .map(|n| &speech[..n])
        .collect();
    cuts.push(&speech[4800..8000]);
    for decoder in [DecoderKind::Tdt, DecoderKind::Ctc] {
        let options = TranscribeOptions {
            decoder: Some(decoder),
            ..TranscribeOptions::default()
        };
        for t in model.transcribe_batch(&cuts, &options).unwrap() {
            let spans = [
                t.tokens
                    .iter()
                    .map(|x| (x.start, x.end))
                    .collect::<Vec<_>>(),
                t.words.iter().map(|x| (x.start, x.end)).collect(),
                t.segments.iter().map(|x| (x.start, x.end)).collect(),
            ];
            for spans in spans {
                let what = format!("{decoder}, {} s: {spans:?}", t.duration);
                assert!(
                    spans
                        .iter()
                        .all(|&(start, end)| start <= end && end <= t.duration),
                    "{what}"
                );
                assert!(
                    spans
                        .windows(2)
                        .all(|p| p[0].0 <= p[1].0 && p[0].1 <= p[1].1),
                    "{what}"
                );
            }
        }
    }
}

#[test]
fn the_encoder_output_of_a_batch_matches_single_runs() {
    let model = hybrid();
    let files = speech_files();
    let mut mels = Vec::new();
    let mut lengths = Vec::new();
    for samples in &files {
        let (mel, valid) = model.features(samples).unwrap();
        mels.push(mel);
        lengths.push(valid);
    }
    let max = mels.iter().map(|m| m.dim(2).unwrap()).max().unwrap();
    let padded: Vec<_> = mels
        .iter()
        .map(|m| m.pad_with_zeros(2, 0, max - m.dim(2).unwrap()).unwrap())
        .collect();
    let batch = candle_core::Tensor::cat(&padded, 0).unwrap();
    let window = warble_parakeet::encoder::AttentionWindow::Full;
    let (encoded, out_lengths) = model.encode(&batch, &lengths, window).unwrap();
    for (i, mel) in mels.iter().enumerate() {
        let (alone, alone_len) = model.encode(mel, &lengths[i..=i], window).unwrap();
        assert_eq!(alone_len[0], out_lengths[i]);
        let batched = encoded
            .get(i)
            .unwrap()
            .narrow(0, 0, out_lengths[i])
            .unwrap();
        let (rel, _) = common::relative_error(&batched, &alone.squeeze(0).unwrap());
        assert!(rel < 1e-5, "item {i}: relative error {rel:e}");
    }
}

#[test]
fn a_pinned_checksum_is_verified_before_loading() {
    let path = common::fixture("models/hybrid.nemo");
    let digest = checkpoint::sha256_file(&path).unwrap();
    let good = LoadOptions {
        sha256: Some(digest.to_uppercase()),
        ..LoadOptions::default()
    };
    Parakeet::load(path.to_str().unwrap(), &good).unwrap();

    let wrong = "0".repeat(64);
    let bad = LoadOptions {
        sha256: Some(wrong.clone()),
        ..LoadOptions::default()
    };
    match Parakeet::load(path.to_str().unwrap(), &bad) {
        Err(Error::ChecksumMismatch {
            expected, actual, ..
        }) => {
            assert_eq!(expected, wrong);
            assert_eq!(actual, digest);
        }
        other => panic!("expected a checksum mismatch, got {other:?}"),
    }
}

#[test]
fn int8_is_refused_with_a_reduced_dtype() {
    let path = common::fixture("models/tdt.nemo");
    let options = LoadOptions {
        dtype: candle_core::DType::F16,
        quantization: Some(warble_parakeet::Quantization::Int8),
        ..LoadOptions::default()
    };
    match Parakeet::load(path.to_str().unwrap(), &options) {
        Err(Error::Unsupported(what)) => assert!(what.contains("int8"), "{what}"),
        other => panic!("expected unsupported, got {other:?}"),
    }
}

#[test]
fn missing_and_malformed_models_fail_with_a_clear_error() {
    let err = Parakeet::load("/nonexistent/model.nemo", &LoadOptions::default()).unwrap_err();
    assert!(err.to_string().contains("no such file"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.nemo");
    std::fs::write(&junk, b"this is not a tar archive at all").unwrap();
    let err = Parakeet::load(junk.to_str().unwrap(), &LoadOptions::default()).unwrap_err();
    assert!(matches!(err, Error::ModelFile { .. }), "{err}");
}

#[test]
fn asking_for_a_head_the_model_lacks_names_the_ones_it_has() {
    let model = Parakeet::load(
        common::fixture("models/ctc.nemo").to_str().unwrap(),
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(model.decoders(), [DecoderKind::Ctc]);
    let options = TranscribeOptions {
        decoder: Some(DecoderKind::Tdt),
        ..TranscribeOptions::default()
    };
    let err = model.transcribe(&[0.0; 16000], &options).unwrap_err();
    assert_eq!(
        err.to_string(),
        "this model has no tdt decoder (available: ctc)"
    );
}

/// Peak resident memory of this process so far, bytes (Linux).
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

/// An hour of speech: the minute-long recording of `long_recipe.json` over and over. It goes
/// through local attention in far less memory than one full attention matrix would take, and
/// its words and times are continuous across the whole hour and across the slices the
/// subsampling works in. (`nemo_parity.rs` checks the same hour against NeMo.)
#[test]
fn an_hour_of_audio_transcribes_in_bounded_memory_with_continuous_timestamps() {
    let model = hybrid();
    let minute = common::long_recording();
    let repeats = (3600 * 16_000usize).div_ceil(minute.len());
    let hour: Vec<f32> = std::iter::repeat_n(minute.as_slice(), repeats)
        .flatten()
        .copied()
        .collect();
    // Whole, not in chunks: the local attention path (`service.rs` tests chunks).
    let options = TranscribeOptions {
        decoder: Some(DecoderKind::Tdt),
        chunking: None,
        ..TranscribeOptions::default()
    };
    assert_eq!(
        model.window_for(hour.len(), &options),
        warble_parakeet::encoder::AttentionWindow::Local(256)
    );

    let before = peak_rss();
    let long = model.transcribe(&hour, &options).unwrap();
    let peak = peak_rss();
    let encoder_frames = (hour.len() / 160) / 8;
    let attention_matrix = (encoder_frames * encoder_frames * 4) as u64;
    eprintln!(
        "hour: {encoder_frames} encoder frames, {} words, peak RSS {} MB (before {} MB), one full attention matrix {} MB",
        long.words.len(),
        peak >> 20,
        before >> 20,
        attention_matrix >> 20
    );
    assert!(
        peak < attention_matrix / 8,
        "peak RSS {peak} is not well under {attention_matrix}"
    );

    // Continuous: ordered, inside the audio, and every repetition has its words.
    let period = minute.len() as f64 / 16_000.0;
    assert!(
        long.words
            .windows(2)
            .all(|w| w[0].start <= w[1].start && w[0].end <= w[1].start + 0.08)
    );
    assert!(
        long.words
            .iter()
            .all(|w| w.start <= w.end && w.end <= long.duration)
    );
    for k in 0..repeats {
        let inside = long
            .words
            .iter()
            .filter(|w| w.start >= k as f64 * period && w.start < (k + 1) as f64 * period);
        assert!(inside.count() >= 50, "repetition {k} lost its words");
    }
}

/// The MLX community's layout (`config.json` + `model.safetensors`, converted from the same
/// `.nemo` by `tools/fixtures/nemo_to_mlx.py`) loads into the same model.
#[test]
fn an_mlx_conversion_transcribes_like_the_nemo_file() {
    let nemo = hybrid();
    let mlx = Parakeet::load(
        common::fixture("models/hybrid-mlx").to_str().unwrap(),
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(mlx.decoders(), nemo.decoders());
    for samples in speech_files() {
        let (mel, valid) = nemo.features(&samples).unwrap();
        let window = warble_parakeet::encoder::AttentionWindow::Full;
        let (a, _) = nemo.encode(&mel, &[valid], window).unwrap();
        let (b, _) = mlx.encode(&mel, &[valid], window).unwrap();
        assert!(common::relative_error(&b, &a).0 < 1e-6);
        for decoder in [DecoderKind::Tdt, DecoderKind::Ctc] {
            let options = TranscribeOptions {
                decoder: Some(decoder),
                ..TranscribeOptions::default()
            };
            assert_eq!(
                mlx.transcribe(&samples, &options).unwrap(),
                nemo.transcribe(&samples, &options).unwrap()
            );
        }
    }
}
