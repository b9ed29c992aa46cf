//! Records the git commit of the checkout being built and whether its tracked files differ
//! from it. A crate of its own so that re-running this on every source change costs nothing:
//! the runner's own build script compiles C++ against libtorch's headers and must not rerun.

use std::path::Path;

fn main() {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    // Whatever makes the runner's code: its sources and the SDK it is built with. Plugins are
    // identified by their own library digests.
    for sources in [
        "../src",
        "../build.rs",
        "../csrc",
        "../../plugins/sdk/src",
        "../../Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={sources}");
    }
    // Where the checkout moves: HEAD, the index, the branch's ref (paths valid in worktrees too).
    for name in ["HEAD", "index", "packed-refs"]
        .into_iter()
        .map(String::from)
        .chain(git(&["symbolic-ref", "-q", "HEAD"]))
    {
        if let Some(path) = git(&["rev-parse", "--git-path", &name]).filter(|p| Path::new(p).exists()) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    let commit = git(&["rev-parse", "HEAD"]).unwrap_or_default();
    let dirty = !commit.is_empty()
        && git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    println!("cargo:rustc-env=GADMS_COMMIT={commit}");
    println!("cargo:rustc-env=GADMS_DIRTY={}", if dirty { "1" } else { "" });
}
