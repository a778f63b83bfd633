//! Integrity: the tracker never publishes a confident wrong pose. Sequences from
//! `scripts/fixtures/make_integrity_fixtures.py` (tests/fixtures/integrity/: jumps to views with no
//! overlap and back, a fast in-place turn, a roll to 90°, black / over-exposed / uniform /
//! blurred frames, a repeated texture, a static camera), each run with an honest matcher (the
//! ground-truth oracle; the demo model in `integrity_demo_model`, run by
//! `scripts/bench/bench_integrity.sh`) and with two lying ones ([`super::liars`]), scored against
//! the ground truth:
//! - **confident wrong pose**: a verified pose whose rotation is off by more than 5°, or whose
//!   translation direction is off by more than 30° where the true baseline exceeds 5 cm (and
//!   the pose claims an observable translation);
//! - **recall**: of the frames whose true overlap with the keyframe they were matched against
//!   exceeds 50 % (frames blanked on purpose excluded: black, over-exposed, uniform), the
//!   fraction with a verified pose;
//! - **relocalization**: a frame whose reference keyframe it does not overlap (< 10 %) while
//!   an earlier keyframe of the run overlaps it by more than 50 % must come out `relocalized`;
//! - **NEES** of the rotation: `δθᵀ Σ⁻¹ δθ` with `R_true = exp([δθ]×)·R̂` and `Σ` the published
//!   rotation block (3 degrees of freedom: mean 3 when the covariance is honest).

use std::path::Path;
use std::sync::Arc;

use imd::config::ImdConfig;
use imd::geometry::metrics::{rotation_error_deg, translation_error_deg};
use imd::io::bag::{Bag, BagFrames};
use imd::pipeline::{
    KeyframeId, PairMatcher, ScheduleInfo, TrackOutput, TrackState, TrackerProcessor,
};
use nalgebra::Matrix3;

use super::liars::{Liar, Lie};
use super::oracle::Oracle;
use super::scene::{GtFrame, Scene};
use super::sequence_config;
use crate::util::fixture;

/// The sequences, in table order.
pub const SEQUENCES: [&str; 6] = [
    "jump",
    "fast_turn",
    "roll",
    "exposure",
    "repeated",
    "static",
];

/// Rotation error above which a verified pose is wrong, degrees.
pub const WRONG_ROTATION_DEG: f64 = 5.0;
/// Translation-direction error above which a verified pose is wrong, degrees (only where the
/// true baseline exceeds [`MIN_BASELINE_M`]).
pub const WRONG_TRANSLATION_DEG: f64 = 30.0;
/// Baselines shorter than this do not determine a translation direction, metres.
pub const MIN_BASELINE_M: f64 = 0.05;

/// One sequence × matcher, scored.
#[derive(Debug, Default, Clone)]
pub struct Score {
    pub frames: usize,
    pub verified: usize,
    pub wrong: Vec<String>,
    pub recall_hits: usize,
    pub recall_total: usize,
    pub relocalized: usize,
    pub returns: usize,
    pub returns_relocalized: usize,
    pub nees: Vec<f64>,
    pub integrity_ms: Vec<f64>,
}

impl Score {
    pub fn recall(&self) -> f64 {
        if self.recall_total == 0 {
            1.0
        } else {
            self.recall_hits as f64 / self.recall_total as f64
        }
    }

    pub fn mean_nees(&self) -> f64 {
        self.nees.iter().sum::<f64>() / self.nees.len().max(1) as f64
    }

    pub fn median_nees(&self) -> f64 {
        median(&self.nees)
    }

    /// `| sequence | matcher | frames | verified | confident wrong | recall | relocalized |
    /// returns relocalized | NEES mean / median | checks ms |`
    pub fn row(&self, sequence: &str, matcher: &str) -> String {
        format!(
            "| {sequence} | {matcher} | {} | {} | {} | {:.0} % ({}/{}) | {} | {}/{} | {} | {:.2} |",
            self.frames,
            self.verified,
            self.wrong.len(),
            100.0 * self.recall(),
            self.recall_hits,
            self.recall_total,
            self.relocalized,
            self.returns_relocalized,
            self.returns,
            if self.nees.is_empty() {
                "–".to_string()
            } else {
                format!("{:.2} / {:.2}", self.mean_nees(), self.median_nees())
            },
            median(&self.integrity_ms),
        )
    }
}

pub const TABLE_HEADER: &str =
    "| sequence | matcher | frames | verified poses | confident wrong | \
recall (overlap > 50 %) | relocalized | returns relocalized | rotation NEES mean / median | \
checks ms (median) |\n|---|---|---|---|---|---|---|---|---|---|";

fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}

pub fn scene_of(sequence: &str) -> Arc<Scene> {
    Arc::new(Scene::load_file(&fixture(&format!(
        "integrity/{sequence}.json"
    ))))
}

pub fn bag_of(sequence: &str) -> std::path::PathBuf {
    fixture(&format!("integrity/{sequence}.mcap"))
}

/// What a user runs: config/matcher.yaml (pose, tracker, integrity, model sections) with the
/// sequence's camera.
pub fn config_of(scene: &Scene) -> ImdConfig {
    let shipped = ImdConfig::from_file(&crate::util::root().join("config/matcher.yaml")).unwrap();
    let mut config = sequence_config(scene, shipped.tracker.clone());
    config.pose = shipped.pose;
    config.integrity = shipped.integrity;
    config.model = shipped.model;
    config
}

/// Every frame of `bag` through the node's processor.
pub fn run_bag<M: PairMatcher>(bag: &Path, config: &ImdConfig, matcher: M) -> Vec<TrackOutput> {
    let reader = Bag::open(bag).unwrap();
    let cameras = config.cameras.resolve().unwrap();
    let frames = BagFrames::new(&reader, &cameras, config.node.sync_tolerance_s).unwrap();
    let mut processor = TrackerProcessor::new(matcher, config, cameras).unwrap();
    frames
        .map(|f| {
            processor
                .track_frame(&f.unwrap(), &ScheduleInfo::default())
                .unwrap()
                .0
        })
        .collect()
}

fn gt<'a>(scene: &'a Scene, id: &KeyframeId) -> &'a GtFrame {
    scene.frame(&id.camera, id.stamp).unwrap()
}

/// Score `outputs` (one camera) against the scene's ground truth; see the module doc.
pub fn score(scene: &Scene, outputs: &[TrackOutput]) -> Score {
    let mut s = Score {
        frames: outputs.len(),
        ..Default::default()
    };
    let mut keyframes: Vec<&GtFrame> = Vec::new();
    // The camera's reference keyframe before the frame (what it tracks against).
    let mut current: Option<&GtFrame> = None;
    for out in outputs {
        let frame = scene.frame(&out.camera.name, out.stamp).unwrap();
        s.integrity_ms.push(out.timings.integrity_ms);
        let reference = out.keyframe.as_ref().map(|k| gt(scene, k));
        let overlap = reference.map(|r| scene.overlap(r, frame, 24));
        let blanked = matches!(
            frame.degraded.as_deref(),
            Some("black" | "overexposed" | "uniform")
        );
        if let Some(pose) = &out.pose {
            s.verified += 1;
            let reference = reference.expect("a pose has a keyframe");
            let truth = scene.relative(reference, frame);
            let rot = rotation_error_deg(&pose.pose.rotation, &truth.rotation);
            let baseline = truth.translation.norm();
            let trans = (pose.translation_observable && baseline > MIN_BASELINE_M)
                .then(|| translation_error_deg(&pose.pose.translation, &truth.translation));
            if rot > WRONG_ROTATION_DEG || trans.is_some_and(|t| t > WRONG_TRANSLATION_DEG) {
                s.wrong.push(format!(
                    "#{} {}: rotation {rot:.1}°, translation {}° (baseline {baseline:.2} m), \
                     {} inliers of {}, {:?}",
                    frame.index,
                    out.state,
                    trans.map_or("–".into(), |t| format!("{t:.1}")),
                    out.quality.inliers,
                    out.quality.matches,
                    out.integrity
                ));
            }
            // R_true = exp([δθ]×)·R̂  ⇒  δθ = log(R_true·R̂ᵀ).
            let delta = (truth.rotation * pose.pose.rotation.inverse()).scaled_axis();
            let block: Matrix3<f64> = pose.covariance.fixed_view::<3, 3>(3, 3).into_owned();
            if let Some(inv) = block.try_inverse() {
                s.nees.push((delta.transpose() * inv * delta)[(0, 0)]);
            }
        }
        if let (Some(o), false) = (overlap, blanked) {
            if o > 0.5 {
                s.recall_total += 1;
                s.recall_hits += out.pose.is_some() as usize;
            }
        }
        if out.state == TrackState::Relocalized {
            s.relocalized += 1;
        }
        // A return to a stored place: nothing in common with the camera's reference, a lot
        // with an earlier keyframe.
        if let Some(r) = current {
            let known = keyframes
                .iter()
                .filter(|k| k.stamp != r.stamp)
                .any(|k| scene.overlap(k, frame, 24) > 0.5);
            if scene.overlap(r, frame, 24) < 0.1 && known && !blanked {
                s.returns += 1;
                s.returns_relocalized += (out.state == TrackState::Relocalized) as usize;
            }
        }
        if let Some(p) = &out.promoted {
            keyframes.push(gt(scene, p));
            current = Some(gt(scene, p));
        } else if out.state == TrackState::Relocalized {
            current = reference;
        }
    }
    s
}

fn log(scene: &Scene, outputs: &[TrackOutput]) {
    for out in outputs {
        let frame = scene.frame(&out.camera.name, out.stamp).unwrap();
        let truth = out.keyframe.as_ref().map(|k| {
            let r = gt(scene, k);
            (scene.relative(r, frame), scene.overlap(r, frame, 24))
        });
        let (trans, sigma_t) = match (&out.pose, &truth) {
            (Some(p), Some((t, _))) if p.translation_observable => {
                let block: Matrix3<f64> = p.covariance.fixed_view::<3, 3>(0, 0).into_owned();
                let sigma = block
                    .symmetric_eigenvalues()
                    .max()
                    .max(0.0)
                    .sqrt()
                    .to_degrees();
                (
                    translation_error_deg(&p.pose.translation, &t.translation),
                    sigma,
                )
            }
            _ => (f64::NAN, f64::NAN),
        };
        let (rot, nees) = match (&out.pose, &truth) {
            (Some(p), Some((t, _))) => {
                let delta = (t.rotation * p.pose.rotation.inverse()).scaled_axis();
                let block: Matrix3<f64> = p.covariance.fixed_view::<3, 3>(3, 3).into_owned();
                let nees = block
                    .try_inverse()
                    .map_or(f64::NAN, |inv| (delta.transpose() * inv * delta)[(0, 0)]);
                (rotation_error_deg(&p.pose.rotation, &t.rotation), nees)
            }
            _ => (f64::NAN, f64::NAN),
        };
        eprintln!(
            "  #{:2} {:12} kf {:>34} overlap {:.2} inliers {:4}/{:4} support {:.2} of {:3} spread {:.2} parallax {:5.1} \
             surprise {:6.1} rot err {:6.2}° nees {:8.2} t err {:5.1}° σt {:5.1}° {} {}",
            frame.index,
            out.state.as_str(),
            out.keyframe
                .as_ref()
                .map(|k| k.frame_name())
                .unwrap_or_default(),
            truth.map_or(f64::NAN, |t| t.1),
            out.quality.inliers,
            out.quality.matches,
            out.integrity
                .as_ref()
                .map_or(f64::NAN, |i| i.photometric_support),
            out.integrity
                .as_ref()
                .map_or(0, |i| i.photometric_informative),
            out.integrity.as_ref().map_or(f64::NAN, |i| i.inlier_spread),
            out.integrity
                .as_ref()
                .map_or(f64::NAN, |i| i.translation_parallax_px),
            out.integrity
                .as_ref()
                .and_then(|i| i.rotation_surprise_deg)
                .unwrap_or(f64::NAN),
            rot,
            nees,
            trans,
            sigma_t,
            out.pose.as_ref().map_or("-", |p| p.model.as_str()),
            out.reason.as_deref().unwrap_or("")
        );
    }
}

/// Run one matcher over every sequence; print the table rows and the per-frame log of any
/// sequence with a failure; return the scores.
pub fn run_all<M: PairMatcher>(name: &str, make: impl Fn(Arc<Scene>) -> M) -> Vec<(String, Score)> {
    let mut rows = Vec::new();
    // IMD_INTEGRITY_SEQUENCES=a,b runs only those (for investigating one sequence).
    let only = std::env::var("IMD_INTEGRITY_SEQUENCES").ok();
    for sequence in SEQUENCES {
        if only
            .as_deref()
            .is_some_and(|o| !o.split(',').any(|s| s == sequence))
        {
            continue;
        }
        let scene = scene_of(sequence);
        let config = config_of(&scene);
        let outputs = run_bag(&bag_of(sequence), &config, make(scene.clone()));
        let s = score(&scene, &outputs);
        println!("{}", s.row(sequence, name));
        if !s.wrong.is_empty() || std::env::var_os("IMD_INTEGRITY_LOG").is_some() {
            eprintln!("{sequence} / {name}:");
            log(&scene, &outputs);
        }
        rows.push((sequence.to_string(), s));
    }
    rows
}

/// Honest matcher: no confident wrong pose, ≥ 95 % recall, every return relocalized.
fn assert_honest(name: &str, rows: &[(String, Score)]) {
    for (sequence, s) in rows {
        assert!(s.wrong.is_empty(), "{sequence} / {name}: {:#?}", s.wrong);
        assert!(
            s.recall() >= 0.95,
            "{sequence} / {name}: recall {:.3} ({}/{})",
            s.recall(),
            s.recall_hits,
            s.recall_total
        );
        assert_eq!(
            s.returns_relocalized, s.returns,
            "{sequence} / {name}: returns to stored places not relocalized"
        );
    }
    let jump = &rows.iter().find(|(n, _)| n == "jump").unwrap().1;
    assert!(
        jump.returns >= 2,
        "the jump sequence returns twice: {jump:?}"
    );
}

#[test]
fn ground_truth_matcher_keeps_recall_and_relocalizes_on_every_return() {
    println!("{TABLE_HEADER}");
    let rows = run_all("ground-truth oracle", Oracle::new);
    assert_honest("ground-truth oracle", &rows);
}

#[test]
fn lying_matchers_never_give_a_confident_wrong_pose() {
    println!("{TABLE_HEADER}");
    for lie in [Lie::Foreign, Lie::NearIdentity] {
        let rows = run_all(lie.name(), |scene| Liar::new(lie, scene));
        for (sequence, s) in &rows {
            assert!(
                s.wrong.is_empty(),
                "{sequence} / {}: {:#?}",
                lie.name(),
                s.wrong
            );
        }
        // The lies are caught, not luckily harmless: the other-pair liar gets (almost) no
        // pose verified on the moving sequences.
        // (On the static camera the other pair's pose is the truth, and on the repeated
        // texture it is the truth up to the pattern's period: both harmless, and honest to
        // accept.)
        if lie == Lie::Foreign {
            let moving: usize = rows
                .iter()
                .filter(|(n, _)| n != "static" && n != "repeated")
                .map(|(_, s)| s.verified)
                .sum();
            assert!(moving <= 2, "other-pair liar verified {moving} poses");
        }
    }
}

/// The demo model (`models/imd-tiny-synth`) on every sequence; minutes of CPU, so run by
/// `scripts/bench/bench_integrity.sh` (and by hand:
/// `cargo test --features ros --test it -- --ignored integrity_demo --nocapture`).
#[test]
#[ignore]
fn integrity_demo_model() {
    // What a user runs: config/matcher.yaml's model section with the demo model.
    let options = imd::model::ModelOptions {
        model_dir: crate::util::root()
            .join("models/imd-tiny-synth")
            .display()
            .to_string(),
        ..config_of(&scene_of("jump")).model
    };
    println!("{TABLE_HEADER}");
    let rows = run_all("demo model", |_| {
        imd::model::ImdMatcher::load(&options).unwrap()
    });
    let all: Vec<f64> = rows.iter().flat_map(|(_, s)| s.nees.clone()).collect();
    let mean = all.iter().sum::<f64>() / all.len().max(1) as f64;
    println!(
        "demo model: rotation NEES over all verified poses: mean {mean:.2}, median {:.2} ({} poses)",
        median(&all),
        all.len()
    );
    assert_honest("demo model", &rows);
    // The band for the mean rotation NEES over the held-out sequences (3 when
    // honest): measured 2.8 with the jackknife and the model ambiguity (64 without). The
    // median (0.15) says the covariance is conservative on typical poses; not asserted.
    assert!((1.0..6.0).contains(&mean), "rotation NEES mean {mean}");
    assert!(median(&all) > 0.0);
    assert!(rows
        .iter()
        .all(|(_, s)| s.nees.iter().all(|v| v.is_finite())));
}

/// Calibration of the shipped covariance (`integrity.covariance_inflation`,
/// `integrity.planar_ambiguity`, `integrity.min_rotation_sigma_deg` in config/matcher.yaml) for
/// the demo model, on data the integrity sequences do not contain: the replay fixture's
/// two-camera room (tests/fixtures/replay/sequence.mcap) and the `calibration` sequence of
/// scripts/fixtures/make_integrity_fixtures.py (the room re-textured with training photos, slow
/// pans, tilts and rolls). Runs with all three at their neutral values, then picks the triple whose
/// rotation NEES over the verified poses matches χ²(3): mean 3 and median 2.37. Minutes of
/// CPU: `cargo test --features ros --test it -- --ignored integrity_calibration --nocapture`.
#[test]
#[ignore]
fn integrity_calibration_demo_model() {
    let mut samples = Vec::new();
    for (bag, truth) in [
        ("replay/sequence.mcap", "replay/sequence.json"),
        ("integrity/calibration.mcap", "integrity/calibration.json"),
    ] {
        let scene = Arc::new(Scene::load_file(&fixture(truth)));
        let mut config = config_of(&scene);
        config.integrity.covariance_inflation = 1.0;
        config.integrity.planar_ambiguity = 0.0;
        config.integrity.min_rotation_sigma_deg = 0.0;
        let options = imd::model::ModelOptions {
            model_dir: crate::util::root()
                .join("models/imd-tiny-synth")
                .display()
                .to_string(),
            ..config.model.clone()
        };
        let matcher = imd::model::ImdMatcher::load(&options).unwrap();
        let outputs = run_bag(&fixture(bag), &config, matcher);
        // Per verified pose: the rotation error vector, the rotation block, and the ambiguity
        // direction's unit variance (the term `planar_ambiguity` scales).
        for out in &outputs {
            let (Some(pose), Some(kf)) = (&out.pose, &out.keyframe) else {
                continue;
            };
            let truth = scene.relative(
                gt(&scene, kf),
                scene.frame(&out.camera.name, out.stamp).unwrap(),
            );
            let delta = (truth.rotation * pose.pose.rotation.inverse()).scaled_axis();
            let block: Matrix3<f64> = pose.covariance.fixed_view::<3, 3>(3, 3).into_owned();
            let unit = imd::pipeline::integrity::planar_ambiguity(
                pose.model,
                out.quality.median_flow_px,
                scene.camera(&out.camera.name).model.intrinsics.focal(),
                1.0,
            );
            samples.push((delta, block, unit));
        }
    }
    // `s`: the rotation floor, degrees.
    let nees_of = |k: f64, a: f64, s: f64| -> Vec<f64> {
        let floor = Matrix3::identity() * s.to_radians().powi(2);
        samples
            .iter()
            .filter_map(|(d, b, u)| {
                let inv = (b * k + u * (a * a) + floor).try_inverse()?;
                Some((d.transpose() * inv * d)[(0, 0)])
            })
            .collect()
    };
    let mut best = (f64::INFINITY, 1.0, 0.0, 0.0);
    for s in [0.0, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5] {
        for ki in 0..=30 {
            let k = 2f64.powf(ki as f64 * 4.0 / 30.0);
            for ai in 0..=20 {
                let a = ai as f64 * 0.025;
                let n = nees_of(k, a, s);
                let mean = n.iter().sum::<f64>() / n.len().max(1) as f64;
                let cost = (mean / 3.0).ln().abs() + (median(&n) / 2.37).ln().abs();
                if cost < best.0 {
                    best = (cost, k, a, s);
                }
            }
        }
    }
    let raw = nees_of(1.0, 0.0, 0.0);
    let fitted = nees_of(best.1, best.2, best.3);
    println!(
        "calibration (replay fixture + calibration sequence), demo model, {} verified poses: \
         raw rotation NEES mean {:.2} median {:.2}; covariance_inflation {:.2}, \
         planar_ambiguity {:.3}, min_rotation_sigma_deg {} give mean {:.2} median {:.2}",
        samples.len(),
        raw.iter().sum::<f64>() / raw.len().max(1) as f64,
        median(&raw),
        best.1,
        best.2,
        best.3,
        fitted.iter().sum::<f64>() / fitted.len().max(1) as f64,
        median(&fitted)
    );
    assert!(samples.len() >= 60);
}
