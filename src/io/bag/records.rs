//! A bounded MCAP record layer: the file's records read one at a time, every length checked
//! against the bytes that remain (and [`Limits`]) before anything is allocated, every field
//! read through [`Fields`] (no indexing, no unwrap on file bytes), and chunk decompression
//! capped at the chunk's declared size.
//!
//! MCAP layout (<https://mcap.dev/spec>): magic `\x89MCAP0\r\n`, then records of
//! `opcode: u8, length: u64 LE, body: length bytes`, then the magic again. Chunks (opcode
//! 0x06) hold records (schemas, channels, messages) compressed as a whole; the summary section
//! after Data End repeats schemas and channels and indexes the chunks; the Footer (last record)
//! points at the summary.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};

/// The MCAP magic, at both ends of a file.
pub const MAGIC: &[u8; 8] = b"\x89MCAP0\r\n";

/// Record opcodes.
pub mod op {
    pub const HEADER: u8 = 0x01;
    pub const FOOTER: u8 = 0x02;
    pub const SCHEMA: u8 = 0x03;
    pub const CHANNEL: u8 = 0x04;
    pub const MESSAGE: u8 = 0x05;
    pub const CHUNK: u8 = 0x06;
    pub const MESSAGE_INDEX: u8 = 0x07;
    pub const CHUNK_INDEX: u8 = 0x08;
    pub const STATISTICS: u8 = 0x0B;
    pub const DATA_END: u8 = 0x0F;
    /// Highest opcode the spec defines.
    pub const LAST: u8 = 0x0F;
}

/// Opcode byte + length field.
pub const RECORD_HEADER: u64 = 9;
/// Footer record incl. its header, then the closing magic.
pub const FOOTER_AND_MAGIC: u64 = RECORD_HEADER + 20 + 8;

/// Size limits applied to lengths read from a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest record body (and chunk) read into memory.
    pub max_record: u64,
    /// Largest decompressed chunk.
    pub max_chunk_uncompressed: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_record: 1 << 30,
            max_chunk_uncompressed: 1 << 30,
        }
    }
}

/// A record body that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub String);

fn malformed<T>(s: impl Into<String>) -> Result<T, Malformed> {
    Err(Malformed(s.into()))
}

/// Little-endian field reader over one record body; every read is bounds-checked.
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    b: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Fields<'a> {
    /// Read the fields of record `what`.
    pub fn new(b: &'a [u8], what: &'static str) -> Self {
        Fields { b, pos: 0, what }
    }

    fn take(&mut self, n: u64, field: &str) -> Result<&'a [u8], Malformed> {
        let left = self.b.len().saturating_sub(self.pos);
        if n > left as u64 {
            return malformed(format!(
                "{} field `{field}` needs {n} bytes at offset {}, {left} left",
                self.what, self.pos
            ));
        }
        let start = self.pos;
        let end = start + n as usize;
        self.pos = end;
        self.b
            .get(start..end)
            .ok_or_else(|| Malformed(format!("{} field `{field}` out of range", self.what)))
    }

    fn array<const N: usize>(&mut self, field: &str) -> Result<[u8; N], Malformed> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N as u64, field)?);
        Ok(a)
    }

    pub fn u16(&mut self, field: &str) -> Result<u16, Malformed> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }
    pub fn u32(&mut self, field: &str) -> Result<u32, Malformed> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }
    pub fn u64(&mut self, field: &str) -> Result<u64, Malformed> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }
    pub fn u8(&mut self, field: &str) -> Result<u8, Malformed> {
        Ok(self.array::<1>(field)?[0])
    }

    /// `uint32` length + UTF-8 bytes.
    pub fn string(&mut self, field: &str) -> Result<String, Malformed> {
        let n = self.u32(field)?;
        let b = self.take(n as u64, field)?;
        String::from_utf8(b.to_vec())
            .map_err(|_| Malformed(format!("{} field `{field}` is not UTF-8", self.what)))
    }

    /// `uint32` length + bytes.
    pub fn bytes32(&mut self, field: &str) -> Result<&'a [u8], Malformed> {
        let n = self.u32(field)?;
        self.take(n as u64, field)
    }

    /// `uint64` length + bytes.
    pub fn bytes64(&mut self, field: &str) -> Result<&'a [u8], Malformed> {
        let n = self.u64(field)?;
        self.take(n, field)
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        let r = self.b.get(self.pos..).unwrap_or(&[]);
        self.pos = self.b.len();
        r
    }
}

/// A Schema record (its data is not kept: we decode the types we know).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaRec {
    pub id: u16,
    pub name: String,
    pub encoding: String,
}

impl SchemaRec {
    pub fn parse(body: &[u8]) -> Result<Self, Malformed> {
        let mut f = Fields::new(body, "Schema");
        let id = f.u16("id")?;
        let name = f.string("name")?;
        let encoding = f.string("encoding")?;
        f.bytes32("data")?;
        Ok(SchemaRec { id, name, encoding })
    }
}

/// A Channel record (metadata checked for bounds, not kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRec {
    pub id: u16,
    pub schema_id: u16,
    pub topic: String,
    pub message_encoding: String,
}

impl ChannelRec {
    pub fn parse(body: &[u8]) -> Result<Self, Malformed> {
        let mut f = Fields::new(body, "Channel");
        let id = f.u16("id")?;
        let schema_id = f.u16("schema_id")?;
        let topic = f.string("topic")?;
        let message_encoding = f.string("message_encoding")?;
        f.bytes32("metadata")?;
        Ok(ChannelRec {
            id,
            schema_id,
            topic,
            message_encoding,
        })
    }
}

/// A Message record, borrowing its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageRec<'a> {
    pub channel_id: u16,
    pub log_time: u64,
    pub publish_time: u64,
    pub data: &'a [u8],
}

impl<'a> MessageRec<'a> {
    /// Bytes before the data.
    pub const HEADER: usize = 2 + 4 + 8 + 8;

    pub fn parse(body: &'a [u8]) -> Result<Self, Malformed> {
        let mut f = Fields::new(body, "Message");
        let channel_id = f.u16("channel_id")?;
        f.u32("sequence")?;
        let log_time = f.u64("log_time")?;
        let publish_time = f.u64("publish_time")?;
        Ok(MessageRec {
            channel_id,
            log_time,
            publish_time,
            data: f.rest(),
        })
    }
}

/// A Chunk record, borrowing its (compressed) records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRec<'a> {
    pub uncompressed_size: u64,
    pub uncompressed_crc: u32,
    pub compression: String,
    pub records: &'a [u8],
}

impl<'a> ChunkRec<'a> {
    pub fn parse(body: &'a [u8]) -> Result<Self, Malformed> {
        let mut f = Fields::new(body, "Chunk");
        f.u64("message_start_time")?;
        f.u64("message_end_time")?;
        let uncompressed_size = f.u64("uncompressed_size")?;
        let uncompressed_crc = f.u32("uncompressed_crc")?;
        let compression = f.string("compression")?;
        let records = f.bytes64("records")?;
        if !f.rest().is_empty() {
            return malformed("Chunk has bytes after its records");
        }
        Ok(ChunkRec {
            uncompressed_size,
            uncompressed_crc,
            compression,
            records,
        })
    }

    /// The chunk's records, decompressed (at most `limits.max_chunk_uncompressed` bytes; the
    /// declared size and CRC must match).
    pub fn decompress(&self, limits: &Limits) -> Result<Vec<u8>, Malformed> {
        let size = self.uncompressed_size;
        if size > limits.max_chunk_uncompressed {
            return malformed(format!(
                "chunk declares {size} uncompressed bytes, more than the limit of {}",
                limits.max_chunk_uncompressed
            ));
        }
        let out = match self.compression.as_str() {
            "" => self.records.to_vec(),
            "zstd" => {
                let d = zstd::stream::read::Decoder::with_buffer(self.records)
                    .map_err(|e| Malformed(format!("zstd: {e}")))?;
                read_capped(d, size, "zstd")?
            }
            "lz4" => {
                let d =
                    lz4::Decoder::new(self.records).map_err(|e| Malformed(format!("lz4: {e}")))?;
                read_capped(d, size, "lz4")?
            }
            other => return malformed(format!("chunk compression `{other}` is not supported")),
        };
        if out.len() as u64 != size {
            return malformed(format!(
                "chunk decompresses to {} bytes, declares {size}",
                out.len()
            ));
        }
        if self.uncompressed_crc != 0 {
            let crc = crc32fast::hash(&out);
            if crc != self.uncompressed_crc {
                return malformed(format!(
                    "chunk CRC {crc:#010x} does not match the recorded {:#010x}",
                    self.uncompressed_crc
                ));
            }
        }
        Ok(out)
    }
}

/// What can be recovered from a chunk record cut off by the end of the file (a crashed
/// recorder): `body` is the chunk's body up to the end of the file. Returns the records
/// decompressed from the complete part of its data (zstd and lz4 emit whole blocks; the
/// caller keeps the whole records in it), or `None` when nothing is recoverable.
pub fn salvage_chunk(body: &[u8], limits: &Limits) -> Option<Vec<u8>> {
    let mut f = Fields::new(body, "Chunk");
    f.take(24, "times and size").ok()?;
    f.u32("uncompressed_crc").ok()?;
    let compression = f.string("compression").ok()?;
    f.u64("records").ok()?;
    let records = f.rest();
    let cap = limits.max_chunk_uncompressed;
    let out = match compression.as_str() {
        "" => records.get(..records.len().min(cap as usize))?.to_vec(),
        "zstd" => read_prefix(zstd::stream::read::Decoder::with_buffer(records).ok()?, cap),
        "lz4" => read_prefix(lz4::Decoder::new(records).ok()?, cap),
        _ => return None,
    };
    (!out.is_empty()).then_some(out)
}

/// Everything `r` yields before its first error, at most `cap` bytes.
fn read_prefix(r: impl Read, cap: u64) -> Vec<u8> {
    let mut r = r.take(cap);
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    // Each successful read adds ≥ 1 byte and the total is capped: bounded.
    while let Ok(n) = r.read(&mut buf) {
        match buf.get(..n) {
            Some(b) if n > 0 => out.extend_from_slice(b),
            _ => break,
        }
    }
    out
}

/// Read at most `size + 1` bytes (one more shows a lying size), growing the buffer only as
/// data arrives.
fn read_capped(r: impl Read, size: u64, what: &str) -> Result<Vec<u8>, Malformed> {
    let mut out = Vec::with_capacity(size.min(16 << 20) as usize);
    r.take(size.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| Malformed(format!("{what}: {e}")))?;
    Ok(out)
}

/// Message Index: entries per channel of one chunk.
pub fn message_index_entries(body: &[u8]) -> Result<(u16, u64), Malformed> {
    let mut f = Fields::new(body, "MessageIndex");
    let channel = f.u16("channel_id")?;
    let records = f.bytes32("records")?;
    if records.len() % 16 != 0 {
        return malformed("MessageIndex records are not 16-byte entries");
    }
    Ok((channel, records.len() as u64 / 16))
}

/// A Chunk Index record of the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkIndexRec {
    pub message_start_time: u64,
    pub message_end_time: u64,
    pub chunk_start_offset: u64,
    pub chunk_length: u64,
    /// Channel → offset of its Message Index record.
    pub message_index_offsets: Vec<(u16, u64)>,
    pub message_index_length: u64,
}

impl ChunkIndexRec {
    pub fn parse(body: &[u8]) -> Result<Self, Malformed> {
        let mut f = Fields::new(body, "ChunkIndex");
        let message_start_time = f.u64("message_start_time")?;
        let message_end_time = f.u64("message_end_time")?;
        let chunk_start_offset = f.u64("chunk_start_offset")?;
        let chunk_length = f.u64("chunk_length")?;
        let map = f.bytes32("message_index_offsets")?;
        if map.len() % 10 != 0 {
            return malformed("ChunkIndex message_index_offsets are not 10-byte entries");
        }
        let mut m = Fields::new(map, "ChunkIndex");
        let mut message_index_offsets = Vec::with_capacity(map.len() / 10);
        for _ in 0..map.len() / 10 {
            message_index_offsets.push((m.u16("channel")?, m.u64("offset")?));
        }
        let message_index_length = f.u64("message_index_length")?;
        f.string("compression")?;
        f.u64("compressed_size")?;
        f.u64("uncompressed_size")?;
        Ok(ChunkIndexRec {
            message_start_time,
            message_end_time,
            chunk_start_offset,
            chunk_length,
            message_index_offsets,
            message_index_length,
        })
    }
}

/// The Statistics record's message counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatisticsRec {
    pub message_count: u64,
    pub message_start_time: u64,
    pub message_end_time: u64,
    pub channel_message_counts: BTreeMap<u16, u64>,
}

impl StatisticsRec {
    pub fn parse(body: &[u8]) -> Result<Self, Malformed> {
        let mut f = Fields::new(body, "Statistics");
        let message_count = f.u64("message_count")?;
        f.u16("schema_count")?;
        f.u32("channel_count")?;
        f.u32("attachment_count")?;
        f.u32("metadata_count")?;
        f.u32("chunk_count")?;
        let message_start_time = f.u64("message_start_time")?;
        let message_end_time = f.u64("message_end_time")?;
        let map = f.bytes32("channel_message_counts")?;
        if map.len() % 10 != 0 {
            return malformed("Statistics channel_message_counts are not 10-byte entries");
        }
        let mut m = Fields::new(map, "Statistics");
        let mut channel_message_counts = BTreeMap::new();
        for _ in 0..map.len() / 10 {
            let id = m.u16("channel")?;
            let n = m.u64("count")?;
            channel_message_counts.insert(id, n);
        }
        Ok(StatisticsRec {
            message_count,
            message_start_time,
            message_end_time,
            channel_message_counts,
        })
    }
}

/// The Footer: where the summary starts (0: none).
pub fn parse_footer(body: &[u8]) -> Result<(u64, u64), Malformed> {
    let mut f = Fields::new(body, "Footer");
    let summary_start = f.u64("summary_start")?;
    let summary_offset_start = f.u64("summary_offset_start")?;
    f.u32("summary_crc")?;
    Ok((summary_start, summary_offset_start))
}

/// Iterate the records packed in `buf` (a chunk's content or the summary section): yields
/// `(offset in buf, opcode, body)`, or one `Err` (naming the offset) where a record does not
/// fit, after which iteration ends.
pub fn packed_records(
    buf: &[u8],
) -> impl Iterator<Item = Result<(usize, u8, &[u8]), Malformed>> + '_ {
    let mut pos = 0usize;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || pos >= buf.len() {
            return None;
        }
        let mut f = Fields::new(buf.get(pos..).unwrap_or(&[]), "record");
        let header = f.u8("opcode").and_then(|o| Ok((o, f.u64("length")?)));
        let item = match header {
            Ok((opcode, len)) if len <= (buf.len() - pos - RECORD_HEADER as usize) as u64 => {
                let start = pos + RECORD_HEADER as usize;
                let end = start + len as usize;
                let at = pos;
                pos = end;
                match buf.get(start..end) {
                    Some(body) => Ok((at, opcode, body)),
                    None => Err(Malformed(format!("record at {at} out of range"))),
                }
            }
            Ok((opcode, len)) => Err(Malformed(format!(
                "record at byte {pos} (opcode {opcode:#04x}) claims {len} bytes, {} left",
                buf.len() - pos - RECORD_HEADER as usize
            ))),
            Err(_) => Err(Malformed(format!(
                "{} stray bytes at {pos} (no room for a record header)",
                buf.len() - pos
            ))),
        };
        failed = item.is_err();
        Some(item)
    })
}

/// What reading one record of the file gave.
#[derive(Debug)]
pub enum Record {
    /// A whole record: opcode, body, offset of the next record.
    Whole {
        opcode: u8,
        body: Vec<u8>,
        next: u64,
    },
    /// `offset` is the end of the file.
    End,
    /// The record header at `offset` cannot be right (unknown opcode, a length past the end
    /// of the file or beyond the limits): `reason`.
    Bad { reason: String },
}

/// Random access to the file's records with bounded reads.
pub struct RecordFile<R> {
    src: R,
    len: u64,
    limits: Limits,
}

impl<R: Read + Seek> RecordFile<R> {
    pub fn new(src: R, len: u64, limits: Limits) -> Self {
        RecordFile { src, len, limits }
    }

    /// File length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Read `n` bytes at `offset` (`n` must fit in the file).
    pub fn read_at(&mut self, offset: u64, n: u64) -> std::io::Result<Vec<u8>> {
        if offset.checked_add(n).is_none_or(|end| end > self.len) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("{n} bytes at {offset} run past the end of the file"),
            ));
        }
        self.src.seek(SeekFrom::Start(offset))?;
        let mut buf = vec![0u8; n as usize];
        self.src.read_exact(&mut buf)?;
        Ok(buf)
    }

    /// The opcode and length at `offset`, if 9 bytes remain there.
    pub fn header_at(&mut self, offset: u64) -> std::io::Result<Option<(u8, u64)>> {
        if self.len.saturating_sub(offset) < RECORD_HEADER {
            return Ok(None);
        }
        let b = self.read_at(offset, RECORD_HEADER)?;
        let mut f = Fields::new(&b, "record");
        match (f.u8("opcode"), f.u64("length")) {
            (Ok(o), Ok(l)) => Ok(Some((o, l))),
            _ => Ok(None),
        }
    }

    /// Why a record header at `offset` cannot be right, if it cannot.
    pub fn check_header(&self, offset: u64, opcode: u8, len: u64) -> Option<String> {
        let room = self
            .len
            .saturating_sub(offset)
            .saturating_sub(RECORD_HEADER);
        if opcode == 0 || opcode > op::LAST {
            Some(format!("unknown opcode {opcode:#04x} at byte {offset}"))
        } else if len > room {
            Some(format!(
                "record at byte {offset} (opcode {opcode:#04x}) claims {len} bytes, only {room} \
                 remain in the file"
            ))
        } else if len > self.limits.max_record {
            Some(format!(
                "record at byte {offset} (opcode {opcode:#04x}) claims {len} bytes, more than \
                 the limit of {}",
                self.limits.max_record
            ))
        } else {
            None
        }
    }

    /// Read the record at `offset`.
    pub fn record_at(&mut self, offset: u64) -> std::io::Result<Record> {
        if offset >= self.len {
            return Ok(Record::End);
        }
        let Some((opcode, len)) = self.header_at(offset)? else {
            return Ok(Record::Bad {
                reason: format!(
                    "{} bytes at byte {offset} are too few for a record header",
                    self.len - offset
                ),
            });
        };
        if let Some(reason) = self.check_header(offset, opcode, len) {
            return Ok(Record::Bad { reason });
        }
        let body = self.read_at(offset + RECORD_HEADER, len)?;
        Ok(Record::Whole {
            opcode,
            body,
            next: offset + RECORD_HEADER + len,
        })
    }

    /// True when a plausible record header is at `offset`: known opcode, a length that fits
    /// and agrees with the record's layout. Returns the offset after the record.
    fn header_plausible(
        &mut self,
        offset: u64,
        opcode: u8,
        len: u64,
        first: bool,
    ) -> std::io::Result<bool> {
        let room = self
            .len
            .saturating_sub(offset)
            .saturating_sub(RECORD_HEADER);
        // Records after the first need only fit in the file: an oversized one is damage of its
        // own, found when it is read.
        let bad = if first {
            self.check_header(offset, opcode, len).is_some()
        } else {
            opcode == 0 || opcode > op::LAST || len > room
        };
        if bad {
            return Ok(false);
        }
        // Records that have a fixed or self-describing layout must agree with their length.
        let min_len = match opcode {
            // A Header only ever follows the leading magic.
            op::HEADER => return Ok(false),
            op::MESSAGE => MessageRec::HEADER as u64,
            op::CHUNK => 8 + 8 + 8 + 4 + 4 + 8,
            op::FOOTER => 20,
            op::DATA_END => 4,
            op::SCHEMA => 2 + 4 + 4 + 4,
            op::CHANNEL => 2 + 2 + 4 + 4 + 4,
            op::MESSAGE_INDEX => 2 + 4,
            _ => 0,
        };
        if len < min_len || (opcode == op::FOOTER && len != 20) {
            return Ok(false);
        }
        if opcode == op::CHUNK {
            // compression string length and records length must add up to the body.
            let head = self.read_at(offset + RECORD_HEADER, 32)?;
            let mut f = Fields::new(&head, "Chunk");
            let skip = f.take(28, "times, size and crc");
            let comp = skip.and_then(|_| f.u32("compression")).ok().map(u64::from);
            let fits = comp.and_then(|c| {
                let records_at = 28 + 4 + c;
                let b = self.read_at(offset + RECORD_HEADER + records_at, 8).ok()?;
                let n = Fields::new(&b, "Chunk").u64("records").ok()?;
                Some(records_at.checked_add(8)?.checked_add(n)? == len)
            });
            if fits != Some(true) {
                return Ok(false);
            }
        }
        if opcode == op::MESSAGE_INDEX {
            let head = self.read_at(offset + RECORD_HEADER, 6)?;
            let mut f = Fields::new(&head, "MessageIndex");
            let n = f.u16("channel").and_then(|_| f.u32("records"));
            if n.map(|n| u64::from(n) + 6 != len || n % 16 != 0) != Ok(false) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// True when a plausible record starts at `offset` and is followed by a chain of
    /// plausible records up to the end of the file or the data section, or for
    /// [`Self::CHAIN`] records, so that bytes inside a message rarely pass for a record.
    fn plausible_at(&mut self, offset: u64, first: (u8, u64)) -> std::io::Result<bool> {
        let (mut at, (mut opcode, mut len)) = (offset, first);
        for hop in 0..Self::CHAIN {
            if !self.header_plausible(at, opcode, len, hop == 0)? {
                return Ok(false);
            }
            let next = at + RECORD_HEADER + len;
            if next == self.len || opcode == op::DATA_END || opcode == op::FOOTER {
                return Ok(true);
            }
            match self.header_at(next)? {
                Some((o, l)) => (at, opcode, len) = (next, o, l),
                None => return Ok(false),
            }
        }
        Ok(true)
    }

    /// Records that must chain for a resync point to count.
    const CHAIN: usize = 4;

    /// The first offset after `from` where a plausible record starts (`None`: none before the
    /// end of the file). Reads the file in windows; bounded by the file length.
    pub fn resync(&mut self, from: u64) -> std::io::Result<Option<u64>> {
        const WINDOW: u64 = 1 << 20;
        let mut start = from.saturating_add(1);
        while start.saturating_add(RECORD_HEADER) <= self.len {
            let n = WINDOW.min(self.len - start);
            let buf = self.read_at(start, n)?;
            let last = buf.len().saturating_sub(RECORD_HEADER as usize - 1);
            for i in 0..last {
                let Some(&opcode) = buf.get(i) else { break };
                if opcode == 0 || opcode > op::LAST {
                    continue;
                }
                let Some(lb) = buf.get(i + 1..i + 9) else {
                    break;
                };
                let mut a = [0u8; 8];
                a.copy_from_slice(lb);
                let len = u64::from_le_bytes(a);
                let at = start + i as u64;
                if self.plausible_at(at, (opcode, len))? {
                    return Ok(Some(at));
                }
            }
            // Windows overlap by a header so no position is skipped.
            start += (last as u64).max(1);
        }
        Ok(None)
    }
}
