//! A ground-truth matcher for tracker tests: it projects known surface points of the
//! synthetic room into both frames (noise σ = `noise_px` per coordinate), then adds uniformly
//! random pixel pairs as outliers (`outlier_ratio` of the returned matches). Its "global
//! embedding" is computed from the pixels alone (an 8×8 grey thumbnail, mean removed, L2
//! normalized), so retrieval is tested on image content, not on ground truth.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use image::imageops::FilterType;
use imd::geometry::{CameraModel, PixelMatch, PixelPoint, Rng};
use imd::model::StageTimings;
use imd::pipeline::{Frame, PairMatcher, PairMatches, PipelineError};
use nalgebra::Vector3;

use super::scene::{GtFrame, Scene};

/// Calls made, shared with the test after the oracle moved into a tracker.
#[derive(Debug, Default)]
pub struct Calls {
    pub prepared: AtomicU64,
    pub matched: AtomicU64,
}

#[derive(Debug)]
pub struct Oracle {
    scene: Arc<Scene>,
    points: Vec<Vector3<f64>>,
    pub noise_px: f64,
    pub outlier_ratio: f64,
    /// Sleep this long per `match_pair` (to make the worker slower than a realtime replay).
    pub match_delay: Duration,
    /// Like a learned matcher, place the first image's pixel of every match anew in each pair:
    /// up to this far (uniform in a square) from the projection of the surface point, the match
    /// then being the surface seen there (0 = at the projection).
    pub keyframe_offset_px: f64,
    /// Like a learned matcher, this share of the true matches gets a second image pixel 3–8 px
    /// off, in a random direction (moderate errors, harder to reject than random pairs).
    pub near_outlier_ratio: f64,
    rng: Rng,
    pub calls: Arc<Calls>,
}

#[derive(Debug)]
pub struct OraclePrepared {
    frame: GtFrame,
    model: CameraModel,
    embedding: Vec<f32>,
}

impl Oracle {
    /// The node's configuration for `cameras` as the oracle's tests run it: no debug image, and
    /// the covariance calibration of the oracle, whose pixel errors are independent Gaussian
    /// noise — exactly the geometry's model — so nothing is inflated (the shipped inflation and
    /// noise floor are the demo model's; README "Integrity"), and whose sub-pixel noise
    /// determines a translation direction from a few pixels of parallax (the shipped 10 px is
    /// for the demo model's 1–2 px errors).
    pub fn config(cameras: imd::config::CamerasConfig) -> imd::config::ImdConfig {
        let mut config = imd::config::ImdConfig {
            cameras,
            tracker: imd::pipeline::TrackerConfig::default(),
            ..Default::default()
        };
        config.node.publish_debug_image = false;
        config.integrity.covariance_inflation = 1.0;
        config.integrity.covariance_noise_floor_px = 0.0;
        config.integrity.min_translation_parallax_px = 2.0;
        config
    }

    /// Surface points every 0.25 m: about 600–1000 visible per view.
    pub fn new(scene: Arc<Scene>) -> Oracle {
        Oracle::with_spacing(scene, 0.25)
    }

    /// Surface points every `spacing_m` (a denser grid for a smaller room or nearer walls).
    pub fn with_spacing(scene: Arc<Scene>, spacing_m: f64) -> Oracle {
        let points = scene.surface_points(spacing_m, 7);
        Oracle {
            scene,
            points,
            noise_px: 0.25,
            outlier_ratio: 0.2,
            match_delay: Duration::ZERO,
            keyframe_offset_px: 0.0,
            near_outlier_ratio: 0.0,
            rng: Rng::new(11),
            calls: Arc::new(Calls::default()),
        }
    }
}

/// 8×8 grey thumbnail, mean removed, L2 normalized.
pub fn thumbnail_embedding(image: &image::RgbImage) -> Vec<f32> {
    let grey = image::DynamicImage::ImageRgb8(image.clone()).to_luma32f();
    let small = image::imageops::resize(&grey, 8, 8, FilterType::Triangle);
    let v: Vec<f32> = small.pixels().map(|p| p.0[0]).collect();
    let mean = v.iter().sum::<f32>() / v.len() as f32;
    let centred: Vec<f32> = v.iter().map(|x| x - mean).collect();
    let norm = centred.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    centred.iter().map(|x| x / norm).collect()
}

impl PairMatcher for Oracle {
    type Prepared = OraclePrepared;

    fn prepare(&mut self, frames: &[&Frame]) -> Result<Vec<OraclePrepared>, PipelineError> {
        frames
            .iter()
            .map(|f| {
                self.calls.prepared.fetch_add(1, Ordering::Relaxed);
                let gt = self.scene.frame(&f.camera.name, f.stamp).ok_or_else(|| {
                    PipelineError::Matcher {
                        reason: format!("no ground truth for {} at {:?}", f.camera.name, f.stamp),
                    }
                })?;
                Ok(OraclePrepared {
                    frame: gt.clone(),
                    model: f.model,
                    embedding: thumbnail_embedding(&f.image),
                })
            })
            .collect()
    }

    fn prepare_timings(&self, _prepared: &OraclePrepared) -> StageTimings {
        StageTimings::default()
    }

    fn embedding<'a>(&self, prepared: &'a OraclePrepared) -> &'a [f32] {
        &prepared.embedding
    }

    fn match_pair(
        &mut self,
        a: &OraclePrepared,
        b: &OraclePrepared,
    ) -> Result<PairMatches, PipelineError> {
        self.calls.matched.fetch_add(1, Ordering::Relaxed);
        if !self.match_delay.is_zero() {
            std::thread::sleep(self.match_delay);
        }
        let mut matches = Vec::new();
        for x in &self.points {
            let Some(mut p0) = self.scene.project(&a.model, &a.frame, x) else {
                continue;
            };
            let mut x = *x;
            if self.keyframe_offset_px > 0.0 {
                let r = self.keyframe_offset_px;
                p0 = PixelPoint::new(
                    p0.x + self.rng.uniform_in(-r, r),
                    p0.y + self.rng.uniform_in(-r, r),
                );
                let Some(seen) = self.scene.backproject(&a.model, &a.frame, &p0) else {
                    continue;
                };
                x = seen;
            }
            let Some(mut p1) = self.scene.project(&b.model, &b.frame, &x) else {
                continue;
            };
            if self.near_outlier_ratio > 0.0
                && self.rng.uniform_in(0.0, 1.0) < self.near_outlier_ratio
            {
                let (angle, off) = (
                    self.rng.uniform_in(0.0, std::f64::consts::TAU),
                    self.rng.uniform_in(3.0, 8.0),
                );
                p1 = PixelPoint::new(p1.x + off * angle.cos(), p1.y + off * angle.sin());
            }
            let mut jitter = |p: PixelPoint| {
                PixelPoint::new(
                    p.x + self.noise_px * self.rng.normal(),
                    p.y + self.noise_px * self.rng.normal(),
                )
            };
            let (p0, p1) = (jitter(p0), jitter(p1));
            matches.push(PixelMatch {
                p0,
                p1,
                confidence: self.rng.uniform_in(0.5, 1.0) as f32,
            });
        }
        let inliers = matches.len() as f64;
        let outliers = (inliers * self.outlier_ratio / (1.0 - self.outlier_ratio)).round() as usize;
        // Pairs that see nothing in common still get a few random matches, as real matchers do.
        let outliers = outliers.max(40);
        for _ in 0..outliers {
            let mut random = |m: &CameraModel| {
                PixelPoint::new(
                    self.rng.uniform_in(0.0, m.width as f64 - 1.0),
                    self.rng.uniform_in(0.0, m.height as f64 - 1.0),
                )
            };
            let (p0, p1) = (random(&a.model), random(&b.model));
            matches.push(PixelMatch {
                p0,
                p1,
                confidence: self.rng.uniform_in(0.2, 0.7) as f32,
            });
        }
        Ok(PairMatches {
            matches,
            timings: StageTimings::default(),
        })
    }
}
