//! Embeds libtorch's lib directory as an rpath so every binary, test and bench runs with
//! `LD_LIBRARY_PATH` unset. torch-sys's `links` key is `tch`, so its `cargo:libtorch_lib=...`
//! reaches this script as `DEP_TCH_LIBTORCH_LIB`.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        // Resolve the `.libtorch` link, so a binary keeps working when the link moves.
        let dir = std::fs::canonicalize(&dir).map_or(dir, |p| p.display().to_string());
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
