//! Dataset readers, each reading its dataset's real on-disk format:
//! - [`megadepth`]: MegaDepth with the LoFTR / Efficient LoFTR scene-info indices (converted
//!   from their pickles by `scripts/data/convert_megadepth_index.py`), incl. MegaDepth-1500;
//! - [`scannet`]: ScanNet-1500 (`test.npz` + `intrinsics.npz`, converted by
//!   `scripts/data/convert_scannet_index.py`; poses from `pose/*.txt`);
//! - [`hpatches`]: the HPatches sequences folder;
//! - [`burst`] + [`imim`]: BURST annotations (COCO RLE) and the IMIM pair lists built from them;
//! - [`synthetic`]: random-homography pairs from any folder of photos.
//!
//! Every reader yields [`PairSample`]s through the [`PairDataset`] trait.

pub mod burst;
pub mod degrade;
pub mod hpatches;
pub mod image;
pub mod imim;
pub mod megadepth;
pub mod rng;
pub mod scannet;
pub mod synthetic;

use std::path::{Path, PathBuf};

use nalgebra::{Matrix3, Matrix4};
use tch::Tensor;

pub use self::image::SampleImage;

/// Errors reading datasets.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file or folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file was read but its content is not what the format requires.
    #[error("{path}: {reason}")]
    Format { path: PathBuf, reason: String },
    /// An option or argument is out of range.
    #[error("{option}: {reason}")]
    InvalidOption { option: String, reason: String },
    /// A sample index past the end.
    #[error("{dataset}: index {index} out of range (len {len})")]
    OutOfRange {
        dataset: String,
        index: usize,
        len: usize,
    },
    /// libtorch failed.
    #[error("libtorch: {context}: {source}")]
    Torch {
        context: String,
        #[source]
        source: tch::TchError,
    },
}

impl DataError {
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
        move |source| DataError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn format(path: &Path, reason: impl Into<String>) -> DataError {
        DataError::Format {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }

    pub(crate) fn option(option: impl Into<String>, reason: impl Into<String>) -> DataError {
        DataError::InvalidOption {
            option: option.into(),
            reason: reason.into(),
        }
    }
}

/// The ground truth a pair comes with.
#[derive(Debug)]
pub enum GroundTruth {
    /// Depth maps (original resolution, metres or dataset units, 0 = unknown) + intrinsics +
    /// relative pose: dense supervision (MegaDepth training).
    Depth {
        /// `[H0, W0]` f32 depth of image 0.
        depth0: Tensor,
        /// `[H1, W1]` f32 depth of image 1.
        depth1: Tensor,
        /// Intrinsics of image 0 (original pixels).
        k0: Matrix3<f64>,
        /// Intrinsics of image 1 (original pixels).
        k1: Matrix3<f64>,
        /// Camera-0 → camera-1 transform `T1·T0⁻¹` (x1 = R·x0 + t).
        t_0to1: Matrix4<f64>,
    },
    /// Intrinsics + relative pose only (pose benchmarks: MegaDepth-1500, ScanNet-1500).
    Pose {
        /// Intrinsics of image 0 (original pixels).
        k0: Matrix3<f64>,
        /// Intrinsics of image 1 (original pixels).
        k1: Matrix3<f64>,
        /// Camera-0 → camera-1 transform.
        t_0to1: Matrix4<f64>,
    },
    /// Homography from image-0 original pixels to image-1 original pixels.
    Homography {
        /// `x1 ~ H·x0`.
        h_0to1: Matrix3<f64>,
    },
    /// Instance masks present in both images (IMIM).
    Instances {
        /// One entry per instance (track), masks at original resolution.
        instances: Vec<InstancePair>,
    },
}

/// One instance's masks in both images of an IMIM pair.
#[derive(Debug, Clone, PartialEq)]
pub struct InstancePair {
    /// BURST track id.
    pub track_id: u64,
    /// Mask in image 0 (original resolution).
    pub mask0: burst::BinaryMask,
    /// Mask in image 1 (original resolution).
    pub mask1: burst::BinaryMask,
}

/// One image pair, ready for the network, with its ground truth.
#[derive(Debug)]
pub struct PairSample {
    /// Dataset-specific pair name (e.g. `0015/a.jpg–b.jpg`, `i_ajuntament/1-3`).
    pub name: String,
    /// Image 0 as the protocol prepares it.
    pub image0: SampleImage,
    /// Image 1 as the protocol prepares it.
    pub image1: SampleImage,
    /// Ground truth, always in original-image pixels.
    pub ground_truth: GroundTruth,
}

/// A dataset of image pairs with random access.
pub trait PairDataset {
    /// Short name for messages (`megadepth`, `hpatches`, …).
    fn name(&self) -> &str;
    /// Number of pairs.
    fn len(&self) -> usize;
    /// No pairs.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Pair `index` (deterministic: the same index always gives the same sample).
    fn get(&self, index: usize) -> Result<PairSample, DataError>;
}

pub(crate) fn check_index(dataset: &str, index: usize, len: usize) -> Result<(), DataError> {
    if index < len {
        Ok(())
    } else {
        Err(DataError::OutOfRange {
            dataset: dataset.to_string(),
            index,
            len,
        })
    }
}

pub(crate) fn read_to_string(path: &Path) -> Result<String, DataError> {
    std::fs::read_to_string(path).map_err(DataError::io(path))
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, DataError> {
    let text = read_to_string(path)?;
    serde_json::from_str(&text).map_err(|e| DataError::format(path, format!("JSON: {e}")))
}
