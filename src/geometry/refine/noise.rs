//! Noise level of inlier residuals that were cut at the inlier threshold.
//!
//! Inliers are residuals with |r| < T, so their spread underestimates the noise σ (for T = 2σ
//! the mean square is 0.77σ²). Inverting the truncated second moment recovers σ, which then
//! sets the refinement's window and loss scale.

/// The error function, |error| < 1.2e-7 (Numerical Recipes' `erfc` Chebyshev fit).
pub fn erf(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * poly.exp();
    if x >= 0.0 {
        1.0 - erfc
    } else {
        erfc - 1.0
    }
}

/// `E[r² | |r| < T] / σ²` for r ~ N(0, σ²), with a = T/σ.
fn truncated_moment_1d(a: f64) -> f64 {
    let phi = (-0.5 * a * a).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let mass = erf(a / std::f64::consts::SQRT_2);
    if mass <= 0.0 {
        return a * a / 3.0;
    }
    1.0 - 2.0 * a * phi / mass
}

/// `E[|r|² | |r| < T] / σ²` for a 2-D r ~ N(0, σ²I), with a = T/σ.
fn truncated_moment_2d(a: f64) -> f64 {
    let h = 0.5 * a * a;
    let mass = -(-h).exp_m1();
    if mass <= 0.0 {
        return a * a / 2.0;
    }
    2.0 * (1.0 - h * (-h).exp() / mass)
}

/// σ such that residuals cut at `threshold` have mean square `mean_sq`, by bisection on
/// log σ (the truncated moment grows with σ). Capped at `threshold` when the residuals fill
/// the window so evenly that the cut hides σ.
fn invert(mean_sq: f64, threshold: f64, moment: fn(f64) -> f64) -> f64 {
    if mean_sq.is_nan() || mean_sq <= 0.0 || threshold.is_nan() || threshold <= 0.0 {
        return threshold;
    }
    let f = |s: f64| s * s * moment(threshold / s) - mean_sq;
    let (mut lo, mut hi) = (1e-6 * threshold, threshold);
    if f(hi) <= 0.0 {
        return threshold;
    }
    if f(lo) >= 0.0 {
        return lo;
    }
    for _ in 0..60 {
        let mid = (lo * hi).sqrt();
        if f(mid) > 0.0 {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    (lo * hi).sqrt()
}

/// σ of 1-D residuals (e.g. Sampson errors) from their mean square below `threshold`.
pub fn sigma_truncated_1d(mean_sq: f64, threshold: f64) -> f64 {
    invert(mean_sq, threshold, truncated_moment_1d)
}

/// Per-coordinate σ of 2-D residuals (transfer errors) from their mean square norm below
/// `threshold`.
pub fn sigma_truncated_2d(mean_sq: f64, threshold: f64) -> f64 {
    invert(mean_sq, threshold, truncated_moment_2d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::rng::Rng;

    #[test]
    fn erf_matches_reference_values() {
        // Abramowitz & Stegun table 7.1.
        for (x, want) in [
            (0.0, 0.0),
            (0.5, 0.520_499_877_8),
            (1.0, 0.842_700_792_9),
            (2.0, 0.995_322_265_0),
            (-1.0, -0.842_700_792_9),
        ] {
            assert!((erf(x) - want).abs() < 2e-7, "{x}");
        }
    }

    #[test]
    fn recovers_sigma_of_cut_gaussians() {
        let mut rng = Rng::new(9);
        for (sigma, thr) in [(0.5, 1.0), (1.0, 3.0), (0.3, 0.4)] {
            let mut s1 = Vec::new();
            let mut s2 = Vec::new();
            for _ in 0..200_000 {
                let a = sigma * rng.normal();
                let b = sigma * rng.normal();
                if a.abs() < thr {
                    s1.push(a * a);
                }
                if a * a + b * b < thr * thr {
                    s2.push(a * a + b * b);
                }
            }
            let m1 = s1.iter().sum::<f64>() / s1.len() as f64;
            let m2 = s2.iter().sum::<f64>() / s2.len() as f64;
            // 200 000 samples: relative standard error of σ well below 1 %.
            assert!(
                (sigma_truncated_1d(m1, thr) / sigma - 1.0).abs() < 0.02,
                "1-D {sigma} {thr}"
            );
            assert!(
                (sigma_truncated_2d(m2, thr) / sigma - 1.0).abs() < 0.02,
                "2-D {sigma} {thr}"
            );
        }
    }
}
