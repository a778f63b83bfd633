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

/// Decompress the zstd file `src` into a new temporary file (in the system temp directory),
/// streaming, refusing output over `max` bytes. The copy keeps `src`'s name without `.zstd` so
/// its storage is recognised by extension.
pub fn decompress_file(src: &Path, max: u64) -> Result<TempFile, String> {
    let (input, _) = crate::io::paths::open_regular(src, "a zstd-compressed storage file")
        .map_err(|e| e.reason)?;
    let stem = src
        .file_name()
        .map(|n| n.to_string_lossy().trim_end_matches(".zstd").to_string())
        .unwrap_or_else(|| "bag".into());
    let (temp, out) = create_temp(&stem)?;
    let mut decoder = zstd::stream::read::Decoder::new(input)
        .map_err(|e| format!("zstd: {e}"))?
        .take(max.saturating_add(1));
    let mut writer = std::io::BufWriter::new(out);
    let written = std::io::copy(&mut decoder, &mut writer)
        .map_err(|e| format!("zstd (decompressing into {}): {e}", temp.path.display()))?;
    if written > max {
        return Err(format!(
            "decompresses to more than the limit of {max} bytes"
        ));
    }
    writer
        .flush()
        .map_err(|e| format!("writing {}: {e}", temp.path.display()))?;
    Ok(temp)
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
