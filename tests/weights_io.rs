//! Pretrained weights in and out. The fixtures come from the .venv's PyTorch
//! (`tests/fixtures/clip_weights.py`): one small CLIP with OpenAI's names and random
//! weights, saved in every format gadms reads, at another image grid and text context than
//! the model the tests build. Each file must load and give the features PyTorch computes
//! from the same weights; bad files must fail with errors naming the file, the parameter and
//! the fix; fine-tuning must start from a torch.save checkpoint; and an export must load in
//! PyTorch with the same names, values and features.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use gadms::model::import::{self, Format, Layout};
use gadms::model::weights::{load_named, read_safetensors, Strictness};
use gadms::model::{Clip, ModelConfig};
use gadms_golden::assert_close;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

#[path = "common/cli.rs"]
mod cli;

/// fp32 features of the same weights through libtorch kernels called from Rust and from
/// PyTorch's modules; the attention paths differ, so not bit for bit.
const FEATURE_ATOL: f64 = 1e-4;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `clip_weights.py ARGS` with the .venv's Python and asserts it succeeded.
fn python<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(args: I) {
    let out = Command::new(workspace().join(".venv/bin/python"))
        .arg(workspace().join("tests/fixtures/clip_weights.py"))
        .args(args)
        .output()
        .expect("the .venv's Python runs (make test installs it)");
    assert!(
        out.status.success(),
        "clip_weights.py failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The fixture folder, made once per test binary.
fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("weights_io");
        let _ = std::fs::remove_dir_all(&dir);
        python([OsStr::new("make"), dir.as_os_str()]);
        dir
    })
}

fn fixture(name: &str) -> PathBuf {
    fixtures().join(name)
}

/// The model config the fixtures are fitted to.
fn config() -> ModelConfig {
    serde_json::from_str(&std::fs::read_to_string(fixture("model.json")).unwrap()).unwrap()
}

fn features_file(name: &str) -> HashMap<String, Tensor> {
    read_safetensors(&fixture(name)).unwrap()
}

/// Image (CLS) and text (EOS) features of the encoders with `tensors` loaded strictly (or
/// ignoring loss heads, for a run's checkpoint).
fn features(tensors: &HashMap<String, Tensor>, file: &Path, heads: bool) -> (Tensor, Tensor) {
    let inputs = features_file("features.safetensors");
    let vs = VarStore::new(Device::Cpu);
    let clip = Clip::new(&vs.root(), &config());
    let strictness = Strictness {
        allow_missing: false,
        allow_unexpected: heads,
    };
    load_named(&vs, tensors, file, strictness).unwrap();
    tch::no_grad(|| {
        (
            clip.visual.forward(&inputs["images"]).select(1, 0),
            clip.text.encode(&inputs["text"]),
        )
    })
}

#[test]
fn every_format_loads_with_the_features_pytorch_computes() {
    let reference = read_safetensors(&fixture("reference.safetensors")).unwrap();
    let expected = features_file("features.safetensors");
    for (name, format, layout, rounding) in [
        (
            "reference.safetensors",
            Format::Safetensors,
            Layout::Reference,
            "fp32",
        ),
        ("openai.pt", Format::TorchScript, Layout::OpenAi, "fp32"),
        ("irra-fp32.pth", Format::TorchSave, Layout::Reference, "fp32"),
        ("irra-fp16.pth", Format::TorchSave, Layout::Reference, "fp16"),
        ("openai-bf16.pth", Format::TorchSave, Layout::OpenAi, "bf16"),
        ("hf.safetensors", Format::Safetensors, Layout::HuggingFace, "fp32"),
    ] {
        let file = fixture(name);
        assert_eq!(import::inspect(&file).unwrap(), format, "{name}");
        let weights = import::read_weights(&file, &config()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((weights.format, weights.layout), (format, layout), "{name}");
        let kind = weights.tensors["base_model.visual.proj"].kind();
        let saved = match rounding {
            "fp16" => Kind::Half,
            "bf16" => Kind::BFloat16,
            _ => Kind::Float,
        };
        assert_eq!(kind, saved, "{name}: tensors come in the file's dtype");
        if rounding == "fp32" {
            let mut names: Vec<_> = weights.tensors.keys().collect();
            names.sort();
            let mut want: Vec<_> = reference.keys().collect();
            want.sort();
            assert_eq!(names, want, "{name}: the reference names, nothing more");
            for (k, t) in &weights.tensors {
                // Resized position embeddings: the same libtorch bilinear kernel as PyTorch's.
                assert_close(&format!("{name}: {k}"), t, &reference[k], Some(1e-6));
            }
        }
        let (image, text) = features(&weights.tensors, &file, false);
        assert_close(
            &format!("{name}: image features"),
            &image,
            &expected[&format!("{rounding}/image")],
            Some(FEATURE_ATOL),
        );
        assert_close(
            &format!("{name}: text features"),
            &text,
            &expected[&format!("{rounding}/text")],
            Some(FEATURE_ATOL),
        );
    }
}

/// The error of reading `file`, which must name it.
fn read_error(file: &Path) -> String {
    let err = match import::read_weights(file, &config()) {
        Ok(w) => panic!("{}: read {w}", file.display()),
        Err(e) => e.to_string(),
    };
    let inspected = import::inspect(file)
        .expect_err("inspect refuses it too")
        .to_string();
    assert_eq!(err, inspected, "reading and checking agree");
    assert!(err.contains(&file.display().to_string()), "{err}");
    err
}

#[test]
fn bad_files_are_refused_with_the_file_the_reason_and_the_fix() {
    let dir = cli::scratch("weights-bad");
    let cut = |from: &str, to: &str, fraction: f64| {
        let bytes = std::fs::read(fixture(from)).unwrap();
        let path = dir.join(to);
        std::fs::write(&path, &bytes[..(bytes.len() as f64 * fraction) as usize]).unwrap();
        path
    };
    for (file, wanted) in [
        (cut("reference.safetensors", "cut.safetensors", 0.5), "truncated"),
        (cut("irra-fp32.pth", "cut.pth", 0.6), "truncated"),
        (cut("openai.pt", "cut.pt", 0.6), "truncated"),
        (
            cut("reference.safetensors", "header.safetensors", 0.0001),
            "truncated",
        ),
    ] {
        let err = read_error(&file);
        assert!(err.contains(wanted) && err.contains("download it again"), "{err}");
    }

    let html = dir.join("model.safetensors");
    std::fs::write(&html, "<!DOCTYPE html><html>Access denied</html>").unwrap();
    let err = read_error(&html);
    assert!(
        err.contains("not a weights file") && err.contains("<!DOCTYPE"),
        "{err}"
    );
    let err = read_error(&fixture("legacy.pth"));
    assert!(
        err.contains("legacy") && err.contains("torch.save(torch.load("),
        "{err}"
    );
    let err = read_error(&fixture("foreign-global.pth"));
    assert!(
        err.contains("`os.system`")
            && err.contains("not a plain state dict; refusing to run pickle code")
            && err.contains("save the state dict alone"),
        "{err}"
    );
    let err = read_error(&fixture("not-a-state-dict.pth"));
    assert!(
        err.contains("`model` → `w` holds a Python int, not a tensor"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn mismatches_name_the_parameters_and_shapes() {
    let dir = cli::scratch("weights-mismatch");
    let reference = read_safetensors(&fixture("reference.safetensors")).unwrap();
    let load = |tensors: HashMap<String, Tensor>, config: &ModelConfig| -> String {
        let file = dir.join("edited.safetensors");
        let named: Vec<_> = tensors.iter().collect();
        Tensor::write_safetensors(&named, &file).unwrap();
        let vs = VarStore::new(Device::Cpu);
        let _clip = Clip::new(&vs.root(), config);
        let err = import::read_weights(&file, config)
            .map_err(|e| e.to_string())
            .and_then(|w| {
                load_named(&vs, &w.tensors, &file, Strictness::default()).map_err(|e| e.to_string())
            })
            .expect_err("the edited file does not load");
        assert!(err.contains(&file.display().to_string()), "{err}");
        err
    };
    let edited = |edit: &dyn Fn(&mut HashMap<String, Tensor>)| {
        let mut t: HashMap<String, Tensor> = reference.iter().map(|(k, v)| (k.clone(), v.copy())).collect();
        edit(&mut t);
        t
    };

    let missing = edited(&|t| {
        t.remove("base_model.ln_final.weight");
        t.remove("base_model.visual.proj");
    });
    let err = load(missing, &config());
    assert!(
        err.contains("2 parameter(s) of the model are missing")
            && err.contains("base_model.ln_final.weight")
            && err.contains("base_model.visual.proj"),
        "{err}"
    );
    let unexpected = edited(&|t| {
        t.insert(
            "base_model.visual.extra".into(),
            Tensor::zeros([2], (Kind::Float, Device::Cpu)),
        );
    });
    let err = load(unexpected, &config());
    assert!(
        err.contains("match no parameter") && err.contains("base_model.visual.extra"),
        "{err}"
    );
    let shape = edited(&|t| {
        t.insert(
            "base_model.text_projection".into(),
            Tensor::zeros([32, 16], (Kind::Float, Device::Cpu)),
        );
    });
    let err = load(shape, &config());
    assert!(
        err.contains(
            "`base_model.text_projection` has shape [32, 16] in the file, the model expects [32, 32]"
        ),
        "{err}"
    );
    // 4×2 patches in the file; a 5×2 model cannot take them and no square grid explains them.
    let mut taller = config();
    taller.image_size = [80, 32];
    let err = load(edited(&|_| {}), &taller);
    assert!(
        err.contains("`base_model.visual.positional_embedding` has 8 patch positions")
            && err.contains("5×2 grid")
            && err.contains("model.image_size"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// A tiny fine-tuning spec on the fixtures' model: one epoch from the torch.save
/// checkpoint, from the same weights as safetensors, and from scratch.
fn finetune_spec() -> String {
    let mut model = toml::Table::try_from(config()).unwrap();
    model.insert("preset".into(), "tiny".into());
    let init = |name: &str| fixture(name).display().to_string();
    format!(
        r#"
[experiment]
name = "finetune"
seeds = [1]
output = "out"

[base.model]
{model}
[base.data]
train = {{ plugin = "synthetic-persons", train_ids = 6, images_per_id = 2, test_ids = 4, val_ids = 2 }}
eval = [{{ plugin = "synthetic-persons", name = "synth", split = "test", train_ids = 6, images_per_id = 2, test_ids = 4, val_ids = 2 }}]

[base.train]
epochs = 1
warmup_epochs = 0
batch_size = 8
lr = 1e-4
device = "cpu"
log_every = 1

[base.masking]
plugin = "random"

[base.losses]
sdm = {{}}
id = {{ weight = 1.0 }}
mtp = {{ weight = 0.3, depth = 1, heads = 2 }}

[[variant]]
name = "from-pth"
model = {{ init = {pth:?} }}

[[variant]]
name = "from-safetensors"
model = {{ init = {safetensors:?} }}

[[variant]]
name = "scratch"
"#,
        pth = init("irra-fp32.pth"),
        safetensors = init("reference.safetensors"),
    )
}

#[test]
fn fine_tuning_starts_from_a_torch_save_checkpoint_and_exports_for_pytorch() {
    let dir = cli::scratch("weights-finetune");
    let spec = dir.join("spec.toml");
    std::fs::write(&spec, finetune_spec()).unwrap();

    // `validate` opens the weights: a refused pickle stops it before anything trains.
    let foreign = format!("model.init={}", fixture("foreign-global.pth").display());
    let (out, text) = cli::gadms_run([
        OsStr::new("validate"),
        spec.as_os_str(),
        OsStr::new("--set"),
        OsStr::new(&foreign),
    ]);
    assert!(
        !out.status.success() && text.contains("`init`") && text.contains("refusing to run pickle code"),
        "{text}"
    );

    let (out, text) = cli::gadms_run([OsStr::new("run"), spec.as_os_str()]);
    assert!(out.status.success(), "{text}");
    let run = |variant: &str| dir.join("out/finetune/runs").join(variant).join("seed-1");
    let losses = |variant: &str| -> Vec<String> {
        std::fs::read_to_string(run(variant).join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|r| r["kind"] == "train" || r["kind"] == "eval")
            .map(|r| format!("{} {} {} {}", r["epoch"], r["step"], r["loss"], r["mAP"]))
            .collect()
    };
    assert!(!losses("from-pth").is_empty(), "{text}");
    assert_eq!(
        losses("from-pth"),
        losses("from-safetensors"),
        "the torch.save checkpoint trains exactly as the same weights in safetensors"
    );
    assert_ne!(losses("from-pth"), losses("scratch"), "the weights were used");

    // Export the run (its last checkpoint: there is no validation split, so no best/).
    let exported = dir.join("exported.safetensors");
    let (out, text) = cli::gadms_run([
        OsStr::new("export"),
        run("from-pth").as_os_str(),
        OsStr::new("--to"),
        exported.as_os_str(),
    ]);
    assert!(out.status.success() && text.contains("reference names"), "{text}");
    // PyTorch: load_file, load_state_dict into the reference CLIP, features; torch.save back.
    python([
        OsStr::new("forward"),
        fixtures().as_os_str(),
        exported.as_os_str(),
    ]);
    let checkpoint = run("from-pth").join("checkpoint/model.safetensors");
    let ours = read_safetensors(&checkpoint).unwrap();
    let back = import::read_reference(&fixture("export-roundtrip.pth"))
        .unwrap()
        .tensors;
    let mut names: Vec<_> = back.keys().collect();
    names.sort();
    let mut want: Vec<_> = ours.keys().collect();
    want.sort();
    assert_eq!(names, want, "PyTorch sees our names");
    for (k, t) in &ours {
        assert!(t.equal(&back[k]), "{k}: PyTorch read other values");
    }
    let (image, text) = features(&ours, &checkpoint, true);
    let theirs = features_file("export-features.safetensors");
    assert_close(
        "exported image features",
        &image,
        &theirs["image"],
        Some(FEATURE_ATOL),
    );
    assert_close(
        "exported text features",
        &text,
        &theirs["text"],
        Some(FEATURE_ATOL),
    );

    // A foreign format exports too, and a path that is not a checkpoint is named.
    let converted = dir.join("openai.safetensors");
    let (out, text) = cli::gadms_run([
        OsStr::new("export"),
        fixture("openai.pt").as_os_str(),
        OsStr::new("--to"),
        converted.as_os_str(),
    ]);
    assert!(
        out.status.success() && text.contains("TorchScript archive"),
        "{text}"
    );
    let source = import::read_reference(&fixture("openai.pt")).unwrap().tensors;
    let written = read_safetensors(&converted).unwrap();
    assert_eq!(source.len(), written.len());
    assert!(source.iter().all(|(k, t)| t.equal(&written[k])));
    let (out, text) = cli::gadms_run([
        OsStr::new("export"),
        dir.join("out").as_os_str(),
        OsStr::new("--to"),
        converted.as_os_str(),
    ]);
    assert!(
        !out.status.success() && text.contains("a folder without `model.safetensors`"),
        "{text}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
