//! HPatches sequences: `<root>/<seq>/{1..6}.ppm` and `H_1_k` (3×3, image-1 pixels → image-k
//! pixels); the reference image 1 is paired with images 2..6. Sequences starting with `i_`
//! change illumination, `v_` viewpoint.
//!
//! Protocol (LoFTR paper; DKM's benchmark code): the shorter side is resized to 480, the
//! 8 high-resolution sequences DKM ignores are skipped ([`DKM_IGNORED`]).

use std::path::{Path, PathBuf};

use nalgebra::Matrix3;

use super::image::{load_rgb, short_side_size, SampleImage};
use super::{check_index, read_to_string, DataError, GroundTruth, PairDataset, PairSample};

/// Sequences DKM's `hpatches_sequences_homog_benchmark.py` leaves out.
pub const DKM_IGNORED: [&str; 8] = [
    "i_contruction",
    "i_crownnight",
    "i_dc",
    "i_pencils",
    "i_whitebuilding",
    "v_artisans",
    "v_astronautis",
    "v_talent",
];

/// Which sequences to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HPatchesSubset {
    /// All sequences.
    All,
    /// `i_*` only.
    Illumination,
    /// `v_*` only.
    Viewpoint,
}

/// Options of the HPatches reader.
#[derive(Debug, Clone, PartialEq)]
pub struct HPatchesOptions {
    /// Resize so the shorter side is this (480; 0 = keep).
    pub short_side: u32,
    /// Floor both sides to a multiple of this (8).
    pub divisible_by: u32,
    /// Skip [`DKM_IGNORED`] (true).
    pub skip_ignored: bool,
    /// Which sequences.
    pub subset: HPatchesSubset,
}

impl Default for HPatchesOptions {
    fn default() -> Self {
        HPatchesOptions {
            short_side: 480,
            divisible_by: 8,
            skip_ignored: true,
            subset: HPatchesSubset::All,
        }
    }
}

#[derive(Debug, Clone)]
struct HPair {
    seq: String,
    k: u32,
    h: Matrix3<f64>,
}

/// The HPatches sequences folder.
#[derive(Debug)]
pub struct HPatchesDataset {
    root: PathBuf,
    pairs: Vec<HPair>,
    options: HPatchesOptions,
}

/// Read a 3×3 matrix written as 3 lines of 3 numbers.
pub fn read_homography(path: &Path) -> Result<Matrix3<f64>, DataError> {
    let text = read_to_string(path)?;
    let values: Vec<f64> = text
        .split_whitespace()
        .map(|t| {
            t.parse::<f64>()
                .map_err(|_| DataError::format(path, format!("`{t}` is not a number")))
        })
        .collect::<Result<_, _>>()?;
    if values.len() != 9 || values.iter().any(|v| !v.is_finite()) {
        return Err(DataError::format(
            path,
            format!(
                "expected 9 finite numbers (3×3 homography), found {}",
                values.len()
            ),
        ));
    }
    Ok(Matrix3::from_row_slice(&values))
}

impl HPatchesDataset {
    /// List the sequences under `root` (sorted by name) and read their homographies.
    pub fn open(root: &Path, options: HPatchesOptions) -> Result<Self, DataError> {
        let mut seqs: Vec<String> = std::fs::read_dir(root)
            .map_err(DataError::io(root))?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|name| match options.subset {
                HPatchesSubset::All => name.starts_with("i_") || name.starts_with("v_"),
                HPatchesSubset::Illumination => name.starts_with("i_"),
                HPatchesSubset::Viewpoint => name.starts_with("v_"),
            })
            .filter(|name| !(options.skip_ignored && DKM_IGNORED.contains(&name.as_str())))
            .collect();
        seqs.sort();
        if seqs.is_empty() {
            return Err(DataError::format(
                root,
                "no HPatches sequence folders (i_* / v_*) found",
            ));
        }
        let mut pairs = Vec::new();
        for seq in seqs {
            for k in 2..=6u32 {
                let h = read_homography(&root.join(&seq).join(format!("H_1_{k}")))?;
                pairs.push(HPair {
                    seq: seq.clone(),
                    k,
                    h,
                });
            }
        }
        Ok(HPatchesDataset {
            root: root.to_path_buf(),
            pairs,
            options,
        })
    }

    /// The image file of image `k` of `seq`.
    pub fn image_path(&self, seq: &str, k: u32) -> PathBuf {
        self.root.join(seq).join(format!("{k}.ppm"))
    }

    fn image(&self, seq: &str, k: u32) -> Result<SampleImage, DataError> {
        let path = self.image_path(seq, k);
        let img = load_rgb(&path)?;
        let (w, h) = img.dimensions();
        let size = short_side_size(w, h, self.options.short_side, self.options.divisible_by);
        SampleImage::from_rgb(&img, size, None, path)
    }
}

impl PairDataset for HPatchesDataset {
    fn name(&self) -> &str {
        "hpatches"
    }

    fn len(&self) -> usize {
        self.pairs.len()
    }

    fn get(&self, index: usize) -> Result<PairSample, DataError> {
        check_index(self.name(), index, self.len())?;
        let p = &self.pairs[index];
        Ok(PairSample {
            name: format!("{}/1-{}", p.seq, p.k),
            image0: self.image(&p.seq, 1)?,
            image1: self.image(&p.seq, p.k)?,
            ground_truth: GroundTruth::Homography { h_0to1: p.h },
        })
    }
}
