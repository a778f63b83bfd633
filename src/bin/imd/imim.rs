//! `imd imim build`: select IMIM pairs from BURST annotations (rule in `imd::data::imim`).

use std::path::PathBuf;

use anyhow::Context;
use imd::data::imim::{build_pairs, ImimBuildOptions};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Select frame pairs of one video where ≥ N instances of one category appear in both
    /// frames, and write a pair list with the instances' RLE masks.
    Build(BuildArgs),
}

#[derive(clap::Args)]
struct BuildArgs {
    /// BURST annotation file (e.g. `val/all_classes.json`).
    #[arg(long)]
    annotations: PathBuf,
    /// BURST/TAO frames root: images are `<BASE>/<split>/<dataset>/<seq_name>/<file>`.
    #[arg(long, value_name = "BASE")]
    images: PathBuf,
    /// Output pair list (JSON).
    #[arg(long)]
    out: PathBuf,
    /// Instances of one category that must be present in both frames.
    #[arg(long, default_value_t = 2)]
    min_instances: usize,
    /// Keep at most N pairs (0 = one per qualifying video, all videos).
    #[arg(long, default_value_t = 0, value_name = "N")]
    max_pairs: usize,
    /// Seed of the subsampling when --max-pairs applies.
    #[arg(long, default_value_t = 0, value_name = "S")]
    seed: u64,
    /// Smallest distance between the two frames, in annotated frames.
    #[arg(long, default_value_t = 1)]
    min_frame_gap: usize,
    /// Smallest mask area (pixels) for an instance to count as present.
    #[arg(long, default_value_t = 0)]
    min_area: u64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Build(b) => build(b),
    }
}

fn build(args: BuildArgs) -> anyhow::Result<()> {
    let opts = ImimBuildOptions {
        min_instances: args.min_instances,
        max_pairs: args.max_pairs,
        seed: args.seed,
        min_frame_gap: args.min_frame_gap,
        min_area: args.min_area,
    };
    imd::io::paths::InputSet::default()
        .file(&args.annotations)
        .folder(&args.images)
        .check(&args.out)
        .context("--out")?;
    let report = build_pairs(&args.annotations, &args.images, &opts)
        .with_context(|| format!("building IMIM pairs from {}", args.annotations.display()))?;
    report
        .list
        .save(&args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!(
        "{} videos, {} qualify, {} candidate pairs skipped for missing images; wrote {} pairs to {}",
        report.videos,
        report.qualifying_videos,
        report.missing_images,
        report.list.pairs.len(),
        args.out.display()
    );
    Ok(())
}
