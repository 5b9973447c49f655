//! Audio decoding benchmark: how fast each common format is decoded, downmixed and resampled
//! to 16 kHz mono, in-process and through the sandbox child process, and how much memory a
//! 4-hour file takes.
//!
//! ```sh
//! cargo bench -p warble-audio --bench decode -- --write docs/benchmarks.md
//! ```
//!
//! Without `--write` the markdown section is only printed. The inputs are made at run time in a
//! temporary directory with `espeak-ng`, `sox` and `ffmpeg` (which must be installed): a minute
//! of synthetic speech, looped to 10 minutes and encoded in each format, and two 4-hour files
//! repeated from those with `-c copy`.
//!
//! - **speed**: `decode::collect` in this process (one thread, so "x real time" is per core)
//!   and `Sandbox::decode` through the real `warble-audio` executable; one warm-up, then the
//!   median of `RUNS` timed runs. The load average is read before each format: the machine is
//!   shared, and a run whose CPU time falls well short of its wall time was disturbed.
//! - **memory**: each 4-hour file is decoded through the sandbox by a fresh copy of this
//!   benchmark (re-run with `--memory-child`), so that `getrusage(RUSAGE_CHILDREN)` sees only the
//!   sandbox child and `VmHWM` only that decode: the child streams, the parent holds the whole
//!   16 kHz signal (4 h x 16 000 x 4 bytes = 921.6 MB).

#[path = "../../tools/bench/host.rs"]
mod host;
#[path = "../../tools/bench/section.rs"]
mod section;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use warble_audio::decode::{Limits, collect};
use warble_audio::{Audio, Sandbox};

/// Timed runs per measurement, after one warm-up.
const RUNS: usize = 3;

/// Length of the speed-test inputs, seconds.
const MINUTES_10: u32 = 600;

/// Length of one encoded clip of the lossy formats, seconds (looped to 10 minutes).
const CLIP_SECS: u32 = 60;

/// Repeats of the 10-minute file in a 4-hour one.
const HOURS_4_LOOPS: u32 = 24;

/// Sentences spoken by espeak-ng, with a rotation of voices and speeds (as in
/// `tools/bench/make_audio.sh`).
const SENTENCES: [&str; 12] = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "On Monday morning the train to the city was twenty minutes late.",
    "She opened the window and the cold air filled the small kitchen.",
    "A good benchmark measures the same work on the same machine, again and again.",
    "The committee will meet on the third floor at half past two.",
    "Please remember to bring the blue folder and two pencils tomorrow.",
    "Most of the houses on this street were built about a hundred years ago.",
    "He read the letter twice before he put it back in the envelope.",
    "The weather report says it will rain in the north and stay dry in the south.",
    "Our team finished the project one week before the deadline.",
    "Speech recognition turns the sound of a voice into written words.",
    "The old library keeps its rare books in a room without windows.",
];
const VOICES: [&str; 6] = [
    "en-us+m1", "en-us+f1", "en+m3", "en-gb+f2", "en-us+m4", "en+f3",
];
const SPEEDS: [u32; 6] = [160, 150, 170, 155, 165, 145];

/// The 10-minute, 48 kHz stereo master every input is made from: the speech looped, the right
/// channel at 0.8 gain and 20 samples (0.4 ms) late, plus independent pink noise per channel
/// (about -50 dBFS), so the channels differ as in a real recording.
const MASTER_FILTER: &str = "[0:a]aresample=48000,pan=stereo|c0=c0|c1=0.8*c0,adelay=0|20S[v];\
anoisesrc=color=pink:amplitude=0.003:seed=1:sample_rate=48000[n0];\
anoisesrc=color=pink:amplitude=0.003:seed=2:sample_rate=48000[n1];\
[n0][n1]join=inputs=2:channel_layout=stereo[n];\
[v][n]amix=inputs=2:duration=first:normalize=0[out]";

/// One input format.
struct Format {
    name: &'static str,
    source: &'static str,
    file: &'static str,
    /// ffmpeg's encoding options, between the input and the output file.
    encode: &'static [&'static str],
    /// Lossy formats are encoded from a `CLIP_SECS` clip and looped with `-c copy` (encoding
    /// 10 minutes would take longer than decoding everything); the others from the master.
    looped: bool,
}

const FORMATS: [Format; 7] = [
    Format {
        name: "MP3 (LAME)",
        source: "44.1 kHz stereo",
        file: "speech.mp3",
        encode: &[
            "-c:a",
            "libmp3lame",
            "-b:a",
            "128k",
            "-ar",
            "44100",
            "-ac",
            "2",
        ],
        looped: true,
    },
    Format {
        name: "FLAC 16-bit",
        source: "44.1 kHz stereo",
        file: "speech-44k-stereo.flac",
        encode: &[
            "-c:a",
            "flac",
            "-sample_fmt",
            "s16",
            "-ar",
            "44100",
            "-ac",
            "2",
        ],
        looped: false,
    },
    Format {
        name: "FLAC 16-bit",
        source: "48 kHz mono",
        file: "speech-48k-mono.flac",
        encode: &[
            "-c:a",
            "flac",
            "-sample_fmt",
            "s16",
            "-ar",
            "48000",
            "-ac",
            "1",
        ],
        looped: false,
    },
    Format {
        name: "Opus in Ogg",
        source: "48 kHz stereo",
        file: "speech.opus",
        encode: &[
            "-c:a",
            "libopus",
            "-b:a",
            "64k",
            "-vbr",
            "constrained",
            "-ar",
            "48000",
            "-ac",
            "2",
        ],
        looped: true,
    },
    Format {
        name: "AAC-LC in M4A",
        source: "44.1 kHz stereo",
        file: "speech.m4a",
        encode: &["-c:a", "aac", "-b:a", "128k", "-ar", "44100", "-ac", "2"],
        looped: true,
    },
    Format {
        name: "WAV 16-bit (pass-through)",
        source: "16 kHz mono",
        file: "speech-16k-mono.wav",
        encode: &["-c:a", "pcm_s16le", "-ar", "16000", "-ac", "1"],
        looped: false,
    },
    Format {
        name: "WAV 16-bit",
        source: "48 kHz stereo",
        file: "master.wav",
        encode: &[],
        looped: false,
    },
];

/// The formats (by file) made into 4-hour files for the memory test.
const LONG: [&str; 2] = ["speech.opus", "speech.mp3"];

struct Args {
    write: Option<PathBuf>,
    memory_child: Option<PathBuf>,
}

/// What one format measured.
struct Speed {
    format: &'static Format,
    bytes: u64,
    audio_secs: f64,
    load: f64,
    in_process: Timing,
    sandbox: Timing,
}

/// Medians of the timed runs.
struct Timing {
    wall: f64,
    /// CPU seconds: this process, and its children (the sandbox child).
    cpu_self: f64,
    cpu_children: f64,
    /// Lowest CPU / wall of the timed runs (below ~0.9 on one thread: the run waited for a core).
    min_cpu_share: f64,
}

/// What a 4-hour decode cost, reported by a `--memory-child` run.
struct Memory {
    file: String,
    bytes: u64,
    load: f64,
    report: Value,
}

fn main() {
    let args = parse_args();
    if let Some(path) = &args.memory_child {
        memory_child(path);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let made = make_inputs(dir.path());
    println!("inputs made in {:.1} s", started.elapsed().as_secs_f64());

    // Memory first, each in a fresh process, then speed.
    let memory: Vec<Memory> = LONG
        .iter()
        .map(|file| {
            let long = dir.path().join(format!("4h-{file}"));
            let load = loadavg();
            let output = Command::new(std::env::current_exe().unwrap())
                .arg("--memory-child")
                .arg(&long)
                .output()
                .unwrap();
            assert!(output.status.success(), "{output:?}");
            let stdout = String::from_utf8(output.stdout).unwrap();
            let report: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
            println!("4 h {file} (load {load:.2}): {report}");
            Memory {
                file: format!("4h-{file}"),
                bytes: std::fs::metadata(&long).unwrap().len(),
                load,
                report,
            }
        })
        .collect();

    let sandbox = sandbox();
    let speeds: Vec<Speed> = FORMATS
        .iter()
        .map(|format| {
            let path = dir.path().join(format.file);
            let ext = extension(&path);
            let load = loadavg();
            let (in_process, audio_secs) = measure(|| {
                collect(
                    Box::new(std::fs::File::open(&path).unwrap()),
                    Some(&ext),
                    &Limits::default(),
                )
                .unwrap()
            });
            let (sandbox, sandbox_secs) =
                measure(|| sandbox.decode(&path, Some(&ext), f64::MAX).unwrap());
            assert_eq!(audio_secs, sandbox_secs, "{}", format.file);
            let speed = Speed {
                format,
                bytes: std::fs::metadata(&path).unwrap().len(),
                audio_secs,
                load,
                in_process,
                sandbox,
            };
            println!(
                "{} {}: {:.1} s audio, in-process {:.0}x real time (CPU/wall >= {:.2}), \
                 sandbox {:.0}x (child CPU {:.3} s, parent CPU {:.3} s), load before {load:.2}",
                format.name,
                format.source,
                audio_secs,
                audio_secs / speed.in_process.wall,
                speed.in_process.min_cpu_share,
                audio_secs / speed.sandbox.wall,
                speed.sandbox.cpu_children,
                speed.sandbox.cpu_self,
            );
            speed
        })
        .collect();
    println!("total {:.1} s", started.elapsed().as_secs_f64());

    let markdown = markdown(&made, &speeds, &memory);
    match &args.write {
        Some(path) => section::write_section(path, "audio-decode-bench", &markdown),
        None => println!("\n{markdown}"),
    }
}

fn parse_args() -> Args {
    let mut args = Args {
        write: None,
        memory_child: None,
    };
    let mut iter = std::env::args().skip(1);
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            // Markdown file whose audio-decode section is replaced with the results.
            "--write" => args.write = iter.next().map(PathBuf::from),
            // Internal: decode this file through the sandbox and report the memory it took.
            "--memory-child" => args.memory_child = iter.next().map(PathBuf::from),
            // cargo passes `--bench` to bench targets.
            "--bench" => {}
            _ => {
                eprintln!("usage: decode [--write docs/benchmarks.md]");
                std::process::exit(2);
            }
        }
    }
    args
}

fn sandbox() -> Sandbox {
    Sandbox::new(
        PathBuf::from(env!("CARGO_BIN_EXE_warble-audio")),
        1 << 30,
        Duration::from_secs(600),
    )
}

fn extension(path: &Path) -> String {
    path.extension().unwrap().to_str().unwrap().to_string()
}

/// One warm-up, then `RUNS` timed runs; their medians and the decoded length in seconds.
fn measure(mut decode: impl FnMut() -> Audio) -> (Timing, f64) {
    let audio_secs = decode().duration_secs();
    let mut runs: Vec<(f64, f64, f64)> = (0..RUNS)
        .map(|_| {
            let (self_before, children_before) = (cpu_secs(false), cpu_secs(true));
            let started = Instant::now();
            let audio = decode();
            let wall = started.elapsed().as_secs_f64();
            assert_eq!(audio.duration_secs(), audio_secs);
            drop(audio);
            (
                wall,
                cpu_secs(false) - self_before,
                cpu_secs(true) - children_before,
            )
        })
        .collect();
    let min_cpu_share = runs
        .iter()
        .map(|(wall, cpu, _)| cpu / wall)
        .fold(f64::INFINITY, f64::min);
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (wall, cpu_self, cpu_children) = runs[RUNS / 2];
    (
        Timing {
            wall,
            cpu_self,
            cpu_children,
            min_cpu_share,
        },
        audio_secs,
    )
}

fn rusage(children: bool) -> libc::rusage {
    let who = if children {
        libc::RUSAGE_CHILDREN
    } else {
        libc::RUSAGE_SELF
    };
    // SAFETY: getrusage fills the struct it is given.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(who, &mut usage), 0);
        usage
    }
}

/// User + system CPU seconds of this process, or of its waited-for children.
fn cpu_secs(children: bool) -> f64 {
    let usage = rusage(children);
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// The 1-minute load average.
fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// `--memory-child`: decodes one file through the sandbox and prints what it cost, as JSON.
fn memory_child(path: &Path) {
    let rss_before = host::status_bytes("self", "VmRSS:");
    let started = Instant::now();
    let audio = sandbox()
        .decode(path, Some(&extension(path)), f64::MAX)
        .unwrap();
    let wall = started.elapsed().as_secs_f64();
    let children = rusage(true);
    let report = json!({
        "audio_secs": audio.duration_secs(),
        "wall_secs": wall,
        "child_cpu_secs": cpu_secs(true),
        "self_cpu_secs": cpu_secs(false),
        "child_peak_rss": children.ru_maxrss as u64 * 1024,
        "self_rss_before": rss_before,
        "self_peak_rss": host::status_bytes("self", "VmHWM:"),
        "samples_bytes": audio.samples.len() * 4,
    });
    println!("{report}");
}

/// One command as run (in the temporary directory), for running and for the record.
struct Step {
    program: &'static str,
    args: Vec<String>,
}

impl Step {
    fn new(program: &'static str, args: &[&str]) -> Self {
        Self {
            program,
            args: args.iter().map(|a| a.to_string()).collect(),
        }
    }

    fn run(&self, dir: &Path) {
        let output = Command::new(self.program)
            .args(&self.args)
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| panic!("{}: {e} (is it installed?)", self.program));
        assert!(
            output.status.success(),
            "{}: {}",
            self.shell(),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// The command as a shell line.
    fn shell(&self) -> String {
        let quote = |a: &String| {
            if a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:+=/,".contains(c))
            {
                a.clone()
            } else {
                format!("'{a}'")
            }
        };
        std::iter::once(self.program.to_string())
            .chain(self.args.iter().map(quote))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// How the inputs were made: the shared speech and master, and each format's commands.
struct Made {
    speech: Vec<Step>,
    formats: Vec<(&'static str, Vec<Step>)>,
    long: Vec<Step>,
    speech_secs: f64,
}

/// Makes every input in `dir`; the commands that made them.
fn make_inputs(dir: &Path) -> Made {
    let ffmpeg = |args: &[&str]| {
        let mut all = vec!["-hide_banner", "-loglevel", "error", "-y"];
        all.extend_from_slice(args);
        Step::new("ffmpeg", &all)
    };
    // A minute or so of speech: the sentences, 0.25 s of silence after each (22.05 kHz mono).
    let mut speech = Vec::new();
    let mut parts = Vec::new();
    for (i, sentence) in SENTENCES.iter().enumerate() {
        let file = format!("s{i:02}.wav");
        let speed = SPEEDS[i % SPEEDS.len()].to_string();
        speech.push(Step::new(
            "espeak-ng",
            &[
                "-v",
                VOICES[i % VOICES.len()],
                "-s",
                &speed,
                "-w",
                &file,
                sentence,
            ],
        ));
        parts.extend([file, "gap.wav".to_string()]);
    }
    speech.push(Step::new(
        "sox",
        &[
            "-n", "-r", "22050", "-c", "1", "-b", "16", "gap.wav", "trim", "0", "0.25",
        ],
    ));
    let mut concat: Vec<&str> = parts.iter().map(String::as_str).collect();
    concat.push("speech.wav");
    speech.push(Step::new("sox", &concat));
    let minutes_10 = MINUTES_10.to_string();
    speech.push(ffmpeg(&[
        "-stream_loop",
        "-1",
        "-i",
        "speech.wav",
        "-filter_complex",
        MASTER_FILTER,
        "-map",
        "[out]",
        "-t",
        &minutes_10,
        "-c:a",
        "pcm_s16le",
        "master.wav",
    ]));
    let clip_secs = CLIP_SECS.to_string();
    speech.push(ffmpeg(&[
        "-i",
        "master.wav",
        "-t",
        &clip_secs,
        "-c",
        "copy",
        "clip.wav",
    ]));
    for step in &speech {
        step.run(dir);
    }
    // 22.05 kHz 16-bit mono.
    let speech_secs =
        (std::fs::metadata(dir.join("speech.wav")).unwrap().len() - 44) as f64 / 44_100.0;

    let loops = (MINUTES_10 / CLIP_SECS - 1).to_string();
    let formats = FORMATS
        .iter()
        .filter(|f| !f.encode.is_empty())
        .map(|format| {
            let mut steps = Vec::new();
            if format.looped {
                let clip = format!("clip.{}", extension(Path::new(format.file)));
                let mut args = vec!["-i", "clip.wav"];
                args.extend_from_slice(format.encode);
                args.push(&clip);
                steps.push(ffmpeg(&args));
                steps.push(ffmpeg(&[
                    "-stream_loop",
                    &loops,
                    "-i",
                    &clip,
                    "-c",
                    "copy",
                    format.file,
                ]));
            } else {
                let mut args = vec!["-i", "master.wav"];
                args.extend_from_slice(format.encode);
                args.push(format.file);
                steps.push(ffmpeg(&args));
            }
            for step in &steps {
                step.run(dir);
            }
            (format.file, steps)
        })
        .collect();

    let long_loops = (HOURS_4_LOOPS - 1).to_string();
    let long: Vec<Step> = LONG
        .iter()
        .map(|file| {
            let out = format!("4h-{file}");
            ffmpeg(&["-stream_loop", &long_loops, "-i", file, "-c", "copy", &out])
        })
        .collect();
    for step in &long {
        step.run(dir);
    }
    Made {
        speech,
        formats,
        long,
        speech_secs,
    }
}

fn first_line(program: &str, arg: &str) -> String {
    Command::new(program)
        .arg(arg)
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.lines().next().map(|l| l.trim().to_string())
        })
        .unwrap_or_else(|| format!("{program} (unknown version)"))
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn markdown(made: &Made, speeds: &[Speed], memory: &[Memory]) -> String {
    let (cpu, cores) = host::cpu();
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let mut s = format!(
        "Measured on {cpu}, {cores} cores, on {date}. Decoding, downmixing and resampling run \
         on one thread, so every speed is **per core, single-threaded**: seconds of audio per \
         wall-clock second. In-process is `warble_audio::decode::collect` on the open file; \
         sandbox is `Sandbox::decode` (the `warble-audio` executable as the child, 1 GiB address \
         space), whose parent reads and converts the child's samples on the other core. One \
         warm-up, then the median of {RUNS} runs; \"load\" is the 1-minute load average just \
         before each format (up to about 1 is the benchmark itself; more means other work \
         shared the cores). Release build. Command:\n\n\
         ```sh\ncargo bench -p warble-audio --bench decode -- --write docs/benchmarks.md\n```\n\n\
         | format | source | bitrate | audio | in-process | sandbox | load |\n\
         |---|---|---|---|---|---|---|\n"
    );
    let mut disturbed = Vec::new();
    for m in speeds {
        if m.in_process.min_cpu_share < 0.9 {
            disturbed.push(format!(
                "{} {} (CPU/wall {:.2})",
                m.format.name, m.format.source, m.in_process.min_cpu_share
            ));
        }
        s.push_str(&format!(
            "| {} | {} | {:.0} kb/s | {:.1} s | {:.0}x real time | {:.0}x real time | {:.2} |\n",
            m.format.name,
            m.format.source,
            m.bytes as f64 * 8.0 / m.audio_secs / 1000.0,
            m.audio_secs,
            m.audio_secs / m.in_process.wall,
            m.audio_secs / m.sandbox.wall,
            m.load
        ));
    }
    let cpu_in: f64 = speeds.iter().map(|m| m.in_process.cpu_self).sum();
    let cpu_child: f64 = speeds.iter().map(|m| m.sandbox.cpu_children).sum();
    let cpu_parent: f64 = speeds.iter().map(|m| m.sandbox.cpu_self).sum();
    s.push_str(&format!(
        "\nCPU time over all seven files (medians): in-process {cpu_in:.2} s; sandbox child \
         {cpu_child:.2} s plus parent {cpu_parent:.2} s. "
    ));
    if disturbed.is_empty() {
        s.push_str(
            "Every in-process run had its core to itself (CPU time at least 90% of wall time).\n",
        );
    } else {
        s.push_str(&format!(
            "Runs that waited for a core (CPU time under 90% of wall time): {}.\n",
            disturbed.join(", ")
        ));
    }

    s.push_str(
        "\n**4-hour files**, each decoded through the sandbox by a fresh copy of the benchmark \
         (`--memory-child`): the child's peak resident memory from `getrusage(RUSAGE_CHILDREN)`, \
         the parent's (`VmHWM`), which holds the whole 16 kHz result (4 h x 16 000 x 4 bytes = \
         921.6 MB).\n\n\
         | file | size | audio | wall | speed | child peak RSS | parent peak RSS | load |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for m in memory {
        let r = &m.report;
        let f = |k: &str| r[k].as_f64().unwrap();
        s.push_str(&format!(
            "| {} | {} | {:.1} s | {:.1} s | {:.0}x real time | {} | {} (result {}, {} before) \
             | {:.2} |\n",
            m.file,
            mb(m.bytes),
            f("audio_secs"),
            f("wall_secs"),
            f("audio_secs") / f("wall_secs"),
            mb(f("child_peak_rss") as u64),
            mb(f("self_peak_rss") as u64),
            mb(f("samples_bytes") as u64),
            mb(f("self_rss_before") as u64),
            m.load
        ));
    }

    s.push_str(&format!(
        "\nInputs, made in a temporary directory by {}, {} and {}: {} English sentences by \
         espeak-ng ({:.1} s with the pauses), looped to a 10-minute 48 kHz stereo master (the \
         right channel at 0.8 gain and 0.4 ms late, independent pink noise at about -50 dBFS \
         per channel); the lossless files are encoded from the master, the lossy ones from its \
         first {CLIP_SECS} s and repeated ten times with `-c copy` (decoding cost does not depend \
         on the content repeating; MP3 and AAC keep each repeat's encoder delay and padding, hence \
         a little over 600 s), the 4-hour files repeated {HOURS_4_LOOPS} times from the \
         10-minute ones:\n\n```sh\n",
        first_line("ffmpeg", "-version")
            .split(" Copyright")
            .next()
            .unwrap_or_default()
            .replace(" version", ""),
        first_line("sox", "--version")
            .trim_start_matches("sox:")
            .trim(),
        first_line("espeak-ng", "--version")
            .split("  Data")
            .next()
            .unwrap_or_default()
            .replace(" text-to-speech:", ""),
        SENTENCES.len(),
        made.speech_secs
    ));
    let espeak = made
        .speech
        .iter()
        .filter(|s| s.program == "espeak-ng")
        .count();
    for (i, step) in made.speech.iter().enumerate() {
        if step.program == "espeak-ng" && i > 0 {
            continue;
        }
        s.push_str(&step.shell());
        if step.program == "espeak-ng" {
            s.push_str(&format!(
                "   # and so on for each of the {espeak} sentences, voices {} and speeds {:?} \
                 in turn",
                VOICES.join(" "),
                SPEEDS
            ));
        }
        s.push('\n');
    }
    for (file, steps) in &made.formats {
        s.push_str(&format!("# {file}\n"));
        for step in steps {
            s.push_str(&step.shell());
            s.push('\n');
        }
    }
    s.push_str("# 4-hour files\n");
    for step in &made.long {
        s.push_str(&step.shell());
        s.push('\n');
    }
    s.push_str("```\n");
    s
}
