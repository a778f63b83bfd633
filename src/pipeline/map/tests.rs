//! Round trip, every bad-map case, and a save killed at random moments.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use image::RgbImage;
use nalgebra::{Isometry3, Matrix6, Vector3};

use safetensors::Dtype;

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
        depth: Some(MapDepth::Dense(Arc::new(
            DepthMap::new(w, h, depth).unwrap(),
        ))),
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
    save(&m, dir, &Replace::AnyMap).unwrap();
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
        assert_eq!(a.depth, b.depth);
        assert!((a.pose.pose.translation.vector - b.pose.pose.translation.vector).norm() < 1e-12);
        assert!(a.pose.pose.rotation.angle_to(&b.pose.pose.rotation) < 1e-12);
        assert_eq!(a.pose.covariance, b.pose.covariance);
    }
    // Saving again over it rewrites nothing and removes nothing; a smaller map removes the
    // blobs of the keyframes it dropped.
    let own = Replace::Own(Some(sha256_hex(
        &std::fs::read(dir.join(MANIFEST_FILE)).unwrap(),
    )));
    let again = save(&m, &dir, &own).unwrap();
    assert_eq!((again.written, again.removed), (0, 0));
    let mut smaller = m.clone();
    smaller.keyframes.truncate(1);
    let r = save(&smaller, &dir, &Replace::Own(Some(again.manifest_sha256))).unwrap();
    assert_eq!((r.written, r.removed), (0, 4));
    assert_eq!(load(&dir, None).unwrap().keyframes.len(), 1);
    assert_eq!(std::fs::read_dir(dir.join("keyframes")).unwrap().count(), 2);
}

/// Saving replaces a map only when it is this process's own last save or the user asked; a
/// folder with other files is never written into; the refused map stays whole.
#[test]
fn saving_never_replaces_a_map_or_files_it_was_not_asked_to() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("map");
    let first = save(&map(1, 3, 40, 30), &dir, &Replace::Own(None)).unwrap();
    let other = map(2, 2, 40, 30);
    let files = |d: &Path| std::fs::read_dir(d.join("keyframes")).unwrap().count();
    for refused in [Replace::Own(None), Replace::Own(Some("0".repeat(64)))] {
        let e = save(&other, &dir, &refused).expect_err("another run's map must stay");
        let text = e.to_string();
        assert!(matches!(e, MapError::Exists { .. }), "{text}");
        assert!(
            text.contains("manifest.json")
                && text.contains("3 keyframe(s)")
                && text.contains("map.overwrite"),
            "{text}"
        );
        assert_eq!(load(&dir, None).unwrap().keyframes.len(), 3);
        assert_eq!(files(&dir), 6);
    }
    // Its own last save, or any map when asked.
    let second = save(&other, &dir, &Replace::Own(Some(first.manifest_sha256))).unwrap();
    assert_eq!(load(&dir, None).unwrap().keyframes.len(), 2);
    assert_ne!(second.manifest_sha256, "");
    save(&map(3, 1, 40, 30), &dir, &Replace::AnyMap).unwrap();
    assert_eq!(load(&dir, None).unwrap().keyframes.len(), 1);
    // A manifest that does not parse is still somebody's map.
    std::fs::write(dir.join(MANIFEST_FILE), b"{ not json").unwrap();
    let e = save(&other, &dir, &Replace::Own(None))
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not parse"), "{e}");

    // A folder with anything else in it: refused even when replacing maps is allowed, its
    // files untouched.
    let home = tmp.path().join("home");
    std::fs::create_dir_all(home.join("keyframes")).unwrap();
    std::fs::write(home.join("keyframes/holiday.png"), b"x").unwrap();
    std::fs::write(home.join("notes.txt"), b"mine").unwrap();
    for replace in [Replace::Own(None), Replace::AnyMap] {
        let e = save(&other, &home, &replace).expect_err("not a map folder");
        assert!(
            matches!(e, MapError::NotAMap { ref entry, .. } if entry == "notes.txt"),
            "{e}"
        );
    }
    assert!(home.join("keyframes/holiday.png").exists());
    assert!(!home.join(MANIFEST_FILE).exists());

    // An empty folder, or the debris of a first save that died before its manifest: fine.
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    save(&other, &empty, &Replace::Own(None)).unwrap();
    let debris = tmp.path().join("debris");
    std::fs::create_dir_all(debris.join("keyframes")).unwrap();
    std::fs::write(debris.join("keyframes/abc.png.tmp"), b"partial").unwrap();
    std::fs::write(debris.join("manifest.json.tmp"), b"partial").unwrap();
    save(&other, &debris, &Replace::Own(None)).unwrap();
    assert_eq!(load(&debris, None).unwrap().keyframes.len(), 2);
    assert_eq!(files(&debris), 4, "the debris is removed");
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
    value["version"] = 3.into();
    std::fs::write(&path, serde_json::to_vec(&value).unwrap()).unwrap();
    let e = err(&dir, None);
    assert!(
        e.contains("manifest.json")
            && e.contains("format version 3, expected 2")
            && e.contains("versions 1 to 2"),
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
    save(&m, &dir, &Replace::AnyMap).unwrap();
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
const CHILD_STARTED: &str = "IMD_MAP_SAVE_LOOP_STARTED";

/// Not a test on its own: run by [`a_save_killed_at_any_moment_leaves_a_loadable_map`] as a
/// child process that saves maps of changing content until it is killed.
#[test]
fn save_loop_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let dir = Path::new(&dir);
    // Tell the parent the loop starts (process start-up varies with the machine's load).
    if let Ok(started) = std::env::var(CHILD_STARTED) {
        std::fs::write(started, b"").unwrap();
    }
    for version in 2.. {
        // Different sizes so every version writes different blobs and drops the old ones.
        save(
            &map(version, 2 + (version as u32 % 4), 160, 120),
            dir,
            &Replace::AnyMap,
        )
        .unwrap();
    }
}

#[test]
fn a_save_killed_at_any_moment_leaves_a_loadable_map() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("map");
    save(&map(1, 3, 160, 120), &dir, &Replace::AnyMap).unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut versions_seen = std::collections::BTreeSet::new();
    let started = tmp.path().join("started");
    for round in 0..12u64 {
        let _ = std::fs::remove_file(&started);
        let mut child = std::process::Command::new(&exe)
            .args([
                "--exact",
                "pipeline::map::tests::save_loop_child",
                "--test-threads",
                "1",
            ])
            .env(CHILD_DIR, &dir)
            .env(CHILD_STARTED, &started)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let t = std::time::Instant::now();
        while !started.exists() && t.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(5));
        }
        // Kill 0.1–0.7 s into the loop (a save takes ~0.1 s in a debug build): mid-blob,
        // mid-manifest, between the rename and the cleanup.
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

/// A stereo keyframe: `n` points (every number a multiple of 1/8, exact in F32, so the round
/// trip compares equal) and a rectified or a general rig.
fn stereo_keyframe(i: u32, n: usize, rectified: bool) -> MapKeyframe {
    use crate::geometry::{CameraPoint, PixelPoint, RelativePose, StereoRig};
    let (w, h) = (40, 30);
    let mut k = keyframe(1, i, w, h);
    k.model = CameraModel::pinhole(50.0, 50.0, 20.0, 15.0, w, h);
    let rig = if rectified {
        let p = |tx: f64| {
            [
                50.0, 0.0, 20.0, tx, 0.0, 50.0, 15.0, 0.0, 0.0, 0.0, 1.0, 0.0,
            ]
        };
        StereoRig::from_projections(&p(0.0), &p(-50.0 * 0.125), w, h).unwrap()
    } else {
        let right = CameraModel::pinhole(52.0, 51.0, 19.0, 16.0, w, h);
        let pose = RelativePose::new(
            nalgebra::Rotation3::from_euler_angles(0.01, -0.02, 0.005),
            Vector3::new(-0.125, 0.0078125, 0.0),
        );
        StereoRig::from_extrinsics(k.model, right, pose).unwrap()
    };
    let eighth = |v: usize| v as f64 / 8.0;
    let points: Vec<CameraPoint> = (0..n)
        .map(|j| CameraPoint::new(eighth(j % 7) - 0.5, eighth(j % 5) - 0.25, 1.0 + eighth(j)))
        .collect();
    let left = (0..n)
        .map(|j| PixelPoint::new(eighth(8 * (j % 40)) + 0.25, eighth(8 * (j % 30))))
        .collect();
    let right = (0..n)
        .map(|j| PixelPoint::new(eighth(8 * (j % 40)) - 2.5, eighth(8 * (j % 30)) + 0.125))
        .collect();
    k.depth = Some(MapDepth::Stereo(Arc::new(StereoPoints {
        points,
        left,
        right,
        rig,
    })));
    k
}

fn stereo_map() -> KeyframeMap {
    let mut m = map(1, 3, 40, 30);
    m.keyframes[1] = stereo_keyframe(1, 25, true);
    m.keyframes[2] = stereo_keyframe(2, 12, false);
    m
}

#[test]
fn a_stereo_keyframe_round_trips_with_its_points_and_rig() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("map");
    let m = stereo_map();
    save(&m, &dir, &Replace::AnyMap).unwrap();
    let manifest = manifest_of(&dir);
    assert_eq!(manifest.version, FORMAT_VERSION);
    assert_eq!(
        manifest
            .keyframes
            .iter()
            .map(|k| (
                k.depth.as_str(),
                k.stereo.as_ref().map(|s| (s.points, s.rectified))
            ))
            .collect::<Vec<_>>(),
        [
            ("16UC1", None),
            ("stereo", Some((25, true))),
            ("stereo", Some((12, false)))
        ]
    );
    let back = load(&dir, None).unwrap();
    assert_eq!(m.keyframes[0].depth, back.keyframes[0].depth);
    for (a, b) in m.keyframes.iter().zip(&back.keyframes).skip(1) {
        let (Some(MapDepth::Stereo(a)), Some(MapDepth::Stereo(b))) = (&a.depth, &b.depth) else {
            panic!("keyframe {} lost its stereo points", a.id)
        };
        // Every number of the blob is exact in F32; the rig's rotation goes through a
        // quaternion in decimal.
        assert_eq!(
            (&a.points, &a.left, &a.right),
            (&b.points, &b.left, &b.right)
        );
        assert_eq!((a.rig.left, a.rig.right), (b.rig.left, b.rig.right));
        let (ra, rb) = (&a.rig.right_from_left, &b.rig.right_from_left);
        assert!((ra.rotation.matrix() - rb.rotation.matrix()).norm() < 1e-12);
        assert!((ra.translation - rb.translation).norm() < 1e-15);
    }
    // The loaded points become the tracker's stereo depth, indexed with the loading run's
    // radius, and keep the rig's kind (the pose refinement takes the disparity path for the
    // rectified rig only).
    for (k, kind) in [
        (
            &back.keyframes[1],
            crate::geometry::stereo::RigKind::Rectified,
        ),
        (
            &back.keyframes[2],
            crate::geometry::stereo::RigKind::General,
        ),
    ] {
        let Some(MapDepth::Stereo(s)) = &k.depth else {
            panic!("keyframe {} is not stereo", k.id)
        };
        assert_eq!(s.rig.kind(), kind);
        let crate::pipeline::KeyframeDepth::Stereo(d) = s.keyframe_depth(2.0).unwrap() else {
            panic!("not a stereo keyframe depth")
        };
        assert_eq!(
            (d.index.len(), d.points.len()),
            (s.points.len(), s.points.len())
        );
        assert_eq!(d.rig, s.rig);
    }
}

#[test]
fn a_version_1_map_loads_and_may_not_name_a_stereo_entry() {
    // Version 1 is version 2 without stereo keyframes: a map written before stays usable.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("map");
    let m = saved(&dir);
    let path = dir.join("manifest.json");
    let mut value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    value["version"] = 1.into();
    std::fs::write(&path, serde_json::to_vec(&value).unwrap()).unwrap();
    let back = load(&dir, None).unwrap();
    assert_eq!(back.keyframes.len(), m.keyframes.len());
    assert_eq!(back.keyframes[0].depth, m.keyframes[0].depth);
    // A stereo keyframe in a manifest claiming version 1 is refused.
    save(&stereo_map(), &dir, &Replace::AnyMap).unwrap();
    let mut value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    value["version"] = 1.into();
    std::fs::write(&path, serde_json::to_vec(&value).unwrap()).unwrap();
    let e = err(&dir, None);
    assert!(
        e.contains("manifest.json") && e.contains("keyframes[1]") && e.contains("version 2"),
        "{e}"
    );
}

/// A tensor of a hand-made blob: name, dtype, shape, little-endian bytes.
type Tensor = (&'static str, Dtype, Vec<usize>, Vec<u8>);

/// An edit of a saved manifest.
type ManifestEdit = fn(&mut Manifest);

/// Replace keyframe `i`'s blob by `tensors` (checksum and size updated in the manifest, so
/// only the contents can be wrong).
fn rewrite_blob(dir: &Path, i: usize, tensors: &[Tensor]) {
    use safetensors::tensor::TensorView;
    let views: Vec<_> = tensors
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            (
                *name,
                TensorView::new(*dtype, shape.clone(), bytes).unwrap(),
            )
        })
        .collect();
    let bytes = safetensors::serialize(views, None).unwrap();
    let rel = format!("keyframes/rewritten{i}.safetensors");
    std::fs::write(dir.join(&rel), &bytes).unwrap();
    let mut manifest = manifest_of(dir);
    manifest.keyframes[i].data = disk::FileEntry {
        path: rel,
        bytes: bytes.len() as u64,
        sha256: sha256_hex(&bytes),
    };
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn bad_stereo_points_are_refused_naming_the_file_and_what_was_expected() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("map");
    let n = 25;
    let embedding = || ("embedding", Dtype::F32, vec![16], f32_bytes(&[0.25; 16]));
    let px = |rows: usize| {
        (
            "stereo_left_px",
            Dtype::F32,
            vec![rows, 2],
            f32_bytes(&vec![3.0; rows * 2]),
        )
    };
    let right = |rows: usize| {
        (
            "stereo_right_px",
            Dtype::F32,
            vec![rows, 2],
            f32_bytes(&vec![1.0; rows * 2]),
        )
    };
    let points = |v: Vec<f32>| {
        (
            "stereo_points_m",
            Dtype::F32,
            vec![v.len() / 3, 3],
            f32_bytes(&v),
        )
    };
    let good_points = || vec![1.5f32; n * 3];
    let cases: Vec<(&str, Vec<Tensor>, &str)> = vec![
        (
            "shapes that disagree",
            vec![embedding(), px(n), right(n - 1), points(good_points())],
            "`stereo_right_px` is F32 [24, 2], expected F32 [25, 2]",
        ),
        (
            "a NaN",
            vec![
                embedding(),
                px(n),
                right(n),
                points({
                    let mut v = good_points();
                    v[3 * 7 + 1] = f32::NAN;
                    v
                }),
            ],
            "`stereo_points_m`[7] holds NaN, expected finite numbers",
        ),
        (
            "a point behind the camera",
            vec![
                embedding(),
                px(n),
                right(n),
                points({
                    let mut v = good_points();
                    v[3 * 4 + 2] = -0.5;
                    v
                }),
            ],
            "`stereo_points_m`[4] has depth -0.5 m, expected points in front",
        ),
        (
            "a missing tensor",
            vec![embedding(), px(n), right(n)],
            "expected a `stereo_points_m` tensor",
        ),
        (
            "another dtype",
            vec![
                embedding(),
                (
                    "stereo_left_px",
                    Dtype::F64,
                    vec![n, 1],
                    f32_bytes(&vec![3.0; n * 2]),
                ),
                right(n),
                points(good_points()),
            ],
            "`stereo_left_px` is F64 [25, 1], expected F32 [25, 2]",
        ),
    ];
    for (what, tensors, expected) in cases {
        save(&stereo_map(), &dir, &Replace::AnyMap).unwrap();
        rewrite_blob(&dir, 1, &tensors);
        let e = err(&dir, None);
        assert!(
            e.contains("rewritten1.safetensors") && e.contains(expected),
            "{what}: {e}"
        );
    }
    // The blob is right, the manifest's count is not (n mismatch).
    save(&stereo_map(), &dir, &Replace::AnyMap).unwrap();
    let path = dir.join("manifest.json");
    let mut manifest = manifest_of(&dir);
    manifest.keyframes[2].stereo.as_mut().unwrap().points = 13;
    std::fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let e = err(&dir, None);
    assert!(
        e.contains(".safetensors")
            && e.contains("expected F32 [13, 2] (the manifest's stereo.points = 13)"),
        "{e}"
    );
}

/// Manifest entries: depth `stereo` without the rig, a rig on a depth-image keyframe, a right
/// camera with a negative focal length, a rectified rig that rotates.
#[test]
fn bad_stereo_manifest_entries_are_refused_naming_the_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("map");
    let path = dir.join("manifest.json");
    let edits: Vec<(ManifestEdit, &str)> = vec![
        (
            |m| m.keyframes[1].stereo = None,
            "keyframes[1] has depth `stereo` without a `stereo` entry",
        ),
        (
            |m| m.keyframes[0].stereo = m.keyframes[1].stereo.clone(),
            "keyframes[0] has depth `16UC1` and a `stereo` entry",
        ),
        (
            |m| {
                m.keyframes[2]
                    .stereo
                    .as_mut()
                    .unwrap()
                    .right_camera_model
                    .intrinsics
                    .fx = -52.0
            },
            "stereo rig right camera",
        ),
        (
            |m| {
                m.keyframes[1].stereo.as_mut().unwrap().right_from_left_xyzw =
                    [0.1, 0.0, 0.0, 0.995]
            },
            "rectified with a rotation",
        ),
    ];
    for (edit, expected) in edits {
        save(&stereo_map(), &dir, &Replace::AnyMap).unwrap();
        let mut manifest = manifest_of(&dir);
        edit(&mut manifest);
        std::fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();
        let e = err(&dir, None);
        assert!(e.contains("manifest.json") && e.contains(expected), "{e}");
    }
}
