//! The transcript a job produces, as stored and served, and its renderings as plain text,
//! SubRip (SRT) and WebVTT.
//!
//! What is served is bounded whatever the speech. The engine ends a segment only after
//! sentence punctuation or at a long pause, and an hour of speech may have neither, so
//! rendering cuts segments to at most [`SEGMENT_MAX_SECS`] and subtitle cues to what a viewer
//! can read: at most [`CUE_MAX_SECS`] on at most two lines of [`CUE_LINE_CHARS`] characters
//! (Netflix's timed-text guidelines; the BBC's are close). Cuts fall between words, at the
//! best place in the second half of the longest run that fits: the longest pause, with
//! punctuation counting as half a second of it. The stored form is left as the worker wrote
//! it, so transcripts stored before these limits are served within them too.
//!
//! Speakers, where the job asked for them, are stored on the words alone
//! ([`crate::speakers::attribute`] sets them); rendering derives the rest. When any word has
//! a speaker, served segments and cues are also cut where the speaker changes, so that each
//! has one speaker: segments carry it, the JSON gains AssemblyAI's
//! [utterances](Transcript::utterances), SRT cues start `Speaker A: ` and VTT cues with the
//! voice span `<v Speaker A>`. Without speakers every rendering is what it was before them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A word with its time span.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Word {
    /// The word, with attached punctuation.
    pub word: String,
    /// Start, seconds from the beginning of the audio.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
    /// Who said it, when the job asked for speakers: `A` for the first voice heard, `B` for
    /// the second, and so on, as AssemblyAI labels them; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker: Option<String>,
}

/// A sentence, or a stretch of speech between long pauses; served no longer than 30 seconds,
/// and with one speaker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Segment {
    /// The segment's words.
    pub text: String,
    /// Start, seconds.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
    /// Who said it, as the words' `speaker`; absent in a transcript without speakers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker: Option<String>,
}

/// What one speaker said without interruption, as in AssemblyAI's `utterances`: a longest run
/// of consecutive words with the same speaker. Unlike segments it is not cut at sentences or
/// after 30 seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Utterance {
    /// Who said it, as the words' `speaker`; absent only for words no speaker was given to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker: Option<String>,
    /// Start of the first word, seconds.
    pub start: f64,
    /// End of the last word, seconds.
    pub end: f64,
    /// The words separated by spaces.
    pub text: String,
    /// The words, with their speaker.
    pub words: Vec<Word>,
}

/// A finished transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Transcript {
    /// The whole text.
    pub text: String,
    /// Length of the audio, seconds.
    pub duration: f64,
    /// Sentences with times.
    pub segments: Vec<Segment>,
    /// Every word with times.
    pub words: Vec<Word>,
    /// What each speaker said in turn, when any word has a speaker. Never stored: rendering
    /// derives it from the words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utterances: Option<Vec<Utterance>>,
}

/// The renderings `GET /v1/jobs/{id}/transcript` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// The [`Transcript`] as JSON.
    #[default]
    Json,
    /// The text and a newline.
    Text,
    /// SubRip subtitles: each segment in cues of at most [`CUE_MAX_SECS`] and two lines of
    /// [`CUE_LINE_CHARS`] characters, the first line starting `Speaker A: ` where words have
    /// speakers; without speech, one cue with no text.
    Srt,
    /// WebVTT subtitles, the same cues as [`Format::Srt`], a speaker's starting with the
    /// voice span `<v Speaker A>` instead of the SRT label; without speech, the header alone.
    Vtt,
}

impl Format {
    /// The `Content-Type` of this rendering.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Text => "text/plain; charset=utf-8",
            Self::Srt => "application/x-subrip; charset=utf-8",
            Self::Vtt => "text/vtt; charset=utf-8",
        }
    }
}

/// The longest a served segment may be, seconds: the window speech models and their
/// tools (Whisper's segments, for one) work in, long enough for most sentences.
pub const SEGMENT_MAX_SECS: f64 = 30.0;

/// The longest a subtitle cue may stay on screen, seconds.
pub const CUE_MAX_SECS: f64 = 7.0;

/// The most characters on one line of a subtitle cue; a cue has at most two lines.
pub const CUE_LINE_CHARS: usize = 42;

/// A SubRip document without speech: one cue with no text. An empty file is no SubRip
/// document (ffmpeg cannot open it, players refuse it); this one shows nothing.
const EMPTY_SRT: &str = "1\n00:00:00,000 --> 00:00:00,000\n\n";

/// SubRip: numbered cues, commas, text as it is, the speaker named before the text.
const SRT: CueSyntax = CueSyntax {
    decimal: ",",
    header: |n| format!("{n}\n"),
    text: str::to_string,
    speaker: |label| format!("{}: ", speaker_name(label)),
};

/// WebVTT: cues without numbers, dots, markup escaped, the speaker as a voice span
/// (<https://www.w3.org/TR/webvtt1/#webvtt-cue-voice-span>), left open: a span covering the
/// rest of the cue needs no end tag.
const VTT: CueSyntax = CueSyntax {
    decimal: ".",
    header: |_| String::new(),
    text: vtt_escape,
    speaker: |label| format!("<v {}>", vtt_escape(&speaker_name(label))),
};

impl Transcript {
    /// Renders the transcript as `format`, within the limits of this module: the JSON with
    /// segments of at most [`SEGMENT_MAX_SECS`], SRT and VTT with cues of at most
    /// [`CUE_MAX_SECS`] and two lines of [`CUE_LINE_CHARS`] characters; segments and cues of
    /// one speaker each when words have speakers.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Json => serde_json::to_string(&self.served()).expect("a transcript serialises"),
            Format::Text => format!("{}\n", self.text),
            Format::Srt => {
                let cues = self.cues();
                if cues.is_empty() {
                    EMPTY_SRT.to_string()
                } else {
                    render_cues(&cues, &SRT)
                }
            }
            Format::Vtt => format!("WEBVTT\n\n{}", render_cues(&self.cues(), &VTT)),
        }
    }

    /// The transcript as served (the JSON rendering, and what batch results and the OpenAI
    /// route show): no segment longer than [`SEGMENT_MAX_SECS`] or with two speakers, and the
    /// utterances when words have speakers.
    pub fn served(&self) -> Transcript {
        let segments = self.segment_words().into_iter().map(segment).collect();
        let has_speakers = self.words.iter().any(|w| w.speaker.is_some());
        let utterances = has_speakers.then(|| by_speaker(&self.words).map(utterance).collect());
        Transcript {
            segments,
            utterances,
            ..self.clone()
        }
    }

    /// The subtitle cues: each served segment's words cut into runs that fit a cue. (Cut from
    /// the served segments, so that the served JSON renders to the same subtitles.)
    fn cues(&self) -> Vec<Cue> {
        let mut previous_end = 0.0_f64;
        self.segment_words()
            .into_iter()
            .flat_map(|words| split(words, cue_fits))
            .map(|run| {
                // Not before the cue before ends (players stack overlapping cues): a
                // transducer's word may end a frame after the next one starts.
                let start = run[0].start.max(previous_end);
                let end = run[run.len() - 1].end.max(start);
                previous_end = end;
                Cue {
                    start,
                    end,
                    speaker: run[0].speaker.clone(),
                    lines: lines(run).unwrap_or_else(|| vec![join(run)]),
                }
            })
            .collect()
    }

    /// The words of each served segment: each stored segment's, cut where the speaker
    /// changes and to at most [`SEGMENT_MAX_SECS`].
    fn segment_words(&self) -> Vec<&[Word]> {
        self.sentences()
            .into_iter()
            .flat_map(by_speaker)
            .flat_map(|run| split(run, |run| span(run) <= SEGMENT_MAX_SECS))
            .collect()
    }

    /// The words of each stored segment, in order. The worker stores a segment's text as its
    /// words joined by spaces, so a segment's words are the next as many as its text has.
    pub(crate) fn sentences(&self) -> Vec<&[Word]> {
        let mut rest = self.words.as_slice();
        self.segments
            .iter()
            .map(|segment| {
                let mut wanted = segment.text.split_whitespace().count();
                let mut taken = 0;
                while wanted > 0 && taken < rest.len() {
                    wanted = wanted.saturating_sub(rest[taken].word.split_whitespace().count());
                    taken += 1;
                }
                let (own, after) = rest.split_at(taken);
                rest = after;
                own
            })
            .filter(|words| !words.is_empty())
            .collect()
    }
}

/// One subtitle cue: times in seconds, the label of who says it, and its one or two lines.
struct Cue {
    start: f64,
    end: f64,
    speaker: Option<String>,
    lines: Vec<String>,
}

/// How a subtitle format writes its cues.
struct CueSyntax {
    /// What separates seconds from milliseconds in timestamps.
    decimal: &'static str,
    /// The line before a cue's times, given the cue's number from 1.
    header: fn(usize) -> String,
    /// A line of cue text as the format needs it.
    text: fn(&str) -> String,
    /// What starts the text of a speaker's cue, given the speaker's label.
    speaker: fn(&str) -> String,
}

/// `words` cut where the speaker changes: the longest runs of one speaker, in order.
fn by_speaker(words: &[Word]) -> impl Iterator<Item = &[Word]> {
    words.chunk_by(|a, b| a.speaker == b.speaker)
}

/// Cuts `words` into runs for which `fits` holds (if it holds for a run, it must hold for the
/// run's beginnings). Each run ends at the best break ([`break_strength`]) in the second half
/// of the longest run that fits, the latest of equals; a word that fits no run alone is one.
fn split(mut words: &[Word], fits: impl Fn(&[Word]) -> bool) -> Vec<&[Word]> {
    let mut runs = Vec::new();
    while !words.is_empty() {
        let longest = (2..=words.len())
            .take_while(|&n| fits(&words[..n]))
            .last()
            .unwrap_or(1);
        let n = if longest == words.len() {
            longest
        } else {
            (longest.div_ceil(2)..=longest)
                .max_by_key(|&n| break_strength(&words[n - 1], &words[n]))
                .expect("the range holds `longest`")
        };
        let (run, rest) = words.split_at(n);
        runs.push(run);
        words = rest;
    }
    runs
}

/// How good a place to cut between `before` and `after` is, in milliseconds of pause: the
/// pause between them (up to a second; a longer one is no better), plus half a second after
/// punctuation. Whole milliseconds, so that equal pauses compare equal whatever float noise
/// their times carry.
fn break_strength(before: &Word, after: &Word) -> u32 {
    let punctuation = if before.word.ends_with([',', ';', ':', '.', '?', '!']) {
        500
    } else {
        0
    };
    punctuation + ((after.start - before.end).clamp(0.0, 1.0) * 1000.0).round() as u32
}

/// The segment `words` make: their text, span and speaker (the first word's: the words of a
/// served segment share theirs).
fn segment(words: &[Word]) -> Segment {
    Segment {
        text: join(words),
        start: words[0].start,
        end: words[words.len() - 1].end,
        speaker: words[0].speaker.clone(),
    }
}

/// The utterance `words`, one speaker's, make.
fn utterance(words: &[Word]) -> Utterance {
    let Segment {
        text,
        start,
        end,
        speaker,
    } = segment(words);
    Utterance {
        speaker,
        start,
        end,
        text,
        words: words.to_vec(),
    }
}

/// Seconds from the first word's start to the last one's end.
fn span(words: &[Word]) -> f64 {
    words[words.len() - 1].end - words[0].start
}

/// Whether `words` make one cue: short enough in time, and on at most two lines.
fn cue_fits(words: &[Word]) -> bool {
    span(words) <= CUE_MAX_SECS && lines(words).is_some()
}

/// The words on one line of at most [`CUE_LINE_CHARS`] characters, or on two, as even as the
/// words allow (the first the shorter of equals, as subtitle guidelines prefer); `None` when
/// two are not enough. The first word's speaker label, as SRT writes it, takes its room on
/// the first line (in VTT too, whose voice span players may show or not, so that both formats
/// have the same cues); the lines returned are without it.
fn lines(words: &[Word]) -> Option<Vec<String>> {
    let width = |line: &str| line.chars().count();
    let label = words
        .first()
        .and_then(|w| w.speaker.as_deref())
        .map_or(0, |speaker| width(&(SRT.speaker)(speaker)));
    let text = join(words);
    if label + width(&text) <= CUE_LINE_CHARS {
        return Some(vec![text]);
    }
    (1..words.len())
        .map(|k| (join(&words[..k]), join(&words[k..])))
        .filter(|(a, b)| label + width(a) <= CUE_LINE_CHARS && width(b) <= CUE_LINE_CHARS)
        .min_by_key(|(a, b)| (label + width(a)).max(width(b)))
        .map(|(a, b)| vec![a, b])
}

/// The words separated by spaces.
pub(crate) fn join(words: &[Word]) -> String {
    words
        .iter()
        .map(|w| w.word.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// How subtitles name the speaker labelled `label`.
fn speaker_name(label: &str) -> String {
    format!("Speaker {label}")
}

/// Cue text as WebVTT needs it: `&` and `<` start markup there, and `-->` may not appear.
fn vtt_escape(line: &str) -> String {
    line.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Each cue as `syntax` writes it: its header, `start --> end`, its lines (the first after
/// the speaker's label, if any), a blank line.
fn render_cues(cues: &[Cue], syntax: &CueSyntax) -> String {
    cues.iter()
        .enumerate()
        .map(|(i, cue)| {
            let mut lines: Vec<String> = cue.lines.iter().map(|l| (syntax.text)(l)).collect();
            if let (Some(label), Some(first)) = (&cue.speaker, lines.first_mut()) {
                first.insert_str(0, &(syntax.speaker)(label));
            }
            format!(
                "{}{} --> {}\n{}\n\n",
                (syntax.header)(i + 1),
                timestamp(cue.start, syntax.decimal),
                timestamp(cue.end, syntax.decimal),
                lines.join("\n")
            )
        })
        .collect()
}

/// `HH:MM:SS<decimal>mmm`, the timestamp both subtitle formats use.
fn timestamp(seconds: f64, decimal: &str) -> String {
    let ms = (seconds.max(0.0) * 1000.0).round() as u64;
    let (h, m, s, ms) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    format!("{h:02}:{m:02}:{s:02}{decimal}{ms:03}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(word: &str, start: f64, end: f64) -> Word {
        Word {
            word: word.into(),
            start,
            end,
            speaker: None,
        }
    }

    /// A transcript whose segments are the given runs of words, as the worker stores one.
    fn transcript(sentences: Vec<Vec<Word>>, duration: f64) -> Transcript {
        let segments: Vec<Segment> = sentences.iter().map(|run| segment(run)).collect();
        Transcript {
            text: segments
                .iter()
                .map(|s| s.text.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            duration,
            segments,
            words: sentences.into_iter().flatten().collect(),
            utterances: None,
        }
    }

    fn sample() -> Transcript {
        transcript(
            vec![
                vec![word("Hello", 0.24, 0.6), word("there.", 0.7, 1.2)],
                vec![
                    word("General", 3723.0, 3724.0),
                    word("Kenobi.", 3724.1, 3725.04),
                ],
            ],
            3725.5,
        )
    }

    /// `n` words of speech without punctuation or pauses: a word every 0.3 s.
    fn unpunctuated(n: usize) -> Vec<Word> {
        let words = ["speech", "without", "any", "pause", "goes", "on", "and"];
        (0..n)
            .map(|i| {
                let start = i as f64 * 0.3;
                word(words[i % words.len()], start, start + 0.25)
            })
            .collect()
    }

    /// The cues of an SRT document: (start, end) in seconds and their lines.
    fn srt_cues(srt: &str) -> Vec<((f64, f64), Vec<String>)> {
        let seconds = |t: &str| {
            let (hms, ms) = t.split_once(',').unwrap();
            let parts: Vec<f64> = hms.split(':').map(|p| p.parse().unwrap()).collect();
            parts[0] * 3600.0 + parts[1] * 60.0 + parts[2] + ms.parse::<f64>().unwrap() / 1000.0
        };
        srt.split_terminator("\n\n")
            .map(|cue| {
                let mut lines = cue.lines().skip(1);
                let (start, end) = lines.next().unwrap().split_once(" --> ").unwrap();
                (
                    (seconds(start), seconds(end)),
                    lines.map(str::to_string).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn srt_numbers_cues_and_uses_commas() {
        assert_eq!(
            sample().render(Format::Srt),
            "1\n00:00:00,240 --> 00:00:01,200\nHello there.\n\n\
             2\n01:02:03,000 --> 01:02:05,040\nGeneral Kenobi.\n\n"
        );
    }

    #[test]
    fn vtt_has_its_header_and_uses_dots() {
        assert_eq!(
            sample().render(Format::Vtt),
            "WEBVTT\n\n00:00:00.240 --> 00:00:01.200\nHello there.\n\n\
             01:02:03.000 --> 01:02:05.040\nGeneral Kenobi.\n\n"
        );
    }

    #[test]
    fn json_round_trips() {
        let json = sample().render(Format::Json);
        assert_eq!(serde_json::from_str::<Transcript>(&json).unwrap(), sample());
    }

    /// Issue 15: an hour of speech without sentence ends or long pauses was one segment, and so
    /// one cue of 40,000 characters.
    #[test]
    fn speech_without_sentence_ends_is_cut_into_readable_cues_and_bounded_segments() {
        let words = unpunctuated(12_000);
        let long = transcript(vec![words.clone()], 3600.0);

        let cues = srt_cues(&long.render(Format::Srt));
        assert!(cues.len() > 300, "{} cues", cues.len());
        for ((start, end), lines) in &cues {
            assert!(end - start <= CUE_MAX_SECS, "{start} --> {end}");
            assert!((1..=2).contains(&lines.len()), "{lines:?}");
            assert!(
                lines.iter().all(|l| l.chars().count() <= CUE_LINE_CHARS),
                "{lines:?}"
            );
        }
        let cued: Vec<String> = cues
            .iter()
            .flat_map(|(_, lines)| {
                lines
                    .join(" ")
                    .split(' ')
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        assert!(
            cued.iter().eq(words.iter().map(|w| &w.word)),
            "the cues hold every word in order"
        );

        let vtt = long.render(Format::Vtt);
        assert_eq!(
            vtt.matches(" --> ").count(),
            cues.len(),
            "VTT has the same cues"
        );

        let json: Transcript = serde_json::from_str(&long.render(Format::Json)).unwrap();
        assert!(
            json.segments.len() >= 120,
            "{} segments",
            json.segments.len()
        );
        assert!(
            json.segments
                .iter()
                .all(|s| s.end - s.start <= SEGMENT_MAX_SECS)
        );
        assert_eq!(
            json.segments
                .iter()
                .map(|s| s.text.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            long.text
        );
        assert_eq!(json.words.len(), long.words.len());
        // The served JSON renders to the same subtitles.
        assert_eq!(json.render(Format::Srt), long.render(Format::Srt));
    }

    #[test]
    fn cues_are_cut_at_punctuation_and_pauses_rather_than_where_they_fill_up() {
        let first_cue = |words: Vec<Word>| {
            let cues = srt_cues(&transcript(vec![words], 20.0).render(Format::Srt));
            cues[0].1.join(" ")
        };
        // 14 of these words fill two lines.
        let plain = unpunctuated(20);
        assert_eq!(first_cue(plain.clone()).split(' ').count(), 14);

        let mut comma = plain.clone();
        comma[9].word.push(',');
        let cue = first_cue(comma);
        assert!(cue.ends_with("any,"), "{cue:?}");
        assert_eq!(cue.split(' ').count(), 10);

        let mut pause = plain;
        for w in &mut pause[8..] {
            w.start += 1.0;
            w.end += 1.0;
        }
        assert_eq!(first_cue(pause).split(' ').count(), 8);
    }

    #[test]
    fn two_lines_are_as_even_as_the_words_allow() {
        let words = vec![
            word("the", 0.0, 0.2),
            word("children", 0.3, 0.6),
            word("found", 0.7, 0.9),
            word("a", 1.0, 1.1),
            word("small", 1.2, 1.4),
            word("animal", 1.5, 1.8),
            word("near", 1.9, 2.1),
            word("the", 2.2, 2.3),
            word("river", 2.4, 2.8),
        ];
        assert_eq!(
            transcript(vec![words], 3.0).render(Format::Srt),
            "1\n00:00:00,000 --> 00:00:02,800\n\
             the children found a small\nanimal near the river\n\n"
        );
    }

    #[test]
    fn a_word_longer_than_a_line_is_a_cue_of_its_own() {
        let long = "x".repeat(CUE_LINE_CHARS + 5);
        let words = vec![
            word("a", 0.0, 0.1),
            word(&long, 0.2, 0.9),
            word("b", 1.0, 1.1),
        ];
        let lines: Vec<Vec<String>> = srt_cues(&transcript(vec![words], 2.0).render(Format::Srt))
            .into_iter()
            .map(|(_, lines)| lines)
            .collect();
        assert_eq!(
            lines,
            [vec!["a".to_string()], vec![long], vec!["b".to_string()]]
        );
    }

    #[test]
    fn a_cue_never_starts_before_the_one_before_it_ends() {
        // A transducer's word can end a frame after the next one starts.
        let words = unpunctuated(40);
        let overlapping: Vec<Word> = words
            .into_iter()
            .map(|w| word(&w.word, w.start, w.end + 0.1))
            .collect();
        let cues = srt_cues(&transcript(vec![overlapping], 20.0).render(Format::Srt));
        assert!(cues.windows(2).all(|c| c[0].0.1 <= c[1].0.0), "{cues:?}");
        assert!(cues.iter().all(|((start, end), _)| start <= end));
    }

    /// Issue 15: a transcript without speech was a 0-byte SRT, which ffmpeg cannot open.
    #[test]
    fn no_speech_is_still_a_subtitle_document() {
        let silent = transcript(vec![], 4.0);
        assert_eq!(
            silent.render(Format::Srt),
            "1\n00:00:00,000 --> 00:00:00,000\n\n"
        );
        assert_eq!(silent.render(Format::Vtt), "WEBVTT\n\n");
        assert_eq!(silent.render(Format::Text), "\n");
    }

    #[test]
    fn vtt_escapes_what_would_be_markup() {
        let words = vec![word("R&D", 0.0, 0.4), word("<b>-->", 0.5, 0.9)];
        assert_eq!(
            transcript(vec![words], 1.0).render(Format::Vtt),
            "WEBVTT\n\n00:00:00.000 --> 00:00:00.900\nR&amp;D &lt;b&gt;--&gt;\n\n"
        );
    }

    /// `t` with its words' speakers set to `labels`, one a word, as
    /// [`crate::speakers::attribute`] leaves it: the stored segments without speakers.
    fn with_speakers(mut t: Transcript, labels: &[&str]) -> Transcript {
        assert_eq!(t.words.len(), labels.len());
        for (word, label) in t.words.iter_mut().zip(labels) {
            word.speaker = Some(label.to_string());
        }
        t
    }

    /// Two speakers, the second sentence shared: B answers, A goes on.
    fn dialogue() -> Transcript {
        with_speakers(
            transcript(
                vec![
                    vec![word("Hello,", 0.0, 0.4), word("Bob.", 0.5, 0.9)],
                    vec![
                        word("Hi", 1.2, 1.4),
                        word("Alice.", 1.5, 1.9),
                        word("R&D", 2.5, 2.9),
                        word("<now>.", 3.0, 3.4),
                    ],
                ],
                4.0,
            ),
            &["A", "A", "B", "B", "A", "A"],
        )
    }

    #[test]
    fn json_with_speakers_has_segments_of_one_speaker_and_utterances() {
        let t = dialogue();
        let json = t.render(Format::Json);
        let served: Transcript = serde_json::from_str(&json).unwrap();
        let segments: Vec<(&str, Option<&str>)> = served
            .segments
            .iter()
            .map(|s| (s.text.as_str(), s.speaker.as_deref()))
            .collect();
        assert_eq!(
            segments,
            [
                ("Hello, Bob.", Some("A")),
                ("Hi Alice.", Some("B")),
                ("R&D <now>.", Some("A")),
            ]
        );
        assert_eq!(
            served.segments[1],
            Segment {
                text: "Hi Alice.".into(),
                start: 1.2,
                end: 1.9,
                speaker: Some("B".into()),
            }
        );

        let utterances = served.utterances.as_ref().expect("utterances");
        assert_eq!(utterances.len(), 3);
        assert_eq!(
            utterances[1],
            Utterance {
                speaker: Some("B".into()),
                start: 1.2,
                end: 1.9,
                text: "Hi Alice.".into(),
                words: t.words[2..4].to_vec(),
            }
        );
        assert_eq!(utterances[2].words, t.words[4..]);
        assert!(json.contains(r#"{"word":"Hi","start":1.2,"end":1.4,"speaker":"B"}"#));
        assert_eq!(served.words, t.words);
        // Served, the JSON renders as the stored transcript does.
        assert_eq!(served.render(Format::Json), json);
        assert_eq!(served.render(Format::Srt), t.render(Format::Srt));
    }

    #[test]
    fn utterances_are_whole_runs_of_one_speaker_across_segments() {
        let t = with_speakers(sample(), &["A", "A", "A", "A"]);
        let served: Transcript = serde_json::from_str(&t.render(Format::Json)).unwrap();
        let utterances = served.utterances.unwrap();
        assert_eq!(utterances.len(), 1);
        assert_eq!(utterances[0].text, "Hello there. General Kenobi.");
        assert_eq!((utterances[0].start, utterances[0].end), (0.24, 3725.04));
        assert_eq!(served.segments.len(), 2);
    }

    #[test]
    fn srt_names_the_speaker_of_each_cue() {
        assert_eq!(
            dialogue().render(Format::Srt),
            "1\n00:00:00,000 --> 00:00:00,900\nSpeaker A: Hello, Bob.\n\n\
             2\n00:00:01,200 --> 00:00:01,900\nSpeaker B: Hi Alice.\n\n\
             3\n00:00:02,500 --> 00:00:03,400\nSpeaker A: R&D <now>.\n\n"
        );
    }

    #[test]
    fn vtt_starts_each_cue_with_its_voice() {
        assert_eq!(
            dialogue().render(Format::Vtt),
            "WEBVTT\n\n00:00:00.000 --> 00:00:00.900\n<v Speaker A>Hello, Bob.\n\n\
             00:00:01.200 --> 00:00:01.900\n<v Speaker B>Hi Alice.\n\n\
             00:00:02.500 --> 00:00:03.400\n<v Speaker A>R&amp;D &lt;now&gt;.\n\n"
        );
        // A label is annotation text in the voice tag, escaped as cue text is.
        let odd = with_speakers(
            transcript(vec![vec![word("hi", 0.0, 0.5)]], 1.0),
            &["<A&B>"],
        );
        assert_eq!(
            odd.render(Format::Vtt),
            "WEBVTT\n\n00:00:00.000 --> 00:00:00.500\n<v Speaker &lt;A&amp;B&gt;>hi\n\n"
        );
    }

    #[test]
    fn the_speaker_label_takes_its_room_on_the_first_line() {
        // 33 characters: one line alone, two with `Speaker A: ` (11) before them.
        let words = vec![
            word("the", 0.0, 0.2),
            word("children", 0.3, 0.6),
            word("found", 0.7, 0.9),
            word("a", 1.0, 1.1),
            word("small", 1.2, 1.4),
            word("animal", 1.5, 1.8),
        ];
        let plain = transcript(vec![words], 2.0);
        assert_eq!(srt_cues(&plain.render(Format::Srt))[0].1.len(), 1);
        let labelled = with_speakers(plain, &["A"; 6]);
        assert_eq!(
            labelled.render(Format::Srt),
            "1\n00:00:00,000 --> 00:00:01,800\n\
             Speaker A: the children\nfound a small animal\n\n"
        );
    }

    #[test]
    fn a_long_run_of_one_speaker_is_still_cut_into_bounded_segments_and_cues() {
        let words = unpunctuated(3_000);
        let long = with_speakers(transcript(vec![words.clone()], 900.0), &["A"; 3_000]);

        let cues = srt_cues(&long.render(Format::Srt));
        assert!(cues.len() > 75, "{} cues", cues.len());
        for ((start, end), lines) in &cues {
            assert!(end - start <= CUE_MAX_SECS, "{start} --> {end}");
            assert!((1..=2).contains(&lines.len()), "{lines:?}");
            assert!(lines[0].starts_with("Speaker A: "), "{lines:?}");
            assert!(
                lines.iter().all(|l| l.chars().count() <= CUE_LINE_CHARS),
                "{lines:?}"
            );
        }
        let vtt = long.render(Format::Vtt);
        assert_eq!(vtt.matches(" --> ").count(), cues.len());
        assert_eq!(vtt.matches("\n<v Speaker A>").count(), cues.len());

        let json: Transcript = serde_json::from_str(&long.render(Format::Json)).unwrap();
        assert!(
            json.segments.len() >= 30,
            "{} segments",
            json.segments.len()
        );
        assert!(
            json.segments
                .iter()
                .all(|s| s.end - s.start <= SEGMENT_MAX_SECS && s.speaker.as_deref() == Some("A"))
        );
        // AssemblyAI's utterances are whole runs: one, however long.
        assert_eq!(json.utterances.as_ref().map(Vec::len), Some(1));
        assert_eq!(json.render(Format::Srt), long.render(Format::Srt));
    }

    #[test]
    fn a_transcript_without_speakers_serialises_without_their_fields() {
        let json = sample().render(Format::Json);
        assert!(
            !json.contains("speaker") && !json.contains("utterances"),
            "{json}"
        );
    }
}
