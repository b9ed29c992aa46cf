//! `gadms-run export`: a checkpoint's weights as safetensors with the reference model's names.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;

#[derive(Args)]
pub struct ExportArgs {
    /// A run folder (`runs/<variant>/seed-<n>`: its `best/` checkpoint, else
    /// `checkpoint/`), a `checkpoint/` or `best/` folder, or a weights file in any format
    /// `model.init` takes.
    checkpoint: PathBuf,
    /// The safetensors file to write.
    #[arg(long)]
    to: PathBuf,
}

pub fn handle(args: ExportArgs) -> Result<ExitCode> {
    let file = checkpoint_weights(&args.checkpoint)?;
    let weights = gadms::model::import::export(&file, &args.to)?;
    println!("wrote {}: {weights} from {}", args.to.display(), file.display());
    Ok(ExitCode::SUCCESS)
}

/// The weights file `export` reads for `path`: the file itself, a checkpoint folder's
/// `model.safetensors`, or for a run folder that of `best/` (the validation-selected
/// checkpoint) when there is one, else that of `checkpoint/` (the last epoch).
fn checkpoint_weights(path: &Path) -> Result<PathBuf> {
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    if !path.is_dir() {
        bail!(
            "{}: no such file or folder; give a run folder, its `checkpoint/` or `best/` folder, or a weights file",
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
                 (`runs/<variant>/seed-<n>`), its `checkpoint/` or `best/` folder, or a weights file",
            path.display()
        )
    })
}
