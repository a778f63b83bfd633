//! rosbag2 bags (directories of split MCAP or sqlite3 files, compressed or not): reading camera
//! topics and writing outputs as CDR ROS 2 messages.
//!
//! - [`Bag`]: what `ros2 bag record` leaves (a directory with `metadata.yaml`, see
//!   [`metadata`]) or a single storage file; all split files in order as one stream, damage
//!   and missing files reported (module `directory`). [`StorageFile`] is one file of either
//!   storage: MCAP ([`BagReader`]) or sqlite3 ([`SqliteReader`]); [`compression`] undoes
//!   rosbag2's per-file and per-message zstd, bounded.
//! - [`BagOutput`]: `imd replay`'s output, a rosbag2 directory (MCAP + `metadata.yaml`) or one
//!   `.mcap` file.
//!
//! - [`cdr`]: the CDR wire format, [`CdrMessage`] for every type of [`crate::io::msgs`].
//! - [`schema`]: the `ros2msg` message definitions rosbag2 stores with each topic.
//! - [`BagReader`]: topics, then decoded `Image` / `CompressedImage` / `CameraInfo` messages
//!   of selected topics in log-time order, streamed chunk by chunk; a message that fails to
//!   decode is reported (topic, index, reason) and skipped; damaged chunks and records are
//!   skipped and reported in a [`ReadReport`] (byte ranges, messages lost). Record bodies are
//!   parsed by the `mcap` crate; our file layer (`records`) bounds every length from the file,
//!   caps decompression, resyncs after damage and salvages cut-off chunks, so nothing reachable
//!   from file bytes panics. [`TopicInfo`], [`BagMessage`] and [`ReadReport`] are what every
//!   storage (MCAP, sqlite3) yields (`message`, `report`).
//! - [`BagFrames`]: a bag's camera topics as [`crate::io::frames::CameraFrame`]s, paired like
//!   the ROS node pairs live messages (for `imd replay`).
//! - [`BagWriter`]: rosbag2-compatible output (profile `ros2`, `ros2msg` schemas, `cdr`).

pub mod cdr;
mod codec;
pub mod compression;
mod directory;
mod frames;
mod message;
pub mod metadata;
mod output;
mod reader;
mod records;
mod report;
pub mod schema;
mod sqlite;
mod sqlite_salvage;
mod storage;
mod writer;

pub use cdr::{from_cdr, to_cdr, CdrError, CdrMessage};
pub use directory::{Bag, BagFile, BagStream, BagTopic};
pub use frames::BagFrames;
pub use message::{BagMessage, BagPayload, TopicInfo};
pub use output::BagOutput;
pub use reader::{BagMessages, BagReader};
pub use records::Limits;
pub use report::{DataLoss, ReadReport};
pub use sqlite::{SqliteMessages, SqliteReader};
pub use storage::{FileMessages, StorageFile, StorageKind};
pub use writer::BagWriter;

/// Errors reading or writing bags.
#[derive(Debug, thiserror::Error)]
pub enum BagError {
    /// The file cannot be opened or its structure read.
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    /// A requested topic is missing or not readable.
    #[error("{path}: topic {topic}: {reason}")]
    Topic {
        path: String,
        topic: String,
        reason: String,
    },
    /// One message failed to decode; reading goes on with the next.
    #[error("topic {topic}, message #{index} (log time {log_time_ns} ns): {reason}")]
    Message {
        topic: String,
        index: u64,
        log_time_ns: u64,
        reason: String,
    },
    /// Writing failed.
    #[error("writing {path}: {reason}")]
    Write { path: String, reason: String },
}

impl BagError {
    /// True for a per-message error after which iteration continues.
    pub fn is_message_error(&self) -> bool {
        matches!(self, BagError::Message { .. })
    }
}
