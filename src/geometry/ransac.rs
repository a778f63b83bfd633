//! One generic LO-MSAC loop. An [`Estimator`] supplies minimal models, a truncated-quadratic
//! (MSAC) score and a local optimisation; the loop samples, keeps the best model, optimises
//! each new best one and stops adaptively.
//!
//! Stopping rule: after at least `min_iterations`, stop once `k ≥ log(1−p)/log(1−wˢ)`, with w
//! the inlier ratio of the best model, s the sample size and p the confidence.

use super::rng::Rng;

/// MSAC score of a model: `cost = Σ min(r², thr²)` (lower is better) and the inlier count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// Number of data with `r² < thr²` (that also pass the estimator's validity checks).
    pub inliers: usize,
    /// Truncated squared residual sum.
    pub cost: f64,
}

/// What the loop needs from a model class and its data.
pub trait Estimator {
    /// The model (pose, homography, …).
    type Model: Clone;
    /// Minimal sample size.
    const SAMPLE_SIZE: usize;
    /// Number of data points.
    fn num_data(&self) -> usize;
    /// Append every model consistent with the sample (indices into the data) to `models`.
    fn minimal_models(&mut self, sample: &[usize], models: &mut Vec<Self::Model>);
    /// Score a model; `None` as soon as the running cost exceeds `bound` (it cannot win).
    fn score(&self, model: &Self::Model, bound: f64) -> Option<Score>;
    /// Improve a promising model (e.g. a few robust least-squares steps on its inliers).
    fn local_optimize(&mut self, model: &Self::Model) -> Self::Model;
}

/// Loop settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RansacSettings {
    /// Probability that at least one all-inlier sample is drawn.
    pub confidence: f64,
    /// Iterations always run.
    pub min_iterations: usize,
    /// Hard cap on iterations.
    pub max_iterations: usize,
    /// Run [`Estimator::local_optimize`] on every new best model.
    pub local_optimization: bool,
}

/// The best model found and what it took.
#[derive(Debug, Clone)]
pub struct RansacOutcome<M> {
    /// Best model by MSAC cost.
    pub model: M,
    /// Its score.
    pub score: Score,
    /// Samples drawn.
    pub iterations: usize,
    /// Local optimisations run.
    pub local_optimizations: usize,
}

/// Iterations needed to draw an all-inlier sample of size `s` with probability `confidence`
/// when a fraction `inlier_ratio` of the data are inliers.
pub fn required_iterations(inlier_ratio: f64, sample_size: usize, confidence: f64) -> f64 {
    let w_s = inlier_ratio.clamp(0.0, 1.0).powi(sample_size as i32);
    if w_s >= 1.0 - f64::EPSILON {
        return 1.0;
    }
    if w_s <= 0.0 {
        return f64::INFINITY;
    }
    ((1.0 - confidence).ln() / (-w_s).ln_1p()).ceil().max(1.0)
}

/// Run LO-MSAC. `None` when the data are fewer than a sample or no sample gave a model.
pub fn ransac<E: Estimator>(
    est: &mut E,
    settings: &RansacSettings,
    rng: &mut Rng,
) -> Option<RansacOutcome<E::Model>> {
    let n = est.num_data();
    if n < E::SAMPLE_SIZE {
        return None;
    }
    let mut sample = vec![0usize; E::SAMPLE_SIZE];
    let mut models: Vec<E::Model> = Vec::with_capacity(10);
    let mut best: Option<(E::Model, Score)> = None;
    // LO runs when a minimal model beats every earlier *minimal* model (as PoseLib does), not
    // only when it beats the optimised best: a refined model sets a bar noisy minimal models
    // rarely clear, and a first LO that lands in a slightly worse basin would never be revisited.
    let mut best_minimal_cost = f64::INFINITY;
    let mut required = f64::INFINITY;
    let mut iterations = 0;
    let mut local_optimizations = 0;
    while iterations < settings.max_iterations {
        if iterations >= settings.min_iterations && (iterations as f64) >= required {
            break;
        }
        iterations += 1;
        rng.sample_distinct(n, &mut sample);
        models.clear();
        est.minimal_models(&sample, &mut models);
        for model in models.drain(..) {
            // The best cost is ≤ the best minimal cost, so this bound loses no candidate.
            let Some(score) = est.score(&model, best_minimal_cost) else {
                continue;
            };
            if score.cost >= best_minimal_cost {
                continue;
            }
            best_minimal_cost = score.cost;
            let (mut model, mut score) = (model, score);
            if settings.local_optimization {
                local_optimizations += 1;
                let refined = est.local_optimize(&model);
                if let Some(s) = est.score(&refined, score.cost) {
                    if s.cost < score.cost {
                        model = refined;
                        score = s;
                    }
                }
            }
            let best_cost = best.as_ref().map_or(f64::INFINITY, |(_, s)| s.cost);
            if score.cost < best_cost {
                required = required_iterations(
                    score.inliers as f64 / n as f64,
                    E::SAMPLE_SIZE,
                    settings.confidence,
                );
                best = Some((model, score));
            }
        }
    }
    best.map(|(model, score)| RansacOutcome {
        model,
        score,
        iterations,
        local_optimizations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1-D location estimation: the model is a number, inliers lie within 0.1 of 3.0.
    struct Line {
        data: Vec<f64>,
        thr2: f64,
    }

    impl Estimator for Line {
        type Model = f64;
        const SAMPLE_SIZE: usize = 1;
        fn num_data(&self) -> usize {
            self.data.len()
        }
        fn minimal_models(&mut self, sample: &[usize], models: &mut Vec<f64>) {
            models.push(self.data[sample[0]]);
        }
        fn score(&self, m: &f64, bound: f64) -> Option<Score> {
            let mut s = Score {
                inliers: 0,
                cost: 0.0,
            };
            for x in &self.data {
                let r2 = (x - m).powi(2);
                if r2 < self.thr2 {
                    s.inliers += 1;
                    s.cost += r2;
                } else {
                    s.cost += self.thr2;
                }
                if s.cost > bound {
                    return None;
                }
            }
            Some(s)
        }
        fn local_optimize(&mut self, m: &f64) -> f64 {
            let inl: Vec<f64> = self
                .data
                .iter()
                .copied()
                .filter(|x| (x - m).powi(2) < self.thr2)
                .collect();
            inl.iter().sum::<f64>() / inl.len() as f64
        }
    }

    #[test]
    fn finds_the_mode_and_stops_adaptively() {
        let mut rng = Rng::new(1);
        let mut data: Vec<f64> = (0..60).map(|_| 3.0 + rng.uniform_in(-0.05, 0.05)).collect();
        data.extend((0..40).map(|_| rng.uniform_in(-100.0, 100.0)));
        let mean_inl = data[..60].iter().sum::<f64>() / 60.0;
        let mut est = Line { data, thr2: 0.01 };
        let settings = RansacSettings {
            confidence: 0.999,
            min_iterations: 5,
            max_iterations: 1000,
            local_optimization: true,
        };
        let out = ransac(&mut est, &settings, &mut Rng::new(2)).unwrap();
        // LO returns the inlier mean exactly (no outlier lies within 0.1 of 3).
        assert!((out.model - mean_inl).abs() < 1e-12);
        assert_eq!(out.score.inliers, 60);
        // w = 0.6, s = 1: log(0.001)/log(0.4) = 7.5 → 8 iterations.
        assert_eq!(out.iterations, 8);
    }

    #[test]
    fn required_iterations_matches_the_formula() {
        // ln(1e-4)/ln(1 − 1/32) = 290.1
        assert_eq!(required_iterations(0.5, 5, 0.9999), 291.0);
        assert_eq!(required_iterations(1.0, 5, 0.99), 1.0);
        assert!(required_iterations(0.0, 5, 0.99).is_infinite());
    }
}
