//! MegaDepth with the LoFTR / Efficient LoFTR scene-info indices.
//!
//! The upstream indices (`scene_info_0.1_0.7/*.npz`, `megadepth_test_1500_scene_info/*.npz`)
//! are pickled dicts (`image_paths, depth_paths, intrinsics, poses, pair_infos`, object arrays
//! with `None` for unused images). `scripts/data/convert_megadepth_index.py` turns each into JSON
//! ([`MegaDepthIndex`]) and, with `--convert-depth`, each `.h5` depth map (`/depth`, f32) into
//! a safetensors file with one f32 tensor `depth` `[H, W]` (exact; no HDF5 dependency here).
//!
//! Paths in the index are relative to the MegaDepth root (the folder holding
//! `Undistorted_SfM/` and `phoenix/`); converted depth paths are relative to the depth root
//! (the converter's `--depth-out`, by default the same root).
//!
//! Protocols (Efficient LoFTR `read_megadepth_gray`): longer side resized to `long_side`
//! (1152 for MegaDepth-1500 in EL, 832 for training), each side floored to a multiple of 8,
//! zero-padded bottom-right to a square; K stays the original one, depth stays at original
//! resolution, `T_0to1 = T1·T0⁻¹` with world→camera poses `T`.

use std::path::{Path, PathBuf};

use nalgebra::{Matrix3, Matrix4};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::image::{load_rgb, long_side_size, SampleImage};
use super::{
    check_index, read_json, read_to_string, DataError, GroundTruth, PairDataset, PairSample,
};

/// The converted index format tag.
pub const MEGADEPTH_FORMAT: &str = "imd.megadepth_scene_info.v1";

/// One converted scene-info file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MegaDepthIndex {
    /// [`MEGADEPTH_FORMAT`].
    pub format: String,
    /// The npz it came from (file name).
    #[serde(default)]
    pub source: String,
    /// Image paths relative to the MegaDepth root (`None` for images in no pair).
    pub image_paths: Vec<Option<String>>,
    /// Depth paths: the original `.h5` or, once converted, `.safetensors` relative to the
    /// depth root.
    pub depth_paths: Vec<Option<String>>,
    /// 3×3 intrinsics per image (original pixels).
    pub intrinsics: Vec<Option<[[f64; 3]; 3]>>,
    /// 4×4 world→camera pose per image.
    pub poses: Vec<Option<[[f64; 4]; 4]>>,
    /// The pairs.
    pub pair_infos: Vec<MegaDepthPairInfo>,
}

/// One entry of `pair_infos` (`central_matches` is dropped by the converter: unused).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MegaDepthPairInfo {
    /// Image indices `(i, j)`.
    pub pair: [usize; 2],
    /// Overlap score.
    pub overlap: f64,
}

impl MegaDepthIndex {
    /// Read a converted index and check that every pair refers to complete entries.
    pub fn load(path: &Path) -> Result<Self, DataError> {
        let idx: MegaDepthIndex = read_json(path)?;
        if idx.format != MEGADEPTH_FORMAT {
            return Err(DataError::format(
                path,
                format!(
                    "format is `{}`, expected `{MEGADEPTH_FORMAT}` (convert the npz with \
                     scripts/data/convert_megadepth_index.py)",
                    idx.format
                ),
            ));
        }
        let n = idx.image_paths.len();
        if idx.depth_paths.len() != n || idx.intrinsics.len() != n || idx.poses.len() != n {
            return Err(DataError::format(
                path,
                "image_paths, depth_paths, intrinsics and poses differ in length",
            ));
        }
        for (k, p) in idx.pair_infos.iter().enumerate() {
            for &i in &p.pair {
                let complete = i < n
                    && idx.image_paths[i].is_some()
                    && idx.intrinsics[i].is_some()
                    && idx.poses[i].is_some();
                if !complete {
                    return Err(DataError::format(
                        path,
                        format!("pair_infos[{k}] refers to image {i}, which has no entry"),
                    ));
                }
            }
        }
        Ok(idx)
    }
}

/// Options of the MegaDepth reader.
#[derive(Debug, Clone, PartialEq)]
pub struct MegaDepthOptions {
    /// Longer side after resizing (0 = keep).
    pub long_side: u32,
    /// Floor both sides to a multiple of this.
    pub divisible_by: u32,
    /// Zero-pad bottom-right to a square (masks mark the padding).
    pub pad_to_square: bool,
    /// Read depth maps (training) or only K and poses (testing).
    pub load_depth: bool,
    /// Keep pairs with overlap score strictly above this.
    pub min_overlap: f64,
    /// Root of converted depth maps (empty = the MegaDepth root).
    pub depth_root: PathBuf,
}

impl MegaDepthOptions {
    /// MegaDepth-1500 as Efficient LoFTR evaluates it (long side 1152).
    pub fn test_1500() -> Self {
        MegaDepthOptions {
            long_side: 1152,
            divisible_by: 8,
            pad_to_square: true,
            load_depth: false,
            min_overlap: 0.0,
            depth_root: PathBuf::new(),
        }
    }

    /// Training as Efficient LoFTR (long side 832, depth, min overlap 0).
    pub fn train() -> Self {
        MegaDepthOptions {
            long_side: 832,
            load_depth: true,
            ..Self::test_1500()
        }
    }
}

#[derive(Debug)]
struct Scene {
    index: MegaDepthIndex,
    path: PathBuf,
    pairs: Vec<usize>,
}

/// One or more MegaDepth scenes as one dataset (pairs in scene order).
#[derive(Debug)]
pub struct MegaDepthDataset {
    root: PathBuf,
    scenes: Vec<Scene>,
    offsets: Vec<usize>,
    options: MegaDepthOptions,
}

impl MegaDepthDataset {
    /// Open converted scene indices; images under `root`.
    pub fn open(
        indices: &[PathBuf],
        root: &Path,
        options: MegaDepthOptions,
    ) -> Result<Self, DataError> {
        let mut scenes = Vec::new();
        let mut offsets = vec![0];
        for path in indices {
            let index = MegaDepthIndex::load(path)?;
            let pairs: Vec<usize> = index
                .pair_infos
                .iter()
                .enumerate()
                .filter(|(_, p)| p.overlap > options.min_overlap)
                .map(|(k, _)| k)
                .collect();
            offsets.push(offsets.last().copied().unwrap_or(0) + pairs.len());
            scenes.push(Scene {
                index,
                path: path.clone(),
                pairs,
            });
        }
        Ok(MegaDepthDataset {
            root: root.to_path_buf(),
            scenes,
            offsets,
            options,
        })
    }

    /// Open the scenes named in a list file (one stem per line, e.g.
    /// `megadepth_test_1500.txt`), each read from `<index_dir>/<stem>.json`.
    pub fn open_list(
        list: &Path,
        index_dir: &Path,
        root: &Path,
        options: MegaDepthOptions,
    ) -> Result<Self, DataError> {
        let text = read_to_string(list)?;
        let indices: Vec<PathBuf> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|stem| index_dir.join(format!("{}.json", stem.trim_end_matches(".npz"))))
            .collect();
        if indices.is_empty() {
            return Err(DataError::format(list, "lists no scene"));
        }
        Self::open(&indices, root, options)
    }

    fn locate(&self, index: usize) -> (&Scene, usize) {
        let s = self.offsets.partition_point(|&o| o <= index) - 1;
        let scene = &self.scenes[s];
        (scene, scene.pairs[index - self.offsets[s]])
    }

    fn image(&self, rel: &str) -> Result<SampleImage, DataError> {
        let path = self.root.join(rel);
        let img = load_rgb(&path)?;
        let (w, h) = img.dimensions();
        let (wn, hn) = long_side_size(w, h, self.options.long_side, self.options.divisible_by);
        let pad = self.options.pad_to_square.then(|| {
            let s = wn.max(hn);
            (s, s)
        });
        SampleImage::from_rgb(&img, (wn, hn), pad, path)
    }

    fn depth(&self, scene: &Scene, i: usize) -> Result<Tensor, DataError> {
        let Some(rel) = &scene.index.depth_paths[i] else {
            return Err(DataError::format(
                &scene.path,
                format!("image {i} has no depth path"),
            ));
        };
        let root = if self.options.depth_root.as_os_str().is_empty() {
            &self.root
        } else {
            &self.options.depth_root
        };
        read_depth(&root.join(rel))
    }
}

/// Read a converted depth map (safetensors, f32 tensor `depth` `[H, W]`).
pub fn read_depth(path: &Path) -> Result<Tensor, DataError> {
    if path.extension().is_some_and(|e| e == "h5") {
        return Err(DataError::format(
            path,
            "HDF5 depth maps are not read directly: convert them with \
             `scripts/data/convert_megadepth_index.py --convert-depth`",
        ));
    }
    let bytes = std::fs::read(path).map_err(DataError::io(path))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| DataError::format(path, format!("safetensors: {e}")))?;
    let view = st
        .tensor("depth")
        .map_err(|e| DataError::format(path, format!("tensor `depth`: {e}")))?;
    if view.dtype() != safetensors::Dtype::F32 || view.shape().len() != 2 {
        return Err(DataError::format(
            path,
            format!(
                "tensor `depth` is {:?} {:?}, expected F32 [H, W]",
                view.dtype(),
                view.shape()
            ),
        ));
    }
    let values: Vec<f32> = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let (h, w) = (view.shape()[0] as i64, view.shape()[1] as i64);
    Ok(Tensor::from_slice(&values)
        .view([h, w])
        .to_kind(Kind::Float))
}

impl PairDataset for MegaDepthDataset {
    fn name(&self) -> &str {
        "megadepth"
    }

    fn len(&self) -> usize {
        self.offsets.last().copied().unwrap_or(0)
    }

    fn get(&self, index: usize) -> Result<PairSample, DataError> {
        check_index(self.name(), index, self.len())?;
        let (scene, k) = self.locate(index);
        let [i0, i1] = scene.index.pair_infos[k].pair;
        let idx = &scene.index;
        // `load` checked that paired entries exist; keep the reader panic-free regardless.
        let missing = |what: &str, i: usize| {
            DataError::format(&scene.path, format!("image {i} has no {what}"))
        };
        let path = |i: usize| {
            idx.image_paths[i]
                .clone()
                .ok_or_else(|| missing("image path", i))
        };
        let k_of = |i: usize| {
            idx.intrinsics[i]
                .map(|m| Matrix3::from_fn(|r, c| m[r][c]))
                .ok_or_else(|| missing("intrinsics", i))
        };
        let t_of = |i: usize| {
            idx.poses[i]
                .map(|m| Matrix4::from_fn(|r, c| m[r][c]))
                .ok_or_else(|| missing("pose", i))
        };
        let (p0, p1) = (path(i0)?, path(i1)?);
        let t0_inv = t_of(i0)?
            .try_inverse()
            .ok_or_else(|| DataError::format(&scene.path, format!("pose {i0} is singular")))?;
        let t_0to1 = t_of(i1)? * t0_inv;
        let (k0, k1) = (k_of(i0)?, k_of(i1)?);
        let ground_truth = if self.options.load_depth {
            GroundTruth::Depth {
                depth0: self.depth(scene, i0)?,
                depth1: self.depth(scene, i1)?,
                k0,
                k1,
                t_0to1,
            }
        } else {
            GroundTruth::Pose { k0, k1, t_0to1 }
        };
        let stem = |p: &str| p.rsplit('/').next().unwrap_or(p).to_string();
        Ok(PairSample {
            name: format!("{}:{}-{}", idx.source, stem(&p0), stem(&p1)),
            image0: self.image(&p0)?,
            image1: self.image(&p1)?,
            ground_truth,
        })
    }
}
