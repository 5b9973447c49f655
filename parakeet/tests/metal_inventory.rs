//! Keeps `docs/metal.md` true: every candle operation the engine's source calls must have a row
//! there, and none of the operations that page lists under "Not used" may appear.
//!
//! The check reads text, it does not compile anything: `parakeet/src/**/*.rs` is stripped of
//! comments, string and character literals and `#[cfg(test)]` items, cut into tokens, and
//! searched for the call forms of a fixed list of candle names ([`KNOWN`]): a method call
//! (`.matmul(`, `.to_vec1::<u32>(`), a path call (`Tensor::cat(`, `candle_nn::ops::sigmoid(`)
//! or a type (`Linear`). The page's table rows name operations in backticks in their first
//! cell. What it cannot see: operators between tensors (`a + b`, `x * 0.5`, documented by hand
//! on the page) and the type of a receiver, so a name used on plain numbers (`x.tanh()` on an
//! `f32`) counts too; the page lists those as host-only.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// How a known name is recognised in the token stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// `.name(` or `.name::<...>(`.
    Method,
    /// `path::name(`.
    Path,
    /// The identifier anywhere (a candle-nn layer type).
    Type,
}

use Form::{Method, Path as PathCall, Type};

/// Candle tensor operations and candle-nn layers and functions that run kernels (or move data
/// between host and device), with the forms that count as a use.
const KNOWN: &[(&str, &[Form])] = &[
    // Products and convolutions.
    ("matmul", &[Method]),
    ("broadcast_matmul", &[Method]),
    ("conv1d", &[Method, PathCall]),
    ("conv2d", &[Method, PathCall]),
    ("conv_transpose1d", &[Method, PathCall]),
    ("conv_transpose2d", &[Method, PathCall]),
    ("avg_pool2d", &[Method]),
    ("max_pool2d", &[Method]),
    // Normalisation, activations and attention from candle-nn.
    ("softmax", &[PathCall]),
    ("softmax_last_dim", &[PathCall]),
    ("log_softmax", &[PathCall]),
    ("layer_norm", &[PathCall]),
    ("rms_norm", &[PathCall]),
    ("batch_norm", &[PathCall]),
    ("sdpa", &[PathCall]),
    ("sigmoid", &[Method, PathCall]),
    ("silu", &[Method, PathCall]),
    ("swiglu", &[PathCall]),
    ("linear", &[PathCall]),
    ("linear_b", &[PathCall]),
    ("linear_no_bias", &[PathCall]),
    ("embedding", &[PathCall]),
    ("lstm", &[PathCall]),
    ("Linear", &[Type]),
    ("LayerNorm", &[Type]),
    ("RmsNorm", &[Type]),
    ("Conv1d", &[Type]),
    ("Conv2d", &[Type]),
    ("Embedding", &[Type]),
    ("LSTM", &[Type]),
    ("GRU", &[Type]),
    // Element-wise unary.
    ("relu", &[Method]),
    ("gelu", &[Method]),
    ("gelu_erf", &[Method]),
    ("elu", &[Method]),
    ("tanh", &[Method]),
    ("exp", &[Method]),
    ("log", &[Method]),
    ("sqrt", &[Method]),
    ("sqr", &[Method]),
    ("abs", &[Method]),
    ("neg", &[Method]),
    ("recip", &[Method]),
    ("sin", &[Method]),
    ("cos", &[Method]),
    ("erf", &[Method]),
    ("powf", &[Method]),
    ("ceil", &[Method]),
    ("floor", &[Method]),
    ("round", &[Method]),
    ("affine", &[Method]),
    ("clamp", &[Method]),
    // Element-wise binary and comparisons.
    ("add", &[Method]),
    ("sub", &[Method]),
    ("mul", &[Method]),
    ("div", &[Method]),
    ("maximum", &[Method]),
    ("minimum", &[Method]),
    ("broadcast_add", &[Method]),
    ("broadcast_sub", &[Method]),
    ("broadcast_mul", &[Method]),
    ("broadcast_div", &[Method]),
    ("broadcast_maximum", &[Method]),
    ("broadcast_minimum", &[Method]),
    ("eq", &[Method]),
    ("ne", &[Method]),
    ("lt", &[Method]),
    ("le", &[Method]),
    ("gt", &[Method]),
    ("ge", &[Method]),
    ("where_cond", &[Method]),
    ("masked_fill", &[Method, PathCall]),
    // Reductions.
    ("sum", &[Method]),
    ("sum_keepdim", &[Method]),
    ("sum_all", &[Method]),
    ("max", &[Method]),
    ("max_keepdim", &[Method]),
    ("max_all", &[Method]),
    ("min", &[Method]),
    ("min_keepdim", &[Method]),
    ("min_all", &[Method]),
    ("mean", &[Method]),
    ("mean_keepdim", &[Method]),
    ("mean_all", &[Method]),
    ("argmax", &[Method]),
    ("argmax_keepdim", &[Method]),
    ("argmin", &[Method]),
    ("argmin_keepdim", &[Method]),
    ("cumsum", &[Method]),
    ("arg_sort_last_dim", &[Method]),
    ("sort_last_dim", &[Method]),
    // Indexing.
    ("index_select", &[Method]),
    ("gather", &[Method]),
    ("scatter_add", &[Method]),
    ("index_add", &[Method]),
    ("slice_assign", &[Method]),
    ("slice_scatter", &[Method]),
    ("i", &[Method]),
    ("get", &[Method]),
    ("get_on_dim", &[Method]),
    // Layout: views and copies.
    ("narrow", &[Method]),
    ("chunk", &[Method]),
    ("cat", &[PathCall]),
    ("stack", &[PathCall]),
    ("pad_with_zeros", &[Method]),
    ("pad_with_same", &[Method]),
    ("transpose", &[Method]),
    ("t", &[Method]),
    ("permute", &[Method]),
    ("contiguous", &[Method]),
    ("reshape", &[Method]),
    ("squeeze", &[Method]),
    ("unsqueeze", &[Method]),
    ("flatten", &[Method]),
    ("flatten_all", &[Method]),
    ("flatten_to", &[Method]),
    ("flatten_from", &[Method]),
    ("broadcast_as", &[Method]),
    ("broadcast_left", &[Method]),
    ("expand", &[Method]),
    ("copy", &[Method]),
    // Dtype, device, creation and transfers.
    ("to_dtype", &[Method]),
    ("to_device", &[Method]),
    ("to_vec1", &[Method]),
    ("to_vec2", &[Method]),
    ("to_vec3", &[Method]),
    ("to_scalar", &[Method]),
    ("from_vec", &[PathCall]),
    ("from_slice", &[PathCall]),
    ("from_iter", &[PathCall]),
    ("zeros", &[PathCall]),
    ("ones", &[PathCall]),
    ("full", &[PathCall]),
    ("arange", &[PathCall]),
    ("zeros_like", &[Method]),
    ("ones_like", &[Method]),
    ("randn", &[PathCall]),
    ("rand", &[PathCall]),
    ("storage_and_layout", &[Method]),
    ("apply_op1", &[Method]),
    ("apply_op2", &[Method]),
    ("apply_op3", &[Method]),
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("parakeet/ sits in the workspace")
        .to_path_buf()
}

/// A token and the line it starts on.
#[derive(Debug, Clone, PartialEq)]
struct Token {
    text: String,
    line: usize,
}

/// Cuts Rust source into identifiers, `::` and single punctuation characters, dropping
/// whitespace, comments, numbers and string, byte-string, raw-string and character literals.
fn tokenize(src: &str) -> Vec<Token> {
    let chars: Vec<char> = src.chars().collect();
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            // Block comments nest in Rust.
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if (c == 'r' || (c == 'b' && at(i + 1) == 'r'))
            && matches!(at(i + 1 + usize::from(c == 'b')), '"' | '#')
            && {
                // A raw string: r"..", r#".."#, br"..".
                let mut j = i + 1 + usize::from(c == 'b');
                while at(j) == '#' {
                    j += 1;
                }
                at(j) == '"'
            }
        {
            let mut j = i + 1 + usize::from(c == 'b');
            let mut hashes = 0;
            while at(j) == '#' {
                hashes += 1;
                j += 1;
            }
            j += 1; // the opening quote
            loop {
                if j >= chars.len() {
                    break;
                }
                if chars[j] == '"' && (1..=hashes).all(|k| at(j + k) == '#') {
                    j += 1 + hashes;
                    break;
                }
                if chars[j] == '\n' {
                    line += 1;
                }
                j += 1;
            }
            i = j;
        } else if c == '"' || (c == 'b' && at(i + 1) == '"') {
            let mut j = i + if c == 'b' { 2 } else { 1 };
            while j < chars.len() && chars[j] != '"' {
                if chars[j] == '\\' {
                    j += 1;
                }
                if at(j) == '\n' {
                    line += 1;
                }
                j += 1;
            }
            i = j + 1;
        } else if c == '\'' || (c == 'b' && at(i + 1) == '\'') {
            let q = if c == 'b' { i + 1 } else { i };
            if at(q + 1) == '\\' {
                // An escaped character literal: '\n', '\'', '\u{..}'.
                let mut j = q + 2;
                while j < chars.len() && chars[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
            } else if at(q + 2) == '\'' {
                i = q + 3; // 'x'
            } else {
                i = q + 1; // a lifetime or label: drop the quote, keep the name
            }
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(Token {
                text: chars[start..i].iter().collect(),
                line,
            });
        } else if c.is_ascii_digit() {
            // Numbers, with suffixes and fractions (`1e-5f32`, `0.5`), but not ranges (`0..n`).
            while i < chars.len()
                && (chars[i].is_alphanumeric()
                    || chars[i] == '_'
                    || (chars[i] == '.' && at(i + 1).is_ascii_digit())
                    || ((chars[i] == '-' || chars[i] == '+')
                        && matches!(chars[i - 1], 'e' | 'E')
                        && at(i + 1).is_ascii_digit()))
            {
                i += 1;
            }
        } else if c == ':' && at(i + 1) == ':' {
            tokens.push(Token {
                text: "::".into(),
                line,
            });
            i += 2;
        } else {
            tokens.push(Token {
                text: c.to_string(),
                line,
            });
            i += 1;
        }
    }
    tokens
}

/// Drops every item behind `#[cfg(test)]`: up to the end of its braces, or its `;`.
fn without_test_items(tokens: Vec<Token>) -> Vec<Token> {
    let texts: Vec<&str> = tokens.iter().map(|t| t.text.as_str()).collect();
    let mut keep = vec![true; tokens.len()];
    let mut i = 0;
    while i < tokens.len() {
        if texts[i..].starts_with(&["#", "[", "cfg", "(", "test", ")", "]"]) {
            let mut j = i + 7;
            let mut depth = 0usize;
            while j < tokens.len() {
                match texts[j] {
                    "{" => depth += 1,
                    "}" => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            break;
                        }
                    }
                    ";" if depth == 0 => break,
                    _ => {}
                }
                j += 1;
            }
            keep[i..=j.min(tokens.len() - 1)].fill(false);
            i = j + 1;
        } else {
            i += 1;
        }
    }
    tokens
        .into_iter()
        .zip(keep)
        .filter_map(|(t, k)| k.then_some(t))
        .collect()
}

/// One use of a known name in the source.
#[derive(Debug, Clone)]
struct Use {
    name: &'static str,
    file: String,
    line: usize,
}

/// The known names `tokens` use, in the forms [`KNOWN`] gives them.
fn uses_in(file: &str, tokens: &[Token]) -> Vec<Use> {
    let text = |i: usize| tokens.get(i).map_or("", |t| t.text.as_str());
    let mut found = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        let Some(&(name, forms)) = KNOWN.iter().find(|(n, _)| *n == token.text) else {
            continue;
        };
        let before = if i > 0 { text(i - 1) } else { "" };
        let called = matches!(text(i + 1), "(" | "::");
        let hit = forms.iter().any(|form| match form {
            Method => before == "." && called,
            PathCall => before == "::" && called,
            Type => before != ".",
        });
        if hit {
            found.push(Use {
                name,
                file: file.to_string(),
                line: token.line,
            });
        }
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every use of a known name in `parakeet/src`, tests left out.
fn source_uses() -> Vec<Use> {
    let root = repo_root();
    let mut files = Vec::new();
    rust_files(&root.join("parakeet/src"), &mut files);
    assert!(!files.is_empty(), "no sources under parakeet/src");
    files
        .iter()
        .flat_map(|path| {
            let src = std::fs::read_to_string(path)
                .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            let rel = path
                .strip_prefix(&root)
                .unwrap_or(path)
                .display()
                .to_string();
            uses_in(&rel, &without_test_items(tokenize(&src)))
        })
        .collect()
}

/// The names in backticks in the first cell of each table row of `docs/metal.md`: those under a
/// heading containing "Not used", and all the others. `Tensor::cat` names `Tensor` and `cat`.
fn documented() -> (BTreeSet<String>, BTreeSet<String>) {
    let path = repo_root().join("docs/metal.md");
    let doc = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let (mut listed, mut absent) = (BTreeSet::new(), BTreeSet::new());
    let mut in_not_used = false;
    for line in doc.lines() {
        if line.starts_with('#') {
            in_not_used = line.to_ascii_lowercase().contains("not used");
            continue;
        }
        let Some(row) = line.trim().strip_prefix('|') else {
            continue;
        };
        let first = row.split('|').next().unwrap_or("");
        for (k, piece) in first.split('`').enumerate() {
            if k % 2 == 0 {
                continue; // outside backticks
            }
            let names = piece
                .trim_end_matches("()")
                .split("::")
                .map(|s| s.trim().trim_start_matches('.').to_string())
                .filter(|s| !s.is_empty());
            for name in names {
                if in_not_used {
                    absent.insert(name);
                } else {
                    listed.insert(name);
                }
            }
        }
    }
    (listed, absent)
}

#[test]
fn every_candle_operation_the_engine_calls_is_in_docs_metal_md() {
    let (listed, _) = documented();
    let uses = source_uses();
    let missing: Vec<String> = uses
        .iter()
        .filter(|u| !listed.contains(u.name))
        .map(|u| {
            format!(
                "{}:{}: `{}` is called but docs/metal.md has no row for it",
                u.file, u.line, u.name
            )
        })
        .collect();
    assert!(
        missing.is_empty(),
        "add a row to docs/metal.md (Metal backend function, kernel, dtypes) for:\n{}",
        missing.join("\n")
    );
}

#[test]
fn nothing_docs_metal_md_lists_as_not_used_is_called() {
    let (_, absent) = documented();
    assert!(
        absent.contains("conv1d"),
        "docs/metal.md should have a \"Not used\" section naming conv1d"
    );
    let called: Vec<String> = source_uses()
        .iter()
        .filter(|u| absent.contains(u.name))
        .map(|u| {
            format!(
                "{}:{}: `{}` is called, but docs/metal.md lists it as not used",
                u.file, u.line, u.name
            )
        })
        .collect();
    assert!(
        called.is_empty(),
        "move these to the table of used operations in docs/metal.md (with backend function, kernel and dtypes):\n{}",
        called.join("\n")
    );
}

/// The scanner itself: it must see calls in the forms it claims, and nothing in comments,
/// strings or test modules.
#[test]
fn the_scanner_sees_calls_and_ignores_comments_strings_and_tests() {
    let src = r##"
        use candle_nn::{Linear, VarBuilder};
        // x.conv1d(w)  /* y.gelu() */
        fn f(x: &Tensor) -> Result<Tensor> {
            let s = "z.where_cond(a, b)";
            let r = r#"q.gather(i, 0)"#;
            let c = '{';
            let l: &'static str = "";
            let y = Tensor::cat(&[x, x], 0)?.matmul(&x.t()?)?;
            let v = y.to_vec2::<u32>()?;
            let n = 1.5e-3f32.max(0.0);
            candle_nn::ops::softmax_last_dim(&y)
        }
        #[cfg(test)]
        mod tests {
            fn g(x: &Tensor) { x.argmax(0); { x.abs(); } }
        }
        fn h(x: &Tensor) { x.relu(); }
    "##;
    let uses = uses_in("t.rs", &without_test_items(tokenize(src)));
    let names: Vec<(&str, usize)> = uses.iter().map(|u| (u.name, u.line)).collect();
    assert_eq!(
        names,
        [
            ("Linear", 2),
            ("cat", 9),
            ("matmul", 9),
            ("t", 9),
            ("to_vec2", 10),
            ("max", 11),
            ("softmax_last_dim", 12),
            ("relu", 18),
        ]
    );
    // And the real tree is not silently empty.
    let real = source_uses();
    for name in ["matmul", "softmax_last_dim", "Linear"] {
        assert!(
            real.iter().any(|u| u.name == name),
            "the scanner found no `{name}` in parakeet/src"
        );
    }
}
