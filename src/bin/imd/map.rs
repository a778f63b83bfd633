//! `imd map build BAG --config CFG [--model DIR] [--camera T]... [--depth T]... --out MAP
//! [--summary-json FILE]`: run the node's pipeline over a bag in mapping mode (every frame, in
//! order) and save the keyframes kept for the map (with their odometry poses, images,
//! embeddings and depth) to the map folder MAP, atomically (a map already there is replaced
//! only once the new one is complete).
//!
//! `imd map info MAP [--json]`: the manifest (format version, model, frame, keyframes per
//! camera, bytes), after loading every file and checking its size and checksum.
//!
//! `imd replay BAG --map MAP` (in replay.rs) localizes a recording in a map: [`localize`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use imd::config::ImdConfig;
use imd::model::ImdMatcher;
use imd::pipeline::map::run::{run_bag, run_bag_to, MapRun, MapRunSummary};
use imd::pipeline::map::{self, MANIFEST_FILE};
use imd::pipeline::PairMatcher;
use serde::Serialize;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: MapCommand,
}

// Parsed once per process: the size of the build variant's flags does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(clap::Subcommand)]
enum MapCommand {
    /// Build a map from a bag: the replay pipeline in mapping mode (metric cameras: depth or
    /// stereo).
    Build {
        /// rosbag2 bag (directory, .mcap or .db3), as for `imd replay`.
        bag: PathBuf,
        /// ROS 2 parameter file (or bare YAML mapping) with the node's configuration.
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        model: crate::model_args::ModelArgs,
        /// A camera as IMAGE_TOPIC[,CAMERA_INFO_TOPIC] (as `imd replay --camera`).
        #[arg(long = "camera", value_name = "IMAGE_TOPIC[,CAMERA_INFO_TOPIC]")]
        cameras: Vec<String>,
        /// The aligned depth topic of the --camera at the same position (`-` for none).
        #[arg(long = "depth", value_name = "DEPTH_TOPIC", requires = "cameras")]
        depths: Vec<String>,
        /// The map folder to write (created; a map there is replaced atomically only with
        /// --overwrite, a folder with other files never).
        #[arg(long)]
        out: PathBuf,
        /// Replace a map already at --out.
        #[arg(long)]
        overwrite: bool,
        /// Write the run's summary as JSON to this file.
        #[arg(long)]
        summary_json: Option<PathBuf>,
    },
    /// Describe a map after checking every file.
    Info {
        /// The map folder.
        path: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: Args) -> Result<()> {
    match args.command {
        MapCommand::Build {
            bag,
            config,
            model,
            cameras,
            depths,
            out,
            overwrite,
            summary_json,
        } => {
            imd::io::paths::check_output_not_input(&out, &[&bag]).context("--out")?;
            let replace = map::Replace::new(overwrite, None);
            // Before the run, so a refusal does not come after mapping the whole bag.
            map::check_replaceable(&out, &replace).context("--out")?;
            let mut cfg = match &config {
                Some(path) => ImdConfig::from_file(path)?,
                None => ImdConfig::default(),
            };
            model.apply(&mut cfg.model);
            if !cameras.is_empty() {
                cfg.cameras = crate::replay::cameras_from_flags(&cameras)?;
                crate::replay::metric_from_flags(&mut cfg.cameras, &depths, &[])?;
            }
            cfg.validate().context("configuration")?;
            if cfg.cameras.image_topics.is_empty() {
                bail!("no cameras: give --camera IMAGE_TOPIC[,CAMERA_INFO_TOPIC] or cameras in --config");
            }
            build(&bag, &cfg, &out, &replace, summary_json.as_deref())
        }
        MapCommand::Info { path, json } => info(&path, json),
    }
}

fn load_matcher(config: &ImdConfig) -> Result<ImdMatcher> {
    ImdMatcher::load(&config.model)
        .with_context(|| format!("loading the matcher from {:?}", config.model.model_dir))
}

fn build(
    bag: &Path,
    config: &ImdConfig,
    out: &Path,
    replace: &map::Replace,
    summary_json: Option<&Path>,
) -> Result<()> {
    let matcher = load_matcher(config)?;
    let (processor, summary) = run_bag(bag, config, matcher, MapRun::Build)
        .with_context(|| format!("mapping {}", bag.display()))?;
    let Some(built) = processor.export_map()? else {
        bail!("no map session (internal error)");
    };
    if built.keyframes.is_empty() {
        bail!(
            "{}: no keyframe got a metric pose ({} frames); a map needs a metric camera (depth \
             or stereo) that tracks",
            bag.display(),
            summary.frames
        );
    }
    let t = Instant::now();
    let report =
        map::save(&built, out, replace).with_context(|| format!("saving {}", out.display()))?;
    eprintln!(
        "mapped {}: {} frames, {} failed; saved {} keyframes to {} ({} bytes, {} per keyframe, \
         {:.2} s)",
        bag.display(),
        summary.frames,
        summary.failed.len(),
        report.keyframes,
        out.display(),
        report.bytes,
        report.bytes / report.keyframes.max(1) as u64,
        t.elapsed().as_secs_f64()
    );
    let without_depth = built.keyframes.iter().filter(|k| k.depth.is_none()).count();
    if without_depth > 0 {
        eprintln!(
            "note: {without_depth} keyframe(s) saved without metric depth (a stereo keyframe \
             whose pair triangulated nothing); they can be retrieved but give no metric pose"
        );
    }
    if let Some(path) = summary_json {
        write_json(path, &summary)?;
    }
    Ok(())
}

/// `imd replay BAG --map MAP`: localize every frame of `bag` in the map at `map_dir`.
pub fn localize(
    bag: &Path,
    config: &ImdConfig,
    map_dir: &Path,
    out: Option<&Path>,
    summary_json: Option<&Path>,
    max_frames: u64,
) -> Result<()> {
    // A map that cannot be used fails before the model loads.
    map::load_manifest(map_dir)?;
    // The run's messages say what the node's would with this map as `map.path`.
    let mut config = config.clone();
    config.map.path = map_dir.display().to_string();
    config.map.mode = map::MapMode::Localization;
    let matcher = load_matcher(&config)?;
    let identity = matcher.identity()?;
    let t = Instant::now();
    let loaded = map::load(map_dir, Some(&identity))?;
    let read_s = t.elapsed().as_secs_f64();
    let (_, summary) = run_bag_to(
        bag,
        &config,
        matcher,
        MapRun::Localize(&loaded),
        out,
        max_frames,
    )
    .with_context(|| format!("localizing {} in {}", bag.display(), map_dir.display()))?;
    print_localized(&summary, read_s);
    if let Some(path) = summary_json {
        write_json(path, &summary)?;
    }
    Ok(())
}

fn print_localized(s: &MapRunSummary, read_s: f64) {
    let n = s.map_keyframes.max(1) as f64;
    eprintln!(
        "localized {} of {} frames in the map ({} relocalized against map keyframes, {} \
         failed); map of {} keyframes read in {:.3} s and prepared in {:.3} s ({:.1} ms per \
         keyframe); {:.2} frames/s",
        s.localized,
        s.frames,
        s.relocalized,
        s.failed.len(),
        s.map_keyframes,
        read_s,
        s.map_load_s,
        (read_s + s.map_load_s) / n * 1e3,
        s.frames as f64 / s.wall_s.max(1e-9)
    );
    let mut per_camera: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for f in &s.per_frame {
        let e = per_camera.entry(&f.camera).or_default();
        e.0 += 1;
        e.1 += f.position_m.is_some() as u64;
    }
    for (camera, (frames, localized)) in per_camera {
        eprintln!("  {camera}: {localized} of {frames} frames localized");
    }
}

#[derive(Serialize)]
struct Info {
    path: String,
    format_version: u32,
    model: String,
    frame_id: String,
    keyframes: usize,
    keyframes_per_camera: BTreeMap<String, usize>,
    depth: BTreeMap<String, usize>,
    bytes: u64,
    bytes_per_keyframe: u64,
    load_s: f64,
    load_ms_per_keyframe: f64,
    extent_m: Option<[[f64; 3]; 2]>,
}

fn info(path: &Path, json: bool) -> Result<()> {
    let manifest = map::load_manifest(path)?;
    let t = Instant::now();
    map::load(path, None)?;
    let load_s = t.elapsed().as_secs_f64();
    let mut bytes = std::fs::metadata(path.join(MANIFEST_FILE))
        .map(|m| m.len())
        .unwrap_or(0);
    let mut per_camera = BTreeMap::new();
    let mut depth = BTreeMap::new();
    let mut extent: Option<[[f64; 3]; 2]> = None;
    for k in &manifest.keyframes {
        bytes += k.image.bytes + k.data.bytes;
        *per_camera.entry(k.camera.clone()).or_insert(0) += 1;
        *depth.entry(k.depth.clone()).or_insert(0) += 1;
        let e = extent.get_or_insert([k.position_m, k.position_m]);
        for (i, p) in k.position_m.iter().enumerate() {
            e[0][i] = e[0][i].min(*p);
            e[1][i] = e[1][i].max(*p);
        }
    }
    let n = manifest.keyframes.len();
    let info = Info {
        path: path.display().to_string(),
        format_version: manifest.version,
        model: manifest.model,
        frame_id: manifest.frame_id,
        keyframes: n,
        keyframes_per_camera: per_camera,
        depth,
        bytes,
        bytes_per_keyframe: bytes / n.max(1) as u64,
        load_s,
        load_ms_per_keyframe: load_s * 1e3 / n.max(1) as f64,
        extent_m: extent,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&info)?);
        return Ok(());
    }
    println!("map:        {}", info.path);
    println!("format:     version {}", info.format_version);
    println!("model:      {}", info.model);
    println!("frame:      {}", info.frame_id);
    println!(
        "keyframes:  {} ({})",
        n,
        info.keyframes_per_camera
            .iter()
            .map(|(c, k)| format!("{c} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "depth:      {}",
        info.depth
            .iter()
            .map(|(d, k)| format!("{d} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "size:       {} bytes ({} per keyframe)",
        info.bytes, info.bytes_per_keyframe
    );
    println!(
        "checked:    every file's size and sha256, decoded in {:.3} s ({:.2} ms per keyframe)",
        info.load_s, info.load_ms_per_keyframe
    );
    if let Some([lo, hi]) = info.extent_m {
        println!(
            "extent:     x {:.2}..{:.2}, y {:.2}..{:.2}, z {:.2}..{:.2} m",
            lo[0], hi[0], lo[1], hi[1], lo[2], hi[2]
        );
    }
    Ok(())
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).context("serializing the summary")?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}
