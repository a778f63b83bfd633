//! IMIM: multi-instance image pairs built from BURST videos (`imd imim build`), and the
//! dataset reading the resulting pair list.
//!
//! **Selection rule** ([`build_pairs`]); the paper does not publish its construction, this is
//! ours (notes §6):
//! 1. an instance is *present* in an annotated frame when the frame's segmentation has its
//!    track with a mask of at least `max(min_area, 1)` pixels;
//! 2. a *candidate* is (category `c`, annotated frames `a < b` with `b − a ≥ min_frame_gap`)
//!    where at least `min_instances` tracks of category `c` are present in both frames;
//! 3. each video contributes at most one pair: its candidate with the most shared instances,
//!    then the largest frame gap, then the smallest category id, then the earliest frame `a`;
//!    candidates whose two image files do not exist under the images root are skipped;
//! 4. when `max_pairs > 0` and more videos qualify, `max_pairs` of them are drawn uniformly
//!    without replacement with [`SeededRng`] seeded by `seed`, kept in annotation-file order.
//!
//! The pair list stores, per pair, the shared tracks' RLE strings for both frames verbatim.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::burst::{decode_rle, rle_area, BurstAnnotations, BurstSequence};
use super::image::{load_rgb, long_side_size, SampleImage};
use super::rng::SeededRng;
use super::{check_index, DataError, GroundTruth, InstancePair, PairDataset, PairSample};

/// The pair-list format tag.
pub const IMIM_FORMAT: &str = "imd.imim_pairs.v1";

/// Options of the pair selection (see the module doc for the rule).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImimBuildOptions {
    /// Tracks of one category that must be present in both frames (2).
    pub min_instances: usize,
    /// Keep at most this many pairs (0 = all qualifying videos).
    pub max_pairs: usize,
    /// Seed of the subsampling when `max_pairs` applies.
    pub seed: u64,
    /// Smallest distance between the two frames, in annotated frames (1).
    pub min_frame_gap: usize,
    /// Smallest mask area in pixels for an instance to count as present (0 = any non-empty).
    pub min_area: u64,
}

impl Default for ImimBuildOptions {
    fn default() -> Self {
        ImimBuildOptions {
            min_instances: 2,
            max_pairs: 0,
            seed: 0,
            min_frame_gap: 1,
            min_area: 0,
        }
    }
}

/// A written pair list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImimPairList {
    /// [`IMIM_FORMAT`].
    pub format: String,
    /// The BURST annotation file the pairs come from (as given).
    pub annotations: String,
    /// The BURST split (`val`, `test`, …).
    pub split: String,
    /// The options used.
    pub options: ImimBuildOptions,
    /// The pairs.
    pub pairs: Vec<ImimPair>,
}

/// One IMIM pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImimPair {
    /// BURST video id.
    pub sequence_id: u64,
    /// Video folder name.
    pub seq_name: String,
    /// Source dataset of the video.
    pub dataset: String,
    /// Image width.
    pub width: u32,
    /// Image height.
    pub height: u32,
    /// LVIS category shared by the instances.
    pub category_id: u64,
    /// Its name.
    pub category_name: String,
    /// First frame.
    pub frame0: ImimFrame,
    /// Second frame.
    pub frame1: ImimFrame,
    /// The instances present in both frames, by track id.
    pub instances: Vec<ImimInstance>,
}

/// A frame of a pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImimFrame {
    /// Index into the video's annotated frames.
    pub index: usize,
    /// Image path relative to the images root: `<split>/<dataset>/<seq_name>/<file>`.
    pub image: String,
}

/// One instance's masks in the two frames.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImimInstance {
    /// BURST track id.
    pub track_id: u64,
    /// COCO compressed RLE in frame 0.
    pub rle0: String,
    /// COCO compressed RLE in frame 1.
    pub rle1: String,
}

/// What [`build_pairs`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct ImimBuildReport {
    /// The pair list.
    pub list: ImimPairList,
    /// Videos in the annotation file.
    pub videos: usize,
    /// Videos with at least one candidate whose images exist.
    pub qualifying_videos: usize,
    /// Candidates skipped because an image file was missing.
    pub missing_images: usize,
}

struct Candidate {
    category: u64,
    a: usize,
    b: usize,
    tracks: Vec<u64>,
}

fn frame_image(split: &str, seq: &BurstSequence, frame: usize) -> String {
    format!(
        "{split}/{}/{}/{}",
        seq.dataset, seq.seq_name, seq.annotated_image_paths[frame]
    )
}

/// Present tracks per frame and category: `present[frame][category] = {track ids}`.
fn presence(
    seq: &BurstSequence,
    min_area: u64,
    path: &Path,
) -> Result<Vec<BTreeMap<u64, BTreeSet<u64>>>, DataError> {
    let mut out = Vec::with_capacity(seq.segmentations.len());
    for (t, frame) in seq.segmentations.iter().enumerate() {
        let mut by_cat: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
        for (tid, seg) in frame {
            let track: u64 = tid.parse().map_err(|_| {
                DataError::format(
                    path,
                    format!("sequence {}: track id `{tid}` is not an integer", seq.id),
                )
            })?;
            let Some(&cat) = seq.track_category_ids.get(tid) else {
                return Err(DataError::format(
                    path,
                    format!(
                        "sequence {}: track {tid} has no entry in track_category_ids",
                        seq.id
                    ),
                ));
            };
            let area = rle_area(&seg.rle).map_err(|e| {
                DataError::format(
                    path,
                    format!("sequence {} frame {t} track {tid}: RLE: {e}", seq.id),
                )
            })?;
            if area >= min_area.max(1) {
                by_cat.entry(cat).or_default().insert(track);
            }
        }
        out.push(by_cat);
    }
    Ok(out)
}

fn candidates(present: &[BTreeMap<u64, BTreeSet<u64>>], opts: &ImimBuildOptions) -> Vec<Candidate> {
    let mut out = Vec::new();
    let gap = opts.min_frame_gap.max(1);
    for a in 0..present.len() {
        for b in (a + gap)..present.len() {
            for (cat, tracks_a) in &present[a] {
                let Some(tracks_b) = present[b].get(cat) else {
                    continue;
                };
                let shared: Vec<u64> = tracks_a.intersection(tracks_b).copied().collect();
                if shared.len() >= opts.min_instances.max(1) {
                    out.push(Candidate {
                        category: *cat,
                        a,
                        b,
                        tracks: shared,
                    });
                }
            }
        }
    }
    // Best first: most instances, largest gap, smallest category, earliest frame.
    out.sort_by(|x, y| {
        y.tracks
            .len()
            .cmp(&x.tracks.len())
            .then((y.b - y.a).cmp(&(x.b - x.a)))
            .then(x.category.cmp(&y.category))
            .then(x.a.cmp(&y.a))
    });
    out
}

/// Select IMIM pairs from BURST annotations (rule in the module doc). `images_root` is the
/// BURST/TAO frames root (`<root>/<split>/<dataset>/<seq_name>/<file>`); candidates whose
/// images are missing there are skipped.
pub fn build_pairs(
    annotations_path: &Path,
    images_root: &Path,
    opts: &ImimBuildOptions,
) -> Result<ImimBuildReport, DataError> {
    if opts.min_instances == 0 {
        return Err(DataError::option("min_instances", "must be at least 1"));
    }
    let ann = BurstAnnotations::load(annotations_path)?;
    let mut chosen: Vec<ImimPair> = Vec::new();
    let mut missing = 0usize;
    for seq in &ann.sequences {
        let present = presence(seq, opts.min_area, annotations_path)?;
        for cand in candidates(&present, opts) {
            let img0 = frame_image(&ann.split, seq, cand.a);
            let img1 = frame_image(&ann.split, seq, cand.b);
            if !images_root.join(&img0).is_file() || !images_root.join(&img1).is_file() {
                missing += 1;
                continue;
            }
            let instances = cand
                .tracks
                .iter()
                .map(|tid| {
                    let key = tid.to_string();
                    ImimInstance {
                        track_id: *tid,
                        rle0: seq.segmentations[cand.a][&key].rle.clone(),
                        rle1: seq.segmentations[cand.b][&key].rle.clone(),
                    }
                })
                .collect();
            chosen.push(ImimPair {
                sequence_id: seq.id,
                seq_name: seq.seq_name.clone(),
                dataset: seq.dataset.clone(),
                width: seq.width,
                height: seq.height,
                category_id: cand.category,
                category_name: ann.category_name(cand.category).to_string(),
                frame0: ImimFrame {
                    index: cand.a,
                    image: img0,
                },
                frame1: ImimFrame {
                    index: cand.b,
                    image: img1,
                },
                instances,
            });
            break;
        }
    }
    let qualifying = chosen.len();
    if opts.max_pairs > 0 && chosen.len() > opts.max_pairs {
        let mut order: Vec<usize> = (0..chosen.len()).collect();
        SeededRng::new(opts.seed).shuffle(&mut order);
        let mut keep: Vec<usize> = order[..opts.max_pairs].to_vec();
        keep.sort_unstable();
        let mut all: Vec<Option<ImimPair>> = chosen.into_iter().map(Some).collect();
        chosen = keep.into_iter().filter_map(|i| all[i].take()).collect();
    }
    Ok(ImimBuildReport {
        list: ImimPairList {
            format: IMIM_FORMAT.into(),
            annotations: annotations_path.display().to_string(),
            split: ann.split.clone(),
            options: opts.clone(),
            pairs: chosen,
        },
        videos: ann.sequences.len(),
        qualifying_videos: qualifying,
        missing_images: missing,
    })
}

impl ImimPairList {
    /// Read a pair list written by `imd imim build`.
    pub fn load(path: &Path) -> Result<Self, DataError> {
        let list: ImimPairList = super::read_json(path)?;
        if list.format != IMIM_FORMAT {
            return Err(DataError::format(
                path,
                format!("format is `{}`, expected `{IMIM_FORMAT}`", list.format),
            ));
        }
        Ok(list)
    }

    /// Write as pretty JSON.
    pub fn save(&self, path: &Path) -> Result<(), DataError> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| DataError::format(path, format!("JSON: {e}")))?;
        std::fs::write(path, text).map_err(DataError::io(path))
    }
}

/// Options of the IMIM reader.
#[derive(Debug, Clone, PartialEq)]
pub struct ImimOptions {
    /// Resize so the longer side is this (0 = keep the original size).
    pub long_side: u32,
    /// Floor both sides to a multiple of this (8).
    pub divisible_by: u32,
}

impl Default for ImimOptions {
    fn default() -> Self {
        ImimOptions {
            long_side: 0,
            divisible_by: 8,
        }
    }
}

/// IMIM pairs with their instance masks.
#[derive(Debug)]
pub struct ImimDataset {
    list: ImimPairList,
    list_path: PathBuf,
    images_root: PathBuf,
    options: ImimOptions,
}

impl ImimDataset {
    /// Open a pair list; images are read from `images_root`.
    pub fn open(pairs: &Path, images_root: &Path, options: ImimOptions) -> Result<Self, DataError> {
        Ok(ImimDataset {
            list: ImimPairList::load(pairs)?,
            list_path: pairs.to_path_buf(),
            images_root: images_root.to_path_buf(),
            options,
        })
    }

    /// The pair list.
    pub fn list(&self) -> &ImimPairList {
        &self.list
    }

    fn image(&self, rel: &str) -> Result<SampleImage, DataError> {
        let path = self.images_root.join(rel);
        let img = load_rgb(&path)?;
        let (w, h) = img.dimensions();
        let size = long_side_size(w, h, self.options.long_side, self.options.divisible_by);
        SampleImage::from_rgb(&img, size, None, path)
    }
}

impl PairDataset for ImimDataset {
    fn name(&self) -> &str {
        "imim"
    }

    fn len(&self) -> usize {
        self.list.pairs.len()
    }

    fn get(&self, index: usize) -> Result<PairSample, DataError> {
        check_index(self.name(), index, self.len())?;
        let pair = &self.list.pairs[index];
        let image0 = self.image(&pair.frame0.image)?;
        let image1 = self.image(&pair.frame1.image)?;
        for img in [&image0, &image1] {
            if img.original_size != (pair.width, pair.height) {
                return Err(DataError::format(
                    &img.path,
                    format!(
                        "image is {:?}, the annotation says {}×{}",
                        img.original_size, pair.width, pair.height
                    ),
                ));
            }
        }
        let decode = |rle: &str, track: u64| {
            decode_rle(rle, pair.width, pair.height).map_err(|e| {
                DataError::format(
                    &self.list_path,
                    format!("pair {index} track {track}: RLE: {e}"),
                )
            })
        };
        let instances = pair
            .instances
            .iter()
            .map(|inst| {
                Ok(InstancePair {
                    track_id: inst.track_id,
                    mask0: decode(&inst.rle0, inst.track_id)?,
                    mask1: decode(&inst.rle1, inst.track_id)?,
                })
            })
            .collect::<Result<Vec<_>, DataError>>()?;
        Ok(PairSample {
            name: format!(
                "{}/{}:{}-{}",
                pair.dataset, pair.seq_name, pair.frame0.index, pair.frame1.index
            ),
            image0,
            image1,
            ground_truth: GroundTruth::Instances { instances },
        })
    }
}
