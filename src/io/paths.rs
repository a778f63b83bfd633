//! Output paths that must not clobber inputs.

use std::path::{Path, PathBuf};

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
    /// `is`, `is a hard link to`, `is a symlink to`.
    pub how: &'static str,
}

/// Where `p` leads once symlinks are followed: the canonical path when it exists, else the
/// canonical parent joined with the file name (the file a write would create).
fn resolve(p: &Path) -> Option<PathBuf> {
    if let Ok(c) = std::fs::canonicalize(p) {
        return Some(c);
    }
    // A dangling symlink: the write goes to its target.
    if let Ok(target) = std::fs::read_link(p) {
        let base = p.parent().unwrap_or(Path::new("."));
        return resolve(&base.join(target)).or(Some(base.join(p.file_name()?)));
    }
    let parent = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    Some(std::fs::canonicalize(parent).ok()?.join(p.file_name()?))
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
    let out = resolve(output);
    let out_is_link = std::fs::symlink_metadata(output).is_ok_and(|m| m.file_type().is_symlink());
    for input in inputs {
        let err = |how| OutputIsInput {
            output: output.display().to_string(),
            input: input.display().to_string(),
            how,
        };
        let same_path = out.is_some() && out == resolve(input);
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
            return Err(err(how));
        }
    }
    Ok(())
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
