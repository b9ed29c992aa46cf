//! `gadms-run export`: a checkpoint's weights as safetensors with the reference model's names.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use super::checkpoint_weights;

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
