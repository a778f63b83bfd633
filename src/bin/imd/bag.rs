//! `imd bag info PATH [--json]`: what a bag holds, like `ros2 bag info`, without ROS: files
//! with sizes, storage, compression, duration, start and end, and every topic with its type,
//! count, serialization and QoS — enough to pick `imd replay --camera` topics.
//!
//! `imd bag check PATH [--topic T]... [--json]`: read and decode every camera message (Image,
//! CompressedImage, CameraInfo) as `imd replay` would, and report counts, damage and the read
//! throughput (MB/s of image data); exit 3 when anything was lost or failed to decode.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use imd::io::bag::{Bag, BagPayload};
use serde::Serialize;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: BagCommand,
}

#[derive(clap::Subcommand)]
enum BagCommand {
    /// Files, storage, compression, duration and topics of a bag directory or storage file.
    Info {
        /// A rosbag2 bag directory (with metadata.yaml), or a single .mcap / .db3 file.
        path: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Read and decode every camera message; report counts, damage and MB/s of image data.
    Check {
        /// A rosbag2 bag directory (with metadata.yaml), or a single .mcap / .db3 file.
        path: PathBuf,
        /// Topics to read (default: every Image, CompressedImage and CameraInfo topic).
        #[arg(long = "topic")]
        topics: Vec<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// What `imd bag check` measured.
#[derive(Debug, Serialize)]
struct Check {
    path: String,
    messages: BTreeMap<String, u64>,
    malformed: u64,
    image_bytes: u64,
    seconds: f64,
    image_mb_per_s: f64,
    data_lost: String,
    notes: Vec<String>,
}

fn check(bag: &Bag, topics: &[String]) -> Result<Check> {
    let readable = [
        "sensor_msgs/msg/Image",
        "sensor_msgs/msg/CompressedImage",
        "sensor_msgs/msg/CameraInfo",
    ];
    let selected: Vec<String> = if topics.is_empty() {
        bag.topics()
            .iter()
            .filter(|t| readable.contains(&t.message_type.as_str()))
            .map(|t| t.name.clone())
            .collect()
    } else {
        topics.to_vec()
    };
    let refs: Vec<&str> = selected.iter().map(String::as_str).collect();
    let start = Instant::now();
    let mut stream = bag.messages(&refs)?;
    let mut messages: BTreeMap<String, u64> = BTreeMap::new();
    let (mut malformed, mut image_bytes) = (0u64, 0u64);
    for item in stream.by_ref() {
        match item {
            Ok(m) => {
                *messages.entry(m.topic.to_string()).or_default() += 1;
                image_bytes += match &m.payload {
                    BagPayload::Image(i) => i.data.len() as u64,
                    BagPayload::CompressedImage(i) => i.data.len() as u64,
                    BagPayload::CameraInfo(_) | BagPayload::Tf(_) => 0,
                };
            }
            Err(e) if e.is_message_error() => {
                eprintln!("malformed: {e}");
                malformed += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let report = stream.report();
    Ok(Check {
        path: bag.path().display().to_string(),
        messages,
        malformed,
        image_bytes,
        seconds,
        image_mb_per_s: image_bytes as f64 / 1e6 / seconds.max(1e-9),
        data_lost: if report.lost_data() {
            report.describe()
        } else {
            String::new()
        },
        notes: report.notes.clone(),
    })
}

/// What `imd bag info` prints.
#[derive(Debug, Serialize)]
struct Info {
    path: String,
    storage: &'static str,
    compression: &'static str,
    metadata_version: Option<u32>,
    files: Vec<FileInfo>,
    start_ns: Option<u64>,
    end_ns: Option<u64>,
    duration_s: Option<f64>,
    messages: u64,
    /// Files that are missing, unreadable or damaged: the counts cover the readable part only.
    damaged_files: Vec<String>,
    topics: Vec<TopicInfo>,
    notes: Vec<String>,
}

#[derive(Debug, Serialize)]
struct FileInfo {
    path: String,
    bytes: Option<u64>,
    messages: Option<u64>,
    problem: String,
}

#[derive(Debug, Serialize)]
struct TopicInfo {
    name: String,
    message_type: String,
    count: u64,
    serialization_format: String,
    qos: String,
}

fn info(bag: &Bag) -> Info {
    let range = bag.time_range();
    let files: Vec<FileInfo> = bag
        .files()
        .iter()
        .map(|f| FileInfo {
            path: f.name.clone(),
            bytes: f.size,
            messages: f.metadata_count.or_else(|| {
                (!f.topics().is_empty()).then(|| f.topics().iter().map(|t| t.message_count).sum())
            }),
            problem: if f.problem.is_empty() {
                f.damage().unwrap_or_default()
            } else {
                f.problem.clone()
            },
        })
        .collect();
    let damaged_files = files
        .iter()
        .filter(|f: &&FileInfo| !f.problem.is_empty())
        .map(|f| format!("{}: {}", f.path, f.problem))
        .collect();
    let topics: Vec<TopicInfo> = bag
        .topics_with_qos()
        .iter()
        .map(|t| TopicInfo {
            name: t.info.name.clone(),
            message_type: t.info.message_type.clone(),
            count: t.info.message_count,
            serialization_format: t.info.message_encoding.clone(),
            qos: t.qos.clone(),
        })
        .collect();
    Info {
        path: bag.path().display().to_string(),
        storage: bag.storage().id(),
        compression: bag.compression().describe(),
        metadata_version: bag.metadata().map(|m| m.version),
        files,
        start_ns: range.map(|r| r.0),
        end_ns: range.map(|r| r.1),
        duration_s: range.map(|(a, b)| (b - a) as f64 * 1e-9),
        messages: topics.iter().map(|t| t.count).sum(),
        damaged_files,
        topics,
        notes: bag.notes().to_vec(),
    }
}

fn stamp(ns: Option<u64>) -> String {
    match ns {
        // Log times are u64 nanoseconds (not a ROS Time, whose seconds are i32).
        Some(ns) => format!("{}.{:09} s", ns / 1_000_000_000, ns % 1_000_000_000),
        None => "unknown".into(),
    }
}

fn print_text(i: &Info) {
    let size: u64 = i.files.iter().filter_map(|f| f.bytes).sum();
    println!(
        "Files:             {}",
        i.files.first().map(|f| f.path.as_str()).unwrap_or("")
    );
    for f in i.files.iter().skip(1) {
        println!("                   {}", f.path);
    }
    println!(
        "Bag size:          {:.1} MiB",
        size as f64 / (1 << 20) as f64
    );
    println!(
        "Storage id:        {}{}",
        i.storage,
        i.metadata_version
            .map(|v| format!(" (metadata.yaml version {v})"))
            .unwrap_or_else(|| " (no metadata.yaml)".into())
    );
    println!("Compression:       {}", i.compression);
    println!(
        "Duration:          {}",
        i.duration_s
            .map(|d| format!("{d:.3} s"))
            .unwrap_or_else(|| "unknown".into())
    );
    println!("Start:             {}", stamp(i.start_ns));
    println!("End:               {}", stamp(i.end_ns));
    println!(
        "Messages:          {}{}",
        i.messages,
        if i.damaged_files.is_empty() {
            ""
        } else {
            " (readable part only: the bag is damaged)"
        }
    );
    for (n, t) in i.topics.iter().enumerate() {
        println!(
            "{}Topic: {} | Type: {} | Count: {} | Serialization Format: {}",
            if n == 0 {
                "Topic information: "
            } else {
                "                   "
            },
            t.name,
            t.message_type,
            t.count,
            t.serialization_format
        );
    }
    println!("Files in detail:");
    for f in &i.files {
        println!(
            "  {}: {} bytes, {} messages{}",
            f.path,
            f.bytes
                .map(|b| b.to_string())
                .unwrap_or_else(|| "missing,".into()),
            f.messages
                .map(|m| m.to_string())
                .unwrap_or_else(|| "unknown".into()),
            if f.problem.is_empty() {
                String::new()
            } else {
                format!(" ({})", f.problem)
            }
        );
    }
    for n in &i.notes {
        println!("Note: {n}");
    }
}

pub fn run(args: Args) -> Result<()> {
    match args.command {
        BagCommand::Info { path, json } => {
            let bag = Bag::open(&path).with_context(|| format!("opening {}", path.display()))?;
            let i = info(&bag);
            if json {
                println!("{}", serde_json::to_string_pretty(&i)?);
            } else {
                print_text(&i);
            }
            if !i.damaged_files.is_empty() {
                return Err(crate::Incomplete {
                    code: crate::Incomplete::PARTIAL,
                    message: format!(
                        "{}: damaged bag, the counts cover only what is readable: {}",
                        path.display(),
                        i.damaged_files.join("; ")
                    ),
                }
                .into());
            }
            Ok(())
        }
        BagCommand::Check { path, topics, json } => {
            let bag = Bag::open(&path).with_context(|| format!("opening {}", path.display()))?;
            let c = check(&bag, &topics)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&c)?);
            } else {
                for (t, n) in &c.messages {
                    println!("{t}: {n} messages");
                }
                println!(
                    "{} MB of image data in {:.3} s: {:.1} MB/s",
                    c.image_bytes as f64 / 1e6,
                    c.seconds,
                    c.image_mb_per_s
                );
                for n in &c.notes {
                    println!("note: {n}");
                }
            }
            if !c.data_lost.is_empty() || c.malformed > 0 {
                return Err(crate::Incomplete {
                    code: crate::Incomplete::PARTIAL,
                    message: format!(
                        "{}: {} malformed message(s); data lost: {}",
                        path.display(),
                        c.malformed,
                        if c.data_lost.is_empty() {
                            "none"
                        } else {
                            &c.data_lost
                        }
                    ),
                }
                .into());
            }
            Ok(())
        }
    }
}
