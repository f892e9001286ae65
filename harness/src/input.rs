//! Reading input with bounded resources: every file the harness reads (vectors, kernel
//! vectors, programs, assembly) goes through [`read_file`], and every folder walk through
//! [`walk`].
//!
//! - Only regular files are read. FIFOs, sockets and devices are refused by their type
//!   before they are opened, so a FIFO never blocks a run and `/dev/zero` is never read.
//! - A file larger than the limit (64 MiB, `JAVM_MAX_FILE_BYTES` overrides it) is refused
//!   before it is read, and reading stops at the limit should the file grow meanwhile.
//! - A folder walk follows a link to a folder at most once: a folder reached a second time
//!   (a link loop, or two links to one folder) is skipped with a warning, and a file reached
//!   through several paths is reported once.

use std::collections::BTreeSet;
use std::fs::{File, Metadata};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The default limit on the size of one input file.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 << 20;

/// The variable that overrides [`DEFAULT_MAX_FILE_BYTES`] (a number of bytes).
pub const MAX_FILE_BYTES_VAR: &str = "JAVM_MAX_FILE_BYTES";

/// The limit on the size of one input file.
pub fn max_file_bytes() -> u64 {
    std::env::var(MAX_FILE_BYTES_VAR).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(DEFAULT_MAX_FILE_BYTES)
}

/// What kind of file system object a path is, in words.
fn kind_of(meta: &Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
    }
    if meta.is_dir() {
        "a folder"
    } else if meta.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}

/// Reads a whole regular file of at most [`max_file_bytes`] bytes.
pub fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    let limit = max_file_bytes();
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot open: {e}"))?;
    if !meta.is_file() {
        return Err(format!("cannot read: {} (only regular files are read)", kind_of(&meta)));
    }
    if meta.len() > limit {
        return Err(format!(
            "cannot read: {} bytes is above the input size limit of {limit} bytes (set {MAX_FILE_BYTES_VAR} to change it)",
            meta.len()
        ));
    }
    let file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1).read_to_end(&mut bytes).map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > limit {
        return Err(format!("cannot read: the file grew past the input size limit of {limit} bytes while it was read"));
    }
    Ok(bytes)
}

/// Reads a whole regular file as UTF-8 text (see [`read_file`]).
pub fn read_text(path: &Path) -> Result<String, String> {
    String::from_utf8(read_file(path)?).map_err(|e| format!("not UTF-8 text: {e}"))
}

/// The first existing folder among `names` next to the working folder or one of its
/// ancestors (`a/NAME` for every ancestor `a`, nearest first): from the project root, from a
/// package folder inside it, or from a checkout next to the shared material.
pub fn find_upwards(names: &[&str]) -> Option<PathBuf> {
    let cwd = std::env::current_dir().ok()?;
    for dir in cwd.ancestors() {
        for name in names {
            let c = dir.join(name);
            if c.is_dir() {
                return Some(c.canonicalize().unwrap_or(c));
            }
        }
    }
    None
}

/// The files a walk found, and what it skipped.
#[derive(Debug, Default)]
pub struct Walk {
    /// Sorted, each file once. Objects that are not regular files are listed too (reading
    /// them is refused by [`read_file`]).
    pub files: Vec<PathBuf>,
    /// Folders reached a second time, broken links.
    pub warnings: Vec<String>,
}

/// The files `accept` takes below `path` (or `path` itself when it is a file). `path` must
/// be a regular file or a folder.
pub fn walk(path: &Path, accept: &dyn Fn(&Path) -> bool) -> Result<Walk, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot open: {e}"))?;
    if meta.is_file() {
        return Ok(Walk { files: vec![path.to_path_buf()], warnings: Vec::new() });
    }
    if !meta.is_dir() {
        return Err(format!("{} (expected a vector file or a folder)", kind_of(&meta)));
    }
    let mut walk = Walk::default();
    let mut seen_dirs = BTreeSet::new();
    let mut seen_files = BTreeSet::new();
    let mut dirs = vec![path.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let real = std::fs::canonicalize(&dir).map_err(|e| format!("cannot open {}: {e}", dir.display()))?;
        if !seen_dirs.insert(real.clone()) {
            walk.warnings.push(format!(
                "{}: skipped, the folder {} was already searched (a link loop or a second link to it)",
                dir.display(),
                real.display()
            ));
            continue;
        }
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        let mut children: Vec<PathBuf> = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
            children.push(entry.path());
        }
        children.sort();
        for p in children {
            let Ok(meta) = std::fs::metadata(&p) else {
                walk.warnings.push(format!("{}: skipped, a broken link", p.display()));
                continue;
            };
            if meta.is_dir() {
                dirs.push(p);
            } else if accept(&p) {
                // Not a regular file (a FIFO, a device): listed all the same, so that reading
                // it fails by name instead of the file silently going missing.
                let real = std::fs::canonicalize(&p).unwrap_or_else(|_| p.clone());
                if seen_files.insert(real) {
                    walk.files.push(p);
                }
            }
        }
    }
    walk.files.sort();
    Ok(walk)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("javm-input-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[cfg(unix)]
    #[test]
    fn link_loops_are_searched_once_and_files_reported_once() {
        let dir = scratch("loops");
        std::fs::create_dir_all(dir.join("a/b")).unwrap();
        std::fs::write(dir.join("a/b/x.json"), "{}").unwrap();
        std::os::unix::fs::symlink(dir.join("a"), dir.join("a/b/up")).unwrap();
        std::os::unix::fs::symlink(dir.join("a"), dir.join("again")).unwrap();
        std::os::unix::fs::symlink(dir.join("a/b/x.json"), dir.join("same.json")).unwrap();
        let w = walk(&dir, &|p| p.extension().is_some_and(|e| e == "json")).unwrap();
        assert_eq!(w.files.len(), 1, "{:?}", w.files);
        assert!(w.warnings.iter().any(|m| m.contains("already searched")), "{:?}", w.warnings);
    }

    #[cfg(unix)]
    #[test]
    fn devices_are_refused_by_type() {
        let e = read_file(Path::new("/dev/zero")).unwrap_err();
        assert!(e.contains("character device"), "{e}");
        let e = walk(Path::new("/dev/zero"), &|_| true).unwrap_err();
        assert!(e.contains("character device"), "{e}");
    }

    #[test]
    fn files_above_the_limit_are_refused_before_reading() {
        let dir = scratch("limit");
        let f = dir.join("big.json");
        let file = File::create(&f).unwrap();
        file.set_len(DEFAULT_MAX_FILE_BYTES + 1).unwrap();
        let e = read_file(&f).unwrap_err();
        assert!(e.contains("size limit"), "{e}");
    }
}
