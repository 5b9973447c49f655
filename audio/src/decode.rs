//! Audio files to the 16 kHz mono f32 signal the models expect.
//!
//! WAV (8/16/24/32-bit integer and float), FLAC, MP3, AAC (MP4/M4A or ADTS), Vorbis and Opus
//! (Ogg, or Matroska/WebM) are demuxed with symphonia and decoded with symphonia, or with
//! `ropus` for Opus; every channel is averaged into one, and other rates are converted to
//! 16 kHz with rubato's band-limited (windowed-sinc, FFT-convolved) synchronous resampler.
//! 16 kHz mono input is passed through untouched: 16-bit samples become `i16 / 32768`, exactly
//! what NeMo gets from `soundfile.read(dtype="float32")`.
//!
//! Decoding streams: packets are downmixed and resampled as they arrive and the 16 kHz output
//! goes to a callback, so nothing is ever held at the source rate. [`Limits`] bound the work by
//! the samples actually decoded, never by what the headers claim.

use std::fs::File;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, Instant};

use symphonia::core::codecs::audio::well_known::{
    CODEC_ID_AAC, CODEC_ID_AC3, CODEC_ID_ATRAC1, CODEC_ID_ATRAC3, CODEC_ID_COOK, CODEC_ID_DCA,
    CODEC_ID_EAC3, CODEC_ID_MP1, CODEC_ID_MP2, CODEC_ID_MUSEPACK, CODEC_ID_OPUS, CODEC_ID_RA10,
    CODEC_ID_RA20, CODEC_ID_RALF, CODEC_ID_SIPR, CODEC_ID_TRUEHD, CODEC_ID_TTA, CODEC_ID_WAVPACK,
};
use symphonia::core::codecs::audio::{AudioCodecId, AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, Track, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::packet::Packet;
use symphonia::core::units::{Duration as TimeDuration, TimeBase};

use crate::resample::StreamResampler;
use crate::sniff::{self, Container, Sniffed};
use crate::{AudioError, SAMPLE_RATE, check_format, opus};

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

/// What one decode may cost. The default is unlimited (a local file, a trusted caller).
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// Most audio to decode, seconds, counted in decoded samples.
    pub max_seconds: Option<f64>,
    /// Wall-clock budget.
    pub timeout: Option<Duration>,
}

/// A running wall-clock budget, checked between packets.
pub(crate) struct Deadline(Option<(Instant, Duration)>);

impl Deadline {
    pub(crate) fn start(timeout: Option<Duration>) -> Self {
        Self(timeout.map(|t| (Instant::now() + t, t)))
    }

    /// Fails once the budget is spent.
    pub(crate) fn check(&self) -> Result<(), AudioError> {
        match self.0 {
            Some((deadline, timeout)) if Instant::now() > deadline => Err(AudioError::TimedOut {
                secs: timeout.as_secs(),
            }),
            _ => Ok(()),
        }
    }
}

/// The rate and channel count of a decoded stream, before conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceFormat {
    /// Hz.
    pub rate: u32,
    /// Channels.
    pub channels: usize,
}

/// Decodes an audio file; the extension helps pick the format but the content decides.
pub fn decode_file(path: &Path) -> Result<Audio, AudioError> {
    let file = File::open(path)?;
    let extension = path.extension().and_then(|e| e.to_str());
    collect(Box::new(file), extension, &Limits::default())
}

/// Decodes an in-memory audio file; `extension_hint` as in a file name, without the dot.
pub fn decode_bytes(bytes: Vec<u8>, extension_hint: Option<&str>) -> Result<Audio, AudioError> {
    collect(
        Box::new(Cursor::new(bytes)),
        extension_hint,
        &Limits::default(),
    )
}

/// Decodes `source` into one buffer.
pub fn collect(
    source: Box<dyn MediaSource>,
    extension: Option<&str>,
    limits: &Limits,
) -> Result<Audio, AudioError> {
    let mut samples = Vec::new();
    let format = decode_stream(source, extension, limits, &mut |chunk| {
        samples.extend_from_slice(chunk)
    })?;
    Ok(Audio {
        samples,
        source_rate: format.rate,
        source_channels: format.channels,
    })
}

/// Opens the container: symphonia's probe picks the demuxer from the content, helped by the
/// extension.
pub(crate) fn open(
    mut source: Box<dyn MediaSource>,
    extension: Option<&str>,
) -> Result<Box<dyn FormatReader>, AudioError> {
    let (start, sniffed) = sniff::locate(&mut source)?;
    let body = Body::new(source, start, sniffed)?;
    let stream = MediaSourceStream::new(Box::new(body), Default::default());
    let mut hint = Hint::new();
    if let Some(extension) = extension {
        hint.with_extension(extension);
    }
    symphonia::default::get_probe()
        .probe(
            &hint,
            stream,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| {
            AudioError::UnsupportedFormat(match e {
                // symphonia's own words for this are about its internals.
                SymphoniaError::Unsupported(_) => "no container it reads was found".into(),
                e => e.to_string(),
            })
        })
}

/// The part of a file symphonia reads, from the container's first byte on.
///
/// A leading ID3v2 tag is skipped by its declared size: symphonia (without its ID3 reader)
/// looks for a container only in the first MiB, so cover art hid the MP3 behind it.
///
/// MP3 and ADTS files are given without their length: knowing it, symphonia guesses their
/// duration from the bitrate of the first frames, which for variable bitrates is far off (a
/// quiet start makes it several times too long), and for MP3 then stops decoding at the guess,
/// dropping the rest. Without it, a duration is only taken from a Xing, Info or VBRI header,
/// and otherwise the frames are counted.
struct Body {
    inner: Box<dyn MediaSource>,
    start: u64,
    len: Option<u64>,
}

impl Body {
    fn new(mut inner: Box<dyn MediaSource>, start: u64, sniffed: Sniffed) -> std::io::Result<Self> {
        inner.seek(SeekFrom::Start(start))?;
        let len = match sniffed {
            Sniffed::Audio(Container::Mp3 | Container::Adts) => None,
            _ => inner.byte_len().map(|len| len.saturating_sub(start)),
        };
        Ok(Self { inner, start, len })
    }
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }
}

impl Seek for Body {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let to = match to {
            SeekFrom::Start(offset) => SeekFrom::Start(self.start.saturating_add(offset)),
            relative => relative,
        };
        let position = self.inner.seek(to)?;
        position.checked_sub(self.start).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the audio")
        })
    }
}

impl MediaSource for Body {
    fn is_seekable(&self) -> bool {
        self.inner.is_seekable()
    }

    fn byte_len(&self) -> Option<u64> {
        self.len
    }
}

/// Decodes `source` to 16 kHz mono, handing the samples to `out` as they are produced.
pub fn decode_stream(
    source: Box<dyn MediaSource>,
    extension: Option<&str>,
    limits: &Limits,
    out_final: &mut dyn FnMut(&[f32]),
) -> Result<SourceFormat, AudioError> {
    let deadline = Deadline::start(limits.timeout);
    let mut format = open(source, extension)?;
    let mut track = TrackDecoder::open(format.as_ref())?;
    let declared = track
        .track(format.as_ref())
        .and_then(|t| declared_secs(format.as_ref(), t));
    let mut padding = PaddingTrim::new(declared);
    let out = &mut |chunk: &[f32]| padding.push(chunk, out_final);
    let mut sink: Option<Sink> = None;
    let mut interleaved: Vec<f32> = Vec::new();
    while let Some(packet) = next_packet(format.as_mut())? {
        deadline.check()?;
        let Some(packet) = packet else {
            // The track list changed (chained streams): start over on the new default track.
            track = TrackDecoder::open(format.as_ref())?;
            continue;
        };
        let (rate, channels) = match track.decode(&packet, &mut interleaved)? {
            Decoded::Samples(rate, channels) => (rate, channels),
            Decoded::Nothing => continue,
            Decoded::Reset => {
                track = TrackDecoder::open(format.as_ref())?;
                continue;
            }
        };
        let sink = match &mut sink {
            Some(sink) => sink,
            empty @ None => empty.insert(Sink::new(rate, channels, limits)?),
        };
        sink.push(rate, channels, &interleaved, out)?;
    }
    let sink = sink.ok_or(AudioError::Empty)?;
    let format = SourceFormat {
        rate: sink.rate,
        channels: sink.channels,
    };
    sink.finish(out)?;
    padding.finish(out_final);
    Ok(format)
}

/// The duration the container declares for `track`, in seconds: its frame count, its
/// duration, or the whole file's (Matroska's segment duration).
pub(crate) fn declared_secs(format: &dyn FormatReader, track: &Track) -> Option<f64> {
    let rate = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .and_then(|p| p.sample_rate)
        .filter(|&rate| rate > 0);
    if let (Some(frames), Some(rate)) = (track.num_frames, rate) {
        return Some(frames as f64 / f64::from(rate));
    }
    let in_seconds = |base: Option<TimeBase>, duration: Option<TimeDuration>| {
        base.zip(duration)
            .and_then(|(base, duration)| base.calc_duration(duration))
            .map(|time| time.as_secs_f64())
    };
    let media = format.media_info();
    in_seconds(track.time_base, track.duration)
        .or_else(|| in_seconds(media.time_base, media.duration))
        .filter(|secs| secs.is_finite())
}

/// Holds back the last [`Self::MAX_PADDING`] output samples so that the padding a codec adds
/// to its last frame (which Matroska marks in a way symphonia does not read) can be cut once
/// the total is known: output longer than the declared duration by at most that much is cut
/// to it. More than that is not padding but a wrong header, and is left alone.
struct PaddingTrim {
    declared: Option<u64>,
    held: Vec<f32>,
    emitted: u64,
}

impl PaddingTrim {
    /// 120 ms at 16 kHz: the longest Opus frame, longer than any Vorbis or AAC block.
    const MAX_PADDING: usize = 1920;

    fn new(declared_secs: Option<f64>) -> Self {
        Self {
            declared: declared_secs.map(|s| (s * f64::from(SAMPLE_RATE)).round() as u64),
            held: Vec::with_capacity(3 * Self::MAX_PADDING),
            emitted: 0,
        }
    }

    fn push(&mut self, chunk: &[f32], out: &mut dyn FnMut(&[f32])) {
        self.held.extend_from_slice(chunk);
        if self.held.len() >= 2 * Self::MAX_PADDING {
            let ready = self.held.len() - Self::MAX_PADDING;
            out(&self.held[..ready]);
            self.emitted += ready as u64;
            self.held.drain(..ready);
        }
    }

    fn finish(self, out: &mut dyn FnMut(&[f32])) {
        let total = self.emitted + self.held.len() as u64;
        let keep = match self.declared {
            Some(declared) if total > declared && total - declared <= Self::MAX_PADDING as u64 => {
                declared.saturating_sub(self.emitted) as usize
            }
            _ => self.held.len(),
        };
        out(&self.held[..keep.min(self.held.len())]);
    }
}

/// Demuxing errors in a row after which a stream is given up on.
const MAX_BAD_PAGES: usize = 32;

/// The next packet: `Some(Some(p))`, `Some(None)` when the track list changed, `None` at the
/// end of the stream. A damaged stretch (an Ogg page with a bad checksum) is skipped, as a
/// player would, up to [`MAX_BAD_PAGES`] in a row.
pub(crate) fn next_packet(
    format: &mut dyn FormatReader,
) -> Result<Option<Option<Packet>>, AudioError> {
    let mut bad = 0;
    loop {
        return match format.next_packet() {
            Ok(Some(packet)) => Ok(Some(Some(packet))),
            Ok(None) => Ok(None),
            // A truncated file (a recording cut short): keep what was there, like
            // libsndfile, which NeMo reads audio with.
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Ok(None)
            }
            Err(SymphoniaError::ResetRequired) => Ok(Some(None)),
            Err(SymphoniaError::DecodeError(_)) if bad < MAX_BAD_PAGES => {
                bad += 1;
                continue;
            }
            Err(e) => Err(AudioError::Decode(e.to_string())),
        };
    }
}

/// AAC encoders prime the stream with one frame of silence (1024 samples: ffmpeg, FAAC, fdk).
/// Containers that record the exact figure (an MP4 edit list) are not read by symphonia, so
/// this is dropped unless the track states its own delay.
const AAC_PRIMING: u32 = 1024;

/// What people call a codec the demuxers find but symphonia does not decode (its own errors
/// say only "unsupported audio codec").
fn unsupported_codec_name(codec: AudioCodecId) -> &'static str {
    match codec {
        // symphonia decodes AAC-LC in mono or stereo only.
        CODEC_ID_AAC => "HE-AAC, or AAC with more than two channels",
        CODEC_ID_AC3 => "AC-3 (Dolby Digital)",
        CODEC_ID_EAC3 => "E-AC-3 (Dolby Digital Plus)",
        CODEC_ID_TRUEHD => "Dolby TrueHD",
        CODEC_ID_DCA => "DTS",
        CODEC_ID_MP1 | CODEC_ID_MP2 => "MPEG audio layer I or II",
        CODEC_ID_WAVPACK => "WavPack",
        CODEC_ID_TTA => "TTA",
        CODEC_ID_MUSEPACK => "Musepack",
        CODEC_ID_COOK | CODEC_ID_SIPR | CODEC_ID_RA10 | CODEC_ID_RA20 | CODEC_ID_RALF => {
            "RealAudio"
        }
        CODEC_ID_ATRAC1 | CODEC_ID_ATRAC3 => "ATRAC",
        _ => "one this service does not recognise",
    }
}

/// The default audio track and its decoder: symphonia's, or ours for Opus.
pub(crate) struct TrackDecoder {
    id: u32,
    codec: Codec,
    /// Leading frames still to drop (encoder priming the decoder leaves in).
    skip_left: usize,
}

enum Codec {
    Symphonia(Box<dyn AudioDecoder>),
    Opus(Box<opus::OpusDecoder>),
}

/// What decoding one packet gave.
pub(crate) enum Decoded {
    /// Interleaved samples at this rate and channel count, in the shared buffer.
    Samples(u32, usize),
    /// Nothing to keep (an empty or corrupt packet, another track's packet).
    Nothing,
    /// The decoder must be rebuilt.
    Reset,
}

impl TrackDecoder {
    /// Finds the default audio track and builds its decoder.
    pub(crate) fn open(format: &dyn FormatReader) -> Result<Self, AudioError> {
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
            return Ok(Self {
                id: track.id,
                codec: Codec::Opus(Box::new(opus::OpusDecoder::new(head)?)),
                skip_left: 0,
            });
        }
        let decoder = symphonia::default::get_codecs()
            .make_audio_decoder(params, &AudioDecoderOptions::default())
            .map_err(|_| {
                AudioError::UnsupportedCodec(unsupported_codec_name(params.codec).into())
            })?;
        let skip_left = if params.codec == CODEC_ID_AAC {
            track.delay.unwrap_or(AAC_PRIMING) as usize
        } else {
            0
        };
        Ok(Self {
            id: track.id,
            codec: Codec::Symphonia(decoder),
            skip_left,
        })
    }

    /// The track this decoder reads.
    pub(crate) fn track<'a>(&self, format: &'a dyn FormatReader) -> Option<&'a Track> {
        format.tracks().iter().find(|t| t.id == self.id)
    }

    /// Whether `packet` is of this decoder's track.
    pub(crate) fn reads(&self, packet: &Packet) -> bool {
        packet.track_id == self.id
    }

    /// The codec's short name.
    pub(crate) fn codec_name(&self) -> &'static str {
        match &self.codec {
            Codec::Symphonia(decoder) => decoder.codec_info().short_name,
            Codec::Opus(_) => "opus",
        }
    }

    /// Decodes `packet` into `interleaved` (replacing its contents).
    pub(crate) fn decode(
        &mut self,
        packet: &Packet,
        interleaved: &mut Vec<f32>,
    ) -> Result<Decoded, AudioError> {
        if !self.reads(packet) {
            return Ok(Decoded::Nothing);
        }
        interleaved.clear();
        let (rate, channels) = match &mut self.codec {
            Codec::Symphonia(decoder) => match decoder.decode(packet) {
                Ok(buffer) if buffer.frames() > 0 => {
                    buffer.copy_to_vec_interleaved(&mut *interleaved);
                    (buffer.spec().rate(), buffer.spec().channels().count())
                }
                Ok(_) => return Ok(Decoded::Nothing),
                // A corrupt packet (malformed data, or a packet too short to parse): skip it,
                // as symphonia's examples do, rather than lose the whole file.
                Err(SymphoniaError::DecodeError(_) | SymphoniaError::IoError(_)) => {
                    return Ok(Decoded::Nothing);
                }
                // The decoder must be rebuilt; the audio specification may change.
                Err(SymphoniaError::ResetRequired) => return Ok(Decoded::Reset),
                Err(e) => return Err(AudioError::Decode(e.to_string())),
            },
            Codec::Opus(decoder) => {
                let trim_start = packet.trim_start.get() as usize;
                let trim_end = packet.trim_end.get() as usize;
                // A corrupt packet is skipped, as with the other codecs.
                if decoder
                    .decode(&packet.data, trim_start, trim_end, interleaved)
                    .is_err()
                {
                    return Ok(Decoded::Nothing);
                }
                (opus::RATE, decoder.channels())
            }
        };
        if channels == 0 {
            return Err(AudioError::Invalid("a stream with no channels".into()));
        }
        let skip = self.skip_left.min(interleaved.len() / channels);
        self.skip_left -= skip;
        interleaved.drain(..skip * channels);
        Ok(if interleaved.is_empty() {
            Decoded::Nothing
        } else {
            Decoded::Samples(rate, channels)
        })
    }
}

/// Downmixes decoded packets, counts them against the limit and brings them to 16 kHz.
struct Sink {
    rate: u32,
    channels: usize,
    /// Source frames so far, and the most allowed.
    frames: u64,
    max_frames: Option<u64>,
    limit_secs: f64,
    mono: Vec<f32>,
    resampler: Option<StreamResampler>,
}

impl Sink {
    fn new(rate: u32, channels: usize, limits: &Limits) -> Result<Self, AudioError> {
        check_format(rate, channels)?;
        let resampler = if rate == SAMPLE_RATE {
            None
        } else {
            Some(StreamResampler::new(rate)?)
        };
        Ok(Self {
            rate,
            channels,
            frames: 0,
            max_frames: limits
                .max_seconds
                .map(|s| (s * f64::from(rate)).ceil() as u64),
            limit_secs: limits.max_seconds.unwrap_or_default(),
            mono: Vec::new(),
            resampler,
        })
    }

    /// Adds one packet of interleaved samples.
    fn push(
        &mut self,
        rate: u32,
        channels: usize,
        interleaved: &[f32],
        out: &mut dyn FnMut(&[f32]),
    ) -> Result<(), AudioError> {
        if (rate, channels) != (self.rate, self.channels) {
            return Err(AudioError::Decode(format!(
                "audio format changes mid-stream from {} Hz x{} to {rate} Hz x{channels}",
                self.rate, self.channels
            )));
        }
        self.frames += (interleaved.len() / channels) as u64;
        if self.max_frames.is_some_and(|max| self.frames > max) {
            return Err(AudioError::TooLong {
                limit_secs: self.limit_secs,
            });
        }
        self.mono.clear();
        downmix_into(interleaved, channels, &mut self.mono);
        match &mut self.resampler {
            None => out(&self.mono),
            Some(resampler) => resampler.push(&self.mono, out)?,
        }
        Ok(())
    }

    fn finish(self, out: &mut dyn FnMut(&[f32])) -> Result<(), AudioError> {
        if self.frames == 0 {
            return Err(AudioError::Empty);
        }
        match self.resampler {
            None => Ok(()),
            Some(resampler) => resampler.finish(out),
        }
    }
}

/// Largest sample magnitude kept: +24 dB over full scale, far beyond any real signal (lossy
/// codecs overshoot by a few percent). Only garbage is clipped, and the resampler's FFT and the
/// mel frontend stay finite: a crafted float stream of NaN or 1e38 made rubato panic.
const MAX_AMPLITUDE: f32 = 16.0;

/// A decoded sample made safe: NaN becomes silence, infinities and absurd values are clipped.
fn sane(sample: f32) -> f32 {
    if sample.is_nan() {
        0.0
    } else {
        sample.clamp(-MAX_AMPLITUDE, MAX_AMPLITUDE)
    }
}

/// Appends the average of each frame's channels (mono is copied as is, bit for bit, unless a
/// sample is not [`sane`]).
fn downmix_into(interleaved: &[f32], channels: usize, mono: &mut Vec<f32>) {
    if channels == 1 {
        mono.extend(interleaved.iter().map(|&s| sane(s)));
    } else {
        let scale = channels as f32;
        mono.extend(
            interleaved
                .chunks_exact(channels)
                .map(|frame| frame.iter().map(|&s| sane(s)).sum::<f32>() / scale),
        );
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
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
        let data: Vec<u8> = (0..16_000u32)
            .flat_map(|i| ((i.wrapping_mul(2_654_435_761) >> 16) as i16).to_le_bytes())
            .collect();
        let bytes = wav_bytes(1, 16, 1, 16_000, &data);
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

    /// Found by fuzzing: NaN and huge float samples reached rubato's FFT, which panicked.
    #[test]
    fn non_finite_and_absurd_samples_are_made_safe() {
        let values = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e38, -1e38, 0.5];
        let data: Vec<u8> = values
            .iter()
            .cycle()
            .take(44_100)
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let audio = decode_bytes(wav_bytes(3, 32, 1, 44_100, &data), Some("wav")).unwrap();
        assert_eq!(audio.samples.len(), 16_000);
        assert!(audio.samples.iter().all(|s| s.abs() <= 2.0 * MAX_AMPLITUDE));
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
        // (file, channels, rate, duration tolerance in s)
        let cases = [
            ("mono48k.opus", 1, 48_000, 0.002),
            ("surround48k.opus", 6, 48_000, 0.002),
            ("stereo48k.webm", 2, 48_000, 0.021),
            ("stereo44k.ogg", 2, 44_100, 0.002),
            ("stereo48k.mka", 2, 48_000, 0.021),
            // AAC: the encoder's priming frame is dropped; its last-frame padding stays
            // (symphonia reads no MP4 edit list, and ADTS has none).
            ("stereo44k.m4a", 2, 44_100, 0.021),
            ("mono22k.aac", 1, 22_050, 0.021),
        ];
        for (name, channels, rate, tolerance) in cases {
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
            assert!(lag.abs() <= 2, "{name}: misaligned by {lag} samples");
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
            Err(AudioError::Io(_))
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
