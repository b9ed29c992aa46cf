//! Records the facts that decide whether a plugin and the runner can share Rust types:
//! compiler, target, profile, the `tch` crate and the libtorch it links. They end up in
//! `$OUT_DIR/fingerprint.txt`, which `abi.rs` embeds.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = Command::new(&rustc)
        .arg("-V")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let target = std::env::var("TARGET").unwrap_or_default();
    let profile = std::env::var("PROFILE").unwrap_or_default();
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let tch = lockfile_version(&manifest, "tch").unwrap_or_else(|| "unknown".into());
    let libtorch = std::env::var("DEP_TCH_LIBTORCH_LIB")
        .ok()
        .and_then(|lib| libtorch_version(Path::new(&lib)))
        .unwrap_or_else(|| "unknown".into());
    let text = format!(
        "sdk={}\nrustc={rustc_version}\ntarget={target}\nprofile={profile}\ntch={tch}\nlibtorch={libtorch}\n",
        std::env::var("CARGO_PKG_VERSION").unwrap()
    );
    std::fs::write(out.join("fingerprint.txt"), text).unwrap();
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-changed=build.rs");
}

/// Version of `package` in the nearest `Cargo.lock` above the SDK (the workspace's).
fn lockfile_version(start: &Path, package: &str) -> Option<String> {
    let lock = start
        .ancestors()
        .map(|d| d.join("Cargo.lock"))
        .find(|p| p.exists())?;
    println!("cargo:rerun-if-changed={}", lock.display());
    let text = std::fs::read_to_string(lock).ok()?;
    let needle = format!("name = \"{package}\"\n");
    let at = text.find(&needle)? + needle.len();
    let line = text[at..].lines().next()?;
    Some(line.strip_prefix("version = ")?.trim_matches('"').to_string())
}

/// libtorch's version as PyTorch's wheel records it (`torch/version.py` beside `lib/`);
/// a plain libtorch download keeps it in `build-version`.
fn libtorch_version(lib: &Path) -> Option<String> {
    let root = lib.parent()?;
    if let Ok(text) = std::fs::read_to_string(root.join("version.py")) {
        let line = text.lines().find(|l| l.starts_with("__version__"))?;
        return Some(
            line.split('=')
                .nth(1)?
                .trim()
                .trim_matches('\'')
                .trim_matches('"')
                .to_string(),
        );
    }
    std::fs::read_to_string(root.join("build-version"))
        .ok()
        .map(|s| s.trim().to_string())
}
