//! Which waiting chunks share the next encoder pass.
//!
//! Items in one pass are padded to the longest of them, so a pass costs `items x longest`
//! frames of memory and arithmetic however short the others are. A pass therefore takes the
//! item that has waited longest (nobody starves) and the items closest to it in length, as long
//! as the padded cost stays within the budget: bucketing by length without fixed buckets.

use crate::encoder::AttentionWindow;

/// What the choice needs to know about a waiting item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Feature frames (10 ms each) the item takes in a pass.
    pub frames: usize,
    /// Items only share a pass with the same attention window.
    pub window: AttentionWindow,
}

/// What a pass of items with these lengths costs once padded: `count x longest` frames.
pub fn padded_frames(frames: impl IntoIterator<Item = usize>) -> usize {
    let (count, longest) = frames
        .into_iter()
        .fold((0, 0), |(count, longest), f| (count + 1, longest.max(f)));
    count * longest
}

/// The items of the next pass, as indices into `waiting` (oldest first). The first item always
/// goes, alone if it is over the budget; the others join nearest in length first while
/// `count x longest <= budget_frames`.
pub fn next_pass(waiting: &[Candidate], budget_frames: usize) -> Vec<usize> {
    let Some(anchor) = waiting.first() else {
        return Vec::new();
    };
    let mut others: Vec<usize> = (1..waiting.len())
        .filter(|&i| waiting[i].window == anchor.window)
        .collect();
    others.sort_by_key(|&i| (waiting[i].frames.abs_diff(anchor.frames), i));
    let mut chosen = vec![0];
    let mut longest = anchor.frames;
    for i in others {
        let longer = longest.max(waiting[i].frames);
        if (chosen.len() + 1) * longer > budget_frames {
            // Items further away are no shorter than the budget allows either, except ones
            // shorter than the anchor: keep looking among those.
            if waiting[i].frames > longest {
                continue;
            }
            break;
        }
        chosen.push(i);
        longest = longer;
    }
    chosen.sort_unstable();
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(frames: &[usize]) -> Vec<Candidate> {
        frames
            .iter()
            .map(|&frames| Candidate {
                frames,
                window: AttentionWindow::Full,
            })
            .collect()
    }

    #[test]
    fn the_oldest_goes_with_its_nearest_lengths_within_the_budget() {
        let waiting = items(&[500, 100, 480, 2000, 510, 90]);
        // 3 x 510 fits 1600; a fourth (100 -> still 510 longest) would make 2040.
        assert_eq!(next_pass(&waiting, 1600), vec![0, 2, 4]);
        assert_eq!(next_pass(&waiting, 100_000), vec![0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn an_item_over_the_budget_still_runs_alone() {
        assert_eq!(next_pass(&items(&[5000, 10, 10]), 1000), vec![0]);
        assert!(next_pass(&[], 1000).is_empty());
    }

    #[test]
    fn windows_never_mix() {
        let mut waiting = items(&[100, 100, 100]);
        waiting[1].window = AttentionWindow::Local(256);
        assert_eq!(next_pass(&waiting, 10_000), vec![0, 2]);
    }
}
