//! `imd eval BENCHMARK --data DIR --model DIR [--out results.json] [...]`.
//!
//! Benchmarks: `megadepth1500` (`--data` MegaDepth root, `--index` converted scene index file
//! or folder), `scannet1500` (`--data` scene root, `--index` converted test index), `hpatches`
//! (`--data` sequences folder), `imim` (`--data` frame root, `--index` pair list from `imd
//! imim build`), `homography-synth` (`--images` photo folder, `--pairs N --seed S`). Prints the
//! table, writes the JSON (summary + every pair) to `--out`, and each pair's matches to
//! `--save-matches DIR` when asked.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use imd::data::synthetic::SyntheticHomographyConfig;
use imd::eval::report::{run as run_eval, write_json, write_matches, EvalOptions};
use imd::eval::Benchmark;
use imd::model::{ComputeDevice, ComputeDtype, ImdMatcher, ModeOption, ModelOptions};

#[derive(clap::Args)]
pub struct Args {
    /// megadepth1500, scannet1500, hpatches, imim or homography-synth.
    benchmark: Benchmark,
    /// Dataset root (see above).
    #[arg(long, required_unless_present = "images")]
    data: Option<PathBuf>,
    /// homography-synth: folder of photos (same as --data).
    #[arg(long)]
    images: Option<PathBuf>,
    /// Converted index (megadepth1500, scannet1500) or pair list (imim).
    #[arg(long)]
    index: Option<PathBuf>,
    /// Weights folder.
    #[arg(long)]
    model: PathBuf,
    /// Results JSON to write.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write each pair's matches (original pixels) as CSV files into this folder.
    #[arg(long)]
    save_matches: Option<PathBuf>,
    /// Evaluate only the first N pairs (0 = all).
    #[arg(long, default_value_t = 0)]
    limit: usize,
    /// homography-synth: number of pairs.
    #[arg(long, default_value_t = 100)]
    pairs: usize,
    /// homography-synth: seed of the pairs (and of RANSAC).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// homography-synth: image width (multiple of 8).
    #[arg(long, default_value_t = 320)]
    width: u32,
    /// homography-synth: image height (multiple of 8).
    #[arg(long, default_value_t = 240)]
    height: u32,
    /// Network long side: megadepth1500 (default 1152, EL; LoFTR 840) and imim (default 640).
    #[arg(long)]
    long_side: Option<u32>,
    /// HPatches: short side of the network images (DKM / LoFTR protocol 480).
    #[arg(long, default_value_t = 480)]
    short_side: u32,
    /// RANSAC runs per pair for pose benchmarks, errors pooled (LoFTR 1, EL 5).
    #[arg(long, default_value_t = 1)]
    ransac_times: usize,
    /// RANSAC without local optimisation and refinement (closest to OpenCV's).
    #[arg(long)]
    plain_ransac: bool,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: ComputeDevice,
    /// f32, f16 or bf16.
    #[arg(long, default_value = "f32")]
    dtype: ComputeDtype,
    /// Coarse threshold θ (default 0.2; Efficient LoFTR's scripts use 0.1).
    #[arg(long)]
    threshold: Option<f64>,
    /// Keep at most N matches per pair, most confident first (default: 1000 for hpatches as
    /// in LoFTR's protocol, all otherwise).
    #[arg(long)]
    max_matches: Option<u32>,
    /// libtorch CPU threads (0 = default).
    #[arg(long, default_value_t = 0)]
    threads: u32,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
}

/// `--out` and `--save-matches` must not be, or lie inside, an input (the weights folder, the
/// dataset, the index).
fn check_outputs(args: &Args) -> Result<()> {
    let mut inputs = imd::io::paths::InputSet::default();
    inputs.folder(&args.model);
    for dir in [&args.data, &args.images].into_iter().flatten() {
        inputs.folder(dir);
    }
    if let Some(index) = &args.index {
        inputs.file(index);
    }
    for (flag, out) in [("--out", &args.out), ("--save-matches", &args.save_matches)] {
        if let Some(out) = out {
            inputs.check(out).context(flag)?;
        }
    }
    Ok(())
}

pub fn run(args: Args) -> Result<()> {
    check_outputs(&args)?;
    let data = match (&args.data, &args.images) {
        (_, Some(images)) if args.benchmark == Benchmark::HomographySynth => images.clone(),
        (Some(d), None) => d.clone(),
        (Some(_), Some(_)) => bail!("--images is for homography-synth; use --data"),
        (None, _) => bail!("--data is required"),
    };
    let defaults = ModelOptions::default();
    let opts = ModelOptions {
        model_dir: args.model.display().to_string(),
        mode: ModeOption::Auto,
        device: args.device,
        dtype: args.dtype,
        // The benchmark protocol sizes the images; the matcher keeps them.
        resize_long_side: 0,
        coarse_threshold: args.threshold.unwrap_or(defaults.coarse_threshold),
        max_matches: args.max_matches.unwrap_or(match args.benchmark {
            Benchmark::Hpatches => 1000,
            _ => 0,
        }),
        num_threads: args.threads,
        ..defaults
    };
    let matcher = ImdMatcher::load(&opts)
        .with_context(|| format!("loading the matcher from {}", args.model.display()))?;
    let mut eval = EvalOptions::new(args.benchmark, data.clone());
    eval.index = args.index.clone();
    eval.limit = args.limit;
    if let Some(l) = args.long_side {
        eval.long_side = l;
    }
    eval.synthetic = SyntheticHomographyConfig {
        images_dir: data.display().to_string(),
        pairs: args.pairs,
        seed: args.seed,
        width: args.width,
        height: args.height,
        ..SyntheticHomographyConfig::default()
    };
    eval.short_side = args.short_side;
    eval.ransac_times = args.ransac_times;
    eval.seed = args.seed;
    eval.plain_ransac = args.plain_ransac;
    eval.progress = !args.no_progress;
    let results = run_eval(&matcher, &eval)
        .with_context(|| format!("evaluating {} on {}", args.benchmark.name(), data.display()))?;
    println!("{}", results.table);
    if let Some(path) = &args.out {
        write_json(&results, path).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(dir) = &args.save_matches {
        write_matches(&results, dir).with_context(|| format!("writing {}", dir.display()))?;
    }
    Ok(())
}
