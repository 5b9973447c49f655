//! Transcripts through the real API and worker (issue 15, item 11), on inputs made by the
//! subtitles section of `tools/fixtures/make_real_world.sh` (sox; without it the test fails,
//! saying so):
//!
//! * audio cut short, and cut inside words: no word, segment or cue ends after the audio, and
//!   starts stay at or before ends and in order;
//! * four minutes of speech without a sentence end or a long pause: every JSON segment is at
//!   most 30 s and every SRT/VTT cue at most 7 s on two lines of 42 characters;
//! * no speech at all: SRT and VTT are still documents;
//!
//! and ffprobe reads every SRT and VTT served, cue for cue.

mod common;
#[path = "../../audio/tests/support/real_world.rs"]
mod support;

use common::prerequisite;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Api, Backends, start_worker};
use serde_json::Value;

/// The served limits (`warble_jobs::transcript`).
const SEGMENT_MAX_SECS: f64 = 30.0;
const CUE_MAX_SECS: f64 = 7.0;
const CUE_LINE_CHARS: usize = 42;

/// A subtitle cue as served: times in seconds (to the millisecond) and its lines.
#[derive(Debug)]
struct Cue {
    start: f64,
    end: f64,
    lines: Vec<String>,
}

/// The cues of an SRT (`decimal` `,`) or WebVTT (`.`, its header already removed) document.
fn parse_cues(document: &str, decimal: char) -> Vec<Cue> {
    let seconds = |t: &str| {
        let (hms, ms) = t.split_once(decimal).unwrap();
        let hms: Vec<f64> = hms.split(':').map(|p| p.parse().unwrap()).collect();
        hms[0] * 3600.0 + hms[1] * 60.0 + hms[2] + ms.parse::<f64>().unwrap() / 1000.0
    };
    document
        .split_terminator("\n\n")
        .map(|block| {
            let mut lines = block.lines().skip_while(|l| !l.contains(" --> "));
            let (start, end) = lines.next().unwrap().split_once(" --> ").unwrap();
            Cue {
                start: seconds(start),
                end: seconds(end),
                lines: lines.map(str::to_string).collect(),
            }
        })
        .collect()
}

/// What ffprobe reads from a subtitle document: each event's start and end, seconds.
fn ffprobe_events(dir: &Path, name: &str, document: &str) -> Vec<(f64, f64)> {
    let path = dir.join(name);
    std::fs::write(&path, document).unwrap();
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "packet=pts_time,duration_time",
        ])
        .args(["-of", "csv=p=0"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "ffprobe cannot read {name}: {}\n{document}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let (pts, duration) = line.split_once(',').unwrap();
            let pts: f64 = pts.parse().unwrap();
            (pts, pts + duration.parse::<f64>().unwrap())
        })
        .collect()
}

/// `(start, end)` pairs, each inside `[0, duration]` with its start at or before its end, in
/// order of both start and end.
fn assert_timed(what: &str, spans: &[(f64, f64)], duration: f64) {
    for &(start, end) in spans {
        assert!(
            0.0 <= start && start <= end && end <= duration,
            "{what}: {start} --> {end} in {duration} s of audio"
        );
    }
    for pair in spans.windows(2) {
        assert!(
            pair[0].0 <= pair[1].0 && pair[0].1 <= pair[1].1,
            "{what}: {pair:?} out of order"
        );
    }
}

/// Checks one finished job's transcript in every format; returns its JSON.
async fn check_transcript(api: &Api, id: &str, name: &str, scratch: &Path) -> Value {
    let job = api.wait_final(id, Duration::from_secs(600)).await;
    assert_eq!(job["status"], "succeeded", "{name}: {job}");
    let duration = job["duration"].as_f64().unwrap();
    let path = format!("/v1/jobs/{id}/transcript");
    let json: Value = api.get_json(&path).await;
    assert_eq!(json["duration"].as_f64().unwrap(), duration, "{name}");

    let spans = |key: &str| -> Vec<(f64, f64)> {
        json[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| (x["start"].as_f64().unwrap(), x["end"].as_f64().unwrap()))
            .collect()
    };
    assert_timed(&format!("{name} words"), &spans("words"), duration);
    let segments = spans("segments");
    assert_timed(&format!("{name} segments"), &segments, duration);
    for (start, end) in segments {
        assert!(
            end - start <= SEGMENT_MAX_SECS,
            "{name}: segment {start} --> {end}"
        );
    }

    let text = |format: &'static str| {
        let path = format!("{path}?format={format}");
        async move { api.get(&path).await.text().await.unwrap() }
    };
    let srt = text("srt").await;
    let vtt = text("vtt").await;
    let vtt_cues = vtt.strip_prefix("WEBVTT\n\n").expect("the WebVTT header");
    for (format, cues, document) in [
        ("srt", parse_cues(&srt, ','), &srt),
        ("vtt", parse_cues(vtt_cues, '.'), &vtt),
    ] {
        let what = format!("{name} {format}");
        let spans: Vec<(f64, f64)> = cues.iter().map(|c| (c.start, c.end)).collect();
        assert_timed(&what, &spans, duration);
        for pair in spans.windows(2) {
            assert!(pair[0].1 <= pair[1].0, "{what}: cues overlap: {pair:?}");
        }
        for cue in &cues {
            assert!(cue.end - cue.start <= CUE_MAX_SECS, "{what}: {cue:?}");
            assert!(cue.lines.len() <= 2, "{what}: {cue:?}");
            assert!(
                cue.lines
                    .iter()
                    .all(|l| l.chars().count() <= CUE_LINE_CHARS),
                "{what}: {cue:?}"
            );
        }
        // ffprobe reads every cue with text, at the times we wrote.
        let shown: Vec<(f64, f64)> = cues
            .iter()
            .filter(|c| !c.lines.is_empty())
            .map(|c| (c.start, c.end))
            .collect();
        let read = ffprobe_events(scratch, &format!("{name}.{format}"), document);
        assert_eq!(read.len(), shown.len(), "{what}");
        for (a, b) in read.iter().zip(&shown) {
            assert!(
                (a.0 - b.0).abs() < 1e-3 && (a.1 - b.1).abs() < 1e-3,
                "{what}: {a:?}, {b:?}"
            );
        }
    }
    json
}

#[tokio::test(flavor = "multi_thread")]
async fn transcripts_stay_inside_the_audio_and_within_subtitle_limits() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = support::inputs(&dir.path().join("inputs")).join("subtitles");
    let scratch = dir.path().join("served");
    std::fs::create_dir_all(&scratch).unwrap();
    let backends = Backends::local(dir.path());
    let api = Api::start(&backends);
    let _worker = start_worker(&api, &backends).await;

    let mut names: Vec<String> = std::fs::read_dir(&inputs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut jobs = Vec::new();
    for name in names {
        jobs.push((api.submit_ok(&inputs.join(&name)).await, name));
    }
    for (id, name) in &jobs {
        let json = check_transcript(&api, id, name, &scratch).await;
        let words = json["words"].as_array().unwrap();
        match name.as_str() {
            // Each input still is what it is meant to be for this model.
            "hum.wav" => assert!(words.is_empty(), "{name}: {json}"),
            "no-pauses.flac" => {
                let sentence_ends = words
                    .iter()
                    .filter(|w| w["word"].as_str().unwrap().ends_with(['.', '?', '!']))
                    .count();
                assert!(
                    words.len() > 300 && sentence_ends == 0,
                    "{name}: {} words, {sentence_ends} sentence ends",
                    words.len()
                );
            }
            _ => assert!(!words.is_empty(), "{name}: {json}"),
        }
    }
}
