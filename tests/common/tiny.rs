//! A tiny spec of one run, shared by the end-to-end tests that need a finished run and
//! nothing else: 1 epoch of a 1-layer tiny CLIP on a handful of synthetic identities, with
//! ITC and random masking.
#![allow(dead_code)] // each test binary uses the part it needs

/// The spec of experiment `experiment`: one variant, `clip`, seed 1, output in `out/`.
pub fn one_run(experiment: &str) -> String {
    format!(
        r#"
[experiment]
name = "{experiment}"
seeds = [1]
output = "out"

[base.model]
preset = "tiny"
vision_layers = 1
text_layers = 2

[base.data]
train = {{ plugin = "synthetic-persons", train_ids = 6, images_per_id = 2, test_ids = 3, val_ids = 2 }}
eval = [{{ plugin = "synthetic-persons", name = "synth", train_ids = 6, images_per_id = 2, test_ids = 3, val_ids = 2 }}]

[base.train]
epochs = 1
warmup_epochs = 0
batch_size = 8
lr = 1e-4
device = "cpu"

[base.masking]
plugin = "random"

[base.losses]
itc = {{}}

[[variant]]
name = "clip"
"#
    )
}
