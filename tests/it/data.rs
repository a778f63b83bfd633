//! Dataset readers on tiny instances of each dataset in its real on-disk format, written by
//! `scripts/fixtures/make_dataset_fixtures.py` into `tests/fixtures/datasets/` (with
//! `expected.json` values computed there with numpy).

use std::path::PathBuf;

use imd::data::burst::{decode_counts, decode_rle, encode_rle, BinaryMask};
use imd::data::hpatches::{HPatchesDataset, HPatchesOptions, HPatchesSubset};
use imd::data::image::load_rgb;
use imd::data::imim::{build_pairs, ImimBuildOptions, ImimDataset, ImimOptions, ImimPairList};
use imd::data::megadepth::{read_depth, MegaDepthDataset, MegaDepthOptions};
use imd::data::rng::SeededRng;
use imd::data::scannet::{ScanNetDataset, ScanNetOptions};
use imd::data::synthetic::{
    PhotometricJitter, SyntheticHomographyConfig, SyntheticHomographyDataset,
};
use imd::data::{GroundTruth, PairDataset};
use imd::train::supervision::{coarse_gt, FineGrid};
use imd::train::TrainBatch;
use serde_json::Value;
use tch::{Device, Kind};

use crate::util::fixture;

fn ds(rel: &str) -> PathBuf {
    fixture("datasets").join(rel)
}

fn expected(rel: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(ds(rel)).unwrap()).unwrap()
}

fn mat(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()))
        .collect()
}

fn count_true(t: &tch::Tensor) -> i64 {
    t.to_kind(Kind::Int64).sum(Kind::Int64).int64_value(&[])
}

fn megadepth(options: MegaDepthOptions) -> MegaDepthDataset {
    MegaDepthDataset::open_list(
        &ds("megadepth/megadepth_fixture.txt"),
        &ds("megadepth/index"),
        &ds("megadepth/root"),
        options,
    )
    .unwrap()
}

#[test]
fn megadepth_index_poses_and_protocol() {
    let exp = expected("megadepth/expected.json");
    // EL's rule at long side 100 on 200×150 photos: 100×75, floored to 96×72, padded to 96².
    let opts = MegaDepthOptions {
        long_side: 100,
        ..MegaDepthOptions::test_1500()
    };
    let data = megadepth(opts);
    assert_eq!(data.len(), 3, "min overlap 0 keeps every pair");
    for (k, pair) in exp["pairs"].as_array().unwrap().iter().enumerate() {
        let s = data.get(k).unwrap();
        assert_eq!(s.image0.size(), (96, 96));
        assert_eq!(s.image0.content_size, (96, 72));
        assert_eq!(count_true(&s.image1.valid), 96 * 72);
        assert_eq!(s.image0.scale, [200.0 / 96.0, 150.0 / 72.0]);
        assert_eq!(s.image0.original_size, (200, 150));
        let img0 = pair["images"][0].as_str().unwrap();
        assert!(s.image0.path.ends_with(img0));
        let GroundTruth::Pose { k0, t_0to1, .. } = &s.ground_truth else {
            panic!("test protocol has no depth");
        };
        let want_t = mat(&pair["T_0to1"]);
        for (r, c) in (0..4).flat_map(|r| (0..4).map(move |c| (r, c))) {
            // numpy and nalgebra both invert in f64: agreement to 1e-12.
            assert!((t_0to1[(r, c)] - want_t[r * 4 + c]).abs() < 1e-12);
        }
        let want_k = mat(&exp["images"][img0]["K"]);
        assert_eq!(k0.transpose().as_slice(), &want_k[..]);
    }
    // Overlap filter is strict `>`: the 0.05 pair drops at 0.1.
    let filtered = megadepth(MegaDepthOptions {
        min_overlap: 0.1,
        long_side: 100,
        ..MegaDepthOptions::test_1500()
    });
    assert_eq!(filtered.len(), 2);
    // The real protocol size: 1152 long side → 1152×864 padded to 1152².
    let s = megadepth(MegaDepthOptions::test_1500()).get(0).unwrap();
    assert_eq!(
        (s.image0.size(), s.image0.content_size),
        ((1152, 1152), (1152, 864))
    );
    assert!(data.get(3).is_err());
}

#[test]
fn megadepth_depth_maps_are_converted_exactly() {
    let exp = expected("megadepth/expected.json");
    let data = megadepth(MegaDepthOptions {
        long_side: 96,
        ..MegaDepthOptions::train()
    });
    let s = data.get(0).unwrap();
    let GroundTruth::Depth { depth0, .. } = &s.ground_truth else {
        panic!("train protocol loads depth");
    };
    assert_eq!(
        depth0.size(),
        vec![150, 200],
        "depth stays at original resolution"
    );
    let img0 = exp["pairs"][0]["images"][0].as_str().unwrap();
    for probe in exp["images"][img0]["depth_probe"].as_array().unwrap() {
        let p: Vec<f64> = probe
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        // f32 stored, f32 read: bit-exact.
        assert_eq!(depth0.double_value(&[p[1] as i64, p[0] as i64]), p[2]);
    }
    assert_eq!(
        depth0.double_value(&[15, 40]),
        0.0,
        "the hole of unknown depth is 0"
    );
    let err = read_depth(&ds("megadepth/root/x.h5"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("convert_megadepth_index.py"), "{err}");

    // Collate the padded pairs and derive coarse GT: padded cells (rows ≥ 9 of 12) never match.
    let samples = vec![data.get(0).unwrap(), data.get(2).unwrap()];
    let batch = TrainBatch::collate(&samples, &FineGrid::EFFICIENT_LOFTR, Device::Cpu).unwrap();
    assert_eq!(batch.layout.hw0, (12, 12));
    let m0 = batch.layout.mask0.as_ref().unwrap();
    assert_eq!(count_true(m0), 2 * 12 * 9);
    let gt = coarse_gt(&batch.warp, &batch.layout, &FineGrid::EFFICIENT_LOFTR).unwrap();
    assert!(gt.len() > 20, "only {} coarse GT matches", gt.len());
    assert!(gt
        .to_vec()
        .iter()
        .all(|&(_, i, j, _)| i / 12 < 9 && j / 12 < 9));
}

#[test]
fn scannet_pairs_poses_and_resize() {
    let exp = expected("scannet/expected.json");
    let data = ScanNetDataset::open(
        &ds("scannet/index.json"),
        &ds("scannet/scans"),
        ScanNetOptions::default(),
    )
    .unwrap();
    assert_eq!(data.len(), 2);
    for (k, pair) in exp["pairs"].as_array().unwrap().iter().enumerate() {
        let s = data.get(k).unwrap();
        assert_eq!(
            s.image0.size(),
            (640, 480),
            "320×240 files are resized to 640×480"
        );
        assert_eq!(s.image0.scale, [1.0, 1.0]);
        let GroundTruth::Pose { k0, k1, t_0to1 } = &s.ground_truth else {
            panic!("ScanNet-1500 has poses");
        };
        assert_eq!(k0, k1);
        assert_eq!(k0.transpose().as_slice(), &mat(&exp["K"])[..]);
        let want = mat(&pair["T_0to1"]);
        for (r, c) in (0..4).flat_map(|r| (0..4).map(move |c| (r, c))) {
            assert!((t_0to1[(r, c)] - want[r * 4 + c]).abs() < 1e-12);
        }
        let frames = pair["frames"].as_array().unwrap();
        assert_eq!(s.name, format!("scene0707_00/{}-{}", frames[0], frames[1]));
    }
}

#[test]
fn hpatches_sequences_homographies_and_ignore_list() {
    let exp = expected("hpatches/expected.json");
    let data = HPatchesDataset::open(&ds("hpatches"), HPatchesOptions::default()).unwrap();
    assert_eq!(data.len(), 10, "i_dc is on DKM's ignore list");
    let s = data.get(5).unwrap(); // v_fixture, 1-2 (sorted: i_fixture, v_fixture)
    assert_eq!(s.name, "v_fixture/1-2");
    assert_eq!(s.image0.size(), (640, 480), "short side 72 → 480");
    assert_eq!(s.image1.scale, [96.0 / 640.0, 72.0 / 480.0]);
    let GroundTruth::Homography { h_0to1 } = &s.ground_truth else {
        panic!("HPatches has homographies");
    };
    assert_eq!(
        h_0to1.transpose().as_slice(),
        &mat(&exp["v_fixture"]["2"])[..]
    );

    // H maps image-1 pixels to image-k pixels: image k (made with cv2.warpPerspective) at x
    // equals image 1 at H⁻¹x. Compare on interior pixels; JPEG-free PPM, bilinear both sides:
    // mean absolute difference below 2 grey levels.
    let img1 = load_rgb(&data.image_path("v_fixture", 1)).unwrap();
    let img2 = load_rgb(&data.image_path("v_fixture", 2)).unwrap();
    let inv = h_0to1.try_inverse().unwrap();
    let (mut sum, mut n) = (0.0, 0);
    for y in 5..67u32 {
        for x in 5..91u32 {
            let p = inv * nalgebra::Vector3::new(x as f64, y as f64, 1.0);
            let (sx, sy) = (p.x / p.z, p.y / p.z);
            if sx < 1.0 || sy < 1.0 || sx > 94.0 || sy > 70.0 {
                continue;
            }
            let (x0, y0) = (sx.floor() as u32, sy.floor() as u32);
            let (fx, fy) = (sx - x0 as f64, sy - y0 as f64);
            let g = |x: u32, y: u32| img1.get_pixel(x, y)[1] as f64;
            let v = (g(x0, y0) * (1.0 - fx) + g(x0 + 1, y0) * fx) * (1.0 - fy)
                + (g(x0, y0 + 1) * (1.0 - fx) + g(x0 + 1, y0 + 1) * fx) * fy;
            sum += (v - img2.get_pixel(x, y)[1] as f64).abs();
            n += 1;
        }
    }
    assert!(
        n > 3000 && sum / (n as f64) < 2.0,
        "mean |diff| {} over {n}",
        sum / n as f64
    );

    let all = HPatchesDataset::open(
        &ds("hpatches"),
        HPatchesOptions {
            skip_ignored: false,
            ..HPatchesOptions::default()
        },
    )
    .unwrap();
    assert_eq!(all.len(), 15);
    let view = HPatchesDataset::open(
        &ds("hpatches"),
        HPatchesOptions {
            subset: HPatchesSubset::Viewpoint,
            ..HPatchesOptions::default()
        },
    )
    .unwrap();
    assert_eq!(view.len(), 5);
}

#[test]
fn rle_decoder_matches_the_python_encoder() {
    let cases: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(ds("burst/rle_cases.json")).unwrap())
            .unwrap();
    assert_eq!(cases.len(), 12);
    for case in &cases {
        let (h, w) = (
            case["height"].as_u64().unwrap() as u32,
            case["width"].as_u64().unwrap() as u32,
        );
        let rle = case["rle"].as_str().unwrap();
        let counts: Vec<u64> = case["counts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(decode_counts(rle).unwrap(), counts);
        let mask = decode_rle(rle, w, h).unwrap();
        let want: Vec<bool> = case["row_major"]
            .as_str()
            .unwrap()
            .chars()
            .map(|c| c == '1')
            .collect();
        assert_eq!(mask.as_row_major(), &want[..]);
        assert_eq!(encode_rle(&mask), rle);
    }
}

#[test]
fn rle_round_trip_on_random_masks() {
    let mut rng = SeededRng::new(42);
    for k in 0..200 {
        let (w, h) = (1 + rng.below(60) as u32, 1 + rng.below(60) as u32);
        // Mix of densities and long runs: per-row probability, sometimes all-constant.
        let p = [0.0, 0.02, 0.5, 0.98, 1.0][k % 5];
        let bits: Vec<bool> = (0..w * h).map(|_| rng.uniform() < p).collect();
        let mask = BinaryMask::from_row_major(w, h, bits).unwrap();
        let s = encode_rle(&mask);
        assert_eq!(
            decode_rle(&s, w, h).unwrap(),
            mask,
            "case {k}: {w}×{h} `{s}`"
        );
        let area: u64 = decode_counts(&s).unwrap().iter().skip(1).step_by(2).sum();
        assert_eq!(area, mask.area());
    }
}

fn burst_ann() -> PathBuf {
    ds("burst/annotations/val/all_classes.json")
}

#[test]
fn imim_selection_rule() {
    let frames = ds("burst/frames");
    let report = build_pairs(&burst_ann(), &frames, &ImimBuildOptions::default()).unwrap();
    assert_eq!(
        (
            report.videos,
            report.qualifying_videos,
            report.missing_images
        ),
        (4, 3, 1)
    );
    let picked: Vec<(u64, u64, usize, usize, Vec<u64>)> = report
        .list
        .pairs
        .iter()
        .map(|p| {
            (
                p.sequence_id,
                p.category_id,
                p.frame0.index,
                p.frame1.index,
                p.instances.iter().map(|i| i.track_id).collect(),
            )
        })
        .collect();
    // Video 1: frames 2–3 share 3 persons (the most); video 2 never has 2 persons; video 3's
    // best pair (0, 2) lacks frame 2's image → (0, 1); video 4: (0, 1).
    assert_eq!(
        picked,
        vec![
            (1, 805, 2, 3, vec![1, 2, 3]),
            (3, 211, 0, 1, vec![5, 6]),
            (4, 805, 0, 1, vec![8, 9]),
        ]
    );
    assert_eq!(
        report.list.pairs[0].frame0.image,
        "val/LaSOT/person-1/00002.jpg"
    );
    assert_eq!(report.list.pairs[0].category_name, "person");

    // A larger frame gap: video 1 falls back to (0, 3) with persons 1, 2 (track 2's mask is
    // empty in frame 1, so (1, 3) shares only one).
    let gap = build_pairs(
        &burst_ann(),
        &frames,
        &ImimBuildOptions {
            min_frame_gap: 2,
            ..ImimBuildOptions::default()
        },
    )
    .unwrap();
    let first = &gap.list.pairs[0];
    assert_eq!(
        (
            first.frame0.index,
            first.frame1.index,
            first.instances.len()
        ),
        (0, 3, 2)
    );

    // Subsampling is seeded, keeps file order and is a subset.
    let sub = |seed| {
        build_pairs(
            &burst_ann(),
            &frames,
            &ImimBuildOptions {
                max_pairs: 2,
                seed,
                ..ImimBuildOptions::default()
            },
        )
        .unwrap()
        .list
        .pairs
        .iter()
        .map(|p| p.sequence_id)
        .collect::<Vec<_>>()
    };
    let a = sub(7);
    assert_eq!(a, sub(7));
    assert_eq!(a.len(), 2);
    assert!(a.windows(2).all(|w| w[0] < w[1]) && a.iter().all(|id| [1, 3, 4].contains(id)));
    let seeds_differ = (0..20).any(|s| sub(s) != a);
    assert!(seeds_differ, "different seeds pick different subsets");
}

#[test]
fn imim_dataset_reads_masks_and_the_cli_writes_the_same_list() {
    let exp = expected("burst/expected.json");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pairs.json");
    let status = std::process::Command::new(crate::util::imd_bin())
        .args(["imim", "build", "--annotations"])
        .arg(burst_ann())
        .arg("--images")
        .arg(ds("burst/frames"))
        .arg("--out")
        .arg(&out)
        .args(["--min-instances", "2"])
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let from_cli = ImimPairList::load(&out).unwrap();
    let lib = build_pairs(
        &burst_ann(),
        &ds("burst/frames"),
        &ImimBuildOptions::default(),
    )
    .unwrap();
    assert_eq!(from_cli.pairs, lib.list.pairs);

    let data = ImimDataset::open(&out, &ds("burst/frames"), ImimOptions::default()).unwrap();
    assert_eq!(data.len(), 3);
    let s = data.get(0).unwrap();
    assert_eq!(s.image0.size(), (64, 48));
    let GroundTruth::Instances { instances } = &s.ground_truth else {
        panic!("IMIM has instance masks");
    };
    assert_eq!(instances.len(), 3);
    for inst in instances {
        let a0 = exp["areas"][format!("1/2/{}", inst.track_id)]
            .as_u64()
            .unwrap();
        let a1 = exp["areas"][format!("1/3/{}", inst.track_id)]
            .as_u64()
            .unwrap();
        assert_eq!((inst.mask0.area(), inst.mask1.area()), (a0, a1));
    }
    // Track 1 is a blob centred at (10 + 2·2, 20) in frame 2.
    assert!(instances[0].mask0.get(14, 20) && !instances[0].mask0.get(40, 20));

    // Bad input is an error naming the file, not a panic.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"format\": \"other\"}").unwrap();
    let err = ImimPairList::load(&bad).unwrap_err().to_string();
    assert!(err.contains("bad.json"), "{err}");
}

fn synth_config() -> SyntheticHomographyConfig {
    SyntheticHomographyConfig {
        images_dir: ds("photos").display().to_string(),
        width: 96,
        height: 64,
        pairs: 6,
        seed: 9,
        ..SyntheticHomographyConfig::default()
    }
}

#[test]
fn synthetic_pairs_are_seeded_and_consistent_with_h() {
    let data = SyntheticHomographyDataset::open(synth_config()).unwrap();
    assert_eq!(data.photos().len(), 3, "notes.txt is not a photo");
    let held_out = SyntheticHomographyDataset::open(SyntheticHomographyConfig {
        exclude: vec!["coffee.png".into()],
        ..synth_config()
    })
    .unwrap();
    assert_eq!(held_out.photos().len(), 2);
    assert!(held_out.photos().iter().all(|p| !p.ends_with("coffee.png")));

    let a = data.get(3).unwrap();
    let b = data.get(3).unwrap();
    assert!(
        a.image1.pixels.equal(&b.image1.pixels),
        "same index, same pair"
    );
    assert!(!a.image0.pixels.equal(&data.get(4).unwrap().image0.pixels));

    // Without jitter, image 1 at x is image 0 bilinearly sampled at H⁻¹x wherever that
    // neighbourhood is inside image 0 (both sample the same resized photo).
    let clean = SyntheticHomographyDataset::open(SyntheticHomographyConfig {
        jitter: PhotometricJitter::none(),
        ..synth_config()
    })
    .unwrap();
    for index in 0..3 {
        let s = clean.get(index).unwrap();
        let GroundTruth::Homography { h_0to1 } = &s.ground_truth else {
            panic!("synthetic pairs have homographies");
        };
        let inv = h_0to1.try_inverse().unwrap();
        let p0 = &s.image0.pixels;
        let p1 = &s.image1.pixels;
        let mut checked = 0;
        for y in 0..64i64 {
            for x in 0..96i64 {
                let q = inv * nalgebra::Vector3::new(x as f64, y as f64, 1.0);
                let (sx, sy) = (q.x / q.z, q.y / q.z);
                if !(0.0..94.999).contains(&sx) || !(0.0..62.999).contains(&sy) {
                    continue;
                }
                let (x0, y0) = (sx.floor() as i64, sy.floor() as i64);
                let (fx, fy) = (sx - x0 as f64, sy - y0 as f64);
                for c in 0..3 {
                    let g = |x: i64, y: i64| p0.double_value(&[c, y, x]);
                    let v = (g(x0, y0) * (1.0 - fx) + g(x0 + 1, y0) * fx) * (1.0 - fy)
                        + (g(x0, y0 + 1) * (1.0 - fx) + g(x0 + 1, y0 + 1) * fx) * fy;
                    // f32 pixels and f32 interpolation weights: 1e-5.
                    assert!((v - p1.double_value(&[c, y, x])).abs() < 1e-5);
                }
                assert!(bool::try_from(s.image1.valid.get(y).get(x)).unwrap());
                checked += 1;
            }
        }
        // min_overlap 0.5 → at least half of image 1 has its source inside image 0 (minus the
        // 1-pixel border this test skips).
        assert!(
            checked > 96 * 64 * 4 / 10,
            "pair {index}: {checked} pixels checked"
        );
    }

    // Coarse GT from a collated synthetic batch: every GT cell pair agrees with H.
    let samples = vec![data.get(0).unwrap(), data.get(1).unwrap()];
    let batch = TrainBatch::collate(&samples, &FineGrid::EFFICIENT_LOFTR, Device::Cpu).unwrap();
    assert!(batch.layout.mask0.is_none(), "nothing is padded");
    let gt = coarse_gt(&batch.warp, &batch.layout, &FineGrid::EFFICIENT_LOFTR).unwrap();
    assert!(gt.len() > 20);
    for (b, i, j, _) in gt.to_vec() {
        let GroundTruth::Homography { h_0to1 } = &samples[b as usize].ground_truth else {
            unreachable!()
        };
        let p = h_0to1 * nalgebra::Vector3::new((8 * (i % 12)) as f64, (8 * (i / 12)) as f64, 1.0);
        let (cx, cy) = (
            (p.x / p.z / 8.0).round() as i64,
            (p.y / p.z / 8.0).round() as i64,
        );
        assert_eq!(cy * 12 + cx, j);
    }
}

#[test]
fn harder_synthetic_options_keep_positives_and_make_true_negatives() {
    let plain = SyntheticHomographyDataset::open(synth_config()).unwrap();
    let hard = SyntheticHomographyDataset::open(SyntheticHomographyConfig {
        negative_fraction: 0.5,
        ..synth_config()
    })
    .unwrap();
    let (mut negatives, mut positives) = (0, 0);
    for index in 0..6 {
        let p = plain.get(index).unwrap();
        let h = hard.get(index).unwrap();
        // Image 0 never changes: the options draw from their own random stream.
        assert!(h.image0.pixels.equal(&p.image0.pixels));
        let (GroundTruth::Homography { h_0to1: hp }, GroundTruth::Homography { h_0to1: hh }) =
            (&p.ground_truth, &h.ground_truth)
        else {
            panic!("synthetic pairs have homographies");
        };
        if h.image1.path == h.image0.path {
            // A positive pair is the very pair the default configuration makes.
            positives += 1;
            assert!(h.image1.pixels.equal(&p.image1.pixels));
            assert_eq!(hp, hh);
        } else {
            negatives += 1;
            assert_eq!(
                *hh,
                imd::data::synthetic::no_overlap_homography(96, 64),
                "{}",
                h.name
            );
            // No ground truth survives the supervision.
            let batch = TrainBatch::collate(&[h], &FineGrid::EFFICIENT_LOFTR, Device::Cpu).unwrap();
            let gt = coarse_gt(&batch.warp, &batch.layout, &FineGrid::EFFICIENT_LOFTR).unwrap();
            assert!(gt.is_empty());
        }
    }
    assert!(negatives > 0 && positives > 0, "{negatives} / {positives}");

    // Blur and JPEG change the images but keep them in [0, 1] and black where invalid.
    let degraded = SyntheticHomographyDataset::open(SyntheticHomographyConfig {
        jitter: PhotometricJitter {
            blur_sigma: 2.0,
            jpeg_probability: 1.0,
            ..PhotometricJitter::default()
        },
        ..synth_config()
    })
    .unwrap();
    let d = degraded.get(2).unwrap();
    let p = plain.get(2).unwrap();
    assert!(!d.image0.pixels.equal(&p.image0.pixels));
    assert!(d.image1.valid.equal(&p.image1.valid));
    let px = &d.image1.pixels;
    assert!(px.min().double_value(&[]) >= 0.0 && px.max().double_value(&[]) <= 1.0);
    let invalid = d.image1.valid.logical_not().unsqueeze(0).expand_as(px);
    assert_eq!(
        px.masked_select(&invalid)
            .abs()
            .sum(Kind::Float)
            .double_value(&[]),
        0.0
    );

    // Negatives need a second photo.
    let err = SyntheticHomographyDataset::open(SyntheticHomographyConfig {
        include: vec!["coffee.png".into()],
        negative_fraction: 0.2,
        ..synth_config()
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("negative_fraction"), "{err}");
}
