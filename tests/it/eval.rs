//! `imd eval` on tiny benchmarks in their real on-disk formats (`tests/fixtures/eval/`, written
//! by `scripts/fixtures/make_eval_fixtures.py` from the demo model's held-out photos) with the demo
//! model (`models/imd-tiny-synth`, `scripts/train_demo.sh`). Each benchmark's metrics are
//! recomputed independently by `scripts/oracles/eval_oracle.py` (numpy / OpenCV, LoFTR's
//! `error_auc`, DKM's corner error, epipolar distances and instance accuracy from the matches imd
//! wrote), and the demo model's matching quality on held-out photos is asserted.

use std::path::{Path, PathBuf};
use std::process::Command;

use imd::data::synthetic::{SyntheticHomographyConfig, SyntheticHomographyDataset};
use imd::data::PairDataset;
use imd::eval::homography::{score_pair, HomographyProtocol};
use imd::eval::match_sample;
use imd::model::{ImdMatcher, ModeOption, ModelOptions};
use serde_json::Value;

use crate::util;

fn demo_model() -> PathBuf {
    util::root().join("models/imd-tiny-synth")
}

/// Run `imd eval` with `args` (plus `--model`, `--out`, `--save-matches`) and read the JSON.
fn imd_eval(dir: &Path, args: &[&str]) -> (Value, PathBuf) {
    let out = dir.join("results.json");
    let matches = dir.join("matches");
    let o = Command::new(util::imd_bin())
        .arg("eval")
        .args(args)
        .arg("--model")
        .arg(demo_model())
        .arg("--out")
        .arg(&out)
        .arg("--save-matches")
        .arg(&matches)
        .arg("--no-progress")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.contains("| imd-tiny-synth |"), "{table}");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    (json, matches)
}

fn oracle(results: &Path, matches: &Path, extra: &[&str]) -> Value {
    let o = Command::new(util::venv_python())
        .arg(util::root().join("scripts/oracles/eval_oracle.py"))
        .arg(results)
        .arg(matches)
        .args(extra)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::INFINITY)
}

fn fixture(rel: &str) -> String {
    util::fixture(&format!("eval/{rel}")).display().to_string()
}

/// AUCs recomputed from the same per-pair errors must agree to round-off (the errors are in the
/// JSON at full f64 precision; the AUC is a sum of a few hundred terms).
fn assert_close(what: &str, ours: &Value, oracle: &Value, tol: f64) {
    let (a, b) = (ours.as_array().unwrap(), oracle.as_array().unwrap());
    assert_eq!(a.len(), b.len(), "{what}");
    for (x, y) in a.iter().zip(b) {
        assert!((f(x) - f(y)).abs() <= tol, "{what}: imd {x} vs oracle {y}");
    }
}

/// Per-pair precision from the 6-decimal match files may differ from imd's (computed on f64)
/// only for a match within 1e-6 px of a threshold: allow one match per pair.
fn precision_tol(num_matches: f64) -> f64 {
    100.0 / num_matches.max(1.0) + 1e-9
}

fn check_pose(bench: &str, args: &[&str], min_matches: f64) {
    let dir = tempfile::tempdir().unwrap();
    let mut all = vec![bench];
    all.extend_from_slice(args);
    let (r, matches) = imd_eval(dir.path(), &all);
    let o = oracle(&dir.path().join("results.json"), &matches, &[]);
    let s = &r["summary"];
    assert_close(&format!("{bench} AUC"), &s["auc"], &o["auc"], 1e-9);
    let pairs = r["pairs"].as_array().unwrap();
    for (p, q) in pairs.iter().zip(o["pairs"].as_array().unwrap()) {
        let e_imd = f(&p["errors"][0]);
        let e_oracle = f(&q["error"]);
        assert!(
            (e_imd == e_oracle) || (e_imd - e_oracle).abs() < 1e-9,
            "{}: pose error imd {e_imd} vs oracle {e_oracle}",
            p["name"]
        );
        // Real matches on geometrically consistent renderings.
        assert!(
            f(&p["num_matches"]) >= min_matches,
            "{}: {}",
            p["name"],
            p["num_matches"]
        );
    }
    let mean_matches = f(&s["mean_matches"]);
    assert!((f(&s["precision"]) - f(&o["precision"])).abs() <= precision_tol(mean_matches));
    eprintln!(
        "{bench}: imd AUC {} precision {:.1}; OpenCV RANSAC on the same matches AUC {}",
        s["auc"],
        f(&s["precision"]),
        o["opencv_auc"]
    );
}

#[test]
fn megadepth1500_metrics_match_the_oracle() {
    check_pose(
        "megadepth1500",
        &[
            "--data",
            &fixture("megadepth/root"),
            "--index",
            &fixture("megadepth/index"),
            "--long-side",
            "320",
        ],
        50.0,
    );
}

#[test]
fn scannet1500_metrics_match_the_oracle() {
    check_pose(
        "scannet1500",
        &[
            "--data",
            &fixture("scannet/scans_test"),
            "--index",
            &fixture("scannet/index.json"),
        ],
        50.0,
    );
}

fn check_homography(args: &[&str], oracle_args: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let (r, matches) = imd_eval(dir.path(), args);
    let o = oracle(&dir.path().join("results.json"), &matches, oracle_args);
    let s = &r["summary"];
    assert_close("AUC", &s["auc"], &o["auc"], 1e-9);
    let pairs = r["pairs"].as_array().unwrap();
    for (p, q) in pairs.iter().zip(o["pairs"].as_array().unwrap()) {
        let (a, b) = (f(&p["corner_error"]), f(&q["corner_error"]));
        assert!(a == b || (a - b).abs() < 1e-9, "{}: {a} vs {b}", p["name"]);
        let tol = precision_tol(f(&p["num_matches"])) / 100.0;
        for k in 0..3 {
            let (x, y) = (
                p["precision"][k].as_f64().unwrap_or(0.0),
                f(&q["precision"][k]),
            );
            assert!(
                (x - y).abs() <= tol,
                "{}: precision[{k}] {x} vs {y}",
                p["name"]
            );
        }
    }
    eprintln!(
        "{}: imd AUC {} precision {}; OpenCV RANSAC on the same matches AUC {}",
        r["benchmark"], s["auc"], s["precision"], o["opencv_auc"]
    );
    r
}

#[test]
fn hpatches_metrics_match_the_oracle() {
    // The oracle reads H_1_k from the sequence folders itself.
    let root = fixture("hpatches");
    let r = check_homography(
        &["hpatches", "--data", &root, "--short-side", "240"],
        &["--hpatches", &root],
    );
    assert_eq!(r["summary"]["pairs"], 10);
}

#[test]
fn homography_synth_metrics_match_the_oracle_and_the_demo_model_is_accurate() {
    let r = check_homography(
        &[
            "homography-synth",
            "--images",
            &fixture("heldout"),
            "--pairs",
            "8",
            "--seed",
            "5",
            "--width",
            "256",
            "--height",
            "192",
        ],
        &[],
    );
    // The demo model on held-out photos (README numbers are for 100 pairs; these 8 pairs are
    // a smaller sample of the same distribution): well above the acceptance bars of
    // AUC@3px ≥ 50 % and ≥ 70 % of matches within 3 px.
    let s = &r["summary"];
    assert!(f(&s["auc"][0]) >= 50.0, "AUC@3px {}", s["auc"][0]);
    assert!(
        f(&s["precision_pooled"][1]) >= 70.0,
        "precision@3px {}",
        s["precision_pooled"][1]
    );
}

#[test]
fn imim_metrics_match_the_oracle() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = dir.path().join("imim_pairs.json");
    let status = Command::new(util::imd_bin())
        .args(["imim", "build", "--annotations"])
        .arg(fixture("burst/annotations/val/all_classes.json"))
        .arg("--images")
        .arg(fixture("burst/frames"))
        .arg("--out")
        .arg(&pairs)
        .status()
        .unwrap();
    assert!(status.success());
    let pairs_s = pairs.display().to_string();
    let (r, matches) = imd_eval(
        dir.path(),
        &[
            "imim",
            "--data",
            &fixture("burst/frames"),
            "--index",
            &pairs_s,
            "--long-side",
            "0",
        ],
    );
    let o = oracle(
        &dir.path().join("results.json"),
        &matches,
        &["--imim-pairs", &pairs_s],
    );
    let s = &r["summary"];
    assert_eq!(s["pairs"], 1);
    let (p, q) = (&r["pairs"][0], &o["pairs"][0]);
    assert_eq!(p["instance_matches"], q["instance_matches"]);
    assert_eq!(p["correct"], q["correct"]);
    assert!((f(&s["accuracy"]) - f(&o["accuracy"])).abs() < 1e-9);
    // The frame moves by a known shift: the demo model's matches on the two instances land in
    // the same instance.
    assert!(f(&p["instance_matches"]) >= 20.0, "{p}");
    assert!(f(&s["accuracy"]) >= 80.0, "{s}");
}

#[test]
fn demo_model_matches_a_held_out_pair_accurately() {
    // A synthetic homography pair of the held-out coffee photo (never seen in training),
    // matched in-process: at least 100 matches, ≥ 80 % within 3 px of the ground truth, and
    // the homography they give puts image 0's corners within 2 px of the true ones.
    let opts = ModelOptions {
        model_dir: demo_model().display().to_string(),
        mode: ModeOption::Full,
        resize_long_side: 0,
        ..Default::default()
    };
    let matcher = ImdMatcher::load(&opts).unwrap();
    assert!(matcher.config().demo);
    let ds = SyntheticHomographyDataset::open(SyntheticHomographyConfig {
        images_dir: fixture("heldout"),
        include: vec!["coffee.jpg".into()],
        width: 256,
        height: 192,
        pairs: 1,
        seed: 11,
        ..Default::default()
    })
    .unwrap();
    let sample = ds.get(0).unwrap();
    let m = match_sample(&matcher, &sample).unwrap();
    let rec = score_pair(&sample, &m, 0.0, &HomographyProtocol::synthetic()).unwrap();
    assert!(rec.num_matches >= 100, "{} matches", rec.num_matches);
    let p3 = rec.precision[1].unwrap();
    assert!(p3 >= 0.8, "{:.1} % within 3 px", 100.0 * p3);
    let err = rec.corner_error.unwrap();
    assert!(err < 2.0, "corner error {err:.2} px");
}
