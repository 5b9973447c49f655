//! Writing a benchmark's results into `docs/benchmarks.md`, shared by the benchmarks of every
//! crate (included with `#[path]`, as the crates do not depend on each other).

use std::path::Path;

/// Replaces the text between the `<!-- {name}:start -->` and `<!-- {name}:end -->` markers of
/// `path` with `section`, appending the markers if they are absent. A relative `path` is
/// taken from the workspace root (cargo runs benchmarks in their crate's directory).
pub fn write_section(path: &Path, name: &str, section: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let path = &root.join(path);
    let (start, end) = (
        format!("<!-- {name}:start -->"),
        format!("<!-- {name}:end -->"),
    );
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let block = format!("{start}\n{section}{end}");
    let updated = match (text.find(&start), text.find(&end)) {
        (Some(a), Some(b)) if a < b => format!("{}{block}{}", &text[..a], &text[b + end.len()..]),
        _ => format!("{text}\n{block}\n"),
    };
    std::fs::write(path, updated).unwrap();
    println!("wrote {}", path.display());
}
