use std::path::Path;

use super::*;

const SPEC: &str = r#"
[experiment]
name = "t"
seeds = [1, 2]

[base.model]
preset = "tiny"

[base.data]
train = { plugin = "synthetic-persons", train_ids = 10 }

[base.train]
epochs = 2

[base.masking]
plugin = "gadms"
scorer = "gass"

[base.losses]
sdm = { weight = 1.0 }
mtp = { weight = 0.3 }

[[variant]]
name = "ga-dms"

[[variant]]
name = "random"
masking = { plugin = "random" }
losses = { mtp = { weight = 0.5 } }
"#;

fn parse(text: &str, overrides: &[&str]) -> Result<Spec, SpecError> {
    let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    Spec::parse(Path::new("spec.toml"), text, &o)
}

#[test]
fn variants_times_seeds_with_deep_merge() {
    let spec = parse(SPEC, &[]).unwrap();
    assert_eq!(spec.runs.len(), 4);
    assert_eq!(spec.variants(), ["ga-dms", "random"]);
    let random = spec.runs.iter().find(|r| r.variant == "random").unwrap();
    // A different plugin replaces the base's options instead of inheriting `scorer`.
    assert_eq!(random.config.masking.plugin, "random");
    assert!(random.config.masking.options.is_empty());
    assert_eq!(random.config.losses["mtp"].weight, 0.5);
    assert_eq!(random.config.losses["sdm"].weight, 1.0);
    assert_eq!(random.config.train.epochs, 2);
    let hashes: std::collections::BTreeSet<_> = spec.runs.iter().map(|r| &r.hash).collect();
    assert_eq!(hashes.len(), 4, "every (variant, seed) has its own identity");
    assert_eq!(
        parse(SPEC, &[]).unwrap().runs[0].hash,
        spec.runs[0].hash,
        "hashes are stable"
    );
}

#[test]
fn overrides_apply_to_every_variant() {
    let spec = parse(SPEC, &["train.epochs=7", "masking.scorer=\"gass-paper\""]).unwrap();
    assert!(spec.runs.iter().all(|r| r.config.train.epochs == 7));
    let ga = spec.runs.iter().find(|r| r.variant == "ga-dms").unwrap();
    assert_eq!(ga.config.masking.options["scorer"].as_str(), Some("gass-paper"));
    let spec = parse(SPEC, &["experiment.seeds=[5]"]).unwrap();
    assert_eq!(spec.runs.iter().map(|r| r.seed).collect::<Vec<_>>(), [5, 5]);
    let err = parse(SPEC, &["train.epochs"]).unwrap_err().to_string();
    assert!(err.contains("key.path=value"), "{err}");
}

#[test]
fn unknown_keys_and_wrong_types_name_the_key_path_and_line() {
    let bad = SPEC.replace("epochs = 2", "epoch = 2");
    let err = parse(&bad, &[]).unwrap_err().to_string();
    assert!(
        err.contains("base.train") && err.contains("epoch") && err.contains("spec.toml:13"),
        "{err}"
    );
    let bad = SPEC.replace("epochs = 2", "epochs = \"two\"");
    let err = parse(&bad, &[]).unwrap_err().to_string();
    assert!(err.contains("base.train.epochs"), "{err}");
    let err = parse(&SPEC.replace("[experiment]", "[experimnt]"), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("experimnt"), "{err}");
}

#[test]
fn the_baseline_and_the_oracle_must_name_variants() {
    let named = SPEC.replace(
        "seeds = [1, 2]",
        "seeds = [1, 2]\nbaseline = \"random\"\noracle = \"ga-dms\"",
    );
    let spec = parse(&named, &[]).unwrap();
    assert_eq!(spec.experiment.oracle.as_deref(), Some("ga-dms"));
    for (key, line) in [("baseline", 5), ("oracle", 6)] {
        let bad = named.replace(&format!("{key} = \""), &format!("{key} = \"x"));
        let err = parse(&bad, &[]).unwrap_err().to_string();
        assert!(
            err.contains(&format!("spec.toml:{line}: key `experiment.{key}`"))
                && err.contains("is no variant")
                && err.contains("`ga-dms`, `random`"),
            "{err}"
        );
    }
}

#[test]
fn the_model_preset_resolves_with_overrides() {
    let spec = parse(
        &SPEC.replace("preset = \"tiny\"", "preset = \"tiny\"\ntext_layers = 8"),
        &[],
    )
    .unwrap();
    assert_eq!(spec.runs[0].config.model.resolve().unwrap().text_layers, 8);
    let spec = parse(
        &SPEC.replace("preset = \"tiny\"", "preset = \"tiny\"\ntext_layer = 8"),
        &[],
    )
    .unwrap();
    let err = spec.runs[0].config.model.resolve().unwrap_err();
    assert!(err.contains("text_layer"), "{err}");
}

#[test]
fn grid_and_zip_sweeps_expand_into_named_variants() {
    let spec = SPEC.to_string()
        + r#"
[[variant]]
name = "sweep"
sweep.grid = { "train.lr" = [1e-4, 3e-4], "train.batch_size" = [32, 64] }
sweep.zip = { "masking.noise_max" = [0.1, 0.2], "masking.mtp_max" = [0.2, 0.3] }
"#;
    let spec = parse(&spec, &[]).unwrap();
    let swept: Vec<&RunPlan> = spec
        .runs
        .iter()
        .filter(|r| r.variant.starts_with("sweep["))
        .collect();
    assert_eq!(swept.len(), 2 * 2 * 2 * 2, "grid 2×2, zip 2, seeds 2");
    let one = swept
        .iter()
        .find(|r| {
            r.variant
                == "sweep[train.batch_size=32,train.lr=0.0003,masking.mtp_max=0.3,masking.noise_max=0.2]"
        })
        .unwrap_or_else(|| panic!("{:?}", swept.iter().map(|r| &r.variant).collect::<Vec<_>>()));
    assert_eq!(one.config.train.batch_size, 32);
    assert_eq!(one.config.train.lr, 3e-4);
    assert_eq!(one.config.masking.options["noise_max"].as_float(), Some(0.2));
    assert_eq!(
        one.config.masking.options["mtp_max"].as_float(),
        Some(0.3),
        "zip pairs the lists"
    );
    let option = |r: &RunPlan, k: &str| r.config.masking.options[k].as_float().unwrap();
    assert!(swept
        .iter()
        .all(|r| (option(r, "mtp_max") - option(r, "noise_max") - 0.1).abs() < 1e-12));

    let bad = SPEC.to_string()
        + "\n[[variant]]\nname = \"z\"\nsweep.zip = { \"train.lr\" = [1e-4], \"train.epochs\" = [1, 2] }\n";
    let err = parse(&bad, &[]).unwrap_err().to_string();
    assert!(
        err.contains("same length") && err.contains("variant `z`"),
        "{err}"
    );
    let bad = SPEC.to_string() + "\n[[variant]]\nname = \"g\"\nsweep.grd = { \"train.lr\" = [1e-4] }\n";
    assert!(parse(&bad, &[]).unwrap_err().to_string().contains("sweep.grd"));
}

#[test]
fn tidy_drops_the_dot_steps_it_can() {
    let t = |p: &str| super::tidy(Path::new(p)).display().to_string();
    assert_eq!(t("experiments/quickstart/../../reports/x"), "reports/x");
    assert_eq!(t("./a/./b"), "a/b");
    assert_eq!(t("../a/../../b"), "../../b");
    assert_eq!(t("/r/../s"), "/s");
}

#[test]
fn a_runs_identity_covers_its_plugin_code_but_not_where_the_libraries_lie() {
    let code = |sha256: &str, file: &str| PluginCode {
        kind: "masking",
        name: "gadms".into(),
        sha256: sha256.into(),
        file: file.into(),
    };
    let part = |c: &[PluginCode]| identity::code_part(c);
    let bound = part(&[code("aa", "/a/libm.so")]);
    assert_ne!(bound, part(&[]));
    assert_eq!(
        bound,
        part(&[code("aa", "/b/libm.so")]),
        "moving a plugin folder keeps the runs"
    );
    assert_ne!(
        bound,
        part(&[code("ab", "/a/libm.so")]),
        "a rebuilt library makes a new run"
    );
}

#[test]
fn execution_keys_and_input_paths_are_not_part_of_the_config_identity() {
    let hash = |overrides: &[&str]| parse(SPEC, overrides).unwrap().runs[0].config_hash.clone();
    let base = hash(&[]);
    for harmless in [
        "train.workers=7",
        "train.threads=3",
        "train.log_every=1",
        "train.eval_batch_size=17",
        "train.device=\"cpu\"",
        "model.init=\"somewhere/weights.safetensors\"",
        "data.train.root=\"/elsewhere\"",
    ] {
        assert_eq!(hash(&[harmless]), base, "`{harmless}` cannot change a result");
    }
    for meaningful in [
        "train.epochs=3",
        "train.lr=0.5",
        "train.precision=\"bf16\"",
        "data.train.train_ids=11",
    ] {
        assert_ne!(hash(&[meaningful]), base, "`{meaningful}` changes the result");
    }
}

#[test]
fn a_changed_identity_names_the_parts_that_changed() {
    let parts = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let old = parts(&[("config", "a"), ("model.init", "x"), ("gadms code", "1")]);
    let new = parts(&[
        ("config", "a"),
        ("model.init", "y"),
        ("gadms code", "2"),
        ("data.train", "d"),
    ]);
    assert_eq!(
        identity::changed_parts(&old, &new),
        ["data.train", "gadms code", "model.init"]
    );
    assert!(identity::changed_parts(&old, &old).is_empty());
}

#[test]
fn init_takes_a_file_or_a_run_of_another_spec() {
    let init = |value: &str| {
        parse(SPEC, &[&format!("model.init={value}")]).map(|s| s.runs[0].config.model.init.clone())
    };
    assert_eq!(
        init("\"w.safetensors\"").unwrap(),
        Some(InitSource::File("w.safetensors".into()))
    );
    assert_eq!(
        init("{ spec = \"up.toml\", variant = \"clip\", seed = 1, checkpoint = \"best\" }").unwrap(),
        Some(InitSource::Run(RunRef {
            spec: "up.toml".into(),
            variant: "clip".into(),
            seed: 1,
            checkpoint: CheckpointChoice::Best,
        }))
    );
    assert_eq!(
        init("{ spec = \"up.toml\", variant = \"clip\", seed = 1, checkpoint = \"best:CUHK-PEDES\" }")
            .unwrap(),
        Some(InitSource::Run(RunRef {
            spec: "up.toml".into(),
            variant: "clip".into(),
            seed: 1,
            checkpoint: CheckpointChoice::BestOn("CUHK-PEDES".into()),
        }))
    );
    let err = init("{ spec = \"up.toml\", variant = \"clip\", seed = 1, checkpoint = \"bestest\" }")
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"best:<test set>\""), "{err}");
    let err = init("{ spec = \"up.toml\", variant = \"clip\" }")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("model.init") && err.contains("a run of another spec"),
        "{err}"
    );
}

#[test]
fn errors_point_at_the_line_of_a_key_path_written_as_a_table_entry() {
    let spec = parse(SPEC, &[]).unwrap();
    let line = |key: &str| spec.locate(key).rsplit(':').next().unwrap().to_string();
    let mtp = SPEC.lines().position(|l| l.starts_with("mtp =")).unwrap() + 1;
    assert_eq!(line("losses.mtp"), mtp.to_string());
    assert_eq!(
        spec.locate("losses.nothing"),
        "spec.toml",
        "an unknown key names the file alone"
    );
}

/// A spec with data roots and the output folder from the environment.
const ENV_SPEC: &str = r#"
[experiment]
name = "t"
output = "${env:OUT:-../reports}"

[base]
masking = { plugin = "random" }
losses = { sdm = { weight = 1.0 } }

[base.data]
train = { plugin = "synthetic-persons", root = "${env:DATA}/train" }
eval = [
  { plugin = "synthetic-persons", name = "a", root = "${env:DATA}/a" },
  { plugin = "synthetic-persons", name = "b", root = "$${env:DATA}" },
]

[[variant]]
name = "first"

[[variant]]
name = "second"
data.train = { plugin = "synthetic-persons", root = "${env:OTHER:-/other}" }
"#;

fn parse_env(text: &str, overrides: &[&str], env: &[(&str, &str)]) -> Result<Spec, SpecError> {
    let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    let lookup = |name: &str| env.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string());
    Spec::parse_with_env(Path::new("spec.toml"), text, &o, &lookup)
}

fn root(component: &ComponentConfig) -> &str {
    component.options["root"].as_str().unwrap()
}

#[test]
fn env_interpolation_reaches_every_table_before_typing() {
    let spec = parse_env(ENV_SPEC, &[], &[("DATA", "/mnt/d"), ("OUT", "/mnt/out")]).unwrap();
    assert_eq!(spec.experiment.output, Path::new("/mnt/out"));
    let [first, second] = [&spec.runs[0].config.data, &spec.runs[1].config.data];
    assert_eq!(root(&first.train), "/mnt/d/train");
    assert_eq!(root(&second.train), "/other");
    assert_eq!(root(&first.eval[0]), "/mnt/d/a");
    assert_eq!(root(&first.eval[1]), "${env:DATA}", "`$${{` is a literal `${{`");
    let defaults = parse_env(ENV_SPEC, &[], &[("DATA", "/d")]).unwrap();
    assert_eq!(defaults.experiment.output, Path::new("../reports"));
}

#[test]
fn an_unset_variable_names_key_path_line_and_how_to_set_it() {
    let err = parse_env(ENV_SPEC, &[], &[]).unwrap_err().to_string();
    assert!(
        err.contains("spec.toml:13: key `base.data.eval[0].root`")
            && err.contains("`DATA` is not set")
            && err.contains("export DATA=")
            && err.contains("${env:DATA:-value}"),
        "{err}"
    );
    let typo = ENV_SPEC.replace("${env:OTHER:-/other}", "${OTHER}");
    let err = parse_env(&typo, &[], &[("DATA", "/d")]).unwrap_err().to_string();
    assert!(
        err.contains("spec.toml:22: key `variant[1].data.train.root`") && err.contains("only `env:`"),
        "{err}"
    );
}

#[test]
fn set_reaches_one_array_element_by_index_or_name() {
    let env = [("DATA", "/d")];
    let spec = parse_env(
        ENV_SPEC,
        &["data.eval[b].root=\"/b\"", "data.eval[0].split=\"val\""],
        &env,
    )
    .unwrap();
    for run in &spec.runs {
        assert_eq!(root(&run.config.data.eval[0]), "/d/a");
        assert_eq!(run.config.data.eval[0].options["split"].as_str(), Some("val"));
        assert_eq!(root(&run.config.data.eval[1]), "/b");
    }
    let err = parse_env(ENV_SPEC, &["data.eval[c].root=\"/c\""], &env)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--set `data.eval[c].root=\"/c\"`")
            && err.contains("the names are `a`, `b`")
            && err.contains("(in variant `first`)"),
        "{err}"
    );
    let err = parse_env(ENV_SPEC, &["data.eval[2].root=1"], &env)
        .unwrap_err()
        .to_string();
    assert!(err.contains("`data.eval` has 2 element(s)"), "{err}");
}

#[test]
fn labels_and_report_columns_name_things_for_reports_without_changing_runs() {
    let labelled = SPEC.replace(
        "name = \"random\"\n",
        "name = \"random\"\nlabel = \"IRRA$^\\\\dagger$\"\nsweep.grid = { \"train.lr\" = [1e-4] }\n",
    ) + "\n[report.columns]\n\"masking.noise_mask\" = \"SDM noise mask\"\n";
    let spec = parse(&labelled, &[]).unwrap();
    assert_eq!(
        spec.presentation.labels,
        BTreeMap::from([(
            "random[train.lr=0.0001]".to_string(),
            "IRRA$^\\dagger$[train.lr=0.0001]".to_string()
        )])
    );
    assert_eq!(spec.presentation.columns["masking.noise_mask"], "SDM noise mask");
    let plain = parse(SPEC, &[]).unwrap();
    assert_eq!(
        spec.runs[0].hash, plain.runs[0].hash,
        "a label is no part of a run's identity"
    );
    assert!(spec.runs[0].resolved.get("label").is_none());

    let err = parse(&(SPEC.to_string() + "\n[report]\ncolumn = {}\n"), &[]).unwrap_err();
    assert!(err.to_string().contains("report"), "{err}");
    let err = parse(
        &SPEC.replace("name = \"random\"\n", "name = \"random\"\nlabel = 3\n"),
        &[],
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("`label` must be a non-empty string"),
        "{err}"
    );
}

#[test]
fn the_slurm_table_is_typed_overridable_and_no_part_of_a_runs_identity() {
    let plain = parse(SPEC, &[]).unwrap();
    assert_eq!(plain.slurm, crate::slurm::Resources::default());
    let with = format!("{SPEC}\n[slurm]\npartition = \"gpu\"\ngpus = 2\ndirectives = [\"--qos=high\"]\n");
    let spec = parse(&with, &["slurm.time=\"1:00:00\""]).unwrap();
    assert_eq!(spec.slurm.partition.as_deref(), Some("gpu"));
    assert_eq!(
        (spec.slurm.gpus, spec.slurm.time.as_deref()),
        (2, Some("1:00:00"))
    );
    assert_eq!(
        spec.runs[0].hash, plain.runs[0].hash,
        "where a run trains is not what it is"
    );
    let err = parse(&with.replace("gpus = 2", "gpu = 2"), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("slurm") && err.contains("gpu"), "{err}");
    let err = parse(&with.replace("\"--qos=high\"", "\"qos=high\""), &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("slurm.directives") && err.contains("--qos=high"),
        "{err}"
    );
}

#[test]
fn the_strength_key_must_be_set_in_every_variant() {
    let named = SPEC.replace("seeds = [1, 2]", "seeds = [1, 2]\nstrength = \"masking.plugin\"");
    let spec = parse(&named, &[]).unwrap();
    assert_eq!(spec.experiment.strength.as_deref(), Some("masking.plugin"));
    let unset = named.replace("\"masking.plugin\"", "\"masking.scorer\"");
    let err = parse(&unset, &[]).unwrap_err().to_string();
    assert!(
        err.contains("spec.toml:5: key `experiment.strength`")
            && err.contains("variant `random` sets no `masking.scorer`"),
        "{err}"
    );
}

#[test]
fn a_swept_name_without_one_key_keeps_the_others() {
    let name = "gass[model.init.variant=2 epochs,masking.scorer=css]";
    assert_eq!(
        name_without(name, "model.init.variant"),
        "gass[masking.scorer=css]"
    );
    assert_eq!(
        name_without(name, "masking.scorer"),
        "gass[model.init.variant=2 epochs]"
    );
    assert_eq!(
        name_without("gass[model.init.variant=2 epochs]", "model.init.variant"),
        "gass"
    );
    assert_eq!(name_without("plain", "model.init.variant"), "plain");
}
