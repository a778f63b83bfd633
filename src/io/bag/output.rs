//! Where `imd replay` writes: a rosbag2 bag directory (one MCAP file `<dir>_0.mcap` plus
//! `metadata.yaml`, as `ros2 bag record -s mcap` leaves it) or, for a path ending in `.mcap`,
//! that single file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::cdr::CdrMessage;
use super::metadata::{
    default_qos_yaml, BagMetadata, EpochTime, FileMetadata, Nanoseconds, TopicMetadata,
    TopicWithCount, WRITTEN_VERSION,
};
use super::writer::BagWriter;
use super::BagError;

/// An output bag being written; call [`BagOutput::finish`]. While it exists it holds an
/// exclusive lock on `<output>.lock` next to the output, so a second writer of the same path
/// is refused instead of interleaving with this one.
pub struct BagOutput {
    kind: OutputKind,
    _lock: OutputLock,
}

enum OutputKind {
    /// One `.mcap` file.
    File(BagWriter),
    /// A rosbag2 directory.
    Directory(DirectoryOutput),
}

/// `<output>.lock`, held with `flock` (released by the kernel if the process dies, so a stale
/// file never blocks a later run) and removed when the output is done.
struct OutputLock {
    path: PathBuf,
    _file: std::fs::File,
}

impl OutputLock {
    fn acquire(out: &Path) -> Result<Self, BagError> {
        let name = out
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .filter(|n| !n.is_empty() && n != "." && n != "..")
            .ok_or_else(|| write_err(out, "expected a file or folder name to write".into()))?;
        let parent = match out.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(|e| write_err(&parent, e.to_string()))?;
        let path = parent.join(format!("{name}.lock"));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| write_err(&path, format!("creating the output lock: {e}")))?;
        #[cfg(unix)]
        {
            use std::os::unix::io::AsRawFd;
            // SAFETY: flock on a descriptor this function owns.
            let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if r != 0 {
                let e = std::io::Error::last_os_error();
                return Err(write_err(
                    out,
                    if e.kind() == std::io::ErrorKind::WouldBlock {
                        format!(
                            "another process is writing this output (it holds {}); two \
                             writers would corrupt it (wait for it, or choose another path)",
                            path.display()
                        )
                    } else {
                        format!("locking {}: {e}", path.display())
                    },
                ));
            }
        }
        Ok(OutputLock { path, _file: file })
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        // Removed while still held; the descriptor closes (and unlocks) right after.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A rosbag2 directory being written: the MCAP file and what `metadata.yaml` will say.
pub struct DirectoryOutput {
    dir: PathBuf,
    file_name: String,
    writer: BagWriter,
    /// topic → (type, messages).
    topics: BTreeMap<String, (&'static str, u64)>,
    /// First and last log time written.
    times: Option<(u64, u64)>,
    count: u64,
}

fn write_err(path: &Path, reason: String) -> BagError {
    BagError::Write {
        path: path.display().to_string(),
        reason,
    }
}

impl BagOutput {
    /// A path ending in `.mcap` is written as that one file; any other path becomes a new bag
    /// directory. Like rosbag2, an existing directory is only written into when it is empty.
    pub fn create(path: &Path) -> Result<Self, BagError> {
        let lock = OutputLock::acquire(path)?;
        Ok(BagOutput {
            kind: Self::create_locked(path)?,
            _lock: lock,
        })
    }

    fn create_locked(path: &Path) -> Result<OutputKind, BagError> {
        if path.extension().is_some_and(|e| e == "mcap") {
            return Ok(OutputKind::File(BagWriter::create(path)?));
        }
        if path.exists() {
            let empty = std::fs::read_dir(path)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
            if !empty {
                return Err(write_err(
                    path,
                    "exists and is not an empty directory; a bag directory is written new \
                     (choose another path, or end it in .mcap for a single file)"
                        .into(),
                ));
            }
        }
        std::fs::create_dir_all(path).map_err(|e| write_err(path, e.to_string()))?;
        let base = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .filter(|n| !n.is_empty() && n != "." && n != "..")
            .unwrap_or_else(|| "bag".into());
        let file_name = format!("{base}_0.mcap");
        let writer = BagWriter::create(&path.join(&file_name))?;
        Ok(OutputKind::Directory(DirectoryOutput {
            dir: path.to_path_buf(),
            file_name,
            writer,
            topics: BTreeMap::new(),
            times: None,
            count: 0,
        }))
    }

    /// Append `msg` on `topic` at `log_time_ns`.
    pub fn write<M: CdrMessage>(
        &mut self,
        topic: &str,
        log_time_ns: u64,
        msg: &M,
    ) -> Result<(), BagError> {
        match &mut self.kind {
            OutputKind::File(w) => w.write(topic, log_time_ns, msg),
            OutputKind::Directory(d) => {
                d.writer.write(topic, log_time_ns, msg)?;
                d.topics
                    .entry(topic.to_string())
                    .or_insert((M::TYPE_NAME, 0))
                    .1 += 1;
                d.count += 1;
                d.times = Some(match d.times {
                    None => (log_time_ns, log_time_ns),
                    Some((a, b)) => (a.min(log_time_ns), b.max(log_time_ns)),
                });
                Ok(())
            }
        }
    }

    /// Close the MCAP file (summary and index), then write `metadata.yaml`.
    pub fn finish(self) -> Result<(), BagError> {
        match self.kind {
            OutputKind::File(w) => w.finish(),
            OutputKind::Directory(d) => {
                let meta = d.metadata();
                d.writer.finish()?;
                let path = d.dir.join("metadata.yaml");
                let text = meta.to_yaml().map_err(|e| write_err(&path, e.reason))?;
                std::fs::write(&path, text).map_err(|e| write_err(&path, e.to_string()))
            }
        }
    }
}

impl DirectoryOutput {
    fn metadata(&self) -> BagMetadata {
        let (start, end) = self.times.unwrap_or((0, 0));
        let starting_time = EpochTime {
            nanoseconds_since_epoch: start,
        };
        let duration = Nanoseconds {
            nanoseconds: end - start,
        };
        BagMetadata {
            version: WRITTEN_VERSION,
            storage_identifier: "mcap".into(),
            relative_file_paths: vec![self.file_name.clone()],
            duration,
            starting_time,
            message_count: self.count,
            topics_with_message_count: self
                .topics
                .iter()
                .map(|(name, (ty, n))| TopicWithCount {
                    topic_metadata: TopicMetadata {
                        name: name.clone(),
                        message_type: ty.to_string(),
                        serialization_format: "cdr".into(),
                        offered_qos_profiles: serde_yaml::Value::String(default_qos_yaml()),
                        type_description_hash: String::new(),
                    },
                    message_count: *n,
                })
                .collect(),
            compression_format: String::new(),
            compression_mode: String::new(),
            files: vec![FileMetadata {
                path: self.file_name.clone(),
                starting_time,
                duration,
                message_count: self.count,
            }],
            custom_data: serde_yaml::Value::Null,
            ros_distro: String::new(),
        }
    }
}
