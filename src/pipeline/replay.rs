//! `imd replay`'s engine: a rosbag2 bag (MCAP or sqlite3, a directory or one file) through
//! the node's own pipeline into an output bag.
//!
//! The path is the node's: [`BagFrames`] pairs images with camera_info exactly as the node's
//! subscriptions do, a [`FrameWorker`] runs the [`TrackerProcessor`] on its own thread, and
//! the same [`super::messages`] become CDR messages on the topics the node publishes
//! ([`super::topics::OutputTopic::resolved`]). Scheduling:
//! - default (lossless): the reader hands a frame over only when the worker is idle, so every
//!   paired frame is processed, in log-time order, and results do not depend on machine speed;
//!   latency is then the frame's own processing time; `node.max_rate_hz` is not applied;
//! - realtime: frames are handed over at their stamps' pace (scaled by `rate`) without
//!   waiting, so a worker slower than the bag drops frames (newest wins) exactly like the node,
//!   and `node.max_rate_hz` applies.
//!
//!   Waits across stamp gaps are capped at `max_wait_s` (the clock then restarts at the
//!   frame after the gap), and `rate` must lie in [`ReplayOptions::RATE_RANGE`].
//!
//! Malformed messages are reported (topic, per-topic index, reason) and skipped; frames that
//! fail to process (undecodable pixels, a camera_info that does not fit) are reported (topic,
//! stamp, reason), get an ERROR diagnostics entry, and the replay goes on. Damaged chunks or
//! records of the bag are skipped by the reader and reported in [`ReplaySummary::data_loss`].
//!
//! Every image read is accounted for ([`FrameAccounting`]): processed, failed, dropped,
//! rate-skipped, unpaired (no camera_info in tolerance, including images still waiting when
//! the bag ends) or malformed; the counts add up to the images read.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::contract::{FrameOutputs, FrameProcessor};
use super::matcher::PairMatcher;
use super::messages::NODE_NAME;
use super::topics::{Output, Published};
use super::transforms::{SharedTransforms, TransformTree, TF_STATIC_TOPIC};
use super::worker::{FrameSink, FrameWorker, WorkerCameraStats, WorkerError, WorkerOptions};
use super::{PipelineError, PoseScale, TrackState, TrackerProcessor};
use crate::config::{CameraConfig, ImdConfig};
use crate::io::bag::{Bag, BagError, BagFrames, BagMessage, BagOutput, BagPayload, ReadReport};
use crate::io::camera_sync::SyncStats;
use crate::io::msgs::builtin_interfaces::Time;
use crate::io::msgs::diagnostic_msgs::{DiagnosticArray, DiagnosticStatus, KeyValue};
use crate::io::msgs::std_msgs::Header;

/// How to replay.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayOptions {
    /// Hand frames over at the bag's pace without waiting (drops like the live node).
    pub realtime: bool,
    /// Playback speed factor for `realtime` (1 = as recorded).
    pub rate: f64,
    /// Stop after this many paired frames (0 = the whole bag).
    pub max_frames: u64,
    /// Longest wait between two frames in `realtime` mode, s (a stamp gap longer than this,
    /// after scaling by `rate`, is cut short and the clock restarts at the next frame).
    pub max_wait_s: f64,
    /// Stop reading when this flag is set (a signal handler sets it): the frames handed over
    /// are finished, the output bag is closed whole, and the summary says
    /// [`ReplaySummary::interrupted`].
    pub stop: StopFlag,
}

/// A flag that asks a running replay to stop (set from a signal handler: a plain atomic store).
#[derive(Debug, Clone, Copy, Default)]
pub struct StopFlag(Option<&'static std::sync::atomic::AtomicBool>);

impl StopFlag {
    /// Watch `flag`.
    pub fn new(flag: &'static std::sync::atomic::AtomicBool) -> Self {
        StopFlag(Some(flag))
    }

    /// True once the flag was set.
    pub fn is_set(&self) -> bool {
        self.0
            .is_some_and(|f| f.load(std::sync::atomic::Ordering::SeqCst))
    }
}

impl PartialEq for StopFlag {
    fn eq(&self, other: &Self) -> bool {
        match (self.0, other.0) {
            (Some(a), Some(b)) => std::ptr::eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

impl ReplayOptions {
    /// Accepted `rate` values.
    pub const RATE_RANGE: (f64, f64) = (0.01, 100.0);
    /// Accepted `max_wait_s` values.
    pub const MAX_WAIT_RANGE: (f64, f64) = (0.0, 60.0);
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            realtime: false,
            rate: 1.0,
            max_frames: 0,
            max_wait_s: 1.0,
            stop: StopFlag::default(),
        }
    }
}

/// Progress after each frame read from the bag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayProgress {
    /// Image messages read on the camera topics (paired or not).
    pub images_read: u64,
    /// Image messages on the camera topics in the bag (0 when the bag has no statistics).
    pub images_total: u64,
    /// Frames the processing thread has finished so far (a caller sampling resources per
    /// processed frame, e.g. resident memory, keys its samples on it).
    pub frames_processed: u64,
}

/// A message that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MalformedMessage {
    /// Its topic.
    pub topic: String,
    /// 0-based index among the topic's messages.
    pub index: u64,
    /// Why it was skipped.
    pub reason: String,
}

/// A frame that failed to process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedFrame {
    /// The camera's image topic.
    pub topic: String,
    /// The image stamp, `sec.nanosec`.
    pub stamp: String,
    /// Why it failed.
    pub reason: String,
}

/// Median, 90th percentile and maximum of a series (0 when empty).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Spread {
    /// Median.
    pub median: f64,
    /// 90th percentile (nearest rank).
    pub p90: f64,
    /// Maximum.
    pub max: f64,
}

impl Spread {
    /// The spread of `values`.
    pub fn of(values: &[f64]) -> Spread {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Spread::default();
        }
        v.sort_by(f64::total_cmp);
        let rank = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            0.5 * (v[n / 2 - 1] + v[n / 2])
        };
        Spread {
            median,
            p90: rank(0.9),
            max: v[n - 1],
        }
    }
}

/// Where every image read from the camera topics went. `images_read` equals the sum of the
/// other fields (checked by [`FrameAccounting::balanced`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FrameAccounting {
    /// Image messages read on the camera topics (decodable or not; messages in damaged parts
    /// of the bag are in [`ReplaySummary::data_loss`] instead).
    pub images_read: u64,
    /// Tracked.
    pub processed: u64,
    /// Failed to process (reported in [`ReplaySummary::failed`]).
    pub failed: u64,
    /// Replaced by a newer frame before processing (realtime only).
    pub dropped: u64,
    /// Skipped for `node.max_rate_hz` (realtime only).
    pub rate_skipped: u64,
    /// Never paired with a camera_info within `node.sync_tolerance_s` (replaced while
    /// waiting, or still waiting when the bag or `max_frames` ended the read).
    pub unpaired: u64,
    /// Did not decode (reported in [`ReplaySummary::malformed`]).
    pub malformed: u64,
    /// Paired frames neither processed, failed, dropped nor skipped (only if the processing
    /// thread died; 0 otherwise).
    pub unaccounted: u64,
}

impl FrameAccounting {
    /// True when the categories add up to `images_read`.
    pub fn balanced(&self) -> bool {
        self.images_read
            == self.processed
                + self.failed
                + self.dropped
                + self.rate_skipped
                + self.unpaired
                + self.malformed
                + self.unaccounted
    }
}

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReplaySummary {
    /// The input bag.
    pub bag: String,
    /// The output bag (empty when none was written).
    pub output: String,
    /// Image + camera_info pairs read from the bag.
    pub frames_read: u64,
    /// Frames tracked.
    pub frames_processed: u64,
    /// Frames that failed to process.
    pub frames_failed: u64,
    /// Frames per tracking state.
    pub states: BTreeMap<TrackState, u64>,
    /// Frames with a pose, per scale (`monocular`, `metric_depth`, `metric_stereo`).
    pub scales: BTreeMap<PoseScale, u64>,
    /// Frames that became keyframes.
    pub keyframes: u64,
    /// Frames dropped by the newest-frame-wins slots (realtime only).
    pub dropped: u64,
    /// Frames skipped for `node.max_rate_hz` (realtime only).
    pub rate_skipped: u64,
    /// Images that never found a camera_info within `node.sync_tolerance_s`.
    pub images_unpaired: u64,
    /// Messages skipped because they did not decode.
    pub malformed: Vec<MalformedMessage>,
    /// Frames that failed to process.
    pub failed: Vec<FailedFrame>,
    /// Reading stopped early on this error (`None` when the bag was read to its end).
    pub read_error: Option<String>,
    /// Reading was stopped on request ([`ReplayOptions::stop`], a signal) before the bag
    /// ended; the outputs hold the frames processed until then.
    pub interrupted: bool,
    /// What the bag reader skipped: damaged chunks and records (byte ranges, messages lost).
    pub data_loss: ReadReport,
    /// Where every image went.
    pub accounting: FrameAccounting,
    /// Realtime waits cut short at `max_wait_s` (stamp gaps).
    pub waits_capped: u64,
    /// Messages written per output topic.
    pub outputs: BTreeMap<String, u64>,
    /// Latency per frame (receive → messages ready), ms.
    pub latency_ms: Spread,
    /// Median milliseconds per stage.
    pub stage_median_ms: BTreeMap<String, f64>,
    /// Wall time of the replay, s.
    pub wall_s: f64,
    /// Processed frames per second of wall time.
    pub frames_per_s: f64,
}

/// Results the sink collects on the worker thread.
#[derive(Default)]
struct Collected {
    writer: Option<BagOutput>,
    write_error: Option<String>,
    outputs: BTreeMap<String, u64>,
    states: BTreeMap<TrackState, u64>,
    scales: BTreeMap<PoseScale, u64>,
    keyframes: u64,
    latency: Vec<f64>,
    stages: BTreeMap<String, Vec<f64>>,
    failed: Vec<FailedFrame>,
    processed: u64,
}

impl Collected {
    fn write(&mut self, stamp: Time, published: &Published) {
        let topic = published.topic().resolved();
        *self.outputs.entry(topic.clone()).or_default() += 1;
        let Some(writer) = self.writer.as_mut() else {
            return;
        };
        if let Err(e) = write_published(writer, stamp, published) {
            if self.write_error.is_none() {
                log::error!("{e}");
                self.write_error = Some(e.to_string());
            }
        }
    }

    fn diagnostics(&mut self, stamp: Time, status: Vec<DiagnosticStatus>) {
        self.write(stamp, &diagnostics_message(stamp, status));
    }
}

/// Write one output message into an output bag: on its topic as a node in the root namespace
/// publishes it, at its frame's stamp (the log time).
pub(crate) fn write_published(
    bag: &mut BagOutput,
    stamp: Time,
    published: &Published,
) -> Result<(), BagError> {
    let topic = published.topic().resolved();
    published
        .message
        .write_to(bag, &topic, stamp.as_nanos().max(0) as u64)
}

/// A frame's statuses as its `/diagnostics` array (a replay writes one per frame).
pub(crate) fn diagnostics_message(stamp: Time, status: Vec<DiagnosticStatus>) -> Published {
    let msg = DiagnosticArray {
        header: Header {
            stamp,
            frame_id: String::new(),
        },
        status,
    };
    Published::new(Output::Diagnostics, msg)
}

struct ReplaySink {
    collected: Arc<Mutex<Collected>>,
    cameras: Vec<CameraConfig>,
}

impl ReplaySink {
    fn lock(&self) -> MutexGuard<'_, Collected> {
        lock(&self.collected)
    }
}

/// The collected results; a panic on the worker thread leaves them consistent (every update
/// is one counter or one push), so a poisoned lock is used as is.
fn lock(collected: &Mutex<Collected>) -> MutexGuard<'_, Collected> {
    collected.lock().unwrap_or_else(|p| p.into_inner())
}

impl FrameSink for ReplaySink {
    fn outputs(&mut self, _camera: usize, out: FrameOutputs, _stats: &WorkerCameraStats) {
        let mut c = self.lock();
        c.processed += 1;
        let stamp = out.stamp;
        for published in &out.messages {
            c.write(stamp, published);
        }
        c.diagnostics(stamp, out.diagnostics);
        if let Some(r) = out.report {
            *c.states.entry(r.state).or_default() += 1;
            if let Some(scale) = r.scale {
                *c.scales.entry(scale).or_default() += 1;
            }
            c.keyframes += r.new_keyframe as u64;
            c.latency.push(r.latency_ms);
            for (k, v) in r.stage_ms {
                c.stages.entry(k).or_default().push(v);
            }
        }
    }

    fn failure(&mut self, camera: usize, stamp: Time, error: &PipelineError) {
        let cam = self.cameras.get(camera);
        let topic = cam.map(|c| c.image_topic.clone()).unwrap_or_default();
        let name = cam.map(|c| c.name.clone()).unwrap_or_default();
        let stamp_text = stamp.to_string();
        let status = DiagnosticStatus {
            level: DiagnosticStatus::ERROR,
            name: format!("{NODE_NAME}: tracker {name}"),
            message: format!("frame skipped: {error}"),
            hardware_id: name,
            values: vec![
                KeyValue::new("state", "failed"),
                KeyValue::new("image_topic", &topic),
                KeyValue::new("frame_stamp", &stamp_text),
                KeyValue::new("error", error),
            ],
        };
        let mut c = self.lock();
        c.failed.push(FailedFrame {
            topic,
            stamp: stamp_text,
            reason: error.to_string(),
        });
        c.diagnostics(stamp, vec![status]);
    }
}

/// The bag's `/tf_static` (where a recorded robot's camera mounts are), as a tree; empty when
/// the bag has none. Damaged messages are skipped with a warning (the mounts then come from
/// `cameras.mounts`, as the log says).
pub(crate) fn static_transforms(reader: &Bag) -> SharedTransforms {
    let mut tree = TransformTree::new();
    if reader.topics().iter().any(|t| t.name == TF_STATIC_TOPIC) {
        match reader.messages(&[TF_STATIC_TOPIC]) {
            Ok(messages) => {
                for m in messages {
                    match m {
                        Ok(BagMessage {
                            payload: BagPayload::Tf(tf),
                            ..
                        }) => {
                            tree.insert(&tf);
                        }
                        Ok(_) => {}
                        Err(e) => log::warn!("{}: {TF_STATIC_TOPIC}: {e}", reader.path().display()),
                    }
                }
            }
            Err(e) => log::warn!(
                "{}: {TF_STATIC_TOPIC} not read: {e}",
                reader.path().display()
            ),
        }
        log::info!(
            "{}: {} frame(s) from {TF_STATIC_TOPIC}",
            reader.path().display(),
            tree.len()
        );
    }
    Arc::new(std::sync::RwLock::new(tree))
}

/// Sleep `d`, waking early when `stop` is set (a realtime wait must not delay a signal).
fn sleep_unless_stopped(d: Duration, stop: &StopFlag) {
    let end = Instant::now() + d;
    while !stop.is_set() {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(20)));
    }
}

/// What a replay of `bag` with `config` reads, which no output may overwrite or lie inside:
/// every file of the bag (its folder, `metadata.yaml`, each listed storage file wherever its
/// symlink leads) and the weights folder.
pub fn input_set(bag: &Path, config: &ImdConfig) -> crate::io::paths::InputSet {
    let mut set = crate::io::paths::InputSet::default();
    set.bag(bag);
    let model = config.model.model_dir.trim();
    if !model.is_empty() {
        set.folder(Path::new(model));
    }
    set
}

/// Replay `bag` through the pipeline with `matcher`, writing the outputs to `out` (when
/// given). `config.cameras` selects the camera topics; `progress` is called after every image
/// read. See the module doc for scheduling and error handling.
pub fn replay<M>(
    bag: &Path,
    out: Option<&Path>,
    config: &ImdConfig,
    matcher: M,
    options: &ReplayOptions,
    mut progress: impl FnMut(ReplayProgress),
) -> Result<ReplaySummary, PipelineError>
where
    M: PairMatcher + 'static,
    M::Prepared: 'static,
{
    let start = Instant::now();
    let cameras = check_options(bag, out, config, options)?;
    let reader = Bag::open(bag)?;
    // Checks that every camera topic is in the bag, with the type a camera needs.
    let mut frames = BagFrames::new(&reader, &cameras, config.node.sync_tolerance_s)?;
    let images_total = images_total(&reader, &cameras);
    let processor = TrackerProcessor::new(matcher, config, cameras.clone())?
        .with_transforms(static_transforms(&reader));
    let collected = Arc::new(Mutex::new(Collected {
        writer: out.map(BagOutput::create).transpose()?,
        ..Default::default()
    }));
    let worker = start_worker(processor, &collected, &cameras, config, options)?;

    let mut summary = ReplaySummary {
        bag: bag.display().to_string(),
        output: out.map(|p| p.display().to_string()).unwrap_or_default(),
        ..Default::default()
    };
    let malformed_images = read_frames(
        &mut frames,
        &worker,
        &cameras,
        options,
        &mut summary,
        |images_read| {
            progress(ReplayProgress {
                images_read,
                images_total,
                frames_processed: lock(&collected).processed,
            })
        },
    );
    let joined = worker.finish();
    if joined.is_err() {
        // The outputs written so far are still closed whole before the error is returned.
        let _ = close_output(&collected, out);
    }
    let stats = joined?;
    frames.finish_pairing();
    summary.data_loss = frames.report();
    if summary.data_loss.lost_data() {
        log::warn!(
            "{}: damaged bag: {}",
            bag.display(),
            summary.data_loss.describe()
        );
    }
    account(&mut summary, &stats, &frames.stats(), malformed_images);
    let c = close_output(&collected, out)?;
    summarize_outputs(&mut summary, c);
    summary.wall_s = start.elapsed().as_secs_f64();
    summary.frames_per_s = if summary.wall_s > 0.0 {
        summary.frames_processed as f64 / summary.wall_s
    } else {
        0.0
    };
    Ok(summary)
}

/// The options check, before anything is opened: the cameras (resolved once here), `rate`
/// and `max_wait_s` in range, and an output that is none of the inputs.
fn check_options(
    bag: &Path,
    out: Option<&Path>,
    config: &ImdConfig,
    options: &ReplayOptions,
) -> Result<Vec<CameraConfig>, PipelineError> {
    let cameras = config.cameras()?;
    check_range("rate", "", options.rate, ReplayOptions::RATE_RANGE)?;
    check_range(
        "max_wait_s",
        " s",
        options.max_wait_s,
        ReplayOptions::MAX_WAIT_RANGE,
    )?;
    if let Some(out) = out {
        input_set(bag, config)
            .check(out)
            .map_err(|e| PipelineError::InvalidConfig {
                field: "out".into(),
                reason: e.to_string(),
            })?;
    }
    Ok(cameras)
}

/// `value` (printed with `unit`) within `[lo, hi]`; NaN is not.
fn check_range(
    field: &str,
    unit: &str,
    value: f64,
    (lo, hi): (f64, f64),
) -> Result<(), PipelineError> {
    if value >= lo && value <= hi {
        return Ok(());
    }
    Err(PipelineError::InvalidConfig {
        field: field.into(),
        reason: format!("{value}{unit} is outside [{lo}, {hi}]{unit}"),
    })
}

/// Image messages on the camera topics, from the bag's statistics (0 when it has none).
fn images_total(reader: &Bag, cameras: &[CameraConfig]) -> u64 {
    cameras
        .iter()
        .filter_map(|c| reader.topics().iter().find(|t| t.name == c.image_topic))
        .map(|t| t.message_count)
        .sum()
}

/// The processing thread, writing into `collected`; `node.max_rate_hz` applies in realtime
/// mode only (a lossless replay processes every frame).
fn start_worker(
    processor: impl FrameProcessor + 'static,
    collected: &Arc<Mutex<Collected>>,
    cameras: &[CameraConfig],
    config: &ImdConfig,
    options: &ReplayOptions,
) -> Result<FrameWorker, PipelineError> {
    let sink = ReplaySink {
        collected: collected.clone(),
        cameras: cameras.to_vec(),
    };
    let worker_options = WorkerOptions {
        labels: cameras.iter().map(|c| c.image_topic.clone()).collect(),
        max_rate_hz: if options.realtime {
            config.node.max_rate_hz
        } else {
            0.0
        },
    };
    FrameWorker::spawn(Box::new(processor), Box::new(sink), worker_options)
        .map_err(|e| PipelineError::Worker(WorkerError::Spawn(e)))
}

/// Realtime pacing: each frame is due at its stamp's offset from the clock's start, scaled by
/// the rate; a wait longer than `max_wait_s` is cut short and restarts the clock.
struct Pacer {
    rate: f64,
    max_wait_s: f64,
    /// (wall time, stamp ns) of the clock's start; `None` before the first frame.
    clock: Option<(Instant, i64)>,
    /// Waits cut short.
    capped: u64,
}

impl Pacer {
    fn new(options: &ReplayOptions) -> Self {
        Pacer {
            rate: options.rate,
            max_wait_s: options.max_wait_s,
            clock: None,
            capped: 0,
        }
    }

    /// Sleep until the frame stamped `stamp_ns` is due (or `stop` is set).
    fn wait_for(&mut self, stamp_ns: i64, stop: &StopFlag) {
        let (t0, s0) = *self.clock.get_or_insert((Instant::now(), stamp_ns));
        // Seconds as f64 (a gap of any size is finite), capped before it becomes a Duration.
        let due_s = stamp_ns.saturating_sub(s0).max(0) as f64 * 1e-9 / self.rate;
        let wait_s = due_s - t0.elapsed().as_secs_f64();
        if wait_s > self.max_wait_s {
            log::info!(
                "stamp gap: waiting {:.3} s instead of {wait_s:.3} s (max_wait_s)",
                self.max_wait_s
            );
            self.capped += 1;
            sleep_unless_stopped(Duration::from_secs_f64(self.max_wait_s), stop);
            self.clock = Some((Instant::now(), stamp_ns));
        } else if wait_s > 0.0 {
            sleep_unless_stopped(Duration::from_secs_f64(wait_s), stop);
        }
    }
}

/// Read the bag's frames and hand each to `worker` (paced in realtime mode, one at a time
/// otherwise) until the bag, `max_frames` or a stop request ends it. Fills the read side of
/// `summary` (frames read, malformed messages, read error, interruption, capped waits);
/// `progress` gets the images read so far. Returns the malformed images.
fn read_frames(
    frames: &mut BagFrames,
    worker: &FrameWorker,
    cameras: &[CameraConfig],
    options: &ReplayOptions,
    summary: &mut ReplaySummary,
    mut progress: impl FnMut(u64),
) -> u64 {
    let image_topics: Vec<&str> = cameras.iter().map(|c| c.image_topic.as_str()).collect();
    let mut pacer = options.realtime.then(|| Pacer::new(options));
    let mut malformed_images = 0u64;
    loop {
        // Checked before the next read, so every frame read is handed over and accounted.
        if options.stop.is_set() {
            log::warn!("stopping on request: no more frames are read");
            summary.interrupted = true;
            break;
        }
        let Some(item) = frames.next() else {
            break;
        };
        let mut frame = match item {
            Ok(frame) => frame,
            Err(BagError::Message {
                topic,
                index,
                reason,
                ..
            }) => {
                log::warn!("{topic}: message #{index} skipped: {reason}");
                malformed_images += image_topics.contains(&topic.as_str()) as u64;
                summary.malformed.push(MalformedMessage {
                    topic,
                    index,
                    reason,
                });
                continue;
            }
            Err(e) => {
                log::error!("reading stopped: {e}");
                summary.read_error = Some(e.to_string());
                break;
            }
        };
        summary.frames_read += 1;
        if let Some(pacer) = pacer.as_mut() {
            pacer.wait_for(frame.image.header().stamp.as_nanos(), &options.stop);
            frame.received = Instant::now();
            worker.submit(frame);
        } else {
            // One frame at a time: latency is then the frame's own processing time, and the
            // order (log time across cameras) is the bag's.
            worker.wait_idle();
            worker.submit_lossless(frame);
        }
        progress(summary.frames_read + malformed_images);
        if options.max_frames > 0 && summary.frames_read >= options.max_frames {
            break;
        }
    }
    summary.waits_capped = pacer.map_or(0, |p| p.capped);
    malformed_images
}

/// The accounting: where every image read went, from the worker's counters (`stats`) and the
/// pairing's (`pairing`); fills the summary's counts and [`ReplaySummary::accounting`].
fn account(
    summary: &mut ReplaySummary,
    stats: &[WorkerCameraStats],
    pairing: &[SyncStats],
    malformed_images: u64,
) {
    summary.images_unpaired = pairing.iter().map(|s| s.images_unmatched).sum();
    summary.dropped = stats.iter().map(|s| s.dropped).sum();
    summary.rate_skipped = stats.iter().map(|s| s.rate_skipped).sum();
    summary.frames_failed = stats.iter().map(|s| s.failed).sum();
    let processed: u64 = stats.iter().map(|s| s.processed).sum();
    let handled = processed + summary.frames_failed + summary.dropped + summary.rate_skipped;
    summary.accounting = FrameAccounting {
        images_read: pairing
            .iter()
            .map(|s| s.frames + s.images_unmatched)
            .sum::<u64>()
            + malformed_images,
        processed,
        failed: summary.frames_failed,
        dropped: summary.dropped,
        rate_skipped: summary.rate_skipped,
        unpaired: summary.images_unpaired,
        malformed: malformed_images,
        unaccounted: summary.frames_read.saturating_sub(handled),
    };
    if summary.accounting.unaccounted > 0 {
        log::error!(
            "{} frame(s) were handed to the processing thread and never came back",
            summary.accounting.unaccounted
        );
    }
}

/// Take what the sink collected and close the output bag; the first write error, if any, is
/// the error.
fn close_output(
    collected: &Mutex<Collected>,
    out: Option<&Path>,
) -> Result<Collected, PipelineError> {
    let mut c = std::mem::take(&mut *lock(collected));
    if let Some(writer) = c.writer.take() {
        writer.finish()?;
    }
    if let Some(reason) = c.write_error.take() {
        return Err(PipelineError::Bag(BagError::Write {
            path: out.unwrap_or(Path::new("")).display().to_string(),
            reason,
        }));
    }
    Ok(c)
}

/// The summary's output side: counts per topic, state and scale, latency and stage times.
fn summarize_outputs(summary: &mut ReplaySummary, c: Collected) {
    summary.frames_processed = c.processed;
    summary.states = c.states;
    summary.scales = c.scales;
    summary.keyframes = c.keyframes;
    summary.failed = c.failed;
    summary.outputs = c.outputs;
    summary.latency_ms = Spread::of(&c.latency);
    summary.stage_median_ms = c
        .stages
        .iter()
        .map(|(k, v)| (k.clone(), Spread::of(v).median))
        .collect();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_median_p90_max() {
        let s = Spread::of(&[5.0, 1.0, 3.0, 2.0, 4.0, f64::NAN]);
        assert_eq!((s.median, s.max), (3.0, 5.0));
        assert_eq!(s.p90, 5.0); // nearest rank: ceil(0.9·5) = 5th value
        let s = Spread::of(&(1..=10).map(f64::from).collect::<Vec<_>>());
        assert_eq!((s.median, s.p90), (5.5, 9.0));
        assert_eq!(Spread::of(&[]), Spread::default());
    }
}
