//! Streaming reader of rosbag2 `.mcap` files: topics, then decoded camera messages in log-time
//! order.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mcap::sans_io::indexed_reader::{IndexedReadEvent, IndexedReader, IndexedReaderOptions};
use mcap::sans_io::summary_reader::{SummaryReadEvent, SummaryReader};
use mcap::Summary;

use super::cdr::{from_cdr, CdrMessage};
use super::BagError;
use crate::io::msgs::sensor_msgs::{CameraInfo, CompressedImage, Image};

/// One topic of a bag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Topic name.
    pub name: String,
    /// ROS 2 type, e.g. `sensor_msgs/msg/Image` (empty when the channel has no schema).
    pub message_type: String,
    /// Serialization (`cdr` for rosbag2).
    pub message_encoding: String,
    /// Messages on the topic, from the bag's statistics (0 when it has none).
    pub message_count: u64,
}

/// The message types [`BagReader::messages`] decodes.
// CameraInfo's fixed arrays make it ~300 bytes on the stack; each message is moved a couple of
// times per iteration, so boxing it would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum BagPayload {
    /// `sensor_msgs/msg/Image`.
    Image(Image),
    /// `sensor_msgs/msg/CompressedImage`.
    CompressedImage(CompressedImage),
    /// `sensor_msgs/msg/CameraInfo`.
    CameraInfo(CameraInfo),
}

/// A decoded message with where and when it was logged.
#[derive(Debug, Clone, PartialEq)]
pub struct BagMessage {
    /// Topic.
    pub topic: Arc<str>,
    /// 0-based position among the messages of this topic, in reading order.
    pub index: u64,
    /// Log (receive) time, ns since the epoch.
    pub log_time_ns: u64,
    /// Publish time, ns since the epoch.
    pub publish_time_ns: u64,
    /// The message.
    pub payload: BagPayload,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Image,
    CompressedImage,
    CameraInfo,
}

impl Kind {
    const READABLE: &'static [&'static str] = &[
        Image::TYPE_NAME,
        CompressedImage::TYPE_NAME,
        CameraInfo::TYPE_NAME,
    ];

    fn of(message_type: &str) -> Option<Kind> {
        match normalize_type(message_type).as_str() {
            t if t == Image::TYPE_NAME => Some(Kind::Image),
            t if t == CompressedImage::TYPE_NAME => Some(Kind::CompressedImage),
            t if t == CameraInfo::TYPE_NAME => Some(Kind::CameraInfo),
            _ => None,
        }
    }

    fn decode(self, data: &[u8]) -> Result<BagPayload, super::cdr::CdrError> {
        Ok(match self {
            Kind::Image => BagPayload::Image(from_cdr(data)?),
            Kind::CompressedImage => BagPayload::CompressedImage(from_cdr(data)?),
            Kind::CameraInfo => BagPayload::CameraInfo(from_cdr(data)?),
        })
    }
}

/// `sensor_msgs/Image` → `sensor_msgs/msg/Image` (some writers omit the `msg` part).
fn normalize_type(t: &str) -> String {
    match t.split('/').collect::<Vec<_>>().as_slice() {
        [pkg, ty] => format!("{pkg}/msg/{ty}"),
        _ => t.to_string(),
    }
}

/// An open rosbag2 MCAP file. Opening reads only the summary section; messages are streamed
/// chunk by chunk by [`BagReader::messages`].
#[derive(Debug)]
pub struct BagReader {
    path: PathBuf,
    summary: Arc<Summary>,
    topics: Vec<TopicInfo>,
    indexed: bool,
}

impl BagReader {
    /// Open a bag and read its summary. Files without a summary or chunk index (an
    /// interrupted recording) are scanned once to list their topics and are then read in
    /// file order, which rosbag2 writes in arrival order.
    pub fn open(path: &Path) -> Result<Self, BagError> {
        let err = |reason: String| BagError::File {
            path: path.display().to_string(),
            reason,
        };
        let mut file = File::open(path).map_err(|e| err(e.to_string()))?;
        let summary = read_summary(&mut file).map_err(|e| err(format!("reading summary: {e}")))?;
        let (summary, indexed) = match summary {
            Some(s)
                if !s.chunk_indexes.is_empty()
                    || s.stats.as_ref().is_some_and(|st| st.message_count == 0) =>
            {
                (s, true)
            }
            _ => (
                scan(path).map_err(|e| err(format!("scanning unindexed file: {e}")))?,
                false,
            ),
        };
        let counts = summary
            .stats
            .as_ref()
            .map(|s| s.channel_message_counts.clone())
            .unwrap_or_default();
        let mut by_topic: BTreeMap<String, TopicInfo> = BTreeMap::new();
        for (id, ch) in &summary.channels {
            let count = counts.get(id).copied().unwrap_or(0);
            by_topic
                .entry(ch.topic.clone())
                .and_modify(|t| t.message_count += count)
                .or_insert_with(|| TopicInfo {
                    name: ch.topic.clone(),
                    message_type: ch
                        .schema
                        .as_ref()
                        .map(|s| s.name.clone())
                        .unwrap_or_default(),
                    message_encoding: ch.message_encoding.clone(),
                    message_count: count,
                });
        }
        Ok(BagReader {
            path: path.to_path_buf(),
            summary: Arc::new(summary),
            topics: by_topic.into_values().collect(),
            indexed,
        })
    }

    /// The bag's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Topics, sorted by name.
    pub fn topics(&self) -> &[TopicInfo] {
        &self.topics
    }

    /// Messages of `topics` in log-time order, decoded. Every topic must exist and carry
    /// `sensor_msgs/msg/Image`, `CompressedImage` or `CameraInfo` in CDR; otherwise this fails
    /// before reading anything.
    ///
    /// The iterator yields `Err(BagError::Message { .. })` for a message that does not decode
    /// (naming topic, index and reason) and goes on with the next one; any other error (I/O,
    /// a corrupt chunk) is yielded once and ends the iteration.
    pub fn messages(&self, topics: &[&str]) -> Result<BagMessages, BagError> {
        let mut kinds: HashMap<u16, (Arc<str>, Kind)> = HashMap::new();
        for &topic in topics {
            let Some(info) = self.topics.iter().find(|t| t.name == topic) else {
                return Err(BagError::Topic {
                    path: self.path.display().to_string(),
                    topic: topic.to_string(),
                    reason: format!(
                        "not in the bag; it has {}",
                        self.topics
                            .iter()
                            .map(|t| format!("{} ({})", t.name, t.message_type))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            };
            let topic_err = |reason: String| BagError::Topic {
                path: self.path.display().to_string(),
                topic: topic.to_string(),
                reason,
            };
            let kind = Kind::of(&info.message_type).ok_or_else(|| {
                topic_err(format!(
                    "type `{}` is not readable; expected one of {}",
                    info.message_type,
                    Kind::READABLE.join(", ")
                ))
            })?;
            if info.message_encoding != "cdr" {
                return Err(topic_err(format!(
                    "message encoding `{}`; expected `cdr`",
                    info.message_encoding
                )));
            }
            let name: Arc<str> = Arc::from(topic);
            for (id, ch) in &self.summary.channels {
                if ch.topic == topic {
                    kinds.insert(*id, (name.clone(), kind));
                }
            }
        }
        let file = File::open(&self.path).map_err(|e| BagError::File {
            path: self.path.display().to_string(),
            reason: e.to_string(),
        })?;
        let source = if self.indexed {
            let options =
                IndexedReaderOptions::new().include_topics(topics.iter().map(|t| t.to_string()));
            let reader = IndexedReader::new_with_options(&self.summary, options).map_err(|e| {
                BagError::File {
                    path: self.path.display().to_string(),
                    reason: format!("chunk index: {e}"),
                }
            })?;
            Source::Indexed {
                file,
                reader: Box::new(reader),
                chunk: Vec::new(),
            }
        } else {
            Source::Linear(Box::new(mcap::io::MessageReader::new(BufReader::new(file))))
        };
        Ok(BagMessages {
            path: self.path.display().to_string(),
            kinds,
            counters: HashMap::new(),
            source,
            done: false,
        })
    }
}

fn read_summary(file: &mut File) -> mcap::McapResult<Option<Summary>> {
    let size = file.metadata()?.len();
    let mut reader = SummaryReader::new_with_options(
        mcap::sans_io::summary_reader::SummaryReaderOptions::default().with_file_size(size),
    );
    while let Some(event) = reader.next_event() {
        match event? {
            SummaryReadEvent::ReadRequest(n) => {
                let read = file.read(reader.insert(n))?;
                reader.notify_read(read);
            }
            SummaryReadEvent::SeekRequest(to) => {
                let pos = file.seek(to)?;
                reader.notify_seeked(pos);
            }
        }
    }
    Ok(reader.finish())
}

/// One pass over an unindexed file: channels, schemas and per-channel counts.
fn scan(path: &Path) -> mcap::McapResult<Summary> {
    let file = BufReader::new(File::open(path)?);
    let mut summary = Summary::default();
    let mut counts: BTreeMap<u16, u64> = BTreeMap::new();
    let mut total = 0u64;
    for msg in mcap::io::MessageReader::new(file) {
        let msg = match msg {
            Ok(m) => m,
            // A recording cut short ends mid-record: keep what was readable.
            Err(mcap::McapError::UnexpectedEof) => break,
            Err(e) => return Err(e),
        };
        *counts.entry(msg.channel.id).or_default() += 1;
        total += 1;
        summary
            .channels
            .entry(msg.channel.id)
            .or_insert_with(|| msg.channel.clone());
    }
    summary.stats = Some(mcap::records::Statistics {
        message_count: total,
        channel_message_counts: counts,
        ..Default::default()
    });
    Ok(summary)
}

enum Source {
    Indexed {
        file: File,
        reader: Box<IndexedReader>,
        chunk: Vec<u8>,
    },
    Linear(Box<mcap::io::MessageReader<BufReader<File>>>),
}

/// Iterator over decoded messages; see [`BagReader::messages`].
pub struct BagMessages {
    path: String,
    kinds: HashMap<u16, (Arc<str>, Kind)>,
    /// Next index per topic (a topic may span several channels).
    counters: HashMap<Arc<str>, u64>,
    source: Source,
    done: bool,
}

impl std::fmt::Debug for BagMessages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut topics: Vec<&str> = self.kinds.values().map(|(t, _)| &**t).collect();
        topics.sort_unstable();
        topics.dedup();
        f.debug_struct("BagMessages")
            .field("path", &self.path)
            .field("topics", &topics)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl BagMessages {
    fn fatal(&mut self, reason: String) -> Option<Result<BagMessage, BagError>> {
        self.done = true;
        Some(Err(BagError::File {
            path: self.path.clone(),
            reason,
        }))
    }
}

/// Decode one message of a selected channel (`None` for channels not selected).
fn decode(
    kinds: &HashMap<u16, (Arc<str>, Kind)>,
    counters: &mut HashMap<Arc<str>, u64>,
    channel_id: u16,
    log_time_ns: u64,
    publish_time_ns: u64,
    data: &[u8],
) -> Option<Result<BagMessage, BagError>> {
    let (topic, kind) = kinds.get(&channel_id)?;
    let counter = counters.entry(topic.clone()).or_default();
    let index = *counter;
    *counter += 1;
    Some(match kind.decode(data) {
        Ok(payload) => Ok(BagMessage {
            topic: topic.clone(),
            index,
            log_time_ns,
            publish_time_ns,
            payload,
        }),
        Err(e) => Err(BagError::Message {
            topic: topic.to_string(),
            index,
            log_time_ns,
            reason: e.to_string(),
        }),
    })
}

impl Iterator for BagMessages {
    type Item = Result<BagMessage, BagError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            // Messages of channels not selected (linear mode) decode to None and are skipped.
            let item = match &mut self.source {
                Source::Indexed {
                    file,
                    reader,
                    chunk,
                } => match reader.next_event() {
                    None => None,
                    Some(Err(e)) => return self.fatal(format!("reading messages: {e}")),
                    Some(Ok(IndexedReadEvent::ReadChunkRequest { offset, length })) => {
                        let read = file.seek(std::io::SeekFrom::Start(offset)).and_then(|_| {
                            chunk.resize(length, 0);
                            file.read_exact(chunk)
                        });
                        if let Err(e) = read {
                            return self.fatal(format!("reading chunk at byte {offset}: {e}"));
                        }
                        if let Err(e) = reader.insert_chunk_record_data(offset, chunk) {
                            return self.fatal(format!("chunk at byte {offset}: {e}"));
                        }
                        continue;
                    }
                    // Decoded straight from the chunk buffer.
                    Some(Ok(IndexedReadEvent::Message { header, data })) => Some(decode(
                        &self.kinds,
                        &mut self.counters,
                        header.channel_id,
                        header.log_time,
                        header.publish_time,
                        data,
                    )),
                },
                Source::Linear(reader) => match reader.next() {
                    None => None,
                    Some(Err(mcap::McapError::UnexpectedEof)) => {
                        log::warn!(
                            "{}: file ends mid-record (interrupted recording?)",
                            self.path
                        );
                        None
                    }
                    Some(Err(e)) => return self.fatal(format!("reading messages: {e}")),
                    Some(Ok(m)) => Some(decode(
                        &self.kinds,
                        &mut self.counters,
                        m.channel.id,
                        m.log_time,
                        m.publish_time,
                        &m.data,
                    )),
                },
            };
            match item {
                None => self.done = true,
                Some(None) => continue,
                Some(Some(result)) => return Some(result),
            }
        }
        None
    }
}
