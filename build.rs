//! Embeds libtorch's lib directory as an rpath so every binary, test and bench runs with
//! `LD_LIBRARY_PATH` unset, and checks that the libtorch found is the one `tch` 0.26 needs.
//! torch-sys's `links` key is `tch`, so its `cargo:libtorch_lib=...` reaches this script as
//! `DEP_TCH_LIBTORCH_LIB`.

use std::path::Path;

const TORCH_VERSION: &str = "2.13.0";
const SETUP: &str = "run `bash scripts/setup-libtorch.sh` (README.md, Quick start)";

/// The version of the libtorch whose lib directory is `lib`, from the PyPI wheel's `version.py`
/// or the libtorch archive's `build-version`; None when neither is there.
fn version(lib: &Path) -> Option<String> {
    let root = lib.parent()?;
    if let Ok(text) = std::fs::read_to_string(root.join("build-version")) {
        return Some(text.trim().to_string());
    }
    let text = std::fs::read_to_string(root.join("version.py")).ok()?;
    let line = text.lines().find(|l| l.starts_with("__version__"))?;
    Some(line.split(['\'', '"']).nth(1)?.to_string())
}

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    let lib = Path::new(&dir);
    if !lib.is_dir() {
        panic!("libtorch's lib directory {dir} does not exist: {SETUP}");
    }
    if let Some(v) = version(lib) {
        let bare = v.split('+').next().unwrap_or(&v);
        if bare != TORCH_VERSION {
            panic!("libtorch {v} found at {dir}, but tch 0.26 needs {TORCH_VERSION}: {SETUP}");
        }
    }
    // Resolve the `.libtorch` link, so a binary keeps working when the link moves.
    let dir = std::fs::canonicalize(lib).map_or(dir.clone(), |p| p.display().to_string());
    println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
}
