//! Opus packets (from symphonia's Ogg or Matroska/WebM demuxer) to PCM with `ropus`.
//!
//! symphonia demuxes Opus but ships no decoder. The stream's setup is the `OpusHead` of
//! RFC 7845 §5.1, which both containers carry as the track's extra data: channel count,
//! pre-skip, output gain and the channel mapping (family 0 for mono/stereo, 1 for surround up
//! to 8 channels, both decoded by libopus's multistream decoder that `ropus` ports).

use ropus::OpusMSDecoder;

use super::AudioError;

/// Opus always decodes at 48 kHz.
pub const RATE: u32 = 48_000;

/// The longest Opus packet: 120 ms at 48 kHz, per channel.
const MAX_FRAME: usize = 5760;

/// The stream setup of an `OpusHead`.
#[derive(Debug, Clone, PartialEq)]
struct Head {
    channels: usize,
    /// Samples (48 kHz) the encoder primed the stream with, to drop from the start.
    pre_skip: usize,
    /// Gain to apply to the output, in dB.
    gain_db: f32,
    streams: u8,
    coupled: u8,
    mapping: Vec<u8>,
}

impl Head {
    fn parse(head: &[u8]) -> Result<Self, AudioError> {
        let bad = |why: &str| AudioError::Decode(format!("invalid Opus header: {why}"));
        if head.len() < 19 || &head[..8] != b"OpusHead" {
            return Err(bad("no OpusHead"));
        }
        if head[8] >> 4 != 0 {
            return Err(bad("unsupported version"));
        }
        let channels = usize::from(head[9]);
        let gain_db = f32::from(i16::from_le_bytes([head[16], head[17]])) / 256.0;
        let (streams, coupled, mapping) = match head[18] {
            0 if (1..=2).contains(&channels) => {
                (1, channels as u8 - 1, (0..channels as u8).collect())
            }
            1 if (1..=8).contains(&channels) && head.len() >= 21 + channels => {
                (head[19], head[20], head[21..21 + channels].to_vec())
            }
            family => {
                return Err(bad(&format!(
                    "channel mapping family {family} with {channels} channels"
                )));
            }
        };
        if streams == 0 || coupled > streams {
            return Err(bad("stream counts"));
        }
        Ok(Self {
            channels,
            pre_skip: usize::from(u16::from_le_bytes([head[10], head[11]])),
            gain_db,
            streams,
            coupled,
            mapping,
        })
    }
}

/// Decodes the packets of one Opus track.
pub struct OpusDecoder {
    decoder: OpusMSDecoder,
    channels: usize,
    gain: f32,
    pcm: Vec<i16>,
    pre_skip: usize,
    /// Pre-skip frames still to drop ourselves: Ogg's demuxer trims the pre-skip off the first
    /// packets, Matroska's does not. `None` until the first packet shows which case this is.
    skip_left: Option<usize>,
}

impl OpusDecoder {
    /// A decoder for the track whose `OpusHead` is `head`.
    pub fn new(head: &[u8]) -> Result<Self, AudioError> {
        let head = Head::parse(head)?;
        let decoder = OpusMSDecoder::new(
            RATE as i32,
            head.channels as i32,
            i32::from(head.streams),
            i32::from(head.coupled),
            &head.mapping,
        )
        .map_err(|code| AudioError::Decode(format!("Opus decoder setup failed ({code})")))?;
        Ok(Self {
            decoder,
            channels: head.channels,
            gain: 10f32.powf(head.gain_db / 20.0) / 32768.0,
            pcm: vec![0; MAX_FRAME * head.channels],
            pre_skip: head.pre_skip,
            skip_left: None,
        })
    }

    /// Channels of the output.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Decodes one packet into interleaved samples in [-1, 1], dropping `trim_start` frames
    /// from its start and `trim_end` from its end (the encoder's pre-skip and the padding of
    /// the last packet, as the demuxer reports them), or the pre-skip itself when the
    /// demuxer reports none.
    pub fn decode(
        &mut self,
        packet: &[u8],
        trim_start: usize,
        trim_end: usize,
        out: &mut Vec<f32>,
    ) -> Result<(), AudioError> {
        let frames = self
            .decoder
            .decode(
                Some(packet),
                packet.len() as i32,
                &mut self.pcm,
                MAX_FRAME as i32,
                false,
            )
            .map_err(|code| AudioError::Decode(format!("Opus packet ({code})")))?;
        let frames = frames.max(0) as usize;
        let skip_left =
            self.skip_left
                .get_or_insert(if trim_start > 0 { 0 } else { self.pre_skip });
        let skip = trim_start + std::mem::take(skip_left);
        *skip_left = skip.saturating_sub(frames);
        let end = frames.saturating_sub(trim_end);
        let start = skip.min(end);
        out.clear();
        out.extend(
            self.pcm[start * self.channels..end * self.channels]
                .iter()
                .map(|&s| f32::from(s) * self.gain),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(channels: u8, family: u8, tail: &[u8]) -> Vec<u8> {
        let mut h = b"OpusHead".to_vec();
        h.extend_from_slice(&[
            1, channels, 0x38, 0x01, 0x80, 0xbb, 0, 0, 0x00, 0x01, family,
        ]);
        h.extend_from_slice(tail);
        h
    }

    #[test]
    fn reads_mono_stereo_and_surround_headers() {
        let mono = Head::parse(&head(1, 0, &[])).unwrap();
        assert_eq!(
            (mono.streams, mono.coupled, mono.mapping.clone()),
            (1, 0, vec![0])
        );
        assert_eq!(mono.gain_db, 1.0);
        assert_eq!(mono.pre_skip, 312);
        let stereo = Head::parse(&head(2, 0, &[])).unwrap();
        assert_eq!((stereo.streams, stereo.coupled), (1, 1));
        let surround = Head::parse(&head(6, 1, &[4, 2, 0, 4, 1, 2, 3, 5])).unwrap();
        assert_eq!((surround.streams, surround.coupled), (4, 2));
        assert_eq!(surround.mapping, vec![0, 4, 1, 2, 3, 5]);
    }

    #[test]
    fn refuses_malformed_headers() {
        for bad in [
            b"OpusTags".repeat(3),
            head(3, 0, &[]),
            head(6, 1, &[4, 2]),
            head(9, 1, &[9, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]),
            head(2, 255, &[]),
            head(2, 1, &[0, 0, 0, 1]),
        ] {
            assert!(Head::parse(&bad).is_err(), "{bad:?}");
        }
    }
}
