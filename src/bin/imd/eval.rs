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
use imd::model::{ImdMatcher, ModelOptions};

use crate::model_args::ModelArgs;

#[derive(clap::Args)]
#[command(mut_arg("model", |a| a.required(true)))]
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
    #[command(flatten)]
    model: ModelArgs,
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
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
}

/// `--out` and `--save-matches` must not be, or lie inside, an input (the weights folder, the
/// dataset, the index).
fn check_outputs(args: &Args) -> Result<()> {
    let mut inputs = imd::io::paths::InputSet::default();
    inputs.folder(args.model.model_dir()?);
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
    if args.model.resize.is_some() {
        bail!("--resize does not apply to `imd eval`: the benchmark protocol sizes the images (--long-side, --short-side)");
    }
    let opts = args.model.options(ModelOptions {
        // The benchmark protocol sizes the images; the matcher keeps them.
        resize_long_side: 0,
        // LoFTR's HPatches protocol keeps the 1000 most confident matches; --max-matches
        // overrides.
        max_matches: match args.benchmark {
            Benchmark::Hpatches => 1000,
            _ => 0,
        },
        ..ModelOptions::default()
    });
    let matcher = ImdMatcher::load(&opts)
        .with_context(|| format!("loading the matcher from {}", opts.model_dir))?;
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
