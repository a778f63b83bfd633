//! `imd pose`: relative pose from a match CSV, or from a JSON-lines batch of problems.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use imd::geometry::{
    estimate_relative_pose, CameraModel, GeometryError, Intrinsics, PixelMatch, PixelPoint,
    PoseEstimate, PoseOptions,
};
use serde_json::{json, Value};

#[derive(clap::Args)]
pub struct Args {
    /// Match CSV with header `x0,y0,x1,y1[,confidence]`, pixels.
    #[arg(long, required_unless_present = "batch", conflicts_with = "batch")]
    matches: Option<PathBuf>,
    /// Camera 0 intrinsics `fx,fy,cx,cy` (pixels).
    #[arg(long, value_parser = parse_intrinsics, required_unless_present = "batch")]
    k0: Option<Intrinsics>,
    /// Camera 1 intrinsics `fx,fy,cx,cy`; defaults to `--k0`.
    #[arg(long, value_parser = parse_intrinsics)]
    k1: Option<Intrinsics>,
    /// Inlier threshold, pixels (overrides the config's `pose.threshold_px`).
    #[arg(long)]
    threshold: Option<f64>,
    /// RANSAC seed (overrides `pose.seed`).
    #[arg(long)]
    seed: Option<u64>,
    /// JSON-lines problems: `{"id", "k0": [fx,fy,cx,cy], "k1": [..], "matches": [[x0,y0,x1,y1], ..],
    /// "threshold"?: px, "seed"?: n}`; one result per line on stdout. `-` reads stdin and
    /// answers each line as it arrives (for driving imd from another process).
    #[arg(long)]
    batch: Option<PathBuf>,
    /// imd YAML config whose `pose:` section gives the estimator options.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Longest `--batch` line read, MiB; a longer line is answered with an error and skipped
    /// without being held in memory.
    #[arg(long, default_value_t = DEFAULT_MAX_LINE_MIB, value_name = "MIB")]
    max_line_mib: u64,
    /// Add the per-match inlier flags (`"inlier_mask": [0|1, ..]`) to the output.
    #[arg(long)]
    inlier_mask: bool,
}

fn parse_intrinsics(s: &str) -> Result<Intrinsics, String> {
    let v: Vec<f64> = s
        .split(',')
        .map(|x| {
            x.trim()
                .parse::<f64>()
                .map_err(|_| format!("`{x}` is not a number"))
        })
        .collect::<Result<_, _>>()?;
    if v.len() != 4 {
        return Err(format!("expected fx,fy,cx,cy (4 numbers), got {}", v.len()));
    }
    Intrinsics::new(v[0], v[1], v[2], v[3]).map_err(|e| e.to_string())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut opts = match &args.config {
        Some(path) => imd::config::ImdConfig::from_file(path)?.pose,
        None => PoseOptions::default(),
    };
    if let Some(t) = args.threshold {
        opts.threshold_px = t;
    }
    if let Some(s) = args.seed {
        opts.seed = s;
    }
    opts.validate()?;
    if let Some(batch) = &args.batch {
        return run_batch(
            batch,
            &opts,
            args.inlier_mask,
            max_line_bytes(args.max_line_mib),
        );
    }
    let (Some(path), Some(k0)) = (&args.matches, args.k0) else {
        bail!("--matches and --k0 are required without --batch");
    };
    let k1 = args.k1.unwrap_or(k0);
    let matches = imd::io::matches::read_matches_csv(path)?;
    if matches.len() < 5 {
        bail!(
            "{}: {} matches, need at least 5",
            path.display(),
            matches.len()
        );
    }
    let (result, elapsed_us) = timed_estimate(&matches, &k0, &k1, &opts);
    let estimate =
        result.with_context(|| format!("estimating the pose from {}", path.display()))?;
    println!("{}", estimate_json(&estimate, elapsed_us, args.inlier_mask));
    Ok(())
}

/// Run the estimator alone under the clock (parsing and camera setup stay outside).
fn timed_estimate(
    matches: &[PixelMatch],
    k0: &Intrinsics,
    k1: &Intrinsics,
    opts: &PoseOptions,
) -> (Result<PoseEstimate, GeometryError>, f64) {
    let cam0 = CameraModel::pinhole(k0.fx, k0.fy, k0.cx, k0.cy, 0, 0);
    let cam1 = CameraModel::pinhole(k1.fx, k1.fy, k1.cx, k1.cy, 0, 0);
    let start = Instant::now();
    let result = estimate_relative_pose(matches, &cam0, &cam1, opts);
    (result, start.elapsed().as_secs_f64() * 1e6)
}

pub(crate) fn matrix_rows<const R: usize, const C: usize>(
    m: &nalgebra::SMatrix<f64, R, C>,
) -> Value {
    Value::Array(
        (0..R)
            .map(|i| json!((0..C).map(|j| m[(i, j)]).collect::<Vec<f64>>()))
            .collect(),
    )
}

fn estimate_json(e: &PoseEstimate, elapsed_us: f64, inlier_mask: bool) -> Value {
    let t = &e.pose.translation;
    let mut out = json!({
        "R": matrix_rows(e.pose.rotation.matrix()),
        "t": [t.x, t.y, t.z],
        "inliers": e.num_inliers,
        "num_matches": e.num_matches,
        "model": e.model.as_str(),
        "translation_observable": e.translation_observable,
        "covariance": matrix_rows(&e.covariance),
        "iterations": e.iterations,
        "rms_residual_px": e.rms_residual_px,
        "noise_sigma_px": e.noise_sigma_px,
        "elapsed_us": elapsed_us,
    });
    if let Some(alt) = &e.alternative {
        let at = &alt.translation;
        out["alternative"] =
            json!({"R": matrix_rows(alt.rotation.matrix()), "t": [at.x, at.y, at.z]});
    }
    if let Some(h) = &e.homography {
        out["homography_normalized"] = matrix_rows(h);
    }
    if inlier_mask {
        out["inlier_mask"] = json!(e.inliers.iter().map(|&b| b as u8).collect::<Vec<u8>>());
    }
    out
}

/// One batch problem, validated.
struct Problem {
    id: Value,
    k0: Intrinsics,
    k1: Intrinsics,
    matches: Vec<PixelMatch>,
    threshold: Option<f64>,
    seed: Option<u64>,
}

/// The `id` of a line, when the line is a JSON object that has one (also for lines that are
/// otherwise invalid, so their error record carries it).
pub(crate) fn line_id(line: &str) -> Value {
    serde_json::from_str::<Value>(line)
        .ok()
        .and_then(|v| v.get("id").cloned())
        .unwrap_or(Value::Null)
}

fn parse_problem(line: &str) -> anyhow::Result<Problem> {
    let v: Value = serde_json::from_str(line).context("not valid JSON")?;
    let obj = v.as_object().context("expected a JSON object")?;
    let id = obj.get("id").cloned().unwrap_or(Value::Null);
    let intrinsics = |key: &str| -> anyhow::Result<Intrinsics> {
        let arr = obj
            .get(key)
            .and_then(Value::as_array)
            .with_context(|| format!("`{key}` must be an array [fx, fy, cx, cy]"))?;
        let nums: Vec<f64> = arr.iter().filter_map(Value::as_f64).collect();
        if nums.len() != 4 || arr.len() != 4 {
            bail!("`{key}` must hold 4 numbers [fx, fy, cx, cy]");
        }
        Intrinsics::new(nums[0], nums[1], nums[2], nums[3]).with_context(|| format!("`{key}`"))
    };
    let k0 = intrinsics("k0")?;
    let k1 = if obj.contains_key("k1") {
        intrinsics("k1")?
    } else {
        k0
    };
    let rows = obj
        .get("matches")
        .and_then(Value::as_array)
        .context("`matches` must be an array of [x0, y0, x1, y1]")?;
    let mut matches = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let nums: Vec<f64> = row
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default();
        if nums.len() != 4 || nums.iter().any(|x| !x.is_finite()) {
            bail!("matches[{i}] must be 4 finite numbers [x0, y0, x1, y1], got {row}");
        }
        matches.push(PixelMatch {
            p0: PixelPoint::new(nums[0], nums[1]),
            p1: PixelPoint::new(nums[2], nums[3]),
            confidence: 1.0,
        });
    }
    let threshold = match obj.get("threshold") {
        None | Some(Value::Null) => None,
        Some(t) => Some(t.as_f64().context("`threshold` must be a number")?),
    };
    let seed = match obj.get("seed") {
        None | Some(Value::Null) => None,
        Some(s) => Some(
            s.as_u64()
                .context("`seed` must be a non-negative integer")?,
        ),
    };
    Ok(Problem {
        id,
        k0,
        k1,
        matches,
        threshold,
        seed,
    })
}

/// Default of `--max-line-mib`: the longest line `--batch` reads. A line of 16 MiB holds about a
/// million matches, far more than one image pair gives; parsing it costs a few hundred MB.
pub(crate) const DEFAULT_MAX_LINE_MIB: u64 = 16;

/// `--max-line-mib` in bytes.
pub(crate) fn max_line_bytes(mib: u64) -> usize {
    usize::try_from(mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX)
}

/// One line of at most `max` bytes (without the newline); `Ok(None)` at the end of input.
/// A longer line is consumed up to its newline and reported as `Err(len)`.
pub(crate) fn read_line_bounded(
    r: &mut dyn BufRead,
    max: usize,
) -> std::io::Result<Option<Result<Vec<u8>, usize>>> {
    let mut line = Vec::new();
    let mut total = 0usize;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(if total == 0 {
                None
            } else if total > max {
                Some(Err(total))
            } else {
                Some(Ok(line))
            });
        }
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        total += chunk.len();
        if total <= max {
            line.extend_from_slice(chunk);
        } else {
            line = Vec::new();
        }
        let used = done.unwrap_or(chunk.len());
        r.consume(used);
        if done.is_some() {
            return Ok(Some(if total > max { Err(total) } else { Ok(line) }));
        }
    }
}

/// Answer one batch line: the estimate, an estimation error, or (`Err`) why the line is not a
/// valid problem.
fn answer(line: &str, base: &PoseOptions, inlier_mask: bool) -> Result<Value, String> {
    let problem = parse_problem(line).map_err(|e| format!("{e:#}"))?;
    let mut opts = base.clone();
    if let Some(t) = problem.threshold {
        opts.threshold_px = t;
    }
    if let Some(s) = problem.seed {
        opts.seed = s;
    }
    opts.validate().map_err(|e| e.to_string())?;
    let (result, elapsed_us) = timed_estimate(&problem.matches, &problem.k0, &problem.k1, &opts);
    let mut record = match result {
        Ok(e) => estimate_json(&e, elapsed_us, inlier_mask),
        Err(e) => {
            json!({"error": e.to_string(), "error_kind": "estimation", "num_matches": problem.matches.len(), "elapsed_us": elapsed_us})
        }
    };
    record["id"] = problem.id;
    Ok(record)
}

/// `--batch`: one answer per non-empty line, in order. A line that is not a valid problem
/// (bad JSON, missing fields, non-finite numbers, too long, not UTF-8, or one that makes the
/// estimator fail unexpectedly) gets `{"id", "line", "error", "error_kind": "input"}` and the
/// batch goes on; at the end the exit code is 3 if any line was invalid. An estimator that
/// declines a valid problem (too few matches, no model) answers
/// `{"id", "error", "error_kind": "estimation"}`, which is a result, not a failure.
fn run_batch(
    path: &Path,
    base: &PoseOptions,
    inlier_mask: bool,
    max_line: usize,
) -> anyhow::Result<()> {
    let interactive = path == Path::new("-");
    let mut reader: Box<dyn BufRead> = if interactive {
        Box::new(std::io::stdin().lock())
    } else {
        let file =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        Box::new(std::io::BufReader::new(file))
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut invalid = Vec::new();
    let mut n = 0usize;
    // Each turn consumes at least one byte of input or ends: bounded by the input's length.
    while let Some(line) = read_line_bounded(&mut *reader, max_line)
        .with_context(|| format!("reading {}", path.display()))?
    {
        n += 1;
        let text = match line {
            Ok(bytes) => String::from_utf8(bytes).map_err(|_| "line is not UTF-8".to_string()),
            Err(len) => Err(format!(
                "line of {len} bytes exceeds the limit of {max_line} bytes (--max-line-mib \
                 raises it)"
            )),
        };
        // (answer, or (reason, id) for an invalid line); None for blank lines.
        let result: Option<Result<Value, (String, Value)>> = match text {
            Err(reason) => Some(Err((reason, Value::Null))),
            Ok(t) if t.trim().is_empty() => None,
            Ok(t) => Some(
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    answer(&t, base, inlier_mask)
                }))
                .unwrap_or_else(|_| Err("the estimator panicked on this problem".into()))
                .map_err(|reason| (reason, line_id(&t))),
            ),
        };
        let record = match result {
            None => continue,
            Some(Ok(record)) => record,
            Some(Err((reason, id))) => {
                log::warn!("{}:{n}: {reason}", path.display());
                invalid.push(n);
                json!({"id": id, "line": n, "error": reason, "error_kind": "input"})
            }
        };
        writeln!(out, "{record}")?;
        if interactive {
            out.flush()?;
        }
    }
    out.flush()?;
    if !invalid.is_empty() {
        return Err(crate::Incomplete {
            code: crate::Incomplete::PARTIAL,
            message: format!(
                "{}: {} invalid line(s) answered with errors (lines {})",
                path.display(),
                invalid.len(),
                invalid
                    .iter()
                    .map(|l| l.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
        .into());
    }
    Ok(())
}
