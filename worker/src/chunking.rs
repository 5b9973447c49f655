//! How long audio is cut: the options `worker transcribe` and `worker run` share, so that the
//! command line gives what the queue gives.

use warble_parakeet::Chunking;

/// Chunking of long audio.
#[derive(Debug, Clone, clap::Args)]
pub struct ChunkArgs {
    /// Audio longer than this many seconds is transcribed in overlapping chunks that batch
    /// like short files and are joined at word boundaries; 0 transcribes every file whole
    /// (with local attention past 300 s).
    #[arg(long, env = "WARBLE_CHUNK_SECONDS", default_value_t = Chunking::default().secs)]
    chunk_seconds: f64,
    /// Seconds neighbouring chunks share; the seam between them lies in the middle.
    #[arg(long, env = "WARBLE_CHUNK_OVERLAP_SECONDS", default_value_t = Chunking::default().overlap_secs)]
    chunk_overlap_seconds: f64,
}

impl ChunkArgs {
    /// The engine's setting.
    pub fn chunking(&self) -> Option<Chunking> {
        (self.chunk_seconds > 0.0).then_some(Chunking {
            secs: self.chunk_seconds,
            overlap_secs: self.chunk_overlap_seconds,
        })
    }
}
