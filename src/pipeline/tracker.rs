//! [`Tracker`]: per camera, match each frame against a reference keyframe, estimate the
//! relative pose, promote keyframes, relocalize when lost.
//!
//! Per frame ([`Tracker::track`]):
//! 1. prepare the frame once (the matcher's per-image features; kept if it becomes a
//!    keyframe, so no image is ever encoded twice);
//! 2. the camera's first frame (or the first after a reset, or after its keyframe was evicted)
//!    becomes its keyframe: [`TrackState::NewKeyframe`] (a blank frame does not: `lost`);
//! 3. a pending relocalization request runs first (every stored keyframe is a candidate); if
//!    it verifies nothing, tracking goes on as below;
//! 4. match against the reference keyframe, estimate the pose (essential / homography /
//!    rotation model selection) and call it verified when it has at least
//!    `tracker.min_inliers` inliers and passes the integrity checks
//!    ([`super::integrity`]: pixels, frame content, spread, motion continuity): then
//!    [`TrackState::Tracking`], or [`TrackState::NewKeyframe`] when [`promotion_reason`] says
//!    the views drifted apart;
//! 5. unverified: relocalize (rank every stored keyframe of every camera except the failed
//!    one by embedding similarity, match the top k, keep the verified pose with the most
//!    inliers, the same checks applied): [`TrackState::Relocalized`] with that keyframe as the
//!    camera's new reference, or else [`TrackState::Lost`] and the frame becomes the camera's
//!    keyframe, so tracking restarts from it — unless it is blank, or its pose was only held
//!    back by the continuity check (the reference is then kept).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use image::RgbImage;
use nalgebra::{Matrix6, Rotation3, Vector3};

use super::frame::MetricImages;
use super::integrity::{
    covariance_scale, inlier_spread, local_mapping, photometric_support, planar_ambiguity,
    scale_covariance, translation_parallax_px, GreyImage, MotionState,
};
use super::keyframes::{Keyframe, KeyframeStore};
use super::map::MapDepth;
use super::matcher::{cosine_similarity, PairMatcher};
use super::metric::{
    metric_pose, KeyframeDepth, MetricOptions, MetricPose, MetricReport, StereoImages,
};
use super::policy::{inlier_coverage, median_inlier_flow, promotion_reason};
use super::{
    CameraId, Correspondence, Frame, IntegrityReport, KeyframeId, PipelineError, PoseScale,
    RelocalizationCandidate, TrackOutput, TrackQuality, TrackState, TrackTimings, TrackedPose,
    TrackerConfig,
};
use crate::config::IntegrityConfig;
use crate::geometry::{
    estimate_relative_pose, CameraModel, PixelMatch, PoseEstimate, PoseModel, PoseOptions,
    RelativePose, UNOBSERVABLE_TRANSLATION_VARIANCE,
};

/// Per-camera tracking state.
#[derive(Debug, Clone)]
struct CameraTrack {
    name: String,
    /// The keyframe this camera matches against.
    reference: Option<KeyframeId>,
    /// Frames matched against `reference` so far.
    frames_on_reference: u32,
    /// Relocalize on the next frame.
    relocalize_requested: bool,
    /// The last verified rotation and the angular velocity (motion continuity).
    motion: Option<MotionState>,
    /// Frames in a row without a verified pose.
    lost_streak: u32,
}

impl CameraTrack {
    /// A verified rotation against `reference` at `stamp_ns` moves the motion state on; when
    /// the frame became keyframe `promoted`, the state is re-expressed against it.
    fn advance_motion(
        &mut self,
        reference: &KeyframeId,
        rotation: Rotation3<f64>,
        stamp_ns: i64,
        promoted: Option<&KeyframeId>,
    ) {
        let moved = MotionState::advance(self.motion.as_ref(), reference, rotation, stamp_ns);
        self.motion = Some(match promoted {
            Some(id) => moved.rebase(id, stamp_ns),
            None => moved,
        });
    }
}

/// Counters over a tracker's lifetime.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct TrackerCounters {
    /// Frames tracked.
    pub frames: u64,
    /// Frames that became keyframes (all reasons).
    pub keyframes: u64,
    /// Frames in state `lost`.
    pub lost: u64,
    /// Frames in state `relocalized`.
    pub relocalized: u64,
    /// Keyframes evicted from the store.
    pub evicted: u64,
}

/// One matching + pose attempt of the current frame against one keyframe.
struct Attempt {
    keyframe: KeyframeId,
    keyframe_frame_id: String,
    keyframe_image: Arc<RgbImage>,
    correspondences: Vec<Correspondence>,
    estimate: Option<PoseEstimate>,
    /// The metric pose and what the metric path did (`None`: neither the keyframe nor the frame
    /// has metric depth).
    metric: Option<(Option<MetricPose>, MetricReport)>,
    /// Why the attempt does not verify (`None` when it does).
    failure: Option<String>,
    /// What the integrity checks measured (`None` when they did not run).
    integrity: Option<IntegrityReport>,
    quality: TrackQuality,
}

impl Attempt {
    fn inliers(&self) -> usize {
        self.estimate.as_ref().map_or(0, |e| e.num_inliers)
    }

    /// The integrity checks rejected the pose.
    fn rejected(&self) -> bool {
        self.integrity
            .as_ref()
            .is_some_and(|i| i.rejected.is_some())
    }
}

/// The current frame's pixels as the checks need them, computed once per frame.
struct FrameEvidence {
    grey: Arc<GreyImage>,
    contrast: f64,
}

/// Time accumulated while tracking one frame.
#[derive(Default)]
struct Clock {
    timings: TrackTimings,
}

/// The multi-camera keyframe tracker; see the module doc.
#[derive(Debug)]
pub struct Tracker<M: PairMatcher> {
    matcher: M,
    config: TrackerConfig,
    pose: PoseOptions,
    metric: MetricOptions,
    integrity: IntegrityConfig,
    store: KeyframeStore<M::Prepared>,
    cameras: BTreeMap<usize, CameraTrack>,
    counters: TrackerCounters,
    /// Localizing in a map: requested relocalizations consider map keyframes only.
    localize_in_map: bool,
}

impl<M: PairMatcher> Tracker<M> {
    /// A tracker with no keyframes.
    pub fn new(
        matcher: M,
        config: TrackerConfig,
        pose: PoseOptions,
    ) -> Result<Self, PipelineError> {
        config.validate()?;
        pose.validate()?;
        Ok(Tracker {
            store: KeyframeStore::new(config.max_keyframes as usize),
            matcher,
            config,
            pose,
            metric: MetricOptions::default(),
            integrity: IntegrityConfig::default(),
            cameras: BTreeMap::new(),
            counters: TrackerCounters::default(),
            localize_in_map: false,
        })
    }

    /// The matcher.
    pub fn matcher(&self) -> &M {
        &self.matcher
    }

    /// The tracker configuration in use.
    pub fn config(&self) -> &TrackerConfig {
        &self.config
    }

    /// Counters so far.
    pub fn counters(&self) -> TrackerCounters {
        self.counters
    }

    /// Stored keyframes, oldest first.
    pub fn keyframes(&self) -> impl Iterator<Item = &Keyframe<M::Prepared>> {
        self.store.iter()
    }

    /// The keyframe camera `index` tracks against.
    pub fn reference(&self, camera: usize) -> Option<&KeyframeId> {
        self.cameras.get(&camera)?.reference.as_ref()
    }

    /// Apply a new configuration live (a smaller store evicts at once).
    pub fn set_config(
        &mut self,
        config: TrackerConfig,
        pose: PoseOptions,
    ) -> Result<(), PipelineError> {
        config.validate()?;
        pose.validate()?;
        let refs = self.references();
        let evicted = self
            .store
            .set_capacity(config.max_keyframes as usize, &refs);
        self.forget(&evicted);
        self.config = config;
        self.pose = pose;
        Ok(())
    }

    /// Set the metric path's options (PnP, valid depths, triangulation), checked when built.
    pub fn set_metric_options(&mut self, metric: MetricOptions) {
        self.metric = metric;
    }

    /// Set the integrity checks, covariance calibration and lost-frame output; checked first.
    pub fn set_integrity(&mut self, integrity: IntegrityConfig) -> Result<(), PipelineError> {
        integrity.validate()?;
        self.integrity = integrity;
        Ok(())
    }

    /// The integrity configuration in use.
    pub fn integrity(&self) -> &IntegrityConfig {
        &self.integrity
    }

    /// Relocalize on the next frame of the camera named `camera`, or of every camera when
    /// `None`. Returns the number of cameras flagged (a camera is known once it sent a frame).
    pub fn request_relocalization(&mut self, camera: Option<&str>) -> usize {
        let mut n = 0;
        for track in self.cameras.values_mut() {
            if camera.is_none_or(|c| c == track.name) {
                track.relocalize_requested = true;
                n += 1;
            }
        }
        n
    }

    /// Localize in the map: a requested relocalization (and a camera's first frame) considers
    /// map keyframes only ([`Keyframe::map`]), so a camera finds its pose in the map rather than
    /// against its own recent keyframes.
    pub fn set_localize_in_map(&mut self, on: bool) {
        self.localize_in_map = on;
    }

    /// Insert keyframes of a saved map, read-only ([`Keyframe::map`]): their images are
    /// prepared by this tracker's matcher, their depth (image or stereo points) and camera
    /// model kept. Returns the
    /// number inserted. A map keyframe whose camera name matches a tracked camera is still a
    /// map keyframe (never evicted, never reset).
    pub fn add_map_keyframes(
        &mut self,
        keyframes: &[super::map::MapKeyframe],
    ) -> Result<usize, PipelineError> {
        for chunk in keyframes.chunks(8) {
            let frames: Vec<Frame> = chunk
                .iter()
                .map(|k| Frame {
                    camera: CameraId {
                        index: usize::MAX,
                        name: k.id.camera.clone(),
                    },
                    stamp: k.id.stamp,
                    frame_id: k.frame_id.clone(),
                    image: k.image.clone(),
                    model: k.model,
                    metric: match &k.depth {
                        Some(MapDepth::Dense(d)) => Some(MetricImages::Depth(d.clone())),
                        _ => None,
                    },
                })
                .collect();
            let refs: Vec<&Frame> = frames.iter().collect();
            let prepared = self.matcher.prepare(&refs)?;
            if prepared.len() != frames.len() {
                return Err(PipelineError::Matcher {
                    reason: format!(
                        "prepare returned {} features for {} map keyframes",
                        prepared.len(),
                        frames.len()
                    ),
                });
            }
            for ((k, frame), prepared) in chunk.iter().zip(&frames).zip(prepared) {
                let mut keyframe = Keyframe::new(
                    k.id.clone(),
                    frame.camera.clone(),
                    k.frame_id.clone(),
                    k.model,
                    k.image.clone(),
                    prepared,
                );
                keyframe.depth = match &k.depth {
                    Some(MapDepth::Dense(d)) => Some(Arc::new(KeyframeDepth::Dense(d.clone()))),
                    // The lookup index is this run's (its `stereo.lookup_radius_px`).
                    Some(MapDepth::Stereo(s)) => Some(Arc::new(
                        s.keyframe_depth(self.metric.stereo.lookup_radius_px)?,
                    )),
                    None => None,
                };
                keyframe.grey = Some(Arc::new(GreyImage::of(&k.image)));
                keyframe.map = true;
                self.store.insert(keyframe, &[]);
            }
        }
        Ok(keyframes.len())
    }

    /// Make keyframe `id` a map keyframe (mapping: it is kept for the map). False when it is
    /// not stored.
    pub fn pin_keyframe(&mut self, id: &KeyframeId) -> bool {
        match self.store.get_mut(id) {
            Some(k) => {
                k.map = true;
                true
            }
            None => false,
        }
    }

    /// The stored keyframe `id`.
    pub fn keyframe(&self, id: &KeyframeId) -> Option<&Keyframe<M::Prepared>> {
        self.store.get(id)
    }

    /// Forget the keyframes taken by the camera named `camera` (all keyframes when `None`);
    /// every camera that tracked against one of them starts over with its next frame.
    /// Map keyframes stay. Returns the number of keyframes removed.
    pub fn reset(&mut self, camera: Option<&str>) -> usize {
        let removed = self
            .store
            .remove_where(|k| !k.map && camera.is_none_or(|c| c == k.camera.name));
        self.forget(&removed);
        for track in self.cameras.values_mut() {
            if camera.is_none_or(|c| c == track.name) {
                track.relocalize_requested = false;
                track.motion = None;
            }
        }
        removed.len()
    }

    fn references(&self) -> Vec<KeyframeId> {
        self.cameras
            .values()
            .filter_map(|t| t.reference.clone())
            .collect()
    }

    /// Drop references to removed keyframes.
    fn forget(&mut self, removed: &[KeyframeId]) {
        for track in self.cameras.values_mut() {
            if track
                .reference
                .as_ref()
                .is_some_and(|r| removed.contains(r))
            {
                track.reference = None;
                track.frames_on_reference = 0;
                track.motion = None;
            }
        }
    }

    /// Track one frame; see the module doc. Errors come from the matcher (the frame is then
    /// skipped and the tracker state is unchanged).
    pub fn track(&mut self, frame: Frame) -> Result<TrackOutput, PipelineError> {
        let start = Instant::now();
        let mut clock = Clock::default();
        let prepared = {
            let t = Instant::now();
            let mut p = self.matcher.prepare(&[&frame])?;
            clock.timings.prepare_ms = ms(t);
            p.pop().ok_or_else(|| PipelineError::Matcher {
                reason: "prepare returned no features for the frame".into(),
            })?
        };
        clock.timings.model += self.matcher.prepare_timings(&prepared);

        let camera = frame.camera.index;
        let track = self.cameras.entry(camera).or_insert_with(|| CameraTrack {
            name: frame.camera.name.clone(),
            reference: None,
            frames_on_reference: 0,
            relocalize_requested: false,
            motion: None,
            lost_streak: 0,
        });
        track.name = frame.camera.name.clone();
        let requested = std::mem::take(&mut track.relocalize_requested);
        let t = Instant::now();
        let grey = GreyImage::of(&frame.image);
        let evidence = FrameEvidence {
            contrast: grey.contrast(),
            grey: Arc::new(grey),
        };
        clock.timings.integrity_ms += ms(t);
        let mut result =
            self.track_prepared(frame, prepared, &evidence, requested, &mut clock, start);
        match &mut result {
            Ok(out) => {
                self.counters.frames += 1;
                if let Some(t) = self.cameras.get_mut(&camera) {
                    t.lost_streak = match out.state {
                        TrackState::Lost => t.lost_streak.saturating_add(1),
                        _ => 0,
                    };
                    out.lost_streak = t.lost_streak;
                }
            }
            // The frame is skipped; a pending request waits for the next one.
            Err(_) => {
                if let Some(t) = self.cameras.get_mut(&camera) {
                    t.relocalize_requested |= requested;
                }
            }
        }
        result
    }

    fn track_prepared(
        &mut self,
        frame: Frame,
        prepared: M::Prepared,
        evidence: &FrameEvidence,
        requested: bool,
        clock: &mut Clock,
        start: Instant,
    ) -> Result<TrackOutput, PipelineError> {
        let camera = frame.camera.index;
        let reference = self
            .cameras
            .get(&camera)
            .and_then(|t| t.reference.clone())
            .filter(|r| self.store.get(r).is_some());

        let Some(reference) = reference else {
            return self.track_first(frame, prepared, evidence, clock, start);
        };

        // 3. Requested relocalization: every stored keyframe is a candidate (map keyframes
        // only when localizing in a map).
        let mut tried = Vec::new();
        if requested {
            let (best, candidates) = self.relocalize(
                &frame,
                &prepared,
                evidence,
                None,
                self.localize_in_map,
                clock,
            )?;
            tried = candidates;
            if let Some(best) = best {
                return Ok(self.finish_relocalized(frame, best, tried, clock, start));
            }
        }

        // 4. Track against the reference.
        let frames_on_reference = self
            .cameras
            .get(&camera)
            .map_or(0, |t| t.frames_on_reference)
            + 1;
        let mut attempt = self.attempt(
            &reference,
            &frame,
            &prepared,
            evidence,
            frames_on_reference,
            clock,
        )?;
        let held_back = self.verified(&attempt, self.config.min_inliers as usize)
            && self.hold_back_discontinuity(&frame, &reference, &mut attempt);
        if self.verified(&attempt, self.config.min_inliers as usize) {
            let reason = promotion_reason(&attempt.quality, &self.config);
            if let Some(kf) = self.store.get_mut(&reference) {
                kf.tracked += 1;
            }
            let stamp_ns = frame.stamp.as_nanos();
            let rotation = attempt.estimate.as_ref().map(|e| e.pose.rotation);
            let (state, promoted) = match &reason {
                Some(_) => (
                    TrackState::NewKeyframe,
                    Some(self.promote(&frame, prepared, evidence, clock)),
                ),
                None => {
                    if let Some(t) = self.cameras.get_mut(&camera) {
                        t.frames_on_reference = frames_on_reference;
                    }
                    (TrackState::Tracking, None)
                }
            };
            if let (Some(t), Some(rotation)) = (self.cameras.get_mut(&camera), rotation) {
                t.advance_motion(&reference, rotation, stamp_ns, promoted.as_ref());
            }
            return Ok(self.output(
                &frame, state, attempt, promoted, reason, tried, clock, start,
            ));
        }

        // 5. Lost against the reference: relocalize over the other keyframes (a frame without
        // image content has nothing to relocalize with).
        let lost_reason = attempt
            .integrity
            .as_ref()
            .and_then(|i| i.rejected.clone())
            .or_else(|| attempt.failure.clone());
        let blank = self.is_blank(evidence);
        if self.config.relocalize_when_lost && !blank {
            let (best, candidates) =
                self.relocalize(&frame, &prepared, evidence, Some(&reference), false, clock)?;
            tried.extend(candidates);
            if let Some(best) = best {
                return Ok(self.finish_relocalized(frame, best, tried, clock, start));
            }
        }
        self.counters.lost += 1;
        // A held-back pose waits for confirmation on the same reference, and a blank frame
        // would make a useless keyframe: neither replaces the reference.
        let promoted = if held_back || blank {
            None
        } else {
            if let Some(t) = self.cameras.get_mut(&camera) {
                t.motion = None;
            }
            Some(self.promote(&frame, prepared, evidence, clock))
        };
        Ok(self.output(
            &frame,
            TrackState::Lost,
            attempt,
            promoted,
            lost_reason,
            tried,
            clock,
            start,
        ))
    }

    /// A camera's first frame (no reference yet) becomes its first keyframe; localizing in a
    /// map, it looks for its place in the map first.
    fn track_first(
        &mut self,
        frame: Frame,
        prepared: M::Prepared,
        evidence: &FrameEvidence,
        clock: &mut Clock,
        start: Instant,
    ) -> Result<TrackOutput, PipelineError> {
        if self.localize_in_map && !self.is_blank(evidence) {
            let (best, tried) = self.relocalize(&frame, &prepared, evidence, None, true, clock)?;
            if let Some(best) = best {
                return Ok(self.finish_relocalized(frame, best, tried, clock, start));
            }
        }
        Ok(self.promote_first(frame, prepared, evidence, clock, start))
    }

    /// A verified pose far outside the camera's motion waits for confirmation (see
    /// [`Self::continuity_failure`]): the camera's motion is re-anchored on it so the next
    /// frame, predicted at the same angular velocity, confirms or refutes the jump. True when
    /// the pose is held back.
    fn hold_back_discontinuity(
        &mut self,
        frame: &Frame,
        reference: &KeyframeId,
        attempt: &mut Attempt,
    ) -> bool {
        let Some(surprise) = self.continuity_failure(frame, reference, attempt) else {
            return false;
        };
        let rotation = attempt.estimate.as_ref().map(|e| e.pose.rotation);
        if let (Some(t), Some(rotation)) = (self.cameras.get_mut(&frame.camera.index), rotation) {
            let velocity = t.motion.as_ref().and_then(|m| m.velocity);
            t.motion = Some(MotionState {
                reference: reference.clone(),
                rotation,
                stamp_ns: frame.stamp.as_nanos(),
                velocity,
            });
        }
        log::warn!("{}: {surprise}", frame.camera.name);
        true
    }

    /// Why [`Self::is_blank`] holds, for the diagnostics.
    fn blank_reason(&self, evidence: &FrameEvidence) -> String {
        format!(
            "integrity: the frame has no image content (grey-level std {:.1} < \
             integrity.min_frame_contrast {}): black, uniform or saturated",
            evidence.contrast, self.integrity.min_frame_contrast
        )
    }

    /// A frame without image content (black, uniform, saturated): never evidence, never a
    /// keyframe.
    fn is_blank(&self, evidence: &FrameEvidence) -> bool {
        self.integrity.enabled
            && self.integrity.min_frame_contrast > 0.0
            && evidence.contrast < self.integrity.min_frame_contrast
    }

    /// Motion continuity: when the attempt's rotation is further from the constant-velocity
    /// prediction than `integrity.max_rotation_surprise_deg`, mark it rejected and return why.
    fn continuity_failure(
        &self,
        frame: &Frame,
        reference: &KeyframeId,
        attempt: &mut Attempt,
    ) -> Option<String> {
        let limit = self.integrity.max_rotation_surprise_deg;
        if !self.integrity.enabled || limit <= 0.0 {
            return None;
        }
        // Without an angular velocity (a new track) there is no prediction to be surprised by.
        let motion = self
            .cameras
            .get(&frame.camera.index)?
            .motion
            .as_ref()
            .filter(|m| m.velocity.is_some())?;
        let rotation = attempt.estimate.as_ref()?.pose.rotation;
        let surprise = motion.surprise_deg(reference, &rotation, frame.stamp.as_nanos())?;
        let report = attempt
            .integrity
            .get_or_insert_with(IntegrityReport::default);
        report.rotation_surprise_deg = Some(surprise);
        if surprise <= limit {
            return None;
        }
        let why = format!(
            "integrity: rotation {surprise:.1}° away from the motion so far (> \
             integrity.max_rotation_surprise_deg {limit}); held back until the next frame \
             confirms it"
        );
        report.rejected = Some(why.clone());
        Some(why)
    }

    fn verified(&self, attempt: &Attempt, min_inliers: usize) -> bool {
        attempt.estimate.is_some() && attempt.inliers() >= min_inliers.max(1) && !attempt.rejected()
    }

    /// The camera's first frame (or first after a reset) becomes its keyframe.
    fn promote_first(
        &mut self,
        frame: Frame,
        prepared: M::Prepared,
        evidence: &FrameEvidence,
        clock: &mut Clock,
        start: Instant,
    ) -> TrackOutput {
        // A blank first frame is no keyframe: the camera waits for one with content.
        let (state, promoted, reason) = if self.is_blank(evidence) {
            self.counters.lost += 1;
            (
                TrackState::Lost,
                None,
                format!(
                    "no keyframe for this camera yet, and {}",
                    self.blank_reason(evidence)
                ),
            )
        } else {
            let id = self.promote(&frame, prepared, evidence, clock);
            if let Some(t) = self.cameras.get_mut(&frame.camera.index) {
                t.motion = Some(MotionState {
                    reference: id.clone(),
                    rotation: nalgebra::Rotation3::identity(),
                    stamp_ns: frame.stamp.as_nanos(),
                    velocity: None,
                });
            }
            (
                TrackState::NewKeyframe,
                Some(id),
                "no keyframe for this camera yet".to_string(),
            )
        };
        clock.timings.total_ms = ms(start);
        TrackOutput {
            camera: frame.camera.clone(),
            stamp: frame.stamp,
            frame_id: frame.frame_id.clone(),
            state,
            keyframe: None,
            keyframe_frame_id: frame.frame_id.clone(),
            promoted,
            correspondences: Vec::new(),
            pose: None,
            quality: TrackQuality::default(),
            reason: Some(reason),
            integrity: None,
            lost_streak: 0,
            relocalization: Vec::new(),
            metric: None,
            keyframes_stored: self.store.len(),
            image: frame.image.clone(),
            keyframe_image: None,
            timings: clock.timings,
        }
    }

    /// Store the frame as a keyframe (with its metric depth) and make it its camera's reference.
    fn promote(
        &mut self,
        frame: &Frame,
        prepared: M::Prepared,
        evidence: &FrameEvidence,
        clock: &mut Clock,
    ) -> KeyframeId {
        let t = Instant::now();
        let (depth, depth_failure) = match self.keyframe_depth(frame, &prepared, &evidence.grey) {
            Ok(depth) => (depth.map(Arc::new), None),
            Err(e) => {
                log::warn!("{}: keyframe without metric depth: {e}", frame.camera.name);
                (None, Some(e.to_string()))
            }
        };
        clock.timings.metric_ms += ms(t);
        let id = KeyframeId {
            camera: frame.camera.name.clone(),
            stamp: frame.stamp,
        };
        if let Some(track) = self.cameras.get_mut(&frame.camera.index) {
            track.reference = Some(id.clone());
            track.frames_on_reference = 0;
        }
        let refs = self.references();
        let mut keyframe = Keyframe::new(
            id.clone(),
            frame.camera.clone(),
            frame.frame_id.clone(),
            frame.model,
            frame.image.clone(),
            prepared,
        );
        keyframe.depth = depth;
        keyframe.depth_failure = depth_failure;
        keyframe.grey = Some(evidence.grey.clone());
        let evicted = self.store.insert(keyframe, &refs);
        self.counters.evicted += evicted.len() as u64;
        self.forget(&evicted);
        self.counters.keyframes += 1;
        id
    }

    /// A new keyframe's metric depth: its depth image, or its left–right matches triangulated
    /// (one more `prepare` and `match_pair`, for keyframes only).
    fn keyframe_depth(
        &mut self,
        frame: &Frame,
        prepared: &M::Prepared,
        grey: &Arc<GreyImage>,
    ) -> Result<Option<KeyframeDepth>, PipelineError> {
        match &frame.metric {
            None => Ok(None),
            Some(MetricImages::Depth(map)) => Ok(Some(KeyframeDepth::Dense(map.clone()))),
            Some(MetricImages::Stereo(view)) => {
                let right = self.matcher.prepare(&[&view.right])?.pop().ok_or_else(|| {
                    PipelineError::Matcher {
                        reason: "prepare returned no features for the right image".into(),
                    }
                })?;
                let pair = self.matcher.match_pair(prepared, &right)?;
                // The guided search and the refinement need the pair's grey levels (the left
                // one is the frame's).
                let stereo = &self.metric.stereo;
                let images =
                    (stereo.guided_radius_px > 0.0 || stereo.refine_radius_px > 0.0).then(|| {
                        StereoImages {
                            left: grey.clone(),
                            right: Arc::new(GreyImage::of(&view.right.image)),
                        }
                    });
                let (depth, _) =
                    KeyframeDepth::triangulate(&view.rig, &pair.matches, &self.metric, images)?;
                Ok(Some(depth))
            }
        }
    }

    /// Match the frame against one keyframe and estimate the pose.
    fn attempt(
        &mut self,
        keyframe: &KeyframeId,
        frame: &Frame,
        prepared: &M::Prepared,
        evidence: &FrameEvidence,
        frames_on_reference: u32,
        clock: &mut Clock,
    ) -> Result<Attempt, PipelineError> {
        let kf = self
            .store
            .get(keyframe)
            .ok_or_else(|| PipelineError::Matcher {
                reason: format!("keyframe {keyframe} is not stored"),
            })?;
        let t = Instant::now();
        let pair = self.matcher.match_pair(&kf.prepared, prepared)?;
        clock.timings.match_ms += ms(t);
        clock.timings.model += pair.timings;

        let t = Instant::now();
        let usable = usable_matches(&pair.matches, &kf.model, &frame.model);
        let kept: Vec<PixelMatch> = pair
            .matches
            .iter()
            .zip(&usable)
            .filter(|(_, u)| **u)
            .map(|(m, _)| *m)
            .collect();
        let (estimate, failure) =
            match estimate_relative_pose(&kept, &kf.model, &frame.model, &self.pose) {
                Ok(e) if e.num_inliers >= self.config.min_inliers as usize => (Some(e), None),
                Ok(e) => {
                    let reason = format!(
                        "{} inliers of {} matches < tracker.min_inliers {}",
                        e.num_inliers,
                        pair.matches.len(),
                        self.config.min_inliers
                    );
                    (Some(e), Some(reason))
                }
                Err(e) => (
                    None,
                    Some(format!("no pose from {} matches: {e}", pair.matches.len())),
                ),
            };
        clock.timings.pose_ms += ms(t);

        let t = Instant::now();
        let metric = keyframe_metric(kf, &kept, frame, &self.metric);
        clock.timings.metric_ms += ms(t);

        // Inlier flags back onto the full match list (unusable matches are outliers).
        let mut flags = estimate.as_ref().map(|e| e.inliers.iter());
        let correspondences: Vec<Correspondence> = pair
            .matches
            .iter()
            .zip(&usable)
            .map(|(m, &u)| Correspondence {
                pixels: *m,
                inlier: u
                    && flags
                        .as_mut()
                        .and_then(|f| f.next())
                        .copied()
                        .unwrap_or(false),
            })
            .collect();
        let inliers = estimate.as_ref().map_or(0, |e| e.num_inliers);
        let quality = TrackQuality {
            matches: correspondences.len(),
            inliers,
            inlier_ratio: if correspondences.is_empty() {
                0.0
            } else {
                inliers as f64 / correspondences.len() as f64
            },
            coverage: inlier_coverage(
                &correspondences,
                kf.image.width(),
                kf.image.height(),
                self.config.coverage_grid,
            ),
            median_flow_px: median_inlier_flow(&correspondences),
            keyframe_age_s: (frame.stamp.as_nanos() - kf.id.stamp.as_nanos()) as f64 * 1e-9,
            keyframe_age_frames: frames_on_reference,
        };
        let t = Instant::now();
        let integrity = match (&estimate, &failure) {
            (Some(e), None) if self.integrity.enabled => {
                let kf_grey = kf
                    .grey
                    .clone()
                    .unwrap_or_else(|| Arc::new(GreyImage::of(&kf.image)));
                Some(self.check(e, &kept, &kf_grey, &kf.model, frame, evidence))
            }
            _ => None,
        };
        clock.timings.integrity_ms += ms(t);
        Ok(Attempt {
            keyframe: keyframe.clone(),
            keyframe_frame_id: kf.frame_id.clone(),
            keyframe_image: kf.image.clone(),
            correspondences,
            estimate,
            metric,
            failure,
            integrity,
            quality,
        })
    }

    /// The integrity checks of a pose with enough inliers (module [`super::integrity`]):
    /// frame content, inlier spread, photometric support. `kept` are the matches the pose was
    /// estimated from (its inlier flags index them).
    fn check(
        &self,
        estimate: &crate::geometry::PoseEstimate,
        kept: &[PixelMatch],
        kf_grey: &GreyImage,
        kf_model: &CameraModel,
        frame: &Frame,
        evidence: &FrameEvidence,
    ) -> IntegrityReport {
        let cfg = &self.integrity;
        let inliers: Vec<PixelMatch> = kept
            .iter()
            .zip(&estimate.inliers)
            .filter(|(_, &i)| i)
            .map(|(m, _)| *m)
            .collect();
        let spread = inlier_spread(
            &inliers,
            (kf_model.width, kf_model.height),
            (frame.image.width(), frame.image.height()),
        );
        let support = photometric_support(
            &inliers,
            &local_mapping(estimate),
            (kf_grey, &evidence.grey),
            (kf_model, &frame.model),
            cfg,
        );
        let mut report = IntegrityReport {
            photometric_support: support.fraction(),
            photometric_samples: support.sampled,
            photometric_informative: support.informative,
            inlier_spread: spread,
            translation_parallax_px: translation_parallax_px(
                &inliers,
                estimate.pose.rotation.matrix(),
                kf_model,
                &frame.model,
            ),
            frame_contrast: evidence.contrast,
            rotation_surprise_deg: None,
            rejected: None,
        };
        report.rejected = if self.is_blank(evidence) {
            Some(self.blank_reason(evidence))
        } else if cfg.no_overlap_inliers > 0 && inliers.len() <= cfg.no_overlap_inliers as usize {
            Some(format!(
                "integrity: {} inliers, no more than this matcher gets on photos with no \
                 overlap at all (integrity.no_overlap_inliers {}): chance, not evidence",
                inliers.len(),
                cfg.no_overlap_inliers
            ))
        } else if cfg.min_inlier_spread > 0.0 && spread < cfg.min_inlier_spread {
            Some(format!(
                "integrity: the {} inliers cover {:.0} % of a 4×4 grid in the emptier image \
                 (< integrity.min_inlier_spread {:.0} %): the pose is not determined by the view",
                inliers.len(),
                spread * 100.0,
                cfg.min_inlier_spread * 100.0
            ))
        } else if cfg.min_photometric_support > 0.0
            && support.informative < cfg.min_informative_samples as usize
        {
            Some(format!(
                "integrity: {} of {} sampled inliers have texture in both images \
                 (< integrity.min_informative_samples {}): nothing to verify the pose with",
                support.informative, support.sampled, cfg.min_informative_samples
            ))
        } else if cfg.min_photometric_support > 0.0
            && support.fraction() < cfg.min_photometric_support
        {
            Some(format!(
                "integrity: {} of {} sampled inliers show the same surface in both images \
                 ({:.0} % < integrity.min_photometric_support {:.0} %): the matches do not \
                 describe these images",
                support.supporting,
                support.sampled,
                support.fraction() * 100.0,
                cfg.min_photometric_support * 100.0
            ))
        } else {
            None
        };
        report
    }

    /// Rank keyframes (all but `exclude`; map keyframes only with `map_only`) by embedding
    /// similarity, match the top k and return the verified attempt with the most inliers, plus
    /// every candidate tried.
    fn relocalize(
        &mut self,
        frame: &Frame,
        prepared: &M::Prepared,
        evidence: &FrameEvidence,
        exclude: Option<&KeyframeId>,
        map_only: bool,
        clock: &mut Clock,
    ) -> Result<(Option<Attempt>, Vec<RelocalizationCandidate>), PipelineError> {
        let t = Instant::now();
        let query = self.matcher.embedding(prepared);
        let scored: Vec<(KeyframeId, f64, u64)> = self
            .store
            .iter()
            .filter(|k| Some(&k.id) != exclude && (k.map || !map_only))
            .map(|k| {
                let s = cosine_similarity(query, self.matcher.embedding(&k.prepared))
                    .unwrap_or(f64::NAN);
                (k.id.clone(), s, k.sequence())
            })
            .collect();
        let ranked = rank_candidates(
            scored,
            self.config.relocalization_min_similarity,
            self.config.relocalization_top_k as usize,
        );
        let min_inliers = self
            .config
            .relocalization_min_inliers
            .max(self.config.min_inliers) as usize;
        let mut best: Option<Attempt> = None;
        let mut tried = Vec::new();
        for (id, similarity) in ranked {
            let attempt = self.attempt(&id, frame, prepared, evidence, 1, clock)?;
            tried.push(RelocalizationCandidate {
                keyframe: id.frame_name(),
                similarity,
                inliers: attempt.inliers(),
            });
            if self.verified(&attempt, min_inliers)
                && best
                    .as_ref()
                    .is_none_or(|b| attempt.inliers() > b.inliers())
            {
                best = Some(attempt);
            }
        }
        clock.timings.relocalization_ms += ms(t);
        Ok((best, tried))
    }

    fn finish_relocalized(
        &mut self,
        frame: Frame,
        best: Attempt,
        tried: Vec<RelocalizationCandidate>,
        clock: &mut Clock,
        start: Instant,
    ) -> TrackOutput {
        self.counters.relocalized += 1;
        if let Some(kf) = self.store.get_mut(&best.keyframe) {
            kf.tracked += 1;
        }
        if let Some(track) = self.cameras.get_mut(&frame.camera.index) {
            track.reference = Some(best.keyframe.clone());
            track.frames_on_reference = 1;
            track.motion = best.estimate.as_ref().map(|e| MotionState {
                reference: best.keyframe.clone(),
                rotation: e.pose.rotation,
                stamp_ns: frame.stamp.as_nanos(),
                velocity: None,
            });
        }
        let reason = Some(format!(
            "verified against {} with {} inliers",
            best.keyframe,
            best.inliers()
        ));
        self.output(
            &frame,
            TrackState::Relocalized,
            best,
            None,
            reason,
            tried,
            clock,
            start,
        )
    }

    /// The covariance calibrated against ground truth (`integrity.*`): scaled for the noise
    /// and the photometric support, plus the planar ambiguity, the rotation floor and the
    /// homography's two-fold ambiguity. Unchanged with the integrity checks off.
    fn calibrate_covariance(
        &self,
        covariance: Matrix6<f64>,
        noise_sigma_px: f64,
        model: PoseModel,
        evidence: &CovarianceEvidence,
    ) -> Matrix6<f64> {
        if !self.integrity.enabled {
            return covariance;
        }
        let mut out = scale_covariance(
            &covariance,
            covariance_scale(noise_sigma_px, evidence.support, &self.integrity),
        );
        let ambiguity = planar_ambiguity(
            model,
            evidence.flow_px,
            evidence.focal,
            self.integrity.planar_ambiguity,
        );
        let floor = self.integrity.min_rotation_sigma_deg.to_radians().powi(2);
        let mut block = out.fixed_view_mut::<3, 3>(3, 3);
        block += ambiguity + nalgebra::Matrix3::identity() * floor;
        // The reported decomposition is one of two equally supported ones: its error is 0 or
        // their difference d, second moment d·dᵀ/2.
        if let Some(d) = evidence.two_fold_rotation {
            block += d * d.transpose() * 0.5;
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn output(
        &self,
        frame: &Frame,
        state: TrackState,
        attempt: Attempt,
        promoted: Option<KeyframeId>,
        reason: Option<String>,
        relocalization: Vec<RelocalizationCandidate>,
        clock: &mut Clock,
        start: Instant,
    ) -> TrackOutput {
        // A pose only counts when verified; a lost frame reports its matches without one. A
        // metric pose replaces the monocular one's translation direction and covariance.
        let (metric_estimate, metric) = match attempt.metric {
            Some((pose, report)) => (pose, Some(report)),
            None => (None, None),
        };
        let integrity = attempt.integrity;
        let flow = attempt.quality.median_flow_px;
        // Too little parallax to tell the translation direction from the matcher's noise, or a
        // planar scene whose two homography decompositions both explain the matches with
        // translations far apart: the direction is not determined.
        let two_fold = attempt.estimate.as_ref().and_then(|e| {
            e.alternative
                .as_ref()
                .map(|alt| two_fold_ambiguity(&e.pose, alt))
        });
        let too_little_parallax = self.integrity.enabled
            && (integrity.as_ref().is_some_and(|i| {
                i.translation_parallax_px < self.integrity.min_translation_parallax_px
            }) || attempt.quality.inlier_ratio
                < self.integrity.min_inlier_ratio_for_translation
                || two_fold.is_some_and(|(_, t_deg)| t_deg > TWO_FOLD_TRANSLATION_DEG));
        let parallax_rad = integrity
            .as_ref()
            .map(|i| i.translation_parallax_px / frame.model.intrinsics.focal());
        let evidence = CovarianceEvidence {
            support: integrity.as_ref().map_or(1.0, |i| i.photometric_support),
            flow_px: flow,
            focal: frame.model.intrinsics.focal(),
            two_fold_rotation: two_fold.map(|(d, _)| d),
        };
        let calibrate = |covariance: Matrix6<f64>, noise_sigma_px: f64, model| {
            self.calibrate_covariance(covariance, noise_sigma_px, model, &evidence)
        };
        // The homography's two-fold ambiguity is the monocular estimate's: PnP on metric points
        // has one rotation (before, a planar view added the two decompositions' difference,
        // ~12° on the map fixtures, to a metric pose good to 0.1°).
        let metric_evidence = CovarianceEvidence {
            two_fold_rotation: None,
            ..evidence
        };
        let pose = match state {
            TrackState::Lost => None,
            _ => attempt.estimate.map(|e| match metric_estimate {
                Some(m) => TrackedPose {
                    pose: m.estimate.pose,
                    // PnP against metric depth separates rotation from translation: no
                    // planar ambiguity to add.
                    covariance: self.calibrate_covariance(
                        m.estimate.covariance,
                        m.estimate.noise_sigma_px,
                        PoseModel::Essential,
                        &metric_evidence,
                    ),
                    model: e.model,
                    translation_observable: true,
                    noise_sigma_px: m.estimate.noise_sigma_px,
                    scale: m.scale,
                },
                None => {
                    let claim_translation = e.translation_observable && !too_little_parallax;
                    let covariance = calibrate(e.covariance, e.noise_sigma_px, e.model);
                    monocular_pose(
                        e,
                        claim_translation,
                        covariance,
                        parallax_rad,
                        self.integrity.enabled,
                    )
                }
            }),
        };
        let mut correspondences = attempt.correspondences;
        if pose.is_none() {
            for c in &mut correspondences {
                c.inlier = false;
            }
        }
        clock.timings.total_ms = ms(start);
        TrackOutput {
            camera: frame.camera.clone(),
            stamp: frame.stamp,
            frame_id: frame.frame_id.clone(),
            state,
            keyframe: Some(attempt.keyframe),
            keyframe_frame_id: attempt.keyframe_frame_id,
            promoted,
            correspondences,
            pose,
            quality: attempt.quality,
            reason,
            integrity,
            lost_streak: 0,
            relocalization,
            metric,
            keyframes_stored: self.store.len(),
            image: frame.image.clone(),
            keyframe_image: Some(attempt.keyframe_image),
            timings: clock.timings,
        }
    }
}

/// The metric pose of `frame` against keyframe `kf` from `kept` matches: PnP on the keyframe's
/// depth; a report of why not when the keyframe has none while the frame has metric input;
/// `None` when neither is metric.
fn keyframe_metric<P>(
    kf: &Keyframe<P>,
    kept: &[PixelMatch],
    frame: &Frame,
    opts: &MetricOptions,
) -> Option<(Option<MetricPose>, MetricReport)> {
    match (&kf.depth, &frame.metric) {
        (Some(depth), _) => Some(metric_pose(depth, &kf.model, kept, &frame.model, opts)),
        (None, Some(_)) => Some((
            None,
            MetricReport {
                failure: Some(format!(
                    "keyframe {} has no metric depth{}",
                    kf.id,
                    kf.depth_failure
                        .as_deref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                )),
                ..Default::default()
            },
        )),
        (None, None) => None,
    }
}

/// What the covariance calibration needs to know about a pose besides its covariance.
struct CovarianceEvidence {
    /// Photometric support of the inliers (1 without integrity measurements).
    support: f64,
    /// Median inlier flow, pixels.
    flow_px: f64,
    /// Focal length of the current camera, pixels.
    focal: f64,
    /// The rotation difference to the other homography decomposition when both explain the
    /// matches.
    two_fold_rotation: Option<Vector3<f64>>,
}

/// Two homography decompositions whose translation directions differ by more than this
/// leave the direction undetermined, degrees.
const TWO_FOLD_TRANSLATION_DEG: f64 = 15.0;

/// The rotation difference (rotation vector, rad) and the translation-direction difference
/// (degrees) between the reported planar decomposition and its equally supported alternative.
fn two_fold_ambiguity(pose: &RelativePose, alternative: &RelativePose) -> (Vector3<f64>, f64) {
    let d = (alternative.rotation * pose.rotation.inverse()).scaled_axis();
    let (a, b) = (pose.translation, alternative.translation);
    let t_deg = if a.norm() > 0.0 && b.norm() > 0.0 {
        (a.dot(&b) / (a.norm() * b.norm()))
            .clamp(-1.0, 1.0)
            .acos()
            .to_degrees()
    } else {
        0.0
    };
    (d, t_deg)
}

/// The monocular pose of `estimate` with its calibrated `covariance`: as estimated when the
/// translation is claimed; otherwise the rotation alone, its translation unknown and the model
/// ambiguity added ([`with_model_ambiguity`]).
fn monocular_pose(
    estimate: PoseEstimate,
    claim_translation: bool,
    covariance: Matrix6<f64>,
    parallax_rad: Option<f64>,
    integrity_enabled: bool,
) -> TrackedPose {
    let (pose, covariance) = if claim_translation {
        (estimate.pose, covariance)
    } else {
        let ambiguous =
            with_model_ambiguity(covariance, &estimate, parallax_rad, integrity_enabled);
        (
            RelativePose::new(estimate.pose.rotation, Vector3::zeros()),
            unobservable_translation(ambiguous),
        )
    };
    TrackedPose {
        pose,
        covariance,
        model: estimate.model,
        translation_observable: claim_translation,
        noise_sigma_px: estimate.noise_sigma_px,
        scale: PoseScale::Monocular,
    }
}

/// `covariance` of a pose whose translation is not determined, plus the model ambiguity of its
/// rotation: the competing model family's rotation on the same matches
/// ([`crate::geometry::PoseEstimate::competing_rotation`]) differs by `d`; either could be
/// right, so the reported one's error is 0 or `d`, second moment `d·dᵀ/2` (as for the
/// homography's two-fold ambiguity). Unchanged with the integrity checks off.
///
/// When no rotation-only model fits (the matches have parallax, but too few inliers to claim
/// the translation's direction), the rotation absorbed whatever the unclaimed translation
/// moved: up to the translation parallax `p` (px) over the focal length `f`, about the
/// camera's x and y axes, variance `(p/f)²/2` each.
fn with_model_ambiguity(
    covariance: Matrix6<f64>,
    estimate: &PoseEstimate,
    parallax_rad: Option<f64>,
    enabled: bool,
) -> Matrix6<f64> {
    if !enabled {
        return covariance;
    }
    let mut out = covariance;
    let mut block = out.fixed_view_mut::<3, 3>(3, 3);
    match (estimate.competing_rotation, parallax_rad) {
        (Some(other), _) => {
            let d = (other * estimate.pose.rotation.inverse()).scaled_axis();
            block += d * d.transpose() * 0.5;
        }
        (None, Some(p)) if p.is_finite() => {
            let v = p * p * 0.5;
            block += nalgebra::Matrix3::from_diagonal(&Vector3::new(v, v, 0.0));
        }
        (None, _) => {}
    }
    out
}

/// `covariance` with its translation block (and its cross terms) replaced by the "unknown"
/// variance of an unobservable translation.
fn unobservable_translation(covariance: Matrix6<f64>) -> Matrix6<f64> {
    let mut out = covariance;
    for i in 0..3 {
        for j in 0..6 {
            out[(i, j)] = 0.0;
            out[(j, i)] = 0.0;
        }
        out[(i, i)] = UNOBSERVABLE_TRANSLATION_VARIANCE;
    }
    out
}

/// Matches whose points both cameras can undistort (a matcher may return points in image
/// corners a strong distortion model does not cover); the pose uses only these.
fn usable_matches(matches: &[PixelMatch], cam0: &CameraModel, cam1: &CameraModel) -> Vec<bool> {
    matches
        .iter()
        .map(|m| {
            m.p0.is_finite()
                && m.p1.is_finite()
                && (cam0.is_pinhole() || cam0.normalize(&m.p0).is_ok())
                && (cam1.is_pinhole() || cam1.normalize(&m.p1).is_ok())
        })
        .collect()
}

/// Relocalization candidates in matching order: those with a similarity below
/// `min_similarity` dropped, the rest by similarity, highest first; candidates without an
/// embedding (NaN similarity) keep their place after all scored ones, newest first. At most
/// `top_k`. Input: (id, similarity, insertion sequence).
pub fn rank_candidates(
    mut scored: Vec<(KeyframeId, f64, u64)>,
    min_similarity: f64,
    top_k: usize,
) -> Vec<(KeyframeId, f64)> {
    scored.retain(|(_, s, _)| s.is_nan() || *s >= min_similarity);
    scored.sort_by(|a, b| match (a.1.is_nan(), b.1.is_nan()) {
        (false, false) => b.1.total_cmp(&a.1).then(b.2.cmp(&a.2)),
        (false, true) => std::cmp::Ordering::Less,
        (true, false) => std::cmp::Ordering::Greater,
        (true, true) => b.2.cmp(&a.2),
    });
    scored
        .into_iter()
        .take(top_k)
        .map(|(id, s, _)| (id, s))
        .collect()
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::msgs::builtin_interfaces::Time;

    fn id(sec: i32) -> KeyframeId {
        KeyframeId {
            camera: "c".into(),
            stamp: Time { sec, nanosec: 0 },
        }
    }

    #[test]
    fn candidates_rank_by_similarity_then_recency() {
        let scored = vec![
            (id(1), 0.2, 0),
            (id(2), 0.9, 1),
            (id(3), f64::NAN, 2),
            (id(4), 0.5, 3),
            (id(5), f64::NAN, 4),
            (id(6), -0.5, 5),
        ];
        let ranked = rank_candidates(scored.clone(), 0.0, 10);
        let order: Vec<i32> = ranked.iter().map(|(k, _)| k.stamp.sec).collect();
        assert_eq!(order, [2, 4, 1, 5, 3]);
        let top2 = rank_candidates(scored, -1.0, 2);
        assert_eq!(top2.len(), 2);
        assert_eq!(top2[0].0, id(2));
        assert_eq!(top2[1].0, id(4));
    }
}
