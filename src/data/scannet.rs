//! ScanNet-1500 (LoFTR / Efficient LoFTR test set).
//!
//! On disk: `<root>/sceneXXXX_YY/color/<frame>.jpg` and `<root>/sceneXXXX_YY/pose/<frame>.txt`
//! (4×4 camera→world); the pair list `test.npz` (`name`: `[1500, 4]` = scene, sub-scene,
//! frame0, frame1; `rel_pose`) and `intrinsics.npz` (scene → 3×3, for 640×480 images) are
//! converted to JSON by `scripts/data/convert_scannet_index.py`.
//!
//! Protocol: images resized to 640×480; `T_0to1 = inv(c2w_1)·c2w_0` (LoFTR's
//! `pose1 @ inv(pose0)` with world→camera poses); K is that of the 640×480 frame, which is
//! therefore the "original" frame of the sample (scale = 640/w, 480/h).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nalgebra::{Matrix3, Matrix4};
use serde::{Deserialize, Serialize};

use super::image::{load_rgb, SampleImage};
use super::{
    check_index, read_json, read_to_string, DataError, GroundTruth, PairDataset, PairSample,
};

/// The converted index format tag.
pub const SCANNET_FORMAT: &str = "imd.scannet_pairs.v1";

/// `scripts/data/convert_scannet_index.py` output.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScanNetIndex {
    /// [`SCANNET_FORMAT`].
    pub format: String,
    /// The pairs.
    pub pairs: Vec<ScanNetPair>,
    /// Scene name → 3×3 intrinsics (row-major rows) of the 640×480 frame.
    pub intrinsics: BTreeMap<String, [[f64; 3]; 3]>,
}

/// One pair of the index.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScanNetPair {
    /// `sceneXXXX_YY`.
    pub scene: String,
    /// Frame number of image 0.
    pub frame0: u64,
    /// Frame number of image 1.
    pub frame1: u64,
    /// `rel_pose` of `test.npz` (3×4 row-major, informative; the reader uses the pose files).
    #[serde(default)]
    pub rel_pose: Vec<f64>,
}

/// Options of the ScanNet reader.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanNetOptions {
    /// Network input width (640).
    pub width: u32,
    /// Network input height (480).
    pub height: u32,
}

impl Default for ScanNetOptions {
    fn default() -> Self {
        ScanNetOptions {
            width: 640,
            height: 480,
        }
    }
}

/// ScanNet-1500.
#[derive(Debug)]
pub struct ScanNetDataset {
    root: PathBuf,
    index: ScanNetIndex,
    index_path: PathBuf,
    options: ScanNetOptions,
}

/// Read a whitespace-separated 4×4 matrix.
pub fn read_pose(path: &Path) -> Result<Matrix4<f64>, DataError> {
    let text = read_to_string(path)?;
    let v: Vec<f64> = text
        .split_whitespace()
        .map(|t| {
            t.parse::<f64>()
                .map_err(|_| DataError::format(path, format!("`{t}` is not a number")))
        })
        .collect::<Result<_, _>>()?;
    if v.len() != 16 || v.iter().any(|x| !x.is_finite()) {
        return Err(DataError::format(
            path,
            format!("expected 16 finite numbers (4×4 pose), found {}", v.len()),
        ));
    }
    Ok(Matrix4::from_row_slice(&v))
}

impl ScanNetDataset {
    /// Open the converted index; scenes are under `root`.
    pub fn open(index: &Path, root: &Path, options: ScanNetOptions) -> Result<Self, DataError> {
        let idx: ScanNetIndex = read_json(index)?;
        if idx.format != SCANNET_FORMAT {
            return Err(DataError::format(
                index,
                format!("format is `{}`, expected `{SCANNET_FORMAT}`", idx.format),
            ));
        }
        if let Some(p) = idx
            .pairs
            .iter()
            .find(|p| !idx.intrinsics.contains_key(&p.scene))
        {
            return Err(DataError::format(
                index,
                format!("scene {} has no intrinsics", p.scene),
            ));
        }
        Ok(ScanNetDataset {
            root: root.to_path_buf(),
            index: idx,
            index_path: index.to_path_buf(),
            options,
        })
    }

    /// The converted index.
    pub fn index(&self) -> &ScanNetIndex {
        &self.index
    }

    fn image(&self, scene: &str, frame: u64) -> Result<SampleImage, DataError> {
        let path = self
            .root
            .join(scene)
            .join("color")
            .join(format!("{frame}.jpg"));
        let img = load_rgb(&path)?;
        let (w, h) = (self.options.width, self.options.height);
        let mut s = SampleImage::from_rgb(&img, (w, h), None, path)?;
        // K belongs to the 640×480 frame: that is the "original" frame of the sample.
        s.scale = [640.0 / w as f64, 480.0 / h as f64];
        s.original_size = (640, 480);
        Ok(s)
    }

    fn c2w(&self, scene: &str, frame: u64) -> Result<Matrix4<f64>, DataError> {
        read_pose(
            &self
                .root
                .join(scene)
                .join("pose")
                .join(format!("{frame}.txt")),
        )
    }
}

impl PairDataset for ScanNetDataset {
    fn name(&self) -> &str {
        "scannet"
    }

    fn len(&self) -> usize {
        self.index.pairs.len()
    }

    fn get(&self, index: usize) -> Result<PairSample, DataError> {
        check_index(self.name(), index, self.len())?;
        let p = &self.index.pairs[index];
        let c2w0 = self.c2w(&p.scene, p.frame0)?;
        let c2w1 = self.c2w(&p.scene, p.frame1)?;
        let w2c1 = c2w1.try_inverse().ok_or_else(|| {
            DataError::format(
                &self.index_path,
                format!("{} frame {}: singular pose", p.scene, p.frame1),
            )
        })?;
        let k = Matrix3::from_fn(|r, c| self.index.intrinsics[&p.scene][r][c]);
        Ok(PairSample {
            name: format!("{}/{}-{}", p.scene, p.frame0, p.frame1),
            image0: self.image(&p.scene, p.frame0)?,
            image1: self.image(&p.scene, p.frame1)?,
            ground_truth: GroundTruth::Pose {
                k0: k,
                k1: k,
                t_0to1: w2c1 * c2w0,
            },
        })
    }
}
