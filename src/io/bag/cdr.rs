//! OMG CDR (XCDR1, "plain CDR"), the wire format of ROS 2 messages in rosbag2.
//!
//! A payload is a 4-byte encapsulation header (`00 01 00 00` = CDR little-endian; `00 00 ..`
//! = big-endian, which we read but never write) followed by the fields in definition order.
//! Each primitive is aligned to its own size (1, 2, 4 or 8), measured from the byte after the
//! header. Strings are a `uint32` length that counts the trailing NUL, the bytes, then the NUL;
//! sequences are a `uint32` count, then the elements; fixed-size arrays have no count. Nested
//! messages add no alignment of their own. An empty sequence adds no padding for its (absent)
//! elements, as Fast-CDR and the `mcap_ros2` reader do.
//!
//! Decoding never panics: every read checks the remaining length and reports the field that
//! ran out, and sequence counts are checked against the bytes left before anything is
//! allocated, so garbage cannot trigger huge allocations.

/// Errors decoding (or, for > 4 GiB sequences, encoding) CDR payloads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CdrError {
    /// Fewer than 4 bytes: no encapsulation header.
    #[error("CDR payload of {len} bytes has no 4-byte encapsulation header")]
    NoHeader { len: usize },
    /// An encapsulation we do not read (XCDR2, parameter lists).
    #[error(
        "CDR encapsulation {kind:#06x} not supported; expected plain CDR (0x0000 big-endian or \
         0x0001 little-endian)"
    )]
    Encapsulation { kind: u16 },
    /// The payload ended inside `field`.
    #[error(
        "CDR field `{field}` ran out of data: needs {needed} bytes at payload offset {offset}, \
         {available} left"
    )]
    Truncated {
        field: String,
        needed: u64,
        offset: usize,
        available: usize,
    },
    /// `field` holds a value its type does not allow.
    #[error("CDR field `{field}`: {reason}")]
    Invalid { field: String, reason: String },
}

impl CdrError {
    /// Prefix the field path with the enclosing field (`header` + `stamp.sec` →
    /// `header.stamp.sec`).
    pub fn within(self, outer: &str) -> Self {
        let join = |f: String| {
            if f.is_empty() {
                outer.to_string()
            } else if f.starts_with('[') {
                format!("{outer}{f}")
            } else {
                format!("{outer}.{f}")
            }
        };
        match self {
            CdrError::Truncated {
                field,
                needed,
                offset,
                available,
            } => CdrError::Truncated {
                field: join(field),
                needed,
                offset,
                available,
            },
            CdrError::Invalid { field, reason } => CdrError::Invalid {
                field: join(field),
                reason,
            },
            other => other,
        }
    }
}

/// A message type with a CDR encoding and a ROS 2 type name.
pub trait CdrMessage: Sized {
    /// The ROS 2 type name, e.g. `sensor_msgs/msg/Image`.
    const TYPE_NAME: &'static str;
    /// Append the fields (no encapsulation header).
    fn write_cdr(&self, w: &mut CdrWriter);
    /// Read the fields (no encapsulation header).
    fn read_cdr(r: &mut CdrReader<'_>) -> Result<Self, CdrError>;
}

/// Serialize a message: encapsulation header (CDR little-endian) + fields.
pub fn to_cdr<M: CdrMessage>(msg: &M) -> Result<Vec<u8>, CdrError> {
    let mut w = CdrWriter::new();
    msg.write_cdr(&mut w);
    w.finish()
}

/// Deserialize a message from a full payload (encapsulation header + fields). Bytes after the
/// last field (alignment padding) are ignored.
pub fn from_cdr<M: CdrMessage>(bytes: &[u8]) -> Result<M, CdrError> {
    let mut r = CdrReader::new(bytes)?;
    M::read_cdr(&mut r).map_err(|e| e.within(short_type(M::TYPE_NAME)))
}

/// `sensor_msgs/msg/Image` → `Image`, for field paths.
fn short_type(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// Reads CDR fields; offsets are relative to the byte after the encapsulation header.
pub struct CdrReader<'a> {
    body: &'a [u8],
    pos: usize,
    big_endian: bool,
}

macro_rules! read_num {
    ($name:ident, $t:ty) => {
        #[doc = concat!("Read an aligned `", stringify!($t), "`.")]
        pub fn $name(&mut self, field: &str) -> Result<$t, CdrError> {
            const N: usize = std::mem::size_of::<$t>();
            let b = self.take(N, N, field)?;
            let mut a = [0u8; N];
            a.copy_from_slice(b);
            Ok(if self.big_endian {
                <$t>::from_be_bytes(a)
            } else {
                <$t>::from_le_bytes(a)
            })
        }
    };
}

impl<'a> CdrReader<'a> {
    /// Check the encapsulation header and start at the first field.
    pub fn new(bytes: &'a [u8]) -> Result<Self, CdrError> {
        if bytes.len() < 4 {
            return Err(CdrError::NoHeader { len: bytes.len() });
        }
        let kind = u16::from_be_bytes([bytes[0], bytes[1]]);
        let big_endian = match kind {
            0x0000 => true,
            0x0001 => false,
            other => return Err(CdrError::Encapsulation { kind: other }),
        };
        Ok(CdrReader {
            body: &bytes[4..],
            pos: 0,
            big_endian,
        })
    }

    /// Bytes left after the current position.
    pub fn remaining(&self) -> usize {
        self.body.len().saturating_sub(self.pos)
    }

    fn truncated(&self, field: &str, needed: u64, offset: usize) -> CdrError {
        CdrError::Truncated {
            field: field.to_string(),
            needed,
            offset,
            available: self.body.len().saturating_sub(offset),
        }
    }

    /// Skip padding to `align`, then take `n` bytes.
    fn take(&mut self, n: usize, align: usize, field: &str) -> Result<&'a [u8], CdrError> {
        let start = self.pos.next_multiple_of(align.max(1));
        let end = start
            .checked_add(n)
            .filter(|&e| e <= self.body.len())
            .ok_or_else(|| self.truncated(field, n as u64, start.min(self.body.len())))?;
        self.pos = end;
        Ok(&self.body[start..end])
    }

    read_num!(u16, u16);
    read_num!(i32, i32);
    read_num!(u32, u32);
    read_num!(f64, f64);

    /// Read a `uint8` / `byte`.
    pub fn u8(&mut self, field: &str) -> Result<u8, CdrError> {
        Ok(self.take(1, 1, field)?[0])
    }

    /// Read a `bool` (must be 0 or 1).
    pub fn bool(&mut self, field: &str) -> Result<bool, CdrError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(CdrError::Invalid {
                field: field.to_string(),
                reason: format!("bool is {v}; expected 0 or 1"),
            }),
        }
    }

    /// Read a sequence count and check that `count × min_element_size` bytes remain.
    pub fn seq_len(&mut self, field: &str, min_element_size: usize) -> Result<usize, CdrError> {
        let n = self.u32(field)? as usize;
        let needed = n as u64 * min_element_size as u64;
        if needed > self.remaining() as u64 {
            return Err(self.truncated(field, needed, self.pos));
        }
        Ok(n)
    }

    /// Read a `string` (UTF-8; a length of 0 is accepted as empty, as some writers emit it).
    pub fn string(&mut self, field: &str) -> Result<String, CdrError> {
        let n = self.seq_len(field, 1)?;
        if n == 0 {
            return Ok(String::new());
        }
        let b = self.take(n, 1, field)?;
        let (text, nul) = b.split_at(n - 1);
        if nul != [0] {
            return Err(CdrError::Invalid {
                field: field.to_string(),
                reason: "string is not NUL-terminated".into(),
            });
        }
        String::from_utf8(text.to_vec()).map_err(|e| CdrError::Invalid {
            field: field.to_string(),
            reason: format!("string is not UTF-8: {e}"),
        })
    }

    /// Read a `uint8[]` sequence.
    pub fn bytes(&mut self, field: &str) -> Result<Vec<u8>, CdrError> {
        let n = self.seq_len(field, 1)?;
        Ok(self.take(n, 1, field)?.to_vec())
    }

    /// Read a `float64[]` sequence.
    pub fn f64_seq(&mut self, field: &str) -> Result<Vec<f64>, CdrError> {
        let n = self.seq_len(field, 8)?;
        (0..n).map(|_| self.f64(field)).collect()
    }

    /// Read a `float64[N]` array.
    pub fn f64_array<const N: usize>(&mut self, field: &str) -> Result<[f64; N], CdrError> {
        let mut a = [0.0; N];
        for v in a.iter_mut() {
            *v = self.f64(field)?;
        }
        Ok(a)
    }

    /// Read a nested message; errors get `field` prefixed.
    pub fn nested<M: CdrMessage>(&mut self, field: &str) -> Result<M, CdrError> {
        M::read_cdr(self).map_err(|e| e.within(field))
    }

    /// Read a sequence of messages, each at least `min_element_size` bytes on the wire.
    pub fn seq<M: CdrMessage>(
        &mut self,
        field: &str,
        min_element_size: usize,
    ) -> Result<Vec<M>, CdrError> {
        let n = self.seq_len(field, min_element_size)?;
        (0..n)
            .map(|i| M::read_cdr(self).map_err(|e| e.within(&format!("{field}[{i}]"))))
            .collect()
    }
}

/// Writes CDR little-endian fields after a `00 01 00 00` encapsulation header.
pub struct CdrWriter {
    buf: Vec<u8>,
    overflow: Option<String>,
}

impl Default for CdrWriter {
    fn default() -> Self {
        Self::new()
    }
}

macro_rules! write_num {
    ($name:ident, $t:ty) => {
        #[doc = concat!("Write an aligned `", stringify!($t), "`.")]
        pub fn $name(&mut self, v: $t) {
            self.align(std::mem::size_of::<$t>());
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
    };
}

impl CdrWriter {
    /// An empty payload with its header.
    pub fn new() -> Self {
        CdrWriter {
            buf: vec![0x00, 0x01, 0x00, 0x00],
            overflow: None,
        }
    }

    fn align(&mut self, n: usize) {
        let pos = self.buf.len() - 4;
        let pad = pos.next_multiple_of(n) - pos;
        self.buf.resize(self.buf.len() + pad, 0);
    }

    write_num!(u16, u16);
    write_num!(i32, i32);
    write_num!(u32, u32);
    write_num!(f64, f64);

    /// Write a `uint8`.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// Write a `bool`.
    pub fn bool(&mut self, v: bool) {
        self.buf.push(v as u8);
    }

    /// Write a sequence count (records an error for counts beyond `u32`).
    pub fn seq_len(&mut self, n: usize, field: &str) {
        match u32::try_from(n) {
            Ok(n) => self.u32(n),
            Err(_) => {
                self.overflow
                    .get_or_insert_with(|| format!("`{field}` has {n} elements; CDR allows 2³²−1"));
                self.u32(u32::MAX);
            }
        }
    }

    /// Write a `string`.
    pub fn string(&mut self, s: &str) {
        self.seq_len(s.len() + 1, "string");
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    /// Write a `uint8[]` sequence.
    pub fn bytes(&mut self, b: &[u8]) {
        self.seq_len(b.len(), "uint8[]");
        self.buf.extend_from_slice(b);
    }

    /// Write a `float64[]` sequence.
    pub fn f64_seq(&mut self, v: &[f64]) {
        self.seq_len(v.len(), "float64[]");
        for &x in v {
            self.f64(x);
        }
    }

    /// Write a `float64[N]` array.
    pub fn f64_array(&mut self, v: &[f64]) {
        for &x in v {
            self.f64(x);
        }
    }

    /// Write a sequence of messages.
    pub fn seq<M: CdrMessage>(&mut self, items: &[M], field: &str) {
        self.seq_len(items.len(), field);
        for m in items {
            m.write_cdr(self);
        }
    }

    /// The payload, or an error if a sequence was too long for CDR.
    pub fn finish(self) -> Result<Vec<u8>, CdrError> {
        match self.overflow {
            Some(reason) => Err(CdrError::Invalid {
                field: "sequence".into(),
                reason,
            }),
            None => Ok(self.buf),
        }
    }
}
