//! Records the git commit of the checkout being built, whether its tracked files differ
//! from it, and the digest of the sources that make the runner's code. A crate of its own
//! so that re-running this on every source change costs little: the runner's own build
//! script compiles C++ against libtorch's headers and must not rerun.

// Brings `Path`, `SOURCES` and `sources_digest`.
include!("src/sources.rs");

fn main() {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for source in SOURCES {
        println!("cargo:rerun-if-changed={}", root.join(source).display());
    }
    let digest = sources_digest(&root).expect("the runner's sources are readable");
    println!("cargo:rustc-env=GADMS_SOURCES_DIGEST={digest}");
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
