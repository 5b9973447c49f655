//! A stand-in for the Hugging Face Hub on loopback, reached through `HF_ENDPOINT` or the
//! client's endpoint: it answers every request with one status and the `X-Error-Message`
//! header the Hub explains itself in, and keeps each request line. Shared by the fetch's unit
//! tests (`parakeet/src/hub.rs`) and `worker/tests/model_download.rs`, by path, as a library's
//! unit tests and another crate's tests cannot share a module otherwise.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// What the stand-in says in `X-Error-Message`.
pub const SERVER_SAYS: &str = "Access to model warble-test/tiny is restricted.";

/// A running stand-in.
pub struct Hub {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The request line of each request, in order (none for a TLS handshake).
    pub requests: Arc<Mutex<Vec<String>>>,
}

/// Starts one answering every request with `status` (`"401 Unauthorized"`).
pub fn hub(status: &'static str) -> Hub {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&requests);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let head = read_head(&mut stream);
            if let Some(line) = head.lines().next().filter(|l| l.contains("HTTP/")) {
                seen.lock().unwrap().push(line.to_string());
            }
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nX-Error-Message: {SERVER_SAYS}\r\n\
                 Content-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    Hub { url, requests }
}

/// Reads a request head, or the first bytes of a TLS handshake (which has none).
fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        // 0x16: a TLS handshake record, answered in HTTP all the same.
        if head.first() == Some(&0x16) {
            break;
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// `phrase` occurs exactly once in `message`.
pub fn once(message: &str, phrase: &str) {
    assert_eq!(
        message.matches(phrase).count(),
        1,
        "{phrase:?} once in:\n{message}"
    );
}

/// No URL occurs twice in `message`.
pub fn no_url_twice(message: &str) {
    let mut urls: Vec<&str> = message
        .split_whitespace()
        .filter_map(|w| w.find("http").map(|at| &w[at..]))
        .map(|w| w.trim_end_matches([',', ')', ';', '"']))
        .collect();
    let all = urls.len();
    urls.sort_unstable();
    urls.dedup();
    assert_eq!(urls.len(), all, "a URL repeats in:\n{message}");
}
