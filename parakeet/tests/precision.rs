//! Issue 17: what running the encoder in f16 or bf16 changes, measured against f32 on every
//! fixture model, every decoder head and every fixture recording (the noisy one and the
//! minute-long one included).
//!
//! The fixture models have random weights, so their text is nonsense; what counts is how far
//! the reduced precision moves it from f32: token sequences that stay identical, token edit
//! rate and word error rate against the f32 transcript, and the relative error of the encoder
//! output. Random-weight models are a harsh case: nothing makes their outputs confident, so a
//! small change in the encoder flips tokens more easily than in a trained model.
//!
//! `WARBLE_WRITE_PRECISION=1 cargo nextest run -p warble-parakeet --test precision` writes the
//! table to `docs/precision.md`.

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use candle_core::DType;
use warble_parakeet::encoder::AttentionWindow;
use warble_parakeet::{DecoderKind, LoadOptions, Parakeet, Quantization};

/// What the encoder runs in: a float dtype, or f32 with int8 weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Float(DType),
    Int8,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Self::Float(dtype) => dtype.as_str(),
            Self::Int8 => "int8",
        }
    }

    fn options(self) -> LoadOptions {
        match self {
            Self::Float(dtype) => LoadOptions {
                dtype,
                ..LoadOptions::default()
            },
            Self::Int8 => LoadOptions {
                quantization: Some(Quantization::Int8),
                ..LoadOptions::default()
            },
        }
    }
}

const F16: Mode = Mode::Float(DType::F16);
const BF16: Mode = Mode::Float(DType::BF16);
const REDUCED: [Mode; 3] = [F16, BF16, Mode::Int8];

/// Upper bound on the word error rate against f32, per model and head over all recordings.
/// Measured worst cases (`docs/precision.md`): f16 2.1%, bf16 20.4% (the hybrid's TDT head,
/// where one noisy recording alone loses 10 of its 11 words). The bounds leave about twice that
/// for other CPUs' kernels (sums are blocked differently with other SIMD widths) and still fail
/// if reduced precision breaks something (a NaN, an overflow, a mask that stops masking), which
/// changes nearly every word of every recording.
/// int8 measured 3.7% (the hybrid's TDT head); its bound leaves about twice that for CPUs
/// without AVX512-VNNI, where candle takes another integer kernel.
const MAX_WER: [(Mode, f64); 3] = [(F16, 0.05), (BF16, 0.40), (Mode::Int8, 0.08)];

/// Upper bound on the relative error of the encoder output (Frobenius norm, worst recording).
/// f16 has 11 significant bits (relative rounding 5e-4), bf16 8 (4e-3); through the fixture
/// models' layers the measured error grows to 5.2e-3 (f16) and 6.5e-2 (bf16), ten times the
/// rounding. The bounds leave about 3x on top.
/// int8 (8-bit weights and activations, one scale per block of 32 and of 256) measured 1.2e-2.
const MAX_ENCODER_ERROR: [(Mode, f64); 3] = [(F16, 0.02), (BF16, 0.2), (Mode::Int8, 0.06)];

fn bound(bounds: &[(Mode, f64)], dtype: Mode) -> f64 {
    bounds.iter().find(|(d, _)| *d == dtype).unwrap().1
}

/// Fixture models that are no speech recognition model.
const DIARIZATION_FIXTURES: &str = "sortformer_";

fn models() -> Vec<(String, PathBuf)> {
    let dir = common::fixture("models");
    let mut models: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "nemo") || p.is_dir())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p))
        // Speech recognition models only: the Sortformer diarizers have their own parity test.
        .filter(|(name, _)| !name.starts_with(DIARIZATION_FIXTURES))
        .collect();
    models.sort();
    assert!(models.len() >= 5, "fixture models missing: {models:?}");
    models
}

/// Every recording in `fixtures/audio`, then the minute-long one made from them.
fn recordings() -> Vec<(String, Vec<f32>)> {
    let dir = common::fixture("audio");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| ["wav", "flac", "mp3"].contains(&&*e.to_string_lossy()))
        })
        // The table measures the recordings it was made on; the conversations of the
        // diarization tests and the redaction test's sentence are theirs.
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            !["conv", "pii_"]
                .iter()
                .any(|prefix| name.starts_with(prefix))
        })
        .collect();
    files.sort();
    let mut out: Vec<(String, Vec<f32>)> = files
        .iter()
        .map(|p| {
            let audio = warble_parakeet::audio::decode_file(p).unwrap();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                audio.samples,
            )
        })
        .collect();
    assert!(
        out.iter().any(|(name, _)| name == "alsa_noise.wav"),
        "the noisy recording is missing"
    );
    out.push(("long recording (60 s)".into(), common::long_recording()));
    out
}

/// Levenshtein distance between two sequences.
fn edits<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, x) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, y) in b.iter().enumerate() {
            let next = (diagonal + usize::from(x != y))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// One transcript: token ids and words.
type Transcript = (Vec<u32>, Vec<String>);

/// One model's transcripts and encoder output in one mode.
struct Run {
    /// Per head, per recording: token ids and words.
    heads: Vec<(DecoderKind, Vec<Transcript>)>,
    /// Per recording: the encoder output, f32 on the host.
    encoded: Vec<candle_core::Tensor>,
    encoder_time: Duration,
}

/// Loads the model with the encoder in `dtype` and runs every recording through the encoder
/// once and through each head: the same encoder pass and greedy decoding `transcribe` does,
/// without running the encoder again for every head.
fn run(path: &Path, mode: Mode, recordings: &[(String, Vec<f32>)]) -> Run {
    let options = mode.options();
    let model = Parakeet::load(path.to_str().unwrap(), &options).unwrap();
    assert_eq!(model.dtype(), options.dtype);
    let kinds = model.decoders();
    let mut heads: Vec<(DecoderKind, Vec<Transcript>)> =
        kinds.iter().map(|&k| (k, Vec::new())).collect();
    let mut encoded = Vec::new();
    let mut encoder_time = Duration::ZERO;
    for (_, samples) in recordings {
        let (mel, valid) = model.features(samples).unwrap();
        let start = Instant::now();
        let (x, lengths) = model.encode(&mel, &[valid], AttentionWindow::Full).unwrap();
        encoder_time += start.elapsed();
        assert_eq!(x.dtype(), DType::F32, "the encoder hands the heads f32");
        for (kind, results) in &mut heads {
            let emissions = model.decode(*kind, &x, &lengths).unwrap().remove(0);
            let ids: Vec<usize> = emissions.iter().map(|e| e.token).collect();
            let text = model.tokenizer().decode_text(&ids);
            results.push((
                ids.iter().map(|&id| id as u32).collect(),
                text.split_whitespace().map(str::to_string).collect(),
            ));
        }
        encoded.push(x);
    }
    Run {
        heads,
        encoded,
        encoder_time,
    }
}

/// [`run`] for every model in f32 and each reduced dtype: per model, the f32 run first, then
/// [`REDUCED`] in order. The runs share the cores a thread each: most of the reduced
/// precisions' time on the CPU goes to element-wise work that candle does on one thread.
fn run_all(models: &[(String, PathBuf)], recordings: &[(String, Vec<f32>)]) -> Vec<Vec<Run>> {
    let dtypes: Vec<Mode> = std::iter::once(Mode::Float(DType::F32))
        .chain(REDUCED)
        .collect();
    let jobs: Vec<(usize, usize)> = (0..models.len())
        .flat_map(|m| (0..dtypes.len()).map(move |d| (m, d)))
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done = std::sync::Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..threads.min(jobs.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(&(m, d)) = jobs.get(i) else { break };
                    let result = run(&models[m].1, dtypes[d], recordings);
                    done.lock().unwrap().push((m, d, result));
                }
            });
        }
    });
    let mut done = done.into_inner().unwrap();
    done.sort_by_key(|(m, d, _)| (*m, *d));
    let mut out: Vec<Vec<Run>> = models.iter().map(|_| Vec::new()).collect();
    for (m, _, result) in done {
        out[m].push(result);
    }
    out
}

/// One row of the table: a model's head in one reduced dtype against f32, over all recordings.
struct Row {
    model: String,
    head: DecoderKind,
    dtype: Mode,
    identical: usize,
    recordings: usize,
    token_edits: usize,
    tokens: usize,
    word_edits: usize,
    words: usize,
    /// The worst recording's relative encoder error.
    encoder_error: f64,
    /// Recordings whose tokens differ, with their WER.
    differing: Vec<(String, f64)>,
}

impl Row {
    fn wer(&self) -> f64 {
        self.word_edits as f64 / self.words.max(1) as f64
    }

    fn ter(&self) -> f64 {
        self.token_edits as f64 / self.tokens.max(1) as f64
    }
}

#[test]
fn the_encoder_in_f16_bf16_and_int8_stays_close_to_f32() {
    let recordings = recordings();
    let models = models();
    let runs = run_all(&models, &recordings);
    let mut rows = Vec::new();
    let mut times = [Duration::ZERO; 4];
    for ((name, _), mut runs) in models.iter().zip(runs) {
        let reference = runs.remove(0);
        times[0] += reference.encoder_time;
        for (d, (dtype, reduced)) in REDUCED.into_iter().zip(runs).enumerate() {
            times[d + 1] += reduced.encoder_time;
            let encoder_error = reduced
                .encoded
                .iter()
                .zip(&reference.encoded)
                .map(|(a, b)| {
                    assert_eq!(a.dims(), b.dims(), "{name} {dtype:?}: encoder shape");
                    let (rel, max_abs) = common::relative_error(a, b);
                    assert!(rel.is_finite() && max_abs.is_finite(), "{name} {dtype:?}");
                    rel
                })
                .fold(0.0, f64::max);
            for ((head, ours), (head_f32, theirs)) in reduced.heads.iter().zip(&reference.heads) {
                assert_eq!(head, head_f32);
                let mut row = Row {
                    model: name.clone(),
                    head: *head,
                    dtype,
                    identical: 0,
                    recordings: recordings.len(),
                    token_edits: 0,
                    tokens: 0,
                    word_edits: 0,
                    words: 0,
                    encoder_error,
                    differing: Vec::new(),
                };
                for (((tokens, words), (tokens_f32, words_f32)), (file, _)) in
                    ours.iter().zip(theirs).zip(&recordings)
                {
                    // Sanity: a reduced precision must not silence a model or make it babble.
                    assert!(
                        tokens.len() <= 2 * tokens_f32.len() + 2
                            && tokens_f32.len() <= 2 * tokens.len() + 2,
                        "{name} {head} {dtype:?} {file}: {} tokens against {} in f32",
                        tokens.len(),
                        tokens_f32.len()
                    );
                    row.tokens += tokens_f32.len();
                    row.words += words_f32.len();
                    row.token_edits += edits(tokens, tokens_f32);
                    let word_edits = edits(words, words_f32);
                    row.word_edits += word_edits;
                    if tokens == tokens_f32 {
                        row.identical += 1;
                    } else {
                        let wer = word_edits as f64 / words_f32.len().max(1) as f64;
                        row.differing.push((file.clone(), wer));
                    }
                }
                rows.push(row);
            }
        }
    }

    let table = render(&rows, &times);
    println!("{table}");
    if std::env::var_os("WARBLE_WRITE_PRECISION").is_some_and(|v| v == "1") {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/precision.md");
        std::fs::write(&path, document(&table)).unwrap();
        println!("wrote {}", path.display());
    }

    for row in &rows {
        let what = format!("{} {} {:?}", row.model, row.head, row.dtype);
        assert!(row.tokens > 0 && row.words > 0, "{what}: no output in f32");
        assert!(
            row.wer() <= bound(&MAX_WER, row.dtype),
            "{what}: WER {:.4} against f32",
            row.wer()
        );
        assert!(
            row.encoder_error <= bound(&MAX_ENCODER_ERROR, row.dtype),
            "{what}: encoder relative error {:.2e}",
            row.encoder_error
        );
    }
}

fn render(rows: &[Row], times: &[Duration; 4]) -> String {
    let mut out = String::new();
    let recordings = rows.first().map_or(0, |r| r.recordings);
    writeln!(
        out,
        "| model | head | dtype | identical tokens | token edit rate | WER vs f32 | encoder rel. error (worst) |"
    )
    .unwrap();
    writeln!(out, "|---|---|---|---|---|---|---|").unwrap();
    for r in rows {
        writeln!(
            out,
            "| {} | {} | {} | {}/{} | {:.2}% ({}/{}) | {:.2}% ({}/{}) | {:.1e} |",
            r.model,
            r.head,
            r.dtype.as_str(),
            r.identical,
            r.recordings,
            100.0 * r.ter(),
            r.token_edits,
            r.tokens,
            100.0 * r.wer(),
            r.word_edits,
            r.words,
            r.encoder_error,
        )
        .unwrap();
    }
    let (identical, total): (usize, usize) = rows
        .iter()
        .fold((0, 0), |(i, t), r| (i + r.identical, t + r.recordings));
    writeln!(out).unwrap();
    for dtype in REDUCED {
        let of: Vec<&Row> = rows.iter().filter(|r| r.dtype == dtype).collect();
        let words: usize = of.iter().map(|r| r.words).sum();
        let word_edits: usize = of.iter().map(|r| r.word_edits).sum();
        let same: usize = of.iter().map(|r| r.identical).sum();
        let all: usize = of.iter().map(|r| r.recordings).sum();
        writeln!(
            out,
            "- **{}**: identical tokens on {same}/{all} transcripts, WER vs f32 {:.2}% \
             ({word_edits}/{words} words), worst single-model WER {:.2}%.",
            dtype.as_str(),
            100.0 * word_edits as f64 / words.max(1) as f64,
            100.0 * of.iter().map(|r| r.wer()).fold(0.0, f64::max),
        )
        .unwrap();
    }
    writeln!(
        out,
        "- Together: {identical}/{total} transcripts identical ({recordings} recordings x heads x \
         models x 3 modes)."
    )
    .unwrap();
    let differing: Vec<String> = rows
        .iter()
        .flat_map(|r| {
            r.differing.iter().map(move |(file, wer)| {
                format!(
                    "{} {} {}: {file} (WER {:.1}%)",
                    r.model,
                    r.head,
                    r.dtype.as_str(),
                    100.0 * wer
                )
            })
        })
        .collect();
    if !differing.is_empty() {
        writeln!(out, "\nTranscripts whose tokens differ from f32:\n").unwrap();
        for d in differing {
            writeln!(out, "- {d}").unwrap();
        }
    }
    writeln!(
        out,
        "\nEncoder time on this CPU ({} threads, runs sharing them a thread each), all models \
         and recordings: f32 {:.1} s, f16 {:.1} s, bf16 {:.1} s, int8 {:.1} s.",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        times[0].as_secs_f64(),
        times[1].as_secs_f64(),
        times[2].as_secs_f64(),
        times[3].as_secs_f64(),
    )
    .unwrap();
    out
}

fn document(table: &str) -> String {
    format!(
        "# Encoder precision: f16, bf16 and int8 against f32\n\
         \n\
         Generated by `parakeet/tests/precision.rs`; regenerate with\n\
         \n\
         ```sh\n\
         WARBLE_WRITE_PRECISION=1 cargo nextest run -p warble-parakeet --test precision\n\
         ```\n\
         \n\
         {INTRO}\n\
         ## Measurement\n\
         \n\
         {table}\n\
         {CONCLUSION}"
    )
}

const INTRO: &str = "\
`--dtype` (`WARBLE_DTYPE`, `LoadOptions::dtype`; `f32`, `f16` or `bf16`) chooses what the encoder's weights and \
activations are held in; `--quantization int8` (`WARBLE_QUANTIZATION`, \
`LoadOptions::quantization`; CPU, with f32) holds the weights of its dense layers as 8-bit \
integers instead. Only the encoder changes: the mel frontend, the CTC head and the \
transducer (prediction network and joint) run in f32, and the encoder's output is cast back to \
f32 before they see it.

Every fixture model (`parakeet/tests/fixtures/models`: CTC, RNNT, TDT, hybrid TDT+CTC as .nemo, \
the hybrid again as an MLX conversion) transcribes every fixture recording \
(`parakeet/tests/fixtures/audio`: synthetic speech, the ALSA test tones, `alsa_noise.wav`, the \
format variants, and the minute-long recording made from them) with every decoder head, once \
per mode, on the CPU. The reduced modes are compared with f32: how many transcripts keep \
exactly the same tokens, the token edit rate and the word error rate against the f32 \
transcript (Levenshtein distance over the f32 length), and the relative error (Frobenius \
norm) of the encoder output on the worst recording.

The fixture models are small and have random weights, so their text is nonsense and nothing \
makes their decisions confident: a change in the encoder flips a token more easily than in a \
trained model. Treat the numbers as an upper bound on the disagreement, not as the WER a real \
model would lose.
";

const CONCLUSION: &str = "
## Default

The default stays **f32** (`--dtype f32`, no `--quantization`, `LoadOptions::default()`), on \
every device. When this was measured no reduced mode kept the tokens of every transcript: f16 \
changed 4 of 77 (all four on the minute-long recording, WER against f32 1.1% over everything, \
2.6% at worst per model and head), bf16 changed 15 (11.0% overall, 20.4% for the hybrid's TDT \
head, 91% on the noisy recording alone), int8 changed 14 (1.9% overall, 3.7% at worst). f32 is \
token-identical to NeMo (the parity tests), and a default that changes transcripts by the \
device they run on would make results depend on deployment.

- **int8** (`--quantization int8`, CPU only) is the one to choose on a CPU when throughput \
matters more than identity with NeMo: the dense layers' weights are held as 8-bit integers in \
blocks of 32 with one scale each, the activations are quantized per row on the fly, and the \
products run on integer dot products (AVX512-VNNI), which made the whole encoder about 1.5x \
faster than f32 (`docs/benchmarks.md`, engine table) with a quarter of the weight memory. Its \
error sits between f16's and bf16's; the finer blocks keep it closer to f32 than the \
per-channel int8 of ONNX Runtime's dynamic quantization. On a CPU without VNNI candle takes \
an AVX2 kernel, with the same results and less of the gain.
- **f16** is the one to choose on a CUDA or Metal GPU when memory or throughput matter more \
than identity with NeMo: half the encoder's memory, tensor cores, and the closest of the \
reduced modes to f32 (11 significant bits against bf16's 8; see the encoder error column). Its \
narrow range (largest number 65504) is its risk: the attention mask uses NeMo's fill value of \
10000 in f16 and bf16 rather than f32's 1e30, which would be infinite in f16 and turn padded \
rows into NaN.
- **bf16** keeps f32's range but loses three more bits; on these models it moves the \
transcripts ten times as much as f16. Use it only for a model whose activations overflow f16.
- On the **CPU** f16 and bf16 are several times slower than f32 (see the encoder times above): \
candle has no CPU kernel that multiplies in them (it widens bf16 matrix products to f32 and \
back), and the fused CPU kernels between the products are f32 only. A bf16 kernel on \
AVX512-BF16 would halve the weights' memory traffic, but the products are bound by arithmetic, \
not memory, at these sizes, and int8 doubles the arithmetic rate instead. They are allowed on \
the CPU so that this measurement can run anywhere, not for speed.
";
