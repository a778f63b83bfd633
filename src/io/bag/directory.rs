//! A bag as `ros2 bag record` leaves it: a directory with `metadata.yaml` and one or more
//! storage files (split by size or duration), MCAP or sqlite3, optionally compressed by
//! rosbag2 per file or per message; or a single storage file. [`Bag`] plays all split files in
//! order as one stream of [`BagMessage`]s.
//!
//! Damage is reported, never fatal when something is still readable:
//! - `metadata.yaml` missing or unreadable: the directory's storage files are played in split
//!   order (`<name>_0`, `<name>_1`, ...) when they are all of one storage kind, which is safe
//!   because MCAP and `.db3` files describe their own topics; a note says so. Per-message
//!   compression is recognised from the payloads themselves (a zstd frame never starts a CDR
//!   payload), so nothing depends on the missing metadata but the file order.
//! - a listed file missing or unreadable: reported as a [`DataLoss`] (with its message count
//!   when `metadata.yaml` records one), the other files are played;
//! - a truncated or damaged file: what its reader recovers is played, the rest reported.

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use super::compression::{decompress_file, CompressionMode, TempFile, MAX_FILE_DECOMPRESSED};
use super::message::{BagMessage, Kind, TopicInfo};
use super::metadata::BagMetadata;
use super::records::Limits;
use super::report::{DataLoss, ReadReport};
use super::storage::{sniff, FileMessages, Sniffed, StorageFile, StorageKind};
use super::BagError;

/// One storage file of a bag.
#[derive(Debug)]
pub struct BagFile {
    /// As listed (relative to the directory), or the file name.
    pub name: String,
    /// Where it is.
    pub path: PathBuf,
    /// Bytes on disk (`None`: missing).
    pub size: Option<u64>,
    /// Messages the metadata records for it.
    pub metadata_count: Option<u64>,
    /// Compressed as a whole (rosbag2 `FILE` mode): opened only when played.
    pub compressed: bool,
    /// Why it cannot be read (empty when it can).
    pub problem: String,
    reader: Option<StorageFile>,
}

impl BagFile {
    /// The listed file `rel` of the bag in `dir`, opened unless it is compressed (then it is
    /// opened when played); a file that cannot be opened keeps its problem (logged).
    fn open(
        dir: &Path,
        rel: String,
        metadata_count: Option<u64>,
        storage: StorageKind,
        compression: CompressionMode,
        limits: Limits,
    ) -> BagFile {
        let path = dir.join(&rel);
        let size = std::fs::metadata(&path).ok().map(|m| m.len());
        let compressed = compression == CompressionMode::File;
        let mut file = BagFile {
            metadata_count,
            name: rel,
            path,
            size,
            compressed,
            problem: String::new(),
            reader: None,
        };
        if size.is_none() {
            file.problem = "listed in metadata.yaml but missing".into();
        } else if !compressed {
            match StorageFile::open(&file.path, storage, limits) {
                Ok(r) => file.reader = Some(r),
                Err(e) => file.problem = e.to_string(),
            }
        }
        if !file.problem.is_empty() {
            log::warn!("{}: {}", file.path.display(), file.problem);
        }
        file
    }

    /// What is wrong with the file although it opened (a `.db3` cut short), if anything.
    pub fn damage(&self) -> Option<String> {
        self.reader.as_ref().and_then(StorageFile::damage)
    }

    /// Topics of the file (empty when it is compressed or unreadable).
    pub fn topics(&self) -> &[TopicInfo] {
        self.reader.as_ref().map(|r| r.topics()).unwrap_or(&[])
    }

    /// First and last message time (ns), when the file records them.
    pub fn time_range(&self) -> Option<(u64, u64)> {
        self.reader.as_ref().and_then(|r| r.time_range())
    }
}

/// A topic with what `metadata.yaml` adds (QoS).
#[derive(Debug, Clone, PartialEq)]
pub struct BagTopic {
    /// Name, type, encoding, count.
    pub info: TopicInfo,
    /// QoS profiles as `metadata.yaml` records them (YAML text; empty when unknown).
    pub qos: String,
}

/// An open bag directory or storage file; see the module doc.
#[derive(Debug)]
pub struct Bag {
    path: PathBuf,
    storage: StorageKind,
    compression: CompressionMode,
    metadata: Option<BagMetadata>,
    files: Arc<Vec<BagFile>>,
    topics: Vec<BagTopic>,
    /// Plain topic list (for [`Bag::topics`]).
    topic_infos: Vec<TopicInfo>,
    notes: Vec<String>,
    limits: Limits,
}

/// The topics the files give: every file's when all opened; without metadata, compressed
/// files are read for theirs now, one at a time (a file that fails keeps the problem); `None`
/// when the metadata gives them instead (compressed files are opened when played).
fn topics_from_files(
    files: &mut [BagFile],
    no_metadata: bool,
    storage: StorageKind,
    limits: Limits,
) -> Option<Vec<TopicInfo>> {
    if files.iter().all(|f| f.reader.is_some()) {
        let mut all: Vec<TopicInfo> = Vec::new();
        for f in files.iter() {
            all.extend(f.topics().iter().cloned());
        }
        return Some(all);
    }
    if !no_metadata {
        return None;
    }
    let mut all = Vec::new();
    for f in files.iter_mut().filter(|f| f.problem.is_empty()) {
        match decompress_file(&f.path, MAX_FILE_DECOMPRESSED)
            .map_err(|e| file_err(&f.path, format!("zstd: {e}")))
            .and_then(|(t, _)| Ok((StorageFile::open(t.path(), storage, limits)?, t)))
        {
            Ok((r, _temp)) => all.extend(r.topics().iter().cloned()),
            Err(e) => f.problem = e.to_string(),
        }
    }
    Some(all)
}

fn file_err(path: &Path, reason: String) -> BagError {
    BagError::File {
        path: path.display().to_string(),
        reason,
    }
}

/// `rosbag2_x_12.mcap` → 12, so split files sort by index, not by text.
fn split_index(name: &str) -> Option<u64> {
    let stem = name.split('.').next()?;
    stem.rsplit_once('_')?.1.parse().ok()
}

/// A listed path must stay inside the directory: relative, without `..`.
fn safe_relative(rel: &str) -> bool {
    let p = Path::new(rel);
    !rel.is_empty()
        && p.components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// The first entry of `listed` that names a file listed before it: the same path (`a.mcap`,
/// `./a.mcap`) or the same file through a symlink or hard link.
fn duplicate_file(dir: &Path, listed: &[String]) -> Option<String> {
    // (as listed, normalized path, device and inode).
    type Seen<'a> = (&'a str, PathBuf, Option<(u64, u64)>);
    let mut seen: Vec<Seen> = Vec::new();
    for rel in listed {
        let normal: PathBuf = Path::new(rel)
            .components()
            .filter(|c| !matches!(c, Component::CurDir))
            .collect();
        let id = file_id(&dir.join(rel));
        if let Some((first, _, _)) = seen
            .iter()
            .find(|(_, n, i)| *n == normal || (id.is_some() && *i == id))
        {
            return Some(if *first == rel.as_str() {
                format!("`{rel}` twice")
            } else {
                format!("`{rel}`, the same file as `{first}`")
            });
        }
        seen.push((rel, normal, id));
    }
    None
}

#[cfg(unix)]
fn file_id(p: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_id(_: &Path) -> Option<(u64, u64)> {
    None
}

impl Bag {
    /// Open a bag directory (or its `metadata.yaml`), or a single `.mcap` / `.db3` file
    /// (also `FILE`-compressed, `.zstd`).
    pub fn open(path: &Path) -> Result<Self, BagError> {
        Self::open_with_limits(path, Limits::default())
    }

    /// [`Bag::open`] with explicit size limits.
    pub fn open_with_limits(path: &Path, limits: Limits) -> Result<Self, BagError> {
        let meta = std::fs::metadata(path).map_err(|e| {
            file_err(
                path,
                format!("{e}; expected a rosbag2 bag directory or an .mcap / .db3 file"),
            )
        })?;
        if meta.is_dir() {
            return Self::open_dir(path, limits);
        }
        if path.file_name().is_some_and(|n| n == "metadata.yaml") {
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            return Self::open_dir(dir, limits);
        }
        Self::open_single(path, meta.len(), limits)
    }

    fn open_single(path: &Path, size: u64, limits: Limits) -> Result<Self, BagError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let sniffed = sniff(path).map_err(|e| file_err(path, e.to_string()))?;
        let (storage, compressed) =
            match sniffed {
                Sniffed::Storage(k) => (k, false),
                Sniffed::Zstd => {
                    match StorageKind::from_name(&name) {
                        Some(k) => (k, true),
                        None => return Err(file_err(
                            path,
                            "a zstd file whose name says no storage (expected NAME.mcap.zstd or \
                         NAME.db3.zstd)"
                                .into(),
                        )),
                    }
                }
                Sniffed::Unknown => return Err(file_err(
                    path,
                    "not a bag: expected a rosbag2 bag directory (with metadata.yaml), an MCAP \
                     file, an SQLite .db3 file, or one of them compressed with zstd"
                        .into(),
                )),
            };
        let mut file = BagFile {
            name,
            path: path.to_path_buf(),
            size: Some(size),
            metadata_count: None,
            compressed,
            problem: String::new(),
            reader: None,
        };
        if compressed {
            // A lone compressed file has no metadata to list its topics: read them now.
            let (temp, damage) = decompress_file(path, MAX_FILE_DECOMPRESSED)
                .map_err(|e| file_err(path, format!("zstd: {e}")))?;
            let notes: Vec<String> = damage.into_iter().collect();
            let reader = StorageFile::open(temp.path(), storage, limits)?;
            let topics = reader.topics().to_vec();
            return Ok(Self::assemble(
                path,
                storage,
                CompressionMode::File,
                None,
                vec![file],
                Some(topics),
                notes,
                limits,
            ));
        }
        let reader = StorageFile::open(path, storage, limits)?;
        let topics = reader.topics().to_vec();
        file.reader = Some(reader);
        Ok(Self::assemble(
            path,
            storage,
            CompressionMode::None,
            None,
            vec![file],
            Some(topics),
            Vec::new(),
            limits,
        ))
    }

    fn open_dir(dir: &Path, limits: Limits) -> Result<Self, BagError> {
        let meta_path = dir.join("metadata.yaml");
        let mut notes = Vec::new();
        let metadata = match BagMetadata::read(&meta_path) {
            Ok(m) => Some(m),
            Err(e) => {
                let why = if meta_path.exists() {
                    format!("metadata.yaml is unreadable ({})", e.reason)
                } else {
                    "metadata.yaml is missing".to_string()
                };
                notes.push(why);
                None
            }
        };
        let (storage, compression, listed) = match &metadata {
            Some(m) => Self::listed_files(dir, &meta_path, m)?,
            None => {
                let (storage, compression, names) = Self::scan_dir(dir, &notes)?;
                notes.push(format!(
                    "played the {} {} file(s) found in the directory, in split order: {}",
                    names.len(),
                    storage.id(),
                    names.join(", ")
                ));
                (storage, compression, names)
            }
        };
        for n in &notes {
            log::warn!("{}: {n}", dir.display());
        }
        let mut files = Vec::new();
        for rel in listed {
            let metadata_count = metadata.as_ref().and_then(|m| m.file_message_count(&rel));
            files.push(BagFile::open(
                dir,
                rel,
                metadata_count,
                storage,
                compression,
                limits,
            ));
        }
        if files.iter().all(|f| !f.problem.is_empty()) {
            let problems: Vec<String> = files
                .iter()
                .map(|f| format!("{}: {}", f.name, f.problem))
                .collect();
            return Err(file_err(
                dir,
                format!(
                    "no storage file of the bag is readable ({})",
                    problems.join("; ")
                ),
            ));
        }
        let from_files = topics_from_files(&mut files, metadata.is_none(), storage, limits);
        Ok(Self::assemble(
            dir,
            storage,
            compression,
            metadata,
            files,
            from_files,
            notes,
            limits,
        ))
    }

    /// What metadata.yaml says to play: the storage kind, the compression, the files (each
    /// inside the bag directory, listed once, at least one).
    fn listed_files(
        dir: &Path,
        meta_path: &Path,
        m: &BagMetadata,
    ) -> Result<(StorageKind, CompressionMode, Vec<String>), BagError> {
        let storage = StorageKind::from_id(&m.storage_identifier).ok_or_else(|| {
            file_err(
                meta_path,
                format!(
                    "storage_identifier `{}` is not one this reader plays (expected {})",
                    m.storage_identifier,
                    StorageKind::IDS.join(" or ")
                ),
            )
        })?;
        let compression =
            CompressionMode::from_metadata(&m.compression_mode, &m.compression_format)
                .map_err(|e| file_err(meta_path, e))?;
        if let Some(bad) = m.relative_file_paths.iter().find(|r| !safe_relative(r)) {
            return Err(file_err(
                meta_path,
                format!("relative_file_paths lists `{bad}`, which leaves the bag directory"),
            ));
        }
        if let Some(dup) = duplicate_file(dir, &m.relative_file_paths) {
            return Err(file_err(
                meta_path,
                format!(
                    "relative_file_paths lists {dup}; a storage file is played once \
                     (rosbag2 never lists one twice: fix the list)"
                ),
            ));
        }
        if m.relative_file_paths.is_empty() {
            return Err(file_err(
                meta_path,
                "relative_file_paths is empty: the bag lists no storage files".into(),
            ));
        }
        Ok((storage, compression, m.relative_file_paths.clone()))
    }

    /// Without metadata: the directory's storage files, all of one kind, in split order.
    fn scan_dir(
        dir: &Path,
        notes: &[String],
    ) -> Result<(StorageKind, CompressionMode, Vec<String>), BagError> {
        let why = notes.join("; ");
        let entries = std::fs::read_dir(dir).map_err(|e| file_err(dir, e.to_string()))?;
        let mut found: Vec<(StorageKind, bool, String)> = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if let Some(kind) = StorageKind::from_name(&name) {
                if entry.path().is_file() {
                    found.push((kind, name.ends_with(".zstd"), name));
                }
            }
        }
        let Some(&(kind, compressed, _)) = found.first() else {
            return Err(file_err(
                dir,
                format!(
                    "{why}, and the directory holds no .mcap or .db3 files: not a rosbag2 bag \
                     directory"
                ),
            ));
        };
        if found.iter().any(|(k, c, _)| (*k, *c) != (kind, compressed)) {
            let names: Vec<&str> = found.iter().map(|(_, _, n)| n.as_str()).collect();
            return Err(file_err(
                dir,
                format!(
                    "{why}, and its storage files are of different kinds ({}); which belong to \
                     the bag cannot be told without metadata.yaml",
                    names.join(", ")
                ),
            ));
        }
        found.sort_by(|a, b| (split_index(&a.2), &a.2).cmp(&(split_index(&b.2), &b.2)));
        let mode = if compressed {
            CompressionMode::File
        } else {
            CompressionMode::None
        };
        Ok((kind, mode, found.into_iter().map(|(_, _, n)| n).collect()))
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        path: &Path,
        storage: StorageKind,
        compression: CompressionMode,
        metadata: Option<BagMetadata>,
        files: Vec<BagFile>,
        from_files: Option<Vec<TopicInfo>>,
        notes: Vec<String>,
        limits: Limits,
    ) -> Self {
        let mut topics: BTreeMap<String, BagTopic> = BTreeMap::new();
        if let Some(m) = &metadata {
            for t in &m.topics_with_message_count {
                let tm = &t.topic_metadata;
                let qos = match &tm.offered_qos_profiles {
                    serde_yaml::Value::String(s) => s.clone(),
                    serde_yaml::Value::Null => String::new(),
                    other => serde_yaml::to_string(other).unwrap_or_default(),
                };
                topics.insert(
                    tm.name.clone(),
                    BagTopic {
                        info: TopicInfo {
                            name: tm.name.clone(),
                            message_type: tm.message_type.clone(),
                            message_encoding: tm.serialization_format.clone(),
                            message_count: t.message_count,
                        },
                        qos,
                    },
                );
            }
        }
        if let Some(list) = from_files {
            // The files are the truth for types and counts; the metadata adds QoS.
            let mut counted: BTreeMap<String, TopicInfo> = BTreeMap::new();
            for t in list {
                counted
                    .entry(t.name.clone())
                    .and_modify(|c| c.message_count += t.message_count)
                    .or_insert(t);
            }
            for (name, info) in counted {
                let qos = topics.get(&name).map(|t| t.qos.clone()).unwrap_or_default();
                topics.insert(name, BagTopic { info, qos });
            }
        }
        let topics: Vec<BagTopic> = topics.into_values().collect();
        Bag {
            path: path.to_path_buf(),
            storage,
            compression,
            metadata,
            files: Arc::new(files),
            topic_infos: topics.iter().map(|t| t.info.clone()).collect(),
            topics,
            notes,
            limits,
        }
    }

    /// The path given to [`Bag::open`] (the directory for a bag directory).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Topics, sorted by name.
    pub fn topics(&self) -> &[TopicInfo] {
        &self.topic_infos
    }

    /// Topics with their QoS.
    pub fn topics_with_qos(&self) -> &[BagTopic] {
        &self.topics
    }

    /// The storage plugin.
    pub fn storage(&self) -> StorageKind {
        self.storage
    }

    /// rosbag2's own compression.
    pub fn compression(&self) -> CompressionMode {
        self.compression
    }

    /// `metadata.yaml`, when it was read.
    pub fn metadata(&self) -> Option<&BagMetadata> {
        self.metadata.as_ref()
    }

    /// The storage files in playback order.
    pub fn files(&self) -> &[BagFile] {
        &self.files
    }

    /// What was assumed or worked around on opening (a missing metadata.yaml, ...).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// First and last message time (ns): from `metadata.yaml`, else from the files.
    pub fn time_range(&self) -> Option<(u64, u64)> {
        if let Some(m) = &self.metadata {
            if m.message_count > 0 {
                let start = m.starting_time.nanoseconds_since_epoch;
                return Some((start, start.saturating_add(m.duration.nanoseconds)));
            }
        }
        let ranges: Vec<(u64, u64)> = self.files.iter().filter_map(|f| f.time_range()).collect();
        let start = ranges.iter().map(|r| r.0).min()?;
        let end = ranges.iter().map(|r| r.1).max()?;
        Some((start, end))
    }

    /// Messages of `topics` from every file in order, decoded, indexed per topic across the
    /// files. Every topic must exist and carry `sensor_msgs/msg/Image`, `CompressedImage` or
    /// `CameraInfo` in CDR; otherwise this fails before reading anything. Per-message errors
    /// come through as `Err(BagError::Message { .. })` and iteration goes on; damaged or
    /// missing files are reported in [`BagStream::report`].
    pub fn messages(&self, topics: &[&str]) -> Result<BagStream, BagError> {
        for &topic in topics {
            let topic_err = |reason: String| BagError::Topic {
                path: self.path.display().to_string(),
                topic: topic.to_string(),
                reason,
            };
            let Some(info) = self.topic_infos.iter().find(|t| t.name == topic) else {
                return Err(topic_err(format!(
                    "not in the bag; it has {}",
                    self.topic_infos
                        .iter()
                        .map(|t| format!("{} ({})", t.name, t.message_type))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            };
            if Kind::of(&info.message_type).is_none() {
                return Err(topic_err(format!(
                    "type `{}` is not readable; expected one of {}",
                    info.message_type,
                    Kind::READABLE.join(", ")
                )));
            }
            if info.message_encoding != "cdr" {
                return Err(topic_err(format!(
                    "message encoding `{}`; expected `cdr`",
                    info.message_encoding
                )));
            }
        }
        let mut report = ReadReport {
            indexed: true,
            ..Default::default()
        };
        report.notes = self.notes.clone();
        Ok(BagStream {
            files: self.files.clone(),
            storage: self.storage,
            limits: self.limits,
            topics: topics.iter().map(|t| t.to_string()).collect(),
            next_file: 0,
            current: None,
            temp: None,
            counters: HashMap::new(),
            report,
        })
    }
}

/// Messages of a [`Bag`]'s files as one stream; see [`Bag::messages`].
pub struct BagStream {
    files: Arc<Vec<BagFile>>,
    storage: StorageKind,
    limits: Limits,
    topics: Vec<String>,
    next_file: usize,
    /// The file being read, by its index.
    current: Option<(usize, FileMessages)>,
    /// The decompressed copy of the current file (`FILE` mode), deleted when done.
    temp: Option<TempFile>,
    counters: HashMap<Arc<str>, u64>,
    report: ReadReport,
}

impl std::fmt::Debug for BagStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BagStream")
            .field("topics", &self.topics)
            .field("next_file", &self.next_file)
            .finish_non_exhaustive()
    }
}

impl BagStream {
    /// What the read skipped so far over all files, the file being read included (complete
    /// once the iterator has ended).
    pub fn report(&self) -> ReadReport {
        let mut r = self.report.clone();
        if let Some((i, current)) = &self.current {
            absorb(&mut r, &self.name(*i), current.report());
        }
        r
    }

    fn name(&self, file: usize) -> String {
        self.files
            .get(file)
            .map(|f| f.path.display().to_string())
            .unwrap_or_default()
    }

    /// A whole file lost (missing, unreadable, fails to decompress).
    fn lose_file(&mut self, file: usize, reason: String) {
        let messages = self.files.get(file).and_then(|f| f.metadata_count);
        let size = self.files.get(file).and_then(|f| f.size).unwrap_or(0);
        self.report.lose(DataLoss {
            file: self.name(file),
            start: 0,
            end: size,
            chunk: false,
            messages,
            reason,
        });
    }

    /// Open file `i` for reading; `None` (with the loss recorded) when it cannot be read.
    fn start(&mut self, i: usize) -> Option<FileMessages> {
        let files = self.files.clone();
        let file = files.get(i)?;
        let topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        if !file.problem.is_empty() {
            self.lose_file(i, file.problem.clone());
            return None;
        }
        let opened;
        let reader = match &file.reader {
            Some(r) => r,
            None => {
                let temp = match decompress_file(&file.path, MAX_FILE_DECOMPRESSED) {
                    Ok((t, None)) => t,
                    Ok((t, Some(damage))) => {
                        // The prefix is read; the loss names the file and that its count of
                        // lost messages is unknown.
                        self.report.lose(DataLoss {
                            file: self.name(i),
                            start: 0,
                            end: 0,
                            chunk: false,
                            messages: None,
                            reason: damage,
                        });
                        t
                    }
                    Err(e) => {
                        self.lose_file(i, format!("zstd: {e}"));
                        return None;
                    }
                };
                match StorageFile::open(temp.path(), self.storage, self.limits) {
                    Ok(r) => {
                        self.temp = Some(temp);
                        opened = r;
                        &opened
                    }
                    Err(e) => {
                        self.lose_file(i, format!("after decompressing: {e}"));
                        return None;
                    }
                }
            }
        };
        match reader.messages(&topics, self.limits) {
            Ok(m) => Some(m),
            Err(e) => {
                self.lose_file(i, e.to_string());
                None
            }
        }
    }

    fn renumber(&mut self, item: Result<BagMessage, BagError>) -> Result<BagMessage, BagError> {
        let mut next = |topic: &str| {
            let key: Arc<str> = Arc::from(topic);
            let c = self.counters.entry(key).or_default();
            let i = *c;
            *c += 1;
            i
        };
        match item {
            Ok(mut m) => {
                m.index = next(&m.topic);
                Ok(m)
            }
            Err(BagError::Message {
                topic,
                log_time_ns,
                reason,
                ..
            }) => Err(BagError::Message {
                index: next(&topic),
                topic,
                log_time_ns,
                reason,
            }),
            Err(e) => Err(e),
        }
    }
}

/// Fold one file's report into `into`, naming the file.
fn absorb(into: &mut ReadReport, name: &str, r: &ReadReport) {
    into.indexed &= r.indexed;
    if !r.summary_problem.is_empty() {
        if !into.summary_problem.is_empty() {
            into.summary_problem.push_str("; ");
        }
        into.summary_problem
            .push_str(&format!("{name}: {}", r.summary_problem));
    }
    into.chunks_read += r.chunks_read;
    for loss in &r.losses {
        let mut loss = loss.clone();
        if loss.file.is_empty() {
            loss.file = name.to_string();
        }
        into.record(loss);
    }
}

impl Iterator for BagStream {
    type Item = Result<BagMessage, BagError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((i, current)) = &mut self.current {
                let i = *i;
                match current.next() {
                    Some(item) => return Some(self.renumber(item)),
                    None => {
                        if let Some((_, done)) = self.current.take() {
                            let name = self.name(i);
                            absorb(&mut self.report, &name, done.report());
                        }
                        self.temp = None;
                        continue;
                    }
                }
            }
            let i = self.next_file;
            if i >= self.files.len() {
                return None;
            }
            self.next_file += 1;
            if let Some(m) = self.start(i) {
                self.current = Some((i, m));
            }
        }
    }
}
