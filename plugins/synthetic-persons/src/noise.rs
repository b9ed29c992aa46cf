//! Labelled caption noise: the two kinds GA-DMS is meant to mask — text that says nothing
//! about the person (web boilerplate scraped with the image) and text that says something
//! false about them (a wrong attribute). Each inserted sentence's byte range is recorded so
//! the runner can measure how well a scorer finds noisy tokens.

use std::ops::Range;

use gadms_plugin::rng::Rng;

use crate::attributes::{Fact, Identity};
use crate::captions::fact_sentence;
use crate::draw::Draw;

/// Probability that a noisy caption gets a second phrase.
const SECOND_PHRASE: f64 = 0.25;

/// Irrelevant text as it comes with images crawled from the web.
pub const WEB_PHRASES: [&str; 16] = [
    "Click here for more photos.",
    "Best price, free shipping!",
    "Photo taken in 2019 by a stranger.",
    "All rights reserved.",
    "Image may contain: outdoor.",
    "Download this stock photo now.",
    "Follow us for daily updates.",
    "Limited offer, buy two get one free!",
    "Uploaded from my phone.",
    "Shot at dusk with a cheap camera.",
    "Scroll down to see similar images.",
    "Low resolution preview only.",
    "Subscribe to our newsletter.",
    "The weather was nice that day.",
    "Posted by user123 in a public album.",
    "Sponsored content.",
];

/// How captions of one split are corrupted.
#[derive(Debug, Clone, Copy)]
pub struct NoiseConfig {
    /// Probability that a caption gets noise.
    pub rate: f64,
    /// Probability that an injected phrase states a wrong attribute rather than web text.
    pub wrong_attribute_share: f64,
}

/// Joins `sentences` into a caption, inserting noise sentences at sentence boundaries
/// (start, between two sentences or end) with probability `config.rate`. Returns the text
/// and the byte range of each inserted sentence (without the joining spaces).
pub fn inject(
    sentences: Vec<String>,
    identity: &Identity,
    config: NoiseConfig,
    rng: &mut Rng,
) -> (String, Vec<Range<usize>>) {
    let mut parts: Vec<(String, bool)> = sentences.into_iter().map(|s| (s, false)).collect();
    if rng.chance(config.rate) {
        let phrases = if rng.chance(SECOND_PHRASE) { 2 } else { 1 };
        for _ in 0..phrases {
            let (phrase, _) = noise_sentence(identity, config.wrong_attribute_share, rng);
            let at = rng.below(parts.len() as u64 + 1) as usize;
            parts.insert(at, (phrase, true));
        }
    }
    let mut text = String::new();
    let mut spans = Vec::new();
    for (sentence, noisy) in parts {
        if !text.is_empty() {
            text.push(' ');
        }
        let start = text.len();
        text.push_str(&sentence);
        if noisy {
            spans.push(start..text.len());
        }
    }
    (text, spans)
}

/// One noise sentence, and the wrong fact it states if it is not web text.
fn noise_sentence(identity: &Identity, wrong_attribute_share: f64, rng: &mut Rng) -> (String, Option<Fact>) {
    if rng.chance(wrong_attribute_share) {
        let fact = identity.wrong_fact(rng);
        (fact_sentence(identity.look.gender, fact, rng), Some(fact))
    } else {
        (rng.pick(&WEB_PHRASES).to_string(), None)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::captions::caption;

    /// The caption with each span and one adjoining space cut out.
    pub fn remove_spans(text: &str, spans: &[Range<usize>]) -> String {
        let mut kept = text.to_string();
        for span in spans.iter().rev() {
            let cut = if kept[span.end..].starts_with(' ') {
                span.start..span.end + 1
            } else if span.start > 0 {
                span.start - 1..span.end
            } else {
                span.clone()
            };
            kept.replace_range(cut, "");
        }
        kept
    }

    #[test]
    fn spans_cover_exactly_the_inserted_sentences() {
        let mut rng = Rng::new(11);
        let config = NoiseConfig {
            rate: 1.0,
            wrong_attribute_share: 0.5,
        };
        for identity in Identity::generate(&mut Rng::new(12), 60) {
            let sentences = caption(&identity.look, &mut rng);
            let clean = sentences.join(" ");
            let (text, spans) = inject(sentences, &identity, config, &mut rng);
            assert!(
                !spans.is_empty() && spans.windows(2).all(|w| w[0].end < w[1].start),
                "{spans:?}"
            );
            for span in &spans {
                let phrase = &text[span.clone()];
                assert!(
                    phrase.ends_with(['.', '!']) && phrase.starts_with(|c: char| c.is_ascii_uppercase()),
                    "{phrase}"
                );
                assert!(!clean.contains(phrase), "{phrase} in {clean}");
            }
            assert_eq!(remove_spans(&text, &spans), clean);
        }
    }

    #[test]
    fn wrong_attribute_sentences_contradict_the_identity() {
        let mut rng = Rng::new(13);
        let mut wrong = 0;
        for identity in Identity::generate(&mut Rng::new(14), 80) {
            for _ in 0..10 {
                let (text, fact) = noise_sentence(&identity, 0.5, &mut rng);
                match fact {
                    Some(fact) => {
                        wrong += 1;
                        assert!(
                            identity.look.facts().iter().any(|f| f.contradicts(fact)),
                            "{text}"
                        );
                        assert!(!identity.look.facts().contains(&fact), "{text}");
                    }
                    None => assert!(WEB_PHRASES.contains(&text.as_str())),
                }
            }
        }
        assert!(
            (300..500).contains(&wrong),
            "{wrong} of 800 wrong-attribute phrases"
        );
    }

    #[test]
    fn zero_rate_leaves_captions_clean() {
        let mut rng = Rng::new(15);
        let config = NoiseConfig {
            rate: 0.0,
            wrong_attribute_share: 0.5,
        };
        for identity in Identity::generate(&mut Rng::new(16), 20) {
            let sentences = caption(&identity.look, &mut rng);
            let clean = sentences.join(" ");
            assert_eq!(inject(sentences, &identity, config, &mut rng), (clean, vec![]));
        }
    }
}
