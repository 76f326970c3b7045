//! How far plate confidences can be trusted: reads scored against the truth, their
//! reliability by confidence (the share right among reads given about the same
//! confidence), and the wrong reads a threshold would let through.

use serde::Serialize;

/// Confidence bins: tenths.
pub const BINS: usize = 10;

/// Reads grouped by confidence, with how many of each group were right.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Reliability {
    /// Per bin `[i/10, (i+1)/10)` (the last includes 1.0): reads, and the right ones.
    pub reads: [usize; BINS],
    pub right: [usize; BINS],
    /// Every wrong read's confidence, highest first.
    pub wrong: Vec<f32>,
    #[serde(skip)]
    right_confidences: Vec<f32>,
}

impl Reliability {
    pub fn add(&mut self, confidence: f32, right: bool) {
        let bin = ((confidence.clamp(0.0, 1.0) * BINS as f32) as usize).min(BINS - 1);
        self.reads[bin] += 1;
        if right {
            self.right[bin] += 1;
            self.right_confidences.push(confidence);
        } else {
            self.wrong.push(confidence);
            self.wrong.sort_by(|a, b| b.total_cmp(a));
        }
    }

    pub fn merge(&mut self, other: &Reliability) {
        for i in 0..BINS {
            self.reads[i] += other.reads[i];
            self.right[i] += other.right[i];
        }
        self.wrong.extend(&other.wrong);
        self.right_confidences.extend(&other.right_confidences);
        self.wrong.sort_by(|a, b| b.total_cmp(a));
    }

    /// Wrong reads at or above `threshold`: the ones that would go to review as read.
    pub fn wrong_at_or_above(&self, threshold: f32) -> usize {
        self.wrong.iter().filter(|&&c| c >= threshold).count()
    }

    /// Right reads at or above `threshold`: the plates the threshold still lets
    /// through as read.
    pub fn right_at_or_above(&self, threshold: f32) -> usize {
        self.right_confidences
            .iter()
            .filter(|&&c| c >= threshold)
            .count()
    }

    /// One line per bin that holds reads: `0.7–0.8   12 reads   11 right (92 %)`.
    pub fn table(&self) -> Vec<String> {
        (0..BINS)
            .filter(|&i| self.reads[i] > 0)
            .map(|i| {
                format!(
                    "{:.1}–{:.1}  {:5} reads  {:5} right ({:3.0} %)",
                    i as f32 / BINS as f32,
                    (i + 1) as f32 / BINS as f32,
                    self.reads[i],
                    self.right[i],
                    100.0 * self.right[i] as f32 / self.reads[i] as f32
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fall_in_tenths_and_wrong_ones_are_kept_by_confidence() {
        let mut r = Reliability::default();
        r.add(0.95, true);
        r.add(1.0, true);
        r.add(0.91, false);
        r.add(0.42, false);
        r.add(0.05, true);
        assert_eq!(r.reads[9], 3);
        assert_eq!(r.right[9], 2);
        assert_eq!(r.reads[4], 1);
        assert_eq!(r.right[0], 1);
        assert_eq!(r.wrong, vec![0.91, 0.42]);
        assert_eq!(r.wrong_at_or_above(0.9), 1);
        assert_eq!(r.wrong_at_or_above(0.95), 0);
        assert_eq!(r.right_at_or_above(0.9), 2);
        assert_eq!(r.right_at_or_above(0.0), 3);
        let mut both = r.clone();
        both.merge(&r);
        assert_eq!(both.reads[9], 6);
        assert_eq!(both.wrong, vec![0.91, 0.91, 0.42, 0.42]);
        assert_eq!(r.table().len(), 3);
        assert!(r.table()[2].contains("3 reads"), "{:?}", r.table());
    }
}
