//! `imd match --repeat N [--timings-json FILE]`: warm repeats of one pair, for the device
//! check (scripts/device/run.py) and anyone timing the matcher.
//!
//! After the first (cold) match, runs the pair `N` more times end to end
//! ([`ImdMatcher::match_images`]: both images prepared, then matched) and `N` times the
//! tracker's per-frame cost (image 0 prepared once, as a keyframe's features are kept; per
//! repeat image 1 prepared and matched). Stage times come from the matcher's own stopwatch,
//! which synchronizes CUDA at every stage boundary; each repeat's wall time ends after the
//! matches were copied to the CPU.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use image::RgbImage;
use imd::model::{ImdMatcher, MatchOutput, StageTimings};
use serde::Serialize;

/// What `--timings-json` writes.
#[derive(Debug, Serialize)]
pub struct MatchTimings {
    pub device: String,
    pub dtype: String,
    pub mode: String,
    pub image0_size: (u32, u32),
    pub image1_size: (u32, u32),
    pub resize_long_side: u32,
    pub matches: usize,
    /// Loading the weights folder onto the device, ms.
    pub load_ms: f64,
    /// The first match (cold: allocator, cuDNN autotuning, lazy initialisation).
    pub cold: StageTimings,
    pub repeats: usize,
    /// Warm end-to-end pair matches, one entry per repeat.
    pub pair: Vec<StageTimings>,
    /// Per-field medians of `pair`.
    pub pair_median: StageTimings,
    /// Keyframe side cached: per repeat, image 1 prepared + the pair matched.
    pub keyframe_cached: Vec<StageTimings>,
    /// Per-field medians of `keyframe_cached`.
    pub keyframe_cached_median: StageTimings,
    /// Match counts of the warm repeats (equal to `matches` unless the device is
    /// nondeterministic).
    pub repeat_match_counts: Vec<usize>,
}

/// Context of one timed run.
pub struct Setup<'a> {
    pub matcher: &'a ImdMatcher,
    pub img0: &'a RgbImage,
    pub img1: &'a RgbImage,
    pub load_ms: f64,
    pub cold: &'a MatchOutput,
}

/// Run the warm repeats; the result of the cold match is `setup.cold`.
pub fn repeat(setup: &Setup, repeats: usize) -> Result<MatchTimings> {
    let m = setup.matcher;
    let mut pair = Vec::with_capacity(repeats);
    let mut counts = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let out = m.match_images(setup.img0, setup.img1)?;
        counts.push(out.matches.len());
        pair.push(out.timings);
    }
    let mut cached = Vec::with_capacity(repeats);
    if repeats > 0 {
        let keyframe = m.prepare(&[setup.img0])?.remove(0);
        for _ in 0..repeats {
            let start = Instant::now();
            let current = m.prepare(&[setup.img1])?.remove(0);
            let out = m.match_prepared(&keyframe, &current)?;
            let mut t = current.timings;
            t.cipm_ms = out.timings.cipm_ms;
            t.unet_ms += out.timings.unet_ms;
            t.coarse_ms = out.timings.coarse_ms;
            t.fine_ms = out.timings.fine_ms;
            t.total_ms = start.elapsed().as_secs_f64() * 1e3;
            cached.push(t);
        }
    }
    let opts = m.options();
    Ok(MatchTimings {
        device: opts.device.to_string(),
        dtype: opts.dtype.to_string(),
        mode: format!("{:?}", m.mode()).to_lowercase(),
        image0_size: setup.img0.dimensions(),
        image1_size: setup.img1.dimensions(),
        resize_long_side: opts.resize_long_side,
        matches: setup.cold.matches.len(),
        load_ms: setup.load_ms,
        cold: setup.cold.timings,
        repeats,
        pair_median: median(&pair),
        pair,
        keyframe_cached_median: median(&cached),
        keyframe_cached: cached,
        repeat_match_counts: counts,
    })
}

/// Write `t` as pretty JSON.
pub fn write_json(path: &Path, t: &MatchTimings) -> Result<()> {
    let text = serde_json::to_string_pretty(t)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

/// Per-field median (mean of the middle two for an even count); zeros for none.
pub fn median(runs: &[StageTimings]) -> StageTimings {
    let m = |f: fn(&StageTimings) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        if v.is_empty() {
            return 0.0;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    };
    StageTimings {
        preprocess_ms: m(|t| t.preprocess_ms),
        vae_ms: m(|t| t.vae_ms),
        clip_ms: m(|t| t.clip_ms),
        fine_encoder_ms: m(|t| t.fine_encoder_ms),
        cipm_ms: m(|t| t.cipm_ms),
        unet_ms: m(|t| t.unet_ms),
        coarse_ms: m(|t| t.coarse_ms),
        fine_ms: m(|t| t.fine_ms),
        total_ms: m(|t| t.total_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_per_field() {
        let t = |x: f64| StageTimings {
            unet_ms: x,
            total_ms: 10.0 * x,
            ..Default::default()
        };
        let m = median(&[t(3.0), t(1.0), t(2.0)]);
        assert_eq!((m.unet_ms, m.total_ms), (2.0, 20.0));
        let m = median(&[t(4.0), t(1.0), t(2.0), t(3.0)]);
        assert_eq!(m.unet_ms, 2.5);
        assert_eq!(median(&[]).total_ms, 0.0);
    }
}
