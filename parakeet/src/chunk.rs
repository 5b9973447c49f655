//! Long audio cut into overlapping chunks, and the chunks' tokens joined back into one
//! continuous sequence.
//!
//! A chunk is encoded like a short file, so the chunks of a long recording batch with other
//! jobs' files and its memory stays that of one chunk. Neighbouring chunks overlap; the seam
//! between them lies in the middle of the overlap, where each side still has half the overlap
//! of context. Tokens are taken from the chunk before a seam up to the first word that starts
//! at or after the seam in the chunk after it, and from there on from the chunk after it, so
//! the cut always falls between words and no word is split or counted twice by the cut itself.
//! The same scheme serves NeMo's buffered long-form inference and parakeet-mlx's chunking.

use crate::decoder::Emission;
use crate::tokenizer::Tokenizer;

/// How audio longer than a chunk is cut.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Chunking {
    /// Longest chunk, seconds; audio up to this long is one chunk.
    pub secs: f64,
    /// Seconds shared by neighbouring chunks (half of it is context on each side of a seam).
    pub overlap_secs: f64,
}

impl Default for Chunking {
    /// Two-minute chunks with 16 s of overlap: 8 s of context on each side of a seam, and
    /// chunks short enough to batch with ordinary files.
    fn default() -> Self {
        Self {
            secs: 120.0,
            overlap_secs: 16.0,
        }
    }
}

/// Where the chunks of one recording lie, in encoder frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkPlan {
    /// Samples per encoder frame (hop x subsampling): chunks start on frame boundaries so
    /// that frame numbers add up.
    frame_samples: usize,
    /// `(first frame, frames)` of each chunk.
    chunks: Vec<(usize, usize)>,
}

impl ChunkPlan {
    /// The chunks of `samples` samples cut by `chunking` (`None`: one chunk), at `sample_rate`,
    /// with `frame_samples` samples per encoder frame.
    pub fn new(
        samples: usize,
        chunking: Option<Chunking>,
        sample_rate: u32,
        frame_samples: usize,
    ) -> Self {
        let total = samples.div_ceil(frame_samples).max(1);
        let frames_of = |secs: f64| (secs * sample_rate as f64 / frame_samples as f64) as usize;
        let chunks = match chunking {
            Some(c) if total > frames_of(c.secs) => {
                let length = frames_of(c.secs).max(2);
                // At least one frame of progress per chunk, at most the whole chunk.
                let stride = length.saturating_sub(frames_of(c.overlap_secs)).max(1);
                let mut chunks = Vec::new();
                let mut start = 0;
                loop {
                    chunks.push((start, length.min(total - start)));
                    if start + length >= total {
                        break;
                    }
                    start += stride;
                }
                chunks
            }
            _ => vec![(0, total)],
        };
        Self {
            frame_samples,
            chunks,
        }
    }

    /// Number of chunks.
    pub fn len(&self) -> usize {
        self.chunks.len()
    }

    /// Always false: a plan has at least one chunk.
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Sample range of chunk `i` within a recording of `samples` samples.
    pub fn samples(&self, i: usize, samples: usize) -> std::ops::Range<usize> {
        let (start, frames) = self.chunks[i];
        let begin = (start * self.frame_samples).min(samples);
        begin..((start + frames) * self.frame_samples).min(samples)
    }

    /// Joins each chunk's emissions (frames counted from the chunk's start) into one sequence
    /// in frames of the whole recording, cutting at word boundaries near each seam.
    pub fn merge(&self, per_chunk: Vec<Vec<Emission>>, tokenizer: &Tokenizer) -> Vec<Emission> {
        debug_assert_eq!(per_chunk.len(), self.chunks.len());
        let chunks: Vec<Vec<Emission>> = per_chunk
            .into_iter()
            .zip(&self.chunks)
            .map(|(emissions, &(start, _))| {
                emissions
                    .into_iter()
                    .map(|e| Emission {
                        token: e.token,
                        start: e.start + start,
                        end: e.end + start,
                    })
                    .collect()
            })
            .collect();
        let starts_word = |e: &Emission| tokenizer.piece(e.token).starts_with('\u{2581}');
        // Cut k lies between chunk k and chunk k + 1: the first word in chunk k + 1 that starts
        // at or after the middle of their overlap (none: chunk k + 1 adds nothing there).
        let cuts: Vec<usize> = self
            .chunks
            .windows(2)
            .zip(&chunks[1..])
            .map(|(pair, next)| {
                let (start, frames) = pair[0];
                let seam = (pair[1].0 + start + frames).div_ceil(2);
                next.iter()
                    .find(|e| e.start >= seam && starts_word(e))
                    .map_or(usize::MAX, |e| e.start)
            })
            .collect();
        let mut merged: Vec<Emission> = Vec::new();
        for (k, emissions) in chunks.into_iter().enumerate() {
            let from = if k == 0 { 0 } else { cuts[k - 1] };
            let to = cuts.get(k).copied().unwrap_or(usize::MAX);
            // From the word at the cut (or the chunk's start) up to the first word that starts
            // at or after the next cut: whole words only.
            let first = if k == 0 {
                0
            } else {
                emissions
                    .iter()
                    .position(|e| e.start >= from && starts_word(e))
                    .unwrap_or(emissions.len())
            };
            let last = emissions[first..]
                .iter()
                .position(|e| e.start >= to && starts_word(e))
                .map_or(emissions.len(), |p| first + p);
            // Never step back in time past what an earlier chunk already gave.
            let floor = merged.last().map_or(0, |e| e.start);
            merged.extend(emissions[first..last].iter().filter(|e| e.start >= floor));
        }
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokenizer() -> Tokenizer {
        // 0: a word start, 1: a continuation.
        Tokenizer::new(vec!["\u{2581}a".into(), "b".into()])
    }

    #[test]
    fn short_audio_is_one_chunk_and_long_audio_covers_every_frame() {
        let chunking = Some(Chunking {
            secs: 10.0,
            overlap_secs: 2.0,
        });
        let one = ChunkPlan::new(16_000 * 10, chunking, 16_000, 1280);
        assert_eq!(one.len(), 1);
        assert_eq!(one.samples(0, 160_000), 0..160_000);
        let samples = 16_000 * 35 + 77;
        let plan = ChunkPlan::new(samples, chunking, 16_000, 1280);
        // Starts every 8 s (10 s less the 2 s overlap): 0, 8, 16, 24 and 32 s.
        assert_eq!(plan.len(), 5);
        let ranges: Vec<_> = (0..plan.len()).map(|i| plan.samples(i, samples)).collect();
        assert_eq!(ranges[0].start, 0);
        assert_eq!(ranges.last().unwrap().end, samples);
        for pair in ranges.windows(2) {
            // Overlapping, on frame boundaries, each chunk at most 10 s.
            assert!(pair[1].start < pair[0].end);
            assert_eq!(pair[1].start % 1280, 0);
            assert!(pair[0].len() <= 160_000);
        }
    }

    #[test]
    fn the_seam_falls_between_words_and_keeps_each_word_once() {
        let plan = ChunkPlan {
            frame_samples: 1,
            chunks: vec![(0, 100), (80, 100)],
        };
        let e = |token, start| Emission {
            token,
            start,
            end: start + 1,
        };
        // The overlap is frames 80..100, the seam frame 90. Chunk 0 reads a word at 86..93
        // (across the seam) and one at 95; chunk 1 reads the same words at 6 and 15 (86, 95).
        let first = vec![e(0, 10), e(0, 86), e(1, 92), e(0, 95), e(1, 97)];
        let second = vec![e(0, 6), e(1, 12), e(0, 15), e(1, 17), e(0, 50)];
        let merged = plan.merge(vec![first, second], &tokenizer());
        let starts: Vec<usize> = merged.iter().map(|e| e.start).collect();
        // Chunk 1's first word at or after the seam starts at 95: chunk 0 gives everything
        // before it, whole words; chunk 1 gives 95 on.
        assert_eq!(starts, vec![10, 86, 92, 95, 97, 130]);
    }
}
