//! How well token scores find known noise: the AUROC of `1 − score` as a noise detector
//! over the tokens a masking strategy may mask. GA-DMS masks a token for the alignment text
//! with a probability that falls as its score rises, so a scorer that finds noise gives
//! noise tokens low scores and an AUROC above 0.5 here.

use gadms_plugin::masking::Vocab;

/// AUROC with ties counted half (the Mann–Whitney statistic). `scores` is the score table,
/// row-major `[captions, len]`; `tokens` and `noise` give each caption's ids and noise
/// flags. `None` when either class is empty.
pub fn noise_auroc(
    scores: &[f32],
    len: usize,
    tokens: &[Vec<i64>],
    noise: &[Vec<bool>],
    vocab: &Vocab,
) -> Option<f64> {
    // (noise-ness, is noise) of every eligible token.
    let mut items: Vec<(f32, bool)> = tokens
        .iter()
        .zip(noise)
        .enumerate()
        .flat_map(|(i, (ids, flags))| {
            ids.iter()
                .zip(flags)
                .enumerate()
                .filter(|(_, (&id, _))| vocab.is_eligible(id))
                .map(move |(p, (_, &is_noise))| (1.0 - scores[i * len + p], is_noise))
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

    fn vocab() -> Vocab {
        Vocab::clip_layout(100)
    }

    #[test]
    fn perfect_inverted_and_tied_scorers() {
        let tokens = vec![vec![98, 5, 6, 7, 99, 0]];
        let noise = vec![vec![false, true, false, true, false, false]];
        // Noise tokens scored low: perfect detector. SOT/EOT/padding are ignored.
        let low = [0.9, 0.1, 0.8, 0.2, 0.0, 0.0];
        assert_eq!(noise_auroc(&low, 6, &tokens, &noise, &vocab()), Some(1.0));
        let high = [0.0, 0.9, 0.1, 0.8, 0.0, 0.0];
        assert_eq!(noise_auroc(&high, 6, &tokens, &noise, &vocab()), Some(0.0));
        let flat = [0.5; 6];
        assert_eq!(noise_auroc(&flat, 6, &tokens, &noise, &vocab()), Some(0.5));
        assert_eq!(noise_auroc(&flat, 6, &tokens, &[vec![false; 6]], &vocab()), None);
    }
}
