//! `gadms-run validate`: loads a spec and checks every variant as `run` would before training,
//! without training; `--print` also shows each run's resolved configuration.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use gadms::spec::{RunPlan, Spec, TrainConfig};

use super::{check_variants, load_plugins};

#[derive(Args)]
pub struct ValidateArgs {
    spec: PathBuf,
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// After the checks, print every run's resolved configuration (variant, seed and hash,
    /// then the TOML): what will run once variants, `--set` and `${env:…}` are applied.
    #[arg(long)]
    print: bool,
}

pub fn handle(args: ValidateArgs, plugin_dirs: &[PathBuf]) -> Result<ExitCode> {
    let mut spec = Spec::load(&args.spec, &args.overrides)?;
    let plugins = load_plugins(plugin_dirs, Some(&spec));
    spec.bind(&plugins)?;
    let variants = check_variants(&spec, &plugins, &[])?;
    println!(
        "{}: ok — experiment `{}`, {} variant(s) × {} seed(s) = {} runs",
        spec.file.display(),
        spec.experiment.name,
        variants,
        spec.experiment.seeds.len(),
        spec.runs.len()
    );
    let lines = step_lines(&spec.runs);
    for (line, variants) in &lines {
        match lines.len() {
            1 => println!("  {line}"),
            _ => println!("  {line} ({})", variants.join(", ")),
        }
    }
    if args.print {
        for run in &spec.runs {
            print!("\n{}", printout(run));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// How each variant's step runs (the batch's cut and the precision), once per distinct line
/// with the variants it applies to: the global batch is what a recipe names, and the user
/// sees it before a GPU-week starts.
fn step_lines(runs: &[RunPlan]) -> Vec<(String, Vec<String>)> {
    let mut lines: Vec<(String, Vec<String>)> = Vec::new();
    for run in runs {
        let train = &run.config.train;
        let line = format!("{}; {}", batch_line(train), train.precision.describe());
        let variant = format!("`{}`", run.variant);
        match lines.iter_mut().find(|(l, _)| *l == line) {
            Some((_, variants)) if variants.contains(&variant) => {}
            Some((_, variants)) => variants.push(variant),
            None => lines.push((line, vec![variant])),
        }
    }
    lines
}

fn batch_line(t: &TrainConfig) -> String {
    match t.micro_batch {
        m if m == 0 || m >= t.batch_size => format!(
            "batch {} per step, shared evenly by the ranks, one forward each",
            t.batch_size
        ),
        m => {
            let k = t.batch_size.div_ceil(m);
            format!(
                "batch {} per step in forwards of at most {m}: on 1 process {k} micro-batches \
                 with gradient caching, on {k} ranks one forward each",
                t.batch_size
            )
        }
    }
}

/// A run as `--print` shows it: a TOML comment naming it, then the configuration the run
/// folder will record, so the block can be read, diffed or copied into a spec.
fn printout(run: &RunPlan) -> String {
    let config = toml::to_string(&run.resolved).expect("a resolved config is a TOML table");
    format!(
        "# variant `{}`, seed {}, hash {}\n{config}",
        run.variant, run.seed, run.hash
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn a_printout_names_the_run_and_holds_its_resolved_config() {
        let text = r#"
            [experiment]
            name = "p"
            seeds = [3]
            [base]
            masking = { plugin = "random" }
            losses = { sdm = { weight = 1.0 } }
            [base.data]
            train = { plugin = "synthetic-persons" }
            eval = [{ plugin = "synthetic-persons", name = "a" }, { plugin = "synthetic-persons", name = "b" }]
            [[variant]]
            name = "v"
        "#;
        let overrides = ["data.eval[b].split=\"val\"".to_string()];
        let spec = Spec::parse(Path::new("p.toml"), text, &overrides).unwrap();
        let run = &spec.runs[0];
        let out = printout(run);
        let (header, config) = out.split_once('\n').unwrap();
        assert_eq!(header, format!("# variant `v`, seed 3, hash {}", run.hash));
        let config: toml::Table = config.parse().unwrap();
        assert_eq!(toml::Value::Table(config), run.resolved);
        assert_eq!(run.resolved["data"]["eval"][1]["split"].as_str(), Some("val"));
    }
}
