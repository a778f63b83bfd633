//! IMIM multi-instance matching accuracy (notes §6; the paper gives no formula, this is the
//! construction documented there).
//!
//! A pair shows ≥ 2 instances of one category in both frames, with their masks. A match whose
//! image-0 point lies in instance k's mask (nearest pixel) is *an instance match*; it is
//! correct when its image-1 point lies in the mask of the **same** instance k in image 1.
//! Per pair, accuracy = correct / instance matches; a pair without instance matches scores 0
//! (as LoFTR's precision scores pairs without matches). The benchmark reports the mean over
//! pairs and, beside it, the pooled share over all instance matches.

use serde::Serialize;

use super::{mean, EvalError, PairOutcome, SampleMatches};
use crate::data::{GroundTruth, PairSample};

/// Per-pair result (one entry of the JSON's `pairs`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImimPair {
    /// Pair name.
    pub name: String,
    /// Instances annotated in both frames.
    pub instances: usize,
    /// Matches of the pair.
    pub num_matches: usize,
    /// Matches whose image-0 point is inside an instance mask.
    pub instance_matches: usize,
    /// Of those, matches landing in the same instance's mask in image 1.
    pub correct: usize,
    /// `correct / instance_matches` (0 when there are none).
    pub accuracy: f64,
    /// Matching time, seconds.
    pub seconds: f64,
}

/// Benchmark summary (percentages).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImimSummary {
    /// Pairs evaluated.
    pub pairs: usize,
    /// Mean per-pair accuracy, %.
    pub accuracy: f64,
    /// Correct / instance matches over all pairs, %.
    pub accuracy_pooled: f64,
    /// Mean matches per pair.
    pub mean_matches: f64,
    /// Mean instance matches per pair.
    pub mean_instance_matches: f64,
    /// Mean matching time per pair, seconds.
    pub mean_seconds: f64,
}

/// Score one pair.
pub fn score_pair(
    sample: &PairSample,
    m: &SampleMatches,
    seconds: f64,
) -> Result<ImimPair, EvalError> {
    let GroundTruth::Instances { instances } = &sample.ground_truth else {
        return Err(EvalError::input(&sample.name, "has no instance masks"));
    };
    let mut instance_matches = 0;
    let mut correct = 0;
    for mt in &m.matches {
        if let Some(inst) = instances
            .iter()
            .find(|i| i.mask0.contains(mt.p0.x, mt.p0.y))
        {
            instance_matches += 1;
            if inst.mask1.contains(mt.p1.x, mt.p1.y) {
                correct += 1;
            }
        }
    }
    Ok(ImimPair {
        name: sample.name.clone(),
        instances: instances.len(),
        num_matches: m.matches.len(),
        instance_matches,
        correct,
        accuracy: if instance_matches > 0 {
            correct as f64 / instance_matches as f64
        } else {
            0.0
        },
        seconds,
    })
}

/// Aggregate per-pair results.
pub fn summarize(pairs: &[PairOutcome<ImimPair>]) -> ImimSummary {
    let inst: usize = pairs.iter().map(|p| p.record.instance_matches).sum();
    let correct: usize = pairs.iter().map(|p| p.record.correct).sum();
    ImimSummary {
        pairs: pairs.len(),
        accuracy: 100.0 * mean(pairs.iter().map(|p| p.record.accuracy)),
        accuracy_pooled: if inst > 0 {
            100.0 * correct as f64 / inst as f64
        } else {
            0.0
        },
        mean_matches: mean(pairs.iter().map(|p| p.record.num_matches as f64)),
        mean_instance_matches: mean(pairs.iter().map(|p| p.record.instance_matches as f64)),
        mean_seconds: mean(pairs.iter().map(|p| p.record.seconds)),
    }
}
