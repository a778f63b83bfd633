//! Spatial block jackknife of a refined pose: the spread of the estimate when one region of
//! the image is left out.
//!
//! The sandwich covariance assumes independent residuals. A learned matcher's errors are
//! not: neighbouring matches share receptive fields, so a region drifts together (under
//! strong roll, exposure change, repeated texture), and the analytic covariance then claims
//! several times the certainty the pose has. Deleting one spatially contiguous block at a time
//! and refitting measures the estimator's spread with that correlation in it (the delete-a-
//! group jackknife; groups must contain the correlated units, hence contiguous blocks). The
//! published covariance is the larger of the two in every direction
//! ([`positive_part_max`]), so the jackknife only ever widens it.

use nalgebra::{Matrix3, Matrix6, Rotation3, Vector2, Vector6};

use super::schedule::RefineProblem;
use super::RobustLoss;
use crate::geometry::pose::{RelativePose, UNOBSERVABLE_TRANSLATION_VARIANCE};

/// Fewest correspondences per block: below it the jackknife's refits are too few-point to say
/// anything beyond the analytic covariance.
pub const MIN_POINTS_PER_BLOCK: usize = 6;

/// How a refined model deviates from another, as a 6-vector ordered like the pose
/// covariance (`[δt, δθ]`, zeros where a model has no such component).
pub(crate) trait PoseDeviation {
    /// `self` relative to `reference`.
    fn deviation_from(&self, reference: &Self) -> Vector6<f64>;
}

/// Rotation only: `δθ = log(R·R̂ᵀ)` (the covariance's `exp([δθ]×)·R̂` convention).
impl PoseDeviation for Matrix3<f64> {
    fn deviation_from(&self, reference: &Self) -> Vector6<f64> {
        let d = rotation_deviation(self, reference);
        Vector6::new(0.0, 0.0, 0.0, d.x, d.y, d.z)
    }
}

/// Unit translation and rotation: `δt` is the refit's translation minus the reference's,
/// projected onto the plane ⟂ `t̂` (the covariance's tangent convention), `δθ` as for a rotation.
impl PoseDeviation for RelativePose {
    fn deviation_from(&self, reference: &Self) -> Vector6<f64> {
        let t = reference.translation;
        let along = t.norm_squared();
        let mut dt = self.translation - t;
        if along > 0.0 {
            dt -= t * (dt.dot(&t) / along);
        }
        let d = rotation_deviation(self.rotation.matrix(), reference.rotation.matrix());
        Vector6::new(dt.x, dt.y, dt.z, d.x, d.y, d.z)
    }
}

fn rotation_deviation(r: &Matrix3<f64>, reference: &Matrix3<f64>) -> nalgebra::Vector3<f64> {
    Rotation3::from_matrix_unchecked(r * reference.transpose()).scaled_axis()
}

/// `covariance` of `model` (refined on `set` with `loss` and squared scale `scale2`) widened to
/// the block jackknife's spread over a `grid`×`grid` split of the correspondences' `positions`
/// (unchanged when `grid` is 0 or there are too few points). Unobservable rows stay as they are.
#[allow(clippy::too_many_arguments)]
pub(crate) fn widen<P>(
    problem: &P,
    model: &P::Model,
    set: &[bool],
    positions: &[Vector2<f64>],
    loss: RobustLoss,
    scale2: f64,
    covariance: Matrix6<f64>,
    grid: usize,
    max_iterations: usize,
) -> Matrix6<f64>
where
    P: RefineProblem,
    P::Model: PoseDeviation,
{
    let Some(blocks) = spatial_blocks(positions, set, grid) else {
        return covariance;
    };
    let Some(spread) = block_jackknife(problem, model, set, &blocks, loss, scale2, max_iterations)
    else {
        return covariance;
    };
    let observable: [bool; 6] =
        std::array::from_fn(|i| covariance[(i, i)] < UNOBSERVABLE_TRANSLATION_VARIANCE);
    // Parameters estimated: a rotation, plus a translation direction (2) when observable.
    let params = if observable[0] { 5 } else { 3 };
    let blocks_used = blocks.iter().flatten().max().map_or(0, |m| m + 1);
    let spread = spread * inverse_unbiasing(blocks_used - 1, params);
    positive_part_max(&covariance, &spread, &observable)
}

/// The factor `ν / (ν − p − 1)` that makes a covariance estimated with `ν` degrees of freedom
/// honest in the NEES sense: a Wishart estimate `S` gives `E[S⁻¹] = Σ⁻¹ · ν/(ν − p − 1)`, so
/// `dᵀS⁻¹d` of a true error `d` averages `p·ν/(ν − p − 1)` (Hotelling's T²), not `p`. With 16
/// blocks and a rotation, 15/11. Too few blocks for the correction: the largest it takes.
fn inverse_unbiasing(dof: usize, params: usize) -> f64 {
    if dof > params + 1 {
        dof as f64 / (dof - params - 1) as f64
    } else {
        dof.max(1) as f64
    }
}

/// Equal-count, spatially contiguous blocks of the flagged correspondences: `grid` strips of
/// equal count along x, each cut into `grid` cells of equal count along y. Returns the block
/// index per correspondence (`None` where not flagged), or `None` when there are fewer than
/// [`MIN_POINTS_PER_BLOCK`] points per block.
pub(crate) fn spatial_blocks(
    positions: &[Vector2<f64>],
    set: &[bool],
    grid: usize,
) -> Option<Vec<Option<usize>>> {
    let mut flagged: Vec<usize> = (0..positions.len()).filter(|&i| set[i]).collect();
    let blocks = grid * grid;
    if grid < 2 || flagged.len() < blocks * MIN_POINTS_PER_BLOCK {
        return None;
    }
    flagged.sort_by(|&a, &b| positions[a].x.total_cmp(&positions[b].x));
    let mut out = vec![None; positions.len()];
    for (strip, chunk) in split_even(&flagged, grid).into_iter().enumerate() {
        let mut cells = chunk.to_vec();
        cells.sort_by(|&a, &b| positions[a].y.total_cmp(&positions[b].y));
        for (cell, members) in split_even(&cells, grid).into_iter().enumerate() {
            for &i in members {
                out[i] = Some(strip * grid + cell);
            }
        }
    }
    Some(out)
}

/// `items` cut into `parts` consecutive runs whose lengths differ by at most one.
fn split_even<T>(items: &[T], parts: usize) -> Vec<&[T]> {
    let n = items.len();
    (0..parts)
        .map(|k| &items[k * n / parts..(k + 1) * n / parts])
        .collect()
}

/// The delete-a-block jackknife covariance of `model` (refined on `set` with `loss` and
/// squared scale `scale2`): each block of `blocks` left out in turn, the model refitted from
/// `model` on the rest, and `(k−1)/k · Σ (δᵢ − δ̄)(δᵢ − δ̄)ᵀ` over the k deviations.
pub(crate) fn block_jackknife<P>(
    problem: &P,
    model: &P::Model,
    set: &[bool],
    blocks: &[Option<usize>],
    loss: RobustLoss,
    scale2: f64,
    max_iterations: usize,
) -> Option<Matrix6<f64>>
where
    P: RefineProblem,
    P::Model: PoseDeviation,
{
    let k = blocks.iter().flatten().max().map(|m| m + 1)?;
    if k < 2 {
        return None;
    }
    let mut deviations = Vec::with_capacity(k);
    for left_out in 0..k {
        let rest: Vec<bool> = set
            .iter()
            .zip(blocks)
            .map(|(f, b)| *f && *b != Some(left_out))
            .collect();
        let (refit, _) = problem.refine(&rest, model, loss, scale2.sqrt(), max_iterations);
        let d = refit.deviation_from(model);
        if !d.iter().all(|v| v.is_finite()) {
            return None;
        }
        deviations.push(d);
    }
    let mean = deviations.iter().sum::<Vector6<f64>>() / k as f64;
    let spread = deviations
        .iter()
        .map(|d| (d - mean) * (d - mean).transpose())
        .sum::<Matrix6<f64>>();
    Some(spread * ((k - 1) as f64 / k as f64))
}

/// `a + (b − a)₊`: `a` widened to `b` in every direction where `b` is larger (the positive
/// part of the difference, by eigen-decomposition), on the rows and columns flagged in
/// `observable` only; the others keep `a`'s values. The result is ⪰ both on those rows.
pub(crate) fn positive_part_max(
    a: &Matrix6<f64>,
    b: &Matrix6<f64>,
    observable: &[bool; 6],
) -> Matrix6<f64> {
    let mut difference = b - a;
    for i in 0..6 {
        for j in 0..6 {
            if !observable[i] || !observable[j] {
                difference[(i, j)] = 0.0;
            }
        }
    }
    let difference = (difference + difference.transpose()) * 0.5;
    let eig = difference.symmetric_eigen();
    let mut widened = *a;
    for (k, &l) in eig.eigenvalues.iter().enumerate() {
        if l > 0.0 {
            let v = eig.eigenvectors.column(k);
            widened += v * v.transpose() * l;
        }
    }
    widened
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_equal_count_and_contiguous() {
        // A 12×12 grid of points, all flagged: 3×3 blocks of 16 points, each a 4×4 square.
        let positions: Vec<Vector2<f64>> = (0..144)
            .map(|i| Vector2::new((i % 12) as f64, (i / 12) as f64))
            .collect();
        let set = vec![true; 144];
        let blocks = spatial_blocks(&positions, &set, 3).unwrap();
        let mut counts = [0usize; 9];
        for (p, b) in positions.iter().zip(&blocks) {
            let b = b.unwrap();
            counts[b] += 1;
            // Strip b / 3 holds x in [4s, 4s + 3], cell b % 3 holds y in [4c, 4c + 3].
            assert_eq!((p.x / 4.0).floor() as usize, b / 3, "{p:?}");
            assert_eq!((p.y / 4.0).floor() as usize, b % 3, "{p:?}");
        }
        assert_eq!(counts, [16; 9]);
        // Unflagged points get no block; too few points give none at all.
        let mut partial = set.clone();
        partial[0] = false;
        assert_eq!(spatial_blocks(&positions, &partial, 3).unwrap()[0], None);
        assert!(spatial_blocks(&positions[..50], &set[..50], 3).is_none());
    }

    #[test]
    fn positive_part_max_dominates_both_and_keeps_unobservable_rows() {
        let a = Matrix6::from_diagonal(&Vector6::new(1e6, 1e6, 1e6, 1.0, 4.0, 1.0));
        let mut b = Matrix6::zeros();
        b[(3, 3)] = 9.0;
        b[(4, 4)] = 1.0;
        b[(3, 4)] = 0.5;
        b[(4, 3)] = 0.5;
        b[(0, 0)] = 5.0;
        let observable = [false, false, false, true, true, true];
        let m = positive_part_max(&a, &b, &observable);
        // Unobservable rows untouched.
        assert_eq!(m[(0, 0)], 1e6);
        assert_eq!(m[(0, 3)], 0.0);
        let block = |x: &Matrix6<f64>| x.fixed_view::<3, 3>(3, 3).into_owned();
        for other in [a, b] {
            let d = block(&m) - block(&other);
            let min = d.symmetric_eigenvalues().min();
            assert!(min > -1e-12, "not ⪰: {min}");
        }
        // Where b is already smaller (the z axis), a stays.
        assert_eq!(m[(5, 5)], 1.0);
        // b larger than a: the result is b there.
        let m2 = positive_part_max(&a, &(a * 3.0), &[true; 6]);
        assert!((m2 - a * 3.0).abs().max() < 1e-6);
    }
}
