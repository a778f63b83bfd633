//! [`FrameWorker`]: runs a [`FrameProcessor`] on a dedicated thread, fed by one "newest frame
//! wins" slot per camera. The ROS node and `imd replay` both schedule through it.
//!
//! Memory is bounded by construction: one pending frame per camera (a newer frame replaces
//! an unprocessed one, counted as dropped), a control queue of at most
//! [`FrameWorker::CONTROL_CAPACITY`] requests, one pending configuration. Cameras are served
//! round robin so a fast camera cannot starve a slow one. The worker never blocks producers;
//! [`FrameWorker::submit_lossless`] lets an offline producer wait instead (replay default).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::contract::{ControlCommand, FrameOutputs, FrameProcessor, ScheduleInfo};
use super::PipelineError;
use crate::config::ImdConfig;
use crate::io::frames::CameraFrame;
use crate::io::msgs::builtin_interfaces::Time;
use crate::io::msgs::diagnostic_msgs::DiagnosticStatus;
use crate::pipeline::CauseLog;

/// Where the worker's results go (publishers, a bag writer). Called on the worker thread.
pub trait FrameSink: Send {
    /// A frame of camera `camera` was processed.
    fn outputs(&mut self, camera: usize, outputs: FrameOutputs, stats: &WorkerCameraStats);
    /// The frame of camera `camera` stamped `stamp` failed; `error` names the reason. The
    /// worker has logged it.
    fn failure(&mut self, camera: usize, stamp: Time, error: &PipelineError) {
        let _ = (camera, stamp, error);
    }
    /// Statuses produced by a control request.
    fn control(&mut self, statuses: Vec<DiagnosticStatus>) {
        let _ = statuses;
    }
}

/// The processing thread could not be started, or it died.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The operating system refused a new thread.
    #[error("starting the processing thread: {0}")]
    Spawn(#[from] std::io::Error),
    /// The thread panicked; the frame it was processing and those still waiting are lost.
    #[error("the processing thread panicked")]
    Panicked,
}

/// Per-camera scheduling counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkerCameraStats {
    /// Frames handed to the processor that succeeded.
    pub processed: u64,
    /// Frames the processor failed on.
    pub failed: u64,
    /// Frames replaced by a newer one before they were processed.
    pub dropped: u64,
    /// Frames skipped to honour the rate limit.
    pub rate_skipped: u64,
    /// The last failure, `<topic>: <reason>` (`None` before the first).
    pub last_error: Option<String>,
    /// Failures per cause (the first of each is logged, the rest only counted).
    pub failure_causes: CauseLog,
    /// 1 while a frame of this camera waits in its slot.
    pub waiting: u64,
    /// 1 while a frame of this camera is being processed.
    pub in_progress: u64,
}

impl WorkerCameraStats {
    /// Every frame handed to the worker, by what became of it: processed + failed + dropped +
    /// rate-skipped + waiting + in progress.
    pub fn submitted(&self) -> u64 {
        self.processed
            + self.failed
            + self.dropped
            + self.rate_skipped
            + self.waiting
            + self.in_progress
    }
}

/// Where the statuses of one control request go (a ROS service waiting to respond).
pub type ControlReply = tokio::sync::oneshot::Sender<Vec<DiagnosticStatus>>;

/// Scheduling options.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerOptions {
    /// Per-camera labels for log messages (the image topics).
    pub labels: Vec<String>,
    /// At most this many frames per second per camera (0 = no limit); frames arriving faster
    /// are skipped and counted.
    pub max_rate_hz: f64,
}

struct State {
    slots: Vec<Option<CameraFrame>>,
    stats: Vec<WorkerCameraStats>,
    control: VecDeque<(ControlCommand, Option<ControlReply>)>,
    config: Option<ImdConfig>,
    max_rate_hz: f64,
    busy: bool,
    /// The camera whose frame is being processed.
    in_progress: Option<usize>,
    stop: bool,
}

impl State {
    fn idle(&self) -> bool {
        !self.busy
            && self.slots.iter().all(Option::is_none)
            && self.control.is_empty()
            && self.config.is_none()
    }
}

struct Shared {
    state: Mutex<State>,
    /// Signalled on every state change (new work, work done, stop).
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock means the processor panicked; the bookkeeping is still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A processing thread with newest-frame-wins input slots; see the module doc.
pub struct FrameWorker {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FrameWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameWorker")
            .field("stats", &self.stats())
            .finish()
    }
}

impl FrameWorker {
    /// Control requests kept when the worker is busy; older ones are dropped first.
    pub const CONTROL_CAPACITY: usize = 16;

    /// Start the thread. `options.labels` has one entry per camera.
    pub fn spawn(
        processor: Box<dyn FrameProcessor>,
        sink: Box<dyn FrameSink>,
        options: WorkerOptions,
    ) -> std::io::Result<Self> {
        let n = options.labels.len();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                slots: (0..n).map(|_| None).collect(),
                stats: vec![WorkerCameraStats::default(); n],
                control: VecDeque::new(),
                config: None,
                max_rate_hz: options.max_rate_hz,
                busy: false,
                in_progress: None,
                stop: false,
            }),
            changed: Condvar::new(),
        });
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("imd-worker".into())
                .spawn(move || {
                    let _stop = StopOnExit(shared.clone());
                    run(processor, sink, shared, options.labels)
                })?
        };
        Ok(FrameWorker {
            shared,
            thread: Some(thread),
        })
    }

    /// Hand over a frame without waiting. Returns true when it replaced an unprocessed frame
    /// of the same camera (counted as dropped). Frames of unknown cameras are ignored.
    pub fn submit(&self, frame: CameraFrame) -> bool {
        let mut s = self.shared.lock();
        let i = frame.camera;
        if i >= s.slots.len() || s.stop {
            return false;
        }
        let replaced = s.slots[i].replace(frame).is_some();
        if replaced {
            s.stats[i].dropped += 1;
        }
        drop(s);
        self.shared.changed.notify_all();
        replaced
    }

    /// Hand over a frame, first waiting until the camera's previous frame was taken, so that
    /// nothing is dropped (offline replay). The frame's `received` time is reset to when the
    /// slot accepted it, so latency measures processing, not the wait for the previous frame.
    pub fn submit_lossless(&self, mut frame: CameraFrame) {
        let i = frame.camera;
        let mut s = self.shared.lock();
        if i >= s.slots.len() {
            return;
        }
        while s.slots[i].is_some() && !s.stop {
            s = self
                .shared
                .changed
                .wait(s)
                .unwrap_or_else(|p| p.into_inner());
        }
        if s.stop {
            return;
        }
        frame.received = Instant::now();
        s.slots[i] = Some(frame);
        drop(s);
        self.shared.changed.notify_all();
    }

    /// Queue a control request (handled between frames).
    pub fn control(&self, command: ControlCommand) {
        self.queue_control(command, None);
    }

    /// Queue a control request; its statuses are sent to the returned receiver once it was
    /// handled (the sender is dropped if the request is discarded from a full queue or the
    /// worker stops first).
    pub fn control_with_reply(
        &self,
        command: ControlCommand,
    ) -> tokio::sync::oneshot::Receiver<Vec<DiagnosticStatus>> {
        let (reply, receiver) = tokio::sync::oneshot::channel();
        self.queue_control(command, Some(reply));
        receiver
    }

    fn queue_control(&self, command: ControlCommand, reply: Option<ControlReply>) {
        let mut s = self.shared.lock();
        if s.control.len() == Self::CONTROL_CAPACITY {
            if let Some((old, _)) = s.control.pop_front() {
                log::warn!("control queue full: dropping {old:?}");
            }
        }
        s.control.push_back((command, reply));
        drop(s);
        self.shared.changed.notify_all();
    }

    /// Hand a new configuration to the processor (applied between frames; only the newest
    /// pending one is kept). Also updates the rate limit.
    pub fn reconfigure(&self, config: ImdConfig) {
        let mut s = self.shared.lock();
        s.max_rate_hz = config.node.max_rate_hz;
        s.config = Some(config);
        drop(s);
        self.shared.changed.notify_all();
    }

    /// Counters per camera.
    pub fn stats(&self) -> Vec<WorkerCameraStats> {
        let s = self.shared.lock();
        let mut stats = s.stats.clone();
        for (i, st) in stats.iter_mut().enumerate() {
            st.waiting = s.slots[i].is_some() as u64;
            st.in_progress = (s.in_progress == Some(i)) as u64;
        }
        stats
    }

    /// Wait until every submitted frame, control request and configuration was handled.
    pub fn wait_idle(&self) {
        let mut s = self.shared.lock();
        while !s.idle() && !s.stop {
            s = self
                .shared
                .changed
                .wait(s)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Process what is pending, stop the thread and return the final counters; an error
    /// when the thread panicked.
    pub fn finish(mut self) -> Result<Vec<WorkerCameraStats>, WorkerError> {
        self.wait_idle();
        self.stop()?;
        Ok(self.stats())
    }

    /// Ask the thread to stop after its current work item, without waiting (pending frames
    /// are discarded; dropping the worker joins the thread).
    pub fn request_stop(&self) {
        self.shared.lock().stop = true;
        self.shared.changed.notify_all();
    }

    /// Ask the thread to stop and let it go without joining: a frame in flight (a network
    /// pass can take seconds on a CPU) is not waited for. For a process about to exit.
    pub fn detach(mut self) {
        self.request_stop();
        self.thread.take();
    }

    fn stop(&mut self) -> Result<(), WorkerError> {
        self.request_stop();
        match self.thread.take().map(JoinHandle::join) {
            Some(Err(_)) => Err(WorkerError::Panicked),
            _ => Ok(()),
        }
    }
}

impl Drop for FrameWorker {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            log::error!("{e}");
        }
    }
}

/// Marks the worker stopped when its thread ends, however it ends: a panicking processor
/// would otherwise leave `wait_idle` and `submit_lossless` waiting for a thread that is gone.
struct StopOnExit(Arc<Shared>);

impl Drop for StopOnExit {
    fn drop(&mut self) {
        self.0.lock().stop = true;
        self.0.changed.notify_all();
    }
}

enum Work {
    Control(ControlCommand, Option<ControlReply>),
    // Both boxed: a configuration and a frame are hundreds of bytes, a control request tens.
    Config(Box<ImdConfig>),
    Frame(usize, Box<CameraFrame>, ScheduleInfo),
}

fn run(
    mut processor: Box<dyn FrameProcessor>,
    mut sink: Box<dyn FrameSink>,
    shared: Arc<Shared>,
    labels: Vec<String>,
) {
    let n = labels.len();
    let mut next = 0usize;
    let mut last_done: Vec<Option<Instant>> = vec![None; n];
    loop {
        let work = {
            let mut s = shared.lock();
            s.busy = false;
            s.in_progress = None;
            shared.changed.notify_all();
            loop {
                if s.stop {
                    return;
                }
                let work = if let Some((c, reply)) = s.control.pop_front() {
                    Some(Work::Control(c, reply))
                } else if let Some(c) = s.config.take() {
                    Some(Work::Config(Box::new(c)))
                } else {
                    let found = (0..n)
                        .map(|k| (next + k) % n)
                        .find_map(|i| s.slots[i].take().map(|f| (i, f)));
                    match found {
                        Some((i, frame)) => {
                            next = (i + 1) % n;
                            let min_interval = if s.max_rate_hz > 0.0 {
                                Duration::from_secs_f64(1.0 / s.max_rate_hz)
                            } else {
                                Duration::ZERO
                            };
                            if last_done[i].is_some_and(|t| t.elapsed() < min_interval) {
                                s.stats[i].rate_skipped += 1;
                                shared.changed.notify_all();
                                continue;
                            }
                            last_done[i] = Some(Instant::now());
                            s.in_progress = Some(i);
                            let info = ScheduleInfo {
                                dropped: s.stats[i].dropped,
                                rate_skipped: s.stats[i].rate_skipped,
                            };
                            Some(Work::Frame(i, Box::new(frame), info))
                        }
                        None => None,
                    }
                };
                if let Some(work) = work {
                    // Busy in the same critical section as the take, so `wait_idle` never
                    // sees an empty slot and an idle worker while a frame is in flight.
                    s.busy = true;
                    break work;
                }
                s = shared.changed.wait(s).unwrap_or_else(|p| p.into_inner());
            }
        };
        // The slot was emptied: producers waiting in submit_lossless can go on.
        shared.changed.notify_all();
        match work {
            Work::Control(c, reply) => {
                let statuses = processor.control(c);
                if let Some(reply) = reply {
                    // The requester may have given up waiting; nothing to do then.
                    let _ = reply.send(statuses.clone());
                }
                sink.control(statuses);
            }
            Work::Config(c) => processor.reconfigure(&c),
            Work::Frame(i, frame, info) => {
                let label = labels.get(i).map(String::as_str).unwrap_or("?");
                let stamp = frame.image.header().stamp;
                match processor.process(*frame, &info) {
                    Ok(out) => {
                        let stats = {
                            let mut s = shared.lock();
                            s.stats[i].processed += 1;
                            s.in_progress = None;
                            s.stats[i].clone()
                        };
                        sink.outputs(i, out, &stats);
                    }
                    Err(e) => {
                        let first = {
                            let mut s = shared.lock();
                            s.in_progress = None;
                            let st = &mut s.stats[i];
                            st.failed += 1;
                            let error = format!("{label}: {e}");
                            let first = st.failure_causes.record(&error);
                            st.last_error = Some(error);
                            first
                        };
                        let line = format!("{label}: frame {stamp} skipped: {e}");
                        if first {
                            log::error!("{line} (further frames failing so are counted)");
                        } else {
                            log::debug!("{line}");
                        }
                        sink.failure(i, stamp, &e);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;
    use crate::io::frames::CameraImage;
    use crate::io::msgs::diagnostic_msgs::KeyValue;
    use crate::io::msgs::sensor_msgs::{CameraInfo, Image};
    use crate::io::msgs::std_msgs::Header;

    fn frame(camera: usize, ms: i64) -> CameraFrame {
        CameraFrame {
            camera,
            camera_name: format!("cam{camera}"),
            image: CameraImage::Raw(Image {
                header: Header {
                    stamp: Time::from_nanos(ms * 1_000_000),
                    frame_id: String::new(),
                },
                ..Default::default()
            }),
            info: CameraInfo::default(),
            metric: None,
            received: Instant::now(),
        }
    }

    /// Records (camera, stamp ms, dropped so far); waits for a token per frame when gated;
    /// fails frames stamped 13 ms.
    struct Recorder {
        seen: Arc<Mutex<Vec<(usize, i64, u64)>>>,
        gate: Option<mpsc::Receiver<()>>,
    }

    impl FrameProcessor for Recorder {
        fn process(
            &mut self,
            frame: CameraFrame,
            schedule: &ScheduleInfo,
        ) -> Result<FrameOutputs, PipelineError> {
            if let Some(gate) = &self.gate {
                let _ = gate.recv();
            }
            let ms = frame.image.header().stamp.as_nanos() / 1_000_000;
            if ms == 13 {
                return Err(PipelineError::Matcher {
                    reason: "unlucky".into(),
                });
            }
            self.seen
                .lock()
                .unwrap()
                .push((frame.camera, ms, schedule.dropped));
            Ok(FrameOutputs::default())
        }
        fn control(&mut self, command: ControlCommand) -> Vec<DiagnosticStatus> {
            // `Reset("cam1")`: the request and the camera it names.
            let name = match command {
                ControlCommand::Relocalize(_) => "Relocalize",
                ControlCommand::Reset(_) => "Reset",
                ControlCommand::SaveMap => "SaveMap",
            };
            vec![DiagnosticStatus {
                message: format!("{name}({:?})", command.camera().unwrap_or("")),
                values: vec![KeyValue::new("n", 1)],
                ..Default::default()
            }]
        }
    }

    #[derive(Default)]
    struct Collect {
        outputs: Arc<Mutex<Vec<usize>>>,
        failures: Arc<Mutex<Vec<String>>>,
        control: Arc<Mutex<Vec<String>>>,
    }

    impl FrameSink for Collect {
        fn outputs(&mut self, camera: usize, _out: FrameOutputs, _stats: &WorkerCameraStats) {
            self.outputs.lock().unwrap().push(camera);
        }
        fn failure(&mut self, camera: usize, stamp: Time, error: &PipelineError) {
            self.failures
                .lock()
                .unwrap()
                .push(format!("{camera} {} {error}", stamp.as_nanos() / 1_000_000));
        }
        fn control(&mut self, statuses: Vec<DiagnosticStatus>) {
            self.control
                .lock()
                .unwrap()
                .extend(statuses.into_iter().map(|s| s.message));
        }
    }

    fn options(n: usize, max_rate_hz: f64) -> WorkerOptions {
        WorkerOptions {
            labels: (0..n).map(|i| format!("/cam{i}/image")).collect(),
            max_rate_hz,
        }
    }

    /// Panics on every frame.
    struct Panicking;

    impl FrameProcessor for Panicking {
        fn process(
            &mut self,
            _frame: CameraFrame,
            _schedule: &ScheduleInfo,
        ) -> Result<FrameOutputs, PipelineError> {
            panic!("processor bug");
        }
        fn control(&mut self, _command: ControlCommand) -> Vec<DiagnosticStatus> {
            Vec::new()
        }
    }

    #[test]
    fn a_panicking_thread_is_a_worker_error_not_a_hang() {
        let worker = FrameWorker::spawn(
            Box::new(Panicking),
            Box::new(Collect::default()),
            options(1, 0.0),
        )
        .unwrap();
        worker.submit_lossless(frame(0, 1));
        // The thread died on frame 1: a second lossless hand-over must not wait for it.
        worker.submit_lossless(frame(0, 2));
        assert!(matches!(worker.finish(), Err(WorkerError::Panicked)));
    }

    #[test]
    fn lossless_submission_processes_every_frame_in_order() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Collect::default();
        let (failures, control) = (sink.failures.clone(), sink.control.clone());
        let worker = FrameWorker::spawn(
            Box::new(Recorder {
                seen: seen.clone(),
                gate: None,
            }),
            Box::new(sink),
            options(2, 0.0),
        )
        .unwrap();
        for k in 0..20 {
            worker.submit_lossless(frame(k % 2, k as i64));
        }
        worker.control(ControlCommand::Reset(Some("cam1".into())));
        let stats = worker.finish().unwrap();
        let seen = seen.lock().unwrap().clone();
        // Frame 13 failed; the other 19 were processed per camera in stamp order.
        assert_eq!(seen.len(), 19);
        for cam in 0..2 {
            let stamps: Vec<i64> = seen.iter().filter(|s| s.0 == cam).map(|s| s.1).collect();
            assert!(stamps.windows(2).all(|w| w[0] < w[1]), "{stamps:?}");
        }
        assert!(seen.iter().all(|s| s.2 == 0));
        assert_eq!(stats[0].processed + stats[1].processed, 19);
        assert_eq!(
            (stats[1].failed, stats[0].dropped, stats[1].dropped),
            (1, 0, 0)
        );
        assert!(stats[1]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("/cam1/image: matcher: unlucky")));
        assert_eq!(
            failures.lock().unwrap().as_slice(),
            ["1 13 matcher: unlucky"]
        );
        assert_eq!(control.lock().unwrap().as_slice(), ["Reset(\"cam1\")"]);
    }

    #[test]
    fn the_newest_frame_wins_and_drops_are_counted() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (tokens, gate) = mpsc::channel();
        let worker = FrameWorker::spawn(
            Box::new(Recorder {
                seen: seen.clone(),
                gate: Some(gate),
            }),
            Box::new(Collect::default()),
            options(2, 0.0),
        )
        .unwrap();
        // Frame 0 is taken at once and blocks on the gate; 1, 2, 3 queue in one slot, so 1
        // and 2 are replaced unprocessed. Camera 1's frame 50 has its own slot.
        assert!(!worker.submit(frame(0, 0)));
        while worker.shared.lock().slots[0].is_some() {
            std::thread::yield_now();
        }
        assert!(!worker.submit(frame(0, 1)));
        assert!(worker.submit(frame(0, 2)));
        assert!(worker.submit(frame(0, 3)));
        assert!(!worker.submit(frame(1, 50)));
        assert!(!worker.submit(frame(7, 0))); // unknown camera: ignored
        for _ in 0..3 {
            tokens.send(()).unwrap();
        }
        let stats = worker.finish().unwrap();
        let seen = seen.lock().unwrap().clone();
        // Round robin after frame 0: camera 1 next, then camera 0's newest frame, which
        // carries the drop count.
        assert_eq!(seen, [(0, 0, 0), (1, 50, 0), (0, 3, 2)]);
        assert_eq!((stats[0].dropped, stats[1].dropped), (2, 0));
    }

    #[test]
    fn the_rate_limit_skips_frames_that_come_too_soon() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let worker = FrameWorker::spawn(
            Box::new(Recorder {
                seen: seen.clone(),
                gate: None,
            }),
            Box::new(Collect::default()),
            options(1, 0.5), // at most one frame per 2 s
        )
        .unwrap();
        for k in 0..4 {
            worker.submit_lossless(frame(0, k));
            worker.wait_idle();
        }
        let stats = worker.finish().unwrap();
        assert_eq!(seen.lock().unwrap().len(), 1);
        assert_eq!((stats[0].processed, stats[0].rate_skipped), (1, 3));
    }
}
