//! The model behind a queue: one thread owns the device work and batches the chunks of every
//! caller's audio into shared encoder passes (the design of text-embeddings-inference: a
//! batching queue in front of a model owned by one thread).
//!
//! A caller ([`ModelService::transcribe`], from any thread) computes its audio's features on
//! its own thread, queues the chunks and waits, reporting [`Progress`] as each chunk comes
//! back. The model thread takes the chunk that has waited longest and the waiting chunks nearest
//! to it in length, up to [`BatchLimits::max_batch_secs`] of padded audio
//! ([`crate::batching`]); when fewer are waiting it gives others [`BatchLimits::max_wait`] to
//! arrive. A result never depends on what shared its passes: every item of a pass is decoded
//! exactly as it would be alone (see [`Parakeet::transcribe_batch`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::batching::{self, Candidate};
use crate::decoder::{DecoderKind, Emission};
use crate::error::{Error, Result};
use crate::model::{ChunkFeatures, Parakeet, Prepared, TranscribeOptions};
use crate::transcript::Transcript;

/// How much work one encoder pass may take, and how long to wait for company.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchLimits {
    /// Padded audio per pass, seconds: items x the longest item. It bounds the memory of a
    /// pass (activations grow with it; attention with it times the chunk length), so no mix
    /// of jobs and no file length exhausts the device. One chunk longer than this still runs,
    /// alone.
    pub max_batch_secs: f64,
    /// How long the oldest waiting chunk may wait for others to fill its pass.
    pub max_wait: Duration,
}

impl BatchLimits {
    /// Defaults for a device. On a CPU one chunk already keeps every core busy, so a pass's
    /// time grows with its size and padding is extra work: measured through the whole
    /// pipeline, batching gained nothing (`docs/benchmarks.md`, batching section), so each
    /// chunk is its own pass and nothing waits. A GPU is only busy with hundreds of files per
    /// pass (a 141 GB H200 holds 256 one-minute files with room to spare).
    pub fn for_device(device: &candle_core::Device) -> Self {
        if device.is_cpu() {
            Self {
                max_batch_secs: 0.0,
                max_wait: Duration::ZERO,
            }
        } else {
            Self {
                max_batch_secs: 16_384.0,
                max_wait: Duration::from_millis(20),
            }
        }
    }
}

/// How far a transcription has come, reported after each chunk.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Chunks encoded and decoded.
    pub chunks_done: usize,
    /// Chunks in all.
    pub chunks: usize,
    /// Seconds of audio in the chunks done (overlaps counted in both chunks).
    pub secs_done: f64,
    /// Seconds of audio in all chunks.
    pub secs: f64,
}

impl Progress {
    /// Done so far, from 0 to 1, by audio.
    pub fn fraction(&self) -> f64 {
        if self.secs > 0.0 {
            (self.secs_done / self.secs).clamp(0.0, 1.0)
        } else {
            1.0
        }
    }
}

/// Counters of the work the model thread has done.
#[derive(Debug, Default)]
struct Counters {
    passes: AtomicU64,
    items: AtomicU64,
    frames: AtomicU64,
    padded_frames: AtomicU64,
}

/// What the model thread has done since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceStats {
    /// Encoder passes run.
    pub passes: u64,
    /// Chunks encoded and decoded in them (items / passes is the mean batch size).
    pub items: u64,
    /// Feature frames (10 ms) of audio in them.
    pub frames: u64,
    /// Feature frames with padding (frames / padded_frames is how much of the work was audio).
    pub padded_frames: u64,
}

/// One chunk waiting for a pass.
struct Item {
    prepared: Arc<Prepared>,
    chunk: usize,
    canceled: Arc<AtomicBool>,
    reply: Sender<(usize, Result<Vec<Emission>>)>,
}

impl Item {
    fn features(&self) -> &ChunkFeatures {
        &self.prepared.chunks[self.chunk]
    }
}

/// A model owned by one thread, fed by a batching queue.
pub struct ModelService {
    model: Arc<Parakeet>,
    counters: Arc<Counters>,
    queue: Option<Sender<Item>>,
    thread: Option<JoinHandle<()>>,
}

impl ModelService {
    /// Starts the thread that owns `model`'s device work.
    pub fn start(model: Parakeet, limits: BatchLimits) -> Self {
        let model = Arc::new(model);
        let (queue, waiting) = mpsc::channel();
        let owner = model.clone();
        let counters = Arc::new(Counters::default());
        let counting = counters.clone();
        let thread = std::thread::Builder::new()
            .name("model".into())
            .spawn(move || serve(&owner, &waiting, limits, &counting))
            .expect("a thread can start");
        Self {
            model,
            counters,
            queue: Some(queue),
            thread: Some(thread),
        }
    }

    /// The model, for its properties (sample rate, decoders).
    pub fn model(&self) -> &Parakeet {
        &self.model
    }

    /// The work done so far.
    pub fn stats(&self) -> ServiceStats {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ServiceStats {
            passes: read(&self.counters.passes),
            items: read(&self.counters.items),
            frames: read(&self.counters.frames),
            padded_frames: read(&self.counters.padded_frames),
        }
    }

    /// Transcribes 16 kHz mono `samples`, blocking the calling thread until done: the same
    /// result as [`Parakeet::transcribe`]. `progress` is called after each chunk. Setting
    /// `canceled` makes the call return [`Error::Canceled`] within a tenth of a second, and
    /// its chunks that have not run yet never do.
    pub fn transcribe(
        &self,
        samples: &[f32],
        options: &TranscribeOptions,
        canceled: Arc<AtomicBool>,
        mut progress: impl FnMut(Progress),
    ) -> Result<Transcript> {
        let prepared = Arc::new(self.model.prepare(samples, options)?);
        let (reply, results) = mpsc::channel();
        let queue = self.queue.as_ref().expect("running until dropped");
        for chunk in 0..prepared.chunks.len() {
            let item = Item {
                prepared: prepared.clone(),
                chunk,
                canceled: canceled.clone(),
                reply: reply.clone(),
            };
            queue.send(item).map_err(|_| Error::ServiceStopped)?;
        }
        drop(reply);
        let mut state = Progress {
            chunks_done: 0,
            chunks: prepared.chunks.len(),
            secs_done: 0.0,
            secs: prepared.chunks.iter().map(|c| c.secs).sum(),
        };
        let mut chunks: Vec<Option<Vec<Emission>>> = vec![None; state.chunks];
        while state.chunks_done < state.chunks {
            if canceled.load(Ordering::SeqCst) {
                return Err(Error::Canceled);
            }
            match results.recv_timeout(Duration::from_millis(100)) {
                Ok((chunk, emissions)) => {
                    chunks[chunk] = Some(emissions?);
                    state.chunks_done += 1;
                    state.secs_done += prepared.chunks[chunk].secs;
                    progress(state);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Err(Error::ServiceStopped),
            }
        }
        let chunks = chunks.into_iter().map(|c| c.expect("counted")).collect();
        Ok(self.model.finish(&prepared, chunks))
    }
}

impl Drop for ModelService {
    /// Closes the queue and waits for the pass in progress.
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The model thread: gathers waiting chunks, runs passes, replies, until the queue closes.
fn serve(model: &Parakeet, queue: &Receiver<Item>, limits: BatchLimits, counters: &Counters) {
    let budget = model.frames_for_secs(limits.max_batch_secs);
    let mut waiting: Vec<(Instant, Item)> = Vec::new();
    let mut open = true;
    loop {
        if waiting.is_empty() {
            match queue.recv() {
                Ok(item) => waiting.push((Instant::now(), item)),
                Err(_) => return,
            }
        }
        // Company for the oldest chunk: whatever is queued already, then what arrives before
        // its wait is over, unless the pass is full already.
        while open {
            let padded = batching::padded_frames(waiting.iter().map(|(_, i)| i.features().frames));
            let waited = waiting[0].0.elapsed();
            let next = if padded >= budget || waited >= limits.max_wait {
                queue.try_recv().map_err(|e| match e {
                    mpsc::TryRecvError::Empty => RecvTimeoutError::Timeout,
                    mpsc::TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
                })
            } else {
                queue.recv_timeout(limits.max_wait - waited)
            };
            match next {
                Ok(item) => waiting.push((Instant::now(), item)),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => open = false,
            }
        }
        // A canceled job's chunks give up their places.
        waiting.retain(|(_, item)| !item.canceled.load(Ordering::SeqCst));
        if waiting.is_empty() {
            if open {
                continue;
            }
            return;
        }
        let candidates: Vec<Candidate> = waiting
            .iter()
            .map(|(_, item)| item.features().candidate())
            .collect();
        let chosen = batching::next_pass(&candidates, budget);
        let mut pass = Vec::with_capacity(chosen.len());
        for &k in chosen.iter().rev() {
            pass.push(waiting.remove(k).1);
        }
        pass.reverse();
        let frames = pass.iter().map(|item| item.features().frames);
        let padded = batching::padded_frames(frames.clone());
        counters.passes.fetch_add(1, Ordering::Relaxed);
        counters
            .items
            .fetch_add(pass.len() as u64, Ordering::Relaxed);
        counters
            .frames
            .fetch_add(frames.sum::<usize>() as u64, Ordering::Relaxed);
        counters
            .padded_frames
            .fetch_add(padded as u64, Ordering::Relaxed);
        tracing::debug!(items = pass.len(), padded_frames = padded, "encoder pass");
        run(model, pass);
    }
}

/// Runs one pass and replies to each item's caller. When the pass fails, each item runs again
/// alone, so that one item the model cannot take fails only its own job.
fn run(model: &Parakeet, pass: Vec<Item>) {
    let inputs: Vec<(&ChunkFeatures, DecoderKind)> = pass
        .iter()
        .map(|item| (item.features(), item.prepared.decoder))
        .collect();
    match model.run_pass(&inputs) {
        Ok(results) => {
            for (item, emissions) in pass.iter().zip(results) {
                // A caller that gave up no longer listens.
                let _ = item.reply.send((item.chunk, Ok(emissions)));
            }
        }
        Err(err) if pass.len() == 1 => {
            let _ = pass[0].reply.send((pass[0].chunk, Err(err)));
        }
        Err(err) => {
            tracing::warn!(error = %err, items = pass.len(), "a batched pass failed; running its items one by one");
            for item in pass {
                run(model, vec![item]);
            }
        }
    }
}
