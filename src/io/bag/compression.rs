//! rosbag2's own compression (on top of any MCAP chunk compression): `FILE` mode compresses
//! each whole storage file to `<name>.zstd`, `MESSAGE` mode each message payload. Both are
//! zstd. Decompression is bounded: a payload or file that would grow past its cap is refused
//! (a zstd bomb costs at most the cap, never unbounded memory or disk).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// How a bag's storage files are compressed by rosbag2 itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CompressionMode {
    /// Not compressed by rosbag2 (MCAP chunks may still be).
    #[default]
    None,
    /// Every storage file is one zstd stream (`<name>.zstd`).
    File,
    /// Every message payload is one zstd frame.
    Message,
}

impl CompressionMode {
    /// From `metadata.yaml`'s `compression_mode` / `compression_format`.
    pub fn from_metadata(mode: &str, format: &str) -> Result<Self, String> {
        let mode = match mode.to_ascii_uppercase().as_str() {
            "" | "NONE" => return Ok(CompressionMode::None),
            "FILE" => CompressionMode::File,
            "MESSAGE" => CompressionMode::Message,
            other => {
                return Err(format!(
                    "compression_mode `{other}` is not one of NONE, FILE, MESSAGE"
                ))
            }
        };
        if format != "zstd" {
            return Err(format!(
                "compression_format `{format}` is not supported (rosbag2 writes `zstd`)"
            ));
        }
        Ok(mode)
    }

    /// As `ros2 bag info` words it.
    pub fn describe(self) -> &'static str {
        match self {
            CompressionMode::None => "none",
            CompressionMode::File => "zstd, per file",
            CompressionMode::Message => "zstd, per message",
        }
    }
}

/// Largest decompressed `FILE`-mode storage file (streamed to a temporary file, so this bounds
/// disk, not memory).
pub const MAX_FILE_DECOMPRESSED: u64 = 64 << 30;

/// The zstd frame magic, little-endian on disk.
pub const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Decompress one `MESSAGE`-mode payload, refusing output over `max` bytes. A frame that
/// declares its size is checked before anything is allocated.
pub fn decompress_message(data: &[u8], max: u64) -> Result<Vec<u8>, String> {
    if let Ok(Some(size)) = zstd::zstd_safe::get_frame_content_size(data) {
        if size > max {
            return Err(format!(
                "zstd payload declares {size} bytes, more than the limit of {max}"
            ));
        }
    }
    let decoder =
        zstd::stream::read::Decoder::with_buffer(data).map_err(|e| format!("zstd payload: {e}"))?;
    let mut out = Vec::with_capacity(data.len().saturating_mul(4).min(max as usize));
    decoder
        .take(max.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| format!("zstd payload: {e}"))?;
    if out.len() as u64 > max {
        return Err(format!(
            "zstd payload decompresses to more than the limit of {max} bytes"
        ));
    }
    Ok(out)
}

/// A decompressed copy of a `FILE`-mode storage file, deleted when dropped.
#[derive(Debug)]
pub struct TempFile {
    path: PathBuf,
}

impl TempFile {
    /// Where the copy lies.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A new, empty temporary file in the system temp directory whose name ends in `stem`, open for
/// writing; the [`TempFile`] removes it on every path from here on.
pub(super) fn create_temp(stem: &str) -> Result<(TempFile, File), String> {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("imd-bag-{}-{n}-{stem}", std::process::id()));
    let out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| format!("creating {}: {e}", path.display()))?;
    Ok((TempFile { path }, out))
}

/// Space left free on the temp file system when decompressing (others need it too).
pub const TEMP_RESERVE: u64 = 1 << 30;

/// Bytes free for an unprivileged writer on the file system of `dir` (`None` when unknown).
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs fills the zeroed struct; the path is a valid C string.
    unsafe {
        let mut s: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut s) != 0 {
            return None;
        }
        Some((s.f_bavail as u64).saturating_mul(s.f_frsize as u64))
    }
}

/// The most a `FILE`-mode file may decompress to: `max`, the user's cap `IMD_MAX_TEMP_GIB`
/// (GiB) when set, and the free space of the temp directory less [`TEMP_RESERVE`], whichever is
/// least; with a sentence saying which bound it is.
pub fn temp_budget(max: u64) -> (u64, String) {
    let mut budget = (max, format!("the limit of {max} bytes"));
    if let Some(gib) = std::env::var("IMD_MAX_TEMP_GIB")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
    {
        let cap = (gib * (1u64 << 30) as f64) as u64;
        if cap < budget.0 {
            budget = (cap, format!("IMD_MAX_TEMP_GIB={gib} ({cap} bytes)"));
        }
    }
    let dir = std::env::temp_dir();
    if let Some(free) = free_bytes(&dir) {
        let room = free.saturating_sub(TEMP_RESERVE);
        if room < budget.0 {
            budget = (
                room,
                format!(
                    "the free space of {} ({free} bytes, less {TEMP_RESERVE} kept free)",
                    dir.display()
                ),
            );
        }
    }
    budget
}

/// Decompress the zstd file `src` into a new temporary file (in the system temp directory),
/// streaming, within [`temp_budget`]`(max)` bytes: a frame that declares more is refused before
/// anything is written, a stream that grows past it is stopped there. The copy keeps `src`'s
/// name without `.zstd` so its storage is recognised by extension.
///
/// A stream that is cut short or followed by junk keeps its intact prefix: the copy holds every
/// byte decompressed before the damage, and the second value says what was lost (the storage
/// readers then recover the complete messages of the prefix, as from a recording cut short).
pub fn decompress_file(src: &Path, max: u64) -> Result<(TempFile, Option<String>), String> {
    let (mut input, _) = crate::io::paths::open_regular(src, "a zstd-compressed storage file")
        .map_err(|e| e.reason)?;
    let (budget, why) = temp_budget(max);
    let mut head = [0u8; 18];
    let n = read_up_to(&mut input, &mut head).map_err(|e| e.to_string())?;
    if let Ok(Some(size)) = zstd::zstd_safe::get_frame_content_size(&head[..n]) {
        if size > budget {
            return Err(format!(
                "declares {size} decompressed bytes, more than {why}; not decompressed (set \
                 IMD_MAX_TEMP_GIB or TMPDIR to a larger disk)"
            ));
        }
    }
    let input = std::io::Cursor::new(head[..n].to_vec()).chain(input);
    let stem = src
        .file_name()
        .map(|n| n.to_string_lossy().trim_end_matches(".zstd").to_string())
        .unwrap_or_else(|| "bag".into());
    let (temp, out) = create_temp(&stem)?;
    let mut decoder = zstd::stream::read::Decoder::new(input)
        .map_err(|e| format!("zstd: {e}"))?
        .take(budget.saturating_add(1));
    let mut writer = std::io::BufWriter::new(out);
    let mut written = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    let damage = loop {
        match decoder.read(&mut buf) {
            Ok(0) => break None,
            Ok(k) => {
                writer
                    .write_all(&buf[..k])
                    .map_err(|e| format!("writing {}: {e}", temp.path.display()))?;
                written += k as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => break Some(e.to_string()),
        }
    };
    if written > budget {
        return Err(format!(
            "decompresses to more than {why}; stopped there (set IMD_MAX_TEMP_GIB or TMPDIR to \
             a larger disk)"
        ));
    }
    writer
        .flush()
        .map_err(|e| format!("writing {}: {e}", temp.path.display()))?;
    match damage {
        None => Ok((temp, None)),
        Some(e) if written > 0 => Ok((
            temp,
            Some(format!(
                "the zstd stream is damaged or cut short after {written} decompressed bytes \
                 ({e}); its intact prefix is read, the rest is lost"
            )),
        )),
        Some(e) => Err(format!("zstd: {e}")),
    }
}

/// Read until `buf` is full or the input ends.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_payloads_round_trip_and_a_bomb_stops_at_the_cap() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let packed = zstd::encode_all(&data[..], 3).unwrap();
        assert_eq!(decompress_message(&packed, 10_000).unwrap(), data);
        // One byte under the real size: refused from the declared frame size.
        let e = decompress_message(&packed, 9_999).unwrap_err();
        assert!(e.contains("limit of 9999"), "{e}");
        // 64 MiB of zeros compress to a few KiB; a 1 MiB cap refuses them.
        let bomb = zstd::encode_all(std::io::repeat(0).take(64 << 20), 19).unwrap();
        assert!(bomb.len() < 64 << 10);
        assert!(decompress_message(&bomb, 1 << 20).is_err());
        assert!(decompress_message(b"not zstd", 1 << 20).is_err());
    }

    #[test]
    fn modes_come_from_the_metadata_words() {
        assert_eq!(
            CompressionMode::from_metadata("", ""),
            Ok(CompressionMode::None)
        );
        assert_eq!(
            CompressionMode::from_metadata("FILE", "zstd"),
            Ok(CompressionMode::File)
        );
        assert_eq!(
            CompressionMode::from_metadata("MESSAGE", "zstd"),
            Ok(CompressionMode::Message)
        );
        assert!(CompressionMode::from_metadata("FILE", "lz4").is_err());
        assert!(CompressionMode::from_metadata("CHUNK", "zstd").is_err());
    }
}
