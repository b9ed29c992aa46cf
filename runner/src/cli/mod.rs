//! The commands of `gadms-run`, one module each: its arguments (a clap `Args` struct) and
//! its handler, which returns the process's exit code. What several commands share (finding
//! the plugins, reporting their problems, checking a spec's variants) is here.

pub mod dataset;
pub mod dist_selftest;
pub mod doctor;
pub mod eval;
pub mod export;
pub mod new_plugin;
pub mod plugins;
pub mod report;
pub mod run;
pub mod slurm;
pub mod status;
pub mod validate;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use gadms::plugin::{default_search_path, PluginSet};
use gadms::spec::Spec;

/// `--plugin-dir` folders, then the spec's `plugin_dirs` (relative to the spec), then the
/// defaults.
fn load_plugins(cli_dirs: &[PathBuf], spec: Option<&Spec>) -> PluginSet {
    let mut dirs = cli_dirs.to_vec();
    if let Some(spec) = spec {
        dirs.extend(spec.experiment.plugin_dirs.iter().map(|d| spec.dir().join(d)));
    }
    dirs.extend(default_search_path());
    PluginSet::discover(&dirs)
}

fn report_problems(plugins: &PluginSet) {
    for p in &plugins.problems {
        eprintln!("plugin problem: {p}");
    }
}

/// Checks each distinct variant's plugins, options, data and weights (only the variants in
/// `only`, when given), printing what the checks note; returns how many variants were checked.
fn check_variants(spec: &Spec, plugins: &PluginSet, only: &[String]) -> Result<usize> {
    let mut seen = BTreeSet::new();
    let mut noted = BTreeSet::new();
    for run in spec
        .runs
        .iter()
        .filter(|r| only.is_empty() || only.contains(&r.variant))
    {
        if seen.insert(run.variant.clone()) {
            let notes = gadms::components::check(plugins, run, &spec.dir()).map_err(|e| {
                let key = error_key(&e.to_string()).to_string();
                anyhow::Error::new(e).context(format!("{}: variant `{}`", spec.locate(&key), run.variant))
            })?;
            // A note shared by several variants (their common `model.init`) is printed once.
            for note in notes.into_iter().filter(|n| noted.insert(n.clone())) {
                println!("{}: {note}", spec.file.display());
            }
        }
    }
    Ok(seen.len())
}

/// The key a component error names, so that the error can point at its line in the spec:
/// the unknown or invalid field of a plugin's options, else the first name in backquotes
/// (a key, a plugin); empty when there is none.
fn error_key(message: &str) -> &str {
    match message.split_once("field `") {
        Some((_, rest)) => rest.split('`').next(),
        None => message.split('`').nth(1),
    }
    .unwrap_or_default()
}

/// The weights file `export` and `eval` read for `path`: the file itself, a checkpoint folder's
/// `model.safetensors`, or for a run folder that of `best/` (the validation-selected
/// checkpoint) when there is one, else that of `checkpoint/` (the last epoch).
fn checkpoint_weights(path: &Path) -> Result<PathBuf> {
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    if !path.is_dir() {
        bail!(
            "{}: no such file or folder; give a run folder, its `checkpoint/`, `best/` or `best-<set>/` folder, or a weights file",
            path.display()
        );
    }
    [
        "model.safetensors",
        "best/model.safetensors",
        "checkpoint/model.safetensors",
    ]
    .iter()
    .map(|name| path.join(name))
    .find(|file| file.is_file())
    .with_context(|| {
        format!(
            "{}: a folder without `model.safetensors`, `best/` or `checkpoint/`; give a run folder \
                 (`runs/<variant>/seed-<n>`), its `checkpoint/`, `best/` or `best-<set>/` folder, or a weights file",
            path.display()
        )
    })
}
