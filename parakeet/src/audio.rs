//! Audio files to the 16 kHz mono f32 signal the models expect.
//!
//! WAV (8/16/24/32-bit integer and float), FLAC, MP3, AAC (MP4/M4A or ADTS), Vorbis and Opus
//! (Ogg, or Matroska/WebM) are demuxed with symphonia and decoded with symphonia, or with
//! `ropus` for Opus ([`opus`]); every channel is averaged into one, and other rates are converted to 16 kHz with rubato's
//! band-limited (windowed-sinc, FFT-convolved) synchronous resampler. 16 kHz mono input is
//! passed through untouched: 16-bit samples become `i16 / 32768`, exactly what NeMo gets from
//! `soundfile.read(dtype="float32")`.

use std::fs::File;
use std::io::Cursor;
use std::path::Path;

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};
use symphonia::core::codecs::audio::well_known::CODEC_ID_OPUS;
use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;

mod opus;

/// The sample rate of every Parakeet model, in Hz.
pub const SAMPLE_RATE: u32 = 16_000;

/// Decoded audio ready for the engine.
#[derive(Debug, Clone)]
pub struct Audio {
    /// 16 kHz mono samples in [-1, 1].
    pub samples: Vec<f32>,
    /// Sample rate of the file, before resampling.
    pub source_rate: u32,
    /// Channel count of the file, before downmixing.
    pub source_channels: usize,
}

impl Audio {
    /// Length of the 16 kHz signal in seconds.
    pub fn duration_secs(&self) -> f64 {
        self.samples.len() as f64 / f64::from(SAMPLE_RATE)
    }
}

/// Why a file could not be turned into audio.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// The file could not be opened.
    #[error("cannot open {path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    /// No demuxer recognised the data (not WAV, FLAC or MP3, or garbage).
    #[error("unsupported audio format: {0}")]
    UnsupportedFormat(String),
    /// The container holds no audio track.
    #[error("no audio track")]
    NoAudioTrack,
    /// The audio track uses a codec we don't decode.
    #[error("unsupported audio codec: {0}")]
    UnsupportedCodec(String),
    /// Reading or decoding the stream failed beyond a single corrupt packet.
    #[error("decode failed: {0}")]
    Decode(String),
    /// The file decoded to no samples.
    #[error("empty audio: the file contains no samples")]
    Empty,
    /// The resampler could not be built or run.
    #[error("resampling from {rate} Hz failed: {reason}")]
    Resample { rate: u32, reason: String },
}

/// Decodes an audio file; the extension helps pick the format but the content decides.
pub fn decode_file(path: &Path) -> Result<Audio, AudioError> {
    let file = File::open(path).map_err(|source| AudioError::Open {
        path: path.display().to_string(),
        source,
    })?;
    let extension = path.extension().and_then(|e| e.to_str());
    decode_source(Box::new(file), extension)
}

/// Decodes an in-memory audio file (e.g. an upload); `extension_hint` as in a file name, without the dot.
pub fn decode_bytes(bytes: Vec<u8>, extension_hint: Option<&str>) -> Result<Audio, AudioError> {
    decode_source(Box::new(Cursor::new(bytes)), extension_hint)
}

fn decode_source(
    source: Box<dyn MediaSource>,
    extension: Option<&str>,
) -> Result<Audio, AudioError> {
    let stream = MediaSourceStream::new(source, Default::default());
    let mut hint = Hint::new();
    if let Some(extension) = extension {
        hint.with_extension(extension);
    }
    let mut format = symphonia::default::get_probe()
        .probe(
            &hint,
            stream,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| AudioError::UnsupportedFormat(e.to_string()))?;
    let (mut track_id, mut decoder) = open_default_track(format.as_ref())?;
    let mut sink: Option<Sink> = None;
    let mut interleaved: Vec<f32> = Vec::new();
    loop {
        let packet = match format.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            // A truncated file (a recording cut short): keep what was there, like libsndfile,
            // which NeMo reads audio with.
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                break;
            }
            // The track list changed (chained streams): start over on the new default track.
            Err(SymphoniaError::ResetRequired) => {
                (track_id, decoder) = open_default_track(format.as_ref())?;
                continue;
            }
            Err(e) => return Err(AudioError::Decode(e.to_string())),
        };
        if packet.track_id != track_id {
            continue;
        }
        let decoded = match &mut decoder {
            TrackDecoder::Symphonia(decoder) => match decoder.decode(&packet) {
                Ok(buffer) if buffer.frames() > 0 => {
                    buffer.copy_to_vec_interleaved(&mut interleaved);
                    Decoded::Samples(buffer.spec().rate(), buffer.spec().channels().count())
                }
                Ok(_) => Decoded::Nothing,
                // A corrupt packet (malformed data, or a packet too short to parse): skip it,
                // as symphonia's examples do, rather than lose the whole file.
                Err(SymphoniaError::DecodeError(_) | SymphoniaError::IoError(_)) => {
                    Decoded::Nothing
                }
                // The decoder must be rebuilt; the audio specification may change.
                Err(SymphoniaError::ResetRequired) => Decoded::Reset,
                Err(e) => return Err(AudioError::Decode(e.to_string())),
            },
            TrackDecoder::Opus(decoder) => {
                let trim_start = packet.trim_start.get() as usize;
                let trim_end = packet.trim_end.get() as usize;
                match decoder.decode(&packet.data, trim_start, trim_end, &mut interleaved) {
                    Ok(()) if !interleaved.is_empty() => {
                        Decoded::Samples(opus::RATE, decoder.channels())
                    }
                    // A corrupt packet is skipped, as with the other codecs.
                    Ok(()) | Err(_) => Decoded::Nothing,
                }
            }
        };
        let (rate, channels) = match decoded {
            Decoded::Samples(rate, channels) => (rate, channels),
            Decoded::Nothing => continue,
            Decoded::Reset => {
                (track_id, decoder) = open_default_track(format.as_ref())?;
                continue;
            }
        };
        let sink = match &mut sink {
            Some(sink) => sink,
            empty @ None => empty.insert(Sink::new(rate, channels)?),
        };
        sink.push(rate, channels, &interleaved)?;
    }
    sink.ok_or(AudioError::Empty)?.finish()
}

/// A track's decoder: symphonia's, or ours for Opus.
enum TrackDecoder {
    Symphonia(Box<dyn AudioDecoder>),
    Opus(Box<opus::OpusDecoder>),
}

/// What decoding one packet gave.
enum Decoded {
    /// Interleaved samples at this rate and channel count, in the shared buffer.
    Samples(u32, usize),
    /// Nothing to keep (an empty or corrupt packet).
    Nothing,
    /// The decoder must be rebuilt.
    Reset,
}

/// Finds the default audio track and builds its decoder.
fn open_default_track(format: &dyn FormatReader) -> Result<(u32, TrackDecoder), AudioError> {
    let track = format
        .default_track(TrackType::Audio)
        .ok_or(AudioError::NoAudioTrack)?;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or(AudioError::NoAudioTrack)?;
    if params.codec == CODEC_ID_OPUS {
        let head = params.extra_data.as_deref().unwrap_or_default();
        return Ok((
            track.id,
            TrackDecoder::Opus(Box::new(opus::OpusDecoder::new(head)?)),
        ));
    }
    let decoder = symphonia::default::get_codecs()
        .make_audio_decoder(params, &AudioDecoderOptions::default())
        .map_err(|e| AudioError::UnsupportedCodec(e.to_string()))?;
    Ok((track.id, TrackDecoder::Symphonia(decoder)))
}

/// Downmixes decoded packets and brings them to 16 kHz as they arrive, so a long file is never
/// held at its source rate.
struct Sink {
    rate: u32,
    channels: usize,
    mono: Vec<f32>,
    resampler: Option<StreamResampler>,
}

impl Sink {
    fn new(rate: u32, channels: usize) -> Result<Self, AudioError> {
        if rate == 0 || channels == 0 {
            return Err(AudioError::Decode(format!(
                "invalid stream: {rate} Hz, {channels} channels"
            )));
        }
        let resampler = if rate == SAMPLE_RATE {
            None
        } else {
            Some(StreamResampler::new(rate)?)
        };
        Ok(Self {
            rate,
            channels,
            mono: Vec::new(),
            resampler,
        })
    }

    /// Adds one packet of interleaved samples.
    fn push(&mut self, rate: u32, channels: usize, interleaved: &[f32]) -> Result<(), AudioError> {
        if (rate, channels) != (self.rate, self.channels) {
            return Err(AudioError::Decode(format!(
                "audio format changes mid-stream from {} Hz x{} to {rate} Hz x{channels}",
                self.rate, self.channels
            )));
        }
        match &mut self.resampler {
            None => downmix_into(interleaved, channels, &mut self.mono),
            Some(resampler) => {
                self.mono.clear();
                downmix_into(interleaved, channels, &mut self.mono);
                resampler.push(&self.mono)?;
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<Audio, AudioError> {
        let samples = match self.resampler {
            None => self.mono,
            Some(resampler) => resampler.finish()?,
        };
        if samples.is_empty() {
            return Err(AudioError::Empty);
        }
        Ok(Audio {
            samples,
            source_rate: self.rate,
            source_channels: self.channels,
        })
    }
}

/// Appends the average of each frame's channels (mono is copied as is, bit for bit).
fn downmix_into(interleaved: &[f32], channels: usize, mono: &mut Vec<f32>) {
    if channels == 1 {
        mono.extend_from_slice(interleaved);
    } else {
        let scale = channels as f32;
        mono.extend(
            interleaved
                .chunks_exact(channels)
                .map(|frame| frame.iter().sum::<f32>() / scale),
        );
    }
}

/// rubato's FFT resampler fed chunk by chunk, with its delay removed and its tail flushed so
/// the output is aligned with the input and exactly `round(n_in * 16000 / rate)` samples long.
struct StreamResampler {
    rate: u32,
    resampler: Fft<f32>,
    /// Input not yet consumed (less than one chunk between calls).
    pending: Vec<f32>,
    /// Scratch for one output chunk.
    chunk_out: Vec<f32>,
    output: Vec<f32>,
    /// Leading output samples still to drop (the filter delay).
    delay_left: usize,
    input_len: u64,
}

impl StreamResampler {
    /// Rough number of input samples per chunk.
    const CHUNK: usize = 1024;

    fn new(rate: u32) -> Result<Self, AudioError> {
        let resampler = Fft::<f32>::new(
            rate as usize,
            SAMPLE_RATE as usize,
            Self::chunk_size(rate),
            1,
            FixedSync::Both,
        )
        .map_err(|e| resample_error(rate, e))?;
        Ok(Self {
            rate,
            delay_left: resampler.output_delay(),
            chunk_out: vec![0.0; resampler.output_frames_max()],
            resampler,
            pending: Vec::new(),
            output: Vec::new(),
            input_len: 0,
        })
    }

    /// Input samples per chunk: about [`Self::CHUNK`], and an *even* number of the rate ratio's
    /// smallest blocks (`rate / gcd(rate, 16000)` samples, e.g. 441 at 44.1 kHz).
    ///
    /// rubato's filter is centred on sample `len / 2` of its FFT block while `output_delay()`
    /// reports half the output block; with an odd block count (e.g. 1323 in / 480 out) the two
    /// differ and the output comes out shifted by a fraction of a sample (0.18 at 44.1 kHz,
    /// 0.36 at 22.05 kHz). With an even count both halves are whole and equal.
    fn chunk_size(rate: u32) -> usize {
        let min_block = (rate / gcd(rate, SAMPLE_RATE)) as usize;
        Self::CHUNK.div_ceil(2 * min_block).max(1) * 2 * min_block
    }

    fn push(&mut self, samples: &[f32]) -> Result<(), AudioError> {
        self.input_len += samples.len() as u64;
        self.pending.extend_from_slice(samples);
        let chunk = self.resampler.input_frames_next();
        let mut consumed = 0;
        while self.pending.len() - consumed >= chunk {
            self.process(consumed)?;
            consumed += chunk;
        }
        self.pending.drain(..consumed);
        Ok(())
    }

    /// Pads the last partial chunk with silence and pushes silence through until the delayed
    /// output covers the whole input, then cuts it to the exact length.
    fn finish(mut self) -> Result<Vec<f32>, AudioError> {
        let rate = u64::from(self.rate);
        let expected = (self.input_len * u64::from(SAMPLE_RATE) + rate / 2) / rate;
        let expected = usize::try_from(expected).map_err(|e| resample_error(self.rate, e))?;
        let chunk = self.resampler.input_frames_next();
        self.pending.resize(chunk, 0.0);
        while self.output.len() < expected {
            self.process(0)?;
            self.pending.fill(0.0);
        }
        self.output.truncate(expected);
        Ok(self.output)
    }

    /// Resamples the chunk of `pending` starting at `offset`.
    fn process(&mut self, offset: usize) -> Result<(), AudioError> {
        let rate = self.rate;
        let frames = self.resampler.input_frames_next();
        let input = InterleavedSlice::new(&self.pending[offset..], 1, frames)
            .map_err(|e| resample_error(rate, e))?;
        let capacity = self.chunk_out.len();
        let mut out = InterleavedSlice::new_mut(&mut self.chunk_out, 1, capacity)
            .map_err(|e| resample_error(rate, e))?;
        let (_, written) = self
            .resampler
            .process_into_buffer(&input, &mut out, None)
            .map_err(|e| resample_error(rate, e))?;
        let skip = self.delay_left.min(written);
        self.delay_left -= skip;
        self.output
            .extend_from_slice(&self.chunk_out[skip..written]);
        Ok(())
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn resample_error(rate: u32, error: impl std::fmt::Display) -> AudioError {
    AudioError::Resample {
        rate,
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/mel")
            .join(name)
    }

    fn decode_fixture(name: &str) -> Audio {
        decode_file(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// The 16-bit samples of a canonical PCM WAV, read without symphonia.
    fn raw_i16_samples(wav: &[u8]) -> Vec<i16> {
        let data = wav
            .windows(4)
            .position(|w| w == b"data")
            .expect("data chunk")
            + 8;
        wav[data..]
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect()
    }

    /// A WAV file of `channels` interleaved channels; `format` 1 = PCM, 3 = IEEE float.
    fn wav_bytes(format: u16, bits: u16, channels: u16, rate: u32, data: &[u8]) -> Vec<u8> {
        let block_align = channels * bits / 8;
        let mut wav = Vec::new();
        wav.extend_from_slice(b"RIFF");
        wav.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
        wav.extend_from_slice(b"WAVEfmt ");
        wav.extend_from_slice(&16u32.to_le_bytes());
        wav.extend_from_slice(&format.to_le_bytes());
        wav.extend_from_slice(&channels.to_le_bytes());
        wav.extend_from_slice(&rate.to_le_bytes());
        wav.extend_from_slice(&(rate * u32::from(block_align)).to_le_bytes());
        wav.extend_from_slice(&block_align.to_le_bytes());
        wav.extend_from_slice(&bits.to_le_bytes());
        wav.extend_from_slice(b"data");
        wav.extend_from_slice(&(data.len() as u32).to_le_bytes());
        wav.extend_from_slice(data);
        wav
    }

    /// Pearson correlation of the common prefix of `a` and `b`, with `b` delayed by `lag` samples.
    fn correlation(a: &[f32], b: &[f32], lag: isize) -> f64 {
        let pairs: Vec<(f64, f64)> = (0..a.len())
            .filter_map(|i| {
                let j = usize::try_from(i as isize + lag).ok()?;
                Some((f64::from(a[i]), f64::from(*b.get(j)?)))
            })
            .collect();
        let n = pairs.len() as f64;
        let (ma, mb) = (
            pairs.iter().map(|p| p.0).sum::<f64>() / n,
            pairs.iter().map(|p| p.1).sum::<f64>() / n,
        );
        let cov: f64 = pairs.iter().map(|(x, y)| (x - ma) * (y - mb)).sum();
        let va: f64 = pairs.iter().map(|(x, _)| (x - ma).powi(2)).sum();
        let vb: f64 = pairs.iter().map(|(_, y)| (y - mb).powi(2)).sum();
        cov / (va * vb).sqrt()
    }

    #[test]
    fn wav_16k_is_bit_exact() {
        let bytes = std::fs::read(fixture("speech16k.wav")).unwrap();
        let expected: Vec<f32> = raw_i16_samples(&bytes)
            .iter()
            .map(|&s| f32::from(s) / 32768.0)
            .collect();
        let audio = decode_bytes(bytes, Some("wav")).unwrap();
        assert_eq!((audio.source_rate, audio.source_channels), (16_000, 1));
        assert_eq!(audio.samples, expected);
        assert!((audio.duration_secs() - expected.len() as f64 / 16_000.0).abs() < 1e-12);
    }

    #[test]
    fn wav_sample_formats() {
        let reference: Vec<i16> = (0..1600)
            .map(|i| ((i as f32 * 0.07).sin() * 20_000.0) as i16)
            .collect();
        let expected: Vec<f32> = reference.iter().map(|&s| f32::from(s) / 32768.0).collect();
        let encodings: [(&str, u16, u16, Vec<u8>, f32); 5] = [
            (
                "u8",
                1,
                8,
                reference.iter().map(|&s| ((s >> 8) + 128) as u8).collect(),
                1.0 / 128.0,
            ),
            (
                "s16",
                1,
                16,
                reference.iter().flat_map(|s| s.to_le_bytes()).collect(),
                0.0,
            ),
            (
                "s24",
                1,
                24,
                reference
                    .iter()
                    .flat_map(|&s| (i32::from(s) << 8).to_le_bytes()[..3].to_vec())
                    .collect(),
                0.0,
            ),
            (
                "s32",
                1,
                32,
                reference
                    .iter()
                    .flat_map(|&s| (i32::from(s) << 16).to_le_bytes())
                    .collect(),
                0.0,
            ),
            (
                "f32",
                3,
                32,
                expected.iter().flat_map(|s| s.to_le_bytes()).collect(),
                0.0,
            ),
        ];
        for (name, format, bits, data, tolerance) in encodings {
            let audio = decode_bytes(wav_bytes(format, bits, 1, 16_000, &data), Some("wav"))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(audio.samples.len(), expected.len(), "{name}");
            let max_error = audio
                .samples
                .iter()
                .zip(&expected)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(max_error <= tolerance, "{name}: max error {max_error}");
        }
    }

    #[test]
    fn stereo_is_averaged() {
        let data: Vec<u8> = (0..800i16)
            .flat_map(|i| [i * 20, -i * 10])
            .flat_map(i16::to_le_bytes)
            .collect();
        let audio = decode_bytes(wav_bytes(1, 16, 2, 16_000, &data), None).unwrap();
        assert_eq!(audio.source_channels, 2);
        let expected: Vec<f32> = (0..800)
            .map(|i| (i as f32 * 20.0 / 32768.0 - i as f32 * 10.0 / 32768.0) / 2.0)
            .collect();
        assert_eq!(audio.samples, expected);
    }

    #[test]
    fn resampled_44k_stereo_matches_sox() {
        let ours = decode_fixture("stereo44k.wav");
        let sox = decode_fixture("stereo44k_sox16k.wav");
        assert_eq!((ours.source_rate, ours.source_channels), (44_100, 2));
        let source_frames = 50_994; // soxi -s stereo44k.wav
        assert_eq!(
            ours.samples.len(),
            (source_frames * 16_000 + 22_050) / 44_100
        );
        let best_lag = (-3..=3).max_by(|&a, &b| {
            correlation(&ours.samples, &sox.samples, a).total_cmp(&correlation(
                &ours.samples,
                &sox.samples,
                b,
            ))
        });
        let r = correlation(&ours.samples, &sox.samples, 0);
        println!("correlation with sox: {r:.6}, best lag {best_lag:?}");
        // 0.999 rather than 0.99: a fraction-of-a-sample shift already costs more than 0.001.
        assert!(r > 0.999, "correlation {r}");
        assert_eq!(best_lag, Some(0), "resampled signal is shifted");
    }

    #[test]
    fn flac_and_mp3_decode_to_the_right_duration() {
        let expected = decode_fixture("stereo44k_sox16k.wav");
        for name in ["mono48k.flac", "mono22k.mp3"] {
            let audio = decode_fixture(name);
            let r = correlation(&audio.samples, &expected.samples, 0);
            println!(
                "{name}: {} Hz, {:.4} s (expected {:.4} s), correlation {r:.4}",
                audio.source_rate,
                audio.duration_secs(),
                expected.duration_secs()
            );
            assert!(
                (audio.duration_secs() - expected.duration_secs()).abs() <= 0.02,
                "{name}"
            );
            // Lossless FLAC matches sox's resampling closely; 32 kb/s MP3 less so, but aligned.
            assert!(
                r > if name.ends_with("flac") { 0.9999 } else { 0.99 },
                "{name}: correlation {r}"
            );
            assert_eq!(audio.source_channels, 1);
        }
    }

    /// The best correlation of `a` with `b` over lags of up to 80 ms, and that lag.
    fn best_alignment(a: &[f32], b: &[f32]) -> (f64, isize) {
        (-1280..=1280)
            .map(|lag| (correlation(a, b, lag), lag))
            .max_by(|x, y| x.0.total_cmp(&y.0))
            .unwrap()
    }

    #[test]
    fn every_codec_and_container_decodes_to_the_same_speech() {
        let expected = decode_fixture("stereo44k_sox16k.wav");
        // (file, channels, rate, duration tolerance in s, has encoder delay left in)
        let cases = [
            ("mono48k.opus", 1, 48_000, 0.002, false),
            ("surround48k.opus", 6, 48_000, 0.002, false),
            ("stereo48k.webm", 2, 48_000, 0.021, false),
            ("stereo44k.ogg", 2, 44_100, 0.002, false),
            ("stereo48k.mka", 2, 48_000, 0.021, false),
            // symphonia applies neither MP4 edit lists nor (absent in ADTS) any priming
            // information, so AAC keeps the encoder's 1024-sample delay and last-frame padding.
            ("stereo44k.m4a", 2, 44_100, 0.050, true),
            ("mono22k.aac", 1, 22_050, 0.100, true),
        ];
        for (name, channels, rate, tolerance, delayed) in cases {
            let audio = decode_fixture(name);
            let (r, lag) = best_alignment(&audio.samples, &expected.samples);
            let excess = audio.duration_secs() - expected.duration_secs();
            println!("{name}: {excess:+.4} s, correlation {r:.4} at lag {lag}");
            assert_eq!(
                (audio.source_channels, audio.source_rate),
                (channels, rate),
                "{name}"
            );
            assert!(excess.abs() <= tolerance, "{name}: {excess:+.4} s");
            assert!(r > 0.95, "{name}: correlation {r}");
            if !delayed {
                assert!(lag.abs() <= 2, "{name}: misaligned by {lag} samples");
            }
        }
    }

    #[test]
    fn bad_input_is_a_clean_error() {
        let garbage: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for (name, bytes) in [
            ("empty", Vec::new()),
            ("garbage", garbage),
            ("header only", b"RIFF\x24\0\0\0WAVEfmt ".to_vec()),
        ] {
            let error = decode_bytes(bytes, Some("wav")).expect_err(name);
            println!("{name}: {error}");
        }
        let no_samples = wav_bytes(1, 16, 1, 16_000, &[]);
        assert!(matches!(
            decode_bytes(no_samples, None),
            Err(AudioError::Empty)
        ));
        assert!(matches!(
            decode_file(&fixture("missing.wav")),
            Err(AudioError::Open { .. })
        ));
    }

    #[test]
    fn truncated_wav_keeps_what_is_there() {
        let mut wav = wav_bytes(1, 16, 1, 16_000, &[7; 3200]);
        wav.truncate(44 + 1001);
        let audio = decode_bytes(wav, None).unwrap();
        println!("{} of 500 complete samples", audio.samples.len());
        assert_eq!(audio.samples.len(), 500);
        assert!(
            audio
                .samples
                .iter()
                .all(|&s| s == f32::from(0x0707i16) / 32768.0)
        );
    }
}
