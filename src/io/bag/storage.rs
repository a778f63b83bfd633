//! One storage file of a bag, whichever rosbag2 storage wrote it: the same topics and decoded
//! message records from an `.mcap` ([`BagReader`]) or a `.db3` ([`SqliteReader`]).

use std::io::Read;
use std::path::Path;

use super::compression::ZSTD_MAGIC;
use super::message::{BagMessage, TopicInfo};
use super::reader::{BagMessages, BagReader};
use super::records::{Limits, MAGIC};
use super::report::ReadReport;
use super::sqlite::{SqliteMessages, SqliteReader, SQLITE_MAGIC};
use super::BagError;

/// A rosbag2 storage plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageKind {
    /// `mcap` (rosbag2's default from Iron on).
    Mcap,
    /// `sqlite3` (`.db3`, the default up to Humble).
    Sqlite3,
}

/// What the first bytes of a file say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// A storage file.
    Storage(StorageKind),
    /// A zstd stream (a rosbag2 `FILE`-compressed storage file).
    Zstd,
    /// Something else.
    Unknown,
}

impl StorageKind {
    /// The storage identifiers of `metadata.yaml` this reader knows.
    pub const IDS: &'static [&'static str] = &["mcap", "sqlite3"];

    /// From `metadata.yaml`'s `storage_identifier`.
    pub fn from_id(id: &str) -> Option<Self> {
        match id {
            "mcap" => Some(StorageKind::Mcap),
            "sqlite3" => Some(StorageKind::Sqlite3),
            _ => None,
        }
    }

    /// The `storage_identifier`.
    pub fn id(self) -> &'static str {
        match self {
            StorageKind::Mcap => "mcap",
            StorageKind::Sqlite3 => "sqlite3",
        }
    }

    /// The file extension rosbag2 gives it.
    pub fn extension(self) -> &'static str {
        match self {
            StorageKind::Mcap => "mcap",
            StorageKind::Sqlite3 => "db3",
        }
    }

    /// From a file name (`x.mcap`, `x_0.db3`, `x.mcap.zstd`).
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.strip_suffix(".zstd").unwrap_or(name);
        if name.ends_with(".mcap") {
            Some(StorageKind::Mcap)
        } else if name.ends_with(".db3") {
            Some(StorageKind::Sqlite3)
        } else {
            None
        }
    }
}

/// Read the first bytes of `path` to tell MCAP, SQLite and zstd apart.
pub fn sniff(path: &Path) -> std::io::Result<Sniffed> {
    let mut head = Vec::with_capacity(16);
    let (file, _) = crate::io::paths::open_regular(path, "a bag storage file")
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.reason))?;
    file.take(16).read_to_end(&mut head)?;
    Ok(if head.starts_with(MAGIC) {
        Sniffed::Storage(StorageKind::Mcap)
    } else if head.starts_with(SQLITE_MAGIC) {
        Sniffed::Storage(StorageKind::Sqlite3)
    } else if head.starts_with(&ZSTD_MAGIC) {
        Sniffed::Zstd
    } else {
        Sniffed::Unknown
    })
}

/// An open storage file.
#[derive(Debug)]
pub enum StorageFile {
    /// MCAP.
    Mcap(BagReader),
    /// sqlite3.
    Sqlite(SqliteReader),
}

impl StorageFile {
    /// Open `path` as `kind`; payloads that are zstd frames are decompressed up to
    /// `limits.max_record` bytes each (rosbag2 `MESSAGE` compression).
    pub fn open(path: &Path, kind: StorageKind, limits: Limits) -> Result<Self, BagError> {
        Ok(match kind {
            StorageKind::Mcap => {
                let mut r = BagReader::open_with_limits(path, limits)?;
                r.set_message_compression(Some(limits.max_record));
                StorageFile::Mcap(r)
            }
            StorageKind::Sqlite3 => StorageFile::Sqlite(SqliteReader::open(path)?),
        })
    }

    /// Topics, sorted by name.
    pub fn topics(&self) -> &[TopicInfo] {
        match self {
            StorageFile::Mcap(r) => r.topics(),
            StorageFile::Sqlite(r) => r.topics(),
        }
    }

    /// What is wrong with the file although it opened (a `.db3` cut short), if anything.
    pub fn damage(&self) -> Option<String> {
        match self {
            StorageFile::Mcap(r) => {
                let losses = r.open_losses();
                if losses.is_empty() {
                    return None;
                }
                let bytes: u64 = losses.iter().map(|l| l.end.saturating_sub(l.start)).sum();
                Some(format!(
                    "damaged: {} range(s), {bytes} bytes unreadable ({}); the counts cover the \
                     readable part only",
                    losses.len(),
                    losses
                        .iter()
                        .map(|l| format!("{}..{}: {}", l.start, l.end, l.reason))
                        .collect::<Vec<_>>()
                        .join("; ")
                ))
            }
            StorageFile::Sqlite(r) => r.damage(),
        }
    }

    /// First and last message time (ns), when the file records them.
    pub fn time_range(&self) -> Option<(u64, u64)> {
        match self {
            StorageFile::Mcap(r) => r.time_range(),
            StorageFile::Sqlite(r) => r.time_range(),
        }
    }

    /// Messages of those of `topics` this file has, in time order.
    pub fn messages(&self, topics: &[&str], limits: Limits) -> Result<FileMessages, BagError> {
        let have: Vec<&str> = topics
            .iter()
            .copied()
            .filter(|t| self.topics().iter().any(|i| i.name == *t))
            .collect();
        Ok(match self {
            StorageFile::Mcap(r) => FileMessages::Mcap(r.messages(&have)?),
            StorageFile::Sqlite(r) => {
                FileMessages::Sqlite(r.messages(&have, Some(limits.max_record)))
            }
        })
    }
}

/// The messages of one storage file.
#[derive(Debug)]
pub enum FileMessages {
    /// From an MCAP file.
    Mcap(BagMessages),
    /// From a `.db3` file.
    Sqlite(SqliteMessages),
}

impl FileMessages {
    /// What the read so far lost.
    pub fn report(&self) -> &ReadReport {
        match self {
            FileMessages::Mcap(m) => m.report(),
            FileMessages::Sqlite(m) => m.report(),
        }
    }
}

impl Iterator for FileMessages {
    type Item = Result<BagMessage, BagError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            FileMessages::Mcap(m) => m.next(),
            FileMessages::Sqlite(m) => m.next(),
        }
    }
}
