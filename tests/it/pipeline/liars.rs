//! Matchers that lie on purpose, for the integrity tests: whatever images they are given,
//! - [`Liar::Foreign`] returns the ground-truth matches of a *different* pair of frames of the
//!   same sequence (geometrically consistent, plausible, about these images' room, just not
//!   about these two images), confidences 0.6–1;
//! - [`Liar::NearIdentity`] returns 300 matches on a grid with `p1 ≈ p0` (σ = 0.3 px), as a
//!   matcher stuck on "nothing moved" would, confidences 0.8–1.
//!
//! Their embeddings are computed from the pixels ([`super::oracle::thumbnail_embedding`]), so
//! relocalization ranks keyframes on image content as with an honest matcher.

use std::sync::Arc;

use imd::geometry::{CameraModel, PixelMatch, PixelPoint, Rng};
use imd::model::StageTimings;
use imd::pipeline::{Frame, PairMatcher, PairMatches, PipelineError};
use nalgebra::Vector3;

use super::oracle::thumbnail_embedding;
use super::scene::Scene;

/// Which lie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lie {
    Foreign,
    NearIdentity,
}

impl Lie {
    pub fn name(&self) -> &'static str {
        match self {
            Lie::Foreign => "liar: other pair",
            Lie::NearIdentity => "liar: near-identity",
        }
    }
}

#[derive(Debug)]
pub struct Liar {
    lie: Lie,
    scene: Arc<Scene>,
    points: Vec<Vector3<f64>>,
    rng: Rng,
}

#[derive(Debug)]
pub struct LiarPrepared {
    /// Index of the frame in the scene's frame list.
    index: usize,
    model: CameraModel,
    embedding: Vec<f32>,
}

impl Liar {
    pub fn new(lie: Lie, scene: Arc<Scene>) -> Liar {
        let points = scene.surface_points(0.25, 7);
        Liar {
            lie,
            scene,
            points,
            rng: Rng::new(5),
        }
    }

    /// Ground-truth matches of scene frames `a` → `b` (σ = 0.3 px).
    fn foreign(&mut self, a: usize, b: usize, model: &CameraModel) -> Vec<PixelMatch> {
        let (fa, fb) = (&self.scene.frames[a], &self.scene.frames[b]);
        let mut out = Vec::new();
        for x in &self.points {
            let (Some(p0), Some(p1)) = (
                self.scene.project(model, fa, x),
                self.scene.project(model, fb, x),
            ) else {
                continue;
            };
            let mut j = |p: PixelPoint| {
                PixelPoint::new(p.x + 0.3 * self.rng.normal(), p.y + 0.3 * self.rng.normal())
            };
            out.push(PixelMatch {
                p0: j(p0),
                p1: j(p1),
                confidence: self.rng.uniform_in(0.6, 1.0) as f32,
            });
        }
        out
    }

    fn near_identity(&mut self, model: &CameraModel) -> Vec<PixelMatch> {
        let (w, h) = (model.width as f64, model.height as f64);
        (0..300)
            .map(|_| {
                let p0 = PixelPoint::new(
                    self.rng.uniform_in(4.0, w - 5.0),
                    self.rng.uniform_in(4.0, h - 5.0),
                );
                let p1 = PixelPoint::new(
                    p0.x + 0.3 * self.rng.normal(),
                    p0.y + 0.3 * self.rng.normal(),
                );
                PixelMatch {
                    p0,
                    p1,
                    confidence: self.rng.uniform_in(0.8, 1.0) as f32,
                }
            })
            .collect()
    }
}

impl PairMatcher for Liar {
    type Prepared = LiarPrepared;

    fn prepare(&mut self, frames: &[&Frame]) -> Result<Vec<LiarPrepared>, PipelineError> {
        frames
            .iter()
            .map(|f| {
                let index = self
                    .scene
                    .frames
                    .iter()
                    .position(|g| g.camera == f.camera.name && g.stamp == f.stamp)
                    .ok_or_else(|| PipelineError::Matcher {
                        reason: format!("no ground truth for {} at {:?}", f.camera.name, f.stamp),
                    })?;
                Ok(LiarPrepared {
                    index,
                    model: f.model,
                    embedding: thumbnail_embedding(&f.image),
                })
            })
            .collect()
    }

    fn prepare_timings(&self, _prepared: &LiarPrepared) -> StageTimings {
        StageTimings::default()
    }

    fn embedding<'a>(&self, prepared: &'a LiarPrepared) -> &'a [f32] {
        &prepared.embedding
    }

    fn match_pair(
        &mut self,
        a: &LiarPrepared,
        b: &LiarPrepared,
    ) -> Result<PairMatches, PipelineError> {
        let n = self.scene.frames.len();
        let matches = match self.lie {
            // Another pair of the same sequence: shifted by different amounts, so it is never
            // the pair asked about (unless the camera did not move, when the lie is the truth).
            Lie::Foreign => self.foreign((a.index + 5) % n, (b.index + 9) % n, &a.model),
            Lie::NearIdentity => self.near_identity(&a.model),
        };
        Ok(PairMatches {
            matches,
            timings: StageTimings::default(),
        })
    }
}
