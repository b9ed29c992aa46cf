//! What gadms was built from: the git checkout, and the digest of the sources that make the
//! runner's code, which run identities use (a commit of docs or tests alone keeps results).

/// The commit's full hash; empty when the sources were not a git checkout.
pub const COMMIT: &str = env!("GADMS_COMMIT");

/// Whether tracked files differed from [`COMMIT`] when this was built.
pub const DIRTY: bool = !env!("GADMS_DIRTY").is_empty();

/// SHA-256 of the runner's sources as built (see `sources.rs`: which files, and how).
pub const SOURCES_DIGEST: &str = env!("GADMS_SOURCES_DIGEST");

#[cfg(test)]
mod sources;

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::sources::{sources_digest, REPORT_ONLY, SOURCES};

    fn write(root: &Path, file: &str, text: &str) {
        let path = root.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn the_digest_follows_the_code_and_not_the_docs() {
        let root = std::env::temp_dir().join(format!("gadms-sources-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        write(&root, "runner/src/lib.rs", "fn a() {}");
        write(&root, "README.md", "docs");
        let first = sources_digest(&root).unwrap();
        write(&root, "README.md", "other docs");
        write(&root, "tests/new.rs", "#[test] fn t() {}");
        assert_eq!(
            sources_digest(&root).unwrap(),
            first,
            "docs and tests are not code"
        );
        write(&root, "runner/src/report/charts.rs", "fn colours() {}");
        write(&root, "runner/src/cli/report.rs", "fn print() {}");
        assert_eq!(
            sources_digest(&root).unwrap(),
            first,
            "the report code reads results, it does not make them"
        );
        write(&root, "runner/src/reporter.rs", "fn r() {}");
        assert_ne!(
            sources_digest(&root).unwrap(),
            first,
            "only the report folder and file are left out"
        );
        write(&root, "runner/src/lib.rs", "fn b() {}");
        let edited = sources_digest(&root).unwrap();
        assert_ne!(edited, first, "an edited source");
        write(&root, "runner/src/more.rs", "");
        assert_ne!(
            sources_digest(&root).unwrap(),
            edited,
            "a new (even empty) source"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// Leaving the report code out of the digest holds only while no run reaches it: only
    /// the report code itself, the command line's dispatch (`main.rs`) and the end of
    /// `gadms-run run` (after the runs) name it. `report::` also catches grouped imports.
    #[test]
    fn nothing_but_the_report_command_and_the_end_of_run_uses_the_report_code() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let callers = ["runner/src/main.rs", "runner/src/cli/run.rs"];
        let users: Vec<String> = walkdir::WalkDir::new(root.join("runner/src"))
            .into_iter()
            .map(Result::unwrap)
            .filter(|e| e.path().extension().is_some_and(|x| x == "rs"))
            .filter(|e| {
                let relative = e.path().strip_prefix(&root).unwrap();
                !REPORT_ONLY
                    .iter()
                    .chain(&callers)
                    .any(|a| relative.starts_with(a))
            })
            .filter(|e| std::fs::read_to_string(e.path()).unwrap().contains("report::"))
            .map(|e| e.path().display().to_string())
            .collect();
        assert!(
            users.is_empty(),
            "{users:?} use the report code, which the run identity's digest leaves out \
             (build-info/src/sources.rs, REPORT_ONLY)"
        );
    }

    #[test]
    fn the_built_digest_is_of_this_checkouts_sources() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        assert!(
            SOURCES.iter().all(|s| root.join(s).exists()),
            "a listed source moved"
        );
        assert_eq!(sources_digest(&root).unwrap(), super::SOURCES_DIGEST);
    }
}
