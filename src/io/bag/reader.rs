//! Streaming reader of rosbag2 `.mcap` files: topics, then decoded camera messages in log-time
//! order, robust to damaged files.
//!
//! Built on the bounded record layer of [`super::records`]: no length read from the file is
//! trusted before it is checked against the bytes that remain and [`Limits`], and nothing
//! reachable from file bytes panics. Damage never ends a read:
//! - with an intact summary, chunks are read through its chunk index; a chunk that does not
//!   read, decompress or pass its CRC is skipped and reported ([`DataLoss`]: byte range,
//!   messages lost counted from its message indexes) and the next chunk is read;
//! - without a usable summary (none, a damaged footer or summary, a recording cut short) the
//!   file is scanned forward record by record; a record that cannot be right is reported and
//!   the scan resyncs at the next plausible record, so a truncated file yields every complete
//!   message before the cut.
//!
//! [`BagMessages::report`] says what was lost.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::io::{Cursor, Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::message::{BagMessage, Kind, TopicInfo};
use super::records::{
    channel, chunk_index, footer, message_index_entries, op, packed_records, salvage_chunk, schema,
    statistics, ChannelRec, ChunkIndexRec, ChunkRec, Limits, MessageRec, Record, RecordFile,
    SchemaRec, StatisticsRec, FOOTER_AND_MAGIC, MAGIC, RECORD_HEADER,
};
use super::report::{DataLoss, ReadReport};
use super::BagError;

trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

#[derive(Debug, Clone)]
enum Input {
    File(PathBuf),
    Memory(Arc<[u8]>),
}

impl Input {
    fn open(&self) -> std::io::Result<(Box<dyn ReadSeek>, u64)> {
        match self {
            Input::File(p) => {
                let (f, len) = crate::io::paths::open_regular(p, "an MCAP storage file")
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.reason))?;
                Ok((Box::new(std::io::BufReader::new(f)), len))
            }
            Input::Memory(b) => Ok((Box::new(Cursor::new(b.clone())), b.len() as u64)),
        }
    }
}

/// What the summary section says.
#[derive(Debug, Default)]
struct Summary {
    schemas: BTreeMap<u16, SchemaRec>,
    channels: BTreeMap<u16, ChannelRec>,
    chunks: Vec<ChunkIndexRec>,
    stats: Option<StatisticsRec>,
}

/// An open rosbag2 MCAP file. Opening reads only the summary section when it is intact (else
/// scans the file once); messages are streamed chunk by chunk by [`BagReader::messages`].
#[derive(Debug)]
pub struct BagReader {
    path: PathBuf,
    input: Input,
    limits: Limits,
    /// Channel id → (topic, type, encoding).
    channels: BTreeMap<u16, (String, String, String)>,
    topics: Vec<TopicInfo>,
    /// Chunk index (sorted by start time) when the summary is used.
    chunks: Option<Arc<[ChunkIndexRec]>>,
    summary_problem: String,
    open_losses: Vec<DataLoss>,
    /// Cap for zstd-decompressing each payload first (rosbag2 `MESSAGE` compression).
    unpack: Option<u64>,
    /// First and last log time, from the summary's statistics.
    time_range: Option<(u64, u64)>,
}

impl BagReader {
    /// Open a bag and read its summary. Files without a usable summary or chunk index (an
    /// interrupted recording, a damaged footer) are scanned once to list their topics and are
    /// then read in file order, which rosbag2 writes in arrival order.
    pub fn open(path: &Path) -> Result<Self, BagError> {
        Self::open_with_limits(path, Limits::default())
    }

    /// [`BagReader::open`] with explicit size limits.
    pub fn open_with_limits(path: &Path, limits: Limits) -> Result<Self, BagError> {
        Self::open_input(path, Input::File(path.to_path_buf()), limits)
    }

    /// A bag held in memory; `name` stands for the path in messages.
    pub fn from_bytes(name: &str, bytes: Vec<u8>, limits: Limits) -> Result<Self, BagError> {
        Self::open_input(Path::new(name), Input::Memory(bytes.into()), limits)
    }

    fn open_input(path: &Path, input: Input, limits: Limits) -> Result<Self, BagError> {
        let err = |reason: String| BagError::File {
            path: path.display().to_string(),
            reason,
        };
        let (src, len) = input.open().map_err(|e| err(e.to_string()))?;
        let mut rf = RecordFile::new(src, len, limits);
        let magic = rf
            .read_at(0, MAGIC.len() as u64)
            .map_err(|_| err(format!("not an MCAP file ({len} bytes, no MCAP magic)")))?;
        if magic != MAGIC {
            return Err(err("not an MCAP file (no MCAP magic at its start)".into()));
        }
        let (summary, problem) = match read_summary(&mut rf) {
            Ok(Some(s))
                if !s.chunks.is_empty()
                    || s.stats.as_ref().is_some_and(|st| st.message_count == 0) =>
            {
                (Some(s), String::new())
            }
            Ok(_) => (None, String::new()),
            Err(e) => {
                log::warn!(
                    "{}: summary not usable ({e}); scanning the file",
                    path.display()
                );
                (None, e)
            }
        };
        let mut open_losses = Vec::new();
        let mut time_range = None;
        let (schemas, channels, counts, chunks) = match summary {
            Some(s) => {
                time_range = s
                    .stats
                    .as_ref()
                    .filter(|st| st.message_count > 0)
                    .map(|st| (st.message_start_time, st.message_end_time));
                let counts = s
                    .stats
                    .map(|st| st.channel_message_counts)
                    .unwrap_or_default();
                let mut chunks = s.chunks;
                chunks.sort_by_key(|c| (c.message_start_time, c.chunk_start_offset));
                (s.schemas, s.channels, counts, Some(chunks))
            }
            None => {
                let scanned = scan_file(&mut rf);
                open_losses = scanned.report.losses;
                (scanned.schemas, scanned.channels, scanned.counts, None)
            }
        };
        let channels: BTreeMap<u16, (String, String, String)> = channels
            .into_values()
            .map(|c| {
                let ty = schemas
                    .get(&c.schema_id)
                    .map(|s| s.name.clone())
                    .unwrap_or_default();
                (c.id, (c.topic, ty, c.message_encoding))
            })
            .collect();
        let mut by_topic: BTreeMap<String, TopicInfo> = BTreeMap::new();
        for (id, (topic, ty, enc)) in &channels {
            let count = counts.get(id).copied().unwrap_or(0);
            by_topic
                .entry(topic.clone())
                .and_modify(|t| t.message_count += count)
                .or_insert_with(|| TopicInfo {
                    name: topic.clone(),
                    message_type: ty.clone(),
                    message_encoding: enc.clone(),
                    message_count: count,
                });
        }
        Ok(BagReader {
            path: path.to_path_buf(),
            input,
            limits,
            channels,
            topics: by_topic.into_values().collect(),
            chunks: chunks.map(Arc::from),
            summary_problem: problem,
            open_losses,
            unpack: None,
            time_range,
        })
    }

    /// Payloads may be zstd frames (rosbag2 `MESSAGE` compression): decompress each that is,
    /// refusing more than `cap` bytes, before decoding.
    pub(super) fn set_message_compression(&mut self, cap: Option<u64>) {
        self.unpack = cap;
    }

    /// First and last message log time (ns), when the summary records them.
    pub fn time_range(&self) -> Option<(u64, u64)> {
        self.time_range
    }

    /// The bag's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Topics, sorted by name.
    pub fn topics(&self) -> &[TopicInfo] {
        &self.topics
    }

    /// True when messages are read through the summary's chunk index.
    pub fn is_indexed(&self) -> bool {
        self.chunks.is_some()
    }

    /// Why the summary could not be used (empty when it was, or the file has none).
    pub fn summary_problem(&self) -> &str {
        &self.summary_problem
    }

    /// Damaged ranges the opening scan found (unindexed files; the same ranges are reported
    /// again by [`BagMessages::report`]).
    pub fn open_losses(&self) -> &[DataLoss] {
        &self.open_losses
    }

    /// Messages of `topics` in log-time order, decoded. Every topic must exist and carry
    /// `sensor_msgs/msg/Image`, `CompressedImage` or `CameraInfo` in CDR; otherwise this fails
    /// before reading anything.
    ///
    /// The iterator yields `Err(BagError::Message { .. })` for a message that does not decode
    /// (naming topic, index and reason) and goes on with the next one. Damaged chunks or
    /// records are skipped and recorded in [`BagMessages::report`]; only an I/O error is
    /// yielded as another error, once, and ends the iteration.
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
            for (id, (t, _, _)) in &self.channels {
                if t == topic {
                    kinds.insert(*id, (name.clone(), kind));
                }
            }
        }
        let (src, len) = self.input.open().map_err(|e| BagError::File {
            path: self.path.display().to_string(),
            reason: e.to_string(),
        })?;
        let rf = RecordFile::new(src, len, self.limits);
        let report = ReadReport {
            indexed: self.chunks.is_some(),
            summary_problem: self.summary_problem.clone(),
            ..Default::default()
        };
        let mode = match &self.chunks {
            Some(chunks) => Mode::Indexed {
                // Chunks that hold none of the selected channels are not read.
                chunks: chunks
                    .iter()
                    .filter(|c| {
                        c.message_index_offsets.is_empty()
                            || c.message_index_offsets
                                .keys()
                                .any(|ch| kinds.contains_key(ch))
                    })
                    .cloned()
                    .collect(),
                heap: BinaryHeap::new(),
                seq: 0,
                buffered: 0,
            },
            None => Mode::Scan(Box::new(ScanState::new())),
        };
        Ok(BagMessages {
            path: self.path.display().to_string(),
            kinds,
            counters: HashMap::new(),
            rf,
            mode,
            report,
            done: false,
            unpack: self.unpack,
        })
    }
}

/// Footer → summary section → schemas, channels, chunk index, statistics. `Ok(None)`: the
/// file has no summary; `Err`: it has one that cannot be used (why).
fn read_summary<R: Read + Seek>(rf: &mut RecordFile<R>) -> Result<Option<Summary>, String> {
    let len = rf.len();
    if len < MAGIC.len() as u64 + FOOTER_AND_MAGIC {
        return Err(format!("{len} bytes is too short for a footer"));
    }
    let io = |e: std::io::Error| e.to_string();
    let tail = rf.read_at(len - 8, 8).map_err(io)?;
    if tail != MAGIC {
        return Err("no closing MCAP magic (file cut short?)".into());
    }
    let footer_at = len - FOOTER_AND_MAGIC;
    let footer = match rf.record_at(footer_at).map_err(io)? {
        Record::Whole {
            opcode: op::FOOTER,
            body,
            ..
        } => footer(&body).map_err(|e| e.to_string())?,
        _ => return Err(format!("no footer record at byte {footer_at}")),
    };
    let (start, offsets_start) = (footer.summary_start, footer.summary_offset_start);
    if start == 0 {
        return Ok(None);
    }
    if start < MAGIC.len() as u64 || start >= footer_at {
        return Err(format!(
            "footer puts the summary at byte {start}, outside the file's {}..{footer_at}",
            MAGIC.len()
        ));
    }
    let end = if offsets_start > start && offsets_start <= footer_at {
        offsets_start
    } else {
        footer_at
    };
    if end - start > rf.limits().max_record {
        return Err(format!(
            "summary of {} bytes exceeds the limit",
            end - start
        ));
    }
    if footer.summary_crc != 0 {
        // The CRC covers the summary (with its offset section) up to the footer's CRC field.
        let covered = footer_at + RECORD_HEADER + 16 - start;
        if covered > rf.limits().max_record {
            return Err(format!("summary of {covered} bytes exceeds the limit"));
        }
        let crc = crc32fast::hash(&rf.read_at(start, covered).map_err(io)?);
        if crc != footer.summary_crc {
            return Err(format!(
                "summary CRC {crc:#010x} does not match the footer's {:#010x}",
                footer.summary_crc
            ));
        }
    }
    let bytes = rf.read_at(start, end - start).map_err(io)?;
    let mut s = Summary::default();
    for rec in packed_records(&bytes) {
        let (at, opcode, body) = rec.map_err(|e| format!("summary: {e}"))?;
        let bad = |e: super::records::Malformed| {
            format!("summary record at byte {}: {e}", start + at as u64)
        };
        match opcode {
            op::SCHEMA => {
                let r = schema(body).map_err(bad)?;
                s.schemas.insert(r.id, r);
            }
            op::CHANNEL => {
                let r = channel(body).map_err(bad)?;
                s.channels.insert(r.id, r);
            }
            op::CHUNK_INDEX => {
                let r = chunk_index(body).map_err(bad)?;
                let fits = r
                    .chunk_start_offset
                    .checked_add(r.chunk_length)
                    .is_some_and(|e| r.chunk_start_offset >= MAGIC.len() as u64 && e <= start);
                if !fits {
                    return Err(format!(
                        "chunk index entry {}+{} lies outside the data section",
                        r.chunk_start_offset, r.chunk_length
                    ));
                }
                s.chunks.push(r);
            }
            op::STATISTICS => s.stats = Some(statistics(body).map_err(bad)?),
            op::FOOTER | op::HEADER | op::MESSAGE | op::CHUNK | op::DATA_END => {
                return Err(format!(
                    "summary holds a data record (opcode {opcode:#04x}) at byte {}",
                    start + at as u64
                ))
            }
            _ => {}
        }
    }
    for (id, c) in &s.channels {
        if c.schema_id != 0 && !s.schemas.contains_key(&c.schema_id) {
            return Err(format!(
                "channel {id} ({}) names schema {}, which the summary lacks",
                c.topic, c.schema_id
            ));
        }
    }
    Ok(Some(s))
}

/// What a whole-file scan found.
struct Scanned {
    schemas: BTreeMap<u16, SchemaRec>,
    channels: BTreeMap<u16, ChannelRec>,
    counts: BTreeMap<u16, u64>,
    report: ReadReport,
}

/// One pass over an unindexed file: schemas, channels and per-channel message counts.
fn scan_file<R: Read + Seek>(rf: &mut RecordFile<R>) -> Scanned {
    let mut st = ScanState::new();
    let mut out = Scanned {
        schemas: BTreeMap::new(),
        channels: BTreeMap::new(),
        counts: BTreeMap::new(),
        report: ReadReport::default(),
    };
    let all = |_: u16| true;
    loop {
        match st.next_event(rf, &mut out.report, &all) {
            Ok(Some(Event::Schema(s))) => {
                out.schemas.insert(s.id, s);
            }
            Ok(Some(Event::Channel(c))) => {
                out.channels.entry(c.id).or_insert(c);
            }
            Ok(Some(Event::Message { channel, .. })) => {
                *out.counts.entry(channel).or_default() += 1;
            }
            Ok(None) => break,
            Err(e) => {
                let at = st.pos;
                out.report.lose(DataLoss {
                    file: String::new(),
                    start: at,
                    end: rf.len(),
                    chunk: false,
                    messages: None,
                    reason: format!("I/O error: {e}"),
                });
                break;
            }
        }
    }
    out
}

/// Where a message's data lies in the scan state's buffers.
#[derive(Debug, Clone, Copy)]
enum Loc {
    Chunk(usize, usize),
    Record(usize, usize),
}

enum Event {
    Schema(SchemaRec),
    Channel(ChannelRec),
    Message {
        channel: u16,
        log_time: u64,
        publish_time: u64,
        loc: Loc,
    },
}

/// The forward scan: record by record from after the magic, through chunks, resyncing after
/// damage.
struct ScanState {
    pos: u64,
    /// Current chunk: its records, the next inner position, its byte range in the file, and
    /// whether it is the recovered part of a chunk cut off by the end of the file.
    chunk: Option<(Vec<u8>, usize, u64, u64, bool)>,
    /// The body of the last unchunked record read.
    record: Vec<u8>,
    /// Loss that the message indexes after a damaged chunk add their counts to.
    attribute: Option<usize>,
    done: bool,
}

impl ScanState {
    fn new() -> Self {
        ScanState {
            pos: MAGIC.len() as u64,
            chunk: None,
            record: Vec::new(),
            attribute: None,
            done: false,
        }
    }

    fn data(&self, loc: Loc) -> &[u8] {
        match loc {
            Loc::Chunk(a, b) => self
                .chunk
                .as_ref()
                .and_then(|(buf, ..)| buf.get(a..b))
                .unwrap_or(&[]),
            Loc::Record(a, b) => self.record.get(a..b).unwrap_or(&[]),
        }
    }

    /// The next schema, channel or message (`selected` channels only); `Ok(None)` at the end.
    fn next_event<R: Read + Seek>(
        &mut self,
        rf: &mut RecordFile<R>,
        report: &mut ReadReport,
        selected: &dyn Fn(u16) -> bool,
    ) -> std::io::Result<Option<Event>> {
        // Every turn consumes a record or ends the scan, and records are ≥ 9 bytes (or ≥ 1
        // byte of resync), so this loop is bounded by the file and chunk sizes.
        while !self.done {
            if self.chunk.is_some() {
                if let Some(event) = self.chunk_step(report, selected) {
                    return Ok(Some(event));
                }
                continue;
            }
            let at = self.pos;
            let event = match rf.record_at(at)? {
                Record::End => {
                    self.done = true;
                    None
                }
                Record::Bad { reason } => {
                    self.bad_record(rf, at, reason, report, selected)?;
                    None
                }
                Record::Whole { opcode, body, next } => {
                    self.whole_record(rf, (at, next), opcode, body, report, selected)
                }
            };
            if event.is_some() {
                return Ok(event);
            }
        }
        Ok(None)
    }

    /// One record of the current chunk: an event, or `None` after a record that gives none
    /// (the chunk is dropped at its end or at damage, which is reported).
    fn chunk_step(
        &mut self,
        report: &mut ReadReport,
        selected: &dyn Fn(u16) -> bool,
    ) -> Option<Event> {
        let (buf, pos, start, end, partial) = self.chunk.as_mut()?;
        let (start, end, partial) = (*start, *end, *partial);
        let inner = match packed_records(buf.get(*pos..).unwrap_or(&[])).next() {
            None => None,
            Some(Err(e)) => Some(Err(e)),
            Some(Ok((at, opcode, body))) => {
                Some(Ok((*pos + at + RECORD_HEADER as usize, opcode, body.len())))
            }
        };
        match inner {
            None => {
                report.chunks_read += u64::from(!partial);
                self.chunk = None;
            }
            // The recovered part of a cut-off chunk ends inside a record: that loss
            // is already reported.
            Some(Err(_)) if partial => self.chunk = None,
            Some(Err(e)) => {
                self.chunk = None;
                let i = report.lose(DataLoss {
                    file: String::new(),
                    start,
                    end,
                    chunk: true,
                    messages: None,
                    reason: format!("inside the chunk: {e}"),
                });
                self.attribute = Some(i);
            }
            Some(Ok((body_at, opcode, len))) => {
                *pos = body_at + len;
                let body = buf.get(body_at..body_at + len).unwrap_or(&[]);
                match opcode {
                    op::MESSAGE => match MessageRec::parse(body) {
                        Ok(m) if selected(m.channel_id) => {
                            let a = body_at + MessageRec::HEADER;
                            return Some(Event::Message {
                                channel: m.channel_id,
                                log_time: m.log_time,
                                publish_time: m.publish_time,
                                loc: Loc::Chunk(a, body_at + len),
                            });
                        }
                        Ok(_) => {}
                        Err(e) => {
                            report.lose(DataLoss {
                                file: String::new(),
                                start,
                                end,
                                chunk: false,
                                messages: Some(1),
                                reason: format!("a message inside the chunk: {e}"),
                            });
                        }
                    },
                    op::SCHEMA => {
                        if let Ok(s) = schema(body) {
                            return Some(Event::Schema(s));
                        }
                    }
                    op::CHANNEL => {
                        if let Ok(c) = channel(body) {
                            return Some(Event::Channel(c));
                        }
                    }
                    _ => {}
                }
            }
        }
        None
    }

    /// A record that does not parse at `at`: resume at the next record, or salvage what a
    /// cut-off chunk holds; the loss is reported.
    fn bad_record<R: Read + Seek>(
        &mut self,
        rf: &mut RecordFile<R>,
        at: u64,
        reason: String,
        report: &mut ReadReport,
        selected: &dyn Fn(u16) -> bool,
    ) -> std::io::Result<()> {
        self.attribute = None;
        match rf.resync(at)? {
            Some(next) => {
                report.lose(DataLoss {
                    file: String::new(),
                    start: at,
                    end: next,
                    chunk: false,
                    messages: None,
                    reason: format!("{reason}; resumed at the next record"),
                });
                self.pos = next;
            }
            None => {
                let salvaged = salvage(rf, at);
                let recovered = salvaged
                    .as_ref()
                    .map(|b| count_messages(b, selected))
                    .unwrap_or(0);
                report.lose(DataLoss {
                    file: String::new(),
                    start: at,
                    end: rf.len(),
                    chunk: salvaged.is_some(),
                    messages: None,
                    reason: format!(
                        "{reason}; no complete record follows (file cut short?){}",
                        if salvaged.is_some() {
                            format!(
                                "; {recovered} message(s) recovered from the \
                                 complete part of the cut-off chunk"
                            )
                        } else {
                            String::new()
                        }
                    ),
                });
                match salvaged {
                    Some(buf) => {
                        self.chunk = Some((buf, 0, at, rf.len(), true));
                        // Nothing after the cut: the next read ends the scan.
                        self.pos = rf.len();
                    }
                    None => self.done = true,
                }
            }
        }
        Ok(())
    }

    /// A whole record spanning `at..next` of the data section: an event, a chunk to walk,
    /// lost messages to attribute, or the end.
    fn whole_record<R: Read + Seek>(
        &mut self,
        rf: &mut RecordFile<R>,
        (at, next): (u64, u64),
        opcode: u8,
        body: Vec<u8>,
        report: &mut ReadReport,
        selected: &dyn Fn(u16) -> bool,
    ) -> Option<Event> {
        self.pos = next;
        if opcode != op::MESSAGE_INDEX {
            self.attribute = None;
        }
        match opcode {
            op::MESSAGE => match MessageRec::parse(&body) {
                Ok(m) if selected(m.channel_id) => {
                    let (ch, lt, pt) = (m.channel_id, m.log_time, m.publish_time);
                    let len = body.len();
                    self.record = body;
                    return Some(Event::Message {
                        channel: ch,
                        log_time: lt,
                        publish_time: pt,
                        loc: Loc::Record(MessageRec::HEADER, len),
                    });
                }
                Ok(_) => {}
                Err(e) => {
                    report.lose(DataLoss {
                        file: String::new(),
                        start: at,
                        end: next,
                        chunk: false,
                        messages: Some(1),
                        reason: e.to_string(),
                    });
                }
            },
            op::CHUNK => match ChunkRec::parse(&body).and_then(|c| c.decompress(rf.limits())) {
                Ok(buf) => self.chunk = Some((buf, 0, at, next, false)),
                Err(e) => {
                    let i = report.lose(DataLoss {
                        file: String::new(),
                        start: at,
                        end: next,
                        chunk: true,
                        messages: None,
                        reason: e.to_string(),
                    });
                    self.attribute = Some(i);
                }
            },
            op::MESSAGE_INDEX => {
                if let (Some(i), Ok((ch, n))) = (self.attribute, message_index_entries(&body)) {
                    if selected(ch) {
                        report.add_lost(i, n);
                    }
                }
            }
            op::SCHEMA => {
                if let Ok(s) = schema(&body) {
                    return Some(Event::Schema(s));
                }
            }
            op::CHANNEL => {
                if let Ok(c) = channel(&body) {
                    return Some(Event::Channel(c));
                }
            }
            // The data section ends here; the summary repeats what we have.
            op::DATA_END | op::FOOTER => self.done = true,
            _ => {}
        }
        None
    }
}

/// The decompressible part of a chunk record at `at` that runs past the end of the file.
fn salvage<R: Read + Seek>(rf: &mut RecordFile<R>, at: u64) -> Option<Vec<u8>> {
    let (opcode, _) = rf.header_at(at).ok()??;
    if opcode != op::CHUNK {
        return None;
    }
    let start = at + RECORD_HEADER;
    let n = rf.len().checked_sub(start)?.min(rf.limits().max_record);
    let body = rf.read_at(start, n).ok()?;
    salvage_chunk(&body, rf.limits())
}

/// Whole messages of `selected` channels in packed records (up to the first damaged one).
fn count_messages(buf: &[u8], selected: &dyn Fn(u16) -> bool) -> u64 {
    packed_records(buf)
        .map_while(Result::ok)
        .filter(|(_, opcode, body)| {
            *opcode == op::MESSAGE && MessageRec::parse(body).is_ok_and(|m| selected(m.channel_id))
        })
        .count() as u64
}

/// A message waiting in the log-time merge of the indexed read.
#[derive(Debug)]
struct Pending {
    log_time: u64,
    seq: u64,
    publish_time: u64,
    channel: u16,
    buf: Arc<Vec<u8>>,
    range: (usize, usize),
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.log_time, self.seq) == (other.log_time, other.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.log_time, self.seq).cmp(&(other.log_time, other.seq))
    }
}

enum Mode {
    Indexed {
        chunks: VecDeque<ChunkIndexRec>,
        heap: BinaryHeap<Reverse<Pending>>,
        seq: u64,
        /// Decompressed bytes of the chunks with messages still queued.
        buffered: u64,
    },
    Scan(Box<ScanState>),
}

/// Iterator over decoded messages; see [`BagReader::messages`].
pub struct BagMessages {
    path: String,
    kinds: HashMap<u16, (Arc<str>, Kind)>,
    /// Next index per topic (a topic may span several channels).
    counters: HashMap<Arc<str>, u64>,
    rf: RecordFile<Box<dyn ReadSeek>>,
    mode: Mode,
    report: ReadReport,
    done: bool,
    unpack: Option<u64>,
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
    /// What the read so far skipped (complete once the iterator has ended).
    pub fn report(&self) -> &ReadReport {
        &self.report
    }

    fn fatal(&mut self, reason: String) -> Option<Result<BagMessage, BagError>> {
        self.done = true;
        Some(Err(BagError::File {
            path: self.path.clone(),
            reason,
        }))
    }
}

/// Messages of the selected channels in a chunk's message indexes (`None`: unreadable).
fn indexed_count<R: Read + Seek>(
    rf: &mut RecordFile<R>,
    chunk: &ChunkIndexRec,
    selected: &HashMap<u16, (Arc<str>, Kind)>,
) -> Option<u64> {
    if chunk.message_index_offsets.is_empty() {
        return None;
    }
    let mut n = 0u64;
    for (&ch, &offset) in &chunk.message_index_offsets {
        if !selected.contains_key(&ch) {
            continue;
        }
        match rf.record_at(offset).ok()? {
            Record::Whole {
                opcode: op::MESSAGE_INDEX,
                body,
                ..
            } => {
                let (c, k) = message_index_entries(&body).ok()?;
                if c != ch {
                    return None;
                }
                n += k;
            }
            _ => return None,
        }
    }
    Some(n)
}

/// Decompressed chunk bytes the log-time merge holds at most (beyond the chunk being read).
const MERGE_BUDGET: u64 = 256 << 20;

/// Read one indexed chunk and queue its selected messages; damage is reported. Returns the
/// decompressed bytes now held for the queued messages (0 when none).
fn load_chunk<R: Read + Seek>(
    rf: &mut RecordFile<R>,
    chunk: &ChunkIndexRec,
    kinds: &HashMap<u16, (Arc<str>, Kind)>,
    heap: &mut BinaryHeap<Reverse<Pending>>,
    seq: &mut u64,
    report: &mut ReadReport,
) -> u64 {
    let start = chunk.chunk_start_offset;
    let end = start.saturating_add(chunk.chunk_length);
    let lose = |report: &mut ReadReport, rf: &mut RecordFile<R>, queued: u64, reason: String| {
        let messages = indexed_count(rf, chunk, kinds).map(|n| n.saturating_sub(queued));
        report.lose(DataLoss {
            file: String::new(),
            start,
            end,
            chunk: true,
            messages,
            reason,
        });
        0
    };
    let body = match rf.record_at(start) {
        Ok(Record::Whole {
            opcode: op::CHUNK,
            body,
            next,
        }) if next == end => body,
        Ok(Record::Whole { opcode, next, .. }) => {
            return lose(
                report,
                rf,
                0,
                format!(
                    "the chunk index points at a record (opcode {opcode:#04x}, {} bytes) that is \
                     not the indexed chunk of {} bytes",
                    next - start,
                    chunk.chunk_length
                ),
            )
        }
        Ok(Record::Bad { reason }) => return lose(report, rf, 0, reason),
        Ok(Record::End) => return lose(report, rf, 0, "chunk lies past the end".into()),
        Err(e) => return lose(report, rf, 0, format!("I/O error: {e}")),
    };
    let buf = match ChunkRec::parse(&body).and_then(|c| c.decompress(rf.limits())) {
        Ok(b) => Arc::new(b),
        Err(e) => return lose(report, rf, 0, e.to_string()),
    };
    drop(body);
    let mut queued = 0u64;
    let mut damage = None;
    for rec in packed_records(&buf) {
        let (at, opcode, body) = match rec {
            Ok(r) => r,
            Err(e) => {
                damage = Some(format!("inside the chunk: {e}"));
                break;
            }
        };
        if opcode != op::MESSAGE {
            continue;
        }
        match MessageRec::parse(body) {
            Ok(m) if kinds.contains_key(&m.channel_id) => {
                let a = at + RECORD_HEADER as usize + MessageRec::HEADER;
                let b = at + RECORD_HEADER as usize + body.len();
                *seq += 1;
                queued += 1;
                heap.push(Reverse(Pending {
                    log_time: m.log_time,
                    seq: *seq,
                    publish_time: m.publish_time,
                    channel: m.channel_id,
                    buf: buf.clone(),
                    range: (a, b),
                }));
            }
            Ok(_) => {}
            Err(e) => {
                damage = Some(format!("a message inside the chunk: {e}"));
                break;
            }
        }
    }
    match damage {
        Some(reason) => {
            lose(report, rf, queued, reason);
        }
        None => report.chunks_read += 1,
    }
    if queued > 0 {
        buf.len() as u64
    } else {
        0
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
    unpack: Option<u64>,
) -> Option<Result<BagMessage, BagError>> {
    let (topic, kind) = kinds.get(&channel_id)?;
    let counter = counters.entry(topic.clone()).or_default();
    let index = *counter;
    *counter += 1;
    let unpacked;
    // A CDR payload starts with its encapsulation header (0x00 first), never zstd's magic.
    let data = match unpack {
        Some(cap) if data.starts_with(&super::compression::ZSTD_MAGIC) => {
            match super::compression::decompress_message(data, cap) {
                Ok(d) => {
                    unpacked = d;
                    &unpacked[..]
                }
                Err(reason) => {
                    return Some(Err(BagError::Message {
                        topic: topic.to_string(),
                        index,
                        log_time_ns,
                        reason,
                    }))
                }
            }
        }
        _ => data,
    };
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
            match &mut self.mode {
                Mode::Indexed {
                    chunks,
                    heap,
                    seq,
                    buffered,
                } => {
                    // Load every chunk that may hold a message earlier than the earliest
                    // queued one, then yield that one. Overlapping chunks are merged in
                    // log-time order up to MERGE_BUDGET bytes held at once (an index whose
                    // times all overlap cannot make us hold the whole file).
                    while let Some(front) = chunks.front() {
                        let due = heap
                            .peek()
                            .is_none_or(|Reverse(p)| front.message_start_time <= p.log_time);
                        if !due || (!heap.is_empty() && *buffered >= MERGE_BUDGET) {
                            break;
                        }
                        if let Some(c) = chunks.pop_front() {
                            *buffered += load_chunk(
                                &mut self.rf,
                                &c,
                                &self.kinds,
                                heap,
                                seq,
                                &mut self.report,
                            );
                        }
                    }
                    let Some(Reverse(p)) = heap.pop() else {
                        self.done = true;
                        break;
                    };
                    if Arc::strong_count(&p.buf) == 1 {
                        *buffered = buffered.saturating_sub(p.buf.len() as u64);
                    }
                    let data = p.buf.get(p.range.0..p.range.1).unwrap_or(&[]);
                    if let Some(item) = decode(
                        &self.kinds,
                        &mut self.counters,
                        p.channel,
                        p.log_time,
                        p.publish_time,
                        data,
                        self.unpack,
                    ) {
                        return Some(item);
                    }
                }
                Mode::Scan(st) => {
                    let kinds = &self.kinds;
                    let selected = |ch: u16| kinds.contains_key(&ch);
                    match st.next_event(&mut self.rf, &mut self.report, &selected) {
                        Ok(Some(Event::Message {
                            channel,
                            log_time,
                            publish_time,
                            loc,
                        })) => {
                            if let Some(item) = decode(
                                &self.kinds,
                                &mut self.counters,
                                channel,
                                log_time,
                                publish_time,
                                st.data(loc),
                                self.unpack,
                            ) {
                                return Some(item);
                            }
                        }
                        Ok(Some(_)) => {}
                        Ok(None) => self.done = true,
                        Err(e) => return self.fatal(format!("reading messages: {e}")),
                    }
                }
            }
        }
        None
    }
}
