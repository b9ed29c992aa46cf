//! The paired image/text features the alignment losses start from, checked once so that a
//! shape mismatch is an error naming the loss and every shape rather than a libtorch message
//! from deep inside a matmul.

use gadms_plugin::loss::LossInputs;
use gadms_plugin::tch::Tensor;
use gadms_plugin::{PluginError, Result};

/// One step's image CLS features `[B, E]`, text EOS features `[B, E]` (row i is the caption
/// of image i) and person ids `[B]` int64. Features are as the encoders produced them, not
/// normalised.
pub(crate) struct Pairs<'a> {
    pub image: &'a Tensor,
    pub text: &'a Tensor,
    pub pids: &'a Tensor,
}

impl<'a> Pairs<'a> {
    /// Takes the pairs of `inputs` for the loss `loss`.
    pub fn new(loss: &str, inputs: &LossInputs<'a>) -> Result<Self> {
        let (image, text, pids) = (
            inputs.image_cls.size(),
            inputs.text_eos.size(),
            inputs.pids.size(),
        );
        if image.len() != 2 || image != text || pids != [image[0]] {
            return Err(PluginError::Data(format!(
                "`{loss}` expects image features [B, E], text features [B, E] and pids [B]; \
                 got {image:?}, {text:?} and {pids:?}"
            )));
        }
        Ok(Self {
            image: inputs.image_cls,
            text: inputs.text_eos,
            pids: inputs.pids,
        })
    }

    /// The batch size B.
    pub fn batch(&self) -> i64 {
        self.pids.size()[0]
    }
}

/// `s · x̂ · ŷᵀ` `[B, B]`: the cosine similarity of every row of `rows` `[B, E]` with every row
/// of `columns` `[B, E]`, times the logit scale `s`; `loss` names the loss in an error.
pub(crate) fn scaled_cosine(rows: &Tensor, columns: &Tensor, scale: f64, loss: &str) -> Result<Tensor> {
    let similarity = l2_normalise(rows)
        .f_matmul(&l2_normalise(columns).tr())
        .map_err(PluginError::tensor(format!("{loss} similarity")))?;
    Ok(similarity * scale)
}

/// `x / ‖x‖₂` per row of `[B, E]`, without an epsilon, as the reference divides.
pub(crate) fn l2_normalise(x: &Tensor) -> Tensor {
    x / x.norm_scalaropt_dim(2, [-1], true)
}
