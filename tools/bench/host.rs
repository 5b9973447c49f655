//! What the benchmarks report about the machine and the processes they measure (Linux), shared
//! by the benchmarks of every crate (included with `#[path]`, like `section.rs`).

/// The CPU model and the number of cores this process may use.
pub fn cpu() -> (String, usize) {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    (model, cores)
}

/// A `kB` field of `/proc/<process>/status` (`process` is a pid or `self`), in bytes.
pub fn status_bytes(process: &str, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{process}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    let kb: u64 = line[field.len()..]
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap();
    kb * 1024
}
