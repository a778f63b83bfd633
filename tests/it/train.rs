//! Supervision and losses against hand-checked values (scenes built in the tests) and against
//! a point-by-point numpy reference (`tests/fixtures/supervision/`, written by
//! `scripts/fixtures/make_supervision_fixture.py`).

use imd::data::rng::SeededRng;
use imd::train::loss::{
    coarse_loss, fine_loss, imd_loss, subpixel_expectation, subpixel_l2, LossConfig, ModelOutputs,
};
use imd::train::supervision::{
    coarse_gt, fine_gt, max_candidates, pad_with_gt, warp_homography, CoarseGt, CoarseLayout,
    DepthWarp, FineGrid, FineGt, GtPaddingConfig, HomographyWarp, PredictedCoarseMatches,
    WarpSource,
};
use tch::{Device, Kind, Tensor};

const GRID: FineGrid = FineGrid::EFFICIENT_LOFTR;

fn t64(v: &[f64], shape: &[i64]) -> Tensor {
    Tensor::from_slice(v).view(shape)
}

fn ids(v: &[i64]) -> Tensor {
    Tensor::from_slice(v)
}

fn vec_i64(t: &Tensor) -> Vec<i64> {
    Vec::<i64>::try_from(t.to_device(Device::Cpu).reshape([-1])).unwrap()
}

fn vec_f64(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_device(Device::Cpu).to_kind(Kind::Double).reshape([-1])).unwrap()
}

/// A fronto-parallel plane at depth `z` seen by two cameras with focal `f` and principal point
/// `c`, camera 1 shifted by `tx` along x: every pixel moves by `f·tx/z` to the right.
/// Original images are `size × size`, the network sees them at `1/scale`.
fn plane_scene(size: i64, f: f64, z: f64, tx: f64, scale: f64) -> (WarpSource, CoarseLayout) {
    let c = size as f64 / 2.0;
    let k = t64(&[f, 0.0, c, 0.0, f, c, 0.0, 0.0, 1.0], &[1, 3, 3]);
    let t = t64(
        &[
            1.0, 0.0, 0.0, tx, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0,
        ],
        &[1, 4, 4],
    );
    let depth = Tensor::full([1, size, size], z, (Kind::Float, Device::Cpu));
    let warp = WarpSource::Depth(DepthWarp {
        depth0: depth.copy(),
        depth1: depth,
        k0: k.copy(),
        k1: k,
        t_0to1: t,
    });
    let n_c = (size as f64 / scale) as i64 / GRID.stride();
    let layout = CoarseLayout {
        hw0: (n_c, n_c),
        hw1: (n_c, n_c),
        scale0: t64(&[scale, scale], &[1, 2]),
        scale1: t64(&[scale, scale], &[1, 2]),
        mask0: None,
        mask1: None,
    };
    (warp, layout)
}

#[test]
fn coarse_gt_on_a_plane_with_scale() {
    // Original 128², network 64² (scale 2): an 8×8 coarse grid whose points are 16 px apart in
    // original pixels. f = 128, z = 10, tx = 1.5625 shifts by 128·1.5625/10 = 20 px = 1.25
    // cells. Cell x → x + 1.25 rounds to x + 1 (overlap weight 1 − 2·0.25 = 0.5 in x, 1 in
    // y); the way back x' − 1.25 rounds to x' − 1: mutual. Column 7 leaves the image and
    // cell 0 is never a match: the GT is i → i + 1 for x in 0..=6, all y, minus cell 0.
    let (warp, layout) = plane_scene(128, 128.0, 10.0, 1.5625, 2.0);
    let gt = coarse_gt(&warp, &layout, &GRID).unwrap();
    let mut expected = Vec::new();
    for y in 0..8 {
        for x in 0..7 {
            let i = y * 8 + x;
            if i != 0 {
                expected.push((0, i, i + 1));
            }
        }
    }
    let got: Vec<(i64, i64, i64)> = gt.to_vec().iter().map(|&(b, i, j, _)| (b, i, j)).collect();
    assert_eq!(got, expected);
    // Projection divides by z + 1e-4, which scales warped coordinates (≤ 128 px) by
    // 1 − 1e-5: ≤ 1.3e-3 px = 8e-5 cells per axis, so the weight 0.5 holds to
    // 2·8e-5 + 0.5·2·8e-5 = 2.4e-4.
    for (_, _, _, w) in gt.to_vec() {
        assert!((w - 0.5).abs() < 2.5e-4, "overlap weight {w}");
    }
    assert_eq!(gt.dense().sum(Kind::Float).double_value(&[]), 55.0);
}

#[test]
fn coarse_gt_ignores_validity_but_respects_padding() {
    // Same plane at scale 1 (64², f = 64, shift 64·1.5625/10 = 10 px = 1.25 cells).
    let (mut warp, mut layout) = plane_scene(64, 64.0, 10.0, 1.5625, 1.0);
    let full = coarse_gt(&warp, &layout, &GRID).unwrap();
    assert_eq!(full.len(), 55);
    // Wrong depth (5 instead of 10) in image 1's columns 1, 9, 17, …: exactly where image 0's
    // grid points (x = 8k) land, (8k + 10)·10/(10 + 1e-4) = 8k + 9.99…, truncated to 8k + 9.
    // They fail the 0.2 relative-depth check, but coarse GT ignores validity (as EL), and
    // image 1's own grid points (columns 8k, depth still 10) warp back unchanged: the GT must
    // not change.
    if let WarpSource::Depth(d) = &mut warp {
        for col in (1..64).step_by(8) {
            let _ = d.depth1.narrow(2, col, 1).fill_(5.0);
        }
        let probe = t64(&[16.0, 24.0, 20.0, 24.0], &[1, 2, 2]);
        let w = warp_depth_of(d, &probe);
        assert_eq!(
            w,
            vec![false, true],
            "x0 = 16 lands on column 25 (wrong depth), 20 on 29"
        );
    }
    let occluded = coarse_gt(&warp, &layout, &GRID).unwrap();
    assert_eq!(occluded.to_vec(), full.to_vec());
    // Padding: column 6 of image 0 is padding; its grid points become (0, 0), which maps to
    // cell 1, whose loop-back is cell 0, not them: the 8 matches of column 6 disappear.
    let mask = Tensor::ones([1, 8, 8], (Kind::Bool, Device::Cpu));
    let _ = mask.narrow(2, 6, 2).fill_(0);
    layout.mask0 = Some(mask);
    let padded = coarse_gt(&warp, &layout, &GRID).unwrap();
    assert_eq!(padded.len(), 55 - 8);
    assert!(padded.to_vec().iter().all(|&(_, i, _, _)| i % 8 != 6));
}

fn warp_depth_of(d: &DepthWarp, pts: &Tensor) -> Vec<bool> {
    let w = imd::train::supervision::warp_depth(pts, &d.depth0, &d.depth1, &d.t_0to1, &d.k0, &d.k1);
    Vec::<bool>::try_from(w.valid.reshape([-1])).unwrap()
}

#[test]
fn depth_warp_matches_closed_form_with_rotation() {
    // Camera 1 rotated 10° about y and moved; a point at pixel (20, 30) with depth 7.
    // Closed form with nalgebra: X0 = K⁻¹(x, y, 1)·d, X1 = R·X0 + t, x1 = K·X1 / (z + 1e-4).
    let (f, cx, cy) = (50.0, 31.5, 23.5);
    let k = nalgebra::Matrix3::new(f, 0.0, cx, 0.0, f, cy, 0.0, 0.0, 1.0);
    let a = 10f64.to_radians();
    let r = nalgebra::Matrix3::new(a.cos(), 0.0, a.sin(), 0.0, 1.0, 0.0, -a.sin(), 0.0, a.cos());
    let t = nalgebra::Vector3::new(0.3, -0.1, 0.2);
    let x0 = k.try_inverse().unwrap() * nalgebra::Vector3::new(20.0, 30.0, 1.0) * 7.0;
    let x1 = r * x0 + t;
    let p = k * x1;
    let expected = (p.x / (p.z + 1e-4), p.y / (p.z + 1e-4));

    let kt = t64(k.transpose().as_slice(), &[1, 3, 3]);
    let mut tm = [0.0; 16];
    for row in 0..3 {
        for col in 0..3 {
            tm[row * 4 + col] = r[(row, col)];
        }
        tm[row * 4 + 3] = t[row];
    }
    tm[15] = 1.0;
    let depth0 = Tensor::full([1, 48, 64], 7.0, (Kind::Float, Device::Cpu));
    // Depth 1 holds the true depth at the truncated warped pixel → consistent.
    let depth1 = Tensor::full([1, 48, 64], x1.z, (Kind::Double, Device::Cpu));
    let w = imd::train::supervision::warp_depth(
        &t64(&[20.0, 30.0], &[1, 1, 2]),
        &depth0,
        &depth1,
        &t64(&tm, &[1, 4, 4]),
        &kt,
        &kt.copy(),
    );
    let got = vec_f64(&w.points);
    assert!((got[0] - expected.0).abs() < 1e-9 && (got[1] - expected.1).abs() < 1e-9);
    assert!(bool::try_from(w.valid.reshape([-1]).get(0)).unwrap());
    // Depth 0 of zero at the rounded pixel (20, 30) makes it invalid.
    let _ = depth0.get(0).get(30).get(20).fill_(0.0);
    let w = imd::train::supervision::warp_depth(
        &t64(&[20.2, 29.7], &[1, 1, 2]),
        &depth0,
        &depth1,
        &t64(&tm, &[1, 4, 4]),
        &kt,
        &kt.copy(),
    );
    assert!(!bool::try_from(w.valid.reshape([-1]).get(0)).unwrap());
}

#[test]
fn coarse_gt_from_a_homography() {
    // x1 = 0.5·x0 + 16, y1 = 0.5·y0 + 8 on 64² images (scale 1, 8×8 cells). Cell (x, y) maps
    // to (x/2 + 2, y/2 + 1) and image-1 cell (x', y') back to (2x' − 4, 2y' − 2). Odd x or y
    // lands on a half cell (a tie) and cannot loop back to an odd cell, so the GT is exactly
    // the even cells, minus cell 0, with overlap weight 1.
    let h = t64(&[0.5, 0.0, 16.0, 0.0, 0.5, 8.0, 0.0, 0.0, 1.0], &[1, 3, 3]);
    let warp = WarpSource::Homography(HomographyWarp {
        h_0to1: h,
        size0: t64(&[64.0, 64.0], &[1, 2]),
        size1: t64(&[64.0, 64.0], &[1, 2]),
    });
    let layout = CoarseLayout {
        hw0: (8, 8),
        hw1: (8, 8),
        scale0: t64(&[1.0, 1.0], &[1, 2]),
        scale1: t64(&[1.0, 1.0], &[1, 2]),
        mask0: None,
        mask1: None,
    };
    let gt = coarse_gt(&warp, &layout, &GRID).unwrap();
    let mut expected = Vec::new();
    for y in (0..8).step_by(2) {
        for x in (0..8).step_by(2) {
            if (x, y) != (0, 0) {
                expected.push((0, y * 8 + x, (y / 2 + 1) * 8 + x / 2 + 2, 1.0f32));
            }
        }
    }
    assert_eq!(gt.to_vec(), expected);
}

#[test]
fn homography_warp_with_perspective_matches_closed_form() {
    // H with perspective; (10, 20) → H·(10, 20, 1) = (12.4, 21.6, 1.14)/1.14, inside 64².
    let hv = [1.0, 0.02, 2.0, 0.01, 1.0, 1.5, 0.002, 0.004, 1.0];
    let w = warp_homography(
        &t64(&[10.0, 20.0, 200.0, 20.0], &[1, 2, 2]),
        &t64(&hv, &[1, 3, 3]),
        &t64(&[64.0, 64.0], &[1, 2]),
    );
    let p = vec_f64(&w.points);
    let (u, v, s) = (10.0 + 0.4 + 2.0, 0.1 + 20.0 + 1.5, 0.02 + 0.08 + 1.0);
    assert!((p[0] - u / s).abs() < 1e-12 && (p[1] - v / s).abs() < 1e-12);
    let valid = Vec::<bool>::try_from(w.valid.reshape([-1])).unwrap();
    assert_eq!(
        valid,
        vec![true, false],
        "(200, 20) lands outside the 64² image"
    );
}

#[test]
fn fine_gt_on_a_plane_sub_pixel() {
    // Scale 1, f = 64, z = 10, tx = 1.609375: shift 64·1.609375/10 = 10.3 px.
    // Coarse match i = (2, 3) → j = (3, 3) (2 + 10.3/8 = 3.29). Window pixel (k_x, k_y) of i
    // sits at (16 + k_x − 3.5, 24 + k_y − 3.5), lands at x + 10.3, so in j's window
    // δ = (x + 10.3 − 24) + 3.5 = k_x + 2.3, δ_y = k_y: index (k_x + 2, k_y) for k_x ≤ 5,
    // sub-pixel target (0.3, 0), weight (1 − 0.6)·1 = 0.4.
    let (warp, layout) = plane_scene(64, 64.0, 10.0, 1.609375, 1.0);
    let gt = fine_gt(
        &warp,
        &layout,
        &GRID,
        &ids(&[0]),
        &ids(&[3 * 8 + 2]),
        &ids(&[3 * 8 + 3]),
    )
    .unwrap();
    let mut expected_i = Vec::new();
    let mut expected_j = Vec::new();
    for ky in 0..8 {
        for kx in 0..6 {
            expected_i.push(ky * 8 + kx);
            expected_j.push(ky * 8 + kx + 2);
        }
    }
    assert_eq!(vec_i64(&gt.m_ids), vec![0; 48]);
    assert_eq!(vec_i64(&gt.i_ids), expected_i);
    assert_eq!(vec_i64(&gt.j_ids), expected_j);
    // The z + 1e-4 projection scales coordinates (≤ 64 px) by 1 − 1e-5: ≤ 6.4e-4 px.
    let sub = vec_f64(&gt.subpixel);
    for pair in sub.chunks(2) {
        assert!(
            (pair[0] - 0.3).abs() < 1e-3 && pair[1].abs() < 1e-3,
            "{pair:?}"
        );
    }
    for w in vec_f64(&gt.overlap_weight) {
        assert!((w - 0.4).abs() < 2e-3, "weight {w}");
    }
    assert_eq!(gt.dense().sum(Kind::Int64).int64_value(&[]), 48);
}

#[test]
fn fine_gt_respects_validity_and_homographies() {
    // Homography = translation (5.25, −2.4). Match i = (3, 3) → j = (4, 3).
    // δ_x = (24 + k_x − 3.5 + 5.25 − 32) + 3.5 = k_x − 2.75 → index k_x − 3 (k_x ≥ 3),
    // δ_y = k_y − 2.4 → index k_y − 2 (k_y ≥ 2); target (0.25, −0.4), weight 0.5·0.2 = 0.1.
    let warp = WarpSource::Homography(HomographyWarp {
        h_0to1: t64(&[1.0, 0.0, 5.25, 0.0, 1.0, -2.4, 0.0, 0.0, 1.0], &[1, 3, 3]),
        size0: t64(&[64.0, 64.0], &[1, 2]),
        size1: t64(&[64.0, 64.0], &[1, 2]),
    });
    let layout = CoarseLayout {
        hw0: (8, 8),
        hw1: (8, 8),
        scale0: t64(&[1.0, 1.0], &[1, 2]),
        scale1: t64(&[1.0, 1.0], &[1, 2]),
        mask0: None,
        mask1: None,
    };
    let gt = fine_gt(&warp, &layout, &GRID, &ids(&[0]), &ids(&[27]), &ids(&[28])).unwrap();
    let mut ei = Vec::new();
    let mut ej = Vec::new();
    for ky in 2..8 {
        for kx in 3..8 {
            ei.push(ky * 8 + kx);
            ej.push((ky - 2) * 8 + kx - 3);
        }
    }
    assert_eq!(vec_i64(&gt.i_ids), ei);
    assert_eq!(vec_i64(&gt.j_ids), ej);
    for pair in vec_f64(&gt.subpixel).chunks(2) {
        assert!((pair[0] - 0.25).abs() < 1e-6 && (pair[1] + 0.4).abs() < 1e-6);
    }
    for w in vec_f64(&gt.overlap_weight) {
        assert!((w - 0.1).abs() < 1e-6);
    }

    // Depth validity: with an occluder over image 1's columns < 32 the window pixels of the
    // plane scene's match i = (2, 3) land at x + 10 ∈ [22.5, 29.5] (occluded) → no fine GT,
    // while i = (4, 3) → j = (5, 3) lands at [38.5, 45.5] (visible) → 6·8 pixels.
    let (mut warp, layout) = plane_scene(64, 64.0, 10.0, 1.5625, 1.0);
    if let WarpSource::Depth(d) = &mut warp {
        let _ = d.depth1.narrow(2, 0, 32).fill_(5.0);
    }
    let gt = fine_gt(
        &warp,
        &layout,
        &GRID,
        &ids(&[0, 0]),
        &ids(&[26, 28]),
        &ids(&[27, 29]),
    )
    .unwrap();
    let m = vec_i64(&gt.m_ids);
    assert!(
        m.iter().all(|&m| m == 1),
        "only the visible match has fine GT"
    );
    // δ_x = k_x − 3.5 + 32 + 10 − 40 + 3.5 = k_x + 2 → k_x ≤ 5 valid: 6·8 = 48.
    assert_eq!(m.len(), 48);
}

fn ln(x: f64) -> f64 {
    x.ln()
}

fn tiny_coarse_gt() -> CoarseGt {
    CoarseGt {
        b_ids: ids(&[0, 0]),
        i_ids: ids(&[0, 1]),
        j_ids: ids(&[1, 0]),
        overlap_weight: Tensor::from_slice(&[0.5f32, 1.0]),
        batch: 1,
        cells: (2, 2),
    }
}

#[test]
fn coarse_focal_loss_by_hand() {
    // Positives p = 0.5 (weight 0.5) and p = 0.9 (weight 1); focal −α(1−p)^γ·ln p, α = 0.25,
    // γ = 2, averaged over the 2 positives.
    let conf = Tensor::from_slice(&[0.1f32, 0.5, 0.9, 0.2])
        .view([1, 2, 2])
        .set_requires_grad(true);
    let cfg = LossConfig::default();
    let gt = tiny_coarse_gt();
    let loss = coarse_loss(&conf, &gt, None, &cfg).unwrap();
    let a = 0.25 * 0.25 * -ln(0.5) * 0.5;
    let b = 0.25 * 0.01 * -ln(0.9) * 1.0;
    assert!((loss.double_value(&[]) - (a + b) / 2.0).abs() < 1e-7);
    // d/dp = α(γ(1−p)^{γ−1} ln p − (1−p)^γ / p); at p = 0.5: 0.25(−ln 2 − 0.5), times 0.5/2.
    loss.backward();
    let g = conf.grad();
    let expected = 0.25 * (2.0 * 0.5 * ln(0.5) - 0.25 / 0.5) * 0.5 / 2.0;
    assert!((g.double_value(&[0, 0, 1]) - expected).abs() < 1e-6);
    assert_eq!(g.double_value(&[0, 0, 0]), 0.0, "negatives get no gradient");

    // Padding mask: image-1 cell 0 padded → the p = 0.9 term (j = 0) is weighted 0 but still
    // counted in the mean (EL's `loss_pos.mean()`).
    let m0 = Tensor::from_slice(&[true, true]).view([1, 1, 2]);
    let m1 = Tensor::from_slice(&[false, true]).view([1, 1, 2]);
    let masked = coarse_loss(&conf, &gt, Some((&m0, &m1)), &cfg).unwrap();
    assert!((masked.double_value(&[]) - a / 2.0).abs() < 1e-7);
    // Without overlap weights.
    let cfg_no = LossConfig {
        coarse_overlap_weight: false,
        ..LossConfig::default()
    };
    let plain = coarse_loss(&conf, &gt, None, &cfg_no).unwrap();
    assert!((plain.double_value(&[]) - (2.0 * a + b) / 2.0).abs() < 1e-7);
}

fn tiny_fine_gt() -> FineGt {
    // Two matches, W = 8: positives (m, i, j) = (0, 9, 10) with target (0.3, −0.2), weight 0.4
    // and (1, 0, 63) with target (1.2, 0) (excluded from L2: ‖gt‖∞ ≥ 1), weight 1.
    FineGt {
        m_ids: ids(&[0, 1]),
        i_ids: ids(&[9, 0]),
        j_ids: ids(&[10, 63]),
        overlap_weight: Tensor::from_slice(&[0.4f32, 1.0]),
        subpixel: Tensor::from_slice(&[0.3f32, -0.2, 1.2, 0.0]).view([2, 2]),
        num_matches: 2,
        window_area: 64,
    }
}

#[test]
fn fine_and_subpixel_losses_by_hand() {
    let gt = tiny_fine_gt();
    let cfg = LossConfig::default();
    let conf = Tensor::full([2, 64, 64], 0.01, (Kind::Float, Device::Cpu));
    let _ = conf.get(0).get(9).get(10).fill_(0.6);
    let _ = conf.get(1).get(0).get(63).fill_(0.2);
    let lf = fine_loss(&conf, &gt, &cfg).unwrap();
    let expected = (0.25 * 0.16 * -ln(0.6) * 0.4 + 0.25 * 0.64 * -ln(0.2) * 1.0) / 2.0;
    assert!((lf.double_value(&[]) - expected).abs() < 1e-7);

    // Stage 2: scores zero except the right neighbour of the GT pixel j = 10 (inner row 1,
    // col 2 → padded (2, 3); right neighbour padded (2, 4) = flat 24) set to 10·ln 2: with
    // T = 10 its softmax weight is 2/10, the other 8 cells 1/10. Expectation
    // x = 0.1·(−3) + 0.1·2 + 0.2 = 0.1, y = 0. L2 against (0.3, −0.2) = 0.04 + 0.04.
    let scores = Tensor::zeros([2, 64, 100], (Kind::Float, Device::Cpu));
    let _ = scores.get(0).get(9).get(24).fill_(10.0 * ln(2.0));
    let pred = subpixel_expectation(&scores, &gt, &GRID, 10.0).unwrap();
    let p = vec_f64(&pred);
    assert!((p[0] - 0.1).abs() < 1e-6 && p[1].abs() < 1e-6, "{p:?}");
    let ls = subpixel_l2(&pred, &gt.subpixel, cfg.fine_correct_thr).unwrap();
    assert!((ls.double_value(&[]) - 0.08).abs() < 1e-6);

    // Total with the default weights 1 / 1 / 0.25.
    let cconf = Tensor::from_slice(&[0.1f32, 0.5, 0.9, 0.2]).view([1, 2, 2]);
    let cgt = tiny_coarse_gt();
    let out = ModelOutputs {
        coarse_conf: &cconf,
        masks: None,
        fine_conf: &conf,
        subpixel_scores: &scores,
        subpixel_temperature: 10.0,
    };
    let terms = imd_loss(&out, &cgt, &gt, &GRID, &cfg).unwrap();
    let lc = (0.25 * 0.25 * -ln(0.5) * 0.5 + 0.25 * 0.01 * -ln(0.9)) / 2.0;
    let total = lc + expected + 0.25 * 0.08;
    assert!((terms.total.double_value(&[]) - total).abs() < 1e-6);
    // Configurable weights.
    let cfg2 = LossConfig {
        coarse_weight: 2.0,
        fine_weight: 0.0,
        subpixel_weight: 1.0,
        ..LossConfig::default()
    };
    let terms2 = imd_loss(&out, &cgt, &gt, &GRID, &cfg2).unwrap();
    assert!((terms2.total.double_value(&[]) - (2.0 * lc + 0.08)).abs() < 1e-6);
    let bad = LossConfig {
        focal_alpha: -1.0,
        ..LossConfig::default()
    };
    assert!(imd_loss(&out, &cgt, &gt, &GRID, &bad)
        .unwrap_err()
        .to_string()
        .contains("loss.focal_alpha"));
}

#[test]
fn empty_ground_truth_gives_a_zero_loss_in_the_graph() {
    let conf = Tensor::full([1, 2, 2], 0.5, (Kind::Float, Device::Cpu)).set_requires_grad(true);
    let gt = CoarseGt {
        b_ids: ids(&[]),
        i_ids: ids(&[]),
        j_ids: ids(&[]),
        overlap_weight: Tensor::zeros([0], (Kind::Float, Device::Cpu)),
        batch: 1,
        cells: (2, 2),
    };
    let loss = coarse_loss(&conf, &gt, None, &LossConfig::default()).unwrap();
    assert_eq!(loss.double_value(&[]), 0.0);
    loss.backward();
    assert_eq!(conf.grad().abs().sum(Kind::Float).double_value(&[]), 0.0);
    // A wrongly shaped confidence is an error naming the tensor.
    let err = coarse_loss(
        &Tensor::zeros([1, 3, 2], (Kind::Float, Device::Cpu)),
        &gt,
        None,
        &LossConfig::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("coarse confidence"), "{err}");
}

#[test]
fn gt_padding_follows_efficient_loftr() {
    // Masks: image 0 valid 20×30 cells of a 32×32 grid (600), image 1 25×25 (625):
    // max_candidates = min(600, 625) = 600; N_train = int(600·0.3) = 180; with
    // min_gt_pad 50: 130 predictions kept at most, max(180 − P, 50) GT pads.
    let mask = |h: i64, w: i64| {
        let m = Tensor::zeros([1, 32, 32], (Kind::Bool, Device::Cpu));
        let _ = m.narrow(1, 0, h).narrow(2, 0, w).fill_(1);
        m
    };
    let (m0, m1) = (mask(20, 30), mask(25, 25));
    let mc = max_candidates(1, (1024, 1024), Some(&m0), Some(&m1)).unwrap();
    assert_eq!(mc, 600);
    assert_eq!(max_candidates(2, (100, 120), None, None).unwrap(), 240);

    let gt = CoarseGt {
        b_ids: ids(&[0, 0, 0]),
        i_ids: ids(&[5, 6, 7]),
        j_ids: ids(&[15, 16, 17]),
        overlap_weight: Tensor::from_slice(&[1.0f32, 1.0, 1.0]),
        batch: 1,
        cells: (1024, 1024),
    };
    let cfg = GtPaddingConfig {
        coarse_percent: 0.3,
        min_gt_pad: 50,
    };
    let preds = |p: i64| PredictedCoarseMatches {
        b_ids: Tensor::zeros([p], (Kind::Int64, Device::Cpu)),
        i_ids: Tensor::arange(p, (Kind::Int64, Device::Cpu)) + 100,
        j_ids: Tensor::arange(p, (Kind::Int64, Device::Cpu)) + 300,
        mconf: Tensor::full([p], 0.7, (Kind::Float, Device::Cpu)),
    };
    // Few predictions (20 ≤ 130): all kept, 160 GT pads.
    let few = pad_with_gt(&preds(20), &gt, mc, &cfg, &mut SeededRng::new(1)).unwrap();
    assert_eq!(few.num_predicted, 20);
    assert_eq!(few.b_ids.size()[0], 180);
    assert_eq!(
        vec_i64(&few.i_ids)[..20],
        (100..120).collect::<Vec<_>>()[..]
    );
    let pad = vec_i64(&few.is_gt_pad.to_kind(Kind::Int64));
    assert_eq!(pad.iter().sum::<i64>(), 160);
    let conf = vec_f64(&few.mconf);
    assert!(conf[..20].iter().all(|&c| (c - 0.7).abs() < 1e-6));
    assert!(conf[20..].iter().all(|&c| c == 0.0));
    // Every pad is one of the GT matches (i, j) = (5..=7, i + 10).
    let (i, j) = (vec_i64(&few.i_ids), vec_i64(&few.j_ids));
    for k in 20..180 {
        assert!((5..=7).contains(&i[k]) && j[k] == i[k] + 10);
    }
    // Many predictions (400 > 130): 130 drawn, then max(180 − 400, 50) = 50 pads.
    let many = pad_with_gt(&preds(400), &gt, mc, &cfg, &mut SeededRng::new(1)).unwrap();
    assert_eq!((many.num_predicted, many.b_ids.size()[0]), (130, 180));
    // Seeded: the same seed gives the same draw, another seed another.
    let again = pad_with_gt(&preds(400), &gt, mc, &cfg, &mut SeededRng::new(1)).unwrap();
    let other = pad_with_gt(&preds(400), &gt, mc, &cfg, &mut SeededRng::new(2)).unwrap();
    assert_eq!(vec_i64(&many.i_ids), vec_i64(&again.i_ids));
    assert_ne!(vec_i64(&many.i_ids), vec_i64(&other.i_ids));
    // N_train must exceed min_gt_pad (EL asserts it).
    let err = pad_with_gt(&preds(5), &gt, 100, &cfg, &mut SeededRng::new(1))
        .unwrap_err()
        .to_string();
    assert!(err.contains("min_gt_pad"), "{err}");
}

#[test]
fn supervision_matches_between_cpu_and_cuda_when_available() {
    if !tch::Cuda::is_available() {
        return; // exercised on GPU machines; the CPU path is covered above
    }
    let (warp, layout) = plane_scene(128, 128.0, 10.0, 1.5625, 2.0);
    let cpu = coarse_gt(&warp, &layout, &GRID).unwrap();
    let dev = Device::Cuda(0);
    let to = |t: &Tensor| t.to_device(dev);
    let warp_gpu = match &warp {
        WarpSource::Depth(d) => WarpSource::Depth(DepthWarp {
            depth0: to(&d.depth0),
            depth1: to(&d.depth1),
            k0: to(&d.k0),
            k1: to(&d.k1),
            t_0to1: to(&d.t_0to1),
        }),
        WarpSource::Homography(_) => unreachable!(),
    };
    let layout_gpu = CoarseLayout {
        scale0: to(&layout.scale0),
        scale1: to(&layout.scale1),
        ..layout
    };
    let gpu = coarse_gt(&warp_gpu, &layout_gpu, &GRID).unwrap();
    assert_eq!(cpu.to_vec(), gpu.to_vec());
}

/// Parity with `scripts/fixtures/make_supervision_fixture.py`: a point-by-point float64 numpy
/// implementation of the notes' rules on a slanted plane seen by two different cameras
/// (rotation, translation, per-axis scales, padding, a depth hole and an occluder).
#[test]
fn supervision_matches_the_pointwise_reference() {
    let path = crate::util::fixture("supervision/plane_pair.safetensors");
    let tensors: std::collections::HashMap<String, Tensor> = Tensor::read_safetensors(&path)
        .unwrap()
        .into_iter()
        .collect();
    let t = |k: &str| tensors[k].shallow_clone();
    let warp = WarpSource::Depth(DepthWarp {
        depth0: t("depth0"),
        depth1: t("depth1"),
        k0: t("K0"),
        k1: t("K1"),
        t_0to1: t("T_0to1"),
    });
    let mask = t("mask").to_kind(Kind::Bool);
    let layout = CoarseLayout {
        hw0: (8, 8),
        hw1: (8, 8),
        scale0: t("scale0"),
        scale1: t("scale1"),
        mask0: Some(mask.copy()),
        mask1: Some(mask),
    };
    let gt = coarse_gt(&warp, &layout, &GRID).unwrap();
    let ids = t("coarse_ids");
    assert_eq!(gt.len(), ids.size()[0]);
    assert_eq!(vec_i64(&gt.i_ids), vec_i64(&ids.select(1, 1)));
    assert_eq!(vec_i64(&gt.j_ids), vec_i64(&ids.select(1, 2)));
    // Weights are f32 on our side: 1e-6.
    for (a, b) in vec_f64(&gt.overlap_weight)
        .iter()
        .zip(vec_f64(&t("coarse_weight")))
    {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }

    let (mi, mj) = (t("match_i"), t("match_j"));
    let b = Tensor::zeros([mi.size()[0]], (Kind::Int64, Device::Cpu));
    let fine = fine_gt(&warp, &layout, &GRID, &b, &mi, &mj).unwrap();
    let fids = t("fine_ids");
    assert_eq!(fine.len(), fids.size()[0]);
    assert_eq!(vec_i64(&fine.m_ids), vec_i64(&fids.select(1, 0)));
    assert_eq!(vec_i64(&fine.i_ids), vec_i64(&fids.select(1, 1)));
    assert_eq!(vec_i64(&fine.j_ids), vec_i64(&fids.select(1, 2)));
    for (a, b) in vec_f64(&fine.overlap_weight)
        .iter()
        .zip(vec_f64(&t("fine_weight")))
    {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
    for (a, b) in vec_f64(&fine.subpixel)
        .iter()
        .zip(vec_f64(&t("fine_subpixel")))
    {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
}

// --- Supervision ⇄ inference convention ------------------------------------------------------

/// Logit slope `a` with `E[d] = 2·sinh(a) / (1 + 2·cosh(a)) = target` for d ∈ {−1, 0, 1} under
/// `softmax(a·d)`: the expectation is odd and increasing in `a`, so bisection finds it.
fn slope_for_expectation(target: f64) -> f64 {
    let e = |a: f64| 2.0 * a.sinh() / (1.0 + 2.0 * a.cosh());
    let (mut lo, mut hi) = (-40.0, 40.0);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if e(mid) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

#[test]
fn ground_truth_is_what_a_perfect_matcher_outputs() {
    // A homography with rotation, scale, perspective and a sub-pixel translation on 96×64
    // images. Coarse and fine GT are generated by the supervision code; a "perfect matcher"
    // puts all stage-1 mass on the GT fine pixel and makes the stage-2 expectation equal the
    // GT sub-pixel target. The inference code (`refine_stage1`: argmax, expectation, window
    // coordinates) must then output points with `H·p0 = p1` exactly (to float32 round-off).
    use imd::model::fine::refine::{refine_stage1, FineStage1, WindowCells};
    let (c, s) = (
        3f64.to_radians().cos() * 1.04,
        3f64.to_radians().sin() * 1.04,
    );
    let hv = [c, -s, 5.3, s, c, -3.7, 2e-4, -1e-4, 1.0];
    let warp = WarpSource::Homography(HomographyWarp {
        h_0to1: t64(&hv, &[1, 3, 3]),
        size0: t64(&[96.0, 64.0], &[1, 2]),
        size1: t64(&[96.0, 64.0], &[1, 2]),
    });
    let layout = CoarseLayout {
        hw0: (8, 12),
        hw1: (8, 12),
        scale0: t64(&[1.0, 1.0], &[1, 2]),
        scale1: t64(&[1.0, 1.0], &[1, 2]),
        mask0: None,
        mask1: None,
    };
    let cgt = coarse_gt(&warp, &layout, &GRID).unwrap();
    assert!(cgt.len() > 40, "{} coarse GT matches", cgt.len());
    let fgt = fine_gt(&warp, &layout, &GRID, &cgt.b_ids, &cgt.i_ids, &cgt.j_ids).unwrap();
    // One GT fine pixel per coarse match (the first listed), as inference takes one argmax.
    let m_ids = vec_i64(&fgt.m_ids);
    let (k_ids, j_ids) = (vec_i64(&fgt.i_ids), vec_i64(&fgt.j_ids));
    let target = vec_f64(&fgt.subpixel);
    let m = cgt.len();
    let mut first = vec![None; m as usize];
    for (row, &mi) in m_ids.iter().enumerate() {
        first[mi as usize].get_or_insert(row);
    }
    let temperature = 10.0;
    let conf = Tensor::zeros([m, 64, 64], (Kind::Float, Device::Cpu));
    let sim = Tensor::zeros([m, 64, 100], (Kind::Float, Device::Cpu));
    let nb = GRID.stage2_neighbourhood(&Tensor::from_slice(&j_ids));
    let nb = vec_i64(&nb);
    let offsets = vec_f64(&GRID.stage2_offsets(Device::Cpu));
    let mut keep = Vec::new();
    for (mi, row) in first.iter().enumerate() {
        let Some(row) = *row else { continue };
        keep.push((mi, row));
        let (k, j) = (k_ids[row], j_ids[row]);
        let _ = conf.get(mi as i64).get(k).get(j).fill_(1.0);
        let (ax, ay) = (
            slope_for_expectation(target[2 * row]),
            slope_for_expectation(target[2 * row + 1]),
        );
        for q in 0..9 {
            let logit = temperature * (ax * offsets[2 * q] + ay * offsets[2 * q + 1]);
            let _ = sim.get(mi as i64).get(k).get(nb[9 * row + q]).fill_(logit);
        }
    }
    assert!(
        keep.len() as i64 > m / 2,
        "fine GT for {}/{m} matches",
        keep.len()
    );
    let sel = Tensor::from_slice(&keep.iter().map(|k| k.0 as i64).collect::<Vec<_>>());
    let w0 = 12;
    let (i_ids, jc_ids) = (
        cgt.i_ids.index_select(0, &sel),
        cgt.j_ids.index_select(0, &sel),
    );
    let cells = WindowCells {
        b: cgt.b_ids.index_select(0, &sel),
        x0: i_ids.remainder(w0),
        y0: i_ids.floor_divide_scalar(w0),
        x1: jc_ids.remainder(w0),
        y1: jc_ids.floor_divide_scalar(w0),
    };
    let out = refine_stage1(
        &FineStage1 {
            conf: conf.index_select(0, &sel),
            subpixel_sim: sim.index_select(0, &sel),
        },
        &cells,
        temperature,
    );
    let (p0, p1) = (vec_f64(&out.points0), vec_f64(&out.points1));
    for q in 0..keep.len() {
        let (x, y) = (p0[2 * q], p0[2 * q + 1]);
        let w = hv[6] * x + hv[7] * y + hv[8];
        let (u, v) = (
            (hv[0] * x + hv[1] * y + hv[2]) / w,
            (hv[3] * x + hv[4] * y + hv[5]) / w,
        );
        // float32 points of magnitude ≤ 100: round-off ≈ 1e-5 px; the solved slopes are
        // exact to ~1e-12.
        let err = (u - p1[2 * q]).hypot(v - p1[2 * q + 1]);
        assert!(
            err < 1e-3,
            "match {q}: H·p0 = ({u}, {v}) but p1 = ({}, {})",
            p1[2 * q],
            p1[2 * q + 1]
        );
    }
}

// --- Trainer ---------------------------------------------------------------------------------

mod trainer {
    //! The trainer on the random-weight model (`tests/fixtures/matching/random_model`,
    //! `scripts/fixtures/make_random_model.py`) with synthetic pairs of
    //! `tests/fixtures/datasets/photos`.

    use std::path::Path;

    use imd::train::config::TrainConfig;
    use imd::train::trainer::{StepReport, Trainer, LAST_CHECKPOINT};
    use tch::Kind;

    use crate::util;

    fn config(out: &Path, steps: u64) -> TrainConfig {
        let yaml = format!(
            r#"
seed: 7
backbone_dir: {backbone}
output_dir: {out}
description: trainer test
demo: true
model:
  cipm: {{ clip_tokens: 17, dim: 16, prompt_length: 8, mlp_hidden: 32 }}
  coarse: {{ d_model: 16, nhead: 4 }}
  fine: {{ dims: [16, 24] }}
train: {{ steps: {steps}, batch_size: 2, coarse_threshold: 0.1, border: 1 }}
optimizer: {{ lr: 3.0e-3 }}
schedule: {{ warmup_steps: 5, milestones: [40], gamma: 0.5 }}
gt_padding: {{ min_gt_pad: 20 }}
data:
  synthetic: {{ images_dir: {photos}, width: 96, height: 64, pairs: 8, seed: 3 }}
checkpoint: {{ every: 0 }}
"#,
            backbone = util::fixture("matching/random_model").display(),
            photos = util::fixture("datasets/photos").display(),
            out = out.display(),
        );
        TrainConfig::from_yaml_str(&yaml).unwrap()
    }

    /// `config` with extra YAML lines appended to sections (`model.coarse`, `loss`,
    /// `data.synthetic`) through a reparse.
    fn config_with(out: &Path, steps: u64, coarse: &str, loss: &str, synth: &str) -> TrainConfig {
        let mut c = config(out, steps);
        if !coarse.is_empty() {
            let extra: imd::model::imd_config::CoarseConfig =
                serde_yaml::from_str(&format!("{{ d_model: 16, nhead: 4, {coarse} }}")).unwrap();
            c.model.coarse = extra;
        }
        if !loss.is_empty() {
            c.loss = serde_yaml::from_str(&format!("{{ {loss} }}")).unwrap();
        }
        if !synth.is_empty() {
            let mut v = serde_yaml::to_value(&c.data.synthetic).unwrap();
            let add: serde_yaml::Value = serde_yaml::from_str(&format!("{{ {synth} }}")).unwrap();
            for (k, val) in add.as_mapping().unwrap() {
                v.as_mapping_mut().unwrap().insert(k.clone(), val.clone());
            }
            c.data.synthetic = serde_yaml::from_value(v).unwrap();
        }
        c
    }

    #[test]
    fn aggregated_attention_lowers_the_loss_too() {
        // As `fifty_steps_lower_the_loss`, with Efficient LoFTR's aggregated attention (agg 2:
        // the 12×8-cell grid pools to 6×4 keys).
        let dir = tempfile::tempdir().unwrap();
        let cfg = config_with(dir.path(), 50, "attention: aggregated, agg_size: 2", "", "");
        let mut t = Trainer::new(&cfg).unwrap();
        let r = run(&mut t, 50);
        let mean = |s: &[StepReport]| s.iter().map(|r| r.loss).sum::<f64>() / s.len() as f64;
        let (first, last) = (mean(&r[..10]), mean(&r[40..]));
        assert!(r.iter().all(|r| r.loss.is_finite()));
        assert!(last < 0.7 * first, "loss {first:.4} → {last:.4}");
        assert!(t
            .params()
            .iter()
            .any(|p| p.name.ends_with("layers.0.aggregate.weight")));
    }

    #[test]
    fn negative_pairs_have_no_ground_truth_and_a_finite_negative_loss() {
        // Every pair a negative (image 1 from another photo): no coarse or fine ground truth,
        // the EL terms are exact zeros and the loss is the negative term alone.
        let dir = tempfile::tempdir().unwrap();
        let cfg = config_with(
            dir.path(),
            3,
            "attention: aggregated",
            "negative_weight: 2.0",
            "negative_fraction: 1.0, max_rotation_deg: 180, jitter: { blur_sigma: 1.0, jpeg_probability: 0.5 }",
        );
        let mut t = Trainer::new(&cfg).unwrap();
        for r in run(&mut t, 3) {
            assert_eq!((r.coarse_gt, r.fine_gt), (0, 0), "{r:?}");
            assert_eq!((r.coarse, r.fine, r.subpixel), (0.0, 0.0, 0.0), "{r:?}");
            assert!(r.negative.is_finite() && r.negative > 0.0, "{r:?}");
            assert!((r.loss - 2.0 * r.negative).abs() <= 1e-6 * r.loss, "{r:?}");
        }
    }

    fn run(trainer: &mut Trainer, steps: u64) -> Vec<StepReport> {
        (0..steps).map(|_| trainer.train_step().unwrap()).collect()
    }

    #[test]
    fn fifty_steps_lower_the_loss() {
        // 8 fixed pairs, batch 2: 50 steps are 12 epochs, enough for the tiny heads to fit
        // them. Step-to-step noise (different pairs per step) is ±20 %; the first ten steps
        // average ~1.4 and a working trainer brings the last ten well below 70 % of that.
        let dir = tempfile::tempdir().unwrap();
        let mut t = Trainer::new(&config(dir.path(), 50)).unwrap();
        let r = run(&mut t, 50);
        let mean = |s: &[StepReport]| s.iter().map(|r| r.loss).sum::<f64>() / s.len() as f64;
        let (first, last) = (mean(&r[..10]), mean(&r[40..]));
        assert!(r.iter().all(|r| r.loss.is_finite()));
        assert!(last < 0.7 * first, "loss {first:.4} → {last:.4}");
        // The schedule ran: warm-up from 0.1·lr, then the milestone halved it.
        assert!((r[0].lr - 3e-4).abs() < 1e-12 && (r[49].lr - 1.5e-3).abs() < 1e-12);
    }

    #[test]
    fn resumed_run_continues_bit_identically() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), 8);
        let mut straight = Trainer::new(&cfg).unwrap();
        let a = run(&mut straight, 8);

        let mut first = Trainer::new(&cfg).unwrap();
        let mut b = run(&mut first, 4);
        let ckpt = dir.path().join("mid.safetensors");
        first.save_checkpoint(&ckpt).unwrap();
        drop(first);
        let mut resumed = Trainer::resume(&cfg, &ckpt).unwrap();
        assert_eq!(resumed.step(), 4);
        b.extend(run(&mut resumed, 4));

        for (x, y) in a.iter().zip(&b) {
            assert_eq!(
                (
                    x.step,
                    x.loss.to_bits(),
                    x.coarse.to_bits(),
                    x.fine.to_bits()
                ),
                (
                    y.step,
                    y.loss.to_bits(),
                    y.coarse.to_bits(),
                    y.fine.to_bits()
                ),
                "step {}",
                x.step
            );
            assert_eq!(x.subpixel.to_bits(), y.subpixel.to_bits());
        }
        // Weights, batch-norm statistics and optimiser moments are bit-identical too.
        let ta = straight.checkpoint_tensors();
        let tb = resumed.checkpoint_tensors();
        assert_eq!(ta.len(), tb.len());
        for ((na, va), (nb, vb)) in ta.iter().zip(&tb) {
            assert_eq!(na, nb);
            assert!(va.equal(vb), "{na} differs after resuming");
        }
        // A checkpoint of another configuration is refused.
        let mut other = cfg.clone();
        other.optimizer.lr *= 2.0;
        let err = Trainer::resume(&other, &ckpt).unwrap_err().to_string();
        assert!(err.contains("different configuration"), "{err}");
    }

    #[test]
    fn frozen_backbone_passes_gradients_to_the_prompts() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = Trainer::new(&config(dir.path(), 1)).unwrap();
        assert!(t.params().iter().all(|p| p.name.starts_with("heads.")));
        let before: Vec<(String, tch::Tensor)> = t
            .backbone()
            .var_stores()
            .into_iter()
            .flat_map(|(part, vs)| {
                vs.variables()
                    .into_iter()
                    .map(move |(n, v)| (format!("{part}.{n}"), v.copy()))
            })
            .collect();
        t.train_step().unwrap();
        for (part, vs) in t.backbone().var_stores() {
            for (name, v) in vs.variables() {
                assert!(!v.requires_grad(), "{part}.{name} requires grad");
                assert!(!v.grad().defined(), "{part}.{name} got a gradient");
                let old = &before
                    .iter()
                    .find(|(n, _)| *n == format!("{part}.{name}"))
                    .unwrap()
                    .1;
                assert!(v.equal(old), "{part}.{name} changed");
            }
        }
        // The CIPM's only path to the loss is through the UNet's cross attention: a non-zero
        // gradient on its weights proves gradients flow through the frozen UNet.
        for name in ["heads.cipm.token_mix.weight", "heads.cipm.mlp.fc2.weight"] {
            let p = t.params().iter().find(|p| p.name == name).unwrap();
            let g = p.tensor.grad();
            assert!(g.defined(), "{name}: no gradient");
            let norm = g.abs().sum(Kind::Double).double_value(&[]);
            assert!(norm > 0.0, "{name}: zero gradient");
        }
    }

    #[test]
    fn demo_backbone_training_trains_and_exports_the_backbone() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(&dir.path().join("model"), 2);
        cfg.train.backbone = true;
        let mut t = Trainer::new(&cfg).unwrap();
        let names: Vec<&str> = t.params().iter().map(|p| p.name.as_str()).collect();
        for prefix in [
            "heads.",
            "vae.encoder.",
            "unet.down_blocks.",
            "image_encoder.vision_model.",
        ] {
            assert!(
                names.iter().any(|n| n.starts_with(prefix)),
                "no {prefix}* parameter"
            );
        }
        assert!(!names.iter().any(|n| n.starts_with("unet.time_embedding.")));
        let conv_in = |t: &Trainer| {
            t.params()
                .iter()
                .find(|p| p.name == "unet.conv_in.weight")
                .unwrap()
                .tensor
                .copy()
        };
        let w0 = conv_in(&t);
        t.fit(false, &mut |_| {}).unwrap();
        let w1 = conv_in(&t);
        assert!(!w0.equal(&w1), "the UNet did not train");

        // The exported folder holds the trained backbone and loads as a full matcher whose
        // UNet is the trained one.
        let out = dir.path().join("model");
        for f in [
            "imd.yaml",
            "heads.safetensors",
            "unet/config.json",
            "vae/config.json",
            "image_encoder/model.safetensors",
            "train_log.csv",
            &format!("checkpoints/{LAST_CHECKPOINT}"),
        ] {
            assert!(out.join(f).is_file(), "{f} missing");
        }
        assert!(!std::fs::symlink_metadata(out.join("unet"))
            .unwrap()
            .file_type()
            .is_symlink());
        let backbone = imd::model::Backbone::load(
            &out,
            tch::Device::Cpu,
            Kind::Float,
            &imd::model::BackboneOptions::default(),
        )
        .unwrap();
        let (_, unet) = backbone
            .var_stores()
            .into_iter()
            .find(|(p, _)| *p == "unet")
            .unwrap();
        assert!(unet.variables()["conv_in.weight"].equal(&w1));
        let opts = imd::model::ModelOptions {
            model_dir: out.display().to_string(),
            mode: imd::model::ModeOption::Full,
            ..Default::default()
        };
        let m = imd::model::ImdMatcher::load(&opts).unwrap();
        assert!(m.config().demo);
        assert_eq!(m.config().description, "trainer test");
    }

    #[test]
    fn shipped_train_configs_parse_and_describe_the_demo_model() {
        let demo = TrainConfig::from_file(&util::root().join("config/train_demo.yaml")).unwrap();
        assert!(demo.demo && demo.train.backbone);
        // The committed demo model was made by this config: its imd.yaml is the config's.
        let shipped = imd::model::ImdModelConfig::from_file(
            &util::root().join("models/imd-tiny-synth/imd.yaml"),
        )
        .unwrap();
        assert_eq!(shipped, demo.model_yaml());
        assert!(shipped
            .description
            .starts_with("DEMO MODEL, not the paper's weights"));
        // And the second one by the v2 config.
        let v2 = TrainConfig::from_file(&util::root().join("config/train_demo_v2.yaml")).unwrap();
        let shipped_v2 = imd::model::ImdModelConfig::from_file(
            &util::root().join("models/imd-tiny-synth-v2/imd.yaml"),
        )
        .unwrap();
        assert_eq!(shipped_v2, v2.model_yaml());
        let md = TrainConfig::from_file(&util::root().join("config/train_megadepth.yaml")).unwrap();
        assert!(!md.demo && !md.train.backbone);
        assert_eq!(
            md.model.coarse,
            imd::model::imd_config::CoarseConfig::default()
        );
        assert_eq!(md.optimizer.weight_decay, 0.1);
    }

    #[test]
    fn imd_train_cli_writes_a_folder_imd_match_loads() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("model");
        let cfg = config(&out, 3);
        let yaml = dir.path().join("train.yaml");
        std::fs::write(&yaml, cfg.to_yaml_string()).unwrap();
        let status = std::process::Command::new(util::imd_bin())
            .args(["train", "--config"])
            .arg(&yaml)
            .arg("--no-progress")
            .status()
            .unwrap();
        assert!(status.success());
        let log = std::fs::read_to_string(out.join("train_log.csv")).unwrap();
        assert_eq!(log.lines().count(), 4, "{log}"); // header + 3 steps
                                                     // Resuming to 5 steps continues the same log.
        let status = std::process::Command::new(util::imd_bin())
            .args([
                "train",
                "--resume-last",
                "--steps",
                "5",
                "--no-progress",
                "--config",
            ])
            .arg(&yaml)
            .status()
            .unwrap();
        assert!(status.success());
        let log = std::fs::read_to_string(out.join("train_log.csv")).unwrap();
        let steps: Vec<&str> = log
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap())
            .collect();
        assert_eq!(steps, ["1", "2", "3", "4", "5"]);
        // The frozen backbone is linked, and `imd match` runs the full model from the folder.
        assert!(std::fs::symlink_metadata(out.join("unet"))
            .unwrap()
            .file_type()
            .is_symlink());
        let photo = util::fixture("datasets/photos/astronaut.png");
        let o = std::process::Command::new(util::imd_bin())
            .arg("match")
            .arg(&photo)
            .arg(&photo)
            .arg("--model")
            .arg(&out)
            .args(["--mode", "full", "--resize", "96"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(String::from_utf8_lossy(&o.stdout).starts_with("x0,y0,x1,y1,confidence"));
    }
}

// --- One forward pass ------------------------------------------------------------------------

mod forward_parity {
    //! Inference (`ImdMatcher::match_images`) and training (`train::forward::forward_images`,
    //! `ImdHeads::forward_pair`) run the same network: with the demo model's weights and the
    //! same two photos they must give the same matches, bit for bit. Both paths run the same
    //! libtorch kernels on the same tensors in the same order (batch norms in eval mode for
    //! the comparison), so there is no float tolerance to allow.

    use imd::model::coarse::{CoarseMatchParams, ValidRegion};
    use imd::model::fine::refine::FineMatches;
    use imd::model::matcher::preprocess::{image_tensor, ImageGeometry};
    use imd::model::matcher::{FeatureSource, PairBatch, PairForward, PairInputs};
    use imd::model::{Backbone, BackboneOptions, ImdMatcher, ModelOptions};
    use imd::train::forward::{forward_images, TrainImages};
    use tch::{Device, Kind, Tensor};

    use crate::util;

    fn demo() -> (ImdMatcher, Backbone) {
        let dir = util::root().join("models/imd-tiny-synth");
        let opts = ModelOptions {
            model_dir: dir.display().to_string(),
            resize_long_side: 0,
            ..Default::default()
        };
        let matcher = ImdMatcher::load(&opts).unwrap();
        let backbone = Backbone::load(
            &dir,
            Device::Cpu,
            Kind::Float,
            &BackboneOptions {
                unet_block: matcher.config().backbone.unet_block,
                timestep: matcher.config().backbone.timestep,
                load_clip: true,
            },
        )
        .unwrap();
        (matcher, backbone)
    }

    /// `coffee.png` (held out from the demo model's training), 160×120.
    fn coffee() -> image::RgbImage {
        image::open(util::fixture("datasets/photos/coffee.png"))
            .unwrap()
            .to_rgb8()
    }

    /// `img` moved left by `dx` pixels, cropped to `w × h` (edge pixels repeat on the right).
    fn shifted(img: &image::RgbImage, dx: u32, w: u32, h: u32) -> image::RgbImage {
        image::RgbImage::from_fn(w, h, |x, y| {
            *img.get_pixel((x + dx).min(img.width() - 1), y)
        })
    }

    fn pixels(img: &image::RgbImage) -> Tensor {
        let g = ImageGeometry::new(img.width(), img.height(), 0).unwrap();
        image_tensor(img, &g, Device::Cpu)
    }

    fn whole(img: &image::RgbImage) -> ValidRegion {
        ValidRegion {
            height: img.height() as i64 / 8,
            width: img.width() as i64 / 8,
        }
    }

    fn f64s(t: &Tensor) -> Vec<f64> {
        Vec::<f64>::try_from(t.to_kind(Kind::Double).contiguous().view([-1])).unwrap()
    }

    /// (x0, y0, x1, y1, confidence) per match, ordered as the matcher orders them (stable
    /// sort by confidence, highest first; network pixels = original pixels at scale 1).
    fn rows(fwd: &PairForward, matcher: &ImdMatcher) -> Vec<[f64; 5]> {
        let params = CoarseMatchParams {
            threshold: matcher.options().coarse_threshold,
            border: matcher.options().border as i64,
        };
        let m = fwd.coarse_matches(params);
        let fine = matcher.config().fine.clone();
        let FineMatches { points0, points1 } =
            fwd.refine(&m, fine.subpixel_channels, fine.subpixel_temperature);
        let (p0, p1) = (f64s(&points0), f64s(&points1));
        let conf = Vec::<f32>::try_from(m.confidence.contiguous()).unwrap();
        let mut out: Vec<[f64; 5]> = (0..conf.len())
            .map(|k| {
                [
                    p0[2 * k],
                    p0[2 * k + 1],
                    p1[2 * k],
                    p1[2 * k + 1],
                    conf[k] as f64,
                ]
            })
            .collect();
        out.sort_by(|a, b| b[4].total_cmp(&a[4]));
        out
    }

    fn inference_rows(
        matcher: &ImdMatcher,
        a: &image::RgbImage,
        b: &image::RgbImage,
    ) -> Vec<[f64; 5]> {
        let out = matcher.match_images(a, b).unwrap();
        out.matches
            .iter()
            .map(|m| [m.p0.x, m.p0.y, m.p1.x, m.p1.y, m.confidence as f64])
            .collect()
    }

    #[test]
    fn inference_and_training_entry_points_give_the_same_matches() {
        let (matcher, backbone) = demo();
        let heads = matcher.heads().unwrap();
        let a = coffee();

        // Same sizes: the trainer's own entry point, nothing padded.
        let b = shifted(&a, 8, 160, 120);
        let (ta, tb) = (pixels(&a), pixels(&b));
        let fwd = forward_images(
            &backbone,
            heads,
            &TrainImages {
                image0: &ta,
                image1: &tb,
                valid0: &[whole(&a)],
                valid1: &[whole(&b)],
            },
            matcher.config(),
            false,
            false,
        )
        .unwrap();
        let expected = inference_rows(&matcher, &a, &b);
        assert!(expected.len() >= 20, "only {} matches", expected.len());
        assert_eq!(rows(&fwd, &matcher), expected);

        // Different sizes: image 1 (144×112) is padded bottom-right to image 0's 160×120, as
        // a training batch pads it; the forward crops it back to its valid region before fine
        // fusion, so it matches inference on the unpadded image exactly.
        let small = shifted(&a, 8, 144, 112);
        let (ts, signed_a) = (pixels(&small), &ta * 2.0 - 1.0);
        let signed_s = &ts * 2.0 - 1.0;
        let codes_a = backbone.encode(&signed_a).unwrap();
        let codes_s = backbone
            .encode(&signed_s)
            .unwrap()
            .constant_pad_nd([0, 2, 0, 1]);
        let tok = |x: &Tensor| backbone.prompt_inputs(x).unwrap().unwrap().tokens;
        let padded_s = signed_s.constant_pad_nd([0, 16, 0, 8]);
        let fwd = heads
            .forward_pair(
                &backbone,
                &PairBatch {
                    inputs: PairInputs {
                        prompt_inputs0: &tok(&ta),
                        prompt_inputs1: &tok(&ts),
                        codes0: &codes_a,
                        codes1: &codes_s,
                        valid0: &[whole(&a)],
                        valid1: &[whole(&small)],
                    },
                    image0: &signed_a,
                    image1: &padded_s,
                },
                matcher.config(),
                false,
            )
            .unwrap();
        assert_eq!(fwd.fine1.size(), vec![1, 32, 120, 160]);
        let expected = inference_rows(&matcher, &a, &small);
        assert!(expected.len() >= 20, "only {} matches", expected.len());
        assert_eq!(rows(&fwd, &matcher), expected);
    }
}
