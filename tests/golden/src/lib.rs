//! Reads the golden reference set (`manifest.json` plus safetensors files) produced by the
//! authors' GA-DMS code. The folder comes from `GADMS_GOLDEN_DIR`, defaulting to the
//! repository's copy in `tests/golden/data`, so another set with the same layout runs
//! through the same tests. Tests take shapes, configs and tolerances from the manifest,
//! never from constants of their own.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tch::{Kind, Tensor};

/// The golden folder: `GADMS_GOLDEN_DIR`, else the public set shipped in `data/`.
pub fn dir() -> PathBuf {
    std::env::var_os("GADMS_GOLDEN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("data"))
}

/// A loaded golden set.
pub struct Golden {
    pub dir: PathBuf,
    pub manifest: Value,
}

impl Golden {
    /// Loads the manifest; panics with the folder and the fix when it is absent.
    pub fn load() -> Self {
        let dir = dir();
        let path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "cannot read {}: {e}; set GADMS_GOLDEN_DIR to the golden folder",
                path.display()
            )
        });
        Self {
            manifest: serde_json::from_str(&text).expect("manifest.json is valid JSON"),
            dir,
        }
    }

    /// The manifest entry of one file, e.g. `"model_io.safetensors"`.
    pub fn file(&self, name: &str) -> &Value {
        &self.manifest["files"][name]
    }

    /// Every tensor of one safetensors file, by name.
    pub fn tensors(&self, file: &str) -> HashMap<String, Tensor> {
        let path = self.dir.join(file);
        Tensor::read_safetensors(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
            .into_iter()
            .collect()
    }

    /// The model config of the golden model (`model_io.safetensors`'s `config`).
    pub fn model_config(&self) -> &Value {
        &self.file("model_io.safetensors")["config"]
    }

    /// Suggested absolute tolerance for an output of `model_io.safetensors`, or `None` when
    /// the output must match exactly.
    pub fn atol(&self, name: &str) -> Option<f64> {
        let t = &self.file("model_io.safetensors")["tolerances"][name];
        if t.get("exact").and_then(Value::as_bool) == Some(true) {
            return None;
        }
        Some(
            t["suggested_atol"]
                .as_f64()
                .unwrap_or_else(|| panic!("no tolerance for `{name}` in the manifest")),
        )
    }
}

/// Asserts `|ours - reference| <= atol` elementwise (exact equality when `atol` is `None`),
/// printing the case, the worst element and both values when it fails.
pub fn assert_close(case: &str, ours: &Tensor, reference: &Tensor, atol: Option<f64>) {
    assert_eq!(
        ours.size(),
        reference.size(),
        "{case}: shape differs (ours vs reference)"
    );
    let ours = ours.to_device(tch::Device::Cpu).to_kind(Kind::Double);
    let reference = reference.to_device(tch::Device::Cpu).to_kind(Kind::Double);
    let diff = (&ours - &reference).abs().flatten(0, -1);
    if diff.numel() == 0 {
        return;
    }
    let worst = diff.argmax(0, false).int64_value(&[]);
    let max = diff.double_value(&[worst]);
    let tol = atol.unwrap_or(0.0);
    assert!(
        max <= tol && !max.is_nan(),
        "{case}: max |ours - reference| = {max:e} > {tol:e} at flat index {worst}: ours {}, reference {}",
        ours.flatten(0, -1).double_value(&[worst]),
        reference.flatten(0, -1).double_value(&[worst]),
    );
}
