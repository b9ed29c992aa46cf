//! A few training captions as the masking strategy sees them — each token with its stored
//! score, whether the alignment view masks it as noise and whether the MTP view masks it
//! for prediction — written after every epoch to `token-scores.json` so that reports draw
//! the paper's qualitative figure without loading a model.

use std::path::Path;

use gadms_plugin::masking::MaskingStrategy;
use gadms_plugin::rng::Rng;
use gadms_plugin::PluginError;
use serde::{Deserialize, Serialize};

use crate::data::loader::TokenizedSplit;
use crate::data::tokenizer::Tokenizer;
use crate::store::{write_atomic, StoreError};

/// One caption: parallel per-token vectors over its word tokens (start, end and padding
/// left out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaptionScores {
    /// Row of the score table (caption index in the training split).
    pub sample: usize,
    pub tokens: Vec<String>,
    pub scores: Vec<f32>,
    /// Masked in the text used for image–text alignment.
    pub noise_masked: Vec<bool>,
    /// Selected for masked-token prediction.
    pub mtp_masked: Vec<bool>,
    /// Whether the token lies in an injected noise span; absent when the dataset marks none.
    #[serde(default)]
    pub true_noise: Option<Vec<bool>>,
}

/// `token-scores.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenScores {
    pub epoch: usize,
    pub captions: Vec<CaptionScores>,
}

impl TokenScores {
    pub const FILE: &str = "token-scores.json";

    /// Up to `count` captions of `split`: those with known noise first (where the contrast
    /// between noise and content shows), in split order so every variant shows the same
    /// captions. The views are drawn with a fixed seed, as the loader would draw them.
    pub fn sample(
        epoch: usize,
        split: &TokenizedSplit,
        tokenizer: &Tokenizer,
        masking: &dyn MaskingStrategy,
        table: &[f32],
        count: usize,
    ) -> Result<Self, PluginError> {
        let len = split.tokens.first().map_or(0, Vec::len);
        let noisy = |i: &usize| split.noise.as_ref().is_some_and(|n| n[*i].iter().any(|&f| f));
        let mut chosen: Vec<usize> = (0..split.len()).filter(noisy).take(count).collect();
        chosen.extend((0..split.len()).filter(|i| !noisy(i)).take(count - chosen.len()));
        let captions = chosen
            .into_iter()
            .map(|i| {
                let ids = &split.tokens[i];
                let scores = &table[i * len..(i + 1) * len];
                let views = masking.mask(ids, scores, &mut Rng::derive(0, &[i as u64]))?;
                // Word tokens sit between the start token and the end token.
                let end = ids.iter().position(|&t| t == Tokenizer::EOT).unwrap_or(len);
                let words = 1..end.max(1);
                Ok(CaptionScores {
                    sample: i,
                    tokens: ids[words.clone()]
                        .iter()
                        .map(|&t| {
                            // Ids outside the CLIP vocabulary (a model with its own
                            // vocabulary) are shown as numbers.
                            tokenizer
                                .decode(&[t])
                                .map_or_else(|_| format!("#{t}"), |s| s.trim_end().to_string())
                        })
                        .collect(),
                    scores: scores[words.clone()].to_vec(),
                    noise_masked: cut_positions(ids, &views.alignment)[words.clone()].to_vec(),
                    mtp_masked: words
                        .clone()
                        .map(|p| views.mtp.as_ref().is_some_and(|m| m.labels[p] != 0))
                        .collect(),
                    true_noise: split.noise.as_ref().map(|n| n[i][words].to_vec()),
                })
            })
            .collect::<Result<_, PluginError>>()?;
        Ok(Self { epoch, captions })
    }

    pub fn write(&self, run_dir: &Path) -> Result<(), StoreError> {
        let text = serde_json::to_string(self).expect("token scores serialise");
        write_atomic(&run_dir.join(Self::FILE), text.as_bytes())
    }

    /// The file of a run, `None` when absent or unreadable (a report then leaves the run out
    /// of the figure).
    pub fn read(run_dir: &Path) -> Option<Self> {
        serde_json::from_str(&std::fs::read_to_string(run_dir.join(Self::FILE)).ok()?).ok()
    }
}

/// Which positions of the clean caption `ids` the alignment text changed or left out. A
/// masked text keeps every position, so the two compare position by position; a noise cut
/// that dropped tokens leaves the rest in order, closed up, so the text is walked as a
/// subsequence of the caption instead.
fn cut_positions(ids: &[i64], alignment: &[i64]) -> Vec<bool> {
    let eot = |tokens: &[i64]| tokens.iter().position(|&t| t == Tokenizer::EOT);
    if eot(ids) == eot(alignment) {
        return ids.iter().zip(alignment).map(|(c, a)| c != a).collect();
    }
    let mut rest = alignment.iter().peekable();
    ids.iter()
        .map(|t| {
            let kept = rest.peek() == Some(&t);
            if kept {
                rest.next();
            }
            !kept
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EOT: i64 = Tokenizer::EOT;

    #[test]
    fn a_masked_text_is_compared_position_by_position() {
        let ids = [1, 10, 11, 10, EOT, 0];
        assert_eq!(
            cut_positions(&ids, &[1, 10, 9, 10, EOT, 0]),
            [false, false, true, false, false, false]
        );
    }

    #[test]
    fn a_text_with_dropped_tokens_marks_the_dropped_ones() {
        let ids = [1, 10, 11, 10, 12, EOT, 0];
        assert_eq!(
            cut_positions(&ids, &[1, 10, 12, EOT, 0, 0, 0]),
            [false, false, true, true, false, false, false]
        );
    }
}
