//! `gadms-run dataset`: a dataset as its plugin loads it (`stats`), and the conversion of a
//! published dataset into the layout its plugin reads (`convert`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use gadms::data::convert;
use gadms::data::stats::SplitStats;
use gadms::data::tokenizer::Tokenizer;
use gadms::model::ModelConfig;
use gadms::plugin::PluginSet;
use gadms_plugin::dataset::SplitKind;

use super::load_plugins;

#[derive(Args)]
pub struct DatasetArgs {
    #[command(subcommand)]
    command: DatasetCommand,
}

#[derive(Subcommand)]
enum DatasetCommand {
    /// Per split: identities, images, captions, captions per image, and caption lengths in
    /// CLIP BPE tokens with how many captions tokenisation would truncate.
    ///
    /// Without `--split`, train, val and test are tried in turn; a split that does not load
    /// (ICFG-PEDES has no val) is reported on stderr with the reason and skipped.
    Stats(StatsArgs),
    /// Convert a dataset as published into the layout its plugin reads.
    ///
    /// `webperson`: the Hugging Face release (`Kaichengalex/WebPerson-1M` or `-5M`, parquet
    /// shards `data/train-*.parquet`) becomes `<root>/images/<image_path>`, each image's bytes
    /// unchanged, and one annotation JSON `<root>/<annotations>`; then
    /// `gadms-run dataset stats --plugin webperson --root <root>` loads it. Shards are read one
    /// at a time and the JSON is written as it grows, so memory stays small at 5 M images.
    ///
    /// Converting again into the same root overwrites its images and annotation file (images
    /// of earlier conversions that the shards no longer name stay, unused). A conversion that
    /// stops on an error keeps the images it wrote but writes no annotation file (an earlier
    /// one stays as it was).
    Convert(ConvertArgs),
}

#[derive(Args)]
struct StatsArgs {
    /// The dataset plugin, e.g. `cuhk-pedes` (see `gadms-run plugins`).
    #[arg(long)]
    plugin: String,
    /// The dataset's folder (generated datasets need none).
    #[arg(long)]
    root: Option<PathBuf>,
    /// A split to load: train, val or test (repeatable; default: each that loads).
    #[arg(long = "split", value_name = "SPLIT", value_parser = parse_split)]
    splits: Vec<SplitKind>,
    /// A plugin option, e.g. `--option skip_missing=true` (repeatable). The value is
    /// read as TOML, or as a string when it is not TOML.
    #[arg(long = "option", value_name = "KEY=VALUE")]
    options: Vec<String>,
    /// The text context that truncation is counted against (ViT-B/16's by default).
    #[arg(long, default_value_t = ModelConfig::vit_b16().context_length as usize)]
    context_length: usize,
}

#[derive(Args)]
struct ConvertArgs {
    /// The dataset: `webperson`.
    #[arg(value_enum)]
    dataset: ConvertDataset,
    /// The download: a folder (its `data/train-*.parquet`, else its `*.parquet`, by name)
    /// or shard files, in the order given.
    #[arg(long = "from", value_name = "DIR|FILE", required = true, num_args = 1..)]
    from: Vec<PathBuf>,
    /// The folder to write, the plugin's `root` (created if needed).
    #[arg(long, value_name = "DIR")]
    root: PathBuf,
    /// The annotation file's name under the root; the plugin reads it with option
    /// `annotations` (this default needs none).
    #[arg(long, value_name = "NAME", default_value = convert::DEFAULT_ANNOTATIONS)]
    annotations: String,
}

/// The datasets `dataset convert` knows.
#[derive(Clone, Copy, ValueEnum)]
enum ConvertDataset {
    /// WebPerson's Hugging Face parquet shards.
    Webperson,
}

pub fn handle(args: DatasetArgs, plugin_dirs: &[PathBuf]) -> Result<ExitCode> {
    match args.command {
        DatasetCommand::Stats(stats) => dataset_stats(&load_plugins(plugin_dirs, None), &stats),
        DatasetCommand::Convert(ConvertArgs {
            dataset: ConvertDataset::Webperson,
            from,
            root,
            annotations,
        }) => convert_webperson(&from, &root, &annotations),
    }
}

/// `dataset stats`: splits named with `--split` must load; without it, each split that
/// loads is shown and the command fails only when none does.
fn dataset_stats(plugins: &PluginSet, args: &StatsArgs) -> Result<ExitCode> {
    let name = &args.plugin;
    let dataset = plugins
        .dataset(name)?
        .open(args.root.as_deref(), &plugin_options(&args.options)?)
        .with_context(|| format!("cannot open dataset `{name}`"))?;
    let tokenizer = Tokenizer::clip()?;
    let explicit = !args.splits.is_empty();
    let splits = if explicit {
        &args.splits[..]
    } else {
        &[SplitKind::Train, SplitKind::Val, SplitKind::Test][..]
    };
    let mut loaded = 0;
    for &split in splits {
        match dataset.load(split) {
            Ok(data) => {
                let stats = SplitStats::compute(&data, &tokenizer, args.context_length);
                print!("{name} {}:\n{stats}", split.as_str());
                loaded += 1;
            }
            Err(e) if !explicit => eprintln!("{name} {}: not loaded: {e}", split.as_str()),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot load the `{}` split of `{name}`", split.as_str()))
            }
        }
    }
    if loaded == 0 {
        bail!("no split of `{name}` loaded; the reasons are above");
    }
    Ok(ExitCode::SUCCESS)
}

/// `dataset convert webperson`: a line per shard on stderr as it finishes, the summary and
/// the command that loads the result on stdout.
fn convert_webperson(from: &[PathBuf], root: &Path, annotations: &str) -> Result<ExitCode> {
    let shards = convert::find_shards(from)?;
    eprintln!("converting {} shard(s) into {}", shards.len(), root.display());
    let summary = convert::convert_webperson(&shards, root, annotations, |done| {
        eprintln!(
            "shard {}/{} {}: {} images, {} bytes",
            done.number,
            done.of,
            done.shard.display(),
            done.images,
            done.image_bytes
        )
    })
    .with_context(|| format!("converting WebPerson into {}", root.display()))?;
    println!("{summary}");
    let option = if annotations == convert::DEFAULT_ANNOTATIONS {
        String::new()
    } else {
        format!(" --option annotations={annotations}")
    };
    println!(
        "check it with: gadms-run dataset stats --plugin webperson --root {}{option}",
        root.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `KEY=VALUE` assignments as the TOML text a plugin parses its options from. As with
/// `--set`, a value that is not TOML (`annotations=100w.json`) is taken as a string.
fn plugin_options(assignments: &[String]) -> Result<String> {
    let mut table = toml::Table::new();
    for assignment in assignments {
        let (key, raw) = assignment
            .split_once('=')
            .with_context(|| format!("--option `{assignment}`: expected KEY=VALUE"))?;
        let value = format!("v = {raw}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.trim().to_string()));
        table.insert(key.trim().to_string(), value);
    }
    Ok(toml::to_string(&table)?)
}

fn parse_split(text: &str) -> Result<SplitKind, String> {
    [SplitKind::Train, SplitKind::Val, SplitKind::Test]
        .into_iter()
        .find(|s| s.as_str() == text)
        .ok_or_else(|| format!("`{text}` is not a split; expected train, val or test"))
}
