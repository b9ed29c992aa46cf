//! `gadms-run validate`: loads a spec and checks every variant as `run` would before training,
//! without training; `--print` also shows each run's resolved configuration.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use gadms::spec::{RunPlan, Spec};

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
    if args.print {
        for run in &spec.runs {
            print!("\n{}", printout(run));
        }
    }
    Ok(ExitCode::SUCCESS)
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
