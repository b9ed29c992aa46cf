//! `gadms-run eval`: weights evaluated without training (a zero-shot CLIP, a fine-tuned
//! checkpoint) on a spec's evaluation sets, recorded as a run records its evaluations.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use gadms::eval::metrics::RetrievalMetrics;
use gadms::eval::standalone::{self, Evaluation};
use gadms::spec::Spec;

use super::{checkpoint_weights, load_plugins, report_problems};

#[derive(Args)]
pub struct EvalArgs {
    /// The experiment spec (TOML): its variant's model and its evaluation sets (`data.eval`).
    spec: PathBuf,
    /// A weights file in any format `model.init` takes, a run folder
    /// (`runs/<variant>/seed-<n>`: its `best/` checkpoint, else `checkpoint/`), or a
    /// `checkpoint/` or `best/` folder.
    #[arg(long)]
    weights: PathBuf,
    /// The variant whose model the weights are for (needed when the spec has several).
    #[arg(long)]
    variant: Option<String>,
    /// Override a key of the spec, e.g. `--set train.device=cpu` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// The result's folder name under `<output>/<experiment>/eval/` (default: the stem of
    /// `--weights`).
    #[arg(long)]
    name: Option<String>,
}

pub fn handle(args: EvalArgs, plugin_dirs: &[PathBuf]) -> Result<ExitCode> {
    let spec = Spec::load(&args.spec, &args.overrides)?;
    let plan = standalone::variant_plan(&spec, args.variant.as_deref())?;
    let name = match &args.name {
        Some(name) => name.clone(),
        None => args
            .weights
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .with_context(|| {
                format!(
                    "{}: no file name to name the result by; give `--name`",
                    args.weights.display()
                )
            })?,
    };
    // Refused before the work, and again (atomically) when the folder is created.
    let dir = standalone::result_dir(&spec.output_dir(), &name)?;
    let weights = checkpoint_weights(&args.weights)?;
    let plugins = load_plugins(plugin_dirs, Some(&spec));
    report_problems(&plugins);
    let note = |line: String| {
        eprintln!("{line}");
        Ok(())
    };
    let evaluation = standalone::evaluate_weights(&spec, plan, &plugins, &weights, &note)?;
    evaluation.write(&dir)?;
    print!("{}", table(&evaluation));
    println!("wrote {}", dir.join("metrics.jsonl").display());
    Ok(ExitCode::SUCCESS)
}

/// One line per evaluation set, metrics in percent as a run's log shows them.
fn table(evaluation: &Evaluation) -> String {
    let width = evaluation
        .results
        .iter()
        .map(|(name, _)| name.len())
        .chain(["dataset".len()])
        .max()
        .unwrap_or_default();
    let mut text = format!(
        "{:<width$}  {:>6}  {:>6}  {:>6}  {:>6}  {:>6}  {:>7}\n",
        "dataset", "R@1", "R@5", "R@10", "mAP", "mINP", "queries"
    );
    for (name, m) in &evaluation.results {
        let RetrievalMetrics {
            r1,
            r5,
            r10,
            map,
            minp,
            num_queries,
            ..
        } = m;
        text += &format!(
            "{name:<width$}  {r1:>6.2}  {r5:>6.2}  {r10:>6.2}  {map:>6.2}  {minp:>6.2}  {num_queries:>7}\n"
        );
    }
    text
}
