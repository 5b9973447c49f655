//! Starting the real `api` and `worker` binaries for end-to-end tests.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// A fixture of the engine's test suite.
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../parakeet/tests/fixtures")
        .join(rel)
}

/// The model every pipeline test runs.
pub fn model() -> PathBuf {
    fixture("models/hybrid.nemo")
}

/// The `worker` binary, built beside `api` by `cargo test --workspace`.
pub fn worker_bin() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_api")).with_file_name("worker");
    assert!(
        path.exists(),
        "{} is missing: run the tests for the whole workspace (cargo nextest run --workspace)",
        path.display()
    );
    path
}

/// Where a platform keeps its data.
#[derive(Debug, Clone)]
pub struct Backends {
    pub database_url: String,
    pub storage_url: String,
}

impl Backends {
    /// SQLite and a blob directory under `dir`.
    pub fn local(dir: &Path) -> Self {
        Self {
            database_url: format!("sqlite://{}/warble.db", dir.display()),
            storage_url: format!("file://{}/blobs", dir.display()),
        }
    }

    /// A fresh database on the Postgres server of `WARBLE_TEST_POSTGRES_URL` (default: the
    /// local `test` database), with local files for storage. `None`, after saying why, when the
    /// server cannot be reached, unless running in CI (`CI` set), where that fails the test.
    pub async fn postgres(dir: &Path) -> Option<Self> {
        let admin_url = std::env::var("WARBLE_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let admin = sqlx::postgres::PgPoolOptions::new()
            .acquire_timeout(Duration::from_secs(3))
            .connect(&admin_url)
            .await;
        let admin = match admin {
            Ok(pool) => pool,
            Err(err) if std::env::var_os("CI").is_none() => {
                eprintln!("SKIPPED: Postgres at {admin_url} is unreachable ({err}); set WARBLE_TEST_POSTGRES_URL to run this test");
                return None;
            }
            Err(err) => panic!("CI requires Postgres at {admin_url}: {err}"),
        };
        let name = format!("warble_test_{}", ulid::Ulid::generate().to_string().to_lowercase());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .unwrap();
        let (base, _) = admin_url.rsplit_once('/').unwrap();
        Some(Self {
            database_url: format!("{base}/{name}"),
            storage_url: format!("file://{}/blobs", dir.display()),
        })
    }

    fn apply(&self, cmd: &mut Command) {
        cmd.env("WARBLE_DATABASE_URL", &self.database_url)
            .env("WARBLE_STORAGE_URL", &self.storage_url)
            .env("WARBLE_HEARTBEAT_SECS", "1")
            .env("WARBLE_MISSED_HEARTBEATS", "3")
            .env("WARBLE_LOG", "info,sqlx=warn")
            .env_remove("WARBLE_LISTEN")
            .env_remove("WARBLE_MODEL");
    }
}

/// A child process that is killed when dropped.
pub struct Process {
    pub child: Child,
    pub log: mpsc::Receiver<String>,
}

impl Drop for Process {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl Process {
    fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning");
        let (tx, log) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    eprintln!("    | {line}");
                    tx.send(line).ok();
                }
            });
        }
        Self { child, log }
    }

    /// Waits for a log line containing `needle`, returning it.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("no log line with {needle:?} within {timeout:?}"),
            }
        }
    }

    /// Sends a signal (`libc`-free: through `kill(1)`).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

/// The API on a free loopback port.
pub struct Api {
    pub process: Process,
    pub base: String,
}

impl Api {
    pub fn start(backends: &Backends) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_api"));
        cmd.args(["--listen", "127.0.0.1:0"]);
        backends.apply(&mut cmd);
        let process = Process::spawn(cmd);
        let line = process.wait_for("listening", Duration::from_secs(60));
        let address = line
            .split("address=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("the listening line names the address")
            .to_string();
        Self {
            process,
            base: format!("http://{address}"),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

/// A worker on the fixture model.
pub fn start_worker(backends: &Backends) -> Process {
    let mut cmd = Command::new(worker_bin());
    cmd.arg("run").arg("--model").arg(model());
    backends.apply(&mut cmd);
    let process = Process::spawn(cmd);
    process.wait_for("worker ready", Duration::from_secs(60));
    process
}

/// Submits `file` with optional extra form fields; returns the response.
pub async fn submit(
    client: &reqwest::Client,
    api: &Api,
    file: &Path,
    fields: &[(&str, &str)],
    idempotency_key: Option<&str>,
) -> reqwest::Response {
    let bytes = std::fs::read(file).unwrap();
    let name = file.file_name().unwrap().to_string_lossy().to_string();
    let mut form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bytes)
            .file_name(name)
            .mime_str("audio/wav")
            .unwrap(),
    );
    for (key, value) in fields {
        form = form.text(key.to_string(), value.to_string());
    }
    let mut request = client.post(api.url("/v1/jobs")).multipart(form);
    if let Some(key) = idempotency_key {
        request = request.header("Idempotency-Key", key);
    }
    request.send().await.unwrap()
}

/// Polls the job until its status is final.
pub async fn wait_final(client: &reqwest::Client, api: &Api, id: &str, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let job: Value = client
            .get(api.url(&format!("/v1/jobs/{id}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let status = job["status"].as_str().unwrap().to_string();
        if ["succeeded", "failed", "canceled"].contains(&status.as_str()) {
            return job;
        }
        assert!(Instant::now() < deadline, "job {id} still {status} after {timeout:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What `worker transcribe --json` prints for `file`.
pub fn transcribe_cli(file: &Path) -> Value {
    let output = Command::new(worker_bin())
        .arg("transcribe")
        .arg("--model")
        .arg(model())
        .arg("--json")
        .arg(file)
        .env_remove("WARBLE_MODEL")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}
