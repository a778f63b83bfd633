//! Geometry: minimal solvers, robust estimation, model selection, cameras, metrics and the
//! `imd pose` / `imd homography` CLI.
//!
//! Fixtures in `tests/fixtures/geometry/` come from `scripts/fixtures/make_geometry_fixtures.py`
//! (LoFTR's `error_auc` and epipolar distance, OpenCV's distortion models, PoseLib 2.0.5's
//! 5-point solver). Synthetic scenes come from `imd::geometry::synthetic` with fixed seeds.

use std::process::Command;

use imd::geometry::estimators::relative_pose::NormalizedCorrespondences;
use imd::geometry::metrics::{
    homography_corner_error, pose_auc, rotation_error_deg, symmetric_epipolar_distance,
    translation_error_deg, translation_error_unfolded_deg,
};
use imd::geometry::solvers::essential_5pt;
use imd::geometry::synthetic::{generate, minimal_sample, SceneKind, SceneSpec};
use imd::geometry::{
    estimate_homography, estimate_relative_pose, CameraModel, GeometryError, HomographyOptions,
    NormalizedPoint, PixelMatch, PixelPoint, PoseModel, PoseOptions, RelativePose, Rng,
};
use nalgebra::{Matrix3, Rotation3, Vector3};
use serde_json::Value;

use crate::util::{fixture, imd_bin};

fn load(name: &str) -> Value {
    let path = fixture(&format!("geometry/{name}"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| match x {
            Value::String(s) if s == "inf" => f64::INFINITY,
            other => other.as_f64().unwrap(),
        })
        .collect()
}

fn mat3(v: &Value) -> Matrix3<f64> {
    let rows: Vec<Vec<f64>> = v.as_array().unwrap().iter().map(f64s).collect();
    Matrix3::from_fn(|i, j| rows[i][j])
}

fn vec3(v: &Value) -> Vector3<f64> {
    let x = f64s(v);
    Vector3::new(x[0], x[1], x[2])
}

/// Distance between essential matrices up to sign (both unit Frobenius norm).
fn e_distance(a: &Matrix3<f64>, b: &Matrix3<f64>) -> f64 {
    let (a, b) = (a / a.norm(), b / b.norm());
    (a - b).norm().min((a + b).norm())
}

// ---------------------------------------------------------------- minimal solver

/// Largest entry of `2EEᵀE − tr(EEᵀ)E` and `det E` for unit-norm E: zero for essential matrices.
fn essential_violation(e: &Matrix3<f64>) -> f64 {
    let e = e / e.norm();
    let t = 2.0 * e * e.transpose() * e - (e * e.transpose()).trace() * e;
    t.amax().max(e.determinant().abs())
}

#[test]
fn five_point_finds_every_real_solution_poselib_finds_and_the_true_one() {
    let fx = load("poselib_5pt.json");
    let problems = fx["problems"].as_array().unwrap();
    assert!(problems.len() >= 50);
    for (k, p) in problems.iter().enumerate() {
        let rows = |key: &str| -> [Vector3<f64>; 5] {
            let a = p[key].as_array().unwrap();
            std::array::from_fn(|i| vec3(&a[i]))
        };
        let (x0, x1) = (rows("x0"), rows("x1"));
        let mut ours = Vec::new();
        essential_5pt(&x0, &x1, &mut ours);
        let theirs: Vec<Matrix3<f64>> = p["poselib"].as_array().unwrap().iter().map(mat3).collect();
        // Same set of real roots: same count, and each PoseLib solution is one of ours.
        assert_eq!(
            ours.len(),
            theirs.len(),
            "problem {k}: {} vs PoseLib {}",
            ours.len(),
            theirs.len()
        );
        for e in &theirs {
            let d = ours
                .iter()
                .map(|o| e_distance(o, e))
                .fold(f64::INFINITY, f64::min);
            // PoseLib stops at its Sturm bisection's accuracy, which degrades near double roots
            // (its trace constraint is then violated by up to 1e-5); ours is polished. Match to
            // 1e-8, or to 100× PoseLib's own constraint violation where that is larger.
            let tol = 1e-8f64.max(100.0 * essential_violation(e));
            assert!(
                d < tol,
                "problem {k}: PoseLib solution missing (nearest {d:e}, tolerance {tol:e})"
            );
        }
        let e_true = mat3(&p["E_true"]);
        let d = ours
            .iter()
            .map(|o| e_distance(o, &e_true))
            .fold(f64::INFINITY, f64::min);
        assert!(d < 1e-9, "problem {k}: true E not recovered ({d:e})");
        for e in &ours {
            // Every solution satisfies the epipolar and essential constraints to rounding.
            for (a, b) in x0.iter().zip(&x1) {
                assert!((b.transpose() * e * a)[0].abs() < 1e-11);
            }
            assert!(
                essential_violation(e) < 1e-11,
                "problem {k}: {:e}",
                essential_violation(e)
            );
        }
    }
}

#[test]
fn five_point_is_exact_on_random_noise_free_problems() {
    let mut rng = Rng::new(2024);
    let mut counts = [0usize; 11];
    for _ in 0..2000 {
        let (pose, x0, x1) =
            minimal_sample::<5>(&mut rng, [0.01, 1.0], [-3.0, 3.0], [-3.0, 3.0], [1.0, 10.0]);
        let mut sols = Vec::new();
        essential_5pt(&x0, &x1, &mut sols);
        counts[sols.len().min(10)] += 1;
        let d = sols
            .iter()
            .map(|e| e_distance(e, &pose.essential()))
            .fold(f64::INFINITY, f64::min);
        // Noise-free input: the true E is a root; 1e-9 is the acceptance tolerance.
        assert!(
            d < 1e-9,
            "true E missing: nearest {d:e} among {} solutions",
            sols.len()
        );
    }
    // Real solutions come in even numbers (complex roots pair up, the true one is real).
    assert_eq!(
        counts.iter().skip(1).step_by(2).sum::<usize>(),
        0,
        "{counts:?}"
    );
}

// ---------------------------------------------------------------- robust estimation

fn spec(kind: SceneKind, n: usize, outliers: f64) -> SceneSpec {
    SceneSpec {
        kind,
        num_matches: n,
        outlier_ratio: outliers,
        ..SceneSpec::default()
    }
}

/// Runs the estimator on 30 seeded general scenes; checks accuracy bounds and inlier recovery,
/// and returns the NEES (normalized estimation error squared, 5 dof) of each trial.
fn accuracy_trials(seed: u64, outliers: f64, jackknife_grid: usize) -> Vec<f64> {
    // σ = 0.5 px at f = 500 px is 1e-3 rad per point. With ~350 inliers spread over a 65° view
    // the rotation is known to ~1e-3/√350 ≈ 5e-5 rad (0.003°) times a geometry factor of a few,
    // and the translation direction to that divided by the parallax (baseline/depth ≈ 0.1):
    // ~0.03–0.3° (PoseLib's medians on this scene: 0.045° and 0.28°). The bounds below are
    // ~6× those medians; the covariance check is the finer test.
    let mut rng = Rng::new(seed);
    let mut nees = Vec::new();
    for trial in 0..30 {
        let pair = generate(&spec(SceneKind::General, 600, outliers), &mut rng);
        let opts = PoseOptions {
            jackknife_grid,
            ..PoseOptions::default()
        };
        let est = estimate_relative_pose(&pair.matches, &pair.camera, &pair.camera, &opts)
            .unwrap_or_else(|e| panic!("trial {trial}: {e}"));
        assert_eq!(est.model, PoseModel::Essential, "trial {trial}");
        assert!(est.translation_observable);
        assert!((est.pose.translation.norm() - 1.0).abs() < 1e-12);
        let e_r = rotation_error_deg(&est.pose.rotation, &pair.gt.rotation);
        let e_t = translation_error_unfolded_deg(&est.pose.translation, &pair.gt.translation);
        assert!(
            e_r < 0.3 && e_t < 2.0,
            "trial {trial}: rotation {e_r}°, translation {e_t}°"
        );
        // Inliers: nearly all true inliers found, few outliers accepted (random points within
        // 1 px of an epipolar line: ~0.5 % of 240 outliers).
        let true_in = pair.is_inlier.iter().filter(|b| **b).count();
        let found_true = est
            .inliers
            .iter()
            .zip(&pair.is_inlier)
            .filter(|(a, b)| **a && **b)
            .count();
        let false_pos = est
            .inliers
            .iter()
            .zip(&pair.is_inlier)
            .filter(|(a, b)| **a && !**b)
            .count();
        // P(|r| < 2σ) = 95.4 %; 90 % is about 5 binomial std below for ~360 inliers.
        assert!(
            found_true as f64 > 0.9 * true_in as f64,
            "trial {trial}: {found_true}/{true_in}"
        );
        assert!(
            false_pos < 12,
            "trial {trial}: {false_pos} outliers accepted"
        );
        // The noise estimate recovers σ = 0.5 px (Sampson error ≈ 1-D geometric error).
        assert!(
            (est.noise_sigma_px - 0.5).abs() < 0.1,
            "trial {trial}: σ̂ = {}",
            est.noise_sigma_px
        );
        // Estimation error (δt, δθ) in the covariance's parameterisation, against it (rank 5).
        let r_err = (pair.gt.rotation * est.pose.rotation.inverse()).scaled_axis();
        let t_hat = est.pose.translation;
        let t_err = pair.gt.translation - t_hat * t_hat.dot(&pair.gt.translation);
        let d = nalgebra::Vector6::new(t_err.x, t_err.y, t_err.z, r_err.x, r_err.y, r_err.z);
        let cov = est.covariance;
        let pinv = cov.pseudo_inverse(1e-18 * cov.norm()).unwrap();
        nees.push((d.transpose() * pinv * d)[0]);
    }
    nees
}

#[test]
fn estimator_accuracy_and_covariance_match_the_noise() {
    // The analytic (sandwich) covariance alone, the jackknife off. Inliers only: the NEES is
    // χ²₅ if the covariance is right; the mean of 30 draws has mean 5 and std √(10/30) ≈ 0.58,
    // so [3.5, 6.5] is ±2.6 std. A covariance off by a factor 1.5 in variance falls outside.
    let nees = accuracy_trials(7, 0.0, 0);
    let mean = nees.iter().sum::<f64>() / nees.len() as f64;
    assert!((3.5..6.5).contains(&mean), "mean NEES {mean}: {nees:?}");
    // With the default block jackknife on independent noise, the covariance is the larger of
    // the two and the jackknife errs high (Efron–Stein), so it is conservative — measured
    // mean 2.6 — but never over-confident and not by more than 3× in variance: [5/3, 5].
    let with = accuracy_trials(7, 0.0, PoseOptions::default().jackknife_grid);
    let mean = with.iter().sum::<f64>() / with.len() as f64;
    assert!(
        (5.0 / 3.0..5.0).contains(&mean),
        "with the jackknife: mean NEES {mean}: {with:?}"
    );
    // 40 % outliers: the few outliers that fall within the window act as heavy-tailed
    // residuals, so a trial or two exceeds χ²₅'s tail; the bulk must stay consistent: the
    // median of χ²₅ is 4.35 (sample median of 30: about ±1).
    let mut nees = accuracy_trials(8, 0.4, 0);
    nees.sort_by(f64::total_cmp);
    let median = nees[nees.len() / 2];
    assert!(
        (2.5..7.5).contains(&median),
        "median NEES {median}: {nees:?}"
    );
}

/// Rotation NEES (3 dof) of `trials` rotation-only scenes whose matches carry, besides 0.3 px
/// of independent noise, an offset shared by every match in the same cell of an 8×8 grid over
/// image 1 (σ 0.5 px per cell): the spatially correlated error a learned matcher makes.
fn correlated_rotation_nees(jackknife_grid: usize, trials: usize) -> Vec<f64> {
    let mut rng = Rng::new(21);
    let opts = PoseOptions {
        jackknife_grid,
        ..PoseOptions::default()
    };
    (0..trials)
        .map(|trial| {
            let mut scene = spec(SceneKind::Rotation, 400, 0.0);
            scene.noise_px = 0.3;
            let mut pair = generate(&scene, &mut rng);
            let offsets: Vec<(f64, f64)> = (0..64)
                .map(|_| (0.5 * rng.normal(), 0.5 * rng.normal()))
                .collect();
            let (w, h) = (scene.width as f64, scene.height as f64);
            for m in &mut pair.matches {
                let cx = ((m.p1.x / w * 8.0).floor().max(0.0) as usize).min(7);
                let cy = ((m.p1.y / h * 8.0).floor().max(0.0) as usize).min(7);
                let (dx, dy) = offsets[cy * 8 + cx];
                m.p1 = PixelPoint::new(m.p1.x + dx, m.p1.y + dy);
            }
            let est = estimate_relative_pose(&pair.matches, &pair.camera, &pair.camera, &opts)
                .unwrap_or_else(|e| panic!("trial {trial}: {e}"));
            let d = (pair.gt.rotation * est.pose.rotation.inverse()).scaled_axis();
            let block: Matrix3<f64> = est.covariance.fixed_view::<3, 3>(3, 3).into_owned();
            (d.transpose() * block.try_inverse().unwrap() * d)[(0, 0)]
        })
        .collect()
}

#[test]
fn jackknife_makes_the_covariance_honest_under_correlated_match_errors() {
    // 64 shared offsets dominate 400 independent ones: the variance of the rotation is about
    // 0.25/64 + 0.09/400 per axis (px²) where the independent-noise covariance claims
    // 0.34/400, so the NEES mean is ≈ 3 × 5 (χ²₃'s 3 when honest). The 4×4 block jackknife
    // sees the correlation; with 16 blocks its own estimate has 15 degrees of freedom, so
    // even a perfect one gives a NEES mean of 3·15/11 ≈ 4.1 (Hotelling's T²), and the band
    // [1, 6] is the integrity issue's.
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let without = correlated_rotation_nees(0, 40);
    let with = correlated_rotation_nees(4, 40);
    eprintln!(
        "rotation NEES mean under correlated errors: {:.2} without the jackknife, {:.2} with",
        mean(&without),
        mean(&with)
    );
    assert!(mean(&without) > 10.0, "without: {without:?}");
    assert!((1.0..6.0).contains(&mean(&with)), "with: {with:?}");
}

#[test]
fn estimator_is_deterministic_for_a_seed() {
    let pair = generate(&spec(SceneKind::General, 400, 0.5), &mut Rng::new(3));
    let opts = PoseOptions {
        seed: 99,
        ..PoseOptions::default()
    };
    let a = estimate_relative_pose(&pair.matches, &pair.camera, &pair.camera, &opts).unwrap();
    let b = estimate_relative_pose(&pair.matches, &pair.camera, &pair.camera, &opts).unwrap();
    assert_eq!(a.pose, b.pose);
    assert_eq!(a.inliers, b.inliers);
    assert_eq!(a.iterations, b.iterations);
}

#[test]
fn high_outlier_ratio_still_converges() {
    let mut rng = Rng::new(11);
    for trial in 0..5 {
        let pair = generate(&spec(SceneKind::General, 1000, 0.75), &mut rng);
        let est = estimate_relative_pose(
            &pair.matches,
            &pair.camera,
            &pair.camera,
            &PoseOptions::default(),
        )
        .unwrap();
        let e_r = rotation_error_deg(&est.pose.rotation, &pair.gt.rotation);
        let e_t = translation_error_unfolded_deg(&est.pose.translation, &pair.gt.translation);
        // 250 inliers: the bounds above scaled by √(360/250) ≈ 1.2 and rounded up.
        assert!(e_r < 0.4 && e_t < 2.5, "trial {trial}: {e_r}° {e_t}°");
    }
}

/// Failure (> 2°) count, count of failures whose reported alternative is right, and count of
/// homography-model results over `trials` planar scenes of `kind`.
fn planar_trials(kind: SceneKind, seed: u64, trials: usize) -> (usize, usize, usize) {
    let mut rng = Rng::new(seed);
    let (mut wrong, mut alt_right, mut homography) = (0, 0, 0);
    for _ in 0..trials {
        let pair = generate(&spec(kind, 800, 0.25), &mut rng);
        let est = estimate_relative_pose(
            &pair.matches,
            &pair.camera,
            &pair.camera,
            &PoseOptions::default(),
        )
        .unwrap();
        assert!(est.translation_observable);
        if est.model == PoseModel::Homography {
            homography += 1;
            assert!(est.homography.is_some());
        }
        let err_of = |p: &RelativePose| {
            rotation_error_deg(&p.rotation, &pair.gt.rotation).max(translation_error_unfolded_deg(
                &p.translation,
                &pair.gt.translation,
            ))
        };
        if err_of(&est.pose) > 2.0 {
            wrong += 1;
            alt_right += est.alternative.is_some_and(|alt| err_of(&alt) < 2.0) as usize;
        }
    }
    (wrong, alt_right, homography)
}

#[test]
fn planar_scenes_are_detected_and_mostly_resolved() {
    // Tilted planes facing the camera: about half the scenes are two-fold ambiguous (both
    // decompositions keep every point in front); the smaller-rotation prior resolves roughly two
    // thirds of those, so ~20 % fail (PoseLib: ~23 %, see scripts/bench/bench_geometry.py). Nearly
    // every failure must come with the right answer as the reported alternative.
    let (wrong, alt_right, homography) = planar_trials(SceneKind::Planar, 21, 40);
    assert!(homography >= 36, "homography model in {homography}/40");
    assert!(wrong <= 14, "{wrong}/40 wrong");
    assert!(
        alt_right + 2 >= wrong,
        "{alt_right} of {wrong} failures have the right alternative"
    );
    // Driving over the ground: the wrong decomposition puts its epipole far from the points and
    // would win if low-parallax points counted (PoseLib fails ~95 % of these).
    let (wrong, _, homography) = planar_trials(SceneKind::Ground, 22, 20);
    assert!(homography >= 18, "homography model in {homography}/20");
    assert!(wrong <= 2, "{wrong}/20 ground scenes wrong");
}

#[test]
fn pure_rotation_is_detected_and_translation_flagged() {
    let mut rng = Rng::new(31);
    for trial in 0..10 {
        let pair = generate(&spec(SceneKind::Rotation, 600, 0.3), &mut rng);
        let est = estimate_relative_pose(
            &pair.matches,
            &pair.camera,
            &pair.camera,
            &PoseOptions::default(),
        )
        .unwrap();
        assert_eq!(est.model, PoseModel::Rotation, "trial {trial}");
        assert!(!est.translation_observable);
        assert_eq!(est.pose.translation, Vector3::zeros());
        let e_r = rotation_error_deg(&est.pose.rotation, &pair.gt.rotation);
        // Rotation from ~420 inliers with two constraints each: better than the general case.
        assert!(e_r < 0.05, "trial {trial}: {e_r}°");
        assert!(
            est.covariance[(0, 0)] >= 1e5,
            "translation variance must say unknown"
        );
        assert!(est.covariance[(3, 3)] > 0.0 && est.covariance[(3, 3)] < 1e-6);
    }
}

#[test]
fn general_scenes_are_not_mistaken_for_planes_or_rotations() {
    let mut rng = Rng::new(41);
    for kind in [SceneKind::General, SceneKind::Forward] {
        for _ in 0..10 {
            let pair = generate(&spec(kind, 500, 0.25), &mut rng);
            let est = estimate_relative_pose(
                &pair.matches,
                &pair.camera,
                &pair.camera,
                &PoseOptions::default(),
            )
            .unwrap();
            assert_eq!(est.model, PoseModel::Essential, "{kind:?}");
        }
    }
}

#[test]
fn failures_are_errors_not_garbage_poses() {
    let cam = CameraModel::pinhole(500.0, 500.0, 320.0, 240.0, 640, 480);
    let few: Vec<PixelMatch> = (0..4)
        .map(|i| PixelMatch {
            p0: PixelPoint::new(10.0 * i as f64, 20.0),
            p1: PixelPoint::new(12.0 * i as f64, 21.0),
            confidence: 1.0,
        })
        .collect();
    assert!(matches!(
        estimate_relative_pose(&few, &cam, &cam, &PoseOptions::default()),
        Err(GeometryError::TooFewMatches { got: 4, needed: 5 })
    ));
    // Pure noise: whatever RANSAC finds explains no more than chance.
    let mut rng = Rng::new(5);
    let random: Vec<PixelMatch> = (0..500)
        .map(|_| PixelMatch {
            p0: PixelPoint::new(rng.uniform_in(0.0, 640.0), rng.uniform_in(0.0, 480.0)),
            p1: PixelPoint::new(rng.uniform_in(0.0, 640.0), rng.uniform_in(0.0, 480.0)),
            confidence: 1.0,
        })
        .collect();
    let err = estimate_relative_pose(&random, &cam, &cam, &PoseOptions::default()).unwrap_err();
    assert!(matches!(err, GeometryError::NoModel { .. }), "{err}");
    let mut bad = random.clone();
    bad[7].p1.y = f64::NAN;
    let err = estimate_relative_pose(&bad, &cam, &cam, &PoseOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("match 7"), "{err}");
    let bad_opts = PoseOptions {
        threshold_px: -1.0,
        ..PoseOptions::default()
    };
    let err = estimate_relative_pose(&random, &cam, &cam, &bad_opts)
        .unwrap_err()
        .to_string();
    assert!(err.contains("pose.threshold_px"), "{err}");
}

#[test]
fn distorted_cameras_give_the_same_pose_as_pinhole() {
    // Distort the pixels of a pinhole scene with plumb_bob; estimating with the distorted
    // model must undo it exactly (same normalized points up to 1e-12).
    let pair = generate(&spec(SceneKind::General, 500, 0.3), &mut Rng::new(51));
    let k = [500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0];
    let cam =
        CameraModel::from_camera_info("plumb_bob", &[-0.2, 0.05, 1e-3, -5e-4, -0.01], &k, 640, 480)
            .unwrap();
    let distorted: Vec<PixelMatch> = pair
        .matches
        .iter()
        .map(|m| {
            let a = pair.camera.normalize(&m.p0).unwrap();
            let b = pair.camera.normalize(&m.p1).unwrap();
            PixelMatch {
                p0: cam.project(&a),
                p1: cam.project(&b),
                confidence: 1.0,
            }
        })
        .collect();
    let opts = PoseOptions::default();
    let plain = estimate_relative_pose(&pair.matches, &pair.camera, &pair.camera, &opts).unwrap();
    let undist = estimate_relative_pose(&distorted, &cam, &cam, &opts).unwrap();
    assert_eq!(plain.inliers, undist.inliers);
    // Levenberg–Marquardt stops at a relative cost change of 1e-12, which leaves ~1e-8 rad of
    // play between runs on inputs equal to rounding; the estimate's own spread is ~1e-4 rad.
    let diff = rotation_error_deg(&plain.pose.rotation, &undist.pose.rotation);
    assert!(diff < 1e-5, "{diff}°");
}

// ---------------------------------------------------------------- homography

#[test]
fn homography_estimate_matches_the_true_plane_mapping() {
    let mut rng = Rng::new(61);
    for trial in 0..10 {
        let pair = generate(&spec(SceneKind::Planar, 800, 0.4), &mut rng);
        let (n, d) = pair.plane.unwrap();
        let k = pair.camera.intrinsics.matrix();
        let gt_h = k
            * (pair.gt.rotation.matrix() + pair.gt.translation * 0.5 * n.transpose() / d)
            * k.try_inverse().unwrap();
        let est = estimate_homography(&pair.matches, &HomographyOptions::default()).unwrap();
        let err = homography_corner_error(&est.h, &gt_h, 640, 480);
        // σ = 0.5 px over ~480 points: the corners (extrapolated outside the plane's visible
        // region) are known to a few tenths of a pixel.
        assert!(err < 1.5, "trial {trial}: corner error {err} px");
        let true_in = pair.is_inlier.iter().filter(|b| **b).count();
        assert!(est.num_inliers as f64 > 0.97 * true_in as f64);
        assert!((est.h[(2, 2)] - 1.0).abs() < 1e-12);
    }
}

// ---------------------------------------------------------------- cameras and metrics

#[test]
fn distortion_matches_opencv_and_round_trips() {
    let fx = load("distortion.json");
    let k: Vec<f64> = f64s(&fx["K"]);
    let k: [f64; 9] = k.try_into().unwrap();
    let points: Vec<Vector3<f64>> = fx["points"].as_array().unwrap().iter().map(vec3).collect();
    for model in fx["models"].as_array().unwrap() {
        let name = model["model"].as_str().unwrap();
        let cam = CameraModel::from_camera_info(name, &f64s(&model["D"]), &k, 640, 480).unwrap();
        for (p, px) in points.iter().zip(model["pixels"].as_array().unwrap()) {
            let px = f64s(px);
            let n = NormalizedPoint::new(p.x / p.z, p.y / p.z);
            let ours = cam.project(&n);
            // Same closed-form model: agreement to rounding.
            assert!(
                ours.distance(&PixelPoint::new(px[0], px[1])) < 1e-9,
                "{name}: {ours:?} vs {px:?}"
            );
            let back = cam.normalize(&ours).unwrap();
            // Round trip below 1e-6 px (acceptance), measured in pixels.
            let err_px = (back.x - n.x).hypot(back.y - n.y) * 500.0;
            assert!(err_px < 1e-6, "{name}: round trip {err_px} px");
        }
    }
}

#[test]
fn pose_auc_reproduces_loftr_error_auc() {
    for case in load("error_auc.json").as_array().unwrap() {
        let errors = f64s(&case["errors"]);
        let thresholds = f64s(&case["thresholds"]);
        let want = f64s(&case["auc"]);
        let got = pose_auc(&errors, &thresholds);
        for (g, w) in got.iter().zip(&want) {
            // Same arithmetic up to summation order.
            assert!((g - w).abs() < 1e-12, "{errors:?}: {got:?} vs {want:?}");
        }
    }
}

#[test]
fn symmetric_epipolar_distance_reproduces_loftr() {
    let fx = load("epipolar.json");
    let pose = RelativePose::new(
        Rotation3::from_matrix_unchecked(mat3(&fx["R"])),
        vec3(&fx["t"]),
    );
    let k0 = mat3(&fx["K0"]);
    let k1 = mat3(&fx["K1"]);
    let cam0 = CameraModel::pinhole(k0[(0, 0)], k0[(1, 1)], k0[(0, 2)], k0[(1, 2)], 640, 480);
    let cam1 = CameraModel::pinhole(k1[(0, 0)], k1[(1, 1)], k1[(0, 2)], k1[(1, 2)], 640, 480);
    let pts0 = fx["pts0"].as_array().unwrap();
    let pts1 = fx["pts1"].as_array().unwrap();
    for ((a, b), want) in pts0.iter().zip(pts1).zip(f64s(&fx["distance"])) {
        let (a, b) = (f64s(a), f64s(b));
        let x0 = cam0.normalize(&PixelPoint::new(a[0], a[1])).unwrap();
        let x1 = cam1.normalize(&PixelPoint::new(b[0], b[1])).unwrap();
        let got = symmetric_epipolar_distance(&x0, &x1, &pose.essential());
        assert!(
            (got - want).abs() <= 1e-12 * want.abs().max(1e-12),
            "{got} vs {want}"
        );
    }
}

#[test]
fn pose_options_live_in_the_config_and_ros_parameters() {
    let yaml = "pose:\n  threshold_px: 0.75\n  seed: 4\n  refinement:\n    loss: huber\n  model_selection:\n    planar_inlier_ratio: 0.7\n";
    let config = imd::config::ImdConfig::from_yaml_str(yaml).unwrap();
    let pose = &config.pose;
    assert_eq!(pose.threshold_px, 0.75);
    assert_eq!(pose.seed, 4);
    assert_eq!(pose.refinement.loss, imd::geometry::RobustLoss::Huber);
    assert_eq!(pose.model_selection.planar_inlier_ratio, 0.7);
    // Untouched fields keep their defaults.
    assert_eq!(pose.confidence, PoseOptions::default().confidence);
    // Flat ROS parameter names round-trip, the loss as a plain string.
    let flat = config.to_flat();
    let loss = flat
        .iter()
        .find(|(k, _)| k == "pose.refinement.loss")
        .unwrap();
    assert_eq!(loss.1, "huber");
    assert_eq!(imd::config::ImdConfig::from_flat(flat).unwrap(), config);
    assert!(imd::config::ImdConfig::from_yaml_str("pose:\n  treshold_px: 1\n").is_err());
}

#[test]
fn homography_auc_uses_the_hpatches_thresholds() {
    let a = imd::geometry::metrics::homography_auc(&[1.0, 2.0, f64::INFINITY]);
    let b = pose_auc(&[1.0, 2.0, f64::INFINITY], &[3.0, 5.0, 10.0]);
    assert_eq!(a.to_vec(), b);
}

#[test]
fn translation_metrics_follow_loftr_and_posebench() {
    let t = Vector3::new(0.0, 0.6, 0.8);
    let flipped = -t;
    assert!(translation_error_deg(&flipped, &t).abs() < 1e-9);
    assert!((translation_error_unfolded_deg(&flipped, &t) - 180.0).abs() < 1e-9);
}

#[test]
fn sampson_scoring_counts_the_true_inliers() {
    // The SoA scoring loop against the plain formula on a noise-free scene.
    let pair = generate(
        &SceneSpec {
            noise_px: 0.0,
            ..spec(SceneKind::General, 300, 0.3)
        },
        &mut Rng::new(71),
    );
    let c = NormalizedCorrespondences::new(pair.matches.iter().map(|m| {
        let a = pair.camera.normalize(&m.p0).unwrap();
        let b = pair.camera.normalize(&m.p1).unwrap();
        ([a.x, a.y], [b.x, b.y])
    }));
    let thr = 1.0 / 500.0;
    let (inliers, errors) = c.classify(&pair.gt, thr * thr);
    for (i, &truth) in pair.is_inlier.iter().enumerate() {
        if truth {
            assert!(inliers[i] && errors[i] < 1e-20, "inlier {i}: {}", errors[i]);
        }
    }
    let score = c.score(&pair.gt, thr * thr, f64::INFINITY).unwrap();
    assert_eq!(score.inliers, inliers.iter().filter(|b| **b).count());
}

// ---------------------------------------------------------------- CLI

fn write_csv(dir: &std::path::Path, name: &str, matches: &[PixelMatch]) -> std::path::PathBuf {
    let path = dir.join(name);
    imd::io::matches::write_matches_csv(&path, matches).unwrap();
    path
}

#[test]
fn cli_pose_prints_the_documented_json() {
    let dir = tempfile::tempdir().unwrap();
    let pair = generate(&spec(SceneKind::General, 400, 0.3), &mut Rng::new(81));
    let csv = write_csv(dir.path(), "m.csv", &pair.matches);
    let out = Command::new(imd_bin())
        .args(["pose", "--matches"])
        .arg(&csv)
        .args([
            "--k0",
            "500,500,320,240",
            "--k1",
            "500,500,320,240",
            "--threshold",
            "1.0",
            "--seed",
            "3",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = mat3(&v["R"]);
    let t = vec3(&v["t"]);
    assert!((r.transpose() * r - Matrix3::identity()).norm() < 1e-9);
    assert!((t.norm() - 1.0).abs() < 1e-9);
    assert_eq!(v["model"], "essential");
    assert_eq!(v["num_matches"], 400);
    assert!(v["inliers"].as_u64().unwrap() > 250);
    assert!(v["elapsed_us"].as_f64().unwrap() > 0.0);
    assert_eq!(v["covariance"].as_array().unwrap().len(), 6);
    // The CSV stores 3 decimals (≤ 5e-4 px rounding, far below σ): same accuracy as in-memory.
    let e_r = rotation_error_deg(&Rotation3::from_matrix_unchecked(r), &pair.gt.rotation);
    let e_t = translation_error_unfolded_deg(&t, &pair.gt.translation);
    assert!(e_r < 0.3 && e_t < 2.0, "{e_r} {e_t}");
}

#[test]
fn cli_pose_batch_writes_one_result_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(91);
    let mut lines = Vec::new();
    let mut gts = Vec::new();
    for id in 0..3 {
        let pair = generate(&spec(SceneKind::General, 300, 0.3), &mut rng);
        let rows: Vec<[f64; 4]> = pair
            .matches
            .iter()
            .map(|m| [m.p0.x, m.p0.y, m.p1.x, m.p1.y])
            .collect();
        lines.push(serde_json::json!({"id": format!("p{id}"), "k0": [500, 500, 320, 240], "k1": [500, 500, 320, 240], "matches": rows}).to_string());
        gts.push(pair.gt);
    }
    // A problem with too few matches gets an error record, not an abort.
    lines.push(
        r#"{"id": "few", "k0": [500, 500, 320, 240], "matches": [[1,2,3,4],[5,6,7,8]]}"#
            .to_string(),
    );
    let path = dir.path().join("in.jsonl");
    std::fs::write(&path, lines.join("\n")).unwrap();
    let out = Command::new(imd_bin())
        .args(["pose", "--batch"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recs: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs.len(), 4);
    for (i, gt) in gts.iter().enumerate() {
        assert_eq!(recs[i]["id"], format!("p{i}"));
        let r = Rotation3::from_matrix_unchecked(mat3(&recs[i]["R"]));
        assert!(rotation_error_deg(&r, &gt.rotation) < 0.3);
    }
    assert_eq!(recs[3]["id"], "few");
    assert!(recs[3]["error"]
        .as_str()
        .unwrap()
        .contains("too few matches"));
}

#[test]
fn cli_pose_batch_answers_every_line_and_exits_3_when_a_line_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let pair = generate(&spec(SceneKind::General, 300, 0.3), &mut Rng::new(93));
    let rows: Vec<[f64; 4]> = pair
        .matches
        .iter()
        .map(|m| [m.p0.x, m.p0.y, m.p1.x, m.p1.y])
        .collect();
    let good = |id: &str| {
        serde_json::json!({"id": id, "k0": [500, 500, 320, 240], "matches": rows}).to_string()
    };
    let lines = [
        good("first"),
        "{not json".to_string(),
        r#"{"id": "k0-short", "k0": [500, 500, 320], "matches": []}"#.to_string(),
        String::new(),
        r#"{"id": "nan", "k0": [500, 500, 320, 240], "matches": [[1, 2, 3, "x"]]}"#.to_string(),
        r#"{"id": "bad-threshold", "k0": [500, 500, 320, 240], "threshold": -1, "matches": []}"#
            .to_string(),
        good("last"),
    ];
    let path = dir.path().join("in.jsonl");
    std::fs::write(&path, lines.join("\n")).unwrap();
    let out = Command::new(imd_bin())
        .args(["pose", "--batch"])
        .arg(&path)
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("4 invalid line(s)") && stderr.contains("lines 2, 3, 5, 6"),
        "{stderr}"
    );
    let recs: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // One answer per non-empty line, in order; the batch went on past every bad line.
    let ids: Vec<Value> = recs.iter().map(|r| r["id"].clone()).collect();
    assert_eq!(
        ids,
        [
            Value::from("first"),
            Value::Null,
            Value::from("k0-short"),
            Value::from("nan"),
            Value::from("bad-threshold"),
            Value::from("last")
        ]
    );
    for (i, line) in [(1, 2), (2, 3), (3, 5), (4, 6)] {
        assert_eq!(recs[i]["error_kind"], "input", "{}", recs[i]);
        assert_eq!(recs[i]["line"], line);
    }
    assert!(recs[2]["error"].as_str().unwrap().contains("`k0`"));
    for i in [0, 5] {
        let r = Rotation3::from_matrix_unchecked(mat3(&recs[i]["R"]));
        assert!(rotation_error_deg(&r, &pair.gt.rotation) < 0.3);
    }
}

#[test]
fn collinear_matches_are_degenerate_not_a_confident_pose() {
    // 50 matches on one image line, shifted by one pixel: the solver finds "a" pose; before,
    // it came back with a covariance of 1e-31. Now it is refused as degenerate.
    let cam = CameraModel::pinhole(500.0, 500.0, 320.0, 240.0, 0, 0);
    let matches: Vec<PixelMatch> = (0..50)
        .map(|i| PixelMatch {
            p0: PixelPoint::new(i as f64, i as f64),
            p1: PixelPoint::new(i as f64 + 1.0, i as f64 + 1.0),
            confidence: 1.0,
        })
        .collect();
    match estimate_relative_pose(&matches, &cam, &cam, &PoseOptions::default()) {
        Err(GeometryError::NoModel { reason }) => {
            assert!(
                reason.contains("degenerate: the 50 inliers lie on a line in image 0"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn cli_homography_prints_h() {
    let dir = tempfile::tempdir().unwrap();
    let pair = generate(&spec(SceneKind::Planar, 300, 0.2), &mut Rng::new(101));
    let csv = write_csv(dir.path(), "m.csv", &pair.matches);
    let out = Command::new(imd_bin())
        .args(["homography", "--matches"])
        .arg(&csv)
        .args(["--threshold", "2"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let h = mat3(&v["H"]);
    assert!((h[(2, 2)] - 1.0).abs() < 1e-12);
    assert!(v["inliers"].as_u64().unwrap() >= 230);
}

#[test]
fn cli_rejects_malformed_input_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(imd_bin()).args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} should fail");
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let k = "500,500,320,240";
    let missing = write("missing.csv", "x0,y0,x1\n1,2,3\n");
    assert!(run(&["pose", "--matches", &missing, "--k0", k]).contains("lacks column `y1`"));
    let nan = write("nan.csv", "x0,y0,x1,y1\n1,2,3,4\n1,NaN,3,4\n");
    assert!(run(&["pose", "--matches", &nan, "--k0", k]).contains("nan.csv:3"));
    let few = write("few.csv", "x0,y0,x1,y1\n1,2,3,4\n5,6,7,8\n");
    assert!(run(&["pose", "--matches", &few, "--k0", k]).contains("need at least 5"));
    let ok = write(
        "ok.csv",
        "x0,y0,x1,y1\n1,2,3,4\n5,6,7,8\n9,1,2,3\n4,5,6,7\n8,9,1,2\n",
    );
    assert!(run(&["pose", "--matches", &ok, "--k0", "500,0,320,240"]).contains("fy"));
    assert!(run(&["pose", "--matches", &ok, "--k0", "500,500,320"]).contains("fx,fy,cx,cy"));
    let batch = write(
        "bad.jsonl",
        "{\"id\": 1, \"k0\": [500, 500, 320, 240], \"matches\": [[1, 2, 3]]}\n",
    );
    let err = run(&["pose", "--batch", &batch]);
    assert!(
        err.contains("bad.jsonl:1") && err.contains("matches[0]"),
        "{err}"
    );
}
