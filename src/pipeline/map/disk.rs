//! The map directory:
//!
//! ```text
//! MAP/
//!   manifest.json              format, version, model identity, map frame, keyframes
//!   keyframes/<sha256>.png     a keyframe's image (8-bit RGB)
//!   keyframes/<sha256>.safetensors   its embedding (F32 [n]) and depth (U16 [h, w] mm or
//!                                    F32 [h, w] m), or a stereo keyframe's points
//!                                    ([`super::stereo`])
//! ```
//!
//! Each keyframe entry in the manifest lists its two files with their size and sha256, its
//! identity, optical frame, camera model and pose (position, orientation, covariance) in the
//! map frame, and a stereo keyframe's rig (`stereo`, from format version 2 on).
//!
//! Saving is atomic without ever removing the map being replaced: blobs are named by their
//! content's hash, each written to a temporary name, synced and renamed; the new manifest is
//! written the same way and renamed over the old one (the one atomic step); only then are the
//! blobs no manifest lists removed. A crash at any point leaves either the old manifest with all
//! its blobs or the new one with all of its own.
//!
//! Saving never replaces what the caller did not mean to ([`Replace`]): a folder holding other
//! files than a map's is refused (its `keyframes/` might be someone's), and so is a map this
//! process did not write there, unless the user asked to replace maps (`map.overwrite`,
//! `imd map build --overwrite`).

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use nalgebra::{Isometry3, Matrix6, Quaternion, Translation3, UnitQuaternion};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use super::stereo::{self, ManifestStereo};
use super::{
    sha256_hex, KeyframeMap, MapDepth, MapError, MapKeyframe, FORMAT_NAME, FORMAT_VERSION,
    OLDEST_FORMAT_VERSION, STEREO_DEPTH, STEREO_SINCE_VERSION,
};
use crate::geometry::CameraModel;
use crate::io::image::{DepthBuffer, DepthMap};
use crate::io::msgs::builtin_interfaces::Time;
use crate::pipeline::odom::PoseWithCov;
use crate::pipeline::KeyframeId;

/// The manifest's file name.
pub const MANIFEST: &str = "manifest.json";
/// The blobs' folder.
const BLOBS: &str = "keyframes";
const TMP_SUFFIX: &str = ".tmp";

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// [`FORMAT_VERSION`] when written by this build.
    pub version: u32,
    /// Identity of the model that produced the embeddings.
    pub model: String,
    /// The frame the poses are in.
    pub frame_id: String,
    /// The keyframes.
    pub keyframes: Vec<ManifestKeyframe>,
}

/// One keyframe's entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestKeyframe {
    /// The camera's configured name.
    pub camera: String,
    /// The image's stamp.
    pub stamp: Time,
    /// The camera's optical frame.
    pub frame_id: String,
    /// Intrinsics, distortion, size.
    pub camera_model: CameraModel,
    /// Optical frame position in the map frame, metres.
    pub position_m: [f64; 3],
    /// Optical frame orientation in the map frame.
    pub orientation_xyzw: [f64; 4],
    /// Covariance of the pose, ROS order, row-major.
    pub covariance: Vec<f64>,
    /// Embedding length.
    pub embedding_dim: usize,
    /// `none`, `16UC1`, `32FC1` or `stereo`.
    pub depth: String,
    /// A stereo keyframe's rig and point count (with `depth: stereo` only; version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stereo: Option<ManifestStereo>,
    /// The PNG image.
    pub image: FileEntry,
    /// The safetensors blob (embedding, depth).
    pub data: FileEntry,
}

/// A file of the map, as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Relative to the map folder.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Lowercase hex sha256.
    pub sha256: String,
}

/// What [`save`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaveReport {
    /// Keyframes in the map.
    pub keyframes: usize,
    /// Bytes of the map's files (manifest included).
    pub bytes: u64,
    /// Blobs written (others were there already, same content).
    pub written: usize,
    /// Files of the previous map removed (no longer listed).
    pub removed: usize,
    /// sha256 of the manifest written: names this save for [`Replace::Own`].
    pub manifest_sha256: String,
}

/// What [`save`] may replace in its folder (a missing or empty folder is always fine).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replace {
    /// A map only when it is the one this process saved there last (its manifest's sha256,
    /// [`SaveReport::manifest_sha256`]); `None`: no map at all.
    Own(Option<String>),
    /// Any map: the user asked to replace maps.
    AnyMap,
}

impl Replace {
    /// Any map when the user asked (`overwrite`: `map.overwrite`, `--overwrite`), else only
    /// the map whose manifest sha256 is `own` (this run's last save there).
    pub fn new(overwrite: bool, own: Option<String>) -> Self {
        if overwrite {
            Replace::AnyMap
        } else {
            Replace::Own(own)
        }
    }
}

/// Check that [`save`] into `dir` may go ahead under `replace` (see the module doc); callers
/// with a long run before the save check first, so a refusal comes before the work.
pub fn check_replaceable(dir: &Path, replace: &Replace) -> Result<(), MapError> {
    let entries = match std::fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(MapError::io(dir, e)),
        Ok(entries) => entries,
    };
    let mut has_manifest = false;
    for entry in entries {
        let name = entry
            .map_err(|e| MapError::io(dir, e))?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name == MANIFEST {
            has_manifest = true;
        } else if name != BLOBS && !name.starts_with(&format!("{MANIFEST}{TMP_SUFFIX}")) {
            return Err(MapError::NotAMap {
                path: dir.display().to_string(),
                entry: name,
            });
        }
    }
    // No manifest: empty, or what a first save that crashed before its manifest left.
    if !has_manifest {
        return Ok(());
    }
    let path = dir.join(MANIFEST);
    let bytes = std::fs::read(&path).map_err(|e| MapError::io(&path, e))?;
    match replace {
        Replace::AnyMap => Ok(()),
        Replace::Own(Some(own)) if *own == sha256_hex(&bytes) => Ok(()),
        Replace::Own(_) => Err(MapError::Exists {
            path: path.display().to_string(),
            found: match serde_json::from_slice::<Manifest>(&bytes) {
                Ok(m) => format!(
                    "a map of {} keyframe(s) (model {})",
                    m.keyframes.len(),
                    m.model
                ),
                Err(_) => "a manifest that does not parse".into(),
            },
        }),
    }
}

/// Save `map` into `dir` atomically when `replace` allows it (see the module doc); creates
/// `dir` when missing.
pub fn save(map: &KeyframeMap, dir: &Path, replace: &Replace) -> Result<SaveReport, MapError> {
    check_replaceable(dir, replace)?;
    let blobs = dir.join(BLOBS);
    std::fs::create_dir_all(&blobs).map_err(|e| MapError::io(&blobs, e))?;
    let mut report = SaveReport {
        keyframes: map.keyframes.len(),
        ..Default::default()
    };
    let mut listed = BTreeSet::new();
    let mut entries = Vec::with_capacity(map.keyframes.len());
    for kf in &map.keyframes {
        let png = encode_png(kf, dir)?;
        let data = encode_data(kf, dir)?;
        let image = write_blob(dir, &png, "png", &mut report)?;
        let data = write_blob(dir, &data, "safetensors", &mut report)?;
        listed.insert(image.path.clone());
        listed.insert(data.path.clone());
        report.bytes += image.bytes + data.bytes;
        let t = kf.pose.pose.translation.vector;
        let q = kf.pose.pose.rotation;
        entries.push(ManifestKeyframe {
            camera: kf.id.camera.clone(),
            stamp: kf.id.stamp,
            frame_id: kf.frame_id.clone(),
            camera_model: kf.model,
            position_m: [t.x, t.y, t.z],
            orientation_xyzw: [q.i, q.j, q.k, q.w],
            covariance: kf.pose.covariance_array().to_vec(),
            embedding_dim: kf.embedding.len(),
            depth: kf
                .depth
                .as_ref()
                .map_or("none", |d| d.encoding())
                .to_string(),
            stereo: match &kf.depth {
                Some(MapDepth::Stereo(s)) => Some(ManifestStereo::of(s)),
                _ => None,
            },
            image,
            data,
        });
    }
    sync_dir(&blobs)?;
    let manifest = Manifest {
        format: FORMAT_NAME.into(),
        version: FORMAT_VERSION,
        model: map.model.clone(),
        frame_id: map.frame_id.clone(),
        keyframes: entries,
    };
    let text = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| MapError::invalid(&dir.join(MANIFEST), e.to_string()))?;
    report.bytes += text.len() as u64;
    report.manifest_sha256 = sha256_hex(&text);
    write_synced(&dir.join(MANIFEST), &text)?;
    sync_dir(dir)?;
    // The new manifest is in place: what it does not list is garbage now (and so are the
    // temporary files of a save that crashed).
    if let Ok(top) = std::fs::read_dir(dir) {
        for entry in top.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(&format!("{MANIFEST}{TMP_SUFFIX}")) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    let existing = std::fs::read_dir(&blobs).map_err(|e| MapError::io(&blobs, e))?;
    for entry in existing.flatten() {
        let rel = format!("{BLOBS}/{}", entry.file_name().to_string_lossy());
        if !listed.contains(&rel) && std::fs::remove_file(entry.path()).is_ok() {
            report.removed += 1;
        }
    }
    Ok(report)
}

/// Read and check `dir/manifest.json`: present, JSON, this format and version.
pub fn load_manifest(dir: &Path) -> Result<Manifest, MapError> {
    let path = dir.join(MANIFEST);
    if !dir.is_dir() {
        return Err(MapError::Missing {
            path: dir.display().to_string(),
            expected: format!("a map folder with {MANIFEST} (written by `imd map build`)"),
        });
    }
    let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => MapError::Missing {
            path: path.display().to_string(),
            expected: "the map's manifest".into(),
        },
        _ => MapError::io(&path, e),
    })?;
    // Format and version first, so a newer manifest says so instead of failing to parse.
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        MapError::invalid(
            &path,
            format!("not JSON ({e}); expected an {FORMAT_NAME} manifest (truncated?)"),
        )
    })?;
    let format = value.get("format").and_then(|v| v.as_str()).unwrap_or("");
    if format != FORMAT_NAME {
        return Err(MapError::invalid(
            &path,
            format!("format `{format}`, expected `{FORMAT_NAME}`"),
        ));
    }
    let version = value.get("version").and_then(|v| v.as_u64()).unwrap_or(0);
    if !(OLDEST_FORMAT_VERSION as u64..=FORMAT_VERSION as u64).contains(&version) {
        return Err(MapError::Version {
            path: path.display().to_string(),
            found: version.min(u32::MAX as u64) as u32,
            expected: FORMAT_VERSION,
            oldest: OLDEST_FORMAT_VERSION,
        });
    }
    let manifest: Manifest = serde_json::from_value(value).map_err(|e| {
        MapError::invalid(&path, format!("{e}; expected a version {version} manifest"))
    })?;
    for (i, k) in manifest.keyframes.iter().enumerate() {
        if k.covariance.len() != 36 {
            return Err(MapError::invalid(
                &path,
                format!(
                    "keyframes[{i}].covariance has {} numbers, expected 36",
                    k.covariance.len()
                ),
            ));
        }
        if k.stereo.is_some() && manifest.version < STEREO_SINCE_VERSION {
            return Err(MapError::invalid(
                &path,
                format!(
                    "keyframes[{i}] has a `stereo` entry, which format version {} does not \
                     have (stereo keyframes: version {STEREO_SINCE_VERSION} and later)",
                    manifest.version
                ),
            ));
        }
        if (k.depth == STEREO_DEPTH) != k.stereo.is_some() {
            return Err(MapError::invalid(
                &path,
                format!(
                    "keyframes[{i}] has depth `{}` {} a `stereo` entry, expected the entry with \
                     depth `{STEREO_DEPTH}` only",
                    k.depth,
                    if k.stereo.is_some() { "and" } else { "without" }
                ),
            ));
        }
        for f in [&k.image, &k.data] {
            if !is_plain_relative(&f.path) {
                return Err(MapError::invalid(
                    &path,
                    format!(
                        "keyframes[{i}] names `{}`, expected a path inside the map folder",
                        f.path
                    ),
                ));
            }
        }
    }
    Ok(manifest)
}

/// Load the map in `dir`: every file present, of its size and checksum, decodable and
/// consistent with the manifest. With `expected_model`, the map's embeddings must come from
/// that model.
pub fn load(dir: &Path, expected_model: Option<&str>) -> Result<KeyframeMap, MapError> {
    let manifest = load_manifest(dir)?;
    if let Some(expected) = expected_model {
        if manifest.model != expected {
            return Err(MapError::Model {
                path: dir.join(MANIFEST).display().to_string(),
                found: manifest.model,
                expected: expected.to_string(),
            });
        }
    }
    let keyframes = manifest
        .keyframes
        .iter()
        .map(|k| load_keyframe(dir, k))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(KeyframeMap {
        model: manifest.model,
        frame_id: manifest.frame_id,
        keyframes,
    })
}

fn load_keyframe(dir: &Path, k: &ManifestKeyframe) -> Result<MapKeyframe, MapError> {
    let (png_path, png) = read_checked(dir, &k.image)?;
    let image = image::load_from_memory_with_format(&png, image::ImageFormat::Png)
        .map_err(|e| MapError::invalid(&png_path, format!("{e}; expected a PNG image")))?
        .into_rgb8();
    let (w, h) = image.dimensions();
    let m = &k.camera_model;
    if (m.width, m.height) != (0, 0) && (m.width, m.height) != (w, h) {
        return Err(MapError::invalid(
            &png_path,
            format!(
                "{w}×{h} pixels, expected {}×{} (the keyframe's camera model)",
                m.width, m.height
            ),
        ));
    }
    let (data_path, data) = read_checked(dir, &k.data)?;
    let tensors = SafeTensors::deserialize(&data)
        .map_err(|e| MapError::invalid(&data_path, format!("{e}; expected safetensors")))?;
    let embedding = load_embedding(&tensors, &data_path, k)?;
    let depth = match &k.stereo {
        Some(entry) => Some(MapDepth::Stereo(Arc::new(stereo::load(
            &tensors,
            entry,
            &k.camera_model,
            &data_path,
            &dir.join(MANIFEST),
            &k.camera,
        )?))),
        None => load_depth(dir, &tensors, &data_path, k, (w, h))?.map(MapDepth::Dense),
    };
    let pose = keyframe_pose(dir, k)?;
    Ok(MapKeyframe {
        id: KeyframeId {
            camera: k.camera.clone(),
            stamp: k.stamp,
        },
        frame_id: k.frame_id.clone(),
        model: k.camera_model,
        image: Arc::new(image),
        embedding,
        depth,
        pose,
    })
}

/// The keyframe's global descriptor (`embedding`, F32 `[embedding_dim]`; none when the
/// dimension is 0).
fn load_embedding(
    tensors: &SafeTensors,
    data_path: &Path,
    k: &ManifestKeyframe,
) -> Result<Vec<f32>, MapError> {
    let embedding: Vec<f32> = match tensors.tensor("embedding") {
        Ok(t) if t.dtype() == Dtype::F32 && t.shape() == [k.embedding_dim] => t
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Ok(t) => {
            return Err(MapError::invalid(
                data_path,
                format!(
                    "`embedding` is {:?} {:?}, expected F32 [{}]",
                    t.dtype(),
                    t.shape(),
                    k.embedding_dim
                ),
            ))
        }
        Err(_) if k.embedding_dim == 0 => Vec::new(),
        Err(e) => {
            return Err(MapError::invalid(
                data_path,
                format!("{e}; expected an `embedding` tensor"),
            ))
        }
    };
    Ok(embedding)
}

/// The keyframe's depth (`depth_mm` U16 or `depth_m` F32 at the image's `(w, h)`), when the
/// manifest says it has one.
fn load_depth(
    dir: &Path,
    tensors: &SafeTensors,
    data_path: &Path,
    k: &ManifestKeyframe,
    (w, h): (u32, u32),
) -> Result<Option<Arc<DepthMap>>, MapError> {
    let depth = match k.depth.as_str() {
        "none" => None,
        encoding => {
            let (name, dtype) = match encoding {
                "16UC1" => ("depth_mm", Dtype::U16),
                "32FC1" => ("depth_m", Dtype::F32),
                other => {
                    return Err(MapError::invalid(
                        &dir.join(MANIFEST),
                        format!("depth `{other}`, expected none, 16UC1, 32FC1 or stereo"),
                    ))
                }
            };
            let t = tensors.tensor(name).map_err(|e| {
                MapError::invalid(data_path, format!("{e}; expected a `{name}` tensor"))
            })?;
            if t.dtype() != dtype || t.shape() != [h as usize, w as usize] {
                return Err(MapError::invalid(
                    data_path,
                    format!(
                        "`{name}` is {:?} {:?}, expected {dtype:?} [{h}, {w}] (the image's size)",
                        t.dtype(),
                        t.shape()
                    ),
                ));
            }
            let samples = match dtype {
                Dtype::U16 => DepthBuffer::Millimetres(
                    t.data()
                        .chunks_exact(2)
                        .map(|b| u16::from_le_bytes([b[0], b[1]]))
                        .collect(),
                ),
                _ => DepthBuffer::Metres(
                    t.data()
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect(),
                ),
            };
            let map = DepthMap::new(w, h, samples)
                .map_err(|e| MapError::invalid(data_path, e.to_string()))?;
            Some(Arc::new(map))
        }
    };
    Ok(depth)
}

/// The keyframe's pose in the map: a finite position and a (near-)unit quaternion.
fn keyframe_pose(dir: &Path, k: &ManifestKeyframe) -> Result<PoseWithCov, MapError> {
    let [x, y, z] = k.position_m;
    let [qx, qy, qz, qw] = k.orientation_xyzw;
    let q = Quaternion::new(qw, qx, qy, qz);
    let finite = k.position_m.iter().all(|v| v.is_finite());
    if !(q.norm() > 0.5 && q.norm() < 2.0 && finite) {
        return Err(MapError::invalid(
            &dir.join(MANIFEST),
            format!(
                "keyframe {} has pose {:?} {:?}, expected a finite position and a unit quaternion",
                k.camera, k.position_m, k.orientation_xyzw
            ),
        ));
    }
    Ok(PoseWithCov {
        pose: Isometry3::from_parts(
            Translation3::new(x, y, z),
            UnitQuaternion::from_quaternion(q),
        ),
        covariance: Matrix6::from_row_slice(&k.covariance),
    })
}

/// Read a listed file and check its size and checksum.
fn read_checked(dir: &Path, f: &FileEntry) -> Result<(PathBuf, Vec<u8>), MapError> {
    let path = dir.join(&f.path);
    let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => MapError::Missing {
            path: path.display().to_string(),
            expected: format!("{} bytes the manifest lists", f.bytes),
        },
        _ => MapError::io(&path, e),
    })?;
    if bytes.len() as u64 != f.bytes {
        return Err(MapError::Size {
            path: path.display().to_string(),
            bytes: bytes.len() as u64,
            expected: f.bytes,
        });
    }
    let found = sha256_hex(&bytes);
    if found != f.sha256 {
        return Err(MapError::Checksum {
            path: path.display().to_string(),
            found,
            expected: f.sha256.clone(),
        });
    }
    Ok((path, bytes))
}

fn is_plain_relative(p: &str) -> bool {
    let path = Path::new(p);
    !p.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)))
}

fn encode_png(kf: &MapKeyframe, dir: &Path) -> Result<Vec<u8>, MapError> {
    let mut out = std::io::Cursor::new(Vec::new());
    kf.image
        .write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| MapError::invalid(dir, format!("keyframe {}: PNG: {e}", kf.id)))?;
    Ok(out.into_inner())
}

fn encode_data(kf: &MapKeyframe, dir: &Path) -> Result<Vec<u8>, MapError> {
    let embedding: Vec<u8> = kf.embedding.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut tensors: Vec<(&str, Vec<u8>, Dtype, Vec<usize>)> = Vec::new();
    if !kf.embedding.is_empty() {
        tensors.push(("embedding", embedding, Dtype::F32, vec![kf.embedding.len()]));
    }
    if let Some(MapDepth::Stereo(s)) = &kf.depth {
        tensors.extend(stereo::tensors(s));
    }
    if let Some(MapDepth::Dense(d)) = &kf.depth {
        let shape = vec![d.height() as usize, d.width() as usize];
        match d.samples() {
            DepthBuffer::Millimetres(v) => tensors.push((
                "depth_mm",
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                Dtype::U16,
                shape,
            )),
            DepthBuffer::Metres(v) => tensors.push((
                "depth_m",
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                Dtype::F32,
                shape,
            )),
        }
    }
    let views = tensors
        .iter()
        .map(|(name, bytes, dtype, shape)| {
            TensorView::new(*dtype, shape.clone(), bytes).map(|v| (*name, v))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| MapError::invalid(dir, format!("keyframe {}: {e}", kf.id)))?;
    let info: HashMap<String, String> = [("keyframe".to_string(), kf.id.frame_name())].into();
    safetensors::serialize(views, Some(info))
        .map_err(|e| MapError::invalid(dir, format!("keyframe {}: {e}", kf.id)))
}

/// Write `bytes` as `keyframes/<sha256>.<ext>` unless a file of that size is there already.
fn write_blob(
    dir: &Path,
    bytes: &[u8],
    ext: &str,
    report: &mut SaveReport,
) -> Result<FileEntry, MapError> {
    let sha = sha256_hex(bytes);
    let rel = format!("{BLOBS}/{sha}.{ext}");
    let path = dir.join(&rel);
    // Blobs are only ever renamed into place complete, so the name vouches for the content.
    let present = std::fs::metadata(&path).is_ok_and(|m| m.len() == bytes.len() as u64);
    if !present {
        write_synced(&path, bytes)?;
        report.written += 1;
    }
    Ok(FileEntry {
        path: rel,
        bytes: bytes.len() as u64,
        sha256: sha,
    })
}

/// Write `path` through a synced temporary file renamed over it.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), MapError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!("{TMP_SUFFIX}.{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(MapError::io(path, e));
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), MapError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| MapError::io(dir, e))
}
