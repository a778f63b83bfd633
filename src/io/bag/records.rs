//! The MCAP file, record by record, for a reader that survives damage: every length read from
//! the file is checked against the bytes that remain (and [`Limits`]) before anything is
//! allocated, chunk decompression is capped at the chunk's declared size, and the scanner
//! resyncs at the next plausible record after damage ([`RecordFile::resync`]) or salvages the
//! complete part of a chunk cut off by the end of the file ([`salvage_chunk`]). The record
//! bodies themselves are parsed by the `mcap` crate ([`mcap::parse_record`]); what is ours is
//! what it does not do: bounded random access, resync, salvage and capped decompression.
//!
//! MCAP layout (<https://mcap.dev/spec>): magic `\x89MCAP0\r\n`, then records of
//! `opcode: u8, length: u64 LE, body: length bytes`, then the magic again. Chunks (opcode
//! 0x06) hold records (schemas, channels, messages) compressed as a whole; the summary section
//! after Data End repeats schemas and channels and indexes the chunks; the Footer (last record)
//! points at the summary.

use std::io::{Read, Seek, SeekFrom};

/// Record opcodes.
pub use mcap::records::op;
/// The MCAP magic, at both ends of a file.
pub use mcap::MAGIC;
/// Highest opcode the spec defines (a higher one is damage).
pub const LAST_OPCODE: u8 = op::DATA_END;

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

    /// True when every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.b.len()
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        let r = self.b.get(self.pos..).unwrap_or(&[]);
        self.pos = self.b.len();
        r
    }
}

/// The body of one record parsed by the `mcap` crate (`mcap::parse_record`: bounds-checked
/// binrw reads; schema, message and chunk data are checked against the body). Only the
/// opcodes we read are handed to it.
fn parse(opcode: u8, body: &[u8]) -> Result<mcap::records::Record<'_>, Malformed> {
    const READ: &[u8] = &[
        op::FOOTER,
        op::SCHEMA,
        op::CHANNEL,
        op::MESSAGE,
        op::CHUNK,
        op::MESSAGE_INDEX,
        op::CHUNK_INDEX,
        op::STATISTICS,
    ];
    if !READ.contains(&opcode) {
        return malformed(format!("opcode {opcode:#04x} is not read"));
    }
    use Shape::{Bytes, Fixed, StringMap};
    let shape: &[Shape] = match opcode {
        op::SCHEMA => &[Fixed(2), Bytes, Bytes, Bytes],
        op::CHANNEL => &[Fixed(4), Bytes, Bytes, StringMap],
        op::CHUNK => &[Fixed(28), Bytes],
        op::CHUNK_INDEX => &[Fixed(32), Bytes, Fixed(8), Bytes],
        _ => &[],
    };
    lengths_fit(body, name(opcode), shape)?;
    mcap::parse_record(opcode, body).map_err(|e| Malformed(format!("{} record: {e}", name(opcode))))
}

/// A field of a record body, for [`lengths_fit`].
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// Fixed-size bytes.
    Fixed(u64),
    /// `uint32` length + bytes (a string, schema data, a map of fixed-size entries).
    Bytes,
    /// `uint32` byte length + string pairs (channel metadata).
    StringMap,
}

/// Every length-prefixed field of `body` fits in what follows it. The crate reserves a
/// string's declared length before reading it: a 4 GiB claim in a 100-byte record must be
/// refused here, not reach the allocator (an abort on a small robot computer).
fn lengths_fit(body: &[u8], what: &'static str, shape: &[Shape]) -> Result<(), Malformed> {
    let mut f = Fields::new(body, what);
    for field in shape {
        match *field {
            Shape::Fixed(n) => {
                f.take(n, "fixed fields")?;
            }
            Shape::Bytes => {
                let n = f.u32("length")?;
                f.take(n.into(), "length-prefixed field")?;
            }
            Shape::StringMap => {
                let n = f.u32("map length")?;
                let mut map = Fields::new(f.take(n.into(), "map")?, what);
                // Each turn consumes two length fields or fails: bounded by the map's size.
                while !map.is_empty() {
                    for part in ["map key", "map value"] {
                        let k = map.u32(part)?;
                        map.take(k.into(), part)?;
                    }
                }
            }
        }
    }
    Ok(())
}

fn name(opcode: u8) -> &'static str {
    match opcode {
        op::FOOTER => "Footer",
        op::SCHEMA => "Schema",
        op::CHANNEL => "Channel",
        op::MESSAGE => "Message",
        op::CHUNK => "Chunk",
        op::MESSAGE_INDEX => "MessageIndex",
        op::CHUNK_INDEX => "ChunkIndex",
        op::STATISTICS => "Statistics",
        _ => "record",
    }
}

/// `parse` gave a record of another kind than its opcode (cannot happen; kept typed).
fn unexpected<T>(opcode: u8) -> Result<T, Malformed> {
    malformed(format!("{} record did not parse as one", name(opcode)))
}

/// A Schema record (its data is not kept: we decode the types we know).
pub type SchemaRec = mcap::records::SchemaHeader;
/// A Channel record.
pub type ChannelRec = mcap::records::Channel;
/// A Chunk Index record of the summary.
pub type ChunkIndexRec = mcap::records::ChunkIndex;
/// The Statistics record.
pub type StatisticsRec = mcap::records::Statistics;

/// Parse a Schema record body.
pub fn schema(body: &[u8]) -> Result<SchemaRec, Malformed> {
    match parse(op::SCHEMA, body)? {
        mcap::records::Record::Schema { header, .. } => Ok(header),
        _ => unexpected(op::SCHEMA),
    }
}

/// Parse a Channel record body.
pub fn channel(body: &[u8]) -> Result<ChannelRec, Malformed> {
    match parse(op::CHANNEL, body)? {
        mcap::records::Record::Channel(c) => Ok(c),
        _ => unexpected(op::CHANNEL),
    }
}

/// Parse a Chunk Index record body.
pub fn chunk_index(body: &[u8]) -> Result<ChunkIndexRec, Malformed> {
    match parse(op::CHUNK_INDEX, body)? {
        mcap::records::Record::ChunkIndex(c) => Ok(c),
        _ => unexpected(op::CHUNK_INDEX),
    }
}

/// Parse a Statistics record body.
pub fn statistics(body: &[u8]) -> Result<StatisticsRec, Malformed> {
    match parse(op::STATISTICS, body)? {
        mcap::records::Record::Statistics(s) => Ok(s),
        _ => unexpected(op::STATISTICS),
    }
}

/// The Footer: where the summary and the summary offsets start (0: none).
pub fn footer(body: &[u8]) -> Result<mcap::records::Footer, Malformed> {
    match parse(op::FOOTER, body)? {
        mcap::records::Record::Footer(f) => Ok(f),
        _ => unexpected(op::FOOTER),
    }
}

/// Message Index: the channel and how many messages of it one chunk holds.
pub fn message_index_entries(body: &[u8]) -> Result<(u16, u64), Malformed> {
    match parse(op::MESSAGE_INDEX, body)? {
        // channel id + byte length + 16-byte entries: anything else is a damaged index.
        mcap::records::Record::MessageIndex(m) if 6 + 16 * m.records.len() == body.len() => {
            Ok((m.channel_id, m.records.len() as u64))
        }
        mcap::records::Record::MessageIndex(_) => {
            malformed("MessageIndex records are not 16-byte entries")
        }
        _ => unexpected(op::MESSAGE_INDEX),
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
    /// Bytes before the data: channel id, sequence, log and publish time.
    pub const HEADER: usize = 2 + 4 + 8 + 8;

    pub fn parse(body: &'a [u8]) -> Result<Self, Malformed> {
        match parse(op::MESSAGE, body)? {
            mcap::records::Record::Message { header, .. } => Ok(MessageRec {
                channel_id: header.channel_id,
                log_time: header.log_time,
                publish_time: header.publish_time,
                data: body.get(Self::HEADER..).unwrap_or(&[]),
            }),
            _ => unexpected(op::MESSAGE),
        }
    }
}

/// A Chunk record, borrowing its (compressed) records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRec<'a> {
    pub header: mcap::records::ChunkHeader,
    pub records: &'a [u8],
}

impl<'a> ChunkRec<'a> {
    /// Bytes of a Chunk body besides its compression name and records: times, size, CRC and
    /// the two length fields.
    const FIXED: usize = 8 + 8 + 8 + 4 + 4 + 8;

    pub fn parse(body: &'a [u8]) -> Result<Self, Malformed> {
        match parse(op::CHUNK, body)? {
            mcap::records::Record::Chunk { header, data } => {
                // The crate reads `compressed_size` bytes; a longer body hides damage.
                let used = Self::FIXED + header.compression.len() + data.len();
                if used != body.len() {
                    return malformed("Chunk has bytes after its records");
                }
                let records = body.get(used - data.len()..).unwrap_or(&[]);
                Ok(ChunkRec { header, records })
            }
            _ => unexpected(op::CHUNK),
        }
    }

    /// The chunk's records, decompressed (at most `limits.max_chunk_uncompressed` bytes; the
    /// declared size and CRC must match). Ours rather than the crate's `ChunkReader`: that one
    /// allocates the declared size up front and yields owned records, where we cap the output
    /// as it arrives and keep one buffer that queued messages point into.
    pub fn decompress(&self, limits: &Limits) -> Result<Vec<u8>, Malformed> {
        let size = self.header.uncompressed_size;
        if size > limits.max_chunk_uncompressed {
            return malformed(format!(
                "chunk declares {size} uncompressed bytes, more than the limit of {}",
                limits.max_chunk_uncompressed
            ));
        }
        let out = match self.header.compression.as_str() {
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
        let want = self.header.uncompressed_crc;
        if want != 0 {
            let crc = crc32fast::hash(&out);
            if crc != want {
                return malformed(format!(
                    "chunk CRC {crc:#010x} does not match the recorded {want:#010x}"
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
        if opcode == 0 || opcode > LAST_OPCODE {
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
            opcode == 0 || opcode > LAST_OPCODE || len > room
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
                if opcode == 0 || opcode > LAST_OPCODE {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn string(s: &str) -> Vec<u8> {
        let mut b = (s.len() as u32).to_le_bytes().to_vec();
        b.extend_from_slice(s.as_bytes());
        b
    }

    fn channel_body(topic_len: Option<u32>, metadata: &[u8]) -> Vec<u8> {
        let mut b = vec![1, 0, 1, 0];
        match topic_len {
            Some(n) => b.extend_from_slice(&n.to_le_bytes()),
            None => b.extend_from_slice(&string("/cam0/image_raw")),
        }
        b.extend_from_slice(&string("cdr"));
        b.extend_from_slice(&(metadata.len() as u32).to_le_bytes());
        b.extend_from_slice(metadata);
        b
    }

    #[test]
    fn a_channel_parses_through_the_crate() {
        let meta = [string("offered_qos_profiles"), string("")].concat();
        let c = channel(&channel_body(None, &meta)).expect("a valid channel");
        assert_eq!((c.id, c.schema_id), (1, 1));
        assert_eq!(c.topic, "/cam0/image_raw");
        assert_eq!(c.message_encoding, "cdr");
        assert_eq!(c.metadata.len(), 1);
    }

    #[test]
    fn a_string_length_past_the_record_is_refused_before_the_crate_allocates_it() {
        // A 4 GiB topic name in a 20-byte record: refused by the shape check, no allocation.
        let e = channel(&channel_body(Some(u32::MAX), &[])).expect_err("a lying length");
        assert!(e.0.contains("Channel"), "{e}");
        // The same inside the metadata map.
        let meta = [u32::MAX.to_le_bytes().to_vec(), vec![0; 8]].concat();
        let e = channel(&channel_body(None, &meta)).expect_err("a lying map string");
        assert!(e.0.contains("map key"), "{e}");
        let mut schema_body = vec![1, 0];
        schema_body.extend_from_slice(&string("sensor_msgs/msg/Image"));
        schema_body.extend_from_slice(&(u32::MAX - 3).to_le_bytes());
        assert!(schema(&schema_body).is_err());
    }

    #[test]
    fn a_message_index_that_is_not_16_byte_entries_is_refused() {
        let mut b = vec![3, 0];
        b.extend_from_slice(&32u32.to_le_bytes());
        b.extend_from_slice(&[0; 32]);
        assert_eq!(message_index_entries(&b), Ok((3, 2)));
        b.truncate(b.len() - 1);
        assert!(message_index_entries(&b).is_err());
    }
}
