//! The data side of masking: from a caption's clean ids and its stored token scores to the
//! alignment text and the MTP view (method spec §3).
//!
//! Both views go through the SDK's [`select_and_replace`] (one uniform per eligible token,
//! 80/10/10, at-least-one), which is also IRRA's random masking with a constant probability.
//! The MTP view is drawn first and the noise view second, the reference's order, so a replay of
//! its recorded draws reproduces both views. The deterministic noise cut (an option, not the
//! reference's) draws nothing: with an oracle's scores it is the perfect noise mask.

use gadms_plugin::masking::{select_and_replace, sigmoid_probability, Draws, MaskedCaption, MtpView, Vocab};

/// `max / (1 + exp(-k (x - threshold)))`: a score mapped to a masking probability (§3.3).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SigmoidMap {
    pub k: f64,
    pub threshold: f64,
    pub max: f64,
}

impl SigmoidMap {
    pub fn probability(&self, x: f64) -> f64 {
        sigmoid_probability(x, self.k, self.threshold, self.max)
    }
}

/// How the MTP view chooses its tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MtpRule {
    /// Informative masking: `p = map(s)`, high scores masked more often.
    Informative(SigmoidMap),
    /// IRRA's random masking: the same `p` for every token, whatever its score.
    Constant(f64),
}

impl MtpRule {
    fn probability(&self, score: f64) -> f64 {
        match self {
            Self::Informative(map) => map.probability(score),
            Self::Constant(rate) => *rate,
        }
    }
}

/// What a deterministic noise cut does with the tokens it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoiseCut {
    /// Each becomes `<|mask|>`, GA-DMS's replacement, without draws.
    Mask,
    /// Each is removed and the tokens after it close up, padded at the end: the caption as
    /// if the noise had never been written. Not GA-DMS's; with an oracle's scores it tells
    /// what the mask tokens themselves cost apart from what the noise costs.
    Drop,
}

/// The padding id after a caption's EOT (method spec §3.2).
const PAD_ID: i64 = 0;

/// Which views a caption gets and with which probabilities.
#[derive(Debug)]
pub struct DualMasking {
    pub vocab: Vocab,
    /// `None`: no MTP view.
    pub mtp: Option<MtpRule>,
    /// Noise masking of the alignment text, `p = map(1 - s)` (low scores masked more often);
    /// `None`: the alignment text is the clean caption, without the at-least-one rule.
    pub noise: Option<SigmoidMap>,
    /// Replace the noise draw by a cut: every eligible token whose noise-ness `1 - s` lies
    /// above the noise map's threshold (where its probability passes half its maximum) is
    /// masked or dropped, every other token stays — no draws, no 80/10/10, no at-least-one.
    /// `None`: the reference's draw.
    pub noise_cut: Option<NoiseCut>,
}

impl DualMasking {
    /// The MTP probability of each position, or `None` without an MTP view.
    pub fn mtp_probabilities(&self, scores: &[f64]) -> Option<Vec<f64>> {
        self.mtp
            .map(|rule| scores.iter().map(|&s| rule.probability(s)).collect())
    }

    /// The noise probability of each position, or `None` without noise masking.
    pub fn noise_probabilities(&self, scores: &[f64]) -> Option<Vec<f64>> {
        self.noise
            .map(|map| scores.iter().map(|&s| map.probability(1.0 - s)).collect())
    }

    /// The views of one caption: `tokens` and `scores` have one entry per position.
    pub fn views(&self, tokens: &[i64], scores: &[f64], draws: &mut dyn Draws) -> MaskedCaption {
        debug_assert_eq!(tokens.len(), scores.len(), "one score per position");
        let mtp = self.mtp_probabilities(scores).map(|p| {
            let (ids, labels) = select_and_replace(tokens, &p, &self.vocab, draws);
            MtpView { ids, labels }
        });
        let alignment = match self.noise {
            Some(map) if let Some(cut) = self.noise_cut => self.cut_above(tokens, scores, map.threshold, cut),
            _ => match self.noise_probabilities(scores) {
                Some(p) => select_and_replace(tokens, &p, &self.vocab, draws).0,
                None => tokens.to_vec(),
            },
        };
        MaskedCaption { alignment, mtp }
    }

    /// `tokens` with every eligible token whose noise-ness `1 - s` exceeds `threshold` cut.
    fn cut_above(&self, tokens: &[i64], scores: &[f64], threshold: f64, cut: NoiseCut) -> Vec<i64> {
        let noisy = |t: i64, s: f64| self.vocab.is_eligible(t) && 1.0 - s > threshold;
        let pairs = tokens.iter().zip(scores);
        match cut {
            NoiseCut::Mask => pairs
                .map(|(&t, &s)| if noisy(t, s) { self.vocab.mask_id } else { t })
                .collect(),
            NoiseCut::Drop => {
                let mut kept: Vec<i64> = pairs.filter(|&(&t, &s)| !noisy(t, s)).map(|(&t, _)| t).collect();
                kept.resize(tokens.len(), PAD_ID);
                kept
            }
        }
    }
}
