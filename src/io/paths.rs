//! Output paths that must not clobber inputs, and input files opened only when they are what a
//! read expects (a regular file of bounded size, never a FIFO or device that blocks or never
//! ends).

use std::fs::File;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// An output that would overwrite one of the inputs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "output {output} {how} input {input}; writing it would destroy the input (choose another \
     output path)"
)]
pub struct OutputIsInput {
    /// The output path as given.
    pub output: String,
    /// The input path as given.
    pub input: String,
    /// `is`, `is a hard link to`, `is a symlink to`, `lies inside the folder of`.
    pub how: &'static str,
}

/// Where `p` leads once symlinks are followed: the canonical path when it exists, else the
/// canonical path of its nearest existing ancestor joined with the rest (the file a write
/// would create, `create_dir_all` included).
fn resolve(p: &Path) -> Option<PathBuf> {
    resolve_depth(p, 0)
}

fn resolve_depth(p: &Path, depth: u32) -> Option<PathBuf> {
    if let Ok(c) = std::fs::canonicalize(p) {
        return Some(c);
    }
    // A dangling symlink: the write goes to its target.
    if let Ok(target) = std::fs::read_link(p) {
        let base = p.parent().unwrap_or(Path::new("."));
        if depth < 40 {
            if let Some(r) = resolve_depth(&base.join(target), depth + 1) {
                return Some(r);
            }
        }
        return Some(base.join(p.file_name()?));
    }
    let name = match p.components().next_back()? {
        Component::Normal(n) => n.to_os_string(),
        Component::CurDir | Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
            return None
        }
    };
    let parent = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    Some(resolve_depth(parent, depth)?.join(name))
}

#[cfg(unix)]
fn same_inode(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_inode(_: &Path, _: &Path) -> bool {
    false
}

/// Refuse `output` when it is one of `inputs`: the same path, the same file through a symlink
/// (either side), or a hard link to it.
pub fn check_output_not_input(output: &Path, inputs: &[&Path]) -> Result<(), OutputIsInput> {
    let mut set = InputSet::default();
    for input in inputs {
        set.file(input);
    }
    set.check(output)
}

/// Entries of a folder looked at for [`InputSet::folder`] (a bag or weights folder has a few).
const MAX_FOLDER_ENTRIES: usize = 100_000;

/// Everything a command reads, resolved once (symlinks followed): files an output must not be
/// (also through a hard link), and folders an output must not be or lie inside.
#[derive(Debug, Clone, Default)]
pub struct InputSet {
    /// (as given, resolved).
    files: Vec<(PathBuf, Option<PathBuf>)>,
    /// (as given, resolved).
    folders: Vec<(PathBuf, PathBuf)>,
}

impl InputSet {
    /// An input file.
    pub fn file(&mut self, path: &Path) -> &mut Self {
        self.files.push((path.to_path_buf(), resolve(path)));
        self
    }

    /// An input folder: the folder itself (no output may lie inside it) and each of its
    /// entries, resolved (a symlink in it to a file elsewhere is an input too).
    pub fn folder(&mut self, dir: &Path) -> &mut Self {
        if let Ok(c) = std::fs::canonicalize(dir) {
            self.folders.push((dir.to_path_buf(), c));
        }
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten().take(MAX_FOLDER_ENTRIES) {
                let p = entry.path();
                self.file(&p);
                if p.is_dir() {
                    if let Ok(c) = std::fs::canonicalize(&p) {
                        self.folders.push((p, c));
                    }
                }
            }
        }
        self
    }

    /// A rosbag2 bag as `imd replay` / `imd bag` take it: a bag directory (the folder, its
    /// `metadata.yaml` and every file it lists, wherever their symlinks lead), its
    /// `metadata.yaml` (the same), or one storage file.
    pub fn bag(&mut self, path: &Path) -> &mut Self {
        let dir = if path.is_dir() {
            Some(path.to_path_buf())
        } else if path.file_name().is_some_and(|n| n == "metadata.yaml") {
            self.file(path);
            Some(match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            })
        } else {
            None
        };
        let Some(dir) = dir else {
            return self.file(path);
        };
        self.folder(&dir);
        let meta = dir.join("metadata.yaml");
        self.file(&meta);
        if let Ok(m) = crate::io::bag::metadata::BagMetadata::read(&meta) {
            for rel in &m.relative_file_paths {
                self.file(&dir.join(rel));
            }
            for f in &m.files {
                self.file(&dir.join(&f.path));
            }
        }
        self
    }

    /// Refuse `output` when it is an input file (same path, through a symlink on either side,
    /// or a hard link), an input folder, or lies inside an input folder.
    pub fn check(&self, output: &Path) -> Result<(), OutputIsInput> {
        let out = resolve(output);
        let out_is_link =
            std::fs::symlink_metadata(output).is_ok_and(|m| m.file_type().is_symlink());
        let err = |input: &Path, how| OutputIsInput {
            output: output.display().to_string(),
            input: input.display().to_string(),
            how,
        };
        for (input, resolved) in &self.files {
            let same_path = out.is_some() && &out == resolved;
            if same_path || same_inode(output, input) {
                let how = if out_is_link {
                    "is a symlink to"
                } else if !same_path {
                    "is a hard link to"
                } else if output.as_os_str() == input.as_os_str() {
                    "is"
                } else {
                    "is the same file as"
                };
                return Err(err(input, how));
            }
        }
        if let Some(out) = &out {
            for (input, resolved) in &self.folders {
                if out == resolved {
                    return Err(err(input, "is the folder of"));
                }
                if out.starts_with(resolved) {
                    return Err(err(input, "lies inside the folder of"));
                }
            }
        }
        Ok(())
    }
}

/// A file that is not what a read expected (a FIFO, device, folder, socket; or too large).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct InputFileError {
    /// The path as given.
    pub path: String,
    /// What it is and what was expected.
    pub reason: String,
}

fn kind_of(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() {
        "a folder"
    } else if t.is_symlink() {
        "a symlink"
    } else {
        "not a regular file"
    }
}

/// Open `path` for reading only when it is (or a symlink leads to) a regular file, and return
/// it with its size. A FIFO is opened without blocking and refused, like a device or folder:
/// `what` (e.g. `a bag storage file`) names what the read expected.
pub fn open_regular(path: &Path, what: &str) -> Result<(File, u64), InputFileError> {
    let err = |reason: String| InputFileError {
        path: path.display().to_string(),
        reason,
    };
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // A FIFO without a writer would block the open forever; with O_NONBLOCK it opens at
        // once and fstat shows what it is.
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(|e| err(e.to_string()))?;
    let meta = file.metadata().map_err(|e| err(e.to_string()))?;
    if !meta.file_type().is_file() {
        return Err(err(format!(
            "is {}; expected {what} (a regular file)",
            kind_of(&meta.file_type())
        )));
    }
    #[cfg(unix)]
    {
        use std::os::unix::io::AsRawFd;
        // Back to blocking reads (no effect on a regular file, but keep the usual semantics).
        let fd = file.as_raw_fd();
        // SAFETY: fcntl on a file descriptor this function owns, with flags it read.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            if flags >= 0 {
                libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
            }
        }
    }
    Ok((file, meta.len()))
}

/// Read a whole regular file of at most `max` bytes: refused unread when its size says more,
/// and the read itself stops at `max + 1` bytes (a file that grows is refused too).
pub fn read_capped(path: &Path, what: &str, max: u64) -> Result<Vec<u8>, InputFileError> {
    let (file, len) = open_regular(path, what)?;
    let err = |reason: String| InputFileError {
        path: path.display().to_string(),
        reason,
    };
    let too_big = |n: u64| err(format!("{n} bytes, more than the {max} {what} may have"));
    if len > max {
        return Err(too_big(len));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| err(e.to_string()))?;
    if bytes.len() as u64 > max {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// [`read_capped`] as UTF-8 text.
pub fn read_text_capped(path: &Path, what: &str, max: u64) -> Result<String, InputFileError> {
    let bytes = read_capped(path, what, max)?;
    String::from_utf8(bytes).map_err(|e| InputFileError {
        path: path.display().to_string(),
        reason: format!("not UTF-8 text: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_path_symlink_and_hard_link_are_refused() {
        let dir = std::env::temp_dir().join(format!("imd-paths-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let input = dir.join("in.mcap");
        std::fs::write(&input, b"x").unwrap();
        let e = check_output_not_input(&input, &[&input]).unwrap_err();
        assert_eq!(e.how, "is");
        let dotted = dir.join(".").join("in.mcap");
        assert_eq!(
            check_output_not_input(&dotted, &[&input]).unwrap_err().how,
            "is the same file as"
        );
        let hard = dir.join("hard.mcap");
        let _ = std::fs::remove_file(&hard);
        std::fs::hard_link(&input, &hard).unwrap();
        assert_eq!(
            check_output_not_input(&hard, &[&input]).unwrap_err().how,
            "is a hard link to"
        );
        #[cfg(unix)]
        {
            let link = dir.join("link.mcap");
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(&input, &link).unwrap();
            assert_eq!(
                check_output_not_input(&link, &[&input]).unwrap_err().how,
                "is a symlink to"
            );
            // The input given through the symlink, the output as the real path.
            assert!(check_output_not_input(&input, &[&link]).is_err());
        }
        assert!(check_output_not_input(&dir.join("new.mcap"), &[&input]).is_ok());
        let msg = check_output_not_input(&input, &[&input])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("destroy the input"), "{msg}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
