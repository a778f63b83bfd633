//! Round trip, every bad-map case, and a save killed at random moments.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use image::RgbImage;
use nalgebra::{Isometry3, Matrix6, Vector3};

use super::*;
use crate::io::image::DepthBuffer;
use crate::io::msgs::builtin_interfaces::Time;

fn keyframe(version: i32, i: u32, w: u32, h: u32) -> MapKeyframe {
    let image = RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x * 7 + i * 13) as u8,
            (y * 3 + version as u32) as u8,
            ((x ^ y) + i) as u8,
        ])
    });
    let depth = if i.is_multiple_of(2) {
        DepthBuffer::Millimetres((0..w * h).map(|k| 500 + (k % 3000) as u16).collect())
    } else {
        DepthBuffer::Metres((0..w * h).map(|k| 0.5 + (k % 300) as f32 * 0.01).collect())
    };
    let mut covariance = Matrix6::identity() * 1e-4;
    covariance[(0, 4)] = 2e-5;
    covariance[(4, 0)] = 2e-5;
    MapKeyframe {
        id: KeyframeId {
            camera: format!("cam{}", i % 2),
            stamp: Time {
                sec: version,
                nanosec: i,
            },
        },
        frame_id: format!("cam{}_optical", i % 2),
        model: CameraModel::pinhole(100.0 + i as f64, 101.0, w as f64 / 2.0, 20.0, w, h),
        image: Arc::new(image),
        embedding: (0..16).map(|k| (k as f32 + i as f32).sin()).collect(),
        depth: Some(Arc::new(DepthMap::new(w, h, depth).unwrap())),
        pose: PoseWithCov {
            pose: Isometry3::new(
                Vector3::new(i as f64, -0.5, version as f64 * 0.1),
                Vector3::new(0.1, 0.2 * i as f64, -0.3),
            ),
            covariance,
        },
    }
}

fn map(version: i32, n: u32, w: u32, h: u32) -> KeyframeMap {
    KeyframeMap {
        model: "sha256:test-model".into(),
        frame_id: "map".into(),
        keyframes: (0..n).map(|i| keyframe(version, i, w, h)).collect(),
    }
}

fn saved(dir: &Path) -> KeyframeMap {
    let m = map(1, 3, 40, 30);
    save(&m, dir).unwrap();
    m
}

#[test]
fn a_saved_map_loads_back_equal() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("map");
    let m = saved(&dir);
    let back = load(&dir, Some("sha256:test-model")).unwrap();
    assert_eq!(back.model, m.model);
    assert_eq!(back.frame_id, "map");
    assert_eq!(back.keyframes.len(), 3);
    for (a, b) in m.keyframes.iter().zip(&back.keyframes) {
        assert_eq!(a.id, b.id);
        assert_eq!(a.frame_id, b.frame_id);
        assert_eq!(a.model, b.model);
        assert_eq!(a.image.as_raw(), b.image.as_raw());
        assert_eq!(a.embedding, b.embedding);
        assert_eq!(
            a.depth.as_ref().unwrap().samples(),
            b.depth.as_ref().unwrap().samples()
        );
        assert!((a.pose.pose.translation.vector - b.pose.pose.translation.vector).norm() < 1e-12);
        assert!(a.pose.pose.rotation.angle_to(&b.pose.pose.rotation) < 1e-12);
        assert_eq!(a.pose.covariance, b.pose.covariance);
    }
    // Saving again over it rewrites nothing and removes nothing; a smaller map removes the
    // blobs of the keyframes it dropped.
    let again = save(&m, &dir).unwrap();
    assert_eq!((again.written, again.removed), (0, 0));
    let mut smaller = m.clone();
    smaller.keyframes.truncate(1);
    let r = save(&smaller, &dir).unwrap();
    assert_eq!((r.written, r.removed), (0, 4));
    assert_eq!(load(&dir, None).unwrap().keyframes.len(), 1);
    assert_eq!(std::fs::read_dir(dir.join("keyframes")).unwrap().count(), 2);
}

fn manifest_of(dir: &Path) -> Manifest {
    load_manifest(dir).unwrap()
}

fn err(dir: &Path, model: Option<&str>) -> String {
    let e = load(dir, model).expect_err("a bad map must not load");
    e.to_string()
}

#[test]
fn a_missing_map_manifest_or_file_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("map");
    let e = err(&dir, None);
    assert!(
        e.contains("missing") && e.contains(&*dir.to_string_lossy()),
        "{e}"
    );
    saved(&dir);
    let blob = dir.join(&manifest_of(&dir).keyframes[1].data.path);
    std::fs::remove_file(&blob).unwrap();
    let e = err(&dir, None);
    assert!(
        e.contains(&*blob.to_string_lossy()) && e.contains("missing"),
        "{e}"
    );
    std::fs::remove_file(dir.join("manifest.json")).unwrap();
    let e = err(&dir, None);
    assert!(e.contains("manifest.json: missing"), "{e}");
}

#[test]
fn a_truncated_file_or_manifest_is_named_with_the_size_expected() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("map");
    saved(&dir);
    let entry = manifest_of(&dir).keyframes[2].image.clone();
    let png = dir.join(&entry.path);
    let bytes = std::fs::read(&png).unwrap();
    std::fs::write(&png, &bytes[..bytes.len() / 2]).unwrap();
    let e = err(&dir, None);
    assert!(
        e.contains(&*png.to_string_lossy())
            && e.contains(&format!("expected {}", entry.bytes))
            && e.contains("truncated"),
        "{e}"
    );
    let manifest = dir.join("manifest.json");
    let text = std::fs::read(&manifest).unwrap();
    std::fs::write(&manifest, &text[..text.len() - 40]).unwrap();
    let e = err(&dir, None);
    assert!(e.contains("manifest.json") && e.contains("not JSON"), "{e}");
}

#[test]
fn a_corrupt_file_fails_its_checksum() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("map");
    saved(&dir);
    let entry = manifest_of(&dir).keyframes[0].data.clone();
    let blob = dir.join(&entry.path);
    let mut bytes = std::fs::read(&blob).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0x40;
    std::fs::write(&blob, &bytes).unwrap();
    let e = err(&dir, None);
    assert!(
        e.contains(&*blob.to_string_lossy())
            && e.contains("sha256")
            && e.contains(&entry.sha256)
            && e.contains("corrupt"),
        "{e}"
    );
}

#[test]
fn another_format_version_or_model_is_refused_naming_both() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("map");
    saved(&dir);
    let e = err(&dir, Some("sha256:another-model"));
    assert!(
        e.contains("manifest.json")
            && e.contains("sha256:test-model")
            && e.contains("sha256:another-model"),
        "{e}"
    );
    let path = dir.join("manifest.json");
    let mut value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    value["version"] = 2.into();
    value["something_new"] = "v2 field".into();
    std::fs::write(&path, serde_json::to_vec(&value).unwrap()).unwrap();
    let e = err(&dir, None);
    assert!(
        e.contains("manifest.json") && e.contains("version 2, expected 1"),
        "{e}"
    );
    value["format"] = "something-else".into();
    std::fs::write(&path, serde_json::to_vec(&value).unwrap()).unwrap();
    let e = err(&dir, None);
    assert!(e.contains("expected `imd-keyframe-map`"), "{e}");
}

#[test]
fn a_blob_swapped_for_another_valid_one_is_caught_by_its_contents() {
    // A manifest edited by hand to point one keyframe's data at another's (checksum and size
    // updated): the depth no longer has the image's size.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("map");
    let mut m = map(1, 2, 40, 30);
    m.keyframes[1] = keyframe(1, 1, 20, 10);
    save(&m, &dir).unwrap();
    let path = dir.join("manifest.json");
    let mut manifest = manifest_of(&dir);
    manifest.keyframes[0].data = manifest.keyframes[1].data.clone();
    std::fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let e = err(&dir, None);
    assert!(e.contains("depth_mm") && e.contains(".safetensors"), "{e}");
    // A path leaving the folder is refused before anything is read.
    manifest.keyframes[0].data.path = "../../etc/passwd".into();
    std::fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let e = err(&dir, None);
    assert!(e.contains("expected a path inside the map folder"), "{e}");
}

#[test]
fn model_identity_changes_with_the_heads_and_the_extra() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("imd.yaml"), "a: 1\n").unwrap();
    std::fs::create_dir(dir.join("image_encoder")).unwrap();
    std::fs::write(dir.join("image_encoder/w.safetensors"), vec![1u8; 3000]).unwrap();
    let a = model_identity(dir, "full").unwrap();
    assert_eq!(a, model_identity(dir, "full").unwrap());
    assert_ne!(a, model_identity(dir, "zero_shot").unwrap());
    std::fs::write(dir.join("heads.safetensors"), [0u8; 10]).unwrap();
    let b = model_identity(dir, "full").unwrap();
    assert_ne!(a, b);
    std::fs::write(dir.join("image_encoder/w.safetensors"), vec![2u8; 3000]).unwrap();
    assert_ne!(b, model_identity(dir, "full").unwrap());
    assert!(a.starts_with("sha256:"));
}

/// The variable that turns [`save_loop_child`] into a process that saves forever.
const CHILD_DIR: &str = "IMD_MAP_SAVE_LOOP_DIR";

/// Not a test on its own: run by [`a_save_killed_at_any_moment_leaves_a_loadable_map`] as a
/// child process that saves maps of changing content until it is killed.
#[test]
fn save_loop_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let dir = Path::new(&dir);
    for version in 2.. {
        // Different sizes so every version writes different blobs and drops the old ones.
        save(&map(version, 2 + (version as u32 % 4), 160, 120), dir).unwrap();
    }
}

#[test]
fn a_save_killed_at_any_moment_leaves_a_loadable_map() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("map");
    save(&map(1, 3, 160, 120), &dir).unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut versions_seen = std::collections::BTreeSet::new();
    for round in 0..12u64 {
        let mut child = std::process::Command::new(&exe)
            .args([
                "--exact",
                "pipeline::map::tests::save_loop_child",
                "--test-threads",
                "1",
            ])
            .env(CHILD_DIR, &dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Kill after 0.1–0.7 s (a save takes ~0.1 s in a debug build, after the process
        // starts): mid-blob, mid-manifest, between the rename and the cleanup.
        std::thread::sleep(Duration::from_millis(100 + (round * 97) % 600));
        child.kill().unwrap();
        child.wait().unwrap();
        let m = load(&dir, Some("sha256:test-model"))
            .unwrap_or_else(|e| panic!("round {round}: the map does not load after a kill: {e}"));
        // A whole map of one version, never a mix.
        let version = m.keyframes[0].id.stamp.sec;
        assert!(m.keyframes.iter().all(|k| k.id.stamp.sec == version));
        let expected = if version == 1 {
            3
        } else {
            2 + (version as usize % 4)
        };
        assert_eq!(
            m.keyframes.len(),
            expected,
            "round {round}, version {version}"
        );
        versions_seen.insert(version);
    }
    // The child got to save some versions (the kills did not all land before its first save).
    assert!(versions_seen.iter().any(|v| *v > 1), "{versions_seen:?}");
}
