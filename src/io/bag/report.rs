//! What a read of a bag lost: damaged byte ranges and the messages known to be in them, shared
//! by the MCAP and sqlite3 readers and the bag directory.

use serde::Serialize;

/// A stretch of the file that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DataLoss {
    /// The storage file it lies in (empty for a single file read on its own).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub file: String,
    /// First byte of the damaged range.
    pub start: u64,
    /// One past its last byte.
    pub end: u64,
    /// True when the range is one chunk record.
    pub chunk: bool,
    /// Messages of the selected topics lost in it, when the file says how many (message
    /// indexes); `None` when unknown.
    pub messages: Option<u64>,
    /// What was wrong.
    pub reason: String,
}

/// How a read went: which path was taken and what was lost.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReadReport {
    /// True when the summary's chunk index was used; false for a forward scan.
    pub indexed: bool,
    /// Why the summary was not used (empty when it was, or when the file has none by design).
    pub summary_problem: String,
    /// Chunks read whole.
    pub chunks_read: u64,
    /// Chunks skipped (unreadable, failed decompression or CRC) or read only in part.
    pub chunks_lost: u64,
    /// Messages of the selected topics known to be lost (sum of the known
    /// [`DataLoss::messages`]).
    pub messages_lost: u64,
    /// Damaged ranges whose message count is unknown.
    pub ranges_unknown_count: u64,
    /// Bytes in damaged ranges.
    pub bytes_lost: u64,
    /// Every damaged range, in the order found.
    pub losses: Vec<DataLoss>,
    /// What was assumed or worked around that lost nothing (a missing `metadata.yaml`, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl ReadReport {
    /// True when any data could not be read.
    pub fn lost_data(&self) -> bool {
        !self.losses.is_empty()
    }

    /// Log `loss` and account for it; returns its position in [`ReadReport::losses`].
    pub(super) fn lose(&mut self, loss: DataLoss) -> usize {
        log::warn!(
            "{}bytes {}..{} skipped{}: {}",
            if loss.file.is_empty() {
                String::new()
            } else {
                format!("{}: ", loss.file)
            },
            loss.start,
            loss.end,
            match loss.messages {
                Some(n) => format!(" ({n} message(s) of the selected topics lost)"),
                None => String::new(),
            },
            loss.reason
        );
        self.record(loss)
    }

    /// Account for `loss` without logging it (it was logged where it was found).
    pub(super) fn record(&mut self, loss: DataLoss) -> usize {
        self.chunks_lost += loss.chunk as u64;
        match loss.messages {
            Some(n) => self.messages_lost += n,
            None => self.ranges_unknown_count += 1,
        }
        self.bytes_lost += loss.end.saturating_sub(loss.start);
        self.losses.push(loss);
        self.losses.len() - 1
    }

    /// Add `n` lost messages to loss `i` (message indexes found after a damaged chunk).
    pub(super) fn add_lost(&mut self, i: usize, n: u64) {
        if let Some(loss) = self.losses.get_mut(i) {
            match &mut loss.messages {
                Some(m) => *m += n,
                None => {
                    loss.messages = Some(n);
                    self.ranges_unknown_count = self.ranges_unknown_count.saturating_sub(1);
                }
            }
            self.messages_lost += n;
        }
    }

    /// One line: `2 chunk(s), 12 message(s), 8140 bytes lost in 2 range(s)`.
    pub fn describe(&self) -> String {
        let ranges: Vec<String> = self
            .losses
            .iter()
            .map(|l| format!("{}..{}", l.start, l.end))
            .collect();
        format!(
            "{} chunk(s) and {} message(s){} lost, {} bytes in {} damaged range(s) [{}]",
            self.chunks_lost,
            self.messages_lost,
            if self.ranges_unknown_count > 0 {
                format!(
                    " (+ an unknown number in {} range(s))",
                    self.ranges_unknown_count
                )
            } else {
                String::new()
            },
            self.bytes_lost,
            self.losses.len(),
            ranges.join(", ")
        )
    }
}
