//! IMD's training losses (Efficient LoFTR's `loftr_loss.py`, notes §2):
//! `L = w_c·L_c + w_f·L_f + w_s·L_s` with weights 1.0 / 1.0 / 0.25 by default.
//!
//! - `L_c`: focal loss `−α(1−p)^γ log p` (α 0.25, γ 2) on the **positive** entries of the
//!   coarse dual-softmax matrix, times the padding-mask weight `mask0[i]·mask1[j]` and the
//!   coarse overlap weight, averaged over positives;
//! - `L_f`: the same focal form on the positives of the stage-1 `[M, W², W²]` matrix, times the
//!   fine overlap weight;
//! - `L_s`: `‖gt − pred‖²` of the stage-2 sub-pixel offset, averaged over the pixel-level GT
//!   whose target has `‖gt‖∞ < fine_correct_thr`; the prediction is the 3×3 soft-argmax around
//!   the **GT** stage-1 pixel (as EL trains it), recomputed here from the raw stage-2 scores.
//!
//! Probabilities are clamped to `[1e-6, 1 − 1e-6]` before the log. A term with no positives is
//! an exact 0 that still belongs to the graph (EL assigns a zero-weight dummy positive).

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::supervision::{CoarseGt, FineGrid, FineGt};
use super::{check_shape, TrainError};
use crate::model::fine::refine::subpixel_from_rows;

/// Loss weights and focal parameters (serde: the `loss:` section of the training config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LossConfig {
    /// Focal α (0.25).
    pub focal_alpha: f64,
    /// Focal γ (2; γ = 0 with α = 1 is plain NLL).
    pub focal_gamma: f64,
    /// Weight of the coarse loss (1.0).
    pub coarse_weight: f64,
    /// Weight of the stage-1 fine loss (1.0).
    pub fine_weight: f64,
    /// Weight of the stage-2 sub-pixel L2 loss (0.25).
    pub subpixel_weight: f64,
    /// Multiply coarse positives by their overlap weight (true).
    pub coarse_overlap_weight: bool,
    /// Multiply fine positives by their overlap weight (true).
    pub fine_overlap_weight: bool,
    /// Sub-pixel GT with `‖gt‖∞` at or above this is not supervised (1.0).
    pub fine_correct_thr: f64,
}

impl Default for LossConfig {
    fn default() -> Self {
        LossConfig {
            focal_alpha: 0.25,
            focal_gamma: 2.0,
            coarse_weight: 1.0,
            fine_weight: 1.0,
            subpixel_weight: 0.25,
            coarse_overlap_weight: true,
            fine_overlap_weight: true,
            fine_correct_thr: 1.0,
        }
    }
}

impl LossConfig {
    /// Range checks, naming the field.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |field: &str, reason: String| {
            Err(TrainError::InvalidConfig {
                field: format!("loss.{field}"),
                reason,
            })
        };
        for (field, v) in [
            ("focal_alpha", self.focal_alpha),
            ("focal_gamma", self.focal_gamma),
            ("coarse_weight", self.coarse_weight),
            ("fine_weight", self.fine_weight),
            ("subpixel_weight", self.subpixel_weight),
            ("fine_correct_thr", self.fine_correct_thr),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(field, format!("{v} is not a finite number ≥ 0"));
            }
        }
        Ok(())
    }
}

/// The three terms and their weighted sum (0-dim tensors in the graph).
#[derive(Debug)]
pub struct LossTerms {
    /// Coarse focal loss.
    pub coarse: Tensor,
    /// Stage-1 fine focal loss.
    pub fine: Tensor,
    /// Stage-2 sub-pixel L2 loss.
    pub subpixel: Tensor,
    /// `coarse_weight·coarse + fine_weight·fine + subpixel_weight·subpixel`.
    pub total: Tensor,
}

/// What the model produced for a batch, as the losses need it.
#[derive(Debug)]
pub struct ModelOutputs<'a> {
    /// `[N, L0, L1]` coarse dual-softmax confidence.
    pub coarse_conf: &'a Tensor,
    /// `[N, h0, w0]` / `[N, h1, w1]` coarse padding masks (true = real image), if padded.
    pub masks: Option<(&'a Tensor, &'a Tensor)>,
    /// `[M, W², W²]` stage-1 dual-softmax confidence (inner window of image 1).
    pub fine_conf: &'a Tensor,
    /// `[M, W², (W+2)²]` raw stage-2 scores (before the temperature).
    pub subpixel_scores: &'a Tensor,
    /// Stage-2 softmax temperature (10).
    pub subpixel_temperature: f64,
}

fn focal_positive(p: &Tensor, alpha: f64, gamma: f64) -> Tensor {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    (-&p + 1.0).pow_tensor_scalar(gamma) * p.log() * (-alpha)
}

fn graph_zero(t: &Tensor) -> Tensor {
    (t.sum(Kind::Float) * 0.0).to_kind(Kind::Float)
}

/// Coarse focal loss on the GT positives of `conf` `[N, L0, L1]`.
pub fn coarse_loss(
    conf: &Tensor,
    gt: &CoarseGt,
    masks: Option<(&Tensor, &Tensor)>,
    config: &LossConfig,
) -> Result<Tensor, TrainError> {
    check_shape(
        "coarse confidence",
        conf,
        &[gt.batch, gt.cells.0, gt.cells.1],
    )?;
    if gt.is_empty() {
        return Ok(graph_zero(conf));
    }
    let device = conf.device();
    let (b, i, j) = (
        gt.b_ids.to_device(device),
        gt.i_ids.to_device(device),
        gt.j_ids.to_device(device),
    );
    let p = conf.index(&[Some(&b), Some(&i), Some(&j)]);
    let mut loss = focal_positive(&p, config.focal_alpha, config.focal_gamma);
    if let Some((m0, m1)) = masks {
        let n = gt.batch;
        check_shape("mask0", m0, &[n, -1, -1])?;
        check_shape("mask1", m1, &[n, -1, -1])?;
        let w0 = m0
            .view([n, -1])
            .to_device(device)
            .index(&[Some(&b), Some(&i)]);
        let w1 = m1
            .view([n, -1])
            .to_device(device)
            .index(&[Some(&b), Some(&j)]);
        loss *= w0.to_kind(Kind::Float) * w1.to_kind(Kind::Float);
    }
    if config.coarse_overlap_weight {
        loss *= gt.overlap_weight.to_device(device);
    }
    Ok(loss.mean(Kind::Float))
}

/// Stage-1 fine focal loss on the GT positives of `conf` `[M, W², W²]`.
pub fn fine_loss(conf: &Tensor, gt: &FineGt, config: &LossConfig) -> Result<Tensor, TrainError> {
    check_shape(
        "fine confidence",
        conf,
        &[gt.num_matches, gt.window_area, gt.window_area],
    )?;
    if gt.is_empty() {
        return Ok(graph_zero(conf));
    }
    let device = conf.device();
    let (m, i, j) = (
        gt.m_ids.to_device(device),
        gt.i_ids.to_device(device),
        gt.j_ids.to_device(device),
    );
    let p = conf.index(&[Some(&m), Some(&i), Some(&j)]);
    let mut loss = focal_positive(&p, config.focal_alpha, config.focal_gamma);
    if config.fine_overlap_weight {
        loss *= gt.overlap_weight.to_device(device);
    }
    Ok(loss.mean(Kind::Float))
}

/// Stage-2 prediction at the GT stage-1 pixels: softmax(scores/T) over the 3×3 neighbourhood
/// ([`FineGrid::stage2_neighbourhood`]) and its spatial expectation on {−1, 0, 1}², `[K, 2]`
/// `(x, y)` in fine pixels. `scores` is `[M, W², (W+2)²]`. The same function as inference
/// ([`subpixel_from_rows`]).
pub fn subpixel_expectation(
    scores: &Tensor,
    gt: &FineGt,
    grid: &FineGrid,
    temperature: f64,
) -> Result<Tensor, TrainError> {
    let pw = grid.padded_window();
    check_shape(
        "stage-2 scores",
        scores,
        &[gt.num_matches, grid.window_area(), pw * pw],
    )?;
    if !(temperature.is_finite() && temperature > 0.0) {
        return Err(TrainError::input(
            "stage-2 temperature",
            format!("{temperature} is not > 0"),
        ));
    }
    let device = scores.device();
    let m = gt.m_ids.to_device(device);
    let i = gt.i_ids.to_device(device);
    let rows = scores.index(&[Some(&m), Some(&i)]); // [K, (W+2)²]
    Ok(subpixel_from_rows(
        &rows,
        &gt.j_ids.to_device(device),
        temperature,
    ))
}

/// `mean ‖gt − pred‖²` over GT with `‖gt‖∞ < correct_thr`; `pred`, `gt` are `[K, 2]`.
pub fn subpixel_l2(pred: &Tensor, gt: &Tensor, correct_thr: f64) -> Result<Tensor, TrainError> {
    let k = pred.size().first().copied().unwrap_or(0);
    check_shape("sub-pixel prediction", pred, &[k, 2])?;
    check_shape("sub-pixel target", gt, &[k, 2])?;
    if k == 0 {
        return Ok(graph_zero(pred));
    }
    let gt = gt.to_device(pred.device()).to_kind(Kind::Float);
    let keep = gt.abs().amax(1, false).lt(correct_thr);
    let sq = (&gt - pred.to_kind(Kind::Float))
        .square()
        .sum_dim_intlist(1, false, Kind::Float);
    let n_keep = keep.sum(Kind::Float);
    if n_keep.double_value(&[]) == 0.0 {
        return Ok(graph_zero(pred));
    }
    Ok((sq * keep.to_kind(Kind::Float)).sum(Kind::Float) / n_keep)
}

/// All three terms and the weighted total.
pub fn imd_loss(
    outputs: &ModelOutputs<'_>,
    coarse_gt: &CoarseGt,
    fine_gt: &FineGt,
    grid: &FineGrid,
    config: &LossConfig,
) -> Result<LossTerms, TrainError> {
    config.validate()?;
    let coarse = coarse_loss(outputs.coarse_conf, coarse_gt, outputs.masks, config)?;
    let fine = fine_loss(outputs.fine_conf, fine_gt, config)?;
    let pred = subpixel_expectation(
        outputs.subpixel_scores,
        fine_gt,
        grid,
        outputs.subpixel_temperature,
    )?;
    let subpixel = subpixel_l2(&pred, &fine_gt.subpixel, config.fine_correct_thr)?;
    let total = &coarse * config.coarse_weight
        + &fine * config.fine_weight
        + &subpixel * config.subpixel_weight;
    Ok(LossTerms {
        coarse,
        fine,
        subpixel,
        total,
    })
}
