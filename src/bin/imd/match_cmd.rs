//! `imd match IMG0 IMG1 --model DIR [--out M.csv] [--viz OUT.png] [--device D] [--dtype T]
//! [--resize LONG_SIDE] [--threshold θ] [--mode MODE] [--max-matches N]
//! [--repeat N] [--timings-json FILE]`.
//!
//! Writes `x0,y0,x1,y1,confidence` in original-image pixels to `--out` (or stdout) and a
//! summary (mode, match count, stage timings) to stderr. `--repeat` adds warm repeats
//! ([`crate::match_bench`]).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use imd::model::{ComputeDevice, ComputeDtype, ImdMatcher, ModelOptions};

use crate::model_args::ModelArgs;

#[derive(clap::Args)]
#[command(mut_arg("model", |a| a.required(true)))]
pub struct Args {
    /// First image (png or jpeg).
    image0: PathBuf,
    /// Second image.
    image1: PathBuf,
    /// Match CSV to write (default: stdout).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Side-by-side visualization PNG to write.
    #[arg(long)]
    viz: Option<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
    /// After the first match, time N warm repeats of the pair and N with image 0 cached (the
    /// tracker's per-frame cost); medians go to stderr and to --timings-json.
    #[arg(long, default_value_t = 0, value_name = "N")]
    repeat: u32,
    /// Write load time, cold and warm per-stage timings (ms) as JSON to this file.
    #[arg(long, value_name = "FILE")]
    timings_json: Option<PathBuf>,
}

fn load_image(path: &Path) -> Result<image::RgbImage> {
    Ok(imd::io::image::load_image_file(path)?.into_rgb8())
}

/// `--out`, `--viz` and `--timings-json` must not overwrite an input (same path, symlink, hard
/// link) or each other.
fn check_outputs(args: &Args) -> Result<()> {
    let mut inputs = imd::io::paths::InputSet::default();
    inputs
        .file(&args.image0)
        .file(&args.image1)
        .folder(args.model.model_dir()?);
    let outputs = [
        ("--out", &args.out),
        ("--viz", &args.viz),
        ("--timings-json", &args.timings_json),
    ];
    for (flag, out) in outputs {
        if let Some(out) = out {
            inputs.check(out).context(flag)?;
        }
    }
    // No two outputs on one file.
    for (i, (flag, a)) in outputs.iter().enumerate() {
        for (other, b) in &outputs[i + 1..] {
            if let (Some(a), Some(b)) = (a, b) {
                imd::io::paths::check_output_not_input(a, &[b.as_path()])
                    .with_context(|| format!("{flag} and {other}"))?;
            }
        }
    }
    Ok(())
}

pub fn run(args: Args) -> Result<()> {
    check_outputs(&args)?;
    let img0 = load_image(&args.image0)?;
    let img1 = load_image(&args.image1)?;
    let opts = args.model.options(ModelOptions::default());
    if opts.dtype == ComputeDtype::F16 && opts.device == ComputeDevice::Cpu {
        log::warn!(
            "f16 on the CPU is very slow (libtorch's f16 CPU convolutions: one paper-size pair \
             at 128x96 took 383 s in f16, 12 s in bf16): use bf16 or f32 on the CPU, f16 on CUDA"
        );
    }
    let load_start = std::time::Instant::now();
    let matcher = ImdMatcher::load(&opts)
        .with_context(|| format!("loading the matcher from {}", opts.model_dir))?;
    let load_ms = load_start.elapsed().as_secs_f64() * 1e3;
    let out = matcher.match_images(&img0, &img1).with_context(|| {
        format!(
            "matching {} and {}",
            args.image0.display(),
            args.image1.display()
        )
    })?;

    match &args.out {
        Some(path) => imd::io::matches::write_matches_csv(path, &out.matches)
            .with_context(|| format!("writing {}", path.display()))?,
        None => print!("{}", imd::io::matches::format_matches_csv(&out.matches)),
    }
    if let Some(path) = &args.viz {
        write_viz(path, &img0, &img1, &out.matches)?;
    }
    let t = &out.timings;
    eprintln!(
        "{} matches ({:?} mode, {} {}) in {:.0} ms: vae {:.0}, clip {:.0}, fine encoder {:.0}, \
         cipm {:.0}, unet {:.0}, coarse {:.0}, fine {:.0}",
        out.matches.len(),
        matcher.mode(),
        opts.device,
        opts.dtype,
        t.total_ms,
        t.vae_ms,
        t.clip_ms,
        t.fine_encoder_ms,
        t.cipm_ms,
        t.unet_ms,
        t.coarse_ms,
        t.fine_ms
    );
    if args.repeat > 0 || args.timings_json.is_some() {
        let setup = crate::match_bench::Setup {
            matcher: &matcher,
            img0: &img0,
            img1: &img1,
            load_ms,
            cold: &out,
        };
        let timings = crate::match_bench::repeat(&setup, args.repeat as usize)?;
        if args.repeat > 0 {
            let (p, k) = (&timings.pair_median, &timings.keyframe_cached_median);
            eprintln!(
                "{} warm repeats, medians: pair {:.1} ms (vae {:.1}, clip {:.1}, fine encoder \
                 {:.1}, cipm {:.1}, unet {:.1}, coarse {:.1}, fine {:.1}); keyframe cached {:.1} ms",
                args.repeat,
                p.total_ms,
                p.vae_ms,
                p.clip_ms,
                p.fine_encoder_ms,
                p.cipm_ms,
                p.unet_ms,
                p.coarse_ms,
                p.fine_ms,
                k.total_ms
            );
        }
        if let Some(path) = &args.timings_json {
            crate::match_bench::write_json(path, &timings)?;
        }
    }
    Ok(())
}

/// Save the two images side by side with `matches` drawn ([`imd::io::viz::draw_matches`]).
fn write_viz(
    path: &Path,
    img0: &image::RgbImage,
    img1: &image::RgbImage,
    matches: &[imd::geometry::PixelMatch],
) -> Result<()> {
    imd::io::viz::draw_matches(img0, img1, matches, None, &Default::default())
        .save(path)
        .with_context(|| format!("writing visualization {}", path.display()))
}
