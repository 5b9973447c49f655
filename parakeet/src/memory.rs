//! Process-wide memory settings that suit the engine.
//!
//! Every tensor operation on the CPU writes into a freshly allocated buffer, megabytes each for
//! the 0.6B models (a minute of audio makes 18 MB attention matrices). glibc's `malloc` serves
//! blocks that large with `mmap` and hands them back to the kernel on `free`, so each operation
//! paid for page faults and the kernel's zeroing of every page again: a third of the encoder's
//! time on a 2-core machine. jemalloc and mimalloc were measured too; both still fault, because
//! they return pages to the kernel to get zeroed memory for `calloc`.

/// Makes glibc's `malloc` keep freed memory in the process for reuse instead of returning it to
/// the kernel: no `mmap` for large blocks, no trimming of the heap.
///
/// Call it once at the start of a program that runs the engine, before any thread starts. The
/// process then keeps its high-water mark of memory, which for a worker that transcribes job
/// after job is what it needs anyway. Measured on 60 s of audio through the 0.6B architecture:
/// encoder 17.4 s before, 11.8 s after, on 2 threads. Does nothing outside glibc.
pub fn retain_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only changes allocator parameters; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
    }
}

/// Memory of `device` in bytes, `(used, total)`: on CUDA the device's memory in use (by every
/// process) and its size, from the driver (`cuMemGetInfo`); on the CPU this process's resident
/// memory and the machine's (`/proc`). `None` where it cannot be read (Metal: candle 0.11 does
/// not expose its allocator's figures; a CPU outside Linux).
pub fn device_memory(device: &candle_core::Device) -> Option<(u64, u64)> {
    match device {
        candle_core::Device::Cpu => cpu_memory(),
        #[cfg(feature = "cuda")]
        candle_core::Device::Cuda(cuda) => {
            let (free, total) = cuda.cuda_stream().context().mem_get_info().ok()?;
            Some(((total - free) as u64, total as u64))
        }
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// `VmRSS` of this process and `MemTotal` of the machine.
fn cpu_memory() -> Option<(u64, u64)> {
    let kib = |file: &str, key: &str| -> Option<u64> {
        let text = std::fs::read_to_string(file).ok()?;
        let line = text.lines().find(|l| l.starts_with(key))?;
        Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
    };
    Some((
        kib("/proc/self/status", "VmRSS:")?,
        kib("/proc/meminfo", "MemTotal:")?,
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(target_os = "linux")]
    fn cpu_memory_is_read_from_proc() {
        let (used, total) = super::device_memory(&candle_core::Device::Cpu).unwrap();
        assert!(used > 1 << 20 && used < total, "{used} of {total}");
    }
}
