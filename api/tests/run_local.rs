//! `scripts/run-local.sh`, the README's quick start, run for real: on the binaries of this test
//! build (`WARBLE_BIN_DIR`, so that it does not build a release), with its data in a temporary
//! directory and the API on a free port. Whatever stops the script, or either of its two
//! processes, the API and the worker both end with it, the port is free again and the script
//! says which process ended and why.
//!
//! Every process the script starts inherits its `WARBLE_DATA_DIR`, unique to the test: that is
//! how the test finds what a script left behind (in `/proc`).

#![cfg(target_os = "linux")]

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/run-local.sh")
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn accepts(port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(500),
    )
    .is_ok()
}

/// A process still running with `marker` in its environment: `(pid, command name)`.
fn processes_with(marker: &str) -> Vec<(u32, String)> {
    let needle = marker.as_bytes();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if environ.split(|&b| b == 0).any(|var| var == needle) {
            let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            // A zombie has no environment left, so what is found here is alive.
            found.push((pid, comm.trim().to_string()));
        }
    }
    found
}

/// One run of the script, in its own process group (as a shell runs a command): dropping it
/// kills whatever is left, so that a failing test leaves nothing behind either.
struct Run {
    child: Child,
    /// The data directory: its path is the run's marker.
    data: tempfile::TempDir,
    marker: String,
    port: u16,
    lines: mpsc::Receiver<String>,
    /// The output read so far.
    seen: Vec<String>,
}

impl Run {
    fn start(port: u16, env: &[(&str, &Path)]) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(script());
        cmd.env("WARBLE_BIN_DIR", common::worker_bin().parent().unwrap())
            .env("WARBLE_DATA_DIR", data.path())
            .env("WARBLE_LISTEN", format!("127.0.0.1:{port}"))
            .env("HF_HOME", data.path().join("hf"))
            .env("WARBLE_SHUTDOWN_TIMEOUT_SECS", "5")
            .env("WARBLE_LOG", "info")
            .env_remove("WARBLE_DATABASE_URL")
            .env_remove("WARBLE_STORAGE_URL")
            .env_remove("WARBLE_ADMIN_KEY")
            .env_remove("WARBLE_MODEL")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd.spawn().expect("running scripts/run-local.sh");
        let lines = common::output_lines(&mut child);
        let marker = format!("WARBLE_DATA_DIR={}", data.path().display());
        Self {
            child,
            data,
            marker,
            port,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line of output containing `needle`, returning it.
    fn wait_for(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line with {needle:?} within {timeout:?}; output:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Waits for the script to end; all its output is read by then.
    fn wait_exit(&mut self, timeout: Duration) -> (ExitStatus, String) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the script still runs after {timeout:?}; output:\n{}",
                self.seen_now().join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        // What it printed last, unless something it left holds its output open.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(line);
        }
        (status, self.seen.join("\n"))
    }

    fn seen_now(&mut self) -> &Vec<String> {
        self.seen.extend(self.lines.try_iter());
        &self.seen
    }

    /// Sends `signal` to the script alone (as `kill` does), or to its whole process group
    /// (as Ctrl-C in a terminal does).
    fn signal(&self, signal: &str, group: bool) {
        let pid = self.child.id();
        let target = if group {
            format!("-{pid}")
        } else {
            pid.to_string()
        };
        let status = Command::new("kill")
            .args([format!("-{signal}"), "--".into(), target])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Checks that nothing the script started still runs and that the port is free.
    fn assert_nothing_left(&mut self) {
        self.assert_no_process_left();
        assert!(
            !accepts(self.port),
            "something still listens on port {}",
            self.port
        );
    }

    /// Checks that nothing the script started still runs.
    fn assert_no_process_left(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut left = processes_with(&self.marker);
        while !left.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            left = processes_with(&self.marker);
        }
        assert!(
            left.is_empty(),
            "the script left these behind: {left:?}; output:\n{}",
            self.seen_now().join("\n")
        );
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status()
            .ok();
        for (pid, _) in processes_with(&self.marker) {
            Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status()
                .ok();
        }
        self.child.wait().ok();
    }
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            !stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

/// Starts the script with a model that loads, waits until both processes are up; returns the
/// run and the pids of the API and the worker.
fn both_running() -> (Run, u32, u32) {
    let port = free_port();
    let mut run = Run::start(port, &[("WARBLE_MODEL", &common::model())]);
    run.wait_for("worker ready", Duration::from_secs(60));
    assert!(accepts(port), "the API listens on {port}");
    let pid_of = |name: &str| {
        let found: Vec<u32> = processes_with(&run.marker)
            .into_iter()
            .filter(|(_, comm)| comm == name)
            .map(|(pid, _)| pid)
            .collect();
        assert_eq!(found.len(), 1, "one {name} process: {found:?}");
        found[0]
    };
    let (api, worker) = (pid_of("api"), pid_of("worker"));
    (run, api, worker)
}

#[test]
fn a_worker_that_cannot_start_stops_the_api_too() {
    let port = free_port();
    let mut run = Run::start(port, &[("WARBLE_MODEL", Path::new("/nonexistent.nemo"))]);
    let (status, output) = run.wait_exit(Duration::from_secs(60));
    run.assert_nothing_left();
    assert!(!status.success(), "{status:?}");
    assert!(
        output.contains("run-local: the worker stopped (exit status "),
        "names the worker and its exit status:\n{output}"
    );
    assert!(
        output.contains("last lines of the worker's log")
            && output.contains("/nonexistent.nemo")
            && output.contains("WARBLE_MODEL"),
        "shows the worker's last words and points at the model:\n{output}"
    );
    assert!(
        output.contains("stopping the api too"),
        "says the API is stopped:\n{output}"
    );
    let log = std::fs::read_to_string(run.data.path().join("logs/worker.log")).unwrap();
    assert!(
        log.contains("/nonexistent.nemo"),
        "the worker's log is kept: {log}"
    );
}

#[test]
fn sigterm_stops_both() {
    let (mut run, api, worker) = both_running();
    run.signal("TERM", false);
    let (status, output) = run.wait_exit(Duration::from_secs(60));
    run.assert_nothing_left();
    assert_eq!(status.code(), Some(143), "128 + SIGTERM:\n{output}");
    let line = run
        .seen_now()
        .iter()
        .find(|line| line.contains("run-local: running:"))
        .cloned()
        .unwrap_or_default();
    assert!(
        line.contains(&format!("(pid {api})")) && line.contains(&format!("worker (pid {worker})")),
        "the script named both when they started: {line}"
    );
    assert!(output.contains("stopping (SIGTERM)"), "{output}");
    assert!(
        output.contains("worker stopped"),
        "the worker stopped cleanly and its last words show:\n{output}"
    );
    assert!(!alive(api) && !alive(worker));
}

#[test]
fn ctrl_c_stops_both() {
    let (mut run, api, worker) = both_running();
    // A terminal's Ctrl-C reaches every process of the foreground group.
    run.signal("INT", true);
    let (status, output) = run.wait_exit(Duration::from_secs(60));
    run.assert_nothing_left();
    assert_eq!(status.code(), Some(130), "128 + SIGINT:\n{output}");
    assert!(!alive(api) && !alive(worker));
}

#[test]
fn an_api_that_dies_takes_the_worker_down() {
    let (mut run, api, worker) = both_running();
    Command::new("kill")
        .args(["-KILL", &api.to_string()])
        .status()
        .unwrap();
    let (status, output) = run.wait_exit(Duration::from_secs(60));
    run.assert_nothing_left();
    assert_eq!(status.code(), Some(137), "the API's status:\n{output}");
    assert!(
        output.contains("run-local: the api stopped (killed by SIGKILL, exit status 137)")
            && output.contains("stopping the worker too"),
        "{output}"
    );
    assert!(!alive(worker));
}

#[test]
fn a_port_in_use_is_named_and_nothing_is_left() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut run = Run::start(port, &[("WARBLE_MODEL", &common::model())]);
    let (status, output) = run.wait_exit(Duration::from_secs(60));
    run.assert_no_process_left();
    assert!(!status.success(), "{status:?}");
    assert!(
        output.contains(&format!("something already listens on port {port}")),
        "says the port is taken:\n{output}"
    );
    // The port is still the test's own.
    assert_eq!(taken.local_addr().unwrap().port(), port);
    assert!(accepts(port));
}
