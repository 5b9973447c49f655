//! Which files we take: an allow-list of extensions, the container the file's own first bytes
//! say it is, which must be what the extension says, and a declared MIME type that is at least
//! one audio is sent as (clients guess it: `audio/aac` for an M4A is taken, the bytes decide).
//! So a PNG renamed `.wav`, or a `.wav` declared as `image/png`, is refused before a byte is
//! handed to a demuxer, with a message that says what it is.

use std::io::{Read, Seek, SeekFrom};

/// A container the decoders read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// RIFF/RF64 WAVE.
    Wav,
    /// Native FLAC.
    Flac,
    /// MPEG audio frames (MP3), optionally behind an ID3v2 tag.
    Mp3,
    /// ISO base media (MP4, M4A).
    Mp4,
    /// Raw AAC in ADTS frames.
    Adts,
    /// Ogg (Vorbis, Opus, FLAC).
    Ogg,
    /// Matroska or WebM.
    Matroska,
}

impl Container {
    /// For people: "WAV audio".
    pub fn describe(self) -> &'static str {
        match self {
            Self::Wav => "WAV audio",
            Self::Flac => "FLAC audio",
            Self::Mp3 => "MP3 audio",
            Self::Mp4 => "MP4/M4A audio",
            Self::Adts => "AAC (ADTS) audio",
            Self::Ogg => "Ogg audio",
            Self::Matroska => "Matroska/WebM audio",
        }
    }
}

/// One accepted extension: the containers its files may hold and the MIME types clients send
/// for it.
struct Extension {
    name: &'static str,
    containers: &'static [Container],
    mime_types: &'static [&'static str],
}

const WAV_MIME: &[&str] = &[
    "audio/wav",
    "audio/x-wav",
    "audio/wave",
    "audio/vnd.wave",
    "audio/x-pn-wav",
];
const MP4_MIME: &[&str] = &["audio/mp4", "audio/x-m4a", "audio/m4a", "video/mp4"];
const OGG_MIME: &[&str] = &["audio/ogg", "audio/opus", "audio/vorbis", "application/ogg"];
const MATROSKA_MIME: &[&str] = &[
    "audio/webm",
    "video/webm",
    "audio/x-matroska",
    "video/x-matroska",
    "audio/matroska",
];

const EXTENSIONS: &[Extension] = &[
    Extension {
        name: "wav",
        containers: &[Container::Wav],
        mime_types: WAV_MIME,
    },
    Extension {
        name: "flac",
        containers: &[Container::Flac],
        mime_types: &["audio/flac", "audio/x-flac"],
    },
    Extension {
        name: "mp3",
        containers: &[Container::Mp3],
        mime_types: &["audio/mpeg", "audio/mp3", "audio/x-mp3", "audio/mpeg3"],
    },
    Extension {
        name: "m4a",
        containers: &[Container::Mp4],
        mime_types: MP4_MIME,
    },
    Extension {
        name: "mp4",
        containers: &[Container::Mp4],
        mime_types: MP4_MIME,
    },
    // Phones save AAC in MP4 under this name too.
    Extension {
        name: "aac",
        containers: &[Container::Adts, Container::Mp4],
        mime_types: &["audio/aac", "audio/x-aac", "audio/aacp", "audio/mp4"],
    },
    Extension {
        name: "ogg",
        containers: &[Container::Ogg],
        mime_types: OGG_MIME,
    },
    Extension {
        name: "oga",
        containers: &[Container::Ogg],
        mime_types: OGG_MIME,
    },
    Extension {
        name: "opus",
        containers: &[Container::Ogg],
        mime_types: OGG_MIME,
    },
    Extension {
        name: "webm",
        containers: &[Container::Matroska],
        mime_types: MATROSKA_MIME,
    },
    Extension {
        name: "mka",
        containers: &[Container::Matroska],
        mime_types: MATROSKA_MIME,
    },
];

/// MIME types that say nothing about the content, accepted with any extension.
const GENERIC_MIME: &[&str] = &["application/octet-stream", "binary/octet-stream"];

/// Whether audio may be sent as `essence` (a MIME type, lower case, without parameters).
/// The declared type is the client's guess, and clients guess wrong (`audio/aac` for an M4A,
/// `audio/mpeg` for anything): any audio or video type, or one we list for some other audio
/// extension, is taken, and the content decides. A type that is plainly something else
/// (an image, text, a program) is refused before a byte is read.
fn may_carry_audio(essence: &str) -> bool {
    let audio_or_video = essence
        .split_once('/')
        .is_some_and(|(kind, subtype)| matches!(kind, "audio" | "video") && !subtype.is_empty());
    audio_or_video
        || GENERIC_MIME.contains(&essence)
        || EXTENSIONS.iter().any(|e| e.mime_types.contains(&essence))
}

/// Why a file is refused before any decoding: the client sent something we do not take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// The accepted extensions, for messages and docs.
pub fn extensions() -> impl Iterator<Item = &'static str> {
    EXTENSIONS.iter().map(|e| e.name)
}

/// The accepted extension a file sent as `mime` (parameters ignored) most likely has, for files
/// whose name says nothing (a download link's path): `audio/mpeg` is `mp3`, `audio/wav` is
/// `wav`. `None` for generic and unknown types. The content is still checked against it.
pub fn extension_for_mime(mime: &str) -> Option<&'static str> {
    let essence = mime.split(';').next()?.trim().to_ascii_lowercase();
    EXTENSIONS
        .iter()
        .find(|e| e.mime_types.contains(&essence.as_str()))
        .map(|e| e.name)
}

/// An accepted extension (without the dot, any case).
#[derive(Debug, Clone, Copy)]
pub struct Accepted(&'static Extension);

impl std::fmt::Debug for Extension {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl Accepted {
    /// The extension, lower case.
    pub fn extension(self) -> &'static str {
        self.0.name
    }
}

/// Checks what the client declared, before reading the content: the extension must be on
/// the allow-list, and the MIME type (parameters ignored), if any, one that audio is sent as
/// (see [`may_carry_audio`]). Whether the bytes are what the extension says is
/// [`check_content`]'s to decide.
pub fn check_declared(extension: Option<&str>, mime: Option<&str>) -> Result<Accepted, Refused> {
    let list = || {
        extensions()
            .map(|e| format!(".{e}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(extension) = extension else {
        return Err(Refused(format!(
            "the file name needs an audio extension: {}",
            list()
        )));
    };
    let lower = extension.to_ascii_lowercase();
    let Some(accepted) = EXTENSIONS.iter().find(|e| e.name == lower) else {
        return Err(Refused(format!(
            ".{lower} files are not accepted; send one of {}",
            list()
        )));
    };
    if let Some(mime) = mime {
        let essence = mime
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if !may_carry_audio(&essence) {
            return Err(Refused(format!(
                "content type {essence:?} is not audio; send a .{lower} file as {} or {}",
                accepted.mime_types[0], GENERIC_MIME[0]
            )));
        }
    }
    Ok(Accepted(accepted))
}

/// What the first bytes of a file are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// A container we read.
    Audio(Container),
    /// Something well known that is not audio ("PNG image").
    Other(&'static str),
    /// Nothing recognisable.
    Unknown,
}

/// Reads the signature at the start of `file` (after an ID3v2 tag, if any).
pub fn sniff(file: &mut (impl Read + Seek)) -> std::io::Result<Sniffed> {
    locate(file).map(|(_, sniffed)| sniffed)
}

/// Where the container starts in `file` and what it is: at 0, or after the ID3v2 tag that MP3
/// files (and some FLAC and ADTS ones) begin with, skipped by its declared size however large
/// its cover art.
pub fn locate(file: &mut (impl Read + Seek)) -> std::io::Result<(u64, Sniffed)> {
    let head = read_at(file, 0)?;
    let Some(tag_len) = id3v2_len(&head) else {
        return Ok((0, signature(&head)));
    };
    let sniffed = match signature(&read_at(file, tag_len)?) {
        // A tag followed by frames, or by nothing readable: MP3 is what carries ID3.
        found @ Sniffed::Audio(Container::Flac | Container::Adts | Container::Mp3) => found,
        _ => Sniffed::Audio(Container::Mp3),
    };
    Ok((tag_len, sniffed))
}

/// The length of the ID3v2 tag `head` starts with: a 10-byte header, a syncsafe size, and a
/// 10-byte footer when flagged.
fn id3v2_len(head: &[u8]) -> Option<u64> {
    if head.len() < 10 || !head.starts_with(b"ID3") {
        return None;
    }
    let size = head[6..10]
        .iter()
        .fold(0u64, |acc, &b| (acc << 7) | u64::from(b & 0x7f));
    let footer = if head[5] & 0x10 != 0 { 10 } else { 0 };
    Some(10 + size + footer)
}

/// Up to 16 bytes of `file` from `offset`.
fn read_at(file: &mut (impl Read + Seek), offset: u64) -> std::io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(offset))?;
    let mut head = Vec::with_capacity(16);
    file.take(16).read_to_end(&mut head)?;
    Ok(head)
}

fn signature(head: &[u8]) -> Sniffed {
    let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
    if (at(0, b"RIFF") || at(0, b"RF64")) && at(8, b"WAVE") {
        Sniffed::Audio(Container::Wav)
    } else if at(0, b"fLaC") {
        Sniffed::Audio(Container::Flac)
    } else if at(0, b"OggS") {
        Sniffed::Audio(Container::Ogg)
    } else if at(0, &[0x1a, 0x45, 0xdf, 0xa3]) {
        Sniffed::Audio(Container::Matroska)
    } else if at(4, b"ftyp") {
        Sniffed::Audio(Container::Mp4)
    } else if let [0xff, second, third, ..] = *head {
        // An MPEG audio sync word: layer bits 00 are ADTS, the others MPEG-1/2 layers I-III
        // (with a valid bitrate and sample-rate index).
        match (
            second & 0xf0 == 0xf0 && second & 0x06 == 0,
            second & 0xe0 == 0xe0,
        ) {
            (true, _) => Sniffed::Audio(Container::Adts),
            (false, true) if second & 0x06 != 0 && third >> 4 != 0xf && third & 0x0c != 0x0c => {
                Sniffed::Audio(Container::Mp3)
            }
            _ if second == 0xd8 => Sniffed::Other("a JPEG image"),
            _ => Sniffed::Unknown,
        }
    } else {
        const OTHERS: &[(&[u8], &str)] = &[
            (b"\x89PNG", "a PNG image"),
            (b"GIF8", "a GIF image"),
            (b"%PDF", "a PDF document"),
            (b"PK\x03\x04", "a ZIP archive"),
            (b"\x1f\x8b", "gzip data"),
            (b"\x7fELF", "an ELF executable"),
            (b"MZ", "a Windows executable"),
            (b"<!DOCTYPE", "an HTML document"),
            (b"<html", "an HTML document"),
            (b"<?xml", "an XML document"),
        ];
        OTHERS
            .iter()
            .find(|(magic, _)| at(0, magic))
            .map_or(Sniffed::Unknown, |(_, what)| Sniffed::Other(what))
    }
}

/// Checks that the content is what the extension says.
pub fn check_content(accepted: Accepted, sniffed: Sniffed) -> Result<Container, Refused> {
    let expected = accepted.0.containers;
    let what = match sniffed {
        Sniffed::Audio(container) if expected.contains(&container) => return Ok(container),
        Sniffed::Audio(container) => container.describe(),
        Sniffed::Other(what) => what,
        Sniffed::Unknown => "not a recognised audio format",
    };
    Err(Refused(format!(
        "the content is {what}, not what a .{} file holds ({})",
        accepted.0.name,
        expected
            .iter()
            .map(|c| c.describe())
            .collect::<Vec<_>>()
            .join(" or ")
    )))
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    #[test]
    fn specific_audio_types_name_their_extension() {
        assert_eq!(extension_for_mime("audio/mpeg"), Some("mp3"));
        assert_eq!(extension_for_mime("Audio/X-WAV; codecs=1"), Some("wav"));
        assert_eq!(extension_for_mime("audio/flac"), Some("flac"));
        assert_eq!(extension_for_mime("application/octet-stream"), None);
        assert_eq!(extension_for_mime("text/html"), None);
    }

    fn sniffed(bytes: &[u8]) -> Sniffed {
        sniff(&mut Cursor::new(bytes)).unwrap()
    }

    #[test]
    fn signatures() {
        let cases: &[(&[u8], Sniffed)] = &[
            (b"RIFF\x24\0\0\0WAVEfmt ", Sniffed::Audio(Container::Wav)),
            (
                b"RF64\xff\xff\xff\xffWAVEds64",
                Sniffed::Audio(Container::Wav),
            ),
            (b"fLaC\0\0\0\x22", Sniffed::Audio(Container::Flac)),
            (b"OggS\0\x02", Sniffed::Audio(Container::Ogg)),
            (b"\x1a\x45\xdf\xa3\x9f", Sniffed::Audio(Container::Matroska)),
            (b"\0\0\0\x20ftypM4A ", Sniffed::Audio(Container::Mp4)),
            (b"\xff\xf1\x50\x80", Sniffed::Audio(Container::Adts)),
            (b"\xff\xfb\x90\x64", Sniffed::Audio(Container::Mp3)),
            (b"\xff\xfb\xf0\x64", Sniffed::Unknown),
            (b"\x89PNG\r\n\x1a\n", Sniffed::Other("a PNG image")),
            (b"\xff\xd8\xff\xe0", Sniffed::Other("a JPEG image")),
            (b"", Sniffed::Unknown),
            (b"RIFF\x24\0\0\0AVI LIST", Sniffed::Unknown),
        ];
        for (bytes, expected) in cases {
            assert_eq!(sniffed(bytes), *expected, "{bytes:?}");
        }
    }

    #[test]
    fn id3_tags_are_skipped() {
        let mut tagged = b"ID3\x04\0\0\0\0\x01\x00".to_vec(); // a 128-byte tag
        tagged.extend_from_slice(&[0; 128]);
        let mut flac = tagged.clone();
        flac.extend_from_slice(b"fLaC\0\0\0\x22");
        assert_eq!(sniffed(&flac), Sniffed::Audio(Container::Flac));
        tagged.extend_from_slice(b"\xff\xfb\x90\x64");
        assert_eq!(sniffed(&tagged), Sniffed::Audio(Container::Mp3));
    }

    /// Issue 15 (10): cover art makes tags megabytes long; they are skipped by their size.
    #[test]
    fn a_large_id3_tag_is_skipped_by_its_size() {
        // Syncsafe 0x7f 0x7f 0x7f 0x7f: the largest tag, 256 MiB, plus a footer.
        let mut head = b"ID3\x04\0\x10\x7f\x7f\x7f\x7f".to_vec();
        assert_eq!(id3v2_len(&head), Some(10 + (1 << 28) - 1 + 10));
        let size = 3 << 20;
        head[5] = 0;
        head[6..10].copy_from_slice(&[0x01, 0x40, 0x00, 0x00]); // 3 MiB, syncsafe
        let mut file = head.clone();
        file.resize(10 + size, 0xff); // sync-like bytes inside the tag must not fool us
        file.extend_from_slice(b"\xff\xfb\x90\x64");
        assert_eq!(
            locate(&mut Cursor::new(&file)).unwrap(),
            (10 + size as u64, Sniffed::Audio(Container::Mp3))
        );
        assert_eq!(
            locate(&mut Cursor::new(b"fLaC\0\0\0\x22")).unwrap(),
            (0, Sniffed::Audio(Container::Flac))
        );
    }

    #[test]
    fn declared_type_must_be_one_audio_is_sent_as() {
        for (ext, mime) in [
            ("WAV", Some("audio/x-wav")),
            ("webm", Some("audio/webm;codecs=opus")),
            ("flac", Some("application/octet-stream")),
            ("opus", None),
            // Issue 15 (13): clients label files by guesswork; the bytes decide.
            ("m4a", Some("audio/aac")),
            ("mp3", Some("audio/wav")),
            ("wav", Some("Audio/Mpeg; charset=binary")),
            ("mp4", Some("video/quicktime")),
            ("ogg", Some("audio/x-some-new-type")),
            ("oga", Some("application/ogg")),
        ] {
            assert!(check_declared(Some(ext), mime).is_ok(), "{ext} {mime:?}");
        }
        for (ext, mime) in [
            (None, None),
            (Some("exe"), None),
            (Some("png"), Some("image/png")),
            (Some("wav"), Some("image/png")),
            (Some("mp3"), Some("text/plain")),
            (Some("m4a"), Some("application/x-executable")),
            (Some("flac"), Some("application/pdf")),
            (Some("wav"), Some("audio/")),
            (Some("wav"), Some("audio")),
        ] {
            let err = check_declared(ext, mime).expect_err("refused");
            println!("{ext:?} {mime:?}: {err}");
        }
        assert_eq!(
            check_declared(Some("wav"), Some("image/png"))
                .unwrap_err()
                .0,
            "content type \"image/png\" is not audio; send a .wav file as audio/wav or \
             application/octet-stream"
        );
    }

    #[test]
    fn content_must_match_the_extension() {
        let wav = check_declared(Some("wav"), None).unwrap();
        assert!(check_content(wav, Sniffed::Audio(Container::Wav)).is_ok());
        let err = check_content(wav, Sniffed::Other("a PNG image")).unwrap_err();
        assert_eq!(
            err.0,
            "the content is a PNG image, not what a .wav file holds (WAV audio)"
        );
        let aac = check_declared(Some("aac"), None).unwrap();
        assert!(check_content(aac, Sniffed::Audio(Container::Mp4)).is_ok());
        assert!(check_content(aac, Sniffed::Audio(Container::Ogg)).is_err());
    }
}
