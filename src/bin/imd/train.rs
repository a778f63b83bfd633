//! `imd train --config train.yaml [--resume CHECKPOINT | --resume-last] [--steps N]
//! [--output-dir DIR] [--no-progress]`.
//!
//! Trains per the YAML (see `imd::train::config`), logging every step to
//! `<output_dir>/train_log.csv`, checkpointing to `<output_dir>/checkpoints/`, and writes the
//! trained weights folder to `<output_dir>` (loadable with `imd match --model <output_dir>`).

use std::path::PathBuf;

use anyhow::{Context, Result};
use imd::train::trainer::LAST_CHECKPOINT;
use imd::train::{TrainConfig, Trainer};

#[derive(clap::Args)]
pub struct Args {
    /// Training configuration (YAML).
    #[arg(long)]
    config: PathBuf,
    /// Continue from this checkpoint.
    #[arg(long, conflicts_with = "resume_last")]
    resume: Option<PathBuf>,
    /// Continue from `<output_dir>/checkpoints/last.safetensors` when it exists.
    #[arg(long)]
    resume_last: bool,
    /// Override `train.steps` (total steps, counting those of a resumed checkpoint).
    #[arg(long)]
    steps: Option<u64>,
    /// Override `output_dir` (e.g. to export a weights folder from a checkpoint with
    /// `--resume CKPT --steps 0 --output-dir DIR`).
    #[arg(long)]
    output_dir: Option<PathBuf>,
    /// No progress bar (the CSV log is still written).
    #[arg(long)]
    no_progress: bool,
}

pub fn run(args: Args) -> Result<()> {
    let mut config = TrainConfig::from_file(&args.config)
        .with_context(|| format!("reading {}", args.config.display()))?;
    if let Some(steps) = args.steps {
        config.train.steps = steps;
    }
    if let Some(dir) = &args.output_dir {
        config.output_dir = dir.display().to_string();
    }
    let last = config.checkpoint_dir().join(LAST_CHECKPOINT);
    let resume = match (&args.resume, args.resume_last) {
        (Some(path), _) => Some(path.clone()),
        (None, true) if last.is_file() => Some(last),
        _ => None,
    };
    let mut trainer = match &resume {
        Some(path) => Trainer::resume(&config, path)
            .with_context(|| format!("resuming from {}", path.display()))?,
        None => Trainer::new(&config).context("setting up training")?,
    };
    let trainable: i64 = trainer
        .params()
        .iter()
        .map(|p| p.tensor.numel() as i64)
        .sum();
    eprintln!(
        "training {} parameters on {} from step {} to {} (log {})",
        trainable,
        config.device,
        trainer.step(),
        config.train.steps,
        config.log_path().display()
    );
    trainer
        .fit(!args.no_progress, &mut |_| {})
        .context("training")?;
    eprintln!(
        "wrote the weights folder {} (checkpoint {})",
        config.output_dir,
        config.checkpoint_dir().join(LAST_CHECKPOINT).display()
    );
    Ok(())
}
