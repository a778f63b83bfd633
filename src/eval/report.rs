//! Running a benchmark end to end ([`run`]) and presenting the result: a table like the
//! paper's and a JSON document with the summary and every pair.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::homography::{self, HomographyProtocol};
use super::pose::{self, PoseProtocol};
use super::{evaluate, imim, Benchmark, EvalError, PairOutcome};
use crate::data::hpatches::{HPatchesDataset, HPatchesOptions};
use crate::data::imim::{ImimDataset, ImimOptions};
use crate::data::megadepth::{MegaDepthDataset, MegaDepthOptions};
use crate::data::scannet::{ScanNetDataset, ScanNetOptions};
use crate::data::synthetic::{SyntheticHomographyConfig, SyntheticHomographyDataset};
use crate::data::PairDataset;
use crate::geometry::PixelMatch;
use crate::model::ImdMatcher;

/// What to evaluate and how.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// The benchmark.
    pub benchmark: Benchmark,
    /// Dataset root: MegaDepth root, ScanNet scene root, HPatches sequences folder, IMIM
    /// image root, or the photo folder of `homography-synth`.
    pub data: PathBuf,
    /// MegaDepth: a converted scene index (`.json`) or a folder of them; ScanNet: the
    /// converted index; IMIM: the pair list of `imd imim build`. Unused otherwise.
    pub index: Option<PathBuf>,
    /// Evaluate only the first `limit` pairs (0 = all).
    pub limit: usize,
    /// MegaDepth-1500 network long side (Efficient LoFTR 1152, LoFTR 840); IMIM long side
    /// (0 = keep the frames' size).
    pub long_side: u32,
    /// HPatches short side (DKM / LoFTR: 480).
    pub short_side: u32,
    /// `homography-synth`: pairs, seed, size and the homography / jitter distribution.
    pub synthetic: SyntheticHomographyConfig,
    /// RANSAC runs per pair for the pose benchmarks (LoFTR 1, Efficient LoFTR 5).
    pub ransac_times: usize,
    /// RANSAC seed.
    pub seed: u64,
    /// No LO and no refinement in RANSAC (closest to OpenCV's).
    pub plain_ransac: bool,
    /// Show a progress bar.
    pub progress: bool,
}

impl EvalOptions {
    /// Defaults of a benchmark's protocol for data under `data`.
    pub fn new(benchmark: Benchmark, data: PathBuf) -> Self {
        EvalOptions {
            benchmark,
            long_side: match benchmark {
                Benchmark::Megadepth1500 => 1152,
                Benchmark::Imim => 640,
                _ => 0,
            },
            synthetic: SyntheticHomographyConfig {
                images_dir: data.display().to_string(),
                pairs: 100,
                ..SyntheticHomographyConfig::default()
            },
            short_side: 480,
            data,
            index: None,
            limit: 0,
            ransac_times: 1,
            seed: 0,
            plain_ransac: false,
            progress: false,
        }
    }
}

/// A finished evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct EvalResults {
    /// Benchmark name.
    pub benchmark: String,
    /// Weights folder.
    pub model: String,
    /// Dataset root.
    pub data: String,
    /// Protocol settings that are not obvious from the benchmark name.
    pub protocol: serde_json::Value,
    /// Benchmark-level metrics.
    pub summary: serde_json::Value,
    /// Per-pair results.
    pub pairs: serde_json::Value,
    /// The printed table.
    #[serde(skip)]
    pub table: String,
    /// Matches per pair (original pixels), for `--save-matches`.
    #[serde(skip)]
    pub matches: Vec<(String, Vec<PixelMatch>)>,
}

fn to_json<T: Serialize>(v: &T) -> serde_json::Value {
    // Plain structs of numbers, strings, options and lists always serialise.
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

fn need_index<'a>(opts: &'a EvalOptions, what: &str) -> Result<&'a Path, EvalError> {
    opts.index.as_deref().ok_or_else(|| {
        EvalError::input("--index", format!("{} needs {what}", opts.benchmark.name()))
    })
}

fn megadepth_indices(path: &Path) -> Result<Vec<PathBuf>, EvalError> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut v: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|source| EvalError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    v.sort();
    if v.is_empty() {
        return Err(EvalError::input(
            path.display().to_string(),
            "holds no converted scene index (*.json from scripts/data/convert_megadepth_index.py)",
        ));
    }
    Ok(v)
}

fn split<R>(
    outcomes: Vec<PairOutcome<R>>,
    name: impl Fn(&R) -> String,
) -> (Vec<R>, Vec<(String, Vec<PixelMatch>)>) {
    outcomes
        .into_iter()
        .map(|o| {
            let n = name(&o.record);
            (o.record, (n, o.matches))
        })
        .unzip()
}

/// Evaluate `matcher` (loaded with `resize_long_side = 0`) on a benchmark.
pub fn run(matcher: &ImdMatcher, opts: &EvalOptions) -> Result<EvalResults, EvalError> {
    let model = matcher.options().model_dir.clone();
    let model_name = Path::new(&model)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("imd")
        .to_string();
    let labels = RunLabels {
        model,
        model_name,
        data: opts.data.display().to_string(),
    };
    match opts.benchmark {
        Benchmark::Megadepth1500 | Benchmark::Scannet1500 => run_pose(matcher, opts, labels),
        Benchmark::Hpatches | Benchmark::HomographySynth => run_homography(matcher, opts, labels),
        Benchmark::Imim => run_imim(matcher, opts, labels),
    }
}

/// What every benchmark's results name: the model (its path and short name) and the data.
struct RunLabels {
    model: String,
    model_name: String,
    data: String,
}

/// MegaDepth-1500 / ScanNet-1500: relative pose AUC.
fn run_pose(
    matcher: &ImdMatcher,
    opts: &EvalOptions,
    labels: RunLabels,
) -> Result<EvalResults, EvalError> {
    let RunLabels {
        model,
        model_name,
        data,
    } = labels;
    let b = opts.benchmark;
    let (dataset, protocol) = open_pose_dataset(opts)?;
    let protocol = PoseProtocol {
        ransac_times: opts.ransac_times,
        seed: opts.seed,
        plain_ransac: opts.plain_ransac,
        ..protocol
    };
    let outcomes = evaluate(
        dataset.as_ref(),
        matcher,
        opts.limit,
        opts.progress,
        &mut |s, m, t| pose::score_pair(s, m, t, &protocol),
    )?;
    let summary = pose::summarize(&outcomes, protocol.epipolar_threshold);
    let table = format_table(
        &format!("{} ({} pairs)", b.title(), summary.pairs),
        &[
            "AUC@5°",
            "AUC@10°",
            "AUC@20°",
            &format!("Prec.({:.0e})", protocol.epipolar_threshold),
            "Matches",
        ],
        &model_name,
        &[
            summary.auc[0],
            summary.auc[1],
            summary.auc[2],
            summary.precision,
            summary.mean_matches,
        ],
    );
    let (records, matches) = split(outcomes, |r: &pose::PosePair| r.name.clone());
    Ok(EvalResults {
        benchmark: b.name().into(),
        model,
        data,
        protocol: serde_json::json!({
            "long_side": if b == Benchmark::Megadepth1500 { opts.long_side } else { 640 },
            "ransac_threshold_px": protocol.ransac_threshold_px,
            "ransac_confidence": protocol.confidence,
            "ransac_times": protocol.ransac_times,
            "plain_ransac": protocol.plain_ransac,
            "epipolar_threshold": protocol.epipolar_threshold,
        }),
        summary: to_json(&summary),
        pairs: to_json(&records),
        table,
        matches,
    })
}

/// The pose benchmark's dataset and its protocol before the user's overrides.
fn open_pose_dataset(
    opts: &EvalOptions,
) -> Result<(Box<dyn PairDataset>, PoseProtocol), EvalError> {
    let b = opts.benchmark;
    let opened: (Box<dyn PairDataset>, PoseProtocol) = if b == Benchmark::Megadepth1500 {
        let indices = megadepth_indices(need_index(opts, "the converted scene indices")?)?;
        let options = MegaDepthOptions {
            long_side: opts.long_side,
            ..MegaDepthOptions::test_1500()
        };
        (
            Box::new(MegaDepthDataset::open(&indices, &opts.data, options)?),
            PoseProtocol::megadepth(),
        )
    } else {
        let index = need_index(opts, "the converted test index")?;
        (
            Box::new(ScanNetDataset::open(
                index,
                &opts.data,
                ScanNetOptions::default(),
            )?),
            PoseProtocol::scannet(),
        )
    };
    Ok(opened)
}

/// HPatches / synthetic homographies: corner-error AUC.
fn run_homography(
    matcher: &ImdMatcher,
    opts: &EvalOptions,
    labels: RunLabels,
) -> Result<EvalResults, EvalError> {
    let RunLabels {
        model,
        model_name,
        data,
    } = labels;
    let b = opts.benchmark;
    let (dataset, protocol) = open_homography_dataset(opts, &data)?;
    let protocol = HomographyProtocol {
        seed: opts.seed,
        plain_ransac: opts.plain_ransac,
        ..protocol
    };
    let outcomes = evaluate(
        dataset.as_ref(),
        matcher,
        opts.limit,
        opts.progress,
        &mut |s, m, t| homography::score_pair(s, m, t, &protocol),
    )?;
    let summary = homography::summarize(&outcomes);
    let unit = if protocol.normalize_480 { "" } else { "px" };
    let table = format_table(
        &format!("{} ({} pairs)", b.title(), summary.pairs),
        &[
            &format!("AUC@3{unit}"),
            &format!("AUC@5{unit}"),
            &format!("AUC@10{unit}"),
            "Prec.@3px",
            "Matches",
        ],
        &model_name,
        &[
            summary.auc[0],
            summary.auc[1],
            summary.auc[2],
            summary.precision[1],
            summary.mean_matches,
        ],
    );
    let (records, matches) = split(outcomes, |r: &homography::HomographyPair| r.name.clone());
    let mut proto = serde_json::json!({
        "short_side": if b == Benchmark::Hpatches { opts.short_side } else { 0 },
        "normalize_480": protocol.normalize_480,
        "ransac_threshold_px": protocol.ransac_threshold_px,
        "ransac_confidence": protocol.confidence,
        "plain_ransac": protocol.plain_ransac,
    });
    if b == Benchmark::HomographySynth {
        proto["synthetic"] = to_json(&SyntheticHomographyConfig {
            images_dir: data.clone(),
            ..opts.synthetic.clone()
        });
    }
    Ok(EvalResults {
        benchmark: b.name().into(),
        model,
        data,
        protocol: proto,
        summary: to_json(&summary),
        pairs: to_json(&records),
        table,
        matches,
    })
}

/// The homography benchmark's dataset and its protocol before the user's overrides.
fn open_homography_dataset(
    opts: &EvalOptions,
    data: &str,
) -> Result<(Box<dyn PairDataset>, HomographyProtocol), EvalError> {
    let b = opts.benchmark;
    let opened: (Box<dyn PairDataset>, HomographyProtocol) = if b == Benchmark::Hpatches {
        (
            Box::new(HPatchesDataset::open(
                &opts.data,
                HPatchesOptions {
                    short_side: opts.short_side,
                    ..HPatchesOptions::default()
                },
            )?),
            HomographyProtocol::hpatches(),
        )
    } else {
        let config = SyntheticHomographyConfig {
            images_dir: data.to_string(),
            ..opts.synthetic.clone()
        };
        (
            Box::new(SyntheticHomographyDataset::open(config)?),
            HomographyProtocol::synthetic(),
        )
    };
    Ok(opened)
}

/// IMIM: instance matching accuracy.
fn run_imim(
    matcher: &ImdMatcher,
    opts: &EvalOptions,
    labels: RunLabels,
) -> Result<EvalResults, EvalError> {
    let RunLabels {
        model,
        model_name,
        data,
    } = labels;
    let b = opts.benchmark;
    let pairs = need_index(opts, "the pair list written by `imd imim build`")?;
    let dataset = ImimDataset::open(
        pairs,
        &opts.data,
        ImimOptions {
            long_side: opts.long_side,
            ..ImimOptions::default()
        },
    )?;
    let outcomes = evaluate(
        &dataset,
        matcher,
        opts.limit,
        opts.progress,
        &mut |s, m, t| imim::score_pair(s, m, t),
    )?;
    let summary = imim::summarize(&outcomes);
    let table = format_table(
        &format!("{} ({} pairs)", b.title(), summary.pairs),
        &["Acc.", "Acc.(pooled)", "Inst. matches", "Matches"],
        &model_name,
        &[
            summary.accuracy,
            summary.accuracy_pooled,
            summary.mean_instance_matches,
            summary.mean_matches,
        ],
    );
    let (records, matches) = split(outcomes, |r: &imim::ImimPair| r.name.clone());
    Ok(EvalResults {
        benchmark: b.name().into(),
        model,
        data,
        protocol: serde_json::json!({ "long_side": opts.long_side }),
        summary: to_json(&summary),
        pairs: to_json(&records),
        table,
        matches,
    })
}

/// A one-row table in the paper's layout: title line, header, the model's row.
pub fn format_table(title: &str, columns: &[&str], method: &str, values: &[f64]) -> String {
    let method_w = method.len().max("Method".len());
    let widths: Vec<usize> = columns.iter().map(|c| c.chars().count().max(7)).collect();
    let mut out = format!("{title}\n");
    let rule: String = std::iter::once("-".repeat(method_w + 2))
        .chain(widths.iter().map(|w| "-".repeat(w + 2)))
        .collect::<Vec<_>>()
        .join("+");
    out += &format!("| {:<method_w$} |", "Method");
    for (c, w) in columns.iter().zip(&widths) {
        out += &format!(" {c:>w$} |");
    }
    out += &format!("\n|{rule}|\n| {method:<method_w$} |");
    for (v, w) in values.iter().zip(&widths) {
        out += &format!(" {v:>w$.1} |");
    }
    out.push('\n');
    out
}

/// Write the results JSON.
pub fn write_json(results: &EvalResults, path: &Path) -> Result<(), EvalError> {
    let text = serde_json::to_string_pretty(results)
        .map_err(|e| EvalError::input("results", e.to_string()))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| EvalError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(path, text).map_err(|source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Write each pair's matches as `DIR/<k>.csv` (`x0,y0,x1,y1,confidence`, original pixels,
/// `k` the pair's position) and `DIR/pairs.txt` (one pair name per line).
pub fn write_matches(results: &EvalResults, dir: &Path) -> Result<(), EvalError> {
    std::fs::create_dir_all(dir).map_err(|source| EvalError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut names = String::new();
    for (k, (name, matches)) in results.matches.iter().enumerate() {
        let path = dir.join(format!("{k:05}.csv"));
        // Six decimals (the match CSV of `imd match` has three): oracles recompute
        // thresholded metrics from these files and must see the values imd scored.
        let mut text = String::from("x0,y0,x1,y1,confidence\n");
        for m in matches {
            text += &format!(
                "{:.6},{:.6},{:.6},{:.6},{:.6}\n",
                m.p0.x, m.p0.y, m.p1.x, m.p1.y, m.confidence
            );
        }
        std::fs::write(&path, text).map_err(|source| EvalError::Io {
            path: path.clone(),
            source,
        })?;
        names += name;
        names.push('\n');
    }
    let list = dir.join("pairs.txt");
    std::fs::write(&list, names).map_err(|source| EvalError::Io { path: list, source })
}
