//! The speaker cache and FIFO queue of streaming Sortformer (the "arrival-order speaker cache",
//! AOSC), following NeMo's `SortformerModules.streaming_update` and `_compress_spkcache` in
//! `nemo/collections/asr/modules/sortformer_modules.py` (the synchronous version, batch of one).
//!
//! Each step the model sees `[speaker cache, FIFO, chunk]` as pre-encoded embeddings (the
//! subsampling's output, which depends on nothing but its own audio). The chunk's predictions
//! are final; the chunk joins the FIFO; when the FIFO overflows, its oldest frames move to the
//! cache; when the cache overflows, it is compressed back to `spkcache_len` frames, keeping for
//! each speaker the frames that speak for it most clearly, so speaker `k` stays speaker `k` for
//! hours in bounded memory. State lives on the host in f32, in the order NeMo computes it.

use super::config::ModulesConfig;

/// Embeddings (`rows x dim`) with the speaker probabilities the model gave them
/// (`rows x speakers`).
#[derive(Debug, Clone, Default)]
struct Frames {
    embs: Vec<f32>,
    preds: Vec<f32>,
}

/// The state carried from one streaming step to the next.
#[derive(Debug, Clone)]
pub(crate) struct StreamingState {
    dim: usize,
    speakers: usize,
    spkcache: Vec<f32>,
    /// `None` until the cache is first compressed: until then the cache's predictions are
    /// taken from the latest pass.
    spkcache_preds: Option<Vec<f32>>,
    fifo: Frames,
    /// Running mean of the embeddings of silent frames, which stand in for the cache's
    /// silence places.
    mean_sil_emb: Vec<f32>,
    n_sil_frames: usize,
}

impl StreamingState {
    /// An empty state for embeddings of `dim` values and `speakers` outputs.
    pub fn new(dim: usize, speakers: usize) -> Self {
        Self {
            dim,
            speakers,
            spkcache: Vec::new(),
            spkcache_preds: None,
            fifo: Frames::default(),
            mean_sil_emb: vec![0.0; dim],
            n_sil_frames: 0,
        }
    }

    /// The embeddings that precede the next chunk: the cache, then the FIFO (`rows x dim`).
    pub fn context(&self) -> Vec<f32> {
        [self.spkcache.as_slice(), self.fifo.embs.as_slice()].concat()
    }

    fn rows(&self, values: &[f32]) -> usize {
        values.len() / self.dim
    }

    /// Takes one step's output. `chunk` holds the chunk's pre-encoded embeddings with `lc`
    /// frames of left and `rc` of right context (`rows x dim`); `preds` the probabilities of
    /// the whole pass over `[cache, FIFO, chunk]` (`rows x speakers`). Returns the chunk's own
    /// probabilities (`chunk_len x speakers`), which are final.
    pub fn update(
        &mut self,
        cfg: &ModulesConfig,
        chunk: &[f32],
        lc: usize,
        rc: usize,
        preds: &[f32],
    ) -> Vec<f32> {
        let (d, n) = (self.dim, self.speakers);
        let cache_len = self.rows(&self.spkcache);
        let fifo_len = self.rows(&self.fifo.embs);
        let chunk_len = self.rows(chunk).saturating_sub(lc + rc);
        let at = |row: usize| row * n;
        self.fifo.preds = preds[at(cache_len)..at(cache_len + fifo_len)].to_vec();
        let first = cache_len + fifo_len + lc;
        let chunk_preds = preds[at(first)..at(first + chunk_len)].to_vec();
        self.fifo
            .embs
            .extend_from_slice(&chunk[lc * d..(lc + chunk_len) * d]);
        self.fifo.preds.extend_from_slice(&chunk_preds);
        if fifo_len + chunk_len > cfg.fifo_len {
            let pop = cfg
                .spkcache_update_period
                .max(fifo_len + chunk_len - cfg.fifo_len)
                .min(fifo_len + chunk_len);
            let popped = Frames {
                embs: self.fifo.embs.drain(..pop * d).collect(),
                preds: self.fifo.preds.drain(..pop * n).collect(),
            };
            self.add_silence(cfg, &popped);
            self.spkcache.extend_from_slice(&popped.embs);
            if let Some(cache_preds) = &mut self.spkcache_preds {
                cache_preds.extend_from_slice(&popped.preds);
            }
            if self.rows(&self.spkcache) > cfg.spkcache_len {
                let cache_preds = self
                    .spkcache_preds
                    .take()
                    .unwrap_or_else(|| [&preds[..at(cache_len)], &popped.preds[..]].concat());
                let frames = Frames {
                    embs: std::mem::take(&mut self.spkcache),
                    preds: cache_preds,
                };
                let compressed = self.compress(cfg, &frames);
                self.spkcache = compressed.embs;
                self.spkcache_preds = Some(compressed.preds);
            }
        }
        chunk_preds
    }

    /// Folds the silent frames of `frames` (probabilities summing below `sil_threshold`) into
    /// the mean silence embedding (`_get_silence_profile`).
    fn add_silence(&mut self, cfg: &ModulesConfig, frames: &Frames) {
        let threshold = cfg.sil_threshold as f32;
        let silent: Vec<usize> = (0..self.rows(&frames.embs))
            .filter(|&i| {
                let row = &frames.preds[i * self.speakers..(i + 1) * self.speakers];
                row.iter().sum::<f32>() < threshold
            })
            .collect();
        if silent.is_empty() {
            return;
        }
        let total = self.n_sil_frames + silent.len();
        for (k, mean) in self.mean_sil_emb.iter_mut().enumerate() {
            let sum: f32 = silent.iter().map(|&i| frames.embs[i * self.dim + k]).sum();
            *mean = (*mean * self.n_sil_frames as f32 + sum) / total.max(1) as f32;
        }
        self.n_sil_frames = total;
    }

    /// Keeps the `spkcache_len` most telling frames of `frames` (`_compress_spkcache`): each
    /// speaker's clearest single-speaker frames in time order, then silence places, speaker
    /// by speaker.
    fn compress(&self, cfg: &ModulesConfig, frames: &Frames) -> Frames {
        let n = self.speakers;
        let rows = self.rows(&frames.embs);
        let per_speaker = (cfg.spkcache_len / n).saturating_sub(cfg.spkcache_sil_frames_per_spk);
        let share = |rate: f64| (per_speaker as f64 * rate).floor() as usize;
        let mut scores = scores(cfg, &frames.preds, n, share(cfg.min_pos_scores_rate));
        if cfg.scores_boost_latest > 0.0 {
            let boost = cfg.scores_boost_latest as f32;
            for score in scores.iter_mut().skip(cfg.spkcache_len * n) {
                *score += boost;
            }
        }
        boost_top(&mut scores, n, share(cfg.strong_boost_rate), 2.0);
        boost_top(&mut scores, n, share(cfg.weak_boost_rate), 1.0);
        // Speaker-major scores, each speaker's block ending in its silence places (+inf, so
        // always kept).
        let block = rows + cfg.spkcache_sil_frames_per_spk;
        let flat: Vec<f32> = (0..n)
            .flat_map(|s| {
                let scores = &scores;
                (0..block).map(move |i| {
                    if i < rows {
                        scores[i * n + s]
                    } else {
                        f32::INFINITY
                    }
                })
            })
            .collect();
        let mut order: Vec<usize> = (0..flat.len()).collect();
        order.sort_by(|&a, &b| flat[b].total_cmp(&flat[a]).then(a.cmp(&b)));
        order.truncate(cfg.spkcache_len);
        // A kept -inf is no frame at all: it goes last, as NeMo's placeholder index does.
        order.sort_by_key(|&i| (flat[i] == f32::NEG_INFINITY, i));
        let mut kept = Frames::default();
        for i in order {
            let frame = i % block;
            if flat[i] == f32::NEG_INFINITY || frame >= rows {
                kept.embs.extend_from_slice(&self.mean_sil_emb);
                kept.preds.extend(std::iter::repeat_n(0.0, n));
            } else {
                kept.embs
                    .extend_from_slice(&frames.embs[frame * self.dim..(frame + 1) * self.dim]);
                kept.preds
                    .extend_from_slice(&frames.preds[frame * n..(frame + 1) * n]);
            }
        }
        kept
    }
}

/// Per frame and speaker, how clearly the frame is that speaker alone
/// (`_get_log_pred_scores`), with frames where the speaker is silent, and (once the speaker
/// has `min_positive` clear frames) its overlapped frames, set to -inf
/// (`_disable_low_scores`). `preds` and the result are `rows x n`.
fn scores(cfg: &ModulesConfig, preds: &[f32], n: usize, min_positive: usize) -> Vec<f32> {
    let floor = cfg.pred_score_threshold as f32;
    let half = (0.5f64).ln() as f32;
    let mut scores: Vec<f32> = preds
        .chunks_exact(n)
        .flat_map(|row| {
            let rest: f32 = row.iter().map(|p| (1.0 - p).max(floor).ln()).sum();
            row.iter().map(move |&p| {
                if p > 0.5 {
                    p.max(floor).ln() - (1.0 - p).max(floor).ln() + rest - half
                } else {
                    f32::NEG_INFINITY
                }
            })
        })
        .collect();
    for s in 0..n {
        let positive = scores
            .iter()
            .skip(s)
            .step_by(n)
            .filter(|&&x| x > 0.0)
            .count();
        if positive >= min_positive {
            for score in scores.iter_mut().skip(s).step_by(n) {
                if *score <= 0.0 {
                    *score = f32::NEG_INFINITY;
                }
            }
        }
    }
    scores
}

/// Raises each speaker's `count` best scores by `scale * ln 2` (`_boost_topk_scores`); -inf
/// stays -inf.
fn boost_top(scores: &mut [f32], n: usize, count: usize, scale: f64) {
    let boost = (scale * (0.5f64).ln()) as f32;
    let rows = scores.len() / n;
    for s in 0..n {
        let mut frames: Vec<usize> = (0..rows).collect();
        frames.sort_by(|&a, &b| {
            scores[b * n + s]
                .total_cmp(&scores[a * n + s])
                .then(a.cmp(&b))
        });
        for &i in frames.iter().take(count) {
            scores[i * n + s] -= boost;
        }
    }
}
