//! rosbag2-compatible MCAP writer: profile `ros2`, schemas in `ros2msg` (complete definitions,
//! see [`super::schema`]), messages in CDR, zstd-compressed chunks with indexes.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use super::cdr::{to_cdr, CdrMessage};
use super::schema::full_definition;
use super::BagError;

/// Writes messages to a new `.mcap` file. Call [`BagWriter::finish`] to write the summary and
/// index; a file that is not finished lacks them (readers can still scan it).
pub struct BagWriter {
    path: PathBuf,
    out: mcap::Writer<BufWriter<File>>,
    schemas: HashMap<&'static str, u16>,
    /// topic → (channel id, type name, next sequence number).
    channels: HashMap<String, (u16, &'static str, u32)>,
}

impl BagWriter {
    /// Create (or truncate) `path`.
    pub fn create(path: &Path) -> Result<Self, BagError> {
        let file = File::create(path).map_err(|e| BagError::Write {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let options = mcap::WriteOptions::new()
            .profile("ros2")
            .library(format!("imd {}", env!("CARGO_PKG_VERSION")))
            .compression(Some(mcap::Compression::Zstd))
            // One thread: the writer sits next to inference and bags are small.
            .compression_threads(0);
        let out = options
            .create(BufWriter::new(file))
            .map_err(|e| BagError::Write {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        Ok(BagWriter {
            path: path.to_path_buf(),
            out,
            schemas: HashMap::new(),
            channels: HashMap::new(),
        })
    }

    fn err(&self, reason: String) -> BagError {
        BagError::Write {
            path: self.path.display().to_string(),
            reason,
        }
    }

    /// Append `msg` on `topic` at `log_time_ns` (also used as publish time). A topic keeps the
    /// type of its first message.
    pub fn write<M: CdrMessage>(
        &mut self,
        topic: &str,
        log_time_ns: u64,
        msg: &M,
    ) -> Result<(), BagError> {
        let channel = match self.channels.get(topic) {
            Some(&(id, ty, _)) if ty == M::TYPE_NAME => id,
            Some(&(_, ty, _)) => {
                return Err(self.err(format!(
                    "topic {topic} carries {ty}; cannot write a {} to it",
                    M::TYPE_NAME
                )))
            }
            None => self.add_channel::<M>(topic)?,
        };
        let data = to_cdr(msg).map_err(|e| self.err(format!("topic {topic}: {e}")))?;
        let sequence = match self.channels.get_mut(topic) {
            Some(entry) => {
                let s = entry.2;
                entry.2 = s.wrapping_add(1);
                s
            }
            None => 0,
        };
        self.out
            .write_to_known_channel(
                &mcap::records::MessageHeader {
                    channel_id: channel,
                    sequence,
                    log_time: log_time_ns,
                    publish_time: log_time_ns,
                },
                &data,
            )
            .map_err(|e| self.err(format!("topic {topic}: {e}")))
    }

    fn add_channel<M: CdrMessage>(&mut self, topic: &str) -> Result<u16, BagError> {
        let schema = match self.schemas.get(M::TYPE_NAME) {
            Some(&id) => id,
            None => {
                let text = full_definition(M::TYPE_NAME).ok_or_else(|| {
                    self.err(format!("no message definition for {}", M::TYPE_NAME))
                })?;
                let id = self
                    .out
                    .add_schema(M::TYPE_NAME, "ros2msg", text.as_bytes())
                    .map_err(|e| self.err(e.to_string()))?;
                self.schemas.insert(M::TYPE_NAME, id);
                id
            }
        };
        // rosbag2 records each topic's QoS in its channel metadata as well as in
        // metadata.yaml; readers (`rosbags`) match the two.
        let metadata = BTreeMap::from([(
            "offered_qos_profiles".to_string(),
            super::metadata::default_qos_yaml(),
        )]);
        let id = self
            .out
            .add_channel(schema, topic, "cdr", &metadata)
            .map_err(|e| self.err(format!("topic {topic}: {e}")))?;
        self.channels
            .insert(topic.to_string(), (id, M::TYPE_NAME, 0));
        Ok(id)
    }

    /// Write the summary and indexes and close the file.
    pub fn finish(mut self) -> Result<(), BagError> {
        self.out.finish().map_err(|e| self.err(e.to_string()))?;
        let path = self.path.display().to_string();
        let mut file = self.out.into_inner();
        std::io::Write::flush(&mut file).map_err(|e| BagError::Write {
            path,
            reason: e.to_string(),
        })
    }
}
