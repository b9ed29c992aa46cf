//! Labelled caption noise: the two kinds GA-DMS is meant to mask — text that says nothing
//! about the person (web boilerplate scraped with the image) and text that says something
//! false about them. A false statement *replaces* the true one the caption would have made,
//! as a captioning model's hallucination does, so the caption no longer says the truth about
//! that attribute anywhere: noise that competes with the content instead of sitting beside
//! it. Each noise sentence's byte range is recorded so the runner can measure how well a
//! scorer finds noisy tokens.

use std::ops::Range;

use gadms_plugin::rng::Rng;

use serde::Deserialize;

use crate::attributes::{Fact, Identity, Seen};
use crate::captions::{fact_sentence, sentences};
use crate::draw::Draw;

/// Probability that a noisy caption gets a second noise sentence.
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

/// Which wrong value a wrong-attribute sentence states (the `wrong_colour` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WrongColour {
    /// Any other value of the slot: another kind, another colour or both (hair included).
    #[default]
    Any,
    /// The stated item in a colour seen nowhere on the person; hair is never replaced.
    Absent,
    /// The stated item in the colour of another part of the person; hair is never replaced.
    Elsewhere,
}

impl WrongColour {
    /// Where the wrong colour must be seen; `None` for any wrong value.
    fn seen(self) -> Option<Seen> {
        match self {
            Self::Any => None,
            Self::Absent => Some(Seen::Nowhere),
            Self::Elsewhere => Some(Seen::Elsewhere),
        }
    }
}

/// Where a wrong-attribute sentence goes (the `wrong_placement` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WrongPlacement {
    /// In place of a true fact the caption would have stated: the caption loses that truth,
    /// so even a perfect noise mask leaves less to learn from than the clean caption.
    #[default]
    Replace,
    /// Beside the caption's true facts, about a slot it leaves unstated (a bag or hat on a
    /// person without one included): a perfect noise mask gives back the clean caption, so
    /// everything this noise costs is what masking could win back.
    Add,
}

/// How captions of one split are corrupted.
#[derive(Debug, Clone, Copy)]
pub struct NoiseConfig {
    /// Probability that a caption gets noise.
    pub rate: f64,
    /// Probability that a noise sentence states a wrong attribute rather than web text.
    pub wrong_attribute_share: f64,
    /// Which wrong value a wrong-attribute sentence states.
    pub wrong_colour: WrongColour,
    /// Whether a wrong attribute replaces a true one or comes beside them.
    pub wrong_placement: WrongPlacement,
    /// Noise sentences drawn for a noisy caption; `None`: one, or two with probability
    /// [`SECOND_PHRASE`].
    pub sentences: Option<usize>,
}

/// One noise sentence, before it is worded.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Noise {
    Web(&'static str),
    /// A wrong value of an attribute the caption would have stated truly.
    Wrong(Fact),
}

/// What the noise leaves of a caption: the facts still stated truly, in order, and the noise.
#[derive(Debug)]
struct Corruption {
    facts: Vec<Fact>,
    noise: Vec<Noise>,
}

/// The caption of a person of `gender` stating `facts`, corrupted as `config` says. The
/// wording draws from `wording` and the noise from `noise`, so a caption that gets no noise,
/// or only web text, words its facts exactly as its clean version does. Returns the text and
/// the byte range of each noise sentence (without the joining spaces).
pub fn caption(
    identity: &Identity,
    facts: Vec<Fact>,
    config: NoiseConfig,
    wording: &mut Rng,
    noise: &mut Rng,
) -> (String, Vec<Range<usize>>) {
    let gender = identity.look.gender;
    let Corruption { facts, noise: kinds } = corrupt(identity, facts, config, noise);
    let true_sentences = sentences(gender, &facts, wording);
    let phrases = kinds
        .into_iter()
        .map(|kind| match kind {
            Noise::Web(phrase) => phrase.to_string(),
            Noise::Wrong(fact) => fact_sentence(gender, fact, noise),
        })
        .collect();
    insert(true_sentences, phrases, noise)
}

/// Decides a caption's noise: none with probability 1 − `rate`, else `sentences` of them (one,
/// or two with probability [`SECOND_PHRASE`], when unset). A wrong-attribute sentence takes
/// the place of a stated fact (one true fact always stays, so the caption still describes
/// someone) or, under [`WrongPlacement::Add`], comes beside them (see [`added_fact`]). Under a
/// [`WrongColour`] other than `Any` the wrong fact's item is one that can be recoloured so;
/// when none can, the caption gets no sentence for it.
fn corrupt(identity: &Identity, mut facts: Vec<Fact>, config: NoiseConfig, rng: &mut Rng) -> Corruption {
    let mut noise = Vec::new();
    if rng.chance(config.rate) {
        let count = match config.sentences {
            Some(count) => count,
            None if rng.chance(SECOND_PHRASE) => 2,
            None => 1,
        };
        for _ in 0..count {
            let wrong = rng.chance(config.wrong_attribute_share);
            match config.wrong_placement {
                WrongPlacement::Replace if wrong && facts.len() > 1 => {
                    noise.extend(
                        replace_fact(identity, &mut facts, config.wrong_colour, rng).map(Noise::Wrong),
                    );
                }
                WrongPlacement::Add if wrong => {
                    noise.extend(
                        added_fact(identity, &facts, &noise, config.wrong_colour, rng).map(Noise::Wrong),
                    );
                }
                _ => noise.push(Noise::Web(rng.pick(&WEB_PHRASES))),
            }
        }
    }
    Corruption { facts, noise }
}

/// Removes a stated fact from `facts` and returns the wrong one that takes its place.
fn replace_fact(
    identity: &Identity,
    facts: &mut Vec<Fact>,
    wrong: WrongColour,
    rng: &mut Rng,
) -> Option<Fact> {
    let Some(seen) = wrong.seen() else {
        let truth = facts.remove(rng.below(facts.len() as u64) as usize);
        return Some(truth.contradiction(rng));
    };
    let eligible: Vec<usize> = (0..facts.len())
        .filter(|&i| !facts[i].wrong_colours(identity, seen).is_empty())
        .collect();
    if eligible.is_empty() {
        return None;
    }
    let truth = facts.remove(eligible[rng.below(eligible.len() as u64) as usize]);
    truth.recoloured(rng.pick(&truth.wrong_colours(identity, seen)))
}

/// A wrong fact about a slot that neither `stated` nor an earlier wrong sentence in `noise`
/// covers, stated beside the true facts; `None` when no slot is left (or none can be
/// recoloured as `wrong` asks).
fn added_fact(
    identity: &Identity,
    stated: &[Fact],
    noise: &[Noise],
    wrong: WrongColour,
    rng: &mut Rng,
) -> Option<Fact> {
    let covered = |slot: usize| {
        stated.iter().any(|f| f.slot() == slot)
            || noise
                .iter()
                .any(|n| matches!(n, Noise::Wrong(f) if f.slot() == slot))
    };
    let seen = wrong.seen();
    let open: Vec<Fact> = identity
        .look
        .facts()
        .into_iter()
        .filter(|f| !covered(f.slot()))
        .filter(|f| seen.is_none_or(|seen| !f.wrong_colours(identity, seen).is_empty()))
        .collect();
    if open.is_empty() {
        return None;
    }
    let truth = rng.pick(&open);
    match seen {
        None => Some(truth.contradiction(rng)),
        Some(seen) => truth.recoloured(rng.pick(&truth.wrong_colours(identity, seen))),
    }
}

/// Joins `sentences` into a caption with each of `phrases` inserted at a random sentence
/// boundary (start, between two sentences or end).
fn insert(sentences: Vec<String>, phrases: Vec<String>, rng: &mut Rng) -> (String, Vec<Range<usize>>) {
    let mut parts: Vec<(String, bool)> = sentences.into_iter().map(|s| (s, false)).collect();
    for phrase in phrases {
        let at = rng.below(parts.len() as u64 + 1) as usize;
        parts.insert(at, (phrase, true));
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::captions::chosen_facts;
    use crate::palette::Colour;

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
        for identity in Identity::generate(&mut Rng::new(12), 60) {
            let facts = chosen_facts(&identity.look, &mut rng);
            let clean = sentences(identity.look.gender, &facts, &mut rng);
            let phrases: Vec<String> = (0..1 + rng.below(2))
                .map(|_| rng.pick(&WEB_PHRASES).to_string())
                .collect();
            let (text, spans) = insert(clean.clone(), phrases.clone(), &mut rng);
            assert_eq!(spans.len(), phrases.len());
            assert!(spans.windows(2).all(|w| w[0].end < w[1].start), "{spans:?}");
            for span in &spans {
                assert!(
                    phrases.iter().any(|p| *p == text[span.clone()]),
                    "{text} {span:?}"
                );
            }
            assert_eq!(remove_spans(&text, &spans), clean.join(" "));
        }
    }

    #[test]
    fn web_text_leaves_the_true_wording_unchanged() {
        let config = NoiseConfig {
            rate: 1.0,
            wrong_attribute_share: 0.0,
            wrong_colour: WrongColour::Any,
            wrong_placement: WrongPlacement::Replace,
            sentences: None,
        };
        let mut noise = Rng::new(19);
        for (i, identity) in Identity::generate(&mut Rng::new(20), 60).iter().enumerate() {
            let wording = Rng::new(i as u64);
            let facts = chosen_facts(&identity.look, &mut noise);
            let clean = sentences(identity.look.gender, &facts, &mut wording.clone()).join(" ");
            let (text, spans) = caption(identity, facts, config, &mut wording.clone(), &mut noise);
            assert!(!spans.is_empty());
            assert!(
                spans.iter().all(|s| WEB_PHRASES.contains(&&text[s.clone()])),
                "{text}"
            );
            assert_eq!(remove_spans(&text, &spans), clean);
        }
    }

    #[test]
    fn a_wrong_attribute_replaces_the_stated_truth_of_its_slot() {
        let mut rng = Rng::new(13);
        let config = NoiseConfig {
            rate: 1.0,
            wrong_attribute_share: 1.0,
            wrong_colour: WrongColour::Any,
            wrong_placement: WrongPlacement::Replace,
            sentences: None,
        };
        let mut replaced = 0;
        for identity in Identity::generate(&mut Rng::new(14), 80) {
            for _ in 0..10 {
                let stated = chosen_facts(&identity.look, &mut rng);
                let Corruption { facts, noise } = corrupt(&identity, stated.clone(), config, &mut rng);
                assert!(!facts.is_empty() && facts.iter().all(|f| stated.contains(f)));
                assert_eq!(facts.len() + noise.len(), stated.len(), "{stated:?} → {facts:?}");
                for kind in noise {
                    let Noise::Wrong(wrong) = kind else {
                        panic!("web text at wrong-attribute share 1: {kind:?}")
                    };
                    replaced += 1;
                    let truth = stated
                        .iter()
                        .find(|f| f.contradicts(wrong))
                        .expect("its slot was stated");
                    assert!(!facts.contains(truth), "{truth:?} still stated beside {wrong:?}");
                }
            }
        }
        assert!(replaced >= 800, "{replaced}");
    }

    #[test]
    fn an_added_wrong_attribute_leaves_the_clean_caption_under_its_span() {
        let config = NoiseConfig {
            rate: 1.0,
            wrong_attribute_share: 1.0,
            wrong_colour: WrongColour::Any,
            wrong_placement: WrongPlacement::Add,
            sentences: None,
        };
        let mut noise = Rng::new(23);
        let mut added = 0;
        for (i, identity) in Identity::generate(&mut Rng::new(24), 80).iter().enumerate() {
            let truths = identity.look.facts();
            for j in 0..10 {
                let wording = Rng::new((i * 10 + j) as u64);
                let stated = chosen_facts(&identity.look, &mut noise);
                let clean = sentences(identity.look.gender, &stated, &mut wording.clone()).join(" ");
                let Corruption { facts, noise: kinds } =
                    corrupt(identity, stated.clone(), config, &mut noise.clone());
                assert_eq!(facts, stated, "an added wrong fact replaces nothing");
                let mut slots: Vec<usize> = kinds
                    .iter()
                    .map(|kind| match kind {
                        Noise::Wrong(wrong) => wrong.slot(),
                        Noise::Web(_) => panic!("web text at wrong-attribute share 1: {kind:?}"),
                    })
                    .collect();
                for kind in &kinds {
                    let Noise::Wrong(wrong) = *kind else {
                        unreachable!()
                    };
                    assert!(
                        truths.iter().any(|t| t.contradicts(wrong)),
                        "{wrong:?} is true of {truths:?}"
                    );
                    assert!(
                        stated.iter().all(|f| f.slot() != wrong.slot()),
                        "{wrong:?} beside {stated:?}"
                    );
                }
                slots.dedup();
                assert_eq!(
                    slots.len(),
                    kinds.len(),
                    "two wrong sentences on one slot: {kinds:?}"
                );
                added += kinds.len();
                let (text, spans) = caption(identity, stated, config, &mut wording.clone(), &mut noise);
                assert_eq!(remove_spans(&text, &spans), clean);
            }
        }
        assert!(added >= 600, "{added} added wrong facts");
    }

    /// The colour of every wrong fact `corrupt` states under `wrong`, checked against the
    /// identity: its replaced truth has the same item in another colour, and `check` holds
    /// for the wrong colour and the colours on the person (slot, colour).
    fn check_wrong_colours(wrong: WrongColour, check: impl Fn(Colour, usize, &[(usize, Colour)]) -> bool) {
        let config = NoiseConfig {
            rate: 1.0,
            wrong_attribute_share: 1.0,
            wrong_colour: wrong,
            wrong_placement: WrongPlacement::Replace,
            sentences: None,
        };
        let mut rng = Rng::new(21);
        let mut checked = 0;
        for identity in Identity::generate(&mut Rng::new(22), 80) {
            let on_person = identity.colours_on_person();
            for _ in 0..10 {
                let stated = chosen_facts(&identity.look, &mut rng);
                let Corruption { noise, .. } = corrupt(&identity, stated.clone(), config, &mut rng);
                for kind in noise {
                    let Noise::Wrong(wrong_fact) = kind else {
                        panic!("web text at wrong-attribute share 1: {kind:?}")
                    };
                    let truth = *stated
                        .iter()
                        .find(|f| f.contradicts(wrong_fact))
                        .expect("its slot was stated");
                    let colour = wrong_fact.colour().expect("a recoloured garment");
                    assert_eq!(
                        truth.recoloured(colour),
                        Some(wrong_fact),
                        "only the colour changes"
                    );
                    assert_ne!(truth.colour(), Some(colour));
                    assert!(
                        check(colour, truth.slot(), &on_person),
                        "{wrong:?}: {truth:?} → {wrong_fact:?} on {on_person:?}"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked >= 600, "{checked} wrong colours");
    }

    #[test]
    fn an_absent_wrong_colour_is_seen_nowhere_on_the_person() {
        check_wrong_colours(WrongColour::Absent, |colour, _, on_person| {
            on_person.iter().all(|&(_, c)| c != colour)
        });
    }

    #[test]
    fn an_elsewhere_wrong_colour_is_seen_on_another_part_only() {
        check_wrong_colours(WrongColour::Elsewhere, |colour, slot, on_person| {
            let worn = |here: bool| on_person.iter().any(|&(s, c)| c == colour && (s == slot) == here);
            worn(false) && !worn(true)
        });
    }

    #[test]
    fn noise_kinds_follow_the_share() {
        let mut rng = Rng::new(15);
        let (mut web, mut wrong) = (0, 0);
        for identity in Identity::generate(&mut Rng::new(16), 80) {
            for _ in 0..10 {
                let facts = chosen_facts(&identity.look, &mut rng);
                let config = NoiseConfig {
                    rate: 1.0,
                    wrong_attribute_share: 0.5,
                    wrong_colour: WrongColour::Any,
                    wrong_placement: WrongPlacement::Replace,
                    sentences: None,
                };
                for kind in corrupt(&identity, facts, config, &mut rng).noise {
                    match kind {
                        Noise::Web(phrase) => {
                            assert!(WEB_PHRASES.contains(&phrase));
                            web += 1
                        }
                        Noise::Wrong(_) => wrong += 1,
                    }
                }
            }
        }
        // About 1000 draws at share 0.5: sd ≈ 16.
        let share = wrong as f64 / (web + wrong) as f64;
        assert!((share - 0.5).abs() < 0.08, "{wrong} wrong of {}", web + wrong);
    }

    #[test]
    fn zero_rate_leaves_captions_clean() {
        let mut rng = Rng::new(17);
        let config = NoiseConfig {
            rate: 0.0,
            wrong_attribute_share: 0.5,
            wrong_colour: WrongColour::Any,
            wrong_placement: WrongPlacement::Replace,
            sentences: None,
        };
        for identity in Identity::generate(&mut Rng::new(18), 20) {
            let facts = chosen_facts(&identity.look, &mut rng);
            let clean = sentences(identity.look.gender, &facts, &mut rng.clone()).join(" ");
            let noisy = caption(&identity, facts, config, &mut rng.clone(), &mut rng);
            assert_eq!(noisy, (clean, vec![]));
        }
    }
}
