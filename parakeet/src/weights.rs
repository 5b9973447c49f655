//! Reading weights where they lie: each tensor's bytes read straight from the model file into
//! the tensor's own buffer, with no temporary copy of the file and no memory map.
//!
//! A `.nemo` archive is a tar (NeMo writes it uncompressed) holding `model_weights.ckpt`, a
//! PyTorch zip whose entries are stored uncompressed. So every tensor is a contiguous run of
//! bytes at a fixed offset of the `.nemo` file: the offsets come from the tar and zip headers
//! and the small pickled `data.pkl`, then the tensors are read with positioned reads: all at
//! once in parallel ([`read_tensors`]), or one by one as the layers take them ([`read_one`],
//! what [`crate::Parakeet::load`] does through [`crate::checkpoint::open_with`]). A
//! safetensors file (MLX conversions) is the same thing with a JSON header.
//!
//! Reading into the tensors' own buffers keeps the process's memory at the weights alone: a
//! memory map would add the file's pages to the resident set while the tensors are copied out
//! of it, and `std::fs::read` would hold the whole file next to them.
//!
//! Measured on the 0.6B TDT architecture (2.4 GB `.nemo`, 2 cores, warm page cache): the old
//! path (state dict copied out of the tar to a temporary file, then candle's pickle reader)
//! took 4.2-5.0 s before the layers were built; reading in place as the layers take them loads
//! the whole model in 1.6-1.8 s at a peak of 1.08x the weights.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use candle_core::pickle::{Object, Stack};
use candle_core::{DType, Device, Tensor, WithDType};
use rayon::prelude::*;

use crate::error::{Error, Result};

/// Where one tensor's bytes lie in a file.
#[derive(Debug, Clone)]
pub(crate) struct StoredTensor {
    /// State-dict name.
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
    /// Byte offset of the first element in the file.
    pub offset: u64,
    /// Stored column-major (a transposed PyTorch tensor saved as it was): read with the shape
    /// reversed, then permuted back.
    pub fortran: bool,
}

impl StoredTensor {
    fn bytes(&self) -> u64 {
        (self.shape.iter().product::<usize>() * self.dtype.size_in_bytes()) as u64
    }
}

/// A `.nemo` archive's config text and where its tensors lie.
pub(crate) struct NemoLayout {
    /// `model_config.yaml`.
    pub config: String,
    pub tensors: Vec<StoredTensor>,
}

/// Reads `tensors` from `file` (the file at `path`), in parallel, on the CPU.
///
/// The buffers are allocated here, on the caller's thread, in file order, and only filled by
/// the reading threads. glibc's `malloc` gives each thread its own arena, and a process that
/// keeps freed memory ([`crate::memory::retain_freed_memory`]) would otherwise hold the
/// originals of the weights the layers rearrange at load time (the stacked attention
/// projections, the transposed convolutions) in the reading threads' arenas, where the
/// loading thread can never reuse them: half a model more of resident memory. Allocated on the
/// loading thread, neighbouring originals freed by one layer make room for the next layer's
/// copies, and the peak stays at the weights plus one layer.
pub(crate) fn read_tensors(
    path: &Path,
    file: &File,
    tensors: Vec<StoredTensor>,
) -> Result<HashMap<String, Tensor>> {
    let fail = |message: String| Error::ModelFile {
        path: path.to_path_buf(),
        message,
    };
    check_bounds(path, file, &tensors)?;
    let mut buffers: Vec<Buffer> = tensors.iter().map(Buffer::for_tensor).collect();
    buffers
        .par_iter_mut()
        .zip(tensors.par_iter())
        .try_for_each(|(buffer, t)| {
            read_exact_at(file, buffer.bytes_mut(), t.offset)
                .map_err(|e| fail(format!("reading tensor {}: {e}", t.name)))
        })?;
    tensors
        .into_iter()
        .zip(buffers)
        .map(|(t, buffer)| {
            let tensor = buffer
                .into_tensor(&t)
                .map_err(|e| fail(format!("tensor {}: {e}", t.name)))?;
            Ok((t.name, tensor))
        })
        .collect()
}

/// Refuses tensors that would lie past the end of `file`.
pub(crate) fn check_bounds(path: &Path, file: &File, tensors: &[StoredTensor]) -> Result<()> {
    let fail = |message: String| Error::ModelFile {
        path: path.to_path_buf(),
        message,
    };
    let len = file.metadata().map_err(|e| fail(e.to_string()))?.len();
    match tensors
        .iter()
        .find(|t| t.offset.checked_add(t.bytes()).is_none_or(|end| end > len))
    {
        Some(t) => Err(fail(format!(
            "tensor {} lies past the end of the file (truncated?)",
            t.name
        ))),
        None => Ok(()),
    }
}

/// One tensor, read from `file` on the calling thread.
pub(crate) fn read_one(file: &File, t: &StoredTensor) -> candle_core::Result<Tensor> {
    let mut buffer = Buffer::for_tensor(t);
    read_exact_at(file, buffer.bytes_mut(), t.offset)?;
    buffer.into_tensor(t)
}

/// A tensor's buffer, of its element type where candle can take it without a copy.
enum Buffer {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    U32(Vec<u32>),
    U8(Vec<u8>),
    /// Half floats and the rest: bytes, copied into a tensor (one more copy, small models).
    Raw(Vec<u8>),
}

impl Buffer {
    fn for_tensor(t: &StoredTensor) -> Self {
        let n = t.shape.iter().product::<usize>();
        match t.dtype {
            DType::F32 => Self::F32(vec![0.0; n]),
            DType::F64 => Self::F64(vec![0.0; n]),
            DType::I64 => Self::I64(vec![0; n]),
            DType::U32 => Self::U32(vec![0; n]),
            DType::U8 => Self::U8(vec![0; n]),
            _ => Self::Raw(vec![0; t.bytes() as usize]),
        }
    }

    /// The buffer's bytes, to be filled.
    fn bytes_mut(&mut self) -> &mut [u8] {
        fn bytes<T: WithDType>(data: &mut [T]) -> &mut [u8] {
            // SAFETY: the element types candle stores are plain numbers: every byte pattern
            // is a valid value, and bytes have no alignment to keep. The slice covers exactly
            // the initialized elements and borrows them mutably.
            unsafe {
                std::slice::from_raw_parts_mut(
                    data.as_mut_ptr().cast::<u8>(),
                    std::mem::size_of_val(data),
                )
            }
        }
        match self {
            Self::F32(v) => bytes(v),
            Self::F64(v) => bytes(v),
            Self::I64(v) => bytes(v),
            Self::U32(v) => bytes(v),
            Self::U8(v) | Self::Raw(v) => v,
        }
    }

    fn into_tensor(self, t: &StoredTensor) -> candle_core::Result<Tensor> {
        let shape: Vec<usize> = if t.fortran {
            t.shape.iter().rev().copied().collect()
        } else {
            t.shape.clone()
        };
        let cpu = &Device::Cpu;
        let tensor = match self {
            Self::F32(v) => Tensor::from_vec(v, shape.as_slice(), cpu),
            Self::F64(v) => Tensor::from_vec(v, shape.as_slice(), cpu),
            Self::I64(v) => Tensor::from_vec(v, shape.as_slice(), cpu),
            Self::U32(v) => Tensor::from_vec(v, shape.as_slice(), cpu),
            Self::U8(v) => Tensor::from_vec(v, shape.as_slice(), cpu),
            Self::Raw(v) => Tensor::from_raw_buffer(&v, t.dtype, &shape, cpu),
        }?;
        if t.fortran && shape.len() > 1 {
            let reversed: Vec<usize> = (0..shape.len()).rev().collect();
            tensor.permute(reversed)
        } else {
            Ok(tensor)
        }
    }
}

/// Fills `buf` from `offset` of `file`, without moving a shared cursor (threads read at once).
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
    }
    #[cfg(windows)]
    {
        let (mut buf, mut offset) = (buf, offset);
        while !buf.is_empty() {
            match std::os::windows::fs::FileExt::seek_read(file, buf, offset)? {
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                n => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
            }
        }
        Ok(())
    }
}

/// Where the tensors of the `.nemo` archive `file` lie, or `None` when they cannot be read in
/// place: a gzipped archive, or a state dict with compressed entries (the caller then unpacks
/// it). Errors are for archives that are damaged or no NeMo checkpoint.
pub(crate) fn nemo_layout(path: &Path, file: &File) -> Result<Option<NemoLayout>> {
    let fail = |message: String| Error::ModelFile {
        path: path.to_path_buf(),
        message,
    };
    let mut magic = [0u8; 2];
    if read_exact_at(file, &mut magic, 0).is_ok() && magic == [0x1f, 0x8b] {
        return Ok(None);
    }
    let mut reader = file;
    reader
        .seek(SeekFrom::Start(0))
        .map_err(|e| fail(e.to_string()))?;
    let mut archive = tar::Archive::new(reader);
    let entries = archive
        .entries_with_seek()
        .map_err(|e| fail(format!("not a tar archive: {e}")))?;
    let (config, weights) = scan_nemo(entries, &fail, |entry, _| {
        Ok((entry.raw_file_position(), entry.size()))
    })?;
    let config = config.ok_or_else(|| fail("archive has no model_config.yaml".into()))?;
    let (start, size) = weights.ok_or_else(|| fail("archive has no model_weights.ckpt".into()))?;
    let window = Window {
        file,
        start,
        len: size,
        pos: 0,
    };
    let tensors =
        pth_layout(window, start).map_err(|e| fail(format!("model_weights.ckpt: {e}")))?;
    Ok(tensors.map(|tensors| NemoLayout { config, tensors }))
}

/// Walks the entries of a `.nemo` tar: the text of `model_config.yaml`, and what `on_weights`
/// makes of the `model_weights.ckpt` entry (given with its name), each `None` if absent.
pub(crate) fn scan_nemo<'a, R: 'a + Read, W>(
    entries: tar::Entries<'a, R>,
    fail: &dyn Fn(String) -> Error,
    mut on_weights: impl FnMut(&mut tar::Entry<'a, R>, &str) -> Result<W>,
) -> Result<(Option<String>, Option<W>)> {
    let (mut config, mut weights) = (None, None);
    for entry in entries {
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
            config = Some(text);
        } else if name.ends_with("model_weights.ckpt") {
            weights = Some(on_weights(&mut entry, &name)?);
        }
    }
    Ok((config, weights))
}

/// The tensors of a PyTorch zip checkpoint that starts at byte `start` of its file, as
/// candle's `read_pth_tensor_info` finds them; `None` if an entry is compressed.
fn pth_layout(window: Window<'_>, start: u64) -> candle_core::Result<Option<Vec<StoredTensor>>> {
    let window_len = window.len;
    let mut zip = zip::ZipArchive::new(window)?;
    let pickles: Vec<String> = zip
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.into_owned()))
        .filter(|n| n.ends_with("data.pkl"))
        .collect();
    let mut infos = Vec::new();
    for pickle in pickles {
        let dir = Path::new(pickle.strip_suffix(".pkl").expect("ends with .pkl")).to_path_buf();
        let mut reader = std::io::BufReader::new(zip.by_name(&pickle)?);
        let mut stack = Stack::empty();
        stack.read_loop(&mut reader)?;
        drop(reader);
        let object = match stack.finalize()? {
            // A scripted module's state: its arguments hold the dict.
            Object::Build { callable, args } => match *callable {
                Object::Reduce { callable, args: _ } => match *callable {
                    Object::Class {
                        module_name,
                        class_name,
                    } if module_name == "__torch__" && class_name == "Module" => *args,
                    _ => continue,
                },
                _ => continue,
            },
            object => object,
        };
        if let Object::Dict(entries) = object {
            for (name, value) in entries {
                if let Some(info) = value.into_tensor_info(name, &dir)? {
                    infos.push(info);
                }
            }
        }
    }
    // Each storage is one zip entry; several tensors may share it.
    let mut entries: HashMap<String, (u64, u64)> = HashMap::new();
    let mut tensors = Vec::with_capacity(infos.len());
    for info in infos {
        let (data_start, entry_size) = match entries.get(&info.path) {
            Some(&found) => found,
            None => {
                let entry = zip.by_name(&info.path)?;
                if entry.compression() != zip::CompressionMethod::Stored {
                    return Ok(None);
                }
                let found = (
                    entry.data_start().ok_or_else(|| {
                        candle_core::Error::Msg(format!("{}: no data offset", info.path))
                    })?,
                    entry.size(),
                );
                if found
                    .0
                    .checked_add(found.1)
                    .is_none_or(|end| end > window_len)
                {
                    candle_core::bail!("{}: entry runs past the state dict", info.path);
                }
                entries.insert(info.path.clone(), found);
                found
            }
        };
        let layout = &info.layout;
        let fortran = !layout.is_contiguous() && layout.is_fortran_contiguous();
        if !layout.is_contiguous() && !fortran {
            candle_core::bail!(
                "{}: cannot read a non-contiguous tensor {layout:?}",
                info.name
            );
        }
        let stored = StoredTensor {
            name: info.name,
            dtype: info.dtype,
            shape: layout.dims().to_vec(),
            offset: start + data_start + layout.start_offset() as u64,
            fortran,
        };
        if layout.start_offset() as u64 + stored.bytes() > entry_size {
            candle_core::bail!("{}: tensor runs past its storage", stored.name);
        }
        tensors.push(stored);
    }
    Ok(Some(tensors))
}

/// Part of a file, `[start, start + len)`, as a file of its own (the zip inside the tar).
struct Window<'a> {
    file: &'a File,
    start: u64,
    len: u64,
    pos: u64,
}

impl Read for Window<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let n = (buf.len() as u64).min(left) as usize;
        if n == 0 {
            return Ok(0);
        }
        read_exact_at(self.file, &mut buf[..n], self.start + self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Window<'_> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        Ok(self.pos)
    }
}

/// Where the tensors of the safetensors file `file` lie, from its header.
pub(crate) fn safetensors_layout(path: &Path, file: &File) -> Result<Vec<StoredTensor>> {
    let fail = |message: String| Error::ModelFile {
        path: path.to_path_buf(),
        message,
    };
    let mut len = [0u8; 8];
    read_exact_at(file, &mut len, 0).map_err(|e| fail(format!("safetensors header: {e}")))?;
    let header_len = u64::from_le_bytes(len);
    let file_len = file.metadata().map_err(|e| fail(e.to_string()))?.len();
    if header_len > 100 << 20 || 8 + header_len > file_len {
        return Err(fail(format!("safetensors header of {header_len} bytes")));
    }
    let mut header = vec![0u8; header_len as usize];
    read_exact_at(file, &mut header, 8).map_err(|e| fail(format!("safetensors header: {e}")))?;
    #[derive(serde::Deserialize)]
    struct Entry {
        dtype: String,
        shape: Vec<usize>,
        data_offsets: (u64, u64),
    }
    let entries: HashMap<String, serde_json::Value> =
        serde_json::from_slice(&header).map_err(|e| fail(format!("safetensors header: {e}")))?;
    let data_start = 8 + header_len;
    entries
        .into_iter()
        .filter(|(name, _)| name != "__metadata__")
        .map(|(name, value)| {
            let entry: Entry = serde_json::from_value(value)
                .map_err(|e| fail(format!("safetensors header, {name}: {e}")))?;
            let dtype = match entry.dtype.as_str() {
                "F32" => DType::F32,
                "F16" => DType::F16,
                "BF16" => DType::BF16,
                "F64" => DType::F64,
                "I64" => DType::I64,
                "I32" => DType::I32,
                "I16" => DType::I16,
                "U32" => DType::U32,
                "U8" => DType::U8,
                other => return Err(fail(format!("{name}: unsupported dtype {other}"))),
            };
            let stored = StoredTensor {
                name,
                dtype,
                shape: entry.shape,
                offset: data_start + entry.data_offsets.0,
                fortran: false,
            };
            let (begin, end) = entry.data_offsets;
            if end.checked_sub(begin) != Some(stored.bytes()) {
                return Err(fail(format!(
                    "{}: {} bytes for shape {:?}",
                    stored.name,
                    end.saturating_sub(begin),
                    stored.shape
                )));
            }
            Ok(stored)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The MLX fixture's safetensors read in place give what candle's own reader gives.
    #[test]
    fn safetensors_read_in_place_match_candles_reader() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/models/hybrid-mlx/model.safetensors");
        let file = File::open(&path).unwrap();
        let ours = read_tensors(&path, &file, safetensors_layout(&path, &file).unwrap()).unwrap();
        let theirs = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
        assert_eq!(ours.len(), theirs.len());
        for (name, t) in &theirs {
            let o = &ours[name];
            assert_eq!((o.dtype(), o.dims()), (t.dtype(), t.dims()), "{name}");
            let flat = |t: &Tensor| {
                t.flatten_all()
                    .unwrap()
                    .to_dtype(DType::F64)
                    .unwrap()
                    .to_vec1::<f64>()
                    .unwrap()
            };
            assert_eq!(flat(o), flat(t), "{name}");
        }
    }

    /// A safetensors file cut short is refused, not read past its end.
    #[test]
    fn a_truncated_safetensors_file_is_refused() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/models/hybrid-mlx/model.safetensors");
        let bytes = std::fs::read(&path).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cut = dir.path().join("model.safetensors");
        std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
        let file = File::open(&cut).unwrap();
        let layout = safetensors_layout(&cut, &file).unwrap();
        assert!(matches!(
            read_tensors(&cut, &file, layout),
            Err(Error::ModelFile { .. })
        ));
        std::fs::write(&cut, &bytes[..4]).unwrap();
        assert!(safetensors_layout(&cut, &File::open(&cut).unwrap()).is_err());
    }
}
