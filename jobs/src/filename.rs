//! Uploaded file names, made safe to show.
//!
//! A name comes from the client and is only ever displayed (in the job, in a
//! `Content-Disposition` header) or used for its extension: storage keys and paths are made by
//! the server. Still, a name is shown to people and to other programs, so what could mislead
//! or break them is removed: directories (`../../etc/passwd`), control characters and newlines
//! (header and log injection), invisible formatting characters such as the right-to-left
//! override (`invoice\u{202E}vaw.exe` displays as `invoiceexe.wav`), quotes and backslashes
//! (quoted header parameters), leading dots (hidden files), and excess length.

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Longest kept name, in bytes (the common file-system limit).
pub const MAX_BYTES: usize = 255;

/// The displayable form of a client-supplied file name; `None` if nothing displayable is left.
pub fn sanitize(raw: &str) -> Option<String> {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .filter(|&c| !matches!(c, '"' | '\'' | '`'))
        .filter(|&c| {
            !matches!(
                c.general_category(),
                GeneralCategory::Control
                    | GeneralCategory::Format
                    | GeneralCategory::LineSeparator
                    | GeneralCategory::ParagraphSeparator
                    | GeneralCategory::Surrogate
                    | GeneralCategory::PrivateUse
                    | GeneralCategory::Unassigned
            )
        })
        .collect();
    let trimmed = cleaned.trim().trim_start_matches('.').trim_start();
    if trimmed.is_empty() {
        return None;
    }
    Some(shorten(trimmed))
}

/// The lowercased extension of a (sanitized) name: `"Talk.MP3"` gives `"mp3"`.
pub fn extension(name: &str) -> Option<String> {
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then(|| ext.to_ascii_lowercase())
}

/// Cuts `name` to [`MAX_BYTES`] on a character boundary, keeping a short extension.
fn shorten(name: &str) -> String {
    if name.len() <= MAX_BYTES {
        return name.to_string();
    }
    let ext = name
        .rsplit_once('.')
        .map(|(_, ext)| ext)
        .filter(|ext| ext.len() <= 16)
        .map_or(String::new(), |ext| format!(".{ext}"));
    let mut end = MAX_BYTES - ext.len();
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ext}", name[..end].trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_ordinary_names() {
        assert_eq!(
            sanitize("Interview 3 (final).mp3").as_deref(),
            Some("Interview 3 (final).mp3")
        );
        assert_eq!(
            sanitize("Réunion — été.m4a").as_deref(),
            Some("Réunion — été.m4a")
        );
        assert_eq!(sanitize("会议记录.wav").as_deref(), Some("会议记录.wav"));
    }

    #[test]
    fn drops_directories_and_traversal() {
        assert_eq!(sanitize("../../etc/passwd").as_deref(), Some("passwd"));
        assert_eq!(
            sanitize("C:\\Users\\me\\talk.wav").as_deref(),
            Some("talk.wav")
        );
        assert_eq!(sanitize("..").as_deref(), None);
        assert_eq!(sanitize("a/b/").as_deref(), None);
        assert_eq!(sanitize(".bashrc").as_deref(), Some("bashrc"));
    }

    #[test]
    fn drops_what_breaks_headers_logs_and_display() {
        assert_eq!(
            sanitize("a\r\nSet-Cookie: x.wav").as_deref(),
            Some("aSet-Cookie: x.wav")
        );
        assert_eq!(sanitize("say \"hi\".wav").as_deref(), Some("say hi.wav"));
        assert_eq!(
            sanitize("invoice\u{202E}vaw.exe").as_deref(),
            Some("invoicevaw.exe")
        );
        assert_eq!(
            sanitize("a\u{0}b\u{7}\u{1b}[31m.wav").as_deref(),
            Some("ab[31m.wav")
        );
        assert_eq!(
            sanitize("zero\u{200B}width\u{2028}.ogg").as_deref(),
            Some("zerowidth.ogg")
        );
        assert_eq!(sanitize("\u{202E}\u{0}\n").as_deref(), None);
    }

    #[test]
    fn cuts_long_names_on_a_character_boundary_keeping_the_extension() {
        let long = format!("{}.flac", "é".repeat(400));
        let short = sanitize(&long).unwrap();
        assert!(short.len() <= MAX_BYTES, "{}", short.len());
        assert!(short.ends_with("é.flac"));
        let no_ext = "x".repeat(1000);
        assert_eq!(sanitize(&no_ext).unwrap().len(), MAX_BYTES);
    }

    #[test]
    fn extensions_are_lowercased_and_need_a_stem() {
        assert_eq!(extension("Talk.MP3").as_deref(), Some("mp3"));
        assert_eq!(extension("archive.tar.gz").as_deref(), Some("gz"));
        assert_eq!(extension("noext"), None);
        assert_eq!(extension("trailing."), None);
    }
}
