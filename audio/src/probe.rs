//! What a file holds, read from its headers and first packets: enough to refuse it at upload
//! without decoding it all.

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
    /// Length in seconds: as the container declares it, or else the sum of its packets.
    pub duration_secs: f64,
    /// Whether the container declared the duration (otherwise every packet was read).
    pub duration_declared: bool,
}

/// Probes `source`: opens the container, decodes its first packets, and reads or measures
/// its duration. Fails with the reason a decoder would fail later, where it can be seen early.
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
    // last packet where containers leave durations out (Matroska's simple blocks).
    let mut ticks = 0u64;
    let mut end = 0u64;
    let mut measure = |packet: &symphonia::core::packet::Packet| {
        ticks = ticks.saturating_add(packet.dur.get());
        end = end.max((packet.pts.get().max(0) as u64).saturating_add(packet.dur.get()));
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
        measure(&packet);
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
    let (duration_secs, duration_declared) = match declared {
        Some(secs) => (secs, true),
        None => {
            // No declared length (ADTS, some MP3s): add up the packets without decoding them.
            while let Some(packet) = next_packet(format.as_mut())? {
                deadline.check()?;
                if let Some(packet) = packet {
                    measure(&packet);
                }
            }
            let ticks = ticks.max(end);
            let secs = match time_base {
                Some(base) => base
                    .calc_duration(ticks.into())
                    .map_or(f64::INFINITY, |t| t.as_secs_f64()),
                None => ticks as f64 / f64::from(sample_rate),
            };
            (secs, false)
        }
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
