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
//! **Departure from the paper (opt-in, `negative_weight > 0`)**: EL's coarse loss only
//! rewards ground-truth entries, so nothing teaches the model to *not* match when two images
//! do not overlap. `L_n` is LoFTR's negative focal term `−(1−α) p^γ log(1 − p)` on every
//! **non-ground-truth** entry of the coarse dual-softmax matrix (times the padding-mask
//! weight), summed over image 1 and averaged over the image-0 cells of the batch (a row of
//! the dual softmax sums to at most 1, so this keeps the term O(1) per cell, where a mean over
//! all `L0·L1` entries would vanish). It applies to every pair, pairs without overlap (no
//! ground truth at all) included, and is added as `w_n·L_n`. With the default
//! `negative_weight: 0` the loss is exactly EL's.
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
    /// Weight of the negative coarse term `L_n` (module doc); 0 (default) = EL's loss.
    #[serde(skip_serializing_if = "is_zero")]
    pub negative_weight: f64,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
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
            negative_weight: 0.0,
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
            ("negative_weight", self.negative_weight),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(field, format!("{v} is not a finite number ≥ 0"));
            }
        }
        Ok(())
    }
}

/// The terms and their weighted sum (0-dim tensors in the graph).
#[derive(Debug)]
pub struct LossTerms {
    /// Coarse focal loss.
    pub coarse: Tensor,
    /// Stage-1 fine focal loss.
    pub fine: Tensor,
    /// Stage-2 sub-pixel L2 loss.
    pub subpixel: Tensor,
    /// Negative coarse term `L_n` (a graph zero when `negative_weight` is 0).
    pub negative: Tensor,
    /// `coarse_weight·coarse + fine_weight·fine + subpixel_weight·subpixel`
    /// `+ negative_weight·negative`.
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

/// Negative coarse focal term `L_n` (module doc) of `conf` `[N, L0, L1]`: zero on GT entries
/// and on padded cells, `−(1−α) p^γ log(1−p)` elsewhere, summed and divided by `N·L0`.
pub fn coarse_negative_loss(
    conf: &Tensor,
    gt: &CoarseGt,
    masks: Option<(&Tensor, &Tensor)>,
    config: &LossConfig,
) -> Result<Tensor, TrainError> {
    let (n, l0, l1) = (gt.batch, gt.cells.0, gt.cells.1);
    check_shape("coarse confidence", conf, &[n, l0, l1])?;
    if n * l0 == 0 {
        return Ok(graph_zero(conf));
    }
    let device = conf.device();
    let p = conf.to_kind(Kind::Float).clamp(1e-6, 1.0 - 1e-6);
    let mut loss =
        p.pow_tensor_scalar(config.focal_gamma) * (-&p + 1.0).log() * (-(1.0 - config.focal_alpha));
    let mut weight = Tensor::ones([n, l0, l1], (Kind::Float, device));
    if !gt.is_empty() {
        let (b, i, j) = (
            gt.b_ids.to_device(device),
            gt.i_ids.to_device(device),
            gt.j_ids.to_device(device),
        );
        let zero = Tensor::zeros([b.size()[0]], (Kind::Float, device));
        weight = weight.index_put(&[Some(&b), Some(&i), Some(&j)], &zero, false);
    }
    if let Some((m0, m1)) = masks {
        check_shape("mask0", m0, &[n, -1, -1])?;
        check_shape("mask1", m1, &[n, -1, -1])?;
        let w0 = m0.view([n, -1, 1]).to_device(device).to_kind(Kind::Float);
        let w1 = m1.view([n, 1, -1]).to_device(device).to_kind(Kind::Float);
        weight = weight * w0 * w1;
    }
    loss *= weight;
    Ok(loss.sum(Kind::Float) / (n * l0) as f64)
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

/// All terms and the weighted total.
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
    let mut total = &coarse * config.coarse_weight
        + &fine * config.fine_weight
        + &subpixel * config.subpixel_weight;
    let negative = if config.negative_weight > 0.0 {
        let neg = coarse_negative_loss(outputs.coarse_conf, coarse_gt, outputs.masks, config)?;
        total += &neg * config.negative_weight;
        neg
    } else {
        graph_zero(outputs.coarse_conf)
    };
    Ok(LossTerms {
        coarse,
        fine,
        subpixel,
        negative,
        total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// One pair, 2 image-0 cells × 3 image-1 cells, GT (0, 0) → 1; cell 1 has no GT.
    fn gt() -> CoarseGt {
        CoarseGt {
            batch: 1,
            cells: (2, 3),
            b_ids: Tensor::from_slice(&[0i64]),
            i_ids: Tensor::from_slice(&[0i64]),
            j_ids: Tensor::from_slice(&[1i64]),
            overlap_weight: Tensor::from_slice(&[1.0f32]),
        }
    }

    fn conf(v: &[f32]) -> Tensor {
        Tensor::from_slice(v)
            .view([1, 2, 3])
            .set_requires_grad(true)
    }

    fn value(t: &Tensor) -> f64 {
        t.double_value(&[])
    }

    #[test]
    fn negative_term_by_hand() {
        let cfg = LossConfig {
            negative_weight: 1.0,
            ..Default::default()
        };
        // −(1−α)·p²·ln(1−p), α = 0.25, summed over non-GT entries, divided by N·L0 = 2.
        let f = |p: f64| -0.75 * p * p * (1.0 - p).ln();
        let c = conf(&[0.2, 0.9, 0.0, 0.5, 0.1, 0.3]);
        let loss = coarse_negative_loss(&c, &gt(), None, &cfg).unwrap();
        let want = (f(0.2) + f(1e-6) + f(0.5) + f(0.1) + f(0.3)) / 2.0;
        assert!(
            (value(&loss) - want).abs() < 1e-6,
            "{} vs {want}",
            value(&loss)
        );
        assert!(value(&loss) > 0.0);
        // Gradients: none on the GT entry, positive (pushing p down) on every other entry
        // with p > 0 (d/dp of p²·(−ln(1−p)) > 0).
        loss.backward();
        let g = c.grad().view([-1]);
        let g: Vec<f64> = (0..6).map(|k| g.double_value(&[k])).collect();
        assert_eq!(g[1], 0.0);
        for k in [0usize, 3, 4, 5] {
            assert!(g[k] > 0.0, "grad {k} = {}", g[k]);
        }
    }

    #[test]
    fn negative_term_shrinks_with_non_gt_confidence_and_ignores_gt() {
        let cfg = LossConfig {
            negative_weight: 1.0,
            ..Default::default()
        };
        let at = |v: &[f32]| value(&coarse_negative_loss(&conf(v), &gt(), None, &cfg).unwrap());
        let high = at(&[0.4, 0.5, 0.3, 0.6, 0.2, 0.2]);
        let lower = at(&[0.2, 0.5, 0.15, 0.3, 0.1, 0.1]);
        let zero = at(&[0.0, 0.5, 0.0, 0.0, 0.0, 0.0]);
        assert!(high > lower && lower > zero, "{high} {lower} {zero}");
        // All non-GT at 0 (clamped to 1e-6): ~1e-12 per entry.
        assert!(zero < 1e-11);
        // The GT entry's own confidence does not enter.
        assert_eq!(at(&[0.4, 0.99, 0.3, 0.6, 0.2, 0.2]), high);
    }

    #[test]
    fn negative_term_without_ground_truth_and_with_padding() {
        let cfg = LossConfig {
            negative_weight: 1.0,
            ..Default::default()
        };
        let empty = CoarseGt {
            batch: 1,
            cells: (2, 3),
            b_ids: Tensor::zeros([0], (Kind::Int64, Device::Cpu)),
            i_ids: Tensor::zeros([0], (Kind::Int64, Device::Cpu)),
            j_ids: Tensor::zeros([0], (Kind::Int64, Device::Cpu)),
            overlap_weight: Tensor::zeros([0], (Kind::Float, Device::Cpu)),
        };
        let c = conf(&[0.5; 6]);
        let f = -0.75 * 0.25 * 0.5f64.ln();
        let loss = coarse_negative_loss(&c, &empty, None, &cfg).unwrap();
        assert!((value(&loss) - 6.0 * f / 2.0).abs() < 1e-6);
        // Padding: image-1 column 2 and image-0 row 1 padded leave 2 entries of row 0.
        let m0 = Tensor::from_slice(&[true, false]).view([1, 1, 2]);
        let m1 = Tensor::from_slice(&[true, true, false]).view([1, 1, 3]);
        let loss = coarse_negative_loss(&c, &empty, Some((&m0, &m1)), &cfg).unwrap();
        assert!((value(&loss) - 2.0 * f / 2.0).abs() < 1e-6);
        // And the full loss stays finite with no GT at all (a negative pair).
        loss.backward();
        assert!(bool::try_from(c.grad().isfinite().all()).unwrap());
    }
}
