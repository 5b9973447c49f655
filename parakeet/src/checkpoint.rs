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

/// A checkpoint in memory: its config and its weights under NeMo's names, on the CPU.
#[derive(Debug)]
pub struct Checkpoint {
    /// The model's own configuration.
    pub config: ModelConfig,
    /// Weights by NeMo state-dict name.
    pub tensors: HashMap<String, Tensor>,
    /// The file the weights came from (the `.nemo` archive or `model.safetensors`).
    pub weights_file: PathBuf,
}

impl Checkpoint {
    /// A `VarBuilder` that hands each weight out once and forgets it.
    ///
    /// The layers keep the tensors they are given, and some replace them at load time with
    /// rearranged copies (stacked or pre-scaled matrices). Letting go of the checkpoint's
    /// reference as each weight is taken frees the originals of those copies at once, and the
    /// host copies of weights moved to a GPU, so loading never holds the model twice.
    pub fn into_var_builder(self, device: &Device) -> (ModelConfig, VarBuilder<'static>) {
        (self.config, take_once(self.tensors, device))
    }
}

/// A `VarBuilder` over `tensors` that hands each weight out once (see
/// [`Checkpoint::into_var_builder`]).
pub(crate) fn take_once(tensors: HashMap<String, Tensor>, device: &Device) -> VarBuilder<'static> {
    VarBuilder::from_backend(
        Box::new(TakeOnce(Mutex::new(tensors))),
        DType::F32,
        device.clone(),
    )
}

/// The weights behind [`Checkpoint::into_var_builder`].
struct TakeOnce(Mutex<HashMap<String, Tensor>>);

impl TakeOnce {
    fn take(&self, name: &str) -> candle_core::Result<Tensor> {
        self.0
            .lock()
            .expect("no panic while the lock is held")
            .remove(name)
            .ok_or_else(|| candle_core::Error::CannotFindTensor {
                path: name.to_string(),
            })
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
        self.0
            .lock()
            .expect("no panic while the lock is held")
            .contains_key(name)
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
pub fn read(path: &Path, sha256: Option<&str>) -> Result<Checkpoint> {
    let weights_file = weights_file(path)?;
    if let Some(expected) = sha256 {
        verify_sha256(&weights_file, expected)?;
    }
    if weights_file.extension().is_some_and(|e| e == "safetensors") {
        crate::mlx::read(&weights_file)
    } else {
        read_nemo(&weights_file)
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
/// state dict `model_weights.ckpt`. The state dict is unpacked to a temporary file because
/// PyTorch checkpoints are zip files that need random access.
pub(crate) fn read_archive(path: &Path) -> Result<Archive> {
    let fail = |message: String| Error::ModelFile {
        path: path.to_path_buf(),
        message,
    };
    let mut file = File::open(path).map_err(|e| fail(e.to_string()))?;
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
    let mut config_text = None;
    let mut weights = None;
    for entry in archive
        .entries()
        .map_err(|e| fail(format!("not a tar archive: {e}")))?
    {
        let mut entry = entry.map_err(|e| fail(format!("corrupt archive: {e}")))?;
        let name = entry
            .path()
            .map_err(|e| fail(e.to_string()))?
            .to_string_lossy()
            .into_owned();
        if name.ends_with("model_config.yaml") {
            let mut text = String::new();
            entry
                .read_to_string(&mut text)
                .map_err(|e| fail(format!("{name}: {e}")))?;
            config_text = Some(text);
        } else if name.ends_with("model_weights.ckpt") {
            let mut tmp =
                tempfile::NamedTempFile::new().map_err(|e| fail(format!("temporary file: {e}")))?;
            std::io::copy(&mut entry, &mut tmp).map_err(|e| fail(format!("{name}: {e}")))?;
            weights = Some(tmp);
        }
    }
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
