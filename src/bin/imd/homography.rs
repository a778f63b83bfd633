//! `imd homography`: a homography from a match CSV.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use imd::geometry::{estimate_homography, HomographyOptions};
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    /// Match CSV with header `x0,y0,x1,y1[,confidence]`, pixels.
    #[arg(long)]
    matches: PathBuf,
    /// Inlier threshold on the transfer error in image 1, pixels.
    #[arg(long)]
    threshold: Option<f64>,
    /// RANSAC seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Add the per-match inlier flags (`"inlier_mask": [0|1, ..]`).
    #[arg(long)]
    inlier_mask: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut opts = HomographyOptions::default();
    if let Some(t) = args.threshold {
        opts.threshold_px = t;
    }
    if let Some(s) = args.seed {
        opts.seed = s;
    }
    opts.validate()?;
    let matches = imd::io::matches::read_matches_csv(&args.matches)?;
    if matches.len() < 4 {
        bail!(
            "{}: {} matches, need at least 4",
            args.matches.display(),
            matches.len()
        );
    }
    let start = Instant::now();
    let result = estimate_homography(&matches, &opts);
    let elapsed_us = start.elapsed().as_secs_f64() * 1e6;
    let e = result
        .with_context(|| format!("estimating the homography from {}", args.matches.display()))?;
    let h: Vec<Vec<f64>> = (0..3)
        .map(|i| (0..3).map(|j| e.h[(i, j)]).collect())
        .collect();
    let mut out = json!({
        "H": h,
        "inliers": e.num_inliers,
        "num_matches": e.num_matches,
        "rms_error_px": e.rms_error_px,
        "iterations": e.iterations,
        "elapsed_us": elapsed_us,
    });
    if args.inlier_mask {
        out["inlier_mask"] = json!(e.inliers.iter().map(|&b| b as u8).collect::<Vec<u8>>());
    }
    println!("{out}");
    Ok(())
}
