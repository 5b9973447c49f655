//! `warble-audio`: probe or decode files the way the API and the workers do, in the sandbox.
//!
//! `warble-audio probe FILE...` prints what each file holds as JSON; `warble-audio decode
//! FILE...` decodes each one and prints its format and duration. Both go through the same
//! limited child process as the services (it also serves as that child).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use warble_audio::Sandbox;

fn main() {
    if let Some(code) = warble_audio::sandbox::serve_child() {
        std::process::exit(code);
    }
    let mut args = std::env::args().skip(1);
    let (Some(command), files) = (args.next(), args.map(PathBuf::from).collect::<Vec<_>>()) else {
        eprintln!("usage: warble-audio probe|decode FILE...");
        std::process::exit(2);
    };
    let sandbox =
        Sandbox::current_exe(1 << 30, Duration::from_secs(600)).expect("the current executable");
    let mut failed = false;
    for file in files {
        let extension = file.extension().and_then(|e| e.to_str());
        let started = Instant::now();
        let line = match command.as_str() {
            "probe" => sandbox
                .probe(&file, extension)
                .map(|p| serde_json::to_string(&p).expect("serializes")),
            "decode" => sandbox.decode(&file, extension, f64::MAX).map(|a| {
                format!(
                    "{} Hz x{} -> {:.3} s at 16 kHz in {:.3} s",
                    a.source_rate,
                    a.source_channels,
                    a.duration_secs(),
                    started.elapsed().as_secs_f64()
                )
            }),
            _ => {
                eprintln!("usage: warble-audio probe|decode FILE...");
                std::process::exit(2);
            }
        };
        match line {
            Ok(line) => println!("{}: {line}", file.display()),
            Err(err) => {
                failed = true;
                println!("{}: error: {err}", file.display());
            }
        }
    }
    std::process::exit(i32::from(failed));
}
