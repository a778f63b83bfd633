//! Salvage of a `.db3` cut short (the last split file of a recording whose recorder was killed).
//!
//! SQLite refuses every query on a file shorter than the page count its header declares
//! ("database disk image is malformed"), although the pages before the cut are intact. A copy
//! cut to whole pages, whose header declares the pages present, reads again: the b-tree walk
//! returns every row whose pages all lie before the cut and fails at the first missing page.
//! Only the copy is patched, never the user's file.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::compression::{create_temp, TempFile};

/// Bytes of the SQLite database header.
const HEADER: usize = 100;

/// Where a `.db3` ends against where its header says it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    /// Database page size in bytes.
    pub page_size: u64,
    /// Bytes the file has.
    pub file_len: u64,
    /// Bytes the header declares (page count × page size), when its page count is valid.
    pub declared_len: Option<u64>,
    /// Whole pages before the cut (what a salvage copy keeps).
    pub kept_pages: u64,
}

impl Cut {
    /// Bytes a salvage copy keeps: the whole pages before the cut.
    pub fn kept_len(&self) -> u64 {
        self.kept_pages * self.page_size
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// The cut of `path` when its header says it is shorter than it should be (fewer bytes than its
/// declared pages, or not whole pages) and at least one whole page is left; `None` for a whole
/// file, or one too short or too damaged to salvage anything from.
pub fn find_cut(path: &Path) -> std::io::Result<Option<Cut>> {
    let mut f = File::open(path)?;
    let file_len = f.metadata()?.len();
    let mut h = [0u8; HEADER];
    if f.read_exact(&mut h).is_err() {
        return Ok(None);
    }
    let page_size = match u16::from_be_bytes([h[16], h[17]]) {
        1 => 65536u64,
        n if n >= 512 && n.is_power_of_two() => u64::from(n),
        _ => return Ok(None),
    };
    // SQLite trusts the header's page count only when the change counter (24..28) equals the
    // version-valid-for number (92..96); otherwise it sizes the database by the file.
    let pages = u64::from(be32(&h[28..32]));
    let declared_len = (pages > 0 && h[24..28] == h[92..96]).then(|| pages * page_size);
    let short = file_len % page_size != 0 || declared_len.is_some_and(|d| file_len < d);
    let kept_pages = file_len / page_size;
    Ok((short && kept_pages > 0).then_some(Cut {
        page_size,
        file_len,
        declared_len,
        kept_pages,
    }))
}

/// Copy the whole pages of `path` before `cut` into a temporary file (deleted on drop) and make
/// its header declare them: page count = pages present, version-valid-for = change counter, and
/// rollback-journal mode (a WAL file, if there was one, is not part of the salvage).
pub fn salvage_copy(path: &Path, cut: &Cut) -> Result<TempFile, String> {
    let stem = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "bag.db3".into());
    let (temp, out) = create_temp(&format!("salvage-{stem}"))?;
    let wrote = |e: std::io::Error| format!("writing {}: {e}", temp.path().display());
    let input = File::open(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    // Bounded by the file's own size: only its whole pages are copied.
    let mut input = input.take(cut.kept_len());
    let mut w = std::io::BufWriter::new(out);
    let n = std::io::copy(&mut input, &mut w).map_err(|e| {
        format!(
            "copying {} into {}: {e}",
            path.display(),
            temp.path().display()
        )
    })?;
    if n != cut.kept_len() {
        return Err(format!(
            "{} changed while it was copied ({n} of {} bytes)",
            path.display(),
            cut.kept_len()
        ));
    }
    let mut out = w.into_inner().map_err(|e| wrote(e.into_error()))?;
    let mut h = [0u8; HEADER];
    let mut copy = File::open(temp.path()).map_err(wrote)?;
    copy.read_exact(&mut h).map_err(wrote)?;
    let pages = u32::try_from(cut.kept_pages)
        .map_err(|_| format!("{} has more pages than SQLite allows", path.display()))?;
    let mut patch = |at: u64, bytes: &[u8]| -> Result<(), String> {
        out.seek(SeekFrom::Start(at)).map_err(wrote)?;
        out.write_all(bytes).map_err(wrote)
    };
    patch(18, &[1, 1])?;
    patch(28, &pages.to_be_bytes())?;
    patch(92, &h[24..28])?;
    out.flush().map_err(wrote)?;
    Ok(temp)
}
