//! The plugin host against bad plugin folders, driving the real `gadms-run` binary: each
//! case must end in a clear message, never a crash. Foreign libraries are compiled here
//! from a few lines of C with the system compiler.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gadms_plugin::abi;

#[path = "common/cli.rs"]
mod cli;

/// The folder with the workspace's plugins (next to the binary).
fn workspace_plugins() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_gadms-run"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn scratch(name: &str) -> PathBuf {
    cli::scratch(&format!("plugins-{name}"))
}

/// Compiles `source` (C) into `dir/lib<name>.so`.
fn c_library(dir: &Path, name: &str, source: &str) -> PathBuf {
    let src = dir.join(format!("{name}.c"));
    std::fs::write(&src, source).unwrap();
    let lib = dir.join(format!("lib{name}{}", std::env::consts::DLL_SUFFIX));
    let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-shared", "-fPIC", "-o"])
        .arg(&lib)
        .arg(&src)
        .status()
        .expect("a C compiler (cc) is needed for this test");
    assert!(status.success(), "compiling {name}.c failed");
    std::fs::remove_file(src).unwrap();
    lib
}

/// Runs `gadms-run plugins` with `dir` added to the search path.
fn plugins_in(dir: &Path) -> (Output, String) {
    cli::gadms_run([OsStr::new("plugins"), OsStr::new("--plugin-dir"), dir.as_os_str()])
}

#[test]
fn every_kind_is_listed_from_the_built_libraries() {
    let out = cli::command().arg("plugins").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (kind, name) in [
        ("dataset", "synthetic-persons"),
        ("masking", "gadms"),
        ("masking", "every-nth"),
        ("loss", "sdm"),
    ] {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().take(2).eq([kind, name]));
        let line = line.unwrap_or_else(|| panic!("`{kind} {name}` not listed:\n{text}"));
        assert!(line.contains(".so"), "{line}");
    }
}

#[test]
fn a_file_that_is_not_a_library() {
    let dir = scratch("not-a-library");
    std::fs::write(
        dir.join(format!("libnotes{}", std::env::consts::DLL_SUFFIX)),
        "just text",
    )
    .unwrap();
    let (out, text) = plugins_in(&dir);
    assert!(!out.status.success());
    assert!(
        text.contains("libnotes") && text.contains("not a loadable library"),
        "{text}"
    );
    assert!(text.contains("sdm"), "the other plugins still load:\n{text}");
}

#[test]
fn a_library_without_the_declaration() {
    let dir = scratch("no-symbol");
    c_library(&dir, "plain", "int answer(void) { return 42; }\n");
    let (out, text) = plugins_in(&dir);
    assert!(!out.status.success());
    assert!(
        text.contains("libplain") && text.contains(abi::ABI_SYMBOL) && text.contains("declare_plugin"),
        "{text}"
    );
}

#[test]
fn a_plugin_with_another_abi_version() {
    let dir = scratch("abi");
    let wrong = abi::ABI_VERSION + 41;
    c_library(
        &dir,
        "oldabi",
        &format!("unsigned {}(void) {{ return {wrong}; }}\n", abi::ABI_SYMBOL),
    );
    let (out, text) = plugins_in(&dir);
    assert!(!out.status.success());
    let expected = format!("plugin ABI version {wrong}, runner expects {}", abi::ABI_VERSION);
    assert!(
        text.contains("liboldabi") && text.contains(&expected) && text.contains("rebuild the plugin"),
        "{text}"
    );
}

#[test]
fn a_plugin_built_by_another_compiler_names_the_differing_fields() {
    let dir = scratch("fingerprint");
    let foreign = abi::FINGERPRINT
        .lines()
        .map(|l| {
            if l.starts_with("rustc=") {
                "rustc=rustc 1.70.0 (90c541806 2023-05-31)"
            } else {
                l
            }
        })
        .map(|l| {
            if l.starts_with("profile=") {
                "profile=debug"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\\n");
    let source = format!(
        "unsigned {}(void) {{ return {}; }}\nconst char *{}(void) {{ return \"{foreign}\\n\"; }}\n",
        abi::ABI_SYMBOL,
        abi::ABI_VERSION,
        abi::FINGERPRINT_SYMBOL
    );
    c_library(&dir, "foreign", &source);
    let (out, text) = plugins_in(&dir);
    assert!(!out.status.success());
    let problem = text
        .lines()
        .find(|l| l.contains("libforeign"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        problem.contains("rustc: runner `rustc 1.") && problem.contains("plugin `rustc 1.70.0"),
        "{problem}"
    );
    assert!(
        problem.contains("profile: runner `release`, plugin `debug`"),
        "{problem}"
    );
    assert!(
        !problem.contains("target:") && problem.contains("rebuild the plugin"),
        "only differing fields: {problem}"
    );
}

#[test]
fn two_plugins_registering_the_same_name() {
    let dir = scratch("duplicate");
    let original = workspace_plugins().join(format!(
        "libgadms_template_masking{}",
        std::env::consts::DLL_SUFFIX
    ));
    std::fs::copy(
        &original,
        dir.join(format!("libcopy_of_template{}", std::env::consts::DLL_SUFFIX)),
    )
    .unwrap();
    let (out, text) = plugins_in(&dir);
    assert!(!out.status.success());
    assert!(
        text.contains("masking plugin `every-nth` is registered twice")
            && text.contains("libcopy_of_template"),
        "{text}"
    );
}

/// Runs `gadms-run validate` on a minimal spec whose `[base.masking]` table is `masking`;
/// returns whether it passed and its stderr.
fn validate_with_masking(name: &str, masking: &str) -> (bool, String) {
    validate_with(name, &format!("[base.masking]\n{masking}"))
}

/// Runs `gadms-run validate` on a minimal spec with `tables` after its data table.
fn validate_with(name: &str, tables: &str) -> (bool, String) {
    let dir = scratch(name);
    let spec = dir.join("spec.toml");
    let text = format!(
        "[experiment]\nname = \"{name}\"\n\n[base.data]\ntrain = {{ plugin = \"synthetic-persons\" }}\n\n\
         {tables}\n\n[base.losses]\nsdm = {{}}\n"
    );
    std::fs::write(&spec, text).unwrap();
    let (out, _) = cli::gadms_run([OsStr::new("validate"), spec.as_os_str()]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_spec_naming_an_unknown_plugin_lists_the_available_ones() {
    let (ok, text) = validate_with_masking("unknown-plugin", "plugin = \"gadmz\"");
    assert!(!ok);
    assert!(
        text.contains("unknown masking plugin `gadmz`")
            && text.contains("available: every-nth, gadms, none, random"),
        "{text}"
    );
    assert!(text.contains("masking.plugin"), "names the key: {text}");
}

#[test]
fn a_warm_up_as_long_as_the_training_fails_validation_naming_the_key() {
    let (ok, text) = validate_with(
        "long-warm-up",
        "[base.masking]\nplugin = \"none\"\n\n[base.train]\nepochs = 4\nwarmup_epochs = 4",
    );
    assert!(!ok);
    assert!(
        text.contains("`train.warmup_epochs` = 4") && text.contains("below the number of epochs"),
        "{text}"
    );
    let (ok, text) = validate_with(
        "short-warm-up",
        "[base.masking]\nplugin = \"none\"\n\n[base.train]\nepochs = 4\nwarmup_epochs = 1",
    );
    assert!(ok, "{text}");
}

#[test]
fn bad_augmentation_settings_fail_validation_naming_the_key() {
    for (setting, key) in [
        ("pad = -2", "train.augment.pad"),
        ("erase = 1.5", "train.augment.erase"),
        ("erase_area = [0.5, 0.1]", "train.augment.erase_area"),
    ] {
        let tables = format!("[base.masking]\nplugin = \"none\"\n\n[base.train.augment]\n{setting}");
        let (ok, text) = validate_with("augment", &tables);
        assert!(!ok && text.contains(&format!("`{key}`")), "{setting}: {text}");
    }
    let tables = "[base.masking]\nplugin = \"none\"\n\n[base.train.augment]\npad = 2\nerase = 0.0";
    let (ok, text) = validate_with("augment-ok", tables);
    assert!(ok, "{text}");
}

#[test]
fn bad_plugin_options_name_the_plugin_and_the_key() {
    let (ok, text) = validate_with_masking("bad-options", "plugin = \"gadms\"\nscorr = \"gass\"");
    assert!(!ok);
    assert!(
        text.contains("`masking` (plugin `gadms`)") && text.contains("scorr"),
        "{text}"
    );
    assert!(
        text.contains("spec.toml:9:"),
        "the line of the rejected option: {text}"
    );
}

/// A tiny synthetic experiment; variant `scorer` masks with `panicking-scorer`, variant
/// `loss` adds `panicking-loss` (both from `plugins/sdk/examples/panicking.rs`).
const PANICKING_SPEC: &str = r#"
[experiment]
name = "panics"
seeds = [1]
output = "out"

[base.model]
preset = "tiny"
vision_layers = 1
text_layers = 1

[base.data]
train = { plugin = "synthetic-persons", train_ids = 4, images_per_id = 2, test_ids = 2, val_ids = 2 }

[base.train]
epochs = 1
warmup_epochs = 0
batch_size = 4
device = "cpu"

[base.masking]
plugin = "none"

[base.losses]
sdm = {}

[[variant]]
name = "scorer"
masking = { plugin = "panicking-scorer" }

[[variant]]
name = "loss"
losses = { panicking-loss = {} }
"#;

/// A folder holding only the built `panicking` example plugin (cargo's examples folder also
/// keeps hashed copies, which would register every name twice).
fn panicking_plugin(dir: &Path) -> PathBuf {
    let name = format!("libpanicking{}", std::env::consts::DLL_SUFFIX);
    let built = workspace_plugins().join("examples").join(&name);
    assert!(
        built.is_file(),
        "{} is missing; build it with `cargo build --release --workspace --all-targets` (make build)",
        built.display()
    );
    let plugins = dir.join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::copy(built, plugins.join(name)).unwrap();
    plugins
}

#[test]
fn a_panic_in_a_configuration_getter_fails_the_run_naming_plugin_component_and_panic() {
    let dir = scratch("panicking-getters");
    let spec = dir.join("spec.toml");
    std::fs::write(&spec, PANICKING_SPEC).unwrap();
    let plugins = panicking_plugin(&dir);
    for (variant, expected) in [
        (
            "scorer",
            [
                "`masking` (plugin `panicking-scorer`)",
                "MaskingStrategy::scoring",
                "the scorer lost its tail layers",
            ],
        ),
        (
            "loss",
            [
                "`losses.panicking-loss` (plugin `panicking-loss`)",
                "Loss::uses_mtp_view",
                "the loss forgot which views it needs",
            ],
        ),
    ] {
        let (out, text) = cli::gadms_run([
            OsStr::new("run"),
            spec.as_os_str(),
            OsStr::new("--plugin-dir"),
            plugins.as_os_str(),
            OsStr::new("--only"),
            OsStr::new(variant),
        ]);
        assert!(!out.status.success(), "{variant}: the run must fail:\n{text}");
        let error = text
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or_else(|| panic!("{variant}: no error line:\n{text}"));
        for part in expected {
            assert!(error.contains(part), "{variant}: `{part}` not in: {error}");
        }
        assert!(!dir.join("out").exists(), "{variant}: nothing trained:\n{text}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}
