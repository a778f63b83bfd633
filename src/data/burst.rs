//! BURST annotations (`{train,val,test}/all_classes.json`, see BURST's
//! `ANNOTATION_FORMAT.md`) and COCO compressed run-length encoding, written from the format:
//!
//! - a mask of `h × w` pixels is flattened **column-major** (pixel `(x, y)` is element
//!   `x·h + y`) and described by run lengths alternating 0-runs and 1-runs, starting with a
//!   (possibly empty) 0-run;
//! - each count becomes a little-endian sequence of 5-bit groups; a character is
//!   `48 + group`, with `0x20` set on every group but the last; the last group's bit `0x10`
//!   is its sign bit (the value is sign-extended from it);
//! - from the fourth count on (index > 2) the string stores the difference to the count two
//!   places earlier (pycocotools `rleToString` / `rleFrString`).
//!
//! BURST stores only the counts string (`rle`); the size is the sequence's `height × width`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::DataError;

/// A binary mask, stored row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryMask {
    width: u32,
    height: u32,
    bits: Vec<bool>,
}

impl BinaryMask {
    /// An all-false mask.
    pub fn new(width: u32, height: u32) -> Self {
        BinaryMask {
            width,
            height,
            bits: vec![false; width as usize * height as usize],
        }
    }

    /// From row-major values (`values[y·w + x]`).
    pub fn from_row_major(width: u32, height: u32, values: Vec<bool>) -> Option<Self> {
        (values.len() == width as usize * height as usize).then_some(BinaryMask {
            width,
            height,
            bits: values,
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The pixel at `(x, y)`; false outside the mask.
    pub fn get(&self, x: i64, y: i64) -> bool {
        if x < 0 || y < 0 || x >= self.width as i64 || y >= self.height as i64 {
            return false;
        }
        self.bits[y as usize * self.width as usize + x as usize]
    }

    /// Set the pixel at `(x, y)` (ignored outside).
    pub fn set(&mut self, x: u32, y: u32, value: bool) {
        if x < self.width && y < self.height {
            self.bits[y as usize * self.width as usize + x as usize] = value;
        }
    }

    /// Whether the nearest pixel to a sub-pixel point `(x, y)` is set (pixel centres at
    /// integer coordinates).
    pub fn contains(&self, x: f64, y: f64) -> bool {
        x.is_finite() && y.is_finite() && self.get(x.round() as i64, y.round() as i64)
    }

    /// Number of set pixels.
    pub fn area(&self) -> u64 {
        self.bits.iter().filter(|b| **b).count() as u64
    }

    /// Row-major values.
    pub fn as_row_major(&self) -> &[bool] {
        &self.bits
    }

    /// Uncompressed COCO counts (column-major runs starting with a 0-run).
    pub fn to_counts(&self) -> Vec<u64> {
        let (w, h) = (self.width as usize, self.height as usize);
        let mut counts = Vec::new();
        let mut current = false;
        let mut run = 0u64;
        for x in 0..w {
            for y in 0..h {
                let v = self.bits[y * w + x];
                if v != current {
                    counts.push(run);
                    run = 0;
                    current = v;
                }
                run += 1;
            }
        }
        counts.push(run);
        counts
    }

    /// From uncompressed counts; they must add up to `width·height`.
    pub fn from_counts(width: u32, height: u32, counts: &[u64]) -> Result<Self, String> {
        let total = width as u64 * height as u64;
        let sum: u64 = counts.iter().sum();
        if sum != total {
            return Err(format!(
                "runs add up to {sum} pixels, the {height}×{width} mask has {total}"
            ));
        }
        let mut mask = BinaryMask::new(width, height);
        let h = height as u64;
        let mut pos = 0u64;
        for (k, &c) in counts.iter().enumerate() {
            if k % 2 == 1 {
                for p in pos..pos + c {
                    mask.set((p / h) as u32, (p % h) as u32, true);
                }
            }
            pos += c;
        }
        Ok(mask)
    }
}

/// Decode a COCO compressed counts string into counts (pycocotools `rleFrString`).
pub fn decode_counts(s: &str) -> Result<Vec<u64>, String> {
    let bytes = s.as_bytes();
    let mut counts: Vec<i64> = Vec::new();
    let mut p = 0;
    while p < bytes.len() {
        let mut x: i64 = 0;
        let mut k = 0u32;
        loop {
            let Some(&ch) = bytes.get(p) else {
                return Err(format!("string ends inside a count at byte {p}"));
            };
            if !(48..48 + 64).contains(&ch) {
                return Err(format!(
                    "byte {p} ({:?}) is not an RLE character",
                    ch as char
                ));
            }
            if k >= 13 {
                return Err(format!("count at byte {p} is longer than 64 bits"));
            }
            let c = (ch - 48) as i64;
            x |= (c & 0x1f) << (5 * k);
            p += 1;
            k += 1;
            if c & 0x20 == 0 {
                if c & 0x10 != 0 && 5 * k < 64 {
                    x |= -1i64 << (5 * k);
                }
                break;
            }
        }
        let m = counts.len();
        if m > 2 {
            x += counts[m - 2];
        }
        if x < 0 {
            return Err(format!("count {m} is negative ({x})"));
        }
        counts.push(x);
    }
    Ok(counts.into_iter().map(|c| c as u64).collect())
}

/// Encode counts as a COCO compressed string (pycocotools `rleToString`).
pub fn encode_counts(counts: &[u64]) -> String {
    let mut out = String::new();
    for (i, &c) in counts.iter().enumerate() {
        let mut x = c as i64;
        if i > 2 {
            x -= counts[i - 2] as i64;
        }
        loop {
            let mut ch = x & 0x1f;
            x >>= 5; // arithmetic shift keeps the sign
            let more = if ch & 0x10 != 0 { x != -1 } else { x != 0 };
            if more {
                ch |= 0x20;
            }
            out.push((ch as u8 + 48) as char);
            if !more {
                break;
            }
        }
    }
    out
}

/// Decode a BURST / COCO compressed RLE string of an `height × width` mask.
pub fn decode_rle(counts: &str, width: u32, height: u32) -> Result<BinaryMask, String> {
    BinaryMask::from_counts(width, height, &decode_counts(counts)?)
}

/// Encode a mask as a COCO compressed RLE string.
pub fn encode_rle(mask: &BinaryMask) -> String {
    encode_counts(&mask.to_counts())
}

/// Area (set pixels) of an encoded mask without decoding it: the sum of the 1-runs.
pub fn rle_area(counts: &str) -> Result<u64, String> {
    Ok(decode_counts(counts)?.iter().skip(1).step_by(2).sum())
}

/// A BURST annotation file (`all_classes.json` and friends).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BurstAnnotations {
    /// Videos with their tracks and masks.
    pub sequences: Vec<BurstSequence>,
    /// LVIS categories.
    #[serde(default)]
    pub categories: Vec<BurstCategory>,
    /// `train`, `val` or `test`: the images live under `<base>/<split>/…`.
    #[serde(default)]
    pub split: String,
}

/// An LVIS category.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BurstCategory {
    /// LVIS id.
    pub id: u64,
    /// Name, e.g. `person`.
    pub name: String,
}

/// One video of BURST.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BurstSequence {
    /// Image width.
    pub width: u32,
    /// Image height.
    pub height: u32,
    /// Video id.
    pub id: u64,
    /// Folder name of the video.
    pub seq_name: String,
    /// Source dataset (LaSOT, BDD, ArgoVerse, HACS, AVA, Charades, YFCC100M).
    pub dataset: String,
    /// Frames per second.
    #[serde(default)]
    pub fps: f64,
    /// File names of the annotated frames, parallel to `segmentations`.
    pub annotated_image_paths: Vec<String>,
    /// Track id (string) → LVIS category id.
    pub track_category_ids: BTreeMap<String, u64>,
    /// Per annotated frame: track id (string) → mask.
    pub segmentations: Vec<BTreeMap<String, BurstSegment>>,
}

/// One track's mask in one frame.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BurstSegment {
    /// COCO compressed RLE counts of a `height × width` mask.
    pub rle: String,
    /// Human-annotated (train split only; val/test are all human).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_gt: Option<bool>,
    /// Confidence of an automatic annotation (train split only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

impl BurstAnnotations {
    /// Read an annotation file.
    pub fn load(path: &Path) -> Result<Self, DataError> {
        let ann: BurstAnnotations = super::read_json(path)?;
        for seq in &ann.sequences {
            if seq.segmentations.len() != seq.annotated_image_paths.len() {
                return Err(DataError::format(
                    path,
                    format!(
                        "sequence {} ({}): {} segmentation frames but {} annotated image paths",
                        seq.id,
                        seq.seq_name,
                        seq.segmentations.len(),
                        seq.annotated_image_paths.len()
                    ),
                ));
            }
        }
        Ok(ann)
    }

    /// Category name by id (empty when unknown).
    pub fn category_name(&self, id: u64) -> &str {
        self.categories
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.name.as_str())
            .unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_string() {
        // 3×3 mask with the centre column set: column-major runs [3, 3, 3].
        let mask = BinaryMask::from_row_major(
            3,
            3,
            vec![false, true, false, false, true, false, false, true, false],
        )
        .unwrap();
        assert_eq!(mask.to_counts(), vec![3, 3, 3]);
        // Each count < 16 fits one character: 48 + 3 = '3'.
        assert_eq!(encode_rle(&mask), "333");
        // Fourth count 40 stored as 40 − counts[1] = 37 = 0b1_00101: groups 5 ('5'+0x20 → 'U')
        // and 1 ('1').
        assert_eq!(encode_counts(&[0, 3, 5, 40]), "035U1");
        assert_eq!(decode_counts("035U1").unwrap(), vec![0, 3, 5, 40]);
        // 20 = 0b10100 has bit 0x10 set, so it needs a second (zero) group to stay positive:
        // 'd' (48 + 20 + 0x20) then '0'. counts[3] = 1 is stored as 1 − 20 = −19: low group
        // 13 with continuation (']' = 48 + 45), then 31 = all sign bits ('O' = 48 + 31).
        assert_eq!(encode_counts(&[0, 20, 5, 1]), "0d05]O");
        assert_eq!(decode_counts("0d05]O").unwrap(), vec![0, 20, 5, 1]);
    }

    #[test]
    fn rejects_garbage() {
        assert!(decode_counts("0\u{7f}").is_err());
        assert!(decode_counts("P").is_err()); // continuation bit without a next character
        assert!(decode_rle("33", 3, 3).is_err()); // 6 ≠ 9 pixels
    }
}
