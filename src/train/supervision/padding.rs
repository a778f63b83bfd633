//! Training-time padding of predicted coarse matches with ground-truth matches, so the fine
//! stage always has enough (and some correct) windows to learn from (Efficient LoFTR's
//! `CoarseMatching.forward` in training mode).

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::coarse::CoarseGt;
use crate::data::rng::SeededRng;
use crate::train::{check_shape, TrainError};

/// How many coarse matches feed the fine stage during training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GtPaddingConfig {
    /// `N_train = int(max_candidates · coarse_percent)` (EL `TRAIN_COARSE_PERCENT` = 0.3).
    pub coarse_percent: f64,
    /// At least this many GT matches are always added (EL `TRAIN_PAD_NUM_GT_MIN` = 200).
    pub min_gt_pad: i64,
}

impl Default for GtPaddingConfig {
    fn default() -> Self {
        GtPaddingConfig {
            coarse_percent: 0.3,
            min_gt_pad: 200,
        }
    }
}

/// Coarse matches for the fine stage: the (subsampled) predictions then the GT padding.
#[derive(Debug)]
pub struct TrainCoarseMatches {
    /// `[M]` i64 pair index.
    pub b_ids: Tensor,
    /// `[M]` i64 image-0 cell.
    pub i_ids: Tensor,
    /// `[M]` i64 image-1 cell.
    pub j_ids: Tensor,
    /// `[M]` f32 predicted confidence; 0 on GT padding (EL's marker).
    pub mconf: Tensor,
    /// `[M]` bool: true for GT padding, which must be left out of outputs and metrics.
    pub is_gt_pad: Tensor,
    /// How many of the `M` (the first ones) are predictions.
    pub num_predicted: i64,
}

/// The model's coarse matches of a batch (all on one device).
#[derive(Debug)]
pub struct PredictedCoarseMatches {
    /// `[P]` i64 pair index.
    pub b_ids: Tensor,
    /// `[P]` i64 image-0 cell.
    pub i_ids: Tensor,
    /// `[P]` i64 image-1 cell.
    pub j_ids: Tensor,
    /// `[P]` float confidence.
    pub mconf: Tensor,
}

/// EL's `compute_max_candidates`: `Σ_b min(h0·w0, h1·w1)` over the valid (unpadded) coarse
/// cells, the valid height/width being the largest number of valid rows/columns of a mask.
/// Without masks it is `N · max(L0, L1)` as in EL.
pub fn max_candidates(
    n: i64,
    cells: (i64, i64),
    mask0: Option<&Tensor>,
    mask1: Option<&Tensor>,
) -> Result<i64, TrainError> {
    match (mask0, mask1) {
        (Some(m0), Some(m1)) => {
            check_shape("mask0", m0, &[n, -1, -1])?;
            check_shape("mask1", m1, &[n, -1, -1])?;
            let area = |m: &Tensor| {
                let m = m.to_kind(Kind::Int64);
                let h = m.sum_dim_intlist(1, false, Kind::Int64).amax(-1, false);
                let w = m.sum_dim_intlist(-1, false, Kind::Int64).amax(-1, false);
                h * w
            };
            let a0 = area(m0);
            let a1 = area(m1);
            Ok(a0.minimum(&a1).sum(Kind::Int64).int64_value(&[]))
        }
        _ => Ok(n * cells.0.max(cells.1)),
    }
}

/// Pad predicted coarse matches with random GT matches, seeded:
/// - `N_train = int(max_candidates · coarse_percent)`; it must exceed `min_gt_pad`;
/// - when there are more than `N_train − min_gt_pad` predictions, `N_train − min_gt_pad` of
///   them are drawn uniformly **with replacement** (as EL's `randint`), else all are kept;
/// - `max(N_train − N_pred, min_gt_pad)` GT matches are drawn with replacement and get
///   `mconf = 0`; with no GT at all, the dummy match (0, 0, 0) is used, as in EL.
///
pub fn pad_with_gt(
    pred: &PredictedCoarseMatches,
    gt: &CoarseGt,
    max_candidates: i64,
    config: &GtPaddingConfig,
    rng: &mut SeededRng,
) -> Result<TrainCoarseMatches, TrainError> {
    let (pred_b, pred_i, pred_j, pred_conf) = (&pred.b_ids, &pred.i_ids, &pred.j_ids, &pred.mconf);
    let p = pred_b.size().first().copied().unwrap_or(0);
    for (name, t) in [("pred_b", pred_b), ("pred_i", pred_i), ("pred_j", pred_j)] {
        check_shape(name, t, &[p])?;
        if t.kind() != Kind::Int64 {
            return Err(TrainError::input(
                name,
                format!("has dtype {:?}, expected i64", t.kind()),
            ));
        }
    }
    check_shape("pred_conf", pred_conf, &[p])?;
    if !(config.coarse_percent > 0.0 && config.coarse_percent <= 1.0) {
        return Err(TrainError::InvalidConfig {
            field: "gt_padding.coarse_percent".into(),
            reason: format!("{} is not in (0, 1]", config.coarse_percent),
        });
    }
    let n_train = (max_candidates as f64 * config.coarse_percent) as i64;
    if config.min_gt_pad < 0 || n_train <= config.min_gt_pad {
        return Err(TrainError::InvalidConfig {
            field: "gt_padding.min_gt_pad".into(),
            reason: format!(
                "{} must be ≥ 0 and below N_train = int({max_candidates} · {}) = {n_train} \
                 (use larger images or a smaller min_gt_pad)",
                config.min_gt_pad, config.coarse_percent
            ),
        });
    }
    let device = pred_b.device();
    let draw = |rng: &mut SeededRng, count: i64, upto: i64| -> Tensor {
        let v: Vec<i64> = (0..count).map(|_| rng.below(upto as u64) as i64).collect();
        Tensor::from_slice(&v).to_device(device)
    };
    let keep = n_train - config.min_gt_pad;
    let pred_idx = if p <= keep {
        Tensor::arange(p, (Kind::Int64, device))
    } else {
        draw(rng, keep, p)
    };
    let num_pred = pred_idx.size()[0];
    let n_pad = (n_train - p).max(config.min_gt_pad);

    let (gb, gi, gj) = if gt.is_empty() {
        let z = Tensor::zeros([1], (Kind::Int64, device));
        (z.shallow_clone(), z.shallow_clone(), z)
    } else {
        (
            gt.b_ids.to_device(device),
            gt.i_ids.to_device(device),
            gt.j_ids.to_device(device),
        )
    };
    let pad_idx = draw(rng, n_pad, gb.size()[0]);
    let cat = |pred: &Tensor, g: &Tensor| {
        Tensor::cat(
            &[pred.index_select(0, &pred_idx), g.index_select(0, &pad_idx)],
            0,
        )
    };
    let mconf = Tensor::cat(
        &[
            pred_conf.to_kind(Kind::Float).index_select(0, &pred_idx),
            Tensor::zeros([n_pad], (Kind::Float, device)),
        ],
        0,
    );
    let is_gt_pad = Tensor::cat(
        &[
            Tensor::zeros([num_pred], (Kind::Bool, device)),
            Tensor::ones([n_pad], (Kind::Bool, device)),
        ],
        0,
    );
    Ok(TrainCoarseMatches {
        b_ids: cat(pred_b, &gb),
        i_ids: cat(pred_i, &gi),
        j_ids: cat(pred_j, &gj),
        mconf,
        is_gt_pad,
        num_predicted: num_pred,
    })
}
