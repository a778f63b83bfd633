//! A stereo keyframe in a saved map: the points its stereo pair triangulated, in three tensors
//! of the keyframe's safetensors blob, and the rig that triangulated them, in its manifest
//! entry (`stereo`):
//!
//! ```text
//! stereo_left_px   F32 [n, 2]   each point's pixel in the keyframe (left) image
//! stereo_right_px  F32 [n, 2]   its pixel in the right image
//! stereo_points_m  F32 [n, 3]   the point in the left camera's frame, metres
//! ```
//!
//! `n` is the manifest's `stereo.points`; every number must be finite and every point in
//! front of the camera. F32 keeps a pixel to 1e-4 px and a point 10 m away to 1 µm, far below
//! what the pair measured. The lookup index is not saved: the run that loads the map builds it
//! with its own `stereo.lookup_radius_px`.

use std::path::Path;

use nalgebra::{Quaternion, Rotation3, UnitQuaternion, Vector3};
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use super::MapError;
use crate::geometry::stereo::RigKind;
use crate::geometry::{CameraModel, CameraPoint, Intrinsics, PixelPoint, RelativePose, StereoRig};
use crate::pipeline::metric::{KeyframeDepth, StereoDepth};
use crate::pipeline::PipelineError;

/// Tensor names in the keyframe blob.
pub const LEFT_PX: &str = "stereo_left_px";
/// See [`LEFT_PX`].
pub const RIGHT_PX: &str = "stereo_right_px";
/// See [`LEFT_PX`].
pub const POINTS_M: &str = "stereo_points_m";

/// Points triangulated from a keyframe's stereo pair, as a map keeps them.
#[derive(Debug, Clone, PartialEq)]
pub struct StereoPoints {
    /// The points, metres, left camera frame.
    pub points: Vec<CameraPoint>,
    /// Each point's pixel in the keyframe (left) image.
    pub left: Vec<PixelPoint>,
    /// Each point's pixel in the right image.
    pub right: Vec<PixelPoint>,
    /// The rig that triangulated them (its left camera is the keyframe's).
    pub rig: StereoRig,
}

impl StereoPoints {
    /// What a map keeps of a tracker keyframe's stereo depth.
    pub fn of(depth: &StereoDepth) -> Self {
        StereoPoints {
            points: depth.points.clone(),
            left: depth.left.clone(),
            right: depth.right.clone(),
            rig: depth.rig.clone(),
        }
    }

    /// The tracker's keyframe depth, its lookup within `lookup_radius_px`.
    pub fn keyframe_depth(&self, lookup_radius_px: f64) -> Result<KeyframeDepth, PipelineError> {
        let depth = StereoDepth::new(
            self.points.clone(),
            self.left.clone(),
            self.right.clone(),
            self.rig.clone(),
            lookup_radius_px,
        )?;
        Ok(KeyframeDepth::Stereo(Box::new(depth)))
    }
}

/// A stereo keyframe's `stereo` entry in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestStereo {
    /// Points in the blob (the first dimension of its three tensors).
    pub points: usize,
    /// A rectified rig (the disparity path, from the `P` matrices), else a general one (ray
    /// triangulation, from the extrinsic).
    pub rectified: bool,
    /// The right camera.
    pub right_camera_model: CameraModel,
    /// `X_right = R·X_left + t`: `t`, metres.
    pub right_from_left_m: [f64; 3],
    /// `R` as a quaternion.
    pub right_from_left_xyzw: [f64; 4],
}

impl ManifestStereo {
    /// The entry of `s`.
    pub fn of(s: &StereoPoints) -> Self {
        let t = s.rig.right_from_left.translation;
        let q = UnitQuaternion::from_rotation_matrix(&s.rig.right_from_left.rotation);
        ManifestStereo {
            points: s.points.len(),
            rectified: s.rig.kind() == RigKind::Rectified,
            right_camera_model: s.rig.right,
            right_from_left_m: [t.x, t.y, t.z],
            right_from_left_xyzw: [q.i, q.j, q.k, q.w],
        }
    }

    /// The rig, its left camera `left` (the keyframe's), checked as the tracker checks a rig
    /// from a live camera. Errors name `manifest`.
    fn rig(
        &self,
        left: &CameraModel,
        manifest: &Path,
        keyframe: &str,
    ) -> Result<StereoRig, MapError> {
        let bad = |reason: String| {
            MapError::invalid(
                manifest,
                format!("keyframe {keyframe}: stereo rig {reason}"),
            )
        };
        let r = &self.right_camera_model;
        let k = &r.intrinsics;
        Intrinsics::new(k.fx, k.fy, k.cx, k.cy).map_err(|e| bad(format!("right camera: {e}")))?;
        let [x, y, z] = self.right_from_left_m;
        let [qx, qy, qz, qw] = self.right_from_left_xyzw;
        let q = Quaternion::new(qw, qx, qy, qz);
        if !(q.coords.iter().all(|v| v.is_finite()) && q.norm() > 0.5 && q.norm() < 2.0) {
            return Err(bad(format!(
                "rotation {:?}, expected a unit quaternion",
                self.right_from_left_xyzw
            )));
        }
        let pose = RelativePose::new(
            Rotation3::from(UnitQuaternion::from_quaternion(q)),
            Vector3::new(x, y, z),
        );
        if !self.rectified {
            return StereoRig::from_extrinsics(*left, *r, pose).map_err(|e| bad(e.to_string()));
        }
        // A rectified rig is what its two P matrices say; rebuilding it from them applies the
        // same checks (equal focal lengths and rows, a baseline along −x only).
        let kl = &left.intrinsics;
        let p = |k: &Intrinsics, tx: f64| {
            [
                k.fx, 0.0, k.cx, tx, 0.0, k.fy, k.cy, 0.0, 0.0, 0.0, 1.0, 0.0,
            ]
        };
        if pose.rotation.angle() > 1e-9 {
            return Err(bad(format!(
                "rectified with a rotation of {:.3e} rad, expected none",
                pose.rotation.angle()
            )));
        }
        let rig =
            StereoRig::from_projections(&p(kl, 0.0), &p(k, k.fx * x), left.width, left.height)
                .map_err(|e| bad(e.to_string()))?;
        if rig.left != *left || rig.right != *r {
            return Err(bad(
                "rectified, expected undistorted cameras of the keyframe's size".into(),
            ));
        }
        let off = (rig.right_from_left.translation - pose.translation).norm();
        if off > 1e-9 * pose.translation.norm().max(1.0) {
            return Err(bad(format!(
                "rectified with a translation of {:?} m, expected one along x only",
                self.right_from_left_m
            )));
        }
        Ok(rig)
    }
}

/// The three tensors of `s`: name, little-endian bytes, dtype, shape.
pub fn tensors(s: &StereoPoints) -> Vec<(&'static str, Vec<u8>, Dtype, Vec<usize>)> {
    let f32s = |v: &mut dyn Iterator<Item = f64>| -> Vec<u8> {
        v.flat_map(|x| (x as f32).to_le_bytes()).collect()
    };
    let n = s.points.len();
    vec![
        (
            LEFT_PX,
            f32s(&mut s.left.iter().flat_map(|p| [p.x, p.y])),
            Dtype::F32,
            vec![n, 2],
        ),
        (
            RIGHT_PX,
            f32s(&mut s.right.iter().flat_map(|p| [p.x, p.y])),
            Dtype::F32,
            vec![n, 2],
        ),
        (
            POINTS_M,
            f32s(&mut s.points.iter().flat_map(|p| [p.x, p.y, p.z])),
            Dtype::F32,
            vec![n, 3],
        ),
    ]
}

/// Read a stereo keyframe's points from its blob (`data_path`) as its manifest entry
/// (`manifest`) describes them: every tensor present, F32 of the shape `[n, 2]` / `[n, 3]`,
/// finite, points in front of the camera. Errors name the file and what was expected.
pub fn load(
    tensors: &SafeTensors,
    entry: &ManifestStereo,
    left: &CameraModel,
    data_path: &Path,
    manifest: &Path,
    keyframe: &str,
) -> Result<StereoPoints, MapError> {
    let rig = entry.rig(left, manifest, keyframe)?;
    let n = entry.points;
    let left_px = read(tensors, LEFT_PX, [n, 2], data_path)?;
    let right_px = read(tensors, RIGHT_PX, [n, 2], data_path)?;
    let points = read(tensors, POINTS_M, [n, 3], data_path)?;
    let pixels = |v: &[f64]| -> Vec<PixelPoint> {
        v.chunks_exact(2)
            .map(|p| PixelPoint::new(p[0], p[1]))
            .collect()
    };
    let points: Vec<CameraPoint> = points
        .chunks_exact(3)
        .map(|p| CameraPoint::new(p[0], p[1], p[2]))
        .collect();
    if let Some(i) = points.iter().position(|p| p.z <= 0.0) {
        return Err(MapError::invalid(
            data_path,
            format!(
                "`{POINTS_M}`[{i}] has depth {} m, expected points in front of the camera (> 0)",
                points[i].z
            ),
        ));
    }
    Ok(StereoPoints {
        points,
        left: pixels(&left_px),
        right: pixels(&right_px),
        rig,
    })
}

/// Tensor `name`: F32 of `shape`, every value finite, as f64.
fn read<const D: usize>(
    tensors: &SafeTensors,
    name: &str,
    shape: [usize; D],
    path: &Path,
) -> Result<Vec<f64>, MapError> {
    let t = tensors
        .tensor(name)
        .map_err(|e| MapError::invalid(path, format!("{e}; expected a `{name}` tensor")))?;
    if t.dtype() != Dtype::F32 || t.shape() != shape {
        return Err(MapError::invalid(
            path,
            format!(
                "`{name}` is {:?} {:?}, expected F32 {shape:?} (the manifest's stereo.points = {})",
                t.dtype(),
                t.shape(),
                shape[0]
            ),
        ));
    }
    let values: Vec<f64> = t
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64)
        .collect();
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        let row = shape[D - 1].max(1);
        return Err(MapError::invalid(
            path,
            format!(
                "`{name}`[{}] holds {}, expected finite numbers",
                i / row,
                values[i]
            ),
        ));
    }
    Ok(values)
}
