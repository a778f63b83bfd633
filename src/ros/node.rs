//! The `imd_matcher` node: parameters, camera subscriptions, stamp pairing, the processing
//! worker and the publishers. Topics, types, fields and frames: README.md, section ROS 2.
//!
//! Data flow:
//! ```text
//! image / camera_info / depth / right-camera subscriptions (one task each)
//!     ─▶ CameraInput (CameraSync: stamps paired within node.sync_tolerance_s)
//!     ─▶ FrameWorker (one slot per camera, newest wins, drops counted; dedicated thread)
//!     ─▶ TrackerProcessor: decode, track, messages ─▶ publishers
//! ~/relocalize, ~/reset, ~/<camera>/relocalize, ~/<camera>/reset, ~/save_map (std_srvs/srv/Trigger)
//!     ─▶ FrameWorker::control_with_reply ─▶ the service response names the outcome
//! 1 Hz: /diagnostics = input + scheduling statistics per camera + the tracker's latest statuses
//! ```
//! r2r spins on its own blocking task; inference runs on the worker's thread so it never
//! blocks the async executor. `imd replay` schedules through the same [`FrameWorker`] and
//! processor. A message that cannot be converted or a frame that fails is counted and skipped,
//! the first of each cause logged with its topic and reason; the node goes on.
//!
//! Topics (remap with `--ros-args -r`): one publisher per enabled row of the output table,
//! [`crate::pipeline::topics::OUTPUT_TOPICS`] (listed in docs/ros.md, not here).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use r2r::std_srvs::srv::Trigger;
use r2r::QosProfile;

use crate::config::{CameraConfig, ConfigError, ImdConfig, QosPreset};
use crate::io::camera_sync::CameraMessage;
use crate::io::frames::{CameraImage, MetricSource};
use crate::io::msgs::builtin_interfaces::Time;
use crate::io::msgs::diagnostic_msgs::{DiagnosticArray, DiagnosticStatus};
use crate::io::msgs::sensor_msgs::{CameraInfo, CompressedImage, Image};
use crate::io::msgs::std_msgs::Header;
use crate::io::msgs::tf2_msgs::TFMessage;
use crate::pipeline::inputs::{camera_status, control_services, CameraInput};
use crate::pipeline::topics::{
    MessageKind, Output, OutputMessage, OutputQos, OutputTopic, Published, OUTPUT_TOPICS,
};
use crate::pipeline::transforms::{SharedTransforms, TF_STATIC_TOPIC, TF_TOPIC};
use crate::pipeline::worker::{FrameSink, FrameWorker, WorkerCameraStats, WorkerOptions};
use crate::pipeline::TrackerProcessor;
use crate::pipeline::{FrameOutputs, FrameProcessor, PipelineError};
use crate::ros::msgs::RosMessage;
use crate::ros::params::{ImdParams, ParamError};

/// The node name.
pub use crate::pipeline::messages::NODE_NAME;

/// How long a control service waits for the worker (busy with a frame) before it answers
/// that the request is queued.
const CONTROL_REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// After SIGINT the node finishes its current work and tears down within this time, or exits.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(1500);

/// Errors starting or running the node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// An r2r / rcl call failed.
    #[error("{what}: {source}")]
    Ros {
        what: String,
        #[source]
        source: r2r::Error,
    },
    /// Parameters do not form a valid configuration.
    #[error("parameters: {0}")]
    Params(#[from] ParamError),
    /// The configuration is unusable for the node.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The frame processor could not be created.
    #[error("creating the frame processor: {0}")]
    Processor(#[source] PipelineError),
    /// The async runtime could not start.
    #[error("tokio runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

fn ros<T>(what: impl Into<String>, r: r2r::Result<T>) -> Result<T, NodeError> {
    r.map_err(|source| NodeError::Ros {
        what: what.into(),
        source,
    })
}

/// A Trigger response from the statuses a control request produced: success when every one
/// is OK; the message joins theirs.
pub fn trigger_response(statuses: &[DiagnosticStatus]) -> Trigger::Response {
    Trigger::Response {
        success: !statuses.is_empty() && statuses.iter().all(|s| s.level == DiagnosticStatus::OK),
        message: statuses
            .iter()
            .map(|s| s.message.as_str())
            .collect::<Vec<_>>()
            .join("; "),
    }
}

fn qos(preset: QosPreset) -> QosProfile {
    match preset {
        QosPreset::SensorData => QosProfile::sensor_data(),
        QosPreset::Reliable => QosProfile::default(),
    }
}

fn now_time(clock: &Arc<Mutex<r2r::Clock>>) -> Time {
    let d = clock
        .lock()
        .ok()
        .and_then(|mut c| c.get_now().ok())
        .unwrap_or_default();
    Time::from_nanos(d.as_nanos().min(i64::MAX as u128) as i64)
}

/// A publisher of one output's message type: one variant per type of the output table's list
/// ([`crate::pipeline::topics::for_each_output_message`]).
macro_rules! typed_publishers {
    ($($variant:ident($ty:ty)),* $(,)?) => {
        #[derive(Clone)]
        enum TypedPublisher {
            $($variant(r2r::Publisher<<$ty as RosMessage>::Ros>),)*
        }

        impl TypedPublisher {
            fn create(node: &mut r2r::Node, topic: &OutputTopic) -> Result<Self, NodeError> {
                let qos = match topic.qos {
                    OutputQos::Reliable { depth } => QosProfile::default().keep_last(depth),
                };
                let context = || format!("publisher {}", topic.name);
                let name = topic.name;
                Ok(match topic.kind {
                    $(MessageKind::$variant => {
                        Self::$variant(ros(context(), node.create_publisher(name, qos))?)
                    })*
                })
            }

            /// Publish `message`; `Err` names the mismatch when it is not this publisher's
            /// type.
            fn publish(&self, message: OutputMessage) -> Result<(), String> {
                let r = match (self, message) {
                    $((Self::$variant(p), OutputMessage::$variant(m)) => p.publish(&m.into()),)*
                    #[allow(unreachable_patterns)]
                    (_, m) => return Err(format!("a {} message", m.kind().type_name())),
                };
                r.map_err(|e| e.to_string())
            }
        }

        /// Convert `message` to r2r's struct and then to its native (C) message, as publishing
        /// does before rcl takes it, and drop it (what the benchmarks time).
        pub fn convert_to_native(message: OutputMessage) {
            match message {
                $(OutputMessage::$variant(m) => {
                    let r: <$ty as RosMessage>::Ros = m.into();
                    drop(r2r::NativeMsg::from(&r));
                })*
            }
        }
    };
}

crate::pipeline::topics::for_each_output_message!(typed_publishers);

/// Publishers of every output, one per row of the output table; publishing errors are logged,
/// never fatal. r2r publishers are `Send` but not `Sync`: each task gets its own clone.
#[derive(Clone)]
struct Publishers {
    /// Indexed by [`Output`] (the table's order).
    by_output: Vec<TypedPublisher>,
}

impl Publishers {
    fn create(node: &mut r2r::Node) -> Result<Self, NodeError> {
        let by_output = OUTPUT_TOPICS
            .iter()
            .map(|t| TypedPublisher::create(node, t))
            .collect::<Result<_, _>>()?;
        Ok(Publishers { by_output })
    }

    /// Publish one output's message.
    fn publish(&self, published: Published) {
        let name = published.topic().name;
        if let Err(e) = self.by_output[published.output as usize].publish(published.message) {
            log::error!("publishing on {name}: {e}");
        }
    }

    /// Publish what the processor produced, in its order (it honours `node.publish_tf` and
    /// `node.publish_debug_image` itself).
    fn publish_outputs(&self, out: FrameOutputs) {
        for published in out.messages {
            self.publish(published);
        }
    }

    fn publish_diagnostics(&self, stamp: Time, status: Vec<DiagnosticStatus>) {
        let msg = DiagnosticArray {
            header: Header {
                stamp,
                frame_id: String::new(),
            },
            status,
        };
        self.publish(Published::new(Output::Diagnostics, msg));
    }
}

/// The worker's sink: publishes each frame's messages and keeps the latest status per name
/// for the 1 Hz `/diagnostics`.
struct NodeSink {
    publishers: Publishers,
    status: Arc<Mutex<BTreeMap<String, DiagnosticStatus>>>,
}

impl NodeSink {
    fn record(&self, statuses: Vec<DiagnosticStatus>) {
        let mut map = self.status.lock().unwrap_or_else(|p| p.into_inner());
        for s in statuses {
            map.insert(s.name.clone(), s);
        }
    }
}

impl FrameSink for NodeSink {
    fn outputs(&mut self, _camera: usize, mut out: FrameOutputs, _stats: &WorkerCameraStats) {
        self.record(std::mem::take(&mut out.diagnostics));
        self.publishers.publish_outputs(out);
    }

    fn control(&mut self, statuses: Vec<DiagnosticStatus>) {
        self.record(statuses);
    }
}

/// Shared between the subscription tasks, the parameter task and the diagnostics timer.
struct Shared {
    inputs: Vec<Mutex<CameraInput>>,
    worker: FrameWorker,
    /// Latest status per name from the processor.
    processor_status: Arc<Mutex<BTreeMap<String, DiagnosticStatus>>>,
    config: Mutex<ImdConfig>,
    stop: AtomicBool,
}

impl Shared {
    fn input(&self, i: usize) -> std::sync::MutexGuard<'_, CameraInput> {
        // A poisoned lock means a panic in another task; the counters are still usable.
        self.inputs[i].lock().unwrap_or_else(|p| p.into_inner())
    }
    fn config(&self) -> ImdConfig {
        self.config
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Run the node with the IMD tracker ([`TrackerProcessor`] loading `model.model_dir`) until
/// SIGINT.
pub fn run() -> Result<(), NodeError> {
    run_with(|config, cameras, transforms| {
        let mut processor =
            TrackerProcessor::load(config, cameras.to_vec())?.with_transforms(transforms);
        // `map.path` in localization mode must load, or the node does not start.
        processor.open_map(&config.map, &config.node.odom_frame)?;
        Ok(Box::new(processor))
    })
}

/// What builds the frame processor: from the configuration, its cameras (resolved once) and
/// the TF tree the node keeps from `/tf_static` and `/tf` (camera mounts).
pub trait MakeProcessor:
    FnOnce(
    &ImdConfig,
    &[CameraConfig],
    SharedTransforms,
) -> Result<Box<dyn FrameProcessor>, PipelineError>
{
}

impl<F> MakeProcessor for F where
    F: FnOnce(
        &ImdConfig,
        &[CameraConfig],
        SharedTransforms,
    ) -> Result<Box<dyn FrameProcessor>, PipelineError>
{
}

/// Run the node until SIGINT, processing frames with what `make_processor` builds (the seam
/// where the tracker plugs in).
pub fn run_with<F: MakeProcessor>(make_processor: F) -> Result<(), NodeError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = runtime.block_on(run_async(make_processor));
    // Tasks still parked on r2r streams are dropped, not awaited.
    runtime.shutdown_timeout(Duration::from_millis(300));
    log::debug!("runtime stopped");
    result
}

async fn run_async<F: MakeProcessor>(make_processor: F) -> Result<(), NodeError> {
    let ctx = ros("creating the ROS context", r2r::Context::create())?;
    let mut node = ros(
        format!("creating node {NODE_NAME}"),
        r2r::Node::create(ctx, NODE_NAME, ""),
    )?;

    // 1. Parameters: declare all, apply --params-file / -p overrides, serve the services.
    let params = Arc::new(Mutex::new(declared_params(&node)?));
    let config = params
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .config()
        .clone();
    let (param_server, param_events) = ros(
        "parameter services",
        node.make_derived_parameter_handler(params.clone()),
    )?;
    let mut tasks = vec![tokio::spawn(param_server)];

    // Resolved once; the processor, the inputs and the services all take this list.
    let cameras = config.cameras()?;
    log::info!("loading the matcher from {:?}", config.model.model_dir);
    let transforms = SharedTransforms::default();
    subscribe_transforms(&mut node, &transforms, &mut tasks)?;
    let processor = make_processor(&config, &cameras, transforms).map_err(NodeError::Processor)?;

    // 2. Outputs and the worker (inference on its own thread).
    let publishers = Publishers::create(&mut node)?;
    let shared = start_worker(processor, &publishers, &cameras, &config)?;

    // 3. Inputs.
    let sub_qos = qos(config.node.qos);
    for (i, cam) in cameras.iter().enumerate() {
        subscribe_camera(&mut node, &shared, i, cam, sub_qos.clone(), &mut tasks)?;
        let metric = match &cam.metric {
            MetricSource::Monocular => "monocular".to_string(),
            MetricSource::Depth { topic } => format!("depth {topic}"),
            MetricSource::Stereo(s) => {
                format!("stereo right {} + {}", s.image_topic, s.camera_info_topic)
            }
        };
        log::info!(
            "camera {} ({i}): image {} + camera_info {}, {metric}",
            cam.name,
            cam.image_topic,
            cam.camera_info_topic
        );
    }

    // 4. Control services.
    serve_control(&mut node, &shared, &cameras, &mut tasks)?;
    // 5. Parameter updates: the live config follows every accepted `ros2 param set`.
    tasks.push(tokio::spawn(follow_parameters(
        shared.clone(),
        params,
        param_events,
    )));
    // 6. Diagnostics at 1 Hz.
    tasks.push(tokio::spawn(publish_diagnostics_every_second(
        shared.clone(),
        publishers,
        node.get_ros_clock(),
    )));

    // 7. Spin r2r on its own blocking task until SIGINT.
    log::info!("{NODE_NAME} running with {} camera(s)", cameras.len());
    spin_until_shutdown(node, shared, tasks).await;
    Ok(())
}

/// The node's parameters: every field of [`ImdConfig`] declared, with the `--params-file` /
/// `-p` overrides r2r loaded applied.
fn declared_params(node: &r2r::Node) -> Result<ImdParams, NodeError> {
    let loaded = node.params.lock().unwrap_or_else(|p| p.into_inner());
    let overrides: Vec<(String, r2r::ParameterValue)> = loaded
        .iter()
        .map(|(k, v)| (k.clone(), v.value.clone()))
        .collect();
    drop(loaded);
    Ok(ImdParams::new(
        &ImdConfig::default(),
        overrides.iter().map(|(k, v)| (k.as_str(), v)),
    )?)
}

/// Start the worker thread on `processor` (outputs to `publishers`) and the per-camera inputs
/// it reads from.
fn start_worker(
    processor: Box<dyn FrameProcessor>,
    publishers: &Publishers,
    cameras: &[CameraConfig],
    config: &ImdConfig,
) -> Result<Arc<Shared>, NodeError> {
    let processor_status = Arc::new(Mutex::new(BTreeMap::new()));
    let worker = FrameWorker::spawn(
        processor,
        Box::new(NodeSink {
            publishers: publishers.clone(),
            status: processor_status.clone(),
        }),
        WorkerOptions {
            labels: cameras.iter().map(|c| c.image_topic.clone()).collect(),
            max_rate_hz: config.node.max_rate_hz,
        },
    )?;
    Ok(Arc::new(Shared {
        inputs: cameras
            .iter()
            .enumerate()
            .map(|(i, c)| Mutex::new(CameraInput::new(i, c.clone(), config.node.sync_tolerance_s)))
            .collect(),
        worker,
        processor_status,
        config: Mutex::new(config.clone()),
        stop: AtomicBool::new(false),
    }))
}

/// Serve `~/relocalize`, `~/reset` and their per-camera forms: each request goes to the
/// worker, and the response says what came of it (or that it is queued behind a frame).
fn serve_control(
    node: &mut r2r::Node,
    shared: &Arc<Shared>,
    cameras: &[CameraConfig],
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
) -> Result<(), NodeError> {
    for (name, command) in control_services(cameras) {
        let mut service = ros(
            format!("service {name}"),
            node.create_service::<Trigger::Service>(&name, QosProfile::services_default()),
        )?;
        let shared = shared.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(request) = service.next().await {
                log::info!("{name} called");
                let reply = shared.worker.control_with_reply(command.clone());
                let response = match tokio::time::timeout(CONTROL_REPLY_TIMEOUT, reply).await {
                    Ok(Ok(statuses)) => trigger_response(&statuses),
                    Ok(Err(_)) => Trigger::Response {
                        success: false,
                        message: "discarded: the control queue was full or the node is stopping"
                            .into(),
                    },
                    Err(_) => Trigger::Response {
                        success: true,
                        message: format!(
                            "queued: the matcher is busy; applied before its next frame \
                             (no answer within {} s)",
                            CONTROL_REPLY_TIMEOUT.as_secs()
                        ),
                    },
                };
                if let Err(e) = request.respond(response) {
                    log::error!("{name}: responding: {e}");
                }
            }
        }));
    }
    Ok(())
}

/// Apply every accepted `ros2 param set` to the live config (inputs and worker).
async fn follow_parameters(
    shared: Arc<Shared>,
    params: Arc<Mutex<ImdParams>>,
    mut events: impl futures::Stream<Item = (String, r2r::ParameterValue)> + Send + Unpin + 'static,
) {
    while let Some((name, value)) = events.next().await {
        let config = params
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .config()
            .clone();
        log::info!("parameter {name} = {value:?}");
        if name == "node.sync_tolerance_s" {
            for i in 0..shared.inputs.len() {
                shared.input(i).set_tolerance(config.node.sync_tolerance_s);
            }
        }
        if name.starts_with("cameras.") || name == "node.qos" || name.starts_with("model.") {
            log::warn!("{name} takes effect when the node restarts");
        }
        *shared.config.lock().unwrap_or_else(|p| p.into_inner()) = config.clone();
        shared.worker.reconfigure(config);
    }
}

/// Publish `/diagnostics` once a second: input and scheduling statistics per camera, then the
/// processor's latest statuses; ends when the node stops.
async fn publish_diagnostics_every_second(
    shared: Arc<Shared>,
    publishers: Publishers,
    clock: Arc<Mutex<r2r::Clock>>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let tolerance = shared.config().node.sync_tolerance_s;
        let now = Instant::now();
        let work = shared.worker.stats();
        let mut status: Vec<DiagnosticStatus> = (0..shared.inputs.len())
            .map(|i| {
                let w = work.get(i).cloned().unwrap_or_default();
                camera_status(&shared.input(i), &w, tolerance, now)
            })
            .collect();
        status.extend(
            shared
                .processor_status
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .values()
                .cloned(),
        );
        publishers.publish_diagnostics(now_time(&clock), status);
    }
}

/// Spin r2r on its own blocking task until SIGINT / SIGTERM, then tear down in order.
async fn spin_until_shutdown(
    mut node: r2r::Node,
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
) {
    let spin = {
        let shared = shared.clone();
        tokio::task::spawn_blocking(move || {
            while !shared.stop.load(Ordering::Relaxed) {
                node.spin_once(Duration::from_millis(20));
            }
            node
        })
    };
    shutdown_signal().await;
    log::info!("shutting down");
    // A frame in flight on a slow device, or a DDS teardown that blocks, must not keep the
    // process alive: past the grace period it exits anyway.
    std::thread::spawn(|| {
        std::thread::sleep(SHUTDOWN_GRACE);
        log::warn!(
            "shutdown took longer than {} s; exiting now",
            SHUTDOWN_GRACE.as_secs_f64()
        );
        exit_now(0);
    });
    shared.stop.store(true, Ordering::Relaxed);
    let node = spin.await;
    // The worker stops after its current item (publishing on a destroyed node is an error it
    // logs, not a crash).
    shared.worker.request_stop();
    // Teardown order matters: every task that holds the node's clock, services or streams
    // ends before the node (and its DDS participant) is destroyed.
    for task in &tasks {
        task.abort();
    }
    for task in tasks {
        let _ = task.await;
    }
    drop(node);
    log::debug!("ROS node destroyed");
    // A frame in flight is not waited for: the caller exits the process (see [`exit_now`]).
    if let Ok(shared) = Arc::try_unwrap(shared) {
        shared.worker.detach();
    }
}

/// End the process at once with `code`, without static destructors: libtorch's global state
/// must not be torn down while the detached worker thread may still run a network pass (that
/// crashes). Everything that needs a clean end (the DDS participant) was destroyed before.
pub fn exit_now(code: i32) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: `_exit` only ends the process; no Rust invariant depends on code after it.
    unsafe { libc::_exit(code) }
}

/// SIGINT (Ctrl-C, `ros2 launch`'s first signal) or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let Ok(mut term) = term else {
        if let Err(e) = tokio::signal::ctrl_c().await {
            log::error!("waiting for SIGINT: {e}");
        }
        return;
    };
    tokio::select! {
        r = tokio::signal::ctrl_c() => {
            if let Err(e) = r {
                log::error!("waiting for SIGINT: {e}");
            }
        }
        _ = term.recv() => {}
    }
}

/// Subscribe to one camera's streams: image (raw or `/compressed`), camera_info, and the depth
/// topic or the right camera's image and camera_info of a metric camera.
fn subscribe_camera(
    node: &mut r2r::Node,
    shared: &Arc<Shared>,
    i: usize,
    cam: &CameraConfig,
    qos: QosProfile,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
) -> Result<(), NodeError> {
    let mut sub = Subscriber {
        node,
        shared,
        camera: i,
        qos,
        tasks,
    };
    sub.image(&cam.image_topic, CameraMessage::Image)?;
    sub.info(&cam.camera_info_topic, CameraMessage::Info)?;
    match &cam.metric {
        MetricSource::Monocular => {}
        MetricSource::Depth { topic } => sub.depth(topic)?,
        MetricSource::Stereo(stereo) => {
            sub.image(&stereo.image_topic, CameraMessage::RightImage)?;
            sub.info(&stereo.camera_info_topic, CameraMessage::RightInfo)?;
        }
    }
    Ok(())
}

/// What a camera's subscriptions share: each message goes to the camera's [`CameraInput`] and
/// a frame it completes to the worker.
struct Subscriber<'a> {
    node: &'a mut r2r::Node,
    shared: &'a Arc<Shared>,
    camera: usize,
    qos: QosProfile,
    tasks: &'a mut Vec<tokio::task::JoinHandle<()>>,
}

impl Subscriber<'_> {
    fn forward(shared: &Shared, camera: usize, message: CameraMessage) {
        let frame = shared.input(camera).on_message(message);
        if let Some(frame) = frame {
            shared.worker.submit(frame);
        }
    }

    /// A `sensor_msgs/Image`, or `CompressedImage` when the topic ends in `/compressed`.
    fn image(
        &mut self,
        topic: &str,
        wrap: fn(CameraImage) -> CameraMessage,
    ) -> Result<(), NodeError> {
        if topic.ends_with("/compressed") {
            self.spawn(topic, move |m: r2r::sensor_msgs::msg::CompressedImage| {
                CompressedImage::try_from(m)
                    .map(|m| wrap(CameraImage::Compressed(m)))
                    .map_err(|e| e.to_string())
            })
        } else {
            self.spawn(topic, move |m: r2r::sensor_msgs::msg::Image| {
                Image::try_from(m)
                    .map(|m| wrap(CameraImage::Raw(m)))
                    .map_err(|e| e.to_string())
            })
        }
    }

    /// A `sensor_msgs/CameraInfo` (malformed ones are counted and dropped).
    fn info(
        &mut self,
        topic: &str,
        wrap: fn(CameraInfo) -> CameraMessage,
    ) -> Result<(), NodeError> {
        self.spawn(topic, move |m: r2r::sensor_msgs::msg::CameraInfo| {
            CameraInfo::try_from(m).map(wrap).map_err(|e| e.to_string())
        })
    }

    /// An aligned depth `sensor_msgs/Image` (decoded on the worker, with the frame).
    fn depth(&mut self, topic: &str) -> Result<(), NodeError> {
        self.spawn(topic, |m: r2r::sensor_msgs::msg::Image| {
            Image::try_from(m)
                .map(CameraMessage::Depth)
                .map_err(|e| e.to_string())
        })
    }

    /// Subscribe to `topic` and hand every message, converted, to the camera's input; a
    /// message that does not convert is counted as bad (with the reason) and dropped.
    fn spawn<T, F>(&mut self, topic: &str, convert: F) -> Result<(), NodeError>
    where
        T: r2r::WrappedTypesupport + Send + 'static,
        F: Fn(T) -> Result<CameraMessage, String> + Send + 'static,
    {
        let (shared, i) = (self.shared.clone(), self.camera);
        let mut sub = ros(
            format!("subscribing to {topic}"),
            self.node.subscribe::<T>(topic, self.qos.clone()),
        )?;
        let topic = topic.to_string();
        self.tasks.push(tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                match convert(msg) {
                    Ok(message) => Self::forward(&shared, i, message),
                    Err(e) => shared.input(i).bad_message(&topic, &e),
                }
            }
        }));
        Ok(())
    }
}

/// Keep `transforms` up to date from `/tf_static` (transient local, as its publishers latch it)
/// and `/tf`. A message that does not convert is logged and dropped.
fn subscribe_transforms(
    node: &mut r2r::Node,
    transforms: &SharedTransforms,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
) -> Result<(), NodeError> {
    let latched = QosProfile::default()
        .keep_last(100)
        .reliable()
        .transient_local();
    for (topic, qos) in [
        (TF_STATIC_TOPIC, latched),
        (TF_TOPIC, QosProfile::default().keep_last(100)),
    ] {
        let mut sub = ros(
            format!("subscribing to {topic}"),
            node.subscribe::<r2r::tf2_msgs::msg::TFMessage>(topic, qos),
        )?;
        let tree = transforms.clone();
        tasks.push(tokio::spawn(async move {
            let mut warned = false;
            while let Some(msg) = sub.next().await {
                let Ok(message) = TFMessage::try_from(msg) else {
                    continue; // r2r's TF has no fixed-size arrays: cannot fail
                };
                let skipped = match tree.write() {
                    Ok(mut t) => t.insert(&message),
                    Err(poisoned) => poisoned.into_inner().insert(&message),
                };
                if skipped > 0 && !warned {
                    log::warn!(
                        "{topic}: {skipped} transform(s) skipped (empty frame names, non-finite \
                         values or a zero quaternion)"
                    );
                    warned = true;
                }
            }
        }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn trigger_response_succeeds_only_when_every_status_is_ok() {
        let status = |level, message: &str| DiagnosticStatus {
            level,
            message: message.into(),
            ..Default::default()
        };
        let ok = trigger_response(&[status(
            DiagnosticStatus::OK,
            "reset: 2 keyframe(s) forgotten",
        )]);
        assert!(ok.success);
        assert_eq!(ok.message, "reset: 2 keyframe(s) forgotten");
        let bad = trigger_response(&[
            status(DiagnosticStatus::OK, "a"),
            status(DiagnosticStatus::WARN, "no camera named `x`"),
        ]);
        assert!(!bad.success);
        assert_eq!(bad.message, "a; no camera named `x`");
        assert!(!trigger_response(&[]).success);
    }

    #[test]
    fn qos_presets_map_to_r2r_profiles() {
        let s = qos(QosPreset::SensorData);
        assert_eq!(s.depth, 5);
        assert_eq!(s.reliability, r2r::qos::ReliabilityPolicy::BestEffort);
        let r = qos(QosPreset::Reliable);
        assert_eq!(r.reliability, r2r::qos::ReliabilityPolicy::Reliable);
    }
}
