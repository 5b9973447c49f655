//! Probing and decoding in a child process, so that no file can take down the caller.
//!
//! symphonia has had panics, huge allocations and endless loops on crafted files; only the
//! first can be caught in-process. Here the work runs in a copy of the calling executable
//! (re-run with a hidden first argument that [`serve_child`] recognises), under
//! `RLIMIT_AS` (memory), `RLIMIT_CPU`, no core dumps, no file writes, and a wall-clock
//! timeout after which the parent kills it. It also dies with its parent.
//!
//! The child answers on stdout in frames of `tag (1 byte) | length (u32 LE) | payload`:
//! `S` a chunk of 16 kHz mono samples (f32 LE), then exactly one of `P` (a probe, JSON),
//! `D` (decoding done: the source format, JSON) or `E` (an [`AudioError`], JSON). The parent
//! counts the samples itself and stops a child that sends more than the limit.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::decode::{Limits, decode_stream};
use crate::probe::{Probe, probe};
use crate::{Audio, AudioError, SAMPLE_RATE};

/// The first argument that turns an executable into a sandbox child.
const CHILD_ARG: &str = "__warble-audio-child";

/// Extra wall-clock time the parent allows over the child's own timeout before killing it.
const GRACE: Duration = Duration::from_secs(2);

/// Longest frame a child may send (a sample chunk or a JSON answer).
const MAX_FRAME: usize = 16 << 20;

/// Receives each frame: its tag and payload.
type OnFrame<'a> = dyn FnMut(u8, &[u8]) -> Result<(), AudioError> + 'a;

/// Runs probes and decodes in limited child processes.
#[derive(Debug, Clone)]
pub struct Sandbox {
    program: PathBuf,
    /// Address-space limit of the child, bytes.
    pub memory_bytes: u64,
    /// Wall-clock (and CPU) limit of one probe or decode.
    pub timeout: Duration,
}

/// The source format reported by a decoding child.
#[derive(Debug, Serialize, Deserialize)]
struct Done {
    rate: u32,
    channels: usize,
}

impl Sandbox {
    /// Children run `program`, which must call [`serve_child`] first thing in `main`.
    pub fn new(program: PathBuf, memory_bytes: u64, timeout: Duration) -> Self {
        Self {
            program,
            memory_bytes,
            timeout,
        }
    }

    /// Children run the current executable.
    pub fn current_exe(memory_bytes: u64, timeout: Duration) -> std::io::Result<Self> {
        Ok(Self::new(std::env::current_exe()?, memory_bytes, timeout))
    }

    /// Probes the file at `path` (see [`crate::probe::probe`]).
    pub fn probe(&self, path: &Path, extension: Option<&str>) -> Result<Probe, AudioError> {
        let mut probe_result = None;
        self.run("probe", path, extension, None, &mut |tag, payload| {
            if tag == b'P' {
                probe_result = Some(parse::<Probe>(payload)?);
            }
            Ok(())
        })?;
        probe_result.ok_or_else(|| AudioError::Crashed("no answer".into()))
    }

    /// Decodes the file at `path` to 16 kHz mono, refusing more than `max_seconds` of it.
    pub fn decode(
        &self,
        path: &Path,
        extension: Option<&str>,
        max_seconds: f64,
    ) -> Result<Audio, AudioError> {
        // A sample or so of slack for the resampler's rounding.
        let max_samples =
            ((max_seconds * f64::from(SAMPLE_RATE)).ceil() as usize).saturating_add(16);
        let mut samples: Vec<f32> = Vec::new();
        let mut done = None;
        self.run(
            "decode",
            path,
            extension,
            Some(max_seconds),
            &mut |tag, payload| {
                match tag {
                    b'S' => {
                        if samples.len().saturating_add(payload.len() / 4) > max_samples {
                            return Err(AudioError::TooLong {
                                limit_secs: max_seconds,
                            });
                        }
                        samples.extend(
                            payload
                                .chunks_exact(4)
                                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                        );
                    }
                    b'D' => done = Some(parse::<Done>(payload)?),
                    _ => {}
                }
                Ok(())
            },
        )?;
        let done = done.ok_or_else(|| AudioError::Crashed("no answer".into()))?;
        Ok(Audio {
            samples,
            source_rate: done.rate,
            source_channels: done.channels,
        })
    }

    /// Runs one child and hands its frames to `on_frame` until it answers, fails or is killed.
    fn run(
        &self,
        operation: &str,
        path: &Path,
        extension: Option<&str>,
        max_seconds: Option<f64>,
        on_frame: &mut OnFrame<'_>,
    ) -> Result<(), AudioError> {
        let timeout_secs = self.timeout.as_secs().max(1);
        let mut command = Command::new(&self.program);
        command
            .arg(CHILD_ARG)
            .arg(operation)
            .arg(path)
            .arg(extension.unwrap_or_default())
            .arg(max_seconds.map(|s| s.to_string()).unwrap_or_default())
            .arg(timeout_secs.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        limit(&mut command, self.memory_bytes, timeout_secs);
        // Not the file's fault: an I/O error, which callers treat as their own failure.
        let mut child = command.spawn().inspect_err(|e| {
            tracing::error!(program = %self.program.display(), error = %e, "cannot start the audio sandbox");
        })?;
        let stderr = child.stderr.take().map(|mut pipe| {
            std::thread::spawn(move || {
                let mut text = Vec::new();
                let _ = (&mut pipe).take(8192).read_to_end(&mut text);
                // Drain the rest so the child never blocks on a full pipe.
                let _ = std::io::copy(&mut pipe, &mut std::io::sink());
                String::from_utf8_lossy(&text).into_owned()
            })
        });
        let stop_watchdog = watchdog(child.id(), self.timeout + GRACE);
        let mut stdout = child.stdout.take().expect("piped stdout");
        let mut answer: Option<Result<(), AudioError>> = None;
        let outcome = read_frames(&mut stdout, &mut |tag, payload| {
            if tag == b'E' {
                answer = Some(Err(parse::<AudioError>(payload)?));
            } else {
                on_frame(tag, payload)?;
                if matches!(tag, b'P' | b'D') {
                    answer = Some(Ok(()));
                }
            }
            Ok(())
        });
        if outcome.is_err() {
            // We stop reading (too many samples, a bad frame): stop the child too.
            let _ = child.kill();
        }
        drop(stdout);
        let status = child.wait();
        let timed_out = stop_watchdog(); // after wait(): the pid cannot have been reused
        let stderr = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
        outcome?;
        match answer {
            Some(result) => result,
            None => Err(explain_death(
                status.ok(),
                timed_out,
                &stderr,
                timeout_secs,
                self.memory_bytes,
            )),
        }
    }
}

/// Sets the child's resource limits and ties its life to ours.
fn limit(command: &mut Command, memory_bytes: u64, cpu_secs: u64) {
    use std::os::unix::process::CommandExt;
    let set = |resource, soft: u64, hard: u64| {
        let limit = libc::rlimit {
            rlim_cur: soft as libc::rlim_t,
            rlim_max: hard as libc::rlim_t,
        };
        // SAFETY: setrlimit is async-signal-safe and only touches the child.
        if unsafe { libc::setrlimit(resource, &limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    };
    // SAFETY: the closure runs in the forked child before exec and calls only
    // async-signal-safe functions (setrlimit, prctl); it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            set(libc::RLIMIT_AS, memory_bytes, memory_bytes)?;
            set(libc::RLIMIT_CPU, cpu_secs + 1, cpu_secs + 2)?;
            set(libc::RLIMIT_CORE, 0, 0)?;
            set(libc::RLIMIT_FSIZE, 0, 0)?;
            #[cfg(target_os = "linux")]
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Kills the child after `timeout` unless stopped first; stopping returns whether it fired.
fn watchdog(pid: u32, timeout: Duration) -> impl FnOnce() -> bool {
    let pid = pid as libc::pid_t;
    let (stop, stopped) = mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        if stopped.recv_timeout(timeout) == Err(mpsc::RecvTimeoutError::Timeout) {
            // SAFETY: the child is not reaped until the parent's wait() returns, and the
            // parent stops this thread only after that, so `pid` is still our child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            return true;
        }
        false
    });
    move || {
        drop(stop);
        thread.join().unwrap_or(false)
    }
}

/// Reads frames until the end of the stream.
fn read_frames(from: &mut impl Read, on_frame: &mut OnFrame<'_>) -> Result<(), AudioError> {
    let mut header = [0u8; 5];
    let mut payload = Vec::new();
    loop {
        match from.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let len = u32::from_le_bytes([header[1], header[2], header[3], header[4]]) as usize;
        if len > MAX_FRAME {
            return Err(AudioError::Crashed("malformed answer".into()));
        }
        payload.resize(len, 0);
        if from.read_exact(&mut payload).is_err() {
            return Ok(()); // died mid-frame: explained by its exit status
        }
        on_frame(header[0], &payload)?;
    }
}

fn parse<T: serde::de::DeserializeOwned>(payload: &[u8]) -> Result<T, AudioError> {
    serde_json::from_slice(payload).map_err(|_| AudioError::Crashed("malformed answer".into()))
}

/// Why a child ended without answering. The details (a panic message with source paths) go
/// to the log; the error says only what kind of failure it was.
fn explain_death(
    status: Option<ExitStatus>,
    timed_out: bool,
    stderr: &str,
    timeout_secs: u64,
    memory_bytes: u64,
) -> AudioError {
    use std::os::unix::process::ExitStatusExt;
    tracing::warn!(?status, timed_out, stderr = %stderr.trim(), "audio sandbox child died");
    let signal = status.and_then(|s| s.signal());
    if timed_out || signal == Some(libc::SIGXCPU) {
        return AudioError::TimedOut { secs: timeout_secs };
    }
    if stderr.contains("memory allocation") || stderr.contains("capacity overflow") {
        return AudioError::Crashed(format!(
            "it needed more than the memory limit of {} MiB",
            memory_bytes >> 20
        ));
    }
    match (signal, status.and_then(|s| s.code())) {
        (Some(signal), _) => AudioError::Crashed(format!("killed by signal {signal}")),
        (None, Some(101)) => AudioError::Crashed("the decoder panicked".into()),
        (None, Some(code)) => AudioError::Crashed(format!("exit status {code}")),
        (None, None) => AudioError::Crashed("no answer".into()),
    }
}

/// If this process was started as a sandbox child, does the work and returns the exit code;
/// otherwise returns `None`. Call it first thing in `main` of every executable that uses a
/// [`Sandbox`] on itself.
pub fn serve_child() -> Option<i32> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) != Some(CHILD_ARG) {
        return None;
    }
    let [_, _, operation, path, extension, max_seconds, timeout_secs] = args.as_slice() else {
        return Some(2);
    };
    let extension = (!extension.is_empty()).then_some(extension.as_str());
    let timeout = timeout_secs.parse().ok().map(Duration::from_secs);
    let stdout = std::io::stdout().lock();
    let mut out = BufWriter::with_capacity(1 << 16, stdout);
    let result = match File::open(path) {
        Err(e) => Err(AudioError::from(e)),
        Ok(file) => match operation.as_str() {
            "probe" => probe(Box::new(file), extension, timeout)
                .and_then(|p| frame(&mut out, b'P', &json(&p))),
            "decode" => {
                let limits = Limits {
                    max_seconds: max_seconds.parse().ok(),
                    timeout,
                };
                let mut bytes = Vec::new();
                let mut write_error = None;
                decode_stream(Box::new(file), extension, &limits, &mut |chunk| {
                    bytes.clear();
                    bytes.extend(chunk.iter().flat_map(|s| s.to_le_bytes()));
                    if write_error.is_none() {
                        write_error = frame(&mut out, b'S', &bytes).err();
                    }
                })
                .and_then(|format| match write_error.take() {
                    Some(err) => Err(err),
                    None => frame(
                        &mut out,
                        b'D',
                        &json(&Done {
                            rate: format.rate,
                            channels: format.channels,
                        }),
                    ),
                })
            }
            _ => return Some(2),
        },
    };
    if let Err(err) = result {
        let _ = frame(&mut out, b'E', &json(&err));
    }
    Some(if out.flush().is_ok() { 0 } else { 1 })
}

fn json(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(value).expect("plain data serializes")
}

fn frame(out: &mut impl Write, tag: u8, payload: &[u8]) -> Result<(), AudioError> {
    let len = u32::try_from(payload.len()).map_err(|_| AudioError::Crashed("frame".into()))?;
    out.write_all(&[tag])?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(payload)?;
    Ok(())
}
