//! rubato's band-limited resampler, fed and drained chunk by chunk.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

use crate::{AudioError, SAMPLE_RATE};

/// rubato's FFT (windowed-sinc) resampler to 16 kHz, with its delay removed and its tail
/// flushed, so the output is aligned with the input and exactly `round(n_in * 16000 / rate)`
/// samples long. Output goes to a callback as it is produced.
pub struct StreamResampler {
    rate: u32,
    resampler: Fft<f32>,
    /// Input not yet consumed (less than one chunk between calls).
    pending: Vec<f32>,
    /// Scratch for one output chunk.
    chunk_out: Vec<f32>,
    /// Leading output samples still to drop (the filter delay).
    delay_left: usize,
    input_len: u64,
    emitted: u64,
}

impl StreamResampler {
    /// Rough number of input samples per chunk.
    const CHUNK: usize = 1024;

    pub fn new(rate: u32) -> Result<Self, AudioError> {
        let resampler = Fft::<f32>::new(
            rate as usize,
            SAMPLE_RATE as usize,
            Self::chunk_size(rate),
            1,
            FixedSync::Both,
        )
        .map_err(|e| resample_error(rate, e))?;
        Ok(Self {
            rate,
            delay_left: resampler.output_delay(),
            chunk_out: vec![0.0; resampler.output_frames_max()],
            resampler,
            pending: Vec::new(),
            input_len: 0,
            emitted: 0,
        })
    }

    /// Input samples per chunk: about [`Self::CHUNK`], and an *even* number of the rate ratio's
    /// smallest blocks (`rate / gcd(rate, 16000)` samples, e.g. 441 at 44.1 kHz).
    ///
    /// rubato's filter is centred on sample `len / 2` of its FFT block while `output_delay()`
    /// reports half the output block; with an odd block count (e.g. 1323 in / 480 out) the two
    /// differ and the output comes out shifted by a fraction of a sample (0.18 at 44.1 kHz,
    /// 0.36 at 22.05 kHz). With an even count both halves are whole and equal.
    fn chunk_size(rate: u32) -> usize {
        let min_block = (rate / gcd(rate, SAMPLE_RATE)) as usize;
        Self::CHUNK.div_ceil(2 * min_block).max(1) * 2 * min_block
    }

    /// Resamples what `samples` completes; the output goes to `out`.
    pub fn push(&mut self, samples: &[f32], out: &mut dyn FnMut(&[f32])) -> Result<(), AudioError> {
        self.input_len += samples.len() as u64;
        self.pending.extend_from_slice(samples);
        let chunk = self.resampler.input_frames_next();
        let mut consumed = 0;
        while self.pending.len() - consumed >= chunk {
            self.process(consumed, u64::MAX, out)?;
            consumed += chunk;
        }
        self.pending.drain(..consumed);
        Ok(())
    }

    /// Pads the last partial chunk with silence and pushes silence through until the delayed
    /// output covers the whole input, cutting the last chunk to the exact length.
    pub fn finish(mut self, out: &mut dyn FnMut(&[f32])) -> Result<(), AudioError> {
        let rate = u64::from(self.rate);
        let expected = (self.input_len * u64::from(SAMPLE_RATE) + rate / 2) / rate;
        let chunk = self.resampler.input_frames_next();
        self.pending.resize(chunk, 0.0);
        while self.emitted < expected {
            self.process(0, expected, out)?;
            self.pending.fill(0.0);
        }
        Ok(())
    }

    /// Resamples the chunk of `pending` starting at `offset`, emitting at most up to sample
    /// `limit` of the whole output.
    fn process(
        &mut self,
        offset: usize,
        limit: u64,
        out: &mut dyn FnMut(&[f32]),
    ) -> Result<(), AudioError> {
        let rate = self.rate;
        let frames = self.resampler.input_frames_next();
        let input = InterleavedSlice::new(&self.pending[offset..], 1, frames)
            .map_err(|e| resample_error(rate, e))?;
        let capacity = self.chunk_out.len();
        let mut buffer = InterleavedSlice::new_mut(&mut self.chunk_out, 1, capacity)
            .map_err(|e| resample_error(rate, e))?;
        let (_, written) = self
            .resampler
            .process_into_buffer(&input, &mut buffer, None)
            .map_err(|e| resample_error(rate, e))?;
        let skip = self.delay_left.min(written);
        self.delay_left -= skip;
        let room = usize::try_from(limit - self.emitted).unwrap_or(usize::MAX);
        let end = written.min(skip.saturating_add(room));
        if end > skip {
            out(&self.chunk_out[skip..end]);
            self.emitted += (end - skip) as u64;
        }
        Ok(())
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn resample_error(rate: u32, error: impl std::fmt::Display) -> AudioError {
    AudioError::Resample {
        rate,
        reason: error.to_string(),
    }
}
