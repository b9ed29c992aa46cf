//! What TensorBoard's own reader (the `tensorboard` package that `make test` installs in the
//! .venv) sees in a run folder's event files.
#![allow(dead_code)] // each test binary uses the part it needs

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Each scalar tag's `(step, value)` points, as TensorBoard reads them from `run`.
pub fn scalars(run: &Path) -> BTreeMap<String, Vec<(i64, f64)>> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(workspace.join(".venv/bin/python"))
        .arg(workspace.join("tests/fixtures/tensorboard_scalars.py"))
        .arg(run)
        .output()
        .expect("the .venv's Python runs (make test installs it)");
    assert!(
        out.status.success(),
        "TensorBoard's reader failed (`make test` installs the tensorboard package):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The points of `tag`, failing with the tags there are when it is missing.
pub fn points<'a>(scalars: &'a BTreeMap<String, Vec<(i64, f64)>>, tag: &str) -> &'a [(i64, f64)] {
    scalars
        .get(tag)
        .unwrap_or_else(|| panic!("no scalar `{tag}` among {:?}", scalars.keys()))
}
