//! `imd pnp`: metric absolute pose (P3P + LO-MSAC + robust refinement) from a JSON-lines batch of
//! 2-D–3-D problems, one answer per line (the side-by-side benchmark drives it).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use imd::geometry::{
    estimate_absolute_pose, AbsolutePoseEstimate, AbsolutePoseOptions, CameraModel, CameraPoint,
    Intrinsics, PixelPoint, PointMatch,
};
use serde_json::{json, Value};

use crate::pose::{line_id, matrix_rows, max_line_bytes, read_line_bounded, DEFAULT_MAX_LINE_MIB};

#[derive(clap::Args)]
pub struct Args {
    /// JSON-lines problems: `{"id", "k": [fx,fy,cx,cy], "points": [[X,Y,Z], ..] (metres, keyframe
    /// camera frame), "pixels": [[x,y], ..] (current image), "threshold"?: px, "seed"?: n}`; one
    /// result per line on stdout: `R`, `t` (metres, keyframe → current camera), `covariance`
    /// (`[δt, δθ]`), `inliers`, `elapsed_us`, … `-` reads stdin and answers as lines arrive.
    #[arg(long)]
    batch: PathBuf,
    /// Inlier threshold on the reprojection error, pixels (default 2).
    #[arg(long)]
    threshold: Option<f64>,
    /// Longest `--batch` line read, MiB; a longer line is answered with an error and skipped
    /// without being held in memory.
    #[arg(long, default_value_t = DEFAULT_MAX_LINE_MIB, value_name = "MIB")]
    max_line_mib: u64,
    /// Add the per-correspondence inlier flags (`"inlier_mask"`) to the output.
    #[arg(long)]
    inlier_mask: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut opts = AbsolutePoseOptions::default();
    if let Some(t) = args.threshold {
        opts.threshold_px = t;
    }
    opts.validate()?;
    run_batch(
        &args.batch,
        &opts,
        args.inlier_mask,
        max_line_bytes(args.max_line_mib),
    )
}

struct Problem {
    id: Value,
    camera: CameraModel,
    matches: Vec<PointMatch>,
    threshold: Option<f64>,
    seed: Option<u64>,
}

fn numbers(row: &Value, n: usize, what: &str, i: usize) -> anyhow::Result<Vec<f64>> {
    let nums: Vec<f64> = row
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    if nums.len() != n || nums.iter().any(|x| !x.is_finite()) {
        bail!("{what}[{i}] must be {n} finite numbers, got {row}");
    }
    Ok(nums)
}

fn parse_problem(line: &str) -> anyhow::Result<Problem> {
    let v: Value = serde_json::from_str(line).context("not valid JSON")?;
    let obj = v.as_object().context("expected a JSON object")?;
    let id = obj.get("id").cloned().unwrap_or(Value::Null);
    let k = numbers(obj.get("k").unwrap_or(&Value::Null), 4, "k", 0)
        .context("`k` must be [fx, fy, cx, cy]")?;
    let k = Intrinsics::new(k[0], k[1], k[2], k[3]).context("`k`")?;
    let list = |key: &str| -> anyhow::Result<&Vec<Value>> {
        obj.get(key)
            .and_then(Value::as_array)
            .with_context(|| format!("`{key}` must be an array"))
    };
    let (points, pixels) = (list("points")?, list("pixels")?);
    if points.len() != pixels.len() {
        bail!(
            "`points` has {} entries but `pixels` has {}",
            points.len(),
            pixels.len()
        );
    }
    let mut matches = Vec::with_capacity(points.len());
    for (i, (p, x)) in points.iter().zip(pixels).enumerate() {
        let p = numbers(p, 3, "points", i)?;
        let x = numbers(x, 2, "pixels", i)?;
        matches.push(PointMatch {
            point: CameraPoint::new(p[0], p[1], p[2]),
            pixel: PixelPoint::new(x[0], x[1]),
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
        camera: CameraModel::pinhole(k.fx, k.fy, k.cx, k.cy, 0, 0),
        matches,
        threshold,
        seed,
    })
}

fn estimate_json(e: &AbsolutePoseEstimate, elapsed_us: f64, inlier_mask: bool) -> Value {
    let t = &e.pose.translation;
    let mut out = json!({
        "R": matrix_rows(e.pose.rotation.matrix()),
        "t": [t.x, t.y, t.z],
        "inliers": e.num_inliers,
        "num_matches": e.num_matches,
        "covariance": matrix_rows(&e.covariance),
        "iterations": e.iterations,
        "rms_residual_px": e.rms_residual_px,
        "noise_sigma_px": e.noise_sigma_px,
        "elapsed_us": elapsed_us,
    });
    if inlier_mask {
        out["inlier_mask"] = json!(e.inliers.iter().map(|&b| b as u8).collect::<Vec<u8>>());
    }
    out
}

fn answer(line: &str, base: &AbsolutePoseOptions, inlier_mask: bool) -> Result<Value, String> {
    let problem = parse_problem(line).map_err(|e| format!("{e:#}"))?;
    let mut opts = base.clone();
    if let Some(t) = problem.threshold {
        opts.threshold_px = t;
    }
    if let Some(s) = problem.seed {
        opts.seed = s;
    }
    let opts = imd::geometry::Checked::new(opts).map_err(|e| e.to_string())?;
    // The estimator alone under the clock (parsing stays outside).
    let start = Instant::now();
    let result = estimate_absolute_pose(&problem.matches, &problem.camera, &opts);
    let elapsed_us = start.elapsed().as_secs_f64() * 1e6;
    let mut record = match result {
        Ok(e) => estimate_json(&e, elapsed_us, inlier_mask),
        Err(e) => json!({"error": e.to_string(), "error_kind": "estimation",
                         "num_matches": problem.matches.len(), "elapsed_us": elapsed_us}),
    };
    record["id"] = problem.id;
    Ok(record)
}

/// One answer per non-empty line; an invalid line is answered with `"error_kind": "input"` and
/// the batch goes on (exit code 3 at the end), as `imd pose --batch`.
fn run_batch(
    path: &Path,
    base: &AbsolutePoseOptions,
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
        let result = match text {
            Err(reason) => Some(Err((reason, Value::Null))),
            Ok(t) if t.trim().is_empty() => None,
            Ok(t) => Some(answer(&t, base, inlier_mask).map_err(|r| (r, line_id(&t)))),
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
                "{}: {} invalid line(s) answered with errors",
                path.display(),
                invalid.len()
            ),
        }
        .into());
    }
    Ok(())
}
