//! Shared by the end-to-end tests: the real `gadms-run` binary, run with only the
//! workspace's plugins (`GADMS_PLUGIN_PATH` emptied), and scratch folders.
#![allow(dead_code)] // each test binary uses the part it needs

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::{Command, Output};

/// `gadms-run`, searching only the plugins next to it.
pub fn command() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gadms-run"));
    c.env("GADMS_PLUGIN_PATH", "");
    c
}

/// Runs `gadms-run ARGS`, asserts a normal exit (no signal, so no crash) and returns the
/// output with stdout followed by stderr as text.
pub fn gadms_run<I, S>(args: I) -> (Output, String)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut c = command();
    c.args(args);
    output(c)
}

/// Runs `command` (a `gadms-run`, possibly a copy elsewhere), asserts a normal exit and
/// returns the output with stdout followed by stderr as text.
pub fn output(mut command: Command) -> (Output, String) {
    let out = command.output().unwrap();
    assert!(
        out.status.code().is_some(),
        "gadms-run was killed by a signal: {out:?}"
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

/// An empty folder of this test process, `gadms-<name>-<pid>` in the temp folder.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gadms-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
