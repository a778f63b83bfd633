//! `imd features --model DIR --image IMG --out F.safetensors [--block K] [--timestep T]
//! [--device D] [--dtype T]`: the SD UNet features of one image (tensor `features`,
//! [1, C, H/8, W/8], float32), at the image's native size.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use imd::model::zero_shot::load_empty_prompt;
use imd::model::{Backbone, BackboneOptions, ModelOptions};
use tch::{Kind, Tensor};

use crate::model_args::ModelArgs;

#[derive(clap::Args)]
#[command(mut_arg("model", |a| a.required(true)))]
pub struct Args {
    // The weights folder needs `unet/` and `vae/` (see models/prepare_weights.py); the
    // matching flags are refused (no matching here).
    #[command(flatten)]
    model: ModelArgs,
    /// Input image (both sides must be multiples of 8).
    #[arg(long)]
    image: PathBuf,
    /// Output safetensors file (tensor `features`, float32).
    #[arg(long)]
    out: PathBuf,
    /// UNet up block whose output is returned (2: 640 channels at 1/8 for SD2.1).
    #[arg(long, default_value_t = 2)]
    block: usize,
    /// Diffusion timestep (no noise is added).
    #[arg(long, default_value_t = 0.0)]
    timestep: f64,
    /// Benchmark hook for scripts/bench/bench_model.py: time the UNet pass this many times after
    /// one warm-up and print the timings as JSON.
    #[arg(long, default_value_t = 0, hide = true)]
    bench_iters: usize,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    args.model.refuse_matching_flags("features")?;
    let model = args.model.options(ModelOptions::default());
    let model_dir = args.model.model_dir()?;
    imd::io::paths::InputSet::default()
        .file(&args.image)
        .folder(model_dir)
        .check(&args.out)
        .context("--out")?;
    if model.num_threads > 0 {
        tch::set_num_threads(i32::try_from(model.num_threads).unwrap_or(i32::MAX));
    }
    let device = model.device.to_tch()?;
    let kind = model.dtype.kind();
    let image = load_image(&args.image)?;

    let opts = BackboneOptions {
        unet_block: args.block,
        timestep: args.timestep,
        load_clip: false,
    };
    let backbone = Backbone::load(model_dir, device, kind, &opts)
        .with_context(|| format!("loading the backbone from {}", model_dir.display()))?;
    let prompt = load_empty_prompt(model_dir, backbone.cross_attention_dim(), device, kind)?;

    let _guard = tch::no_grad_guard();
    let latents = backbone.encode_latents(&image)?;
    let features = backbone.unet_features(&latents, &prompt)?;
    let out = features.to_kind(Kind::Float).to_device(tch::Device::Cpu);
    Tensor::write_safetensors(&[("features", &out)], &args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    log::info!(
        "wrote features {:?} (up_blocks.{}, t = {}) to {}",
        out.size(),
        args.block,
        args.timestep,
        args.out.display()
    );

    if args.bench_iters > 0 {
        bench(&backbone, &latents, &prompt, args.bench_iters)?;
    }
    Ok(())
}

/// RGB image → [1, 3, H, W] in [-1, 1], float32; both sides must be multiples of 8.
fn load_image(path: &Path) -> anyhow::Result<Tensor> {
    let rgb = imd::io::image::load_image_file(path)?.into_rgb8();
    let (w, h) = rgb.dimensions();
    if w % 8 != 0 || h % 8 != 0 || w == 0 || h == 0 {
        bail!(
            "{}: {w}×{h} pixels; both sides must be multiples of 8 (crop or resize the image, \
             e.g. to {}×{})",
            path.display(),
            (w / 8).max(1) * 8,
            (h / 8).max(1) * 8
        );
    }
    let hwc = Tensor::from_slice(rgb.as_raw()).view([h as i64, w as i64, 3]);
    Ok(hwc
        .permute([2, 0, 1])
        .unsqueeze(0)
        .to_kind(Kind::Float)
        .divide_scalar(127.5)
        - 1.0)
}

/// CPU time of the calling thread (Linux `/proc/thread-self/schedstat`, ns). With one
/// libtorch thread all the work runs here, so it is the work done, unlike wall time on a
/// machine that other jobs share.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Time `unet_features` (the per-pair cost) and print JSON for scripts/bench/bench_model.py.
fn bench(
    backbone: &Backbone,
    latents: &Tensor,
    prompt: &Tensor,
    iters: usize,
) -> anyhow::Result<()> {
    let sync = || {
        if let tch::Device::Cuda(i) = backbone.device() {
            tch::Cuda::synchronize(i as i64);
        }
    };
    let _ = backbone.unet_features(latents, prompt)?;
    sync();
    let mut ms = Vec::with_capacity(iters);
    let mut cpu_ms = Vec::with_capacity(iters);
    for _ in 0..iters {
        let (t0, c0) = (Instant::now(), thread_cpu_ns());
        let _ = backbone.unet_features(latents, prompt)?;
        sync();
        ms.push(t0.elapsed().as_secs_f64() * 1e3);
        if let (Some(c0), Some(c1)) = (c0, thread_cpu_ns()) {
            cpu_ms.push(c1.saturating_sub(c0) as f64 / 1e6);
        }
    }
    let json = serde_json::json!({
        "unet_ms": ms,
        "unet_thread_cpu_ms": cpu_ms,
        "threads": tch::get_num_threads(),
    });
    println!("{json}");
    Ok(())
}
