//! The cosine-similarity score, the baseline of the paper's Table 4 (method spec §2.10).
//!
//! The GA-DMS snapshot has only a dead code path for it, so this is our reading of it:
//!
//! - Text side: the hidden state entering the text encoder's last `layers` blocks (NAM's
//!   "all blocks except the last 2"), i.e. the scorer's [`ScoreInputs::text_state`] when the
//!   scorer asks for `layers` tail blocks, through `ln_final` and the text projection, at
//!   every position.
//! - Image side: the patch tokens of the *final* image features,
//!   [`ScoreInputs::image_tokens`]`[:, 1:]` (after `ln_post`/`proj`, CLS dropped). NAM takes
//!   them from an intermediate layer as well; the SDK hands the scorer only the final ones.
//! - A token's evidence is its maximum cosine over the patches of its own image.
//! - Everything after the evidence is GASS's: ReLU, the caption mask (`0 < j < eos`) and the
//!   min–max over the group, so that an ablation swaps only the source of the evidence and
//!   the sigmoid mappings see scores on the same scale.

use gadms_plugin::masking::{ScoreInputs, ScoreOutput};
use gadms_plugin::tch;

use super::normalise::{normalise, Normalisation};
use super::ops::{caption_mask, l2_normalize};

/// Scores a batch with the cosine-similarity score; shapes were checked by the caller.
pub fn score(inputs: &ScoreInputs<'_>, group: i64) -> ScoreOutput {
    tch::no_grad(|| {
        let (_, l, _) = inputs.text_state.size3().expect("checked by the caller");
        let text = l2_normalize(
            &inputs
                .ln_final
                .forward(inputs.text_state)
                .matmul(inputs.text_projection),
        ); // [B, L, E]
        let patches = inputs
            .image_tokens
            .narrow(1, 1, inputs.image_tokens.size()[1] - 1);
        let patches = l2_normalize(&patches); // [B, N - 1, E]
        let best = text.matmul(&patches.transpose(1, 2)).amax(-1, false); // [B, L]
        let evidence = best.relu() * caption_mask(inputs.eos, l, best.kind());
        normalise(&evidence, Normalisation::MinMax { group })
    })
}
