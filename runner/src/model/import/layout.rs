//! Parameter names. Whatever a file was saved from, its tensors leave here under the
//! reference (IRRA/GA-DMS) state-dict names that the model's variables carry:
//! - DDP's `module.` prefix (on every name) is dropped;
//! - OpenAI CLIP's names (`visual.conv1.weight`, `token_embedding.weight`, …) gain `base_model.`;
//! - Hugging Face CLIP's names are translated ([`hf`](super::hf)).
//!
//! CLIP's learned `logit_scale` is dropped in every layout: GA-DMS fixes the temperature
//! (`model.temperature`).

use std::collections::HashMap;
use std::fmt;

use tch::Tensor;

use super::hf;

/// Whose names a file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Reference,
    OpenAi,
    HuggingFace,
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layout::Reference => "reference names",
            Layout::OpenAi => "OpenAI CLIP names",
            Layout::HuggingFace => "Hugging Face CLIP names",
        })
    }
}

/// Entries of OpenAI's archives that are not weights of the encoders: the logit scale and
/// the hyper-parameters stored next to the weights.
const OPENAI_EXTRAS: &[&str] = &["logit_scale", "input_resolution", "context_length", "vocab_size"];

/// Renames `tensors` to the reference names and says which layout they came in.
pub fn to_reference(mut tensors: HashMap<String, Tensor>) -> (Layout, HashMap<String, Tensor>) {
    const DDP: &str = "module.";
    if !tensors.is_empty() && tensors.keys().all(|k| k.starts_with(DDP)) {
        tensors = tensors
            .into_iter()
            .map(|(k, v)| (k[DDP.len()..].to_string(), v))
            .collect();
    }
    if tensors
        .keys()
        .any(|k| k.starts_with("vision_model.") || k.starts_with("text_model."))
    {
        return (Layout::HuggingFace, hf::to_reference(tensors));
    }
    if tensors.keys().any(|k| k.starts_with("visual.")) {
        let renamed = tensors
            .into_iter()
            .filter(|(k, _)| !OPENAI_EXTRAS.contains(&k.as_str()))
            .map(|(k, v)| (format!("base_model.{k}"), v))
            .collect();
        return (Layout::OpenAi, renamed);
    }
    tensors.remove("base_model.logit_scale");
    (Layout::Reference, tensors)
}
