//! Writing output files atomically: a temporary file in the same directory, then a rename, so an
//! interrupted or failed run never leaves a truncated report, CSV, PNG, trace or weights file.

use anyhow::{Context, Result};

use crate::error::{field_bail, FieldError};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The temporary name used while `path` is written: `.{name}.tmp-{pid}-{n}{suffix}` in the same
/// directory, unique per process and call. `suffix` is the path's own extension for
/// [`write_with`]; a writer that picks its format from the name (the PNG encoder) passes its own.
pub fn temp_path(path: &Path, suffix: &str) -> Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .ok_or_else(|| anyhow::anyhow!("{} does not name a file", path.display()))?
        .to_string_lossy();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp_name = format!(".{name}.tmp-{}-{n}{suffix}", std::process::id());
    Ok(match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(tmp_name),
        _ => PathBuf::from(tmp_name),
    })
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_with(path, |tmp| {
        let mut f = fs::File::create(tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        Ok(())
    })
}

/// Calls `write` on a temporary path beside `path` (with the same extension), then renames it
/// onto `path`; on any error the temporary file is removed and `path` is left as it was.
pub fn write_with<T>(path: &Path, write: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
    let ext = path.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
    write_with_suffix(path, &ext, write)
}

/// [`write_with`] with a temporary name ending in `suffix`.
pub fn write_with_suffix<T>(path: &Path, suffix: &str, write: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
    let tmp = temp_path(path, suffix)?;
    let result = write(&tmp).and_then(|value| {
        fs::rename(&tmp, path).with_context(|| format!("moving {} to {}", tmp.display(), path.display()))?;
        Ok(value)
    });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}

/// Makes sure `dir` exists and is a writable directory; a one-line error otherwise.
pub fn prepare_dir(dir: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        field_bail!("out", "{{out}} {}: exists and is not a directory", dir.display());
    }
    let refused = |what: &str, e: std::io::Error| {
        anyhow::Error::new(FieldError::new("out", format!("{{out}} {}: {what}: {e}", dir.display())))
    };
    fs::create_dir_all(dir).map_err(|e| refused("cannot create directory", e))?;
    let probe = dir.join(format!(".write-test-{}", std::process::id()));
    fs::write(&probe, b"").map_err(|e| refused("directory is not writable", e))?;
    let _ = fs::remove_file(probe);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_file_sits_beside_target_with_the_suffix() {
        let tmp = temp_path(Path::new("/a/b/loss.png"), ".png").unwrap();
        assert_eq!(tmp.parent(), Some(Path::new("/a/b")));
        let name = tmp.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(".loss.png.tmp-") && name.ends_with(".png"), "{name}");
        assert_eq!(temp_path(Path::new("x.csv"), ".csv").unwrap().parent(), Some(Path::new("")));
        assert_ne!(temp_path(Path::new("x"), "").unwrap(), temp_path(Path::new("x"), "").unwrap());
    }
}
