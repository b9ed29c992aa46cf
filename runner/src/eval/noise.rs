//! How well token scores find known noise: the AUROC of `1 − score` as a noise detector
//! over the tokens a masking strategy may mask. GA-DMS masks a token for the alignment text
//! with a probability that falls as its score rises, so a scorer that finds noise gives
//! noise tokens low scores and an AUROC above 0.5 here.
//!
//! Two AUROCs: over every maskable token, and over the content words only
//! ([`super::function_words`]), since function words score near 0 for every scorer.

use gadms_plugin::masking::Vocab;
use serde_json::json;

use super::function_words::FunctionWords;

/// The noise-token AUROCs of one score table; `None` where a class is empty.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoiseAurocs {
    /// Over every token a strategy may mask.
    pub all: Option<f64>,
    /// Over the maskable tokens that are not function words.
    pub content: Option<f64>,
}

impl NoiseAurocs {
    /// Both AUROCs of `scores` (the score table, row-major `[captions, len]`) against the
    /// `noise` flags of the captions `tokens`.
    pub fn of(
        scores: &[f32],
        len: usize,
        tokens: &[Vec<i64>],
        noise: &[Vec<bool>],
        vocab: &Vocab,
        function_words: &FunctionWords<'_>,
    ) -> Self {
        let eligible = |ids: &[i64], p: usize| vocab.is_eligible(ids[p]);
        Self {
            all: noise_auroc(scores, len, tokens, noise, &eligible),
            content: noise_auroc(scores, len, tokens, noise, &|ids, p| {
                eligible(ids, p) && !function_words.at(ids, p)
            }),
        }
    }

    /// The `metrics.jsonl` record after `epoch`, `None` without an AUROC to report.
    pub fn record(&self, epoch: usize) -> Option<serde_json::Value> {
        let all = self.all?;
        Some(json!({"kind": "noise", "epoch": epoch, "auroc": all, "auroc_content": self.content}))
    }
}

/// AUROC with ties counted half (the Mann–Whitney statistic) over the positions `counts`
/// accepts (given a caption's ids and a position). `scores` is the score table, row-major
/// `[captions, len]`; `tokens` and `noise` give each caption's ids and noise flags. `None`
/// when either class is empty.
pub fn noise_auroc(
    scores: &[f32],
    len: usize,
    tokens: &[Vec<i64>],
    noise: &[Vec<bool>],
    counts: &dyn Fn(&[i64], usize) -> bool,
) -> Option<f64> {
    // (noise-ness, is noise) of every counted token.
    let mut items: Vec<(f32, bool)> = tokens
        .iter()
        .zip(noise)
        .enumerate()
        .flat_map(|(i, (ids, flags))| {
            flags
                .iter()
                .enumerate()
                .filter(|&(p, _)| counts(ids, p))
                .map(move |(p, &is_noise)| (1.0 - scores[i * len + p], is_noise))
        })
        .collect();
    let positives = items.iter().filter(|(_, n)| *n).count();
    let negatives = items.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    items.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Sum of the (1-based, tie-averaged) ranks of the positives.
    let mut rank_sum = 0.0;
    let mut start = 0;
    while start < items.len() {
        let end = start
            + items[start..]
                .iter()
                .take_while(|(v, _)| *v == items[start].0)
                .count();
        let mean_rank = (start + 1 + end) as f64 / 2.0;
        rank_sum += mean_rank * items[start..end].iter().filter(|(_, n)| *n).count() as f64;
        start = end;
    }
    let (p, n) = (positives as f64, negatives as f64);
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::tokenizer::Tokenizer;

    fn eligible(ids: &[i64], p: usize) -> bool {
        Vocab::clip_layout(100).is_eligible(ids[p])
    }

    #[test]
    fn perfect_inverted_and_tied_scorers() {
        let tokens = vec![vec![98, 5, 6, 7, 99, 0]];
        let noise = vec![vec![false, true, false, true, false, false]];
        // Noise tokens scored low: perfect detector. SOT/EOT/padding are ignored.
        let low = [0.9, 0.1, 0.8, 0.2, 0.0, 0.0];
        assert_eq!(noise_auroc(&low, 6, &tokens, &noise, &eligible), Some(1.0));
        let high = [0.0, 0.9, 0.1, 0.8, 0.0, 0.0];
        assert_eq!(noise_auroc(&high, 6, &tokens, &noise, &eligible), Some(0.0));
        let flat = [0.5; 6];
        assert_eq!(noise_auroc(&flat, 6, &tokens, &noise, &eligible), Some(0.5));
        assert_eq!(noise_auroc(&flat, 6, &tokens, &[vec![false; 6]], &eligible), None);
    }

    /// "a man in red . a green cap ." with the second sentence injected. Every function word
    /// scores 0.05, as real scorers score them; the content words' scores are chosen below.
    #[test]
    fn the_content_word_auroc_leaves_function_words_out() {
        let tokenizer = Tokenizer::clip().unwrap();
        let words = FunctionWords::new(&tokenizer);
        let ids = tokenizer.tokenize("a man in red. a green cap.", 12);
        // sot a man in red . a green cap . eot pad
        assert_eq!(ids[10], Tokenizer::EOT, "{ids:?}");
        let noise = vec![[false; 6]
            .iter()
            .chain(&[true; 4])
            .chain(&[false; 2])
            .copied()
            .collect()];
        // Content: man 0.6, red 0.3 (clean); green 0.4, cap 0.7 (noise).
        let scores = [0.0, 0.05, 0.6, 0.05, 0.3, 0.05, 0.05, 0.4, 0.7, 0.05, 0.0, 0.0];
        let aurocs = NoiseAurocs::of(&scores, 12, &[ids], &noise, &Vocab::clip_layout(49408), &words);
        // Content words, by noise-ness 1 − s: man 0.4, red 0.7 (clean); green 0.6, cap 0.3
        // (noise). Of the 2 × 2 (noise, clean) pairs, the noise token ranks higher in
        // green > man and green < red, cap < man, cap < red: 1 of 4.
        assert_eq!(aurocs.content, Some(0.25));
        // All 9 word tokens, 1 − s: clean a .95, man .4, in .95, red .7, "." .95; noise a .95,
        // green .6, cap .3, "." .95. Noise over clean (ties half): each .95 noise token beats
        // man and red and ties a, in, "." (3.5 each, 7), green beats man (1), cap nothing:
        // 8 of 4 × 5 = 20 pairs.
        assert_eq!(aurocs.all, Some(0.4));
        let record = aurocs.record(3).unwrap();
        assert_eq!(record["auroc_content"], 0.25);
        assert_eq!(record["auroc"], 0.4);
    }
}
