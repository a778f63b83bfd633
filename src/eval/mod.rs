//! Evaluation on the paper's benchmarks (notes §3): relative pose (MegaDepth-1500,
//! ScanNet-1500), homography (HPatches, synthetic homographies of any photo folder) and
//! multi-instance matching (IMIM).
//!
//! Every benchmark runs the same loop ([`evaluate`]): read a pair with its dataset reader
//! (which prepares the images as the protocol says: resize, padding), match it with
//! [`ImdMatcher`] at exactly that size ([`match_sample`]), map the matches to original-image
//! pixels, and score them with the benchmark's metric ([`pose`], [`homography`], [`imim`]).
//! [`report`] prints the table and writes the JSON with per-pair results.

pub mod homography;
pub mod imim;
pub mod pose;
pub mod report;

use std::path::PathBuf;
use std::time::Instant;

use image::RgbImage;
use serde::{Deserialize, Serialize};
use tch::Kind;

use crate::data::{PairDataset, PairSample, SampleImage};
use crate::geometry::{PixelMatch, PixelPoint};
use crate::model::{ImdMatcher, StageTimings};

/// Errors of evaluation.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// An option or input is out of range or inconsistent.
    #[error("{what}: {reason}")]
    InvalidInput { what: String, reason: String },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Reading the benchmark data failed.
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// Running the matcher failed.
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    /// A metric could not be computed (e.g. a camera is invalid).
    #[error(transparent)]
    Geometry(#[from] crate::geometry::GeometryError),
}

impl EvalError {
    pub(crate) fn input(what: impl Into<String>, reason: impl Into<String>) -> Self {
        EvalError::InvalidInput {
            what: what.into(),
            reason: reason.into(),
        }
    }
}

/// The benchmarks `imd eval` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Benchmark {
    /// MegaDepth-1500: pose AUC@5/10/20, precision at 1e-4.
    Megadepth1500,
    /// ScanNet-1500: pose AUC@5/10/20, precision at 5e-4.
    Scannet1500,
    /// HPatches sequences: corner AUC@3/5/10 (DKM protocol).
    Hpatches,
    /// IMIM: multi-instance accuracy.
    Imim,
    /// Synthetic homographies of a photo folder: corner AUC@3/5/10 in pixels.
    HomographySynth,
}

impl Benchmark {
    /// The name on the command line and in results.
    pub fn name(&self) -> &'static str {
        match self {
            Benchmark::Megadepth1500 => "megadepth1500",
            Benchmark::Scannet1500 => "scannet1500",
            Benchmark::Hpatches => "hpatches",
            Benchmark::Imim => "imim",
            Benchmark::HomographySynth => "homography-synth",
        }
    }

    /// The title of the printed table (as the paper names the benchmark).
    pub fn title(&self) -> &'static str {
        match self {
            Benchmark::Megadepth1500 => "MegaDepth-1500 relative pose",
            Benchmark::Scannet1500 => "ScanNet-1500 relative pose",
            Benchmark::Hpatches => "HPatches homography",
            Benchmark::Imim => "IMIM multi-instance matching",
            Benchmark::HomographySynth => "Synthetic homographies",
        }
    }
}

impl std::str::FromStr for Benchmark {
    type Err = EvalError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "megadepth1500" | "megadepth-1500" => Benchmark::Megadepth1500,
            "scannet1500" | "scannet-1500" => Benchmark::Scannet1500,
            "hpatches" => Benchmark::Hpatches,
            "imim" => Benchmark::Imim,
            "homography-synth" | "homography_synth" => Benchmark::HomographySynth,
            other => {
                return Err(EvalError::input(
                    "benchmark",
                    format!(
                        "`{other}` is not one of megadepth1500, scannet1500, hpatches, imim, \
                         homography-synth"
                    ),
                ))
            }
        })
    }
}

/// Matches of one pair in original-image pixels, with timing.
#[derive(Debug, Clone)]
pub struct SampleMatches {
    /// Matches, highest confidence first.
    pub matches: Vec<PixelMatch>,
    /// Stage timings of the matcher.
    pub timings: StageTimings,
}

/// The protocol-prepared content of a sample image (padding cropped off) as 8-bit RGB.
pub fn sample_rgb(image: &SampleImage) -> Result<RgbImage, EvalError> {
    let (w, h) = image.content_size;
    let content = image
        .pixels
        .narrow(1, 0, h as i64)
        .narrow(2, 0, w as i64)
        .clamp(0.0, 1.0)
        .multiply_scalar(255.0)
        .round()
        .to_kind(Kind::Uint8)
        .permute([1, 2, 0])
        .contiguous()
        .view([-1]);
    let bytes = Vec::<u8>::try_from(&content)
        .map_err(|e| EvalError::input("sample image", format!("reading pixels: {e}")))?;
    RgbImage::from_raw(w, h, bytes)
        .ok_or_else(|| EvalError::input("sample image", format!("{w}×{h} buffer size mismatch")))
}

/// Match a benchmark pair at the size its dataset reader prepared (the matcher must be loaded
/// with `resize_long_side = 0`), returning matches in **original** pixels: network pixels ×
/// the sample's per-axis scale, as Efficient LoFTR maps `mkpts` back.
pub fn match_sample(matcher: &ImdMatcher, sample: &PairSample) -> Result<SampleMatches, EvalError> {
    if matcher.options().resize_long_side != 0 {
        return Err(EvalError::input(
            "matcher",
            "must be loaded with resize_long_side = 0: the benchmark protocol sizes the images",
        ));
    }
    let a = sample_rgb(&sample.image0)?;
    let b = sample_rgb(&sample.image1)?;
    let out = matcher.match_images(&a, &b)?;
    let (s0, s1) = (sample.image0.scale, sample.image1.scale);
    let matches = out
        .matches
        .iter()
        .map(|m| PixelMatch {
            p0: PixelPoint::new(m.p0.x * s0[0], m.p0.y * s0[1]),
            p1: PixelPoint::new(m.p1.x * s1[0], m.p1.y * s1[1]),
            confidence: m.confidence,
        })
        .collect();
    Ok(SampleMatches {
        matches,
        timings: out.timings,
    })
}

/// One pair's outcome: the benchmark's per-pair record (serialised into the results JSON)
/// and its matches (for `--save-matches`).
#[derive(Debug)]
pub struct PairOutcome<R> {
    /// Per-pair metrics.
    pub record: R,
    /// The matches in original pixels.
    pub matches: Vec<PixelMatch>,
}

/// Run `score` on every pair of `dataset` (in order, `limit` pairs at most when non-zero),
/// with a progress bar when `progress`.
pub fn evaluate<R>(
    dataset: &dyn PairDataset,
    matcher: &ImdMatcher,
    limit: usize,
    progress: bool,
    score: &mut dyn FnMut(&PairSample, &SampleMatches, f64) -> Result<R, EvalError>,
) -> Result<Vec<PairOutcome<R>>, EvalError> {
    let n = if limit > 0 {
        limit.min(dataset.len())
    } else {
        dataset.len()
    };
    let bar = if progress {
        let bar = indicatif::ProgressBar::new(n as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} (eta {eta}) {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(dataset.name().to_string());
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let sample = dataset.get(i)?;
        let start = Instant::now();
        let m = match_sample(matcher, &sample)?;
        let seconds = start.elapsed().as_secs_f64();
        let record = score(&sample, &m, seconds)?;
        out.push(PairOutcome {
            record,
            matches: m.matches,
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(out)
}

/// Mean of finite values (NaN for none).
pub(crate) fn mean(values: impl IntoIterator<Item = f64>) -> f64 {
    let (sum, n) = values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        f64::NAN
    } else {
        sum / n as f64
    }
}

/// Median of finite values (NaN for none).
pub(crate) fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let k = v.len() / 2;
    if v.len() % 2 == 1 {
        v[k]
    } else {
        0.5 * (v[k - 1] + v[k])
    }
}
