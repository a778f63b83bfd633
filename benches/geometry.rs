//! Criterion benches of the geometry hot paths: the 5-point solver (alone and with pose
//! decomposition), P3P, MSAC scoring, and the whole estimators on the standard synthetic scene
//! (f = 500, 640×480, σ = 0.5 px). Run: `cargo bench --bench geometry`.
//!
//! Side-by-side comparisons with PoseLib and OpenCV live in `scripts/bench/bench_geometry.py`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use imd::geometry::essential::poses_from_essential;
use imd::geometry::estimators::relative_pose::NormalizedCorrespondences;
use imd::geometry::solvers::{essential_5pt, p3p};
use imd::geometry::synthetic::{generate, minimal_sample, SceneKind, SceneSpec};
use imd::geometry::{
    estimate_homography, estimate_relative_pose, HomographyOptions, PoseOptions, RelativePose, Rng,
};
use nalgebra::Vector3;

/// A minimal sample: five bearings in each camera.
type Sample = ([Vector3<f64>; 5], [Vector3<f64>; 5]);

/// Noise-free 5-point samples of random poses.
fn samples(count: usize) -> Vec<Sample> {
    let mut rng = Rng::new(1);
    (0..count)
        .map(|_| {
            let (_, x0, x1) =
                minimal_sample::<5>(&mut rng, [0.05, 0.4], [-2.0, 2.0], [-1.5, 1.5], [2.0, 8.0]);
            (x0, x1)
        })
        .collect()
}

fn solvers(c: &mut Criterion) {
    let data = samples(256);
    let mut i = 0;
    let mut out = Vec::with_capacity(10);
    c.bench_function("essential_5pt", |b| {
        b.iter(|| {
            let (x0, x1) = &data[i % data.len()];
            i += 1;
            out.clear();
            essential_5pt(black_box(x0), black_box(x1), &mut out);
            out.len()
        })
    });
    let mut poses = Vec::with_capacity(10);
    c.bench_function("relpose_5pt (solver + cheirality decomposition)", |b| {
        b.iter(|| {
            let (x0, x1) = &data[i % data.len()];
            i += 1;
            out.clear();
            poses.clear();
            essential_5pt(black_box(x0), black_box(x1), &mut out);
            for e in &out {
                poses_from_essential(e, x0, x1, &mut poses);
            }
            poses.len()
        })
    });
}

/// A P3P sample: bearings in camera 1 and the points in camera 0's frame.
type P3pSample = ([Vector3<f64>; 3], [Vector3<f64>; 3]);

/// Noise-free P3P samples: three keyframe points (camera-0 frame) and their bearings in camera 1.
fn p3p_samples(count: usize) -> Vec<P3pSample> {
    let mut rng = Rng::new(2);
    (0..count)
        .map(|_| {
            let (pose, x0, _) =
                minimal_sample::<3>(&mut rng, [0.05, 0.4], [-2.0, 2.0], [-1.5, 1.5], [2.0, 8.0]);
            let depth = [
                rng.uniform_in(2.0, 8.0),
                rng.uniform_in(2.0, 8.0),
                rng.uniform_in(2.0, 8.0),
            ];
            let points: [Vector3<f64>; 3] = std::array::from_fn(|k| x0[k] * depth[k]);
            (points.map(|p| pose.transform(&p)), points)
        })
        .collect()
}

fn p3p_solver(c: &mut Criterion) {
    let data = p3p_samples(256);
    let mut i = 0;
    let mut out = Vec::with_capacity(4);
    c.bench_function("p3p", |b| {
        b.iter(|| {
            let (bearings, points) = &data[i % data.len()];
            i += 1;
            out.clear();
            p3p(black_box(bearings), black_box(points), &mut out)
        })
    });
}

fn scene(n: usize, outliers: f64, kind: SceneKind) -> imd::geometry::synthetic::SyntheticPair {
    generate(
        &SceneSpec {
            kind,
            num_matches: n,
            outlier_ratio: outliers,
            ..SceneSpec::default()
        },
        &mut Rng::new(n as u64 + (outliers * 100.0) as u64),
    )
}

fn scoring(c: &mut Criterion) {
    let pair = scene(1000, 0.5, SceneKind::General);
    let data = NormalizedCorrespondences::new(pair.matches.iter().map(|m| {
        let a = pair.camera.normalize(&m.p0).unwrap();
        let b = pair.camera.normalize(&m.p1).unwrap();
        ([a.x, a.y], [b.x, b.y])
    }));
    let thr = 1.0 / 500.0;
    c.bench_function("msac_score N=1000 (exact pass, true pose)", |b| {
        b.iter(|| data.score(black_box(&pair.gt), thr * thr, f64::INFINITY))
    });
    // A wrong pose against the true pose's cost: the typical RANSAC rejection.
    let wrong = RelativePose::new(
        pair.gt.rotation,
        (pair.gt.translation + Vector3::new(0.3, 0.0, 0.0)).normalize(),
    );
    let best = data
        .score(&pair.gt, thr * thr, f64::INFINITY)
        .map_or(0.0, |s| s.cost);
    c.bench_function("msac_score N=1000 (rejecting a wrong pose)", |b| {
        b.iter(|| data.score(black_box(&wrong), thr * thr, best))
    });
}

/// One `estimate_relative_pose` benchmark of `pair` under `opts`.
fn bench_estimate(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: BenchmarkId,
    pair: &imd::geometry::synthetic::SyntheticPair,
    opts: &PoseOptions,
) {
    group.bench_with_input(id, pair, |b, p| {
        b.iter(|| {
            estimate_relative_pose(black_box(&p.matches), &p.camera, &p.camera, opts)
                .map(|e| e.num_inliers)
        })
    });
}

fn estimators(c: &mut Criterion) {
    let mut group = c.benchmark_group("estimate_relative_pose");
    group.sample_size(20);
    let defaults = PoseOptions::default();
    for (n, outliers) in [
        (200, 0.5),
        (1000, 0.0),
        (1000, 0.5),
        (1000, 0.75),
        (5000, 0.5),
    ] {
        let pair = scene(n, outliers, SceneKind::General);
        let id = BenchmarkId::new("general", format!("N{n}_out{}", (outliers * 100.0) as u32));
        bench_estimate(&mut group, id, &pair, &defaults);
    }
    for kind in [SceneKind::Planar, SceneKind::Rotation] {
        let pair = scene(1000, 0.25, kind);
        let id = BenchmarkId::new(format!("{kind:?}"), "N1000_out25");
        bench_estimate(&mut group, id, &pair, &defaults);
    }
    // The covariance's spatial block jackknife (16 refits) against none, same scenes: what
    // an honest covariance costs per frame.
    for kind in [SceneKind::General, SceneKind::Rotation] {
        let pair = scene(1000, 0.0, kind);
        for grid in [0, defaults.jackknife_grid] {
            let opts = PoseOptions {
                jackknife_grid: grid,
                ..defaults.clone()
            };
            let id = BenchmarkId::new(format!("{kind:?}_jackknife{grid}"), "N1000_out0");
            bench_estimate(&mut group, id, &pair, &opts);
        }
    }
    group.finish();
    let pair = scene(1000, 0.5, SceneKind::Planar);
    let opts = HomographyOptions {
        threshold_px: 2.0,
        ..HomographyOptions::default()
    };
    c.bench_function("estimate_homography N=1000 out50", |b| {
        b.iter(|| estimate_homography(black_box(&pair.matches), &opts).map(|e| e.num_inliers))
    });
}

criterion_group!(benches, solvers, p3p_solver, scoring, estimators);
criterion_main!(benches);
