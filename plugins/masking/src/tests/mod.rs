//! Tests: the masking side against `masking.safetensors`, the scorers against the golden
//! model's training step (`model.safetensors`, `model_io.safetensors`), and bad input.

mod bad_input;
mod golden_masking;
mod golden_scoring;
mod oracle;

use std::collections::HashMap;

use gadms_golden::Golden;
use gadms_plugin::masking::{MaskingContext, Vocab};
use gadms_plugin::tch::Tensor;

use crate::factory::create;
use crate::options::GadmsOptions;
use crate::strategy::Strategy;

/// A `gadms` strategy from TOML options; panics with the error when they are refused.
fn gadms(ctx: &MaskingContext, options: &str) -> Strategy {
    create::<GadmsOptions>(ctx, options).unwrap_or_else(|e| panic!("options {options:?}: {e}"))
}

/// The context of the real CLIP tokenizer, from the manifest's tokenizer entry.
fn clip_context(golden: &Golden) -> MaskingContext {
    let tokenizer = golden.file("tokenizer.safetensors");
    let vocab = Vocab::clip_layout(tokenizer["vocab_size"].as_i64().expect("tokenizer vocab_size"));
    let special = &tokenizer["special_token_ids"];
    let ids = [
        ("<|mask|>", vocab.mask_id),
        ("<|startoftext|>", vocab.sot_id),
        ("<|endoftext|>", vocab.eot_id),
    ];
    for (name, id) in ids {
        assert_eq!(
            special[name].as_i64(),
            Some(id),
            "{name}: the manifest's id vs the CLIP layout"
        );
    }
    let context_length = tokenizer["context_length"]
        .as_i64()
        .expect("tokenizer context_length");
    MaskingContext {
        vocab,
        context_length,
    }
}

/// The tensors of one golden file, looked up by name with a message naming what is missing.
struct Tensors(HashMap<String, Tensor>);

impl Tensors {
    fn load(golden: &Golden, file: &str) -> Self {
        Self(golden.tensors(file))
    }

    fn get(&self, name: &str) -> &Tensor {
        self.0
            .get(name)
            .unwrap_or_else(|| panic!("golden tensor `{name}` is missing"))
    }

    fn vec<T: gadms_plugin::tch::kind::Element + Copy>(&self, name: &str) -> Vec<T> {
        Vec::<T>::try_from(self.get(name)).unwrap_or_else(|e| panic!("`{name}` as a vector: {e}"))
    }
}
