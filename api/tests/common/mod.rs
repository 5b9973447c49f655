//! Starting the real `api` and `worker` binaries for end-to-end tests.

#![allow(dead_code)]

// The test databases' life is shared with warble-jobs' own tests.
#[path = "../../../jobs/tests/support/postgres.rs"]
mod postgres;
#[path = "../../../jobs/tests/support/prerequisite.rs"]
pub mod prerequisite;
pub mod receiver;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Runs each scenario once on SQLite and once on Postgres, as separate tests.
#[macro_export]
macro_rules! on_both_databases {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $scenario() {
                    let dir = tempfile::tempdir().unwrap();
                    super::$scenario($crate::common::Backends::local(dir.path()), dir.path()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $scenario() {
                    let dir = tempfile::tempdir().unwrap();
                    let backends = $crate::common::Backends::postgres(dir.path()).await;
                    super::$scenario(backends, dir.path()).await;
                }
            )*
        }
    };
}

/// Runs each scenario on SQLite and Postgres (see [`on_both_databases`]) and once more with
/// its audio on an S3 server.
#[macro_export]
macro_rules! on_every_backend {
    ($($scenario:ident),* $(,)?) => {
        on_both_databases!($($scenario),*);
        mod s3 {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $scenario() {
                    let dir = tempfile::tempdir().unwrap();
                    super::$scenario($crate::common::Backends::s3(dir.path()).await, dir.path()).await;
                }
            )*
        }
    };
}

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

/// The first Chromium or Chrome on `PATH` that runs; fails the test, saying how to get one,
/// if none.
pub fn chromium() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            let runs = candidate.is_file()
                && std::process::Command::new(&candidate)
                    .arg("--version")
                    .output()
                    .is_ok_and(|out| out.status.success());
            if runs {
                return candidate;
            }
        }
    }
    prerequisite::missing(
        "Chromium",
        "apt-get install chromium (or any Chrome on PATH)",
    );
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
    /// The directory whose files are the stored objects.
    pub objects: PathBuf,
    /// Extra environment for the processes (the S3 endpoint and keys).
    pub env: Vec<(String, String)>,
    /// The Postgres database made for this test, dropped with the last clone: after the
    /// test's processes, which it declares later and so drops first.
    pub database: Option<Arc<postgres::TestDatabase>>,
}

impl Backends {
    /// SQLite and a blob directory under `dir`.
    pub fn local(dir: &Path) -> Self {
        Self {
            database_url: format!("sqlite://{}/warble.db", dir.display()),
            storage_url: format!("file://{}/blobs", dir.display()),
            objects: dir.join("blobs"),
            env: Vec::new(),
            database: None,
        }
    }

    /// SQLite, and storage on an S3 server on loopback (s3s-fs, keeping its objects under
    /// `dir`) reached through the standard `AWS_*` variables, with a key prefix.
    pub async fn s3(dir: &Path) -> Self {
        let root = dir.join("s3");
        let bucket = "warble-test";
        std::fs::create_dir_all(root.join(bucket)).unwrap();
        let (access, secret) = ("AKWARBLETEST", "warble-test-secret");
        let mut service =
            s3s::service::S3ServiceBuilder::new(s3s_fs::FileSystem::new(&root).unwrap());
        service.set_auth(s3s::auth::SimpleAuth::from_single(access, secret));
        let service = service.build();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let http =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let connection = http
                    .serve_connection(hyper_util::rt::TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(connection);
            }
        });
        let env = [
            ("AWS_ENDPOINT_URL", format!("http://{address}")),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", access.into()),
            ("AWS_SECRET_ACCESS_KEY", secret.into()),
        ];
        Self {
            database_url: format!("sqlite://{}/warble.db", dir.display()),
            storage_url: format!("s3://{bucket}/audio"),
            objects: root.join(bucket),
            env: env.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            database: None,
        }
    }

    /// Objects in storage.
    pub fn stored_objects(&self) -> usize {
        fn count(dir: &Path) -> usize {
            std::fs::read_dir(dir)
                .map(|entries| {
                    entries
                        .flatten()
                        .map(|e| {
                            if e.path().is_dir() {
                                count(&e.path())
                            } else {
                                1
                            }
                        })
                        .sum()
                })
                .unwrap_or(0)
        }
        count(&self.objects)
    }

    /// For the benchmarks: `sqlite` (local files under `dir`) or a fresh `postgres` database,
    /// which they cannot run without.
    pub async fn named(database: &str, dir: &Path) -> Self {
        match database {
            "sqlite" => Self::local(dir),
            _ => Self::postgres(dir).await,
        }
    }

    /// A fresh database on the Postgres server of `WARBLE_TEST_POSTGRES_URL` (default: the
    /// local `test` database), dropped when the test ends, with local files for storage.
    /// Fails the test, saying how to get a server, when none can be reached.
    pub async fn postgres(dir: &Path) -> Self {
        let database = postgres::TestDatabase::create().await;
        Self {
            database_url: database.url.clone(),
            database: Some(Arc::new(database)),
            ..Self::local(dir)
        }
    }

    pub fn apply(&self, cmd: &mut Command) {
        cmd.env("WARBLE_DATABASE_URL", &self.database_url)
            .env("WARBLE_STORAGE_URL", &self.storage_url)
            .env("WARBLE_HEARTBEAT_SECS", "1")
            .env("WARBLE_MISSED_HEARTBEATS", "3")
            .env("WARBLE_LOG", "info,sqlx=warn")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env_remove("WARBLE_LISTEN")
            .env_remove("WARBLE_MODEL");
    }
}

/// Whether the processes' log lines are copied to stderr (the benchmark turns it off).
pub static ECHO_LOGS: AtomicBool = AtomicBool::new(true);

/// The lines a child writes to its piped stdout and stderr, as they come (copied to stderr
/// unless [`ECHO_LOGS`] is off).
pub fn output_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, lines) = mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if ECHO_LOGS.load(Ordering::Relaxed) {
                    eprintln!("    | {line}");
                }
                tx.send(line).ok();
            }
        });
    }
    lines
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
        let log = output_lines(&mut child);
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

    /// Counts the log lines containing `needle` that arrived since the last read.
    pub fn count_new(&self, needle: &str) -> usize {
        self.drain()
            .iter()
            .filter(|line| line.contains(needle))
            .count()
    }

    /// The log lines that arrived since the last read.
    pub fn drain(&self) -> Vec<String> {
        self.log.try_iter().collect()
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "still running after {timeout:?}");
            std::thread::sleep(Duration::from_millis(50));
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

/// `(status, error code)` of an error response.
pub async fn error_of(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    let code = body["error"]["code"].as_str().unwrap_or("?").to_string();
    (status, code)
}

/// Checks the headers every response must carry, errors included.
pub fn assert_security_headers(response: &reqwest::Response) {
    let headers = response.headers();
    for (name, expected) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
    ] {
        assert_eq!(headers[name], expected, "{name} on a {}", response.status());
    }
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(headers["x-request-id"].len(), 26, "a ULID request id");
}

/// The admin key every test API is started with (`WARBLE_ADMIN_KEY`).
pub const ADMIN_KEY: &str = "wbl_test-admin-key-0123456789abcdef0123456789abcdef";

/// An HTTP client that sends `key` with every request.
pub fn client_with_key(key: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {key}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// Makes a key through the admin endpoint, with the server's default quotas unless `quotas`
/// is given; returns `(id, secret)`.
pub async fn make_key_with(
    api: &Api,
    name: &str,
    role: &str,
    tenant: Option<&str>,
    quotas: Option<Value>,
) -> (String, String) {
    let mut body = serde_json::json!({ "name": name, "role": role });
    if let Some(tenant) = tenant {
        body["tenant"] = tenant.into();
    }
    if let Some(quotas) = quotas {
        body["quotas"] = quotas;
    }
    let response = api
        .client
        .post(api.url("/v1/keys"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert!(created["key"].get("sha256").is_none());
    (
        created["key"]["id"].as_str().unwrap().to_string(),
        created["secret"].as_str().unwrap().to_string(),
    )
}

/// [`make_key_with`] the default quotas.
pub async fn make_key(api: &Api, name: &str, role: &str, tenant: Option<&str>) -> (String, String) {
    make_key_with(api, name, role, tenant, None).await
}

/// The API on a free loopback port, with an HTTP client for it (as the admin).
pub struct Api {
    /// Shared by the clients [`Api::as_key`] makes; the last one to go stops it.
    pub process: std::rc::Rc<Process>,
    pub base: String,
    pub client: reqwest::Client,
}

impl Api {
    pub fn start(backends: &Backends) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_api"));
        cmd.args(["--listen", "127.0.0.1:0"]);
        cmd.env("WARBLE_ADMIN_KEY", ADMIN_KEY);
        // Tests poll quickly; the rate-limit tests set their own limits (`backends.env`).
        for limit in [
            "WARBLE_RATE_LIMIT_PER_MINUTE",
            "WARBLE_RATE_LIMIT_BURST",
            "WARBLE_IP_RATE_LIMIT_PER_MINUTE",
            "WARBLE_IP_RATE_LIMIT_BURST",
        ] {
            cmd.env(limit, "1000000");
        }
        backends.apply(&mut cmd);
        let process = Process::spawn(cmd);
        // The log is the only witness here: the port is the one the system picked.
        let line = process.wait_for("listening", Duration::from_secs(60));
        let address = line
            .split("address=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("the listening line names the address")
            .to_string();
        Self {
            process: std::rc::Rc::new(process),
            base: format!("http://{address}"),
            client: client_with_key(ADMIN_KEY),
        }
    }

    /// The same API, called with `key`.
    pub fn as_key(&self, key: &str) -> Self {
        Self {
            process: self.process.clone(),
            base: self.base.clone(),
            client: client_with_key(key),
        }
    }

    /// Sends `key` with every request from now on.
    pub fn act_as(&mut self, key: &str) {
        self.client = client_with_key(key);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// `POST path`, without a body.
    pub async fn post(&self, path: &str) -> reqwest::Response {
        self.client.post(self.url(path)).send().await.unwrap()
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.client.delete(self.url(path)).send().await.unwrap()
    }

    /// `GET path`, its JSON body.
    pub async fn get_json(&self, path: &str) -> Value {
        self.get(path).await.json().await.unwrap()
    }

    /// Submits `file`, streamed from disk, with optional extra form fields.
    pub async fn submit(
        &self,
        file: &Path,
        fields: &[(&str, &str)],
        idempotency_key: Option<&str>,
    ) -> reqwest::Response {
        let opened = tokio::fs::File::open(file).await.unwrap();
        let length = opened.metadata().await.unwrap().len();
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(opened));
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let mut form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::stream_with_length(body, length)
                .mime_str(if name.ends_with(".wav") {
                    "audio/wav"
                } else {
                    "application/octet-stream"
                })
                .unwrap()
                .file_name(name),
        );
        for (key, value) in fields {
            form = form.text(key.to_string(), value.to_string());
        }
        self.post_form(form, idempotency_key).await
    }

    /// `POST /v1/jobs` with `form`.
    pub async fn post_form(
        &self,
        form: reqwest::multipart::Form,
        idempotency_key: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self.client.post(self.url("/v1/jobs")).multipart(form);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        request.send().await.unwrap()
    }

    /// Submits `file` and returns the new job's id.
    pub async fn submit_ok(&self, file: &Path) -> String {
        let response = self.submit(file, &[], None).await;
        assert_eq!(response.status(), 202);
        let job: Value = response.json().await.unwrap();
        job["id"].as_str().unwrap().to_string()
    }

    /// Polls the job until its status is final.
    pub async fn wait_final(&self, id: &str, timeout: Duration) -> Value {
        self.wait_until(id, timeout, |job| {
            ["succeeded", "failed", "canceled"].contains(&job["status"].as_str().unwrap())
        })
        .await
    }

    /// Polls the job until `done(job)`, returning the job.
    pub async fn wait_until(
        &self,
        id: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let job = self.get_json(&format!("/v1/jobs/{id}")).await;
            if done(&job) {
                return job;
            }
            assert!(Instant::now() < deadline, "job after {timeout:?}: {job}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The ids `GET /v1/workers` lists, asked as the admin (this client may be a user's).
    async fn worker_ids(&self) -> Vec<String> {
        let response = client_with_key(ADMIN_KEY)
            .get(self.url("/v1/workers"))
            .send()
            .await
            .unwrap();
        let workers: Value = response.json().await.unwrap();
        workers["workers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["id"].as_str().unwrap().to_string())
            .collect()
    }
}

/// A worker on the fixture model, once `api` lists it.
pub async fn start_worker(api: &Api, backends: &Backends) -> Process {
    start_worker_with(api, backends, &[]).await
}

/// A worker on the fixture model with extra environment variables, once `api` lists it: a
/// worker registers when its model is loaded, just before it takes jobs.
pub async fn start_worker_with(api: &Api, backends: &Backends, env: &[(&str, &str)]) -> Process {
    let before = api.worker_ids().await;
    let mut cmd = Command::new(worker_bin());
    cmd.arg("run").arg("--model").arg(model());
    backends.apply(&mut cmd);
    cmd.envs(env.iter().copied());
    let mut process = Process::spawn(cmd);
    let timeout = Duration::from_secs(60);
    let deadline = Instant::now() + timeout;
    loop {
        let now = api.worker_ids().await;
        if now.iter().any(|id| !before.contains(id)) {
            return process;
        }
        if let Some(status) = process.child.try_wait().unwrap() {
            panic!("the worker stopped ({status}) before it registered");
        }
        assert!(
            Instant::now() < deadline,
            "no new worker listed within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The tools' Python (`target/tools-venv`, where `scripts/test` installs the test tools, or
/// `WARBLE_TOOLS_PYTHON`), once it can import `module`; fails the test saying how to get it
/// (`install`) otherwise.
pub fn tools_python(module: &str, install: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = std::env::var_os("WARBLE_TOOLS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/tools-venv/bin/python"));
    let usable = Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|out| out.status.success());
    if !usable {
        prerequisite::missing(module, install);
    }
    python
}

/// Runs `tools/<script>` with `python`, `args` and `stdin` as its input; its standard output.
/// Fails the test, with what the script said, if it fails.
pub fn run_tool(python: &Path, script: &str, args: &[&std::ffi::OsStr], stdin: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut child = Command::new(python)
        .arg(root.join("tools").join(script))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "tools/{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// What `worker transcribe --json` prints for `file`.
pub fn transcribe_cli(file: &Path) -> Value {
    transcribe_cli_with(file, &[])
}

/// What `worker transcribe --json` prints for `file`, with extra environment variables (the
/// chunking a worker was given).
pub fn transcribe_cli_with(file: &Path, env: &[(&str, &str)]) -> Value {
    let output = Command::new(worker_bin())
        .arg("transcribe")
        .arg("--model")
        .arg(model())
        .arg("--json")
        .arg(file)
        .env_remove("WARBLE_MODEL")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// A WAV file of about `seconds` of speech: the fixture recordings over and over, long enough
/// that a worker is still transcribing it when a test interrupts it.
pub fn long_wav(dir: &Path, seconds: u32) -> PathBuf {
    let mut speech = Vec::new();
    for rel in ["audio/tts_us_m6.wav", "audio/tts_rp_m7.wav"] {
        speech.extend_from_slice(wav_data(&std::fs::read(fixture(rel)).unwrap()));
    }
    // The fixtures are 16 kHz mono 16-bit: 32000 bytes a second.
    let size = seconds as usize * 32_000;
    let data: Vec<u8> = speech.iter().copied().cycle().take(size).collect();
    let mut wav = Vec::with_capacity(44 + size);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + size as u32).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    for field in [16u32, 1 | (1 << 16), 16_000, 32_000, 2 | (16 << 16)] {
        wav.extend_from_slice(&field.to_le_bytes());
    }
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&(size as u32).to_le_bytes());
    wav.extend_from_slice(&data);
    let path = dir.join(format!("speech-{seconds}s.wav"));
    std::fs::write(&path, wav).unwrap();
    path
}

/// The samples of a WAV file's `data` chunk.
fn wav_data(wav: &[u8]) -> &[u8] {
    let mut at = 12;
    while at + 8 <= wav.len() {
        let size = u32::from_le_bytes(wav[at + 4..at + 8].try_into().unwrap()) as usize;
        if &wav[at..at + 4] == b"data" {
            return &wav[at + 8..(at + 8 + size).min(wav.len())];
        }
        at += 8 + size + (size & 1);
    }
    panic!("no data chunk")
}

/// A TCP proxy on loopback that can cut every connection and refuse new ones, to give the
/// processes behind it a real database outage.
pub struct Proxy {
    pub address: std::net::SocketAddr,
    up: tokio::sync::watch::Sender<bool>,
}

impl Proxy {
    pub async fn start(target: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (up, _) = tokio::sync::watch::channel(true);
        let state = up.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !*state.borrow() {
                    continue; // dropped: the connection is reset
                }
                let mut down = state.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = down.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Self { address, up }
    }

    /// Drops every open connection and refuses new ones until [`Proxy::restore`].
    pub fn cut(&self) {
        self.up.send_replace(false);
    }

    pub fn restore(&self) {
        self.up.send_replace(true);
    }
}

/// The number of chunks in each encoder pass a worker logged (its `warble_parakeet=debug`
/// lines "encoder pass items=N").
pub fn pass_sizes(lines: &[String]) -> Vec<usize> {
    lines
        .iter()
        .filter(|line| line.contains("encoder pass"))
        .filter_map(|line| {
            line.split("items=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect()
}
