//! The model flags `match`, `eval`, `replay` and `features` share (`#[command(flatten)]`):
//! each one overrides its field of [`ModelOptions`] when given. A command starts from its own
//! base (`ModelOptions::default()`, or the configuration's `model` section for `replay`), so
//! the defaults are the config type's and are written nowhere here; the help text prints them
//! from [`ModelOptions::default`].

use std::path::PathBuf;

use anyhow::{bail, Result};
use imd::model::{ComputeDevice, ComputeDtype, ModeOption, ModelOptions};

/// Model flags; see the module doc.
#[derive(clap::Args, Debug, Default)]
pub struct ModelArgs {
    #[arg(
        long,
        value_name = "DIR",
        help = "Weights folder (unet/, vae/, image_encoder/, \
        imd.yaml, heads.safetensors, …); overrides model.model_dir"
    )]
    pub model: Option<PathBuf>,
    #[arg(long, help = with_default("cpu, cuda or cuda:N; overrides model.device", |o| o.device.to_string()))]
    pub device: Option<ComputeDevice>,
    #[arg(long, help = with_default("f32, f16 or bf16; overrides model.dtype", |o| o.dtype.to_string()))]
    pub dtype: Option<ComputeDtype>,
    #[arg(long, value_name = "LONG_SIDE", help = with_default(
        "Long side in pixels for the network (0 = keep the image size); overrides \
         model.resize_long_side",
        |o| o.resize_long_side.to_string()))]
    pub resize: Option<u32>,
    #[arg(long, help = with_default(
        "Coarse confidence threshold θ (Efficient LoFTR's scripts use 0.1); overrides \
         model.coarse_threshold",
        |o| o.coarse_threshold.to_string()))]
    pub threshold: Option<f64>,
    #[arg(long, value_parser = parse_mode, help = with_default(
        "auto (full when heads.safetensors exists), full or zero_shot; overrides model.mode",
        |o| mode_name(o.mode).to_string()))]
    pub mode: Option<ModeOption>,
    #[arg(long, value_name = "N", help = with_default(
        "Keep at most N matches, most confident first (0 = all); overrides model.max_matches",
        |o| o.max_matches.to_string()))]
    pub max_matches: Option<u32>,
    #[arg(long, value_name = "N", help = with_default(
        "libtorch CPU threads (0 = libtorch's default); overrides model.num_threads",
        |o| o.num_threads.to_string()))]
    pub threads: Option<u32>,
}

/// `text` and the default the config type gives.
fn with_default(text: &str, default: impl Fn(&ModelOptions) -> String) -> String {
    format!("{text} [default: {}]", default(&ModelOptions::default()))
}

fn parse_mode(s: &str) -> Result<ModeOption, String> {
    match s {
        "auto" => Ok(ModeOption::Auto),
        "full" => Ok(ModeOption::Full),
        "zero_shot" | "zero-shot" => Ok(ModeOption::ZeroShot),
        other => Err(format!("`{other}` is not one of auto, full, zero_shot")),
    }
}

fn mode_name(mode: ModeOption) -> &'static str {
    match mode {
        ModeOption::Auto => "auto",
        ModeOption::Full => "full",
        ModeOption::ZeroShot => "zero_shot",
    }
}

impl ModelArgs {
    /// Override the fields of `options` whose flag was given.
    pub fn apply(&self, options: &mut ModelOptions) {
        if let Some(model) = &self.model {
            options.model_dir = model.display().to_string();
        }
        if let Some(device) = self.device {
            options.device = device;
        }
        if let Some(dtype) = self.dtype {
            options.dtype = dtype;
        }
        if let Some(resize) = self.resize {
            options.resize_long_side = resize;
        }
        if let Some(threshold) = self.threshold {
            options.coarse_threshold = threshold;
        }
        if let Some(mode) = self.mode {
            options.mode = mode;
        }
        if let Some(max_matches) = self.max_matches {
            options.max_matches = max_matches;
        }
        if let Some(threads) = self.threads {
            options.num_threads = threads;
        }
    }

    /// `base` with the given flags applied.
    pub fn options(&self, base: ModelOptions) -> ModelOptions {
        let mut options = base;
        self.apply(&mut options);
        options
    }

    /// The weights folder, for commands that cannot run without one.
    pub fn model_dir(&self) -> Result<&PathBuf> {
        match &self.model {
            Some(dir) => Ok(dir),
            None => bail!("--model DIR is required"),
        }
    }

    /// Refuse the flags a command does not use (`command` names it in the error), rather
    /// than ignore them.
    pub fn refuse_matching_flags(&self, command: &str) -> Result<()> {
        let given = [
            ("--resize", self.resize.is_some()),
            ("--threshold", self.threshold.is_some()),
            ("--mode", self.mode.is_some()),
            ("--max-matches", self.max_matches.is_some()),
        ];
        if let Some((flag, _)) = given.iter().find(|(_, g)| *g) {
            bail!("{flag} does not apply to `imd {command}` (it computes no matches)");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_only_what_was_given() {
        let args = ModelArgs {
            threshold: Some(0.1),
            mode: Some(ModeOption::ZeroShot),
            ..Default::default()
        };
        let base = ModelOptions {
            resize_long_side: 0,
            ..Default::default()
        };
        let o = args.options(base.clone());
        assert_eq!(o.coarse_threshold, 0.1);
        assert_eq!(o.mode, ModeOption::ZeroShot);
        assert_eq!(o.resize_long_side, 0);
        assert_eq!(ModelArgs::default().options(base.clone()), base);
        assert!(args.refuse_matching_flags("features").is_err());
        assert!(ModelArgs::default()
            .refuse_matching_flags("features")
            .is_ok());
        assert_eq!(parse_mode("zero-shot"), Ok(ModeOption::ZeroShot));
    }
}
