//! Writing output files atomically: a temporary file in the same directory, then a rename, so an
//! interrupted or failed run never leaves a truncated report, CSV, PNG, trace or weights file.

use anyhow::{Context, Result};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The temporary name used while `path` is written: `.{name}.tmp-{pid}{.ext}` in the same
/// directory, keeping the extension (plotters picks the image format from it).
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let ext = path.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}{ext}", std::process::id()))
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

/// Calls `write` on a temporary path beside `path`, then renames it onto `path`; on any error
/// the temporary file is removed and `path` is left as it was.
pub fn write_with(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = temp_path(path);
    let result = write(&tmp).and_then(|()| fs::rename(&tmp, path).map_err(Into::into));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}

/// Makes sure `dir` exists and is a writable directory; a one-line error otherwise.
pub fn prepare_dir(dir: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        anyhow::bail!("--out {}: exists and is not a directory", dir.display());
    }
    fs::create_dir_all(dir).with_context(|| format!("--out {}: cannot create directory", dir.display()))?;
    let probe = dir.join(format!(".write-test-{}", std::process::id()));
    fs::write(&probe, b"").with_context(|| format!("--out {}: directory is not writable", dir.display()))?;
    let _ = fs::remove_file(probe);
    Ok(())
}
