//! Finding and reading checkpoints: NeMo `.nemo` archives and MLX-style safetensors
//! directories, from a local path or a Hugging Face repository.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use std::sync::Mutex;

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::VarBuilder;
use candle_nn::var_builder::SimpleBackend;
use sha2::{Digest, Sha256};

use crate::config::ModelConfig;
use crate::error::{Error, Result};

/// The default model: NVIDIA's English TDT model.
pub const DEFAULT_MODEL: &str = "nvidia/parakeet-tdt-0.6b-v2";

/// A checkpoint: its config and its weights under NeMo's names, on the CPU.
#[derive(Debug)]
pub struct Checkpoint {
    /// The model's own configuration.
    pub config: ModelConfig,
    /// Weights in memory, by NeMo state-dict name. Empty for a checkpoint from [`open_with`],
    /// whose weights stay in the file until the layers take them.
    pub tensors: HashMap<String, Tensor>,
    /// The file the weights came from (the `.nemo` archive or `model.safetensors`).
    pub weights_file: PathBuf,
    /// Weights still in `weights_file`, read as they are taken ([`open_with`]).
    pub(crate) stored: Option<(File, Vec<crate::weights::StoredTensor>)>,
}

impl Checkpoint {
    /// A `VarBuilder` that hands each weight out once and forgets it.
    ///
    /// The layers keep the tensors they are given, and some replace them at load time with
    /// rearranged copies (stacked or pre-scaled matrices). Letting go of the checkpoint's
    /// reference as each weight is taken frees the originals of those copies at once, and the
    /// host copies of weights moved to a GPU, so loading never holds the model twice. Weights
    /// still in the file are read when taken, so the memory one layer's originals leave is
    /// reused by the next layer's weights.
    pub fn into_var_builder(self, device: &Device) -> (ModelConfig, VarBuilder<'static>) {
        let stored = self.stored.map(|(file, tensors)| Stored {
            path: self.weights_file.clone(),
            file,
            tensors: Mutex::new(tensors.into_iter().map(|t| (t.name.clone(), t)).collect()),
        });
        let backend = TakeOnce {
            loaded: Mutex::new(self.tensors),
            stored,
        };
        (
            self.config,
            VarBuilder::from_backend(Box::new(backend), DType::F32, device.clone()),
        )
    }
}

/// A `VarBuilder` over `tensors` that hands each weight out once (see
/// [`Checkpoint::into_var_builder`]).
pub(crate) fn take_once(tensors: HashMap<String, Tensor>, device: &Device) -> VarBuilder<'static> {
    VarBuilder::from_backend(
        Box::new(TakeOnce {
            loaded: Mutex::new(tensors),
            stored: None,
        }),
        DType::F32,
        device.clone(),
    )
}

/// The weights behind [`Checkpoint::into_var_builder`].
struct TakeOnce {
    loaded: Mutex<HashMap<String, Tensor>>,
    stored: Option<Stored>,
}

/// Weights not read yet.
struct Stored {
    path: PathBuf,
    file: File,
    tensors: Mutex<HashMap<String, crate::weights::StoredTensor>>,
}

impl TakeOnce {
    fn take(&self, name: &str) -> candle_core::Result<Tensor> {
        let loaded = self
            .loaded
            .lock()
            .expect("no panic while the lock is held")
            .remove(name);
        if let Some(tensor) = loaded {
            return Ok(tensor);
        }
        let stored = self.stored.as_ref().and_then(|s| {
            let t = s
                .tensors
                .lock()
                .expect("no panic while the lock is held")
                .remove(name)?;
            Some((s, t))
        });
        match stored {
            Some((s, t)) => crate::weights::read_one(&s.file, &t).map_err(|e| {
                candle_core::Error::Msg(format!("{}: tensor {name}: {e}", s.path.display()))
            }),
            None => Err(candle_core::Error::CannotFindTensor {
                path: name.to_string(),
            }),
        }
    }
}

impl SimpleBackend for TakeOnce {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        let tensor = self.take(name)?;
        if tensor.shape() != &shape {
            return Err(candle_core::Error::UnexpectedShape {
                msg: format!("shape mismatch for {name}"),
                expected: shape,
                got: tensor.shape().clone(),
            });
        }
        tensor.to_device(device)?.to_dtype(dtype)
    }

    fn get_unchecked(
        &self,
        name: &str,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        self.take(name)?.to_device(device)?.to_dtype(dtype)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.loaded
            .lock()
            .expect("no panic while the lock is held")
            .contains_key(name)
            || self.stored.as_ref().is_some_and(|s| {
                s.tensors
                    .lock()
                    .expect("no panic while the lock is held")
                    .contains_key(name)
            })
    }
}

/// Turns a model reference into a local path: an existing file or directory is used as it is;
/// otherwise `owner/name` is fetched from the Hugging Face Hub (honouring `HF_ENDPOINT`,
/// `HF_HOME`, `HF_HUB_CACHE`, `HF_TOKEN` and, with `HF_HUB_OFFLINE=1`, only the local cache):
/// its `{name}.nemo`, or else the MLX pair `config.json` + `model.safetensors`.
///
/// # Errors
///
/// [`Error::ModelFile`] for a path that does not exist and is no repository id;
/// [`Error::Hub`] when the repository's files cannot be fetched.
pub fn resolve(model: &str) -> Result<PathBuf> {
    let path = Path::new(model);
    if path.exists() {
        return Ok(path.to_path_buf());
    }
    match model.split_once('/') {
        // A missing `dir/model.nemo` or `./model` is a mistyped path: asking the Hub for it
        // would end in a 401 that blames access.
        Some((owner, name))
            if !owner.is_empty()
                && !owner.starts_with('.')
                && !name.is_empty()
                && !name.contains('/')
                && !name.ends_with(".nemo") =>
        {
            crate::hub::fetch(owner, name)
        }
        _ => Err(Error::ModelFile {
            path: path.to_path_buf(),
            message: "no such file or directory, and not a Hugging Face repository id (owner/name)"
                .into(),
        }),
    }
}

/// Reads the checkpoint at `path` (a `.nemo` file, a directory holding one, or a directory with
/// `config.json` + `model.safetensors`), first checking its SHA-256 against `sha256` if given.
///
/// The checksum is computed every time; [`read_with`] can remember it.
pub fn read(path: &Path, sha256: Option<&str>) -> Result<Checkpoint> {
    read_with(path, sha256, None)
}

/// [`read`], with verified checksums remembered in `checksums` (see [`ChecksumCache`]) so that
/// a pinned model is hashed once, not at every start.
pub fn read_with(
    path: &Path,
    sha256: Option<&str>,
    checksums: Option<&ChecksumCache>,
) -> Result<Checkpoint> {
    let weights_file = verified_weights_file(path, sha256, checksums)?;
    read_verified(&weights_file)
}

/// [`read_with`], except that the weights of a `.nemo` archive readable in place (NeMo's own
/// archives are) stay in the file until [`Checkpoint::into_var_builder`] hands them out: each
/// is read when its layer takes it, into memory the previous layer's rearranged weights just
/// freed, so loading holds the weights plus one layer at most, whatever the allocator keeps.
/// The archive is checked (every tensor inside the file) before this returns. This is how
/// [`crate::Parakeet::load`] reads.
pub fn open_with(
    path: &Path,
    sha256: Option<&str>,
    checksums: Option<&ChecksumCache>,
) -> Result<Checkpoint> {
    let weights_file = verified_weights_file(path, sha256, checksums)?;
    if weights_file.extension().is_none_or(|e| e != "safetensors") {
        let file = File::open(&weights_file).map_err(|e| Error::ModelFile {
            path: weights_file.clone(),
            message: e.to_string(),
        })?;
        if let Some(layout) = crate::weights::nemo_layout(&weights_file, &file)? {
            crate::weights::check_bounds(&weights_file, &file, &layout.tensors)?;
            let config =
                ModelConfig::from_yaml(&layout.config).map_err(|e| Error::Config(e.to_string()))?;
            return Ok(Checkpoint {
                config,
                tensors: HashMap::new(),
                weights_file,
                stored: Some((file, layout.tensors)),
            });
        }
    }
    read_verified(&weights_file)
}

/// The weights file of `path`, its pinned checksum checked.
fn verified_weights_file(
    path: &Path,
    sha256: Option<&str>,
    checksums: Option<&ChecksumCache>,
) -> Result<PathBuf> {
    let weights_file = weights_file(path)?;
    if let Some(expected) = sha256 {
        let started = std::time::Instant::now();
        let how = match checksums {
            Some(cache) => cache.verify(&weights_file, expected)?,
            None => {
                verify_sha256(&weights_file, expected)?;
                Verified::Hashed
            }
        };
        tracing::debug!(path = %weights_file.display(), ?how,
            ms = started.elapsed().as_millis() as u64, "checksum verified");
    }
    Ok(weights_file)
}

fn read_verified(weights_file: &Path) -> Result<Checkpoint> {
    if weights_file.extension().is_some_and(|e| e == "safetensors") {
        crate::mlx::read(weights_file)
    } else {
        read_nemo(weights_file)
    }
}

/// The file whose bytes define the model, the one a pinned checksum refers to.
pub(crate) fn weights_file(path: &Path) -> Result<PathBuf> {
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    let not_found = |message: &str| Error::ModelFile {
        path: path.to_path_buf(),
        message: message.into(),
    };
    let entries = std::fs::read_dir(path).map_err(|e| not_found(&e.to_string()))?;
    let mut nemo_files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "nemo"))
        .collect();
    nemo_files.sort();
    match nemo_files.as_slice() {
        [one] => Ok(one.clone()),
        [] if path.join("model.safetensors").is_file() && path.join("config.json").is_file() => {
            Ok(path.join("model.safetensors"))
        }
        [] => Err(not_found(
            "holds neither a .nemo file nor config.json + model.safetensors",
        )),
        _ => Err(not_found("holds several .nemo files; name one")),
    }
}

/// Refuses a file whose SHA-256 differs from `expected` (hex, case-insensitive).
pub fn verify_sha256(path: &Path, expected: &str) -> Result<()> {
    let actual = sha256_file(path)?;
    if actual.eq_ignore_ascii_case(expected.trim()) {
        Ok(())
    } else {
        Err(Error::ChecksumMismatch {
            path: path.to_path_buf(),
            expected: expected.trim().to_lowercase(),
            actual,
        })
    }
}

/// How a pinned checksum was found to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// The file was read and hashed.
    Hashed,
    /// A record of an earlier hash of this very file, unchanged since, vouched for it.
    Remembered,
}

/// Checksums verified before, so that a pinned model (`LoadOptions::sha256`) is hashed once
/// rather than at every start: hashing the 2.4 GB of the 0.6B models takes longer than loading
/// them.
///
/// # What is remembered, and why it is sound
///
/// After a file's SHA-256 matched, one line of `verified-checksums.json` in the cache directory
/// records the file's canonical path, its SHA-256, and the file's identity as the kernel keeps
/// it: device, inode, size, modification time and *change* time (`ctime`), to the nanosecond. A
/// later check trusts the record only when all of these are unchanged and the pinned checksum
/// is the one recorded; anything else hashes the file again (and rewrites the record).
///
/// Writing a file's content updates its modification and change times; replacing it (a new
/// download, `mv`, `cp`) gives it a new inode or new times. The change time cannot be set from
/// user space (`touch -d` sets the modification time and moves the change time to now), so a
/// file edited and given back its old timestamps still differs in `ctime`. Timestamps are kept
/// in coarse steps by some filesystems, so a record is only written for a file whose last
/// change is at least [`RACY_SECS`] older than the start of its hashing: a write in the same
/// step as the hash could otherwise go unseen (git's "racily clean" case). What this cannot
/// see is a write that bypasses the filesystem (the raw block device) or the clock set back,
/// both needing root, who could as well replace the program.
///
/// The record is only as trustworthy as the directory that holds it: whoever may write there
/// may vouch for any file. It defaults to the user's own cache directory
/// (`$XDG_CACHE_HOME/warble`, else `$HOME/.cache/warble`), which others cannot write. An
/// attacker who can write both the model file and that directory defeats the pin; for that
/// threat model, disable the cache (`LoadOptions::checksum_cache = None`; in the worker
/// `WARBLE_CHECKSUM_CACHE=off`) and every start hashes the file.
///
/// A cache directory that cannot be written costs only the hash at each start (logged once at
/// debug level); a record file that cannot be parsed is ignored and replaced. Records of files
/// that no longer exist are dropped whenever the file is rewritten. The file is replaced
/// atomically (written beside it, then renamed), so a crash never leaves half a record that is
/// trusted; two processes writing at once lose one record, which only costs a hash later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecksumCache {
    dir: PathBuf,
}

/// A file is only remembered if it last changed at least this long before it was hashed; see
/// [`ChecksumCache`].
pub const RACY_SECS: u64 = 2;

/// The record file's format; a different one is ignored.
const CHECKSUM_CACHE_VERSION: u32 = 1;

/// One remembered checksum.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Remembered {
    sha256: String,
    identity: FileIdentity,
}

/// `verified-checksums.json`.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct ChecksumRecords {
    version: u32,
    /// By canonical path.
    files: std::collections::BTreeMap<String, Remembered>,
}

/// What identifies one state of one file: see [`ChecksumCache`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct FileIdentity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl FileIdentity {
    /// `None` where the platform does not give inode and change time (outside Unix): nothing is
    /// remembered there.
    fn of(path: &Path) -> Option<Self> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let m = std::fs::metadata(path).ok()?;
            let ns = |secs: i64, nanos: i64| i128::from(secs) * 1_000_000_000 + i128::from(nanos);
            Some(Self {
                dev: m.dev(),
                ino: m.ino(),
                size: m.size(),
                mtime_ns: ns(m.mtime(), m.mtime_nsec()),
                ctime_ns: ns(m.ctime(), m.ctime_nsec()),
            })
        }
        #[cfg(not(unix))]
        {
            let _ = path;
            None
        }
    }

    /// Nanoseconds since the epoch of the file's last change.
    fn last_change_ns(&self) -> i128 {
        self.mtime_ns.max(self.ctime_ns)
    }
}

impl ChecksumCache {
    /// A cache in `dir` (created when first written).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The user's cache directory: `$XDG_CACHE_HOME/warble`, else `$HOME/.cache/warble`;
    /// `None` when neither is set.
    pub fn user_default() -> Option<Self> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|h| !h.is_empty())
                    .map(|h| PathBuf::from(h).join(".cache"))
            })?;
        Some(Self::new(base.join("warble")))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn records_path(&self) -> PathBuf {
        self.dir.join("verified-checksums.json")
    }

    fn load(&self) -> ChecksumRecords {
        std::fs::read(self.records_path())
            .ok()
            .and_then(|bytes| serde_json::from_slice::<ChecksumRecords>(&bytes).ok())
            .filter(|r| r.version == CHECKSUM_CACHE_VERSION)
            .unwrap_or_default()
    }

    /// Refuses `path` unless its SHA-256 is `expected` (hex, case-insensitive), hashing it
    /// unless a record vouches for it (see [`ChecksumCache`]).
    pub fn verify(&self, path: &Path, expected: &str) -> Result<Verified> {
        self.verify_with_margin(path, expected, RACY_SECS)
    }

    /// [`Self::verify`] with the racy-timestamp margin in seconds (tests use 0).
    pub(crate) fn verify_with_margin(
        &self,
        path: &Path,
        expected: &str,
        margin_secs: u64,
    ) -> Result<Verified> {
        let expected = expected.trim().to_lowercase();
        let key = std::fs::canonicalize(path)
            .ok()
            .map(|p| p.to_string_lossy().into_owned());
        let identity = FileIdentity::of(path);
        if let (Some(key), Some(identity)) = (&key, identity)
            && let Some(record) = self.load().files.get(key)
            && record.identity == identity
            && record.sha256 == expected
        {
            return Ok(Verified::Remembered);
        }
        let started = std::time::SystemTime::now();
        let actual = sha256_file(path)?;
        if actual != expected {
            return Err(Error::ChecksumMismatch {
                path: path.to_path_buf(),
                expected,
                actual,
            });
        }
        // Remember only a file that did not change while it was hashed, and whose last change
        // is far enough before the hash that a coarse timestamp would have moved since.
        let started_ns = started
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        if let (Some(key), Some(before)) = (key, identity)
            && FileIdentity::of(path) == Some(before)
            && before.last_change_ns() + i128::from(margin_secs) * 1_000_000_000 <= started_ns
            && let Err(err) = self.remember(
                key,
                Remembered {
                    sha256: actual,
                    identity: before,
                },
            )
        {
            tracing::debug!(dir = %self.dir.display(), error = %err,
                "cannot record the verified checksum; it will be computed again at the next start");
        }
        Ok(Verified::Hashed)
    }

    /// Adds a record, dropping those of files that are gone, and replaces the file atomically.
    fn remember(&self, key: String, record: Remembered) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let mut records = self.load();
        records.version = CHECKSUM_CACHE_VERSION;
        records.files.retain(|path, _| Path::new(path).exists());
        records.files.insert(key, record);
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        serde_json::to_writer_pretty(&mut tmp, &records)?;
        tmp.as_file().sync_all()?;
        tmp.persist(self.records_path())?;
        Ok(())
    }
}

/// Hex SHA-256 of a file, read in 1 MiB blocks.
pub fn sha256_file(path: &Path) -> Result<String> {
    let io_error = |e: std::io::Error| Error::ModelFile {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut file = File::open(path).map_err(io_error)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io_error)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Reads a `.nemo` archive of an ASR model.
fn read_nemo(path: &Path) -> Result<Checkpoint> {
    let archive = read_archive(path)?;
    let config =
        ModelConfig::from_yaml(&archive.config).map_err(|e| Error::Config(e.to_string()))?;
    Ok(Checkpoint {
        config,
        tensors: archive.tensors,
        weights_file: path.to_path_buf(),
        stored: None,
    })
}

/// What a `.nemo` archive holds, whatever the model: its config text and its weights.
pub(crate) struct Archive {
    /// `model_config.yaml`.
    pub config: String,
    /// The state dict, by NeMo name, on the CPU.
    pub tensors: HashMap<String, Tensor>,
}

/// Reads a `.nemo` archive: a tar (plain or gzipped) holding `model_config.yaml` and the PyTorch
/// state dict `model_weights.ckpt`.
///
/// NeMo writes plain tars with the state dict's entries stored uncompressed, so the tensors are
/// read in place, straight from the archive into their buffers ([`crate::weights`]): no copy of
/// the file, nothing written anywhere. Other archives (gzipped, or with compressed entries) have
/// their state dict unpacked to a temporary file first, because PyTorch checkpoints are zip
/// files that need random access.
pub(crate) fn read_archive(path: &Path) -> Result<Archive> {
    let fail = |message: String| Error::ModelFile {
        path: path.to_path_buf(),
        message,
    };
    let file = File::open(path).map_err(|e| fail(e.to_string()))?;
    let started = std::time::Instant::now();
    if let Some(layout) = crate::weights::nemo_layout(path, &file)? {
        let layout_ms = started.elapsed().as_millis() as u64;
        let tensors = crate::weights::read_tensors(path, &file, layout.tensors)?;
        tracing::debug!(
            path = %path.display(),
            tensors = tensors.len(),
            layout_ms,
            read_ms = started.elapsed().as_millis() as u64 - layout_ms,
            "weights read in place"
        );
        return Ok(Archive {
            config: layout.config,
            tensors,
        });
    }
    tracing::debug!(path = %path.display(), "archive not readable in place; unpacking its state dict");
    unpack_archive(path, file)
}

/// [`read_archive`] for archives whose tensors cannot be read in place.
fn unpack_archive(path: &Path, mut file: File) -> Result<Archive> {
    let fail = |message: String| Error::ModelFile {
        path: path.to_path_buf(),
        message,
    };
    let mut magic = [0u8; 2];
    let gzipped = file.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
    file.seek(SeekFrom::Start(0))
        .map_err(|e| fail(e.to_string()))?;
    let reader: Box<dyn Read> = if gzipped {
        Box::new(flate2::read::GzDecoder::new(BufReader::new(file)))
    } else {
        Box::new(BufReader::new(file))
    };
    let mut archive = tar::Archive::new(reader);
    let entries = archive
        .entries()
        .map_err(|e| fail(format!("not a tar archive: {e}")))?;
    let (config_text, weights) = crate::weights::scan_nemo(entries, &fail, |entry, name| {
        let mut tmp =
            tempfile::NamedTempFile::new().map_err(|e| fail(format!("temporary file: {e}")))?;
        std::io::copy(entry, &mut tmp).map_err(|e| fail(format!("{name}: {e}")))?;
        Ok(tmp)
    })?;
    let config_text = config_text.ok_or_else(|| fail("archive has no model_config.yaml".into()))?;
    let weights = weights.ok_or_else(|| fail("archive has no model_weights.ckpt".into()))?;
    let tensors = candle_core::pickle::read_all(weights.path())
        .map_err(|e| fail(format!("model_weights.ckpt: {e}")))?
        .into_iter()
        .collect();
    Ok(Archive {
        config: config_text,
        tensors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Verifies `path` against `digest` with no margin for coarse timestamps.
    fn verify(cache: &ChecksumCache, path: &Path, digest: &str) -> Verified {
        cache.verify_with_margin(path, digest, 0).unwrap()
    }

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/models")
            .join(name)
    }

    /// Every value of every tensor, for comparing two readings exactly.
    fn values(tensors: &HashMap<String, Tensor>) -> Vec<(String, DType, Vec<usize>, Vec<f64>)> {
        let mut out: Vec<_> = tensors
            .iter()
            .map(|(name, t)| {
                let v = t
                    .flatten_all()
                    .unwrap()
                    .to_dtype(DType::F64)
                    .unwrap()
                    .to_vec1::<f64>()
                    .unwrap();
                (name.clone(), t.dtype(), t.dims().to_vec(), v)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Reading in place finds exactly the tensors candle's pickle reader finds in the unpacked
    /// state dict, bit for bit, on every fixture archive (ASR and diarization).
    #[test]
    fn reading_in_place_matches_the_unpacked_state_dict() {
        for name in [
            "tdt.nemo",
            "rnnt.nemo",
            "ctc.nemo",
            "hybrid.nemo",
            "sortformer_offline.nemo",
            "sortformer_streaming.nemo",
        ] {
            let path = fixture(name);
            let file = File::open(&path).unwrap();
            let layout = crate::weights::nemo_layout(&path, &file).unwrap();
            assert!(layout.is_some(), "{name} is readable in place");
            let in_place = read_archive(&path).unwrap();
            let unpacked = unpack_archive(&path, File::open(&path).unwrap()).unwrap();
            assert_eq!(in_place.config, unpacked.config, "{name}");
            assert!(!in_place.tensors.is_empty(), "{name}");
            assert_eq!(
                values(&in_place.tensors),
                values(&unpacked.tensors),
                "{name}"
            );
        }
    }

    /// A gzipped archive cannot be read in place; its state dict is unpacked and gives the same
    /// tensors.
    #[test]
    fn a_gzipped_archive_is_unpacked_and_reads_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("tdt.nemo");
        let mut encoder =
            flate2::write::GzEncoder::new(File::create(&gz).unwrap(), flate2::Compression::fast());
        std::io::copy(&mut File::open(fixture("tdt.nemo")).unwrap(), &mut encoder).unwrap();
        encoder.finish().unwrap();
        assert!(
            crate::weights::nemo_layout(&gz, &File::open(&gz).unwrap())
                .unwrap()
                .is_none()
        );
        let plain = read_archive(&fixture("tdt.nemo")).unwrap();
        let unpacked = read_archive(&gz).unwrap();
        assert_eq!(values(&plain.tensors), values(&unpacked.tensors));
    }

    /// An archive cut short fails with an error that names the file, whatever the cut.
    #[test]
    fn a_truncated_archive_is_refused() {
        let bytes = std::fs::read(fixture("tdt.nemo")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        for keep in [bytes.len() / 3, bytes.len() / 2, bytes.len() - 4096] {
            let path = dir.path().join(format!("cut{keep}.nemo"));
            std::fs::write(&path, &bytes[..keep]).unwrap();
            match read_archive(&path) {
                Err(Error::ModelFile { path: p, .. }) => assert_eq!(p, path),
                Err(other) => panic!("cut at {keep}: unexpected error {other}"),
                Ok(_) => panic!("cut at {keep}: a truncated archive was read"),
            }
            // Opened to be read as the layers load, it is refused at once too.
            match open_with(&path, None, None) {
                Err(Error::ModelFile { path: p, .. }) => assert_eq!(p, path),
                Err(other) => panic!("cut at {keep}: unexpected error {other}"),
                Ok(_) => panic!("cut at {keep}: a truncated archive was opened"),
            }
        }
    }

    /// A copy of the tdt fixture in a directory of its own, and its SHA-256.
    fn model_copy() -> (tempfile::TempDir, PathBuf, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.nemo");
        std::fs::copy(fixture("tdt.nemo"), &path).unwrap();
        let digest = sha256_file(&path).unwrap();
        (dir, path, digest)
    }

    #[test]
    fn a_verified_checksum_is_remembered_and_trusted_while_the_file_is_unchanged() {
        let (_dir, path, digest) = model_copy();
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = ChecksumCache::new(cache_dir.path().join("warble"));
        let verify = || verify(&cache, &path, &digest);
        assert_eq!(verify(), Verified::Hashed);
        assert!(cache.records_path().is_file());
        assert_eq!(verify(), Verified::Remembered);
        // Upper case pins are the same pin.
        assert_eq!(
            cache
                .verify_with_margin(&path, &digest.to_uppercase(), 0)
                .unwrap(),
            Verified::Remembered
        );
    }

    /// A file rewritten with the same size and given back its modification time is hashed
    /// again (its change time moved) and refused.
    #[test]
    fn a_file_changed_behind_its_record_is_hashed_again_and_refused() {
        let (_dir, path, digest) = model_copy();
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = ChecksumCache::new(cache_dir.path());
        assert_eq!(verify(&cache, &path, &digest), Verified::Hashed);
        let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(modified)
            .unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().len() as usize,
            bytes.len()
        );
        match cache.verify_with_margin(&path, &digest, 0) {
            Err(Error::ChecksumMismatch { .. }) => {}
            other => panic!("a changed file passed: {other:?}"),
        }
    }

    /// A file replaced by an identical copy (new inode) is hashed again, and passes.
    #[test]
    fn a_replaced_file_is_hashed_again() {
        let (dir, path, digest) = model_copy();
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = ChecksumCache::new(cache_dir.path());
        assert_eq!(verify(&cache, &path, &digest), Verified::Hashed);
        let copy = dir.path().join("copy.nemo");
        std::fs::copy(&path, &copy).unwrap();
        std::fs::rename(&copy, &path).unwrap();
        assert_eq!(verify(&cache, &path, &digest), Verified::Hashed);
        assert_eq!(verify(&cache, &path, &digest), Verified::Remembered);
    }

    /// A different pin is never vouched for by the record of another.
    #[test]
    fn a_different_pin_is_checked_against_the_file() {
        let (_dir, path, digest) = model_copy();
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = ChecksumCache::new(cache_dir.path());
        verify(&cache, &path, &digest);
        let wrong = "0".repeat(64);
        match cache.verify_with_margin(&path, &wrong, 0) {
            Err(Error::ChecksumMismatch { actual, .. }) => assert_eq!(actual, digest),
            other => panic!("a wrong pin passed: {other:?}"),
        }
    }

    /// A record file that is damaged (a crash of another writer, a full disk) is ignored and
    /// replaced by a good one.
    #[test]
    fn a_corrupt_record_file_is_ignored_and_replaced() {
        let (_dir, path, digest) = model_copy();
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = ChecksumCache::new(cache_dir.path());
        for junk in [&b"{\"version\": 1, \"files\": {"[..], b"\0\0\0", b""] {
            std::fs::write(cache.records_path(), junk).unwrap();
            assert_eq!(verify(&cache, &path, &digest), Verified::Hashed);
            assert_eq!(verify(&cache, &path, &digest), Verified::Remembered);
        }
    }

    /// A cache that cannot be written (here: its directory would be inside a file) costs only
    /// the hash.
    #[test]
    fn an_unwritable_cache_still_verifies() {
        let (dir, path, digest) = model_copy();
        let cache = ChecksumCache::new(path.join("not-a-directory"));
        for _ in 0..2 {
            assert_eq!(verify(&cache, &path, &digest), Verified::Hashed);
        }
        let checkpoint = read_with(&path, Some(&digest), Some(&cache)).unwrap();
        assert!(!checkpoint.tensors.is_empty());
        drop(dir);
    }

    /// A file that changed within [`RACY_SECS`] of its hash is not remembered: a coarse
    /// timestamp might not show a write made right after.
    #[test]
    fn a_file_changed_just_before_its_hash_is_not_remembered() {
        let (_dir, path, digest) = model_copy();
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = ChecksumCache::new(cache_dir.path());
        for _ in 0..2 {
            assert_eq!(cache.verify(&path, &digest).unwrap(), Verified::Hashed);
        }
        assert!(!cache.records_path().exists());
    }

    /// Records of files that are gone are dropped when the record file is written.
    #[test]
    fn records_of_deleted_files_are_dropped() {
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = ChecksumCache::new(cache_dir.path());
        let (dir, path, digest) = model_copy();
        verify(&cache, &path, &digest);
        drop(dir);
        let (_dir, path, digest) = model_copy();
        verify(&cache, &path, &digest);
        assert_eq!(cache.load().files.len(), 1);
    }
}
