//! What a file holds, read from its headers, its first packets decoded and the rest counted:
//! enough to refuse it at upload, and to charge its true length, without decoding it all.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use symphonia::core::io::MediaSource;

use crate::decode::{Deadline, Decoded, TrackDecoder, declared_secs, next_packet, open};
use crate::{AudioError, check_format};

/// Packets decoded to check that the codec really reads the stream.
const CHECK_PACKETS: usize = 16;

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    /// The container, as symphonia names it (`wav`, `flac`, `isomp4`, `ogg`, `mkv`, ...).
    pub container: String,
    /// The codec (`pcm_s16le`, `flac`, `mp3`, `aac`, `vorbis`, `opus`, ...).
    pub codec: String,
    /// Hz.
    pub sample_rate: u32,
    /// Channels.
    pub channels: usize,
    /// Length in seconds: the extent of its packets, every one of which is read (not decoded),
    /// or what the container declares if that is longer (a file cut short, which decoding
    /// then finds).
    pub duration_secs: f64,
    /// Whether the duration is the container's declaration rather than the packets' extent.
    pub duration_declared: bool,
}

/// Probes `source`: opens the container, decodes its first packets, and measures its duration.
/// Fails with the reason a decoder would fail later, where it can be seen early.
pub fn probe(
    source: Box<dyn MediaSource>,
    extension: Option<&str>,
    timeout: Option<Duration>,
) -> Result<Probe, AudioError> {
    let deadline = Deadline::start(timeout);
    let mut format = open(source, extension)?;
    let container = format.format_info().short_name.to_string();
    let mut track = TrackDecoder::open(format.as_ref())?;
    let codec = track.codec_name().to_string();
    let (declared, time_base) = {
        let t = track
            .track(format.as_ref())
            .ok_or(AudioError::NoAudioTrack)?;
        (declared_secs(format.as_ref(), t), t.time_base)
    };
    // The first packets must decode: this is where most damaged or mislabelled files fail.
    let mut interleaved = Vec::new();
    let mut found = None;
    let mut packets = 0usize;
    // The stream's extent in time-base ticks: the sum of packet durations, or the end of the
    // last packet where containers leave durations out (Matroska's simple blocks), less the
    // frames the demuxer marks to be trimmed (an MP3's encoder delay and padding, and any
    // frames past its Xing header's count, which are not decoded). symphonia's Ogg reader
    // leaves them out of its durations already, so there this falls a few milliseconds short,
    // which the worker's decoding settles.
    let mut ticks = 0u64;
    let mut end = 0u64;
    let mut trimmed = 0u64;
    let mut measure = |packet: &symphonia::core::packet::Packet| {
        ticks = ticks.saturating_add(packet.dur.get());
        end = end.max((packet.pts.get().max(0) as u64).saturating_add(packet.dur.get()));
        trimmed = trimmed
            .saturating_add(packet.trim_start.get())
            .saturating_add(packet.trim_end.get());
    };
    while found.is_none() && packets < CHECK_PACKETS {
        deadline.check()?;
        let Some(packet) = next_packet(format.as_mut())? else {
            break;
        };
        let Some(packet) = packet else {
            track = TrackDecoder::open(format.as_ref())?;
            continue;
        };
        packets += 1;
        if track.reads(&packet) {
            measure(&packet);
        }
        if let Decoded::Samples(rate, channels) = track.decode(&packet, &mut interleaved)? {
            found = Some((rate, channels));
        }
    }
    let (sample_rate, channels) = found.ok_or_else(|| {
        if packets == 0 {
            AudioError::Empty
        } else {
            AudioError::Decode(format!("none of the first {packets} packets decodes"))
        }
    })?;
    check_format(sample_rate, channels)?;
    // The rest of the packets are counted, not decoded, whatever the header says: a header can
    // only be trusted to say how much audio a file should hold, not that it holds no more
    // (fragmented MP4 declares 0 s, chained Ogg streams and appended files their first part).
    while let Some(packet) = next_packet(format.as_mut())? {
        deadline.check()?;
        match packet {
            Some(packet) if track.reads(&packet) => measure(&packet),
            Some(_) => {}
            // A chained stream: its packets belong to the new default track.
            None => track = TrackDecoder::open(format.as_ref())?,
        }
    }
    let ticks = ticks.max(end).saturating_sub(trimmed);
    let measured = match time_base {
        Some(base) => base
            .calc_duration(ticks.into())
            .map_or(f64::INFINITY, |t| t.as_secs_f64()),
        None => ticks as f64 / f64::from(sample_rate),
    };
    // A header that declares more than the packets hold is kept: the file was cut short, and
    // the worker, decoding it, fails it as truncated against this figure.
    let (duration_secs, duration_declared) = match declared {
        Some(declared) if declared > measured => (declared, true),
        _ => (measured, false),
    };
    Ok(Probe {
        container,
        codec,
        sample_rate,
        channels,
        duration_secs,
        duration_declared,
    })
}
