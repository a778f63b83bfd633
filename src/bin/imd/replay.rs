//! `imd replay BAG --config config/matcher.yaml --model DIR [--out OUT_DIR | OUT.mcap]
//! [--camera IMAGE_TOPIC[,CAMERA_INFO_TOPIC]]... [--depth DEPTH_TOPIC]...
//! [--right IMAGE_TOPIC[,CAMERA_INFO_TOPIC]]... [--realtime [--rate R]] [--max-frames N]
//! [--max-wait S] [--device D] [--summary-json FILE] [--allow-data-loss]`.
//!
//! Runs the node's pipeline (`imd::pipeline::replay`) on a rosbag2 bag (a directory with
//! metadata.yaml and split MCAP or sqlite3 files, compressed or not, or one storage file),
//! writes every output as ROS 2 messages to `--out` (a bag directory, or one `.mcap` file),
//! shows a progress bar, prints a summary. A malformed
//! message or a frame that fails is reported and skipped. Damaged parts of the bag are
//! skipped and reported; the replay then exits with code 3 (after writing its outputs and
//! summary) unless `--allow-data-loss` is given. Outputs that would overwrite the bag are
//! refused.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use imd::config::{CamerasConfig, ImdConfig};
use imd::model::ImdMatcher;
use imd::pipeline::replay::{replay, ReplayOptions, ReplayProgress, ReplaySummary, StopFlag};
use indicatif::{ProgressBar, ProgressStyle};

use crate::memory::{peak_resident_mib, MemorySampler};
use crate::model_args::ModelArgs;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

#[derive(clap::Args)]
pub struct Args {
    /// rosbag2 bag with sensor_msgs/Image or CompressedImage + CameraInfo topics: a bag
    /// directory (metadata.yaml + split .mcap or .db3 files, zstd-compressed or not) or one
    /// .mcap / .db3 file. `imd bag info` lists its topics.
    bag: PathBuf,
    /// ROS 2 parameter file (or bare YAML mapping) with the node's configuration
    /// (default: built-in defaults).
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
    /// Output bag with the node's topics (correspondences, odometry, tf, debug_image,
    /// diagnostics): a new rosbag2 directory (MCAP storage + metadata.yaml), or a single MCAP
    /// file when the path ends in .mcap.
    #[arg(long)]
    out: Option<PathBuf>,
    /// A camera as IMAGE_TOPIC[,CAMERA_INFO_TOPIC]; repeat for more. Replaces the config's
    /// cameras. Without CAMERA_INFO_TOPIC: the image topic's namespace + /camera_info
    /// (/cam0/image_raw and /cam0/image_raw/compressed → /cam0/camera_info). Camera names
    /// are the namespace's last part (cam0), else camN.
    #[arg(long = "camera", value_name = "IMAGE_TOPIC[,CAMERA_INFO_TOPIC]")]
    cameras: Vec<String>,
    /// The aligned depth topic (sensor_msgs/Image 16UC1 mm or 32FC1 m, registered to the colour
    /// image) of the --camera given at the same position; `-` for none. Gives metric odometry.
    #[arg(long = "depth", value_name = "DEPTH_TOPIC", requires = "cameras")]
    depths: Vec<String>,
    /// The right camera (IMAGE_TOPIC[,CAMERA_INFO_TOPIC], rectified: P carries the baseline) of
    /// the --camera given at the same position; `-` for none. Gives metric odometry.
    #[arg(
        long = "right",
        value_name = "IMAGE_TOPIC[,CAMERA_INFO_TOPIC]",
        requires = "cameras"
    )]
    rights: Vec<String>,
    /// Hand frames to the worker at the recorded pace without waiting, dropping frames like the
    /// live node when it cannot keep up (default: every frame, in order).
    #[arg(long)]
    realtime: bool,
    /// Playback speed factor for --realtime, 0.01 to 100.
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// Longest wait between two frames for --realtime, s (0 to 60): a longer stamp gap is cut
    /// short.
    #[arg(long, default_value_t = 1.0, value_name = "S")]
    max_wait: f64,
    /// Exit 0 even when damaged chunks or records of the bag were skipped (default: exit 3).
    #[arg(long)]
    allow_data_loss: bool,
    /// Stop after N frames (0 = all).
    #[arg(long, default_value_t = 0)]
    max_frames: u64,
    /// Write the summary as JSON to this file.
    #[arg(long)]
    summary_json: Option<PathBuf>,
    /// Localize the recording in this saved map (`imd map build`): every frame in order, a
    /// summary of the frames localized and their poses in the map; with --out, every frame's
    /// messages as the node publishes them (`~/map_pose` and `map → odom` included).
    #[arg(long, value_name = "MAP", conflicts_with_all = ["realtime"])]
    map: Option<PathBuf>,
}

/// `/ns/cam0/image_raw[/compressed]` → (`cam0`, `/ns/cam0/camera_info`).
pub fn camera_from_topic(image_topic: &str, index: usize) -> (String, String) {
    let base = image_topic
        .strip_suffix("/compressed")
        .unwrap_or(image_topic);
    let namespace = base.rsplit_once('/').map(|(ns, _)| ns).unwrap_or("");
    let name = namespace
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| format!("cam{index}"));
    (name, format!("{namespace}/camera_info"))
}

/// `--depth` / `--right` flags onto the cameras of `--camera`, by position (`-` = none).
pub(crate) fn metric_from_flags(
    cameras: &mut CamerasConfig,
    depths: &[String],
    rights: &[String],
) -> Result<()> {
    let n = cameras.image_topics.len();
    for (flag, given) in [("--depth", depths.len()), ("--right", rights.len())] {
        if given > n {
            bail!("{given} {flag} flags for {n} --camera flags; expected at most one per camera (`-` for none)");
        }
    }
    let topic = |s: &str| {
        if s == "-" {
            String::new()
        } else {
            s.trim().to_string()
        }
    };
    if !depths.is_empty() {
        cameras.depth_topics = (0..n)
            .map(|i| depths.get(i).map(|s| topic(s)).unwrap_or_default())
            .collect();
    }
    if !rights.is_empty() {
        cameras.right_image_topics.clear();
        cameras.right_camera_info_topics.clear();
        for i in 0..n {
            let flag = rights.get(i).map(|s| topic(s)).unwrap_or_default();
            if flag.is_empty() {
                cameras.right_image_topics.push(String::new());
                cameras.right_camera_info_topics.push(String::new());
                continue;
            }
            let mut parts = flag.split(',').map(str::trim);
            let image = parts.next().unwrap_or_default().to_string();
            let (_, default_info) = camera_from_topic(&image, i);
            let info = parts
                .next()
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .unwrap_or(default_info);
            if image.is_empty() || parts.next().is_some() {
                bail!("--right {flag:?}: expected IMAGE_TOPIC[,CAMERA_INFO_TOPIC]");
            }
            cameras.right_image_topics.push(image);
            cameras.right_camera_info_topics.push(info);
        }
    }
    Ok(())
}

pub(crate) fn cameras_from_flags(flags: &[String]) -> Result<CamerasConfig> {
    let mut cameras = CamerasConfig::default();
    for (i, flag) in flags.iter().enumerate() {
        let mut parts = flag.split(',').map(str::trim);
        let image = parts.next().filter(|s| !s.is_empty());
        let Some(image) = image else {
            bail!("--camera {flag:?}: expected IMAGE_TOPIC[,CAMERA_INFO_TOPIC]");
        };
        let (name, default_info) = camera_from_topic(image, i);
        let info = parts
            .next()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .unwrap_or(default_info);
        if parts.next().is_some() {
            bail!("--camera {flag:?}: expected at most two comma-separated topics");
        }
        cameras.names.push(name);
        cameras.image_topics.push(image.to_string());
        cameras.camera_info_topics.push(info);
        cameras.optical_frames.push(String::new());
    }
    Ok(cameras)
}

fn load_config(args: &Args) -> Result<ImdConfig> {
    let mut config = match &args.config {
        Some(path) => ImdConfig::from_file(path)?,
        None => ImdConfig::default(),
    };
    args.model.apply(&mut config.model);
    if !args.cameras.is_empty() {
        config.cameras = cameras_from_flags(&args.cameras)?;
        metric_from_flags(&mut config.cameras, &args.depths, &args.rights)?;
    }
    config.validate().context("configuration")?;
    if config.cameras.image_topics.is_empty() {
        bail!("no cameras: give --camera IMAGE_TOPIC[,CAMERA_INFO_TOPIC] or cameras in --config");
    }
    Ok(config)
}

/// Set by SIGINT / SIGTERM; the replay stops reading and finishes its outputs.
static STOP: AtomicBool = AtomicBool::new(false);
/// The signal that set [`STOP`].
static SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    // Only atomic stores: async-signal-safe.
    SIGNAL.store(sig, Ordering::SeqCst);
    STOP.store(true, Ordering::SeqCst);
}

/// SIGINT and SIGTERM set [`STOP`] once; the handler resets itself, so a second signal ends
/// the process the usual way.
fn install_stop_handlers() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction with a handler that only stores atomics, installed before
        // any other thread of ours is started.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESETHAND | libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(sig, &action, std::ptr::null_mut()) != 0 {
                log::warn!("cannot install the handler of signal {sig}");
            }
        }
    }
}

/// No output may be, or lie inside, an input: the bag's files and folder, the weights folder,
/// the config file; the summary must not land on (or in) the output bag either.
fn check_outputs(args: &Args, config: &ImdConfig) -> Result<()> {
    let mut inputs = imd::pipeline::replay::input_set(&args.bag, config);
    if let Some(c) = &args.config {
        inputs.file(c);
    }
    if let Some(map) = &args.map {
        inputs.folder(map);
    }
    if let Some(out) = &args.out {
        inputs.check(out).context("--out")?;
    }
    if let Some(path) = &args.summary_json {
        if let Some(out) = &args.out {
            inputs.file(out);
            if out.extension().is_none_or(|e| e != "mcap") {
                inputs.folder(out);
            }
        }
        inputs.check(path).context("--summary-json")?;
    }
    Ok(())
}

pub fn run(args: Args) -> Result<()> {
    let config = load_config(&args)?;
    check_outputs(&args, &config)?;
    if let Some(map) = &args.map {
        return crate::map::localize(
            &args.bag,
            &config,
            map,
            args.out.as_deref(),
            args.summary_json.as_deref(),
            args.max_frames,
        );
    }
    install_stop_handlers();
    let matcher = ImdMatcher::load(&config.model)
        .with_context(|| format!("loading the matcher from {:?}", config.model.model_dir))?;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} images ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let options = ReplayOptions {
        realtime: args.realtime,
        rate: args.rate,
        max_frames: args.max_frames,
        max_wait_s: args.max_wait,
        stop: StopFlag::new(&STOP),
    };
    let mut memory = MemorySampler::new(MEMORY_EVERY);
    let summary = replay(
        &args.bag,
        args.out.as_deref(),
        &config,
        matcher,
        &options,
        |p: ReplayProgress| {
            if bar.length() != Some(p.images_total) {
                bar.set_length(p.images_total);
            }
            bar.set_position(p.images_read);
            memory.observe(p.frames_processed);
        },
    )
    .with_context(|| format!("replaying {}", args.bag.display()))?;
    // The last frames finish after the last progress call.
    memory.observe(summary.frames_processed);
    bar.finish_and_clear();
    print_summary(&summary);
    if let Some(path) = &args.summary_json {
        let json = SummaryJson {
            summary: &summary,
            peak_rss_mib: peak_resident_mib().unwrap_or(0.0),
            memory_mib: &memory.samples,
        };
        write_json(path, &json)?;
    }
    if summary.interrupted {
        let sig = SIGNAL.load(Ordering::SeqCst);
        let name = match sig {
            libc::SIGINT => "SIGINT",
            libc::SIGTERM => "SIGTERM",
            _ => "a stop request",
        };
        return Err(crate::Incomplete {
            // The shell's convention: 128 + the signal number.
            code: u8::try_from(128 + sig).unwrap_or(1),
            message: format!(
                "{}: stopped by {name} after {} frame(s); the outputs hold them and were closed \
                 whole",
                args.bag.display(),
                summary.frames_read
            ),
        }
        .into());
    }
    let malformed = summary.accounting.malformed;
    if summary.frames_processed == 0 && (summary.frames_failed > 0 || malformed > 0) {
        return Err(crate::Incomplete {
            code: crate::Incomplete::PARTIAL,
            message: format!(
                "{}: no frame was processed: {} failed, {malformed} image(s) malformed (see \
                 `skipped` above)",
                args.bag.display(),
                summary.frames_failed,
            ),
        }
        .into());
    }
    if summary.data_loss.lost_data() && !args.allow_data_loss {
        return Err(crate::Incomplete {
            code: crate::Incomplete::PARTIAL,
            message: format!(
                "{}: damaged bag, data lost: {} (outputs written; pass --allow-data-loss to \
                 accept)",
                args.bag.display(),
                summary.data_loss.describe()
            ),
        }
        .into());
    }
    Ok(())
}

/// Resident memory is sampled every this many processed frames.
const MEMORY_EVERY: u64 = 100;

/// `--summary-json`: the replay's summary and this process's memory.
#[derive(serde::Serialize)]
struct SummaryJson<'a> {
    #[serde(flatten)]
    summary: &'a ReplaySummary,
    /// Peak resident memory of the process, MiB (Linux; 0 elsewhere).
    peak_rss_mib: f64,
    /// (processed frames, resident memory MiB) samples.
    memory_mib: &'a [(u64, f64)],
}

fn write_json(path: &Path, summary: &SummaryJson) -> Result<()> {
    let text = serde_json::to_string_pretty(summary).context("serializing the summary")?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

fn print_summary(s: &ReplaySummary) {
    let state = |k: &str| s.states.get(k).copied().unwrap_or(0);
    eprintln!(
        "replayed {}: {} frames ({} read, {} failed), {} keyframes, {} lost, {} relocalized, \
         {} dropped; latency median {:.1} ms (p90 {:.1}, max {:.1}); {:.2} frames/s over {:.1} s",
        s.bag,
        s.frames_processed,
        s.frames_read,
        s.frames_failed,
        s.keyframes,
        state("lost"),
        state("relocalized"),
        s.dropped,
        s.latency_ms.median,
        s.latency_ms.p90,
        s.latency_ms.max,
        s.frames_per_s,
        s.wall_s
    );
    let join = |items: Vec<String>| items.join(", ");
    eprintln!(
        "states: {}",
        join(s.states.iter().map(|(k, v)| format!("{k} {v}")).collect())
    );
    eprintln!(
        "pose scale: {}",
        join(s.scales.iter().map(|(k, v)| format!("{k} {v}")).collect())
    );
    eprintln!(
        "median stage ms: {}",
        join(
            s.stage_median_ms
                .iter()
                .filter(|(_, v)| **v > 0.0)
                .map(|(k, v)| format!("{} {v:.1}", k.trim_end_matches("_ms")))
                .collect()
        )
    );
    if !s.output.is_empty() {
        eprintln!(
            "wrote {}: {}",
            s.output,
            join(s.outputs.iter().map(|(k, v)| format!("{k} {v}")).collect())
        );
    }
    if s.images_unpaired > 0 {
        eprintln!(
            "{} image(s) found no camera_info within node.sync_tolerance_s",
            s.images_unpaired
        );
    }
    for m in &s.malformed {
        eprintln!(
            "skipped malformed message: {} #{}: {}",
            m.topic, m.index, m.reason
        );
    }
    for f in &s.failed {
        eprintln!("skipped frame: {} stamp {}: {}", f.topic, f.stamp, f.reason);
    }
    if let Some(e) = &s.read_error {
        eprintln!("reading stopped early: {e}");
    }
    if s.interrupted {
        eprintln!("reading stopped early on a signal");
    }
    let a = &s.accounting;
    eprintln!(
        "images: {} read = {} processed + {} failed + {} dropped + {} rate-skipped + {} \
         unpaired + {} malformed{}",
        a.images_read,
        a.processed,
        a.failed,
        a.dropped,
        a.rate_skipped,
        a.unpaired,
        a.malformed,
        if a.unaccounted > 0 {
            format!(" + {} unaccounted", a.unaccounted)
        } else {
            String::new()
        }
    );
    if s.waits_capped > 0 {
        eprintln!("{} stamp gap(s) cut short at --max-wait", s.waits_capped);
    }
    let loss = &s.data_loss;
    for n in &loss.notes {
        eprintln!("note: {n}");
    }
    if !loss.summary_problem.is_empty() {
        eprintln!(
            "bag summary not usable ({}); the file was scanned",
            loss.summary_problem
        );
    }
    if loss.lost_data() {
        eprintln!("damaged bag: {}", loss.describe());
        for l in &loss.losses {
            let file = if l.file.is_empty() {
                String::new()
            } else {
                format!("{}: ", l.file)
            };
            eprintln!("  {file}bytes {}..{}: {}", l.start, l.end, l.reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camera_names_and_info_topics_come_from_the_namespace() {
        assert_eq!(
            camera_from_topic("/cam0/image_raw", 0),
            ("cam0".into(), "/cam0/camera_info".into())
        );
        assert_eq!(
            camera_from_topic("/rig/left/image_rect/compressed", 1),
            ("left".into(), "/rig/left/camera_info".into())
        );
        assert_eq!(
            camera_from_topic("/image_raw", 2),
            ("cam2".into(), "/camera_info".into())
        );
        let c = cameras_from_flags(&["/a/image,/a/info".into(), "/b/image_raw".into()]).unwrap();
        assert_eq!(c.camera_info_topics, ["/a/info", "/b/camera_info"]);
        assert_eq!(c.names, ["a", "b"]);
        assert!(cameras_from_flags(&[",/x".into()]).is_err());
    }

    #[test]
    fn depth_and_right_flags_attach_to_the_cameras_by_position() {
        let mut c =
            cameras_from_flags(&["/a/image".into(), "/b/image".into(), "/c/image".into()]).unwrap();
        let depths = ["-".to_string(), "/b/depth".into()];
        let rights = ["/a/right/image".to_string()];
        metric_from_flags(&mut c, &depths, &rights).unwrap();
        assert_eq!(c.depth_topics, ["", "/b/depth", ""]);
        assert_eq!(c.right_image_topics, ["/a/right/image", "", ""]);
        assert_eq!(c.right_camera_info_topics, ["/a/right/camera_info", "", ""]);
        let cams = c.resolve().unwrap();
        assert!(matches!(
            cams[1].metric,
            imd::io::frames::MetricSource::Depth { .. }
        ));
        assert!(matches!(
            cams[0].metric,
            imd::io::frames::MetricSource::Stereo(_)
        ));
        let too_many: Vec<String> = vec!["-".into(); 4];
        assert!(metric_from_flags(&mut c, &too_many, &[]).is_err());
    }
}
