//! Fetching a model from the Hugging Face Hub, and saying plainly why a fetch failed.
//!
//! A failed download is often the first thing a new user meets (the default model is a 2.5 GB
//! download), so [`HubError`] names the repository, each URL tried (once), the cause in words and
//! what to do about it. hf-hub's own `Display` does not serve for this: a transport error prints
//! its URL twice and leaves the cause (DNS, refused connection, TLS) in the source chain.

use std::error::Error as StdError;
use std::fmt;
use std::path::{Path, PathBuf};

use hf_hub::{HFClient, HFClientSync, HFError};

use crate::error::{Error, Result};

/// Downloads (or finds in the cache) `{name}.nemo`, or else the MLX pair `config.json` +
/// `model.safetensors`, and returns the `.nemo` file or the directory holding the pair.
///
/// The client is configured from the environment as `huggingface_hub` is: `HF_ENDPOINT`,
/// `HF_TOKEN`, `HF_HOME` / `HF_HUB_CACHE`, and `HF_HUB_OFFLINE` (the cache only).
///
/// # Errors
///
/// [`Error::Hub`] with a [`HubError`] when neither layout can be fetched.
pub(crate) fn fetch(owner: &str, name: &str) -> Result<PathBuf> {
    let client = HFClient::new().map_err(|e| {
        // A malformed `HF_ENDPOINT` fails here (or, hardly ever, building the HTTP client).
        let endpoint = std::env::var("HF_ENDPOINT").unwrap_or_default();
        let cause = match &e {
            HFError::Url(detail) => HubCause::BadEndpoint(detail.to_string()),
            other => HubCause::Other(root_cause(other)),
        };
        Error::Hub(Box::new(HubError {
            repo: format!("{owner}/{name}"),
            cause,
            endpoint,
            cache_dir: hf_hub::resolve_cache_dir(),
            offline: offline_from_env(),
            files: Vec::new(),
        }))
    })?;
    fetch_with(client, owner, name, offline_from_env()).map_err(Error::Hub)
}

/// [`fetch`] with the client given: the tests point it at a loopback server with short
/// retries.
fn fetch_with(
    client: HFClient,
    owner: &str,
    name: &str,
    offline: bool,
) -> Result<PathBuf, Box<HubError>> {
    let mut fetch = Fetch {
        repo: format!("{owner}/{name}"),
        endpoint: client.endpoint().to_string(),
        cache_dir: client.cache_dir().to_path_buf(),
        offline,
        files: Vec::new(),
    };
    let client = HFClientSync::from_inner(client).map_err(|e| fetch.error(&e))?;
    let repo = client.model(owner, name);
    let mut get = |file: &str| {
        tracing::info!(repo = %fetch.repo, file, offline, "fetching model file");
        fetch.files.push(file.to_string());
        repo.download_file()
            .filename(file)
            .local_files_only(offline)
            .send()
    };
    let outcome = match get(&format!("{name}.nemo")) {
        // Only a missing `.nemo` means the repository may hold the MLX layout instead; any other
        // failure (network, access) would fail the same way for the other files.
        Err(e) if is_missing(&e) => get("config.json").and_then(|config| {
            get("model.safetensors")?;
            Ok(config.parent().map(Path::to_path_buf).unwrap_or_default())
        }),
        found => found,
    };
    outcome.map_err(|e| fetch.error(&e))
}

/// Whether the file is absent (404, or not in the cache offline), as opposed to unreachable.
fn is_missing(error: &HFError) -> bool {
    matches!(
        error,
        HFError::EntryNotFound { .. } | HFError::LocalEntryNotFound { .. }
    )
}

/// Whether the environment asks for offline operation, as `huggingface_hub` reads it.
fn offline_from_env() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .is_ok_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
}

/// What one fetch has done so far, for its error.
struct Fetch {
    repo: String,
    endpoint: String,
    cache_dir: PathBuf,
    offline: bool,
    /// File names, in the order asked for.
    files: Vec<String>,
}

impl Fetch {
    fn error(&self, error: &HFError) -> Box<HubError> {
        Box::new(HubError {
            repo: self.repo.clone(),
            endpoint: self.endpoint.clone(),
            cache_dir: self.cache_dir.clone(),
            offline: self.offline,
            files: self.files.clone(),
            cause: classify(error, &self.endpoint),
        })
    }
}

/// A model that could not be fetched from the Hugging Face Hub.
///
/// Its `Display` is the message for the person running the program: the repository, the URLs
/// tried (or, offline, the cache looked in), the cause, and what to do.
#[derive(Debug)]
pub struct HubError {
    /// The repository id, `owner/name`.
    pub repo: String,
    /// The Hub's base URL (`HF_ENDPOINT`, by default `https://huggingface.co`).
    pub endpoint: String,
    /// The local cache looked in and downloaded to (`HF_HUB_CACHE`, else `$HF_HOME/hub`).
    pub cache_dir: PathBuf,
    /// Whether only the cache was consulted (`HF_HUB_OFFLINE`).
    pub offline: bool,
    /// Each file asked for, once, in order; the last is the one that failed with
    /// [`Self::cause`].
    pub files: Vec<String>,
    /// Why the last file could not be had.
    pub cause: HubCause,
}

/// Why a file could not be had from the Hub, in the terms of what the user can do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubCause {
    /// The host name did not resolve (no DNS, no network, or a mistyped `HF_ENDPOINT`).
    Resolve {
        /// The host, with its port if one was given.
        host: String,
        /// The resolver's message.
        detail: String,
    },
    /// The host resolved but no connection was made (refused, unreachable, timed out).
    Connect {
        /// The host, with its port if one was given.
        host: String,
        /// The operating system's message.
        detail: String,
    },
    /// A connection was made but the TLS handshake failed (certificate, or not TLS at all).
    Tls {
        /// The host, with its port if one was given.
        host: String,
        /// The TLS library's message.
        detail: String,
    },
    /// 401 or 403: the repository is gated or private (to a caller without a token the Hub also
    /// answers 401 for a repository that does not exist).
    Denied {
        /// The status line, e.g. `401 Unauthorized`.
        status: String,
        /// The server's explanation, if it gave one.
        message: Option<String>,
    },
    /// 404: no such repository, or no such file in it.
    NotFound,
    /// Offline (`HF_HUB_OFFLINE`) and the file is not in the cache.
    NotCached,
    /// Any other HTTP status (a 5xx after hf-hub's retries, 429).
    Status {
        /// The status line, e.g. `500 Internal Server Error`.
        status: String,
        /// The server's explanation, if it gave one.
        message: Option<String>,
    },
    /// `HF_ENDPOINT` is not a URL.
    BadEndpoint(
        /// The URL parser's message.
        String,
    ),
    /// Anything else (local I/O, a malformed answer, a failed Xet transfer), as the client put
    /// it.
    Other(String),
}

/// Sorts an hf-hub error into a [`HubCause`].
fn classify(error: &HFError, endpoint: &str) -> HubCause {
    match error {
        HFError::AuthRequired { context } | HFError::Forbidden { context } => HubCause::Denied {
            status: context.status.to_string(),
            message: context.server_message.clone(),
        },
        HFError::EntryNotFound { .. }
        | HFError::RepoNotFound { .. }
        | HFError::RevisionNotFound { .. } => HubCause::NotFound,
        HFError::LocalEntryNotFound { .. } => HubCause::NotCached,
        HFError::Http { context } | HFError::RateLimited { context, .. } => HubCause::Status {
            status: context.status.to_string(),
            message: context.server_message.clone(),
        },
        HFError::Request { source, .. } => {
            // The host that failed may not be the endpoint's: file bodies come from a CDN.
            let host = source
                .url()
                .and_then(|url| {
                    let host = url.host_str()?;
                    Some(
                        url.port()
                            .map_or(host.to_string(), |p| format!("{host}:{p}")),
                    )
                })
                .unwrap_or_else(|| host_of(endpoint));
            let detail = root_cause(source);
            // hyper-util's connector reports a failed lookup as "dns error"; its error type is
            // private, so the message is the only handle on it.
            if in_chain(source, |e| e.to_string() == "dns error") {
                HubCause::Resolve { host, detail }
            } else if source.is_connect() && in_chain(source, is_tls_error) {
                HubCause::Tls { host, detail }
            } else if source.is_connect() || source.is_timeout() {
                HubCause::Connect { host, detail }
            } else {
                HubCause::Other(detail)
            }
        }
        other => HubCause::Other(root_cause(other)),
    }
}

/// `endpoint` without its scheme and path: the host the first request goes to.
fn host_of(endpoint: &str) -> String {
    let rest = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest).to_string()
}

/// `error` and the errors under it, outermost first. An `io::Error`'s `source()` skips the
/// error it wraps (going on to that one's source), so the walk steps into it instead.
fn chain<'a>(
    error: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(error), |&e| {
        match e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            Some(wrapped) => Some(wrapped as &(dyn StdError + 'static)),
            None => e.source(),
        }
    })
}

/// Whether `error` or any error under it satisfies `test`.
fn in_chain(
    error: &(dyn StdError + 'static),
    test: impl Fn(&(dyn StdError + 'static)) -> bool,
) -> bool {
    chain(error).any(test)
}

/// Whether `error`, under a connect error, is the TLS handshake failing: tokio-rustls reports a
/// bad certificate or a peer that does not speak TLS as `InvalidData`, which the lookup and the
/// TCP connection never do. (Naming `rustls::Error` would take a dependency of its own.)
fn is_tls_error(error: &(dyn StdError + 'static)) -> bool {
    error
        .downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::InvalidData)
}

/// The innermost error's message: the specific one ("Connection refused (os error 111)")
/// rather than the wrappers' ("error sending request for url (...)", "client error
/// (Connect)").
fn root_cause(error: &(dyn StdError + 'static)) -> String {
    chain(error)
        .last()
        .map_or_else(String::new, ToString::to_string)
}

impl HubError {
    /// The URL of each file asked for, as hf-hub builds them
    /// (`{endpoint}/{repo}/resolve/{revision}/{file}`, always on the default branch here).
    pub fn urls(&self) -> Vec<String> {
        self.files
            .iter()
            .map(|file| format!("{}/{}/resolve/main/{file}", self.endpoint, self.repo))
            .collect()
    }
}

impl StdError for HubError {}

impl fmt::Display for HubError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.repo.split_once('/').map_or(&*self.repo, |(_, n)| n);
        write!(f, "cannot fetch {} from the Hugging Face Hub: ", self.repo)?;
        match &self.cause {
            HubCause::Resolve { host, detail } => {
                write!(f, "could not resolve host {host} ({detail})")?;
            }
            HubCause::Connect { host, detail } => {
                write!(f, "could not connect to {host} ({detail})")?;
            }
            HubCause::Tls { host, detail } => {
                write!(f, "TLS handshake with {host} failed ({detail})")?;
            }
            HubCause::Denied { status, message } if status.starts_with("401") => write!(
                f,
                "{status}: the repository is gated or private, or does not exist (without a \
                 token the Hub answers 401 for both){}",
                said(message.as_deref())
            )?,
            HubCause::Denied { status, message } => write!(
                f,
                "{status}: the token may not read the repository (a gated model whose terms \
                 were not accepted, or a token without read access){}",
                said(message.as_deref())
            )?,
            HubCause::NotFound => write!(
                f,
                "404 Not Found: no such repository, or it holds neither {name}.nemo nor \
                 config.json + model.safetensors"
            )?,
            HubCause::NotCached => write!(f, "offline (HF_HUB_OFFLINE) and not in the cache")?,
            HubCause::Status { status, message } => {
                write!(
                    f,
                    "the server answered {status}{}",
                    said(message.as_deref())
                )?;
            }
            HubCause::BadEndpoint(detail) => {
                write!(f, "HF_ENDPOINT {:?} is not a URL ({detail})", self.endpoint)?;
            }
            HubCause::Other(detail) => write!(f, "{detail}")?,
        }
        let cache = self.cache_dir.display();
        if self.offline {
            write!(f, "\n  looked for: {} in {cache}", self.files.join(", "))?;
        } else if !self.files.is_empty() {
            write!(f, "\n  tried: {}", self.urls().join(", "))?;
        }
        let local = "set the model to a local .nemo file path";
        let offline =
            format!("HF_HUB_OFFLINE=1 with the files in the cache ({cache}; HF_HOME moves it)");
        f.write_str("\n  to fix: ")?;
        match &self.cause {
            HubCause::Resolve { .. } => write!(
                f,
                "check this machine's DNS and network, or set HF_ENDPOINT to a mirror it can \
                 reach; or do without the Hub: {local}, or {offline}"
            ),
            HubCause::Connect { .. } => write!(
                f,
                "check the network, firewall or proxy (HTTPS_PROXY), or set HF_ENDPOINT to a \
                 mirror it can reach; or do without the Hub: {local}, or {offline}"
            ),
            HubCause::Tls { .. } => write!(
                f,
                "check the system clock and any proxy that intercepts TLS, or set HF_ENDPOINT to \
                 a mirror with a valid certificate; or do without the Hub: {local}, or {offline}"
            ),
            HubCause::Denied { .. } => write!(
                f,
                "check the repository id, and set HF_TOKEN to a token that can read it (for a \
                 gated model, accept its terms at {}/{} first); or {local}",
                self.endpoint, self.repo
            ),
            HubCause::NotFound => write!(f, "check the repository id; or {local}"),
            HubCause::NotCached => write!(
                f,
                "fetch it once with the network, or point HF_HOME (or HF_HUB_CACHE) at a cache \
                 that holds it; or {local}"
            ),
            HubCause::BadEndpoint(_) => write!(
                f,
                "set HF_ENDPOINT to the URL of the Hub or of a mirror, or unset it; or {local}"
            ),
            HubCause::Status { .. } | HubCause::Other(_) => write!(
                f,
                "try again later, or set HF_ENDPOINT to a mirror; or do without the Hub: \
                 {local}, or {offline}"
            ),
        }
    }
}

/// ` (message)` when the server explained itself, else nothing.
fn said(message: Option<&str>) -> String {
    message
        .filter(|m| !m.is_empty())
        .map_or_else(String::new, |m| format!(" ({m})"))
}

#[cfg(test)]
#[path = "../tests/support/hub_stand_in.rs"]
mod hub_stand_in;

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::time::Duration;

    use super::hub_stand_in::{SERVER_SAYS, hub, no_url_twice, once};
    use super::*;

    /// Fetches `warble-test/tiny` from `endpoint` into an empty cache, expecting failure.
    /// hf-hub's retries are kept (they are part of what the user gets) but their pauses cut
    /// to a millisecond.
    fn fail(endpoint: &str, offline: bool) -> (Box<HubError>, String) {
        let cache = tempfile::tempdir().unwrap();
        let client = HFClient::builder()
            .endpoint(endpoint)
            .cache_dir(cache.path())
            .retry_base_delay(Duration::from_millis(1))
            .build()
            .unwrap();
        let error = fetch_with(client, "warble-test", "tiny", offline).unwrap_err();
        let message = error.to_string();
        assert_eq!(error.cache_dir, cache.path());
        (error, message)
    }

    /// The message names the repository, then each URL tried exactly once, and no URL twice.
    fn assert_urls_once(error: &HubError, message: &str) {
        assert!(
            message.starts_with("cannot fetch warble-test/tiny from the Hugging Face Hub: "),
            "{message}"
        );
        no_url_twice(message);
        for url in error.urls() {
            assert_eq!(
                message.matches(&format!("{url},")).count()
                    + message.matches(&format!("{url}\n")).count(),
                1,
                "{url} once: {message}"
            );
        }
    }

    #[test]
    fn a_gated_or_private_repository_asks_for_hf_token() {
        for (status, cause) in [
            ("401 Unauthorized", "gated or private, or does not exist"),
            ("403 Forbidden", "the token may not read the repository"),
        ] {
            let hub = hub(status);
            let (error, message) = fail(&hub.url, false);
            assert_eq!(
                error.cause,
                HubCause::Denied {
                    status: status.into(),
                    message: Some(SERVER_SAYS.into()),
                }
            );
            // Access is the repository's, not the file's: the MLX files are not tried.
            assert_eq!(error.files, ["tiny.nemo"]);
            assert_eq!(
                *hub.requests.lock().unwrap(),
                ["HEAD /warble-test/tiny/resolve/main/tiny.nemo HTTP/1.1"]
            );
            assert_urls_once(&error, &message);
            once(&message, status);
            once(&message, cause);
            once(&message, SERVER_SAYS);
            once(&message, "set HF_TOKEN");
            once(&message, "a local .nemo file path");
        }
    }

    #[test]
    fn a_missing_repository_or_file_says_404_after_both_layouts() {
        let hub = hub("404 Not Found");
        let (error, message) = fail(&hub.url, false);
        assert_eq!(error.cause, HubCause::NotFound);
        assert_eq!(error.files, ["tiny.nemo", "config.json"]);
        assert_eq!(hub.requests.lock().unwrap().len(), 2);
        assert_urls_once(&error, &message);
        once(&message, "404 Not Found: no such repository");
        once(
            &message,
            "neither tiny.nemo nor config.json + model.safetensors",
        );
        once(&message, "check the repository id");
        once(&message, "a local .nemo file path");
    }

    #[test]
    fn a_server_error_is_reported_after_the_retries() {
        let hub = hub("500 Internal Server Error");
        let (error, message) = fail(&hub.url, false);
        assert_eq!(
            error.cause,
            HubCause::Status {
                status: "500 Internal Server Error".into(),
                message: Some(SERVER_SAYS.into()),
            }
        );
        assert_eq!(error.files, ["tiny.nemo"]);
        // hf-hub retried: the URL was asked for more than once, but is named once.
        assert!(hub.requests.lock().unwrap().len() > 1);
        assert_urls_once(&error, &message);
        once(&message, "the server answered 500 Internal Server Error");
        once(&message, "try again later");
        once(&message, "HF_HUB_OFFLINE=1");
        once(&message, "HF_HOME");
    }

    #[test]
    fn a_closed_port_is_a_refused_connection() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (error, message) = fail(&format!("http://127.0.0.1:{port}"), false);
        let HubCause::Connect { host, detail } = &error.cause else {
            panic!("{message}");
        };
        assert_eq!(host, &format!("127.0.0.1:{port}"));
        assert!(detail.to_lowercase().contains("refused"), "{detail}");
        assert_urls_once(&error, &message);
        once(&message, &format!("could not connect to 127.0.0.1:{port}"));
        once(&message, "HTTPS_PROXY");
        once(&message, "HF_ENDPOINT");
        once(&message, "a local .nemo file path");
    }

    #[test]
    fn an_unresolvable_host_is_a_name_resolution_failure() {
        let (error, message) = fail("http://warble-nonexistent.invalid", false);
        assert!(
            matches!(&error.cause, HubCause::Resolve { host, .. } if host == "warble-nonexistent.invalid"),
            "{message}"
        );
        assert_eq!(error.files, ["tiny.nemo"]);
        assert_urls_once(&error, &message);
        once(
            &message,
            "could not resolve host warble-nonexistent.invalid",
        );
        once(&message, "DNS");
        once(&message, "HF_ENDPOINT");
        once(&message, "HF_HUB_OFFLINE=1");
    }

    #[test]
    fn a_peer_that_does_not_speak_tls_fails_the_handshake() {
        let hub = hub("200 OK");
        let endpoint = hub.url.replace("http://", "https://");
        let (error, message) = fail(&endpoint, false);
        assert!(matches!(error.cause, HubCause::Tls { .. }), "{message}");
        assert_urls_once(&error, &message);
        once(&message, "TLS handshake with 127.0.0.1:");
        once(&message, "a mirror with a valid certificate");
    }

    #[test]
    fn offline_with_an_empty_cache_names_the_cache_and_asks_nothing_of_the_network() {
        let hub = hub("200 OK");
        let (error, message) = fail(&hub.url, true);
        assert_eq!(error.cause, HubCause::NotCached);
        assert_eq!(error.files, ["tiny.nemo", "config.json"]);
        assert!(hub.requests.lock().unwrap().is_empty());
        assert!(!message.contains("http"), "{message}");
        once(&message, "offline (HF_HUB_OFFLINE) and not in the cache");
        once(
            &message,
            &format!(
                "looked for: tiny.nemo, config.json in {}",
                error.cache_dir.display()
            ),
        );
        once(
            &message,
            "point HF_HOME (or HF_HUB_CACHE) at a cache that holds it",
        );
        once(&message, "a local .nemo file path");
    }
}
