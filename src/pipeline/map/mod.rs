//! Keyframe maps that outlive the process: [`KeyframeMap`] (what relocalization needs of each
//! keyframe) and its directory format ([`disk`]).
//!
//! A map keyframe keeps its image (the matcher re-prepares it at load), the image embedding the
//! matcher gave it (retrieval, and a check that the loading matcher is the one that built the
//! map), its metric depth (a depth image, or the points its stereo pair triangulated with the
//! rig), its camera model, its camera's name and optical frame, and the pose
//! of that optical frame in the map frame (the odometry chain's `odom` of the run that built
//! it) with its covariance.

pub mod disk;
pub mod messages;
pub mod run;
pub mod session;
pub mod stereo;

use std::path::Path;
use std::sync::Arc;

use image::RgbImage;
use sha2::{Digest, Sha256};

pub use disk::{
    check_replaceable, load, load_manifest, save, Manifest, ManifestKeyframe, Replace, SaveReport,
    MANIFEST as MANIFEST_FILE,
};
pub use session::{Localized, MapCounters, MapMode, MapSession};
pub use stereo::{ManifestStereo, StereoPoints};

use super::odom::PoseWithCov;
use super::KeyframeId;
use crate::geometry::CameraModel;
use crate::io::image::DepthMap;

/// The version of the directory format this build writes. Version 2 added stereo keyframes
/// (their points and rig); a version 1 map is a version 2 map without them, so this build reads
/// both. A build that reads version 1 only refuses a version 2 map naming both versions.
pub const FORMAT_VERSION: u32 = 2;

/// The oldest version this build reads.
pub const OLDEST_FORMAT_VERSION: u32 = 1;

/// The first version with stereo keyframes.
pub const STEREO_SINCE_VERSION: u32 = 2;

/// The `format` field of every manifest.
pub const FORMAT_NAME: &str = "imd-keyframe-map";

/// One keyframe of a saved map.
#[derive(Debug, Clone)]
pub struct MapKeyframe {
    /// Identity (camera name + stamp).
    pub id: KeyframeId,
    /// The camera's optical frame.
    pub frame_id: String,
    /// Camera model of its pixels (from CameraInfo).
    pub model: CameraModel,
    /// Its pixels.
    pub image: Arc<RgbImage>,
    /// The matcher's global embedding of the image (empty when the matcher has none).
    pub embedding: Vec<f32>,
    /// Its metric depth (`None`: a keyframe without metric depth).
    pub depth: Option<MapDepth>,
    /// The optical frame's pose in the map frame.
    pub pose: PoseWithCov,
}

/// A map keyframe's metric depth.
#[derive(Debug, Clone, PartialEq)]
pub enum MapDepth {
    /// A depth image registered to the keyframe's image.
    Dense(Arc<DepthMap>),
    /// Points triangulated from the keyframe's stereo pair.
    Stereo(Arc<StereoPoints>),
}

impl MapDepth {
    /// The manifest's name of it: the depth image's encoding (`16UC1`, `32FC1`) or `stereo`.
    pub fn encoding(&self) -> &'static str {
        match self {
            MapDepth::Dense(d) => d.encoding(),
            MapDepth::Stereo(_) => STEREO_DEPTH,
        }
    }
}

/// The manifest's `depth` of a stereo keyframe.
pub const STEREO_DEPTH: &str = "stereo";

/// A saved map: its keyframes, the map frame's name and the identity of the model that
/// produced the embeddings.
#[derive(Debug, Clone, Default)]
pub struct KeyframeMap {
    /// Identity of the matcher whose embeddings the keyframes carry ([`model_identity`]).
    pub model: String,
    /// The frame the keyframe poses are in (`map`).
    pub frame_id: String,
    /// The keyframes.
    pub keyframes: Vec<MapKeyframe>,
}

/// Why a map could not be saved or loaded. Each names the file and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    /// A file or folder that should be there is not.
    #[error("map: {path}: missing; expected {expected}")]
    Missing { path: String, expected: String },
    /// A file is shorter (or longer) than the manifest says.
    #[error("map: {path}: {bytes} bytes, expected {expected} (truncated or overwritten)")]
    Size {
        path: String,
        bytes: u64,
        expected: u64,
    },
    /// A file's checksum differs from the manifest's.
    #[error("map: {path}: sha256 {found}, expected {expected} (corrupt)")]
    Checksum {
        path: String,
        found: String,
        expected: String,
    },
    /// The manifest is of a format version this build does not read.
    #[error(
        "map: {path}: format version {found}, expected {expected} (this build reads versions \
         {oldest} to {expected}; rebuild the map with `imd map build`)"
    )]
    Version {
        path: String,
        found: u32,
        expected: u32,
        oldest: u32,
    },
    /// The embeddings come from another model than the one loading them.
    #[error(
        "map: {path}: embeddings of model {found}, expected the loaded model {expected} \
         (rebuild the map with this model)"
    )]
    Model {
        path: String,
        found: String,
        expected: String,
    },
    /// A file is there, of the right size and checksum, but not what it should be.
    #[error("map: {path}: {reason}")]
    Invalid { path: String, reason: String },
    /// Saving would replace a map this process did not write.
    #[error(
        "map: {path}: holds {found} that this run did not write; expected a missing or empty \
         folder (set map.overwrite: true, or pass --overwrite, to replace it; or save elsewhere)"
    )]
    Exists { path: String, found: String },
    /// Saving into a folder with other files than a map's.
    #[error(
        "map: {path}: holds {entry:?}, not part of a map; expected a missing or empty folder, or \
         a map (manifest.json, keyframes/)"
    )]
    NotAMap { path: String, entry: String },
    /// Reading or writing failed.
    #[error("map: {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl MapError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> MapError {
        if source.kind() == std::io::ErrorKind::NotFound {
            return MapError::Missing {
                path: path.display().to_string(),
                expected: "a file of the map (the manifest lists it)".into(),
            };
        }
        MapError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    pub(crate) fn invalid(path: &Path, reason: impl Into<String>) -> MapError {
        MapError::Invalid {
            path: path.display().to_string(),
            reason: reason.into(),
        }
    }
}

/// Lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes of each large weight file that go into [`model_identity`] (its head and its size).
const WEIGHT_HEAD_BYTES: usize = 1 << 20;

/// The identity of the model in `dir` whose embeddings a map stores: `sha256:` of `imd.yaml`,
/// `heads.safetensors` (whole: small, and what training changes), and of every other file under
/// the folder by relative path, size and first MiB (the frozen backbone's multi-GB weights are
/// told apart by that without reading them whole), plus `extra` (e.g. the matcher mode and
/// input size, which change the embedding too).
pub fn model_identity(dir: &Path, extra: &str) -> Result<String, MapError> {
    let mut files = Vec::new();
    collect_files(dir, dir, &mut files)?;
    files.sort();
    let mut h = Sha256::new();
    h.update(extra.as_bytes());
    for rel in files {
        let path = dir.join(&rel);
        let meta = std::fs::metadata(&path).map_err(|e| MapError::io(&path, e))?;
        h.update(rel.as_bytes());
        h.update(meta.len().to_le_bytes());
        let whole = rel == "imd.yaml" || rel == "heads.safetensors";
        let mut file = std::fs::File::open(&path).map_err(|e| MapError::io(&path, e))?;
        let mut buf = Vec::new();
        use std::io::Read;
        let limit = if whole {
            u64::MAX
        } else {
            WEIGHT_HEAD_BYTES as u64
        };
        (&mut file)
            .take(limit)
            .read_to_end(&mut buf)
            .map_err(|e| MapError::io(&path, e))?;
        h.update(&buf);
    }
    Ok(format!("sha256:{}", hex(&h.finalize())))
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), MapError> {
    let entries = std::fs::read_dir(dir).map_err(|e| MapError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| MapError::io(dir, e))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| MapError::io(&path, e))?;
        if kind.is_dir() {
            collect_files(root, &path, out)?;
        } else if path.is_file() {
            if let Ok(rel) = path.strip_prefix(root) {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
