//! The model service: many callers' audio batched into shared encoder passes, long audio in
//! chunks, and every result what the file gives alone.

mod common;

use common::fingerprint;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use warble_parakeet::service::{BatchLimits, ModelService, Progress};
use warble_parakeet::{
    Chunking, DecoderKind, Error, LoadOptions, Parakeet, TranscribeOptions, Transcript,
};

fn load(name: &str) -> Parakeet {
    Parakeet::load(
        common::fixture(&format!("models/{name}.nemo"))
            .to_str()
            .unwrap(),
        &LoadOptions::default(),
    )
    .unwrap()
}

/// Short files, cuts of them, and the minute-long recording: lengths from 0.3 s to 60 s.
fn mix() -> Vec<Vec<f32>> {
    let mut files = common::speech_files();
    files.push(files[0][..4800].to_vec());
    files.push(files[2][8000..40_000].to_vec());
    files.push(common::long_recording());
    files
}

/// Chunks small enough that the minute-long recording has six of them.
fn chunked(decoder: DecoderKind) -> TranscribeOptions {
    TranscribeOptions {
        decoder: Some(decoder),
        chunking: Some(Chunking {
            secs: 12.0,
            overlap_secs: 4.0,
        }),
        ..TranscribeOptions::default()
    }
}

/// Every file through the service from its own thread at once.
fn all_at_once(
    service: &ModelService,
    files: &[Vec<f32>],
    options: &TranscribeOptions,
) -> Vec<(Transcript, Vec<Progress>)> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .iter()
            .map(|samples| {
                scope.spawn(move || {
                    let mut reports = Vec::new();
                    let transcript = service
                        .transcribe(samples, options, Arc::default(), |p| reports.push(p))
                        .unwrap();
                    (transcript, reports)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn batched_across_callers_every_file_gets_what_it_gets_alone_for_every_model_and_head() {
    let files = mix();
    for name in ["tdt", "rnnt", "ctc", "hybrid"] {
        let model = load(name);
        let decoders = model.decoders();
        let alone: Vec<Vec<Transcript>> = decoders
            .iter()
            .map(|&d| {
                files
                    .iter()
                    .map(|f| model.transcribe(f, &chunked(d)).unwrap())
                    .collect()
            })
            .collect();
        // Room for a dozen chunks per pass, and time for every caller to queue.
        let service = ModelService::start(
            model,
            BatchLimits {
                max_batch_secs: 150.0,
                max_wait: Duration::from_millis(200),
            },
        );
        for (decoder, alone) in decoders.iter().zip(alone) {
            let results = all_at_once(&service, &files, &chunked(*decoder));
            for ((batched, reports), alone) in results.iter().zip(&alone) {
                assert_eq!(fingerprint(batched), fingerprint(alone), "{name} {decoder}");
                assert_eq!(batched.text, alone.text);
                assert_eq!(batched.duration, alone.duration);
                // Progress: one report per chunk, only ever forward, ending at all of it.
                let last = reports.last().unwrap();
                assert_eq!(last.chunks_done, last.chunks);
                assert_eq!(reports.len(), last.chunks);
                assert!(
                    reports
                        .windows(2)
                        .all(|w| w[0].fraction() < w[1].fraction())
                );
                assert_eq!(last.fraction(), 1.0);
            }
            assert_eq!(results[7].1.len(), 8, "the minute in eight chunks");
        }
        let stats = service.stats();
        let chunks = (decoders.len() * (files.len() - 1 + 8)) as u64;
        assert_eq!(stats.items, chunks);
        assert!(
            stats.passes * 3 <= stats.items,
            "{name}: {stats:?} is not batching"
        );
        assert!(stats.padded_frames >= stats.frames);
    }
}

#[test]
fn a_canceled_job_gives_up_its_places_and_leaves_the_others_untouched() {
    let model = load("tdt");
    let files = mix();
    let options = chunked(DecoderKind::Tdt);
    let alone: Vec<Transcript> = files[..3]
        .iter()
        .map(|f| model.transcribe(f, &options).unwrap())
        .collect();
    // One chunk per pass: the minute's six chunks queue behind each other.
    let service = ModelService::start(
        model,
        BatchLimits {
            max_batch_secs: 1.0,
            max_wait: Duration::ZERO,
        },
    );
    let canceled = Arc::new(AtomicBool::new(false));
    let (long, others) = std::thread::scope(|scope| {
        let flag = canceled.clone();
        let service = &service;
        let long = scope.spawn({
            let samples = &files[7];
            let options = &options;
            move || {
                service.transcribe(samples, options, flag.clone(), |p| {
                    // Canceled as soon as its first chunk is done.
                    if p.chunks_done == 1 {
                        flag.store(true, Ordering::SeqCst);
                    }
                })
            }
        });
        let others: Vec<_> = files[..3]
            .iter()
            .map(|f| {
                let options = &options;
                scope.spawn(move || service.transcribe(f, options, Arc::default(), |_| {}))
            })
            .collect();
        (
            long.join().unwrap(),
            others
                .into_iter()
                .map(|h| h.join().unwrap().unwrap())
                .collect::<Vec<_>>(),
        )
    });
    assert!(matches!(long, Err(Error::Canceled)), "{long:?}");
    for (batched, alone) in others.iter().zip(&alone) {
        assert_eq!(fingerprint(batched), fingerprint(alone));
    }
    // Its chunks still waiting never ran (one may have been in the pass under way).
    std::thread::sleep(Duration::from_millis(200));
    let stats = service.stats();
    assert!(stats.items <= 3 + 2, "{stats:?}");
}

/// Issue 17: a long file in chunks reads as one: its words come in order, each once, and it
/// reads about as well as the file transcribed whole. The minute-long recording is cut into
/// five 20 s chunks overlapping by 8 s, so four seams fall inside its sentences; its true text
/// is known (the `.txt` of each part), and the word error rate against it is compared for the
/// two ways. (With this tiny model context counts: 12 s chunks with 4 s of overlap read
/// 8 points worse than whole, 30 s with 8 s one point better.)
#[test]
fn chunk_seams_give_continuous_words() {
    let model = load("hybrid");
    let minute = common::long_recording();
    let truth = normalized(&common::long_recording_text());
    for decoder in [DecoderKind::Tdt, DecoderKind::Ctc] {
        let whole = model
            .transcribe(
                &minute,
                &TranscribeOptions {
                    decoder: Some(decoder),
                    chunking: None,
                    ..TranscribeOptions::default()
                },
            )
            .unwrap();
        let seamed = TranscribeOptions {
            chunking: Some(Chunking {
                secs: 20.0,
                overlap_secs: 8.0,
            }),
            ..chunked(decoder)
        };
        let chunks = model.transcribe(&minute, &seamed).unwrap();
        assert!(
            chunks
                .words
                .windows(2)
                .all(|w| w[0].start <= w[1].start && w[0].end <= w[1].start + 0.08),
            "{decoder}: words out of order or overlapping"
        );
        assert!(chunks.words.iter().all(|w| w.end <= chunks.duration));
        assert_eq!(chunks.duration, whole.duration);
        let wer = |t: &Transcript| {
            word_distance(&normalized(&t.text), &truth) as f64 / truth.len() as f64
        };
        let (wer_whole, wer_chunks) = (wer(&whole), wer(&chunks));
        eprintln!(
            "{decoder}: WER whole {wer_whole:.3}, in chunks {wer_chunks:.3} ({} words of truth)",
            truth.len()
        );
        assert!(
            wer_chunks <= wer_whole + 0.05,
            "{decoder}: WER {wer_chunks:.3} in chunks against {wer_whole:.3} whole"
        );
    }
}

/// Lowercase words without punctuation.
fn normalized(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric() || *c == '\'')
                .collect::<String>()
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// Word-level Levenshtein distance.
fn word_distance(a: &[String], b: &[String]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, x) in a.iter().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, y) in b.iter().enumerate() {
            let substitution = previous + usize::from(x != y);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}
