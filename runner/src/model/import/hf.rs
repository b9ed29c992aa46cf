//! Hugging Face's CLIP layout (the `model.safetensors` of `openai/clip-vit-base-patch16`)
//! on the reference names. Three differences besides the names: attention has separate
//! q/k/v projections, concatenated here into `nn.MultiheadAttention`'s `in_proj_weight` /
//! `in_proj_bias` (rows q, k, v); the two projections are `nn.Linear` weights `[out, in]`,
//! transposed to CLIP's `[in, out]` matrices; `position_ids` buffers are not weights.

use std::collections::{BTreeMap, HashMap};

use tch::Tensor;

/// Names that map one to one.
const NAMES: &[(&str, &str)] = &[
    (
        "vision_model.embeddings.patch_embedding.weight",
        "base_model.visual.conv1.weight",
    ),
    (
        "vision_model.embeddings.class_embedding",
        "base_model.visual.class_embedding",
    ),
    (
        "vision_model.embeddings.position_embedding.weight",
        "base_model.visual.positional_embedding",
    ),
    // sic: Hugging Face's spelling.
    (
        "vision_model.pre_layrnorm.weight",
        "base_model.visual.ln_pre.weight",
    ),
    ("vision_model.pre_layrnorm.bias", "base_model.visual.ln_pre.bias"),
    (
        "vision_model.post_layernorm.weight",
        "base_model.visual.ln_post.weight",
    ),
    (
        "vision_model.post_layernorm.bias",
        "base_model.visual.ln_post.bias",
    ),
    (
        "text_model.embeddings.token_embedding.weight",
        "base_model.token_embedding.weight",
    ),
    (
        "text_model.embeddings.position_embedding.weight",
        "base_model.positional_embedding",
    ),
    ("text_model.final_layer_norm.weight", "base_model.ln_final.weight"),
    ("text_model.final_layer_norm.bias", "base_model.ln_final.bias"),
];

/// `nn.Linear` weights `[out, in]` that CLIP keeps as `[in, out]` matrices (`x @ proj`).
const TRANSPOSED: &[(&str, &str)] = &[
    ("visual_projection.weight", "base_model.visual.proj"),
    ("text_projection.weight", "base_model.text_projection"),
];

/// Block prefixes of the two encoders (followed by the block index).
const TOWERS: &[(&str, &str)] = &[
    (
        "vision_model.encoder.layers.",
        "base_model.visual.transformer.resblocks.",
    ),
    ("text_model.encoder.layers.", "base_model.transformer.resblocks."),
];

/// Names inside a block (followed by `weight` or `bias`).
const BLOCK: &[(&str, &str)] = &[
    ("self_attn.out_proj.", "attn.out_proj."),
    ("layer_norm1.", "ln_1."),
    ("layer_norm2.", "ln_2."),
    ("mlp.fc1.", "mlp.c_fc."),
    ("mlp.fc2.", "mlp.c_proj."),
];

/// The projections concatenated into `in_proj_*`, in that order.
const QKV: [&str; 3] = ["q_proj", "k_proj", "v_proj"];

/// The reference prefix of a block (`base_model.visual.transformer.resblocks.3.`) and the
/// rest of the name, for a name inside an encoder block.
fn split_block(name: &str) -> Option<(String, &str)> {
    TOWERS.iter().find_map(|(from, to)| {
        let (index, rest) = name.strip_prefix(from)?.split_once('.')?;
        index.parse::<usize>().ok()?;
        Some((format!("{to}{index}."), rest))
    })
}

/// Renames (and reshapes) Hugging Face tensors. A name that is not part of the layout is
/// kept as it is, so that loading reports it as unexpected; so are the parts of an
/// incomplete q/k/v triple, whose `in_proj_*` is then reported missing.
pub fn to_reference(tensors: HashMap<String, Tensor>) -> HashMap<String, Tensor> {
    let mut out = HashMap::new();
    // `…attn.in_proj_weight` → its q, k and v parts with their original names.
    let mut in_proj: BTreeMap<String, [Option<(String, Tensor)>; 3]> = BTreeMap::new();
    for (name, t) in tensors {
        if name == "logit_scale" || name.ends_with(".position_ids") {
            continue;
        }
        if let Some((_, to)) = NAMES.iter().find(|(from, _)| *from == name) {
            out.insert(to.to_string(), t);
            continue;
        }
        if let Some((_, to)) = TRANSPOSED.iter().find(|(from, _)| *from == name) {
            out.insert(to.to_string(), t.transpose(0, 1).contiguous());
            continue;
        }
        if let Some((block, rest)) = split_block(&name) {
            let qkv = rest.strip_prefix("self_attn.").and_then(|r| r.split_once('.'));
            if let Some((i, kind)) =
                qkv.and_then(|(proj, kind)| Some((QKV.iter().position(|p| *p == proj)?, kind)))
            {
                let key = format!("{block}attn.in_proj_{kind}");
                in_proj.entry(key).or_default()[i] = Some((name, t));
                continue;
            }
            if let Some((from, to)) = BLOCK.iter().find(|(from, _)| rest.starts_with(from)) {
                out.insert(format!("{block}{to}{}", &rest[from.len()..]), t);
                continue;
            }
        }
        out.insert(name, t);
    }
    for (name, parts) in in_proj {
        match parts {
            [Some((_, q)), Some((_, k)), Some((_, v))] => {
                out.insert(name, Tensor::cat(&[q, k, v], 0));
            }
            incomplete => out.extend(incomplete.into_iter().flatten()),
        }
    }
    out
}
