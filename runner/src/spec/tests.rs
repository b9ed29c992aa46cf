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
