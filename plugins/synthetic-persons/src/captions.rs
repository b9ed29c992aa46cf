//! Captions in the style of pedestrian-retrieval annotations: each mentions a random subset
//! (at least three) of an identity's facts in random order, through varied templates and
//! synonyms, so that no two captions of a person need share a phrase.

use gadms_plugin::rng::Rng;

use crate::attributes::{BagKind, Fact, Gender, HairLength, Item, Look, LowerKind, UpperKind};
use crate::draw::Draw;
use crate::palette::Colour;

/// The fewest facts a caption mentions; every look has at least four mentionable ones
/// (hair, top, bottom, shoes).
pub const MIN_FACTS: usize = 3;

/// The facts a caption of `look` mentions, in the order it mentions them: a random subset of
/// at least [`MIN_FACTS`] mentionable ones, at most one per slot.
pub fn chosen_facts(look: &Look, rng: &mut Rng) -> Vec<Fact> {
    let mut facts: Vec<Fact> = look.facts().into_iter().filter(|f| f.is_mentionable()).collect();
    rng.shuffle(&mut facts);
    let count = MIN_FACTS + rng.below((facts.len() - MIN_FACTS + 1) as u64) as usize;
    facts.truncate(count);
    facts
}

/// `facts` about a person of `gender` worded as sentences, each capitalised and punctuated;
/// joined with single spaces they give the caption text. Noise goes in between sentences
/// (see [`crate::noise`]).
pub fn sentences(gender: Gender, facts: &[Fact], rng: &mut Rng) -> Vec<String> {
    let runs = runs(facts);
    let person = Person::new(gender);

    let intro_runs = 1 + rng.below(runs.len().min(2) as u64) as usize;
    let (intro, rest) = runs.split_at(intro_runs);
    let mut sentences = vec![intro_sentence(&person, intro, rng)];
    for run in rest {
        let sentence = match run {
            [fact] if rng.chance(0.4) => predicative(&person, *fact, rng),
            _ => {
                let verbs = if rng.chance(0.3) {
                    run[0].verb().also()
                } else {
                    run[0].verb().predicates()
                };
                format!("{} {} {}", person.pronoun, rng.pick(verbs), list(run, rng))
            }
        };
        // Now and then two sentences share one, joined by a semicolon.
        match sentences.last_mut() {
            Some(last) if rng.chance(0.2) => {
                last.push_str("; ");
                last.push_str(&sentence);
            }
            _ => sentences.push(sentence),
        }
    }
    sentences.into_iter().map(|s| finish_sentence(&s)).collect()
}

/// A standalone sentence stating one fact about a person of `gender` (used for injected
/// wrong-attribute noise, which should read like the rest of the caption).
pub fn fact_sentence(gender: Gender, fact: Fact, rng: &mut Rng) -> String {
    let person = Person::new(gender);
    let sentence = if rng.chance(0.3) {
        predicative(&person, fact, rng)
    } else {
        let verbs = if rng.chance(0.5) {
            fact.verb().also()
        } else {
            fact.verb().predicates()
        };
        format!(
            "{} {} {}",
            person.pronoun,
            rng.pick(verbs),
            noun_phrase(fact, rng)
        )
    };
    finish_sentence(&sentence)
}

struct Person {
    nouns: &'static [&'static str],
    pronoun: &'static str,
    possessive: &'static str,
}

impl Person {
    fn new(gender: Gender) -> Self {
        match gender {
            Gender::Woman => Self {
                nouns: &["woman", "lady", "girl", "young woman", "female pedestrian"],
                pronoun: "she",
                possessive: "her",
            },
            Gender::Man => Self {
                nouns: &["man", "guy", "gentleman", "young man", "male pedestrian"],
                pronoun: "he",
                possessive: "his",
            },
        }
    }

    /// A noun for the subject; sometimes one that leaves the gender unsaid.
    fn noun(&self, rng: &mut Rng) -> &'static str {
        if rng.chance(0.25) {
            rng.pick(&["person", "pedestrian", "individual"])
        } else {
            rng.pick(self.nouns)
        }
    }
}

/// How a fact attaches to its subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Wear,
    Have,
    Carry,
}

impl Verb {
    /// After a noun: "a man *wearing* …".
    fn participles(self) -> &'static [&'static str] {
        match self {
            Self::Wear => &["wearing", "in", "dressed in"],
            Self::Have => &["with"],
            Self::Carry => &["carrying", "with"],
        }
    }

    /// After a subject: "the man *wears* …".
    fn predicates(self) -> &'static [&'static str] {
        match self {
            Self::Wear => &["wears", "is wearing", "is dressed in", "has on"],
            Self::Have => &["has"],
            Self::Carry => &["carries", "is carrying", "has"],
        }
    }

    fn also(self) -> &'static [&'static str] {
        match self {
            Self::Wear => &["also wears", "is also wearing"],
            Self::Have => &["also has"],
            Self::Carry => &["also carries", "is also carrying"],
        }
    }
}

impl Fact {
    fn verb(self) -> Verb {
        match self {
            Fact::Hair(_) => Verb::Have,
            Fact::Bag(_) => Verb::Carry,
            Fact::Upper(_) | Fact::Lower(_) | Fact::Shoes(_) | Fact::Hat(_) => Verb::Wear,
        }
    }
}

/// Splits facts into maximal runs that share a verb, keeping their order, so that
/// "wearing a red jacket and blue jeans" comes out as one phrase.
fn runs(facts: &[Fact]) -> Vec<&[Fact]> {
    facts.chunk_by(|a, b| a.verb() == b.verb()).collect()
}

fn intro_sentence(person: &Person, runs: &[&[Fact]], rng: &mut Rng) -> String {
    let noun = person.noun(rng);
    // "A woman wearing a red jacket, carrying a black backpack" or
    // "The man has short brown hair and wears blue jeans".
    let fragment = rng.chance(0.5);
    let (forms, joiner): (fn(Verb) -> &'static [&'static str], _) = if fragment {
        (Verb::participles, ", ")
    } else {
        (Verb::predicates, " and ")
    };
    let determiner = if fragment {
        indefinite(noun)
    } else {
        rng.pick(&["the", "this"])
    };
    let mut parts = Vec::with_capacity(runs.len());
    let mut previous = "";
    for run in runs {
        // "with short hair, with a backpack" reads badly: take another verb if there is one.
        let choices: Vec<&str> = forms(run[0].verb())
            .iter()
            .copied()
            .filter(|v| *v != previous)
            .collect();
        let verb = if choices.is_empty() {
            previous
        } else {
            rng.pick(&choices)
        };
        parts.push(format!("{verb} {}", list(run, rng)));
        previous = verb;
    }
    format!("{determiner} {noun} {}", parts.join(joiner))
}

/// "X", "X and Y", "X, Y and Z".
fn list(facts: &[Fact], rng: &mut Rng) -> String {
    let phrases: Vec<String> = facts.iter().map(|&f| noun_phrase(f, rng)).collect();
    match phrases.as_slice() {
        [] => String::new(),
        [only] => only.clone(),
        [head @ .., last] => {
            let comma = if head.len() > 1 && rng.chance(0.3) {
                ","
            } else {
                ""
            };
            format!("{}{comma} and {last}", head.join(", "))
        }
    }
}

fn noun_phrase(fact: Fact, rng: &mut Rng) -> String {
    match fact {
        Fact::Hair(hair) => format!(
            "{} {} hair",
            rng.pick(length_names(hair.length)),
            rng.pick(hair.colour.names())
        ),
        Fact::Upper(item) => {
            let colour = colour_name(item.colour, rng);
            if item.kind == UpperKind::StripedShirt && rng.chance(0.3) {
                format!("a shirt with {colour} stripes")
            } else {
                with_article(&format!("{colour} {}", rng.pick(upper_names(item.kind))))
            }
        }
        Fact::Lower(item) => {
            let phrase = format!(
                "{} {}",
                colour_name(item.colour, rng),
                rng.pick(lower_names(item))
            );
            match item.kind {
                LowerKind::Skirt => with_article(&phrase),
                LowerKind::Trousers | LowerKind::Shorts if rng.chance(0.2) => format!("a pair of {phrase}"),
                LowerKind::Trousers | LowerKind::Shorts => phrase,
            }
        }
        Fact::Shoes(colour) => format!(
            "{} {}",
            colour_name(colour, rng),
            rng.pick(&["shoes", "sneakers", "trainers"])
        ),
        Fact::Bag(Some(bag)) => with_article(&format!(
            "{} {}",
            colour_name(bag.colour, rng),
            rng.pick(bag_names(bag.kind))
        )),
        Fact::Hat(Some(colour)) => with_article(&format!(
            "{} {}",
            colour_name(colour, rng),
            rng.pick(&["hat", "cap", "baseball cap"])
        )),
        Fact::Bag(None) | Fact::Hat(None) => unreachable!("captions mention only mentionable facts"),
    }
}

/// "her hair is short and brown", "his trousers are blue".
fn predicative(person: &Person, fact: Fact, rng: &mut Rng) -> String {
    let poss = person.possessive;
    match fact {
        Fact::Hair(hair) => format!(
            "{poss} hair is {} and {}",
            rng.pick(length_names(hair.length)),
            rng.pick(hair.colour.names())
        ),
        Fact::Upper(item) => {
            format!(
                "{poss} {} is {}",
                rng.pick(upper_names(item.kind)),
                colour_name(item.colour, rng)
            )
        }
        Fact::Lower(item) => {
            let verb = if item.kind == LowerKind::Skirt {
                "is"
            } else {
                "are"
            };
            format!(
                "{poss} {} {verb} {}",
                rng.pick(lower_names(item)),
                colour_name(item.colour, rng)
            )
        }
        Fact::Shoes(colour) => format!("{poss} shoes are {}", colour_name(colour, rng)),
        Fact::Bag(Some(bag)) => format!(
            "{poss} {} is {}",
            rng.pick(bag_names(bag.kind)),
            colour_name(bag.colour, rng)
        ),
        Fact::Hat(Some(colour)) => format!(
            "{poss} {} is {}",
            rng.pick(&["hat", "cap"]),
            colour_name(colour, rng)
        ),
        Fact::Bag(None) | Fact::Hat(None) => unreachable!("captions mention only mentionable facts"),
    }
}

fn colour_name(colour: Colour, rng: &mut Rng) -> &'static str {
    rng.pick(colour.names())
}

fn length_names(length: HairLength) -> &'static [&'static str] {
    match length {
        HairLength::Short => &["short"],
        HairLength::Medium => &["shoulder-length", "medium-length"],
        HairLength::Long => &["long"],
    }
}

fn upper_names(kind: UpperKind) -> &'static [&'static str] {
    match kind {
        UpperKind::TShirt => &["t-shirt", "tee", "short-sleeved shirt"],
        UpperKind::Sweater => &["sweater", "jumper", "pullover"],
        UpperKind::StripedShirt => &["striped shirt", "striped top"],
        UpperKind::Jacket => &["jacket", "open jacket"],
        UpperKind::Coat => &["long coat", "coat", "overcoat"],
    }
}

fn lower_names(item: Item<LowerKind>) -> &'static [&'static str] {
    match item.kind {
        LowerKind::Trousers if item.colour == Colour::Blue => &["trousers", "pants", "jeans"],
        LowerKind::Trousers => &["trousers", "pants"],
        LowerKind::Shorts => &["shorts"],
        LowerKind::Skirt => &["skirt", "knee-length skirt"],
    }
}

fn bag_names(kind: BagKind) -> &'static [&'static str] {
    match kind {
        BagKind::Backpack => &["backpack", "rucksack"],
        BagKind::Handbag => &["handbag", "purse"],
        BagKind::ShoulderBag => &["shoulder bag", "messenger bag", "crossbody bag"],
    }
}

fn indefinite(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

fn with_article(phrase: &str) -> String {
    format!("{} {phrase}", indefinite(phrase))
}

/// Capitalises the first letter and ends with a full stop.
fn finish_sentence(s: &str) -> String {
    let mut chars = s.chars();
    let first = chars.next().map(|c| c.to_ascii_uppercase()).into_iter();
    first.chain(chars).chain(std::iter::once('.')).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::attributes::Identity;

    /// A clean caption of `look`, as the dataset words one.
    pub fn caption(look: &Look, rng: &mut Rng) -> String {
        let facts = chosen_facts(look, rng);
        sentences(look.gender, &facts, rng).join(" ")
    }

    /// Whether `text` names the fact's item (by any synonym) and its colour.
    fn mentions(text: &str, fact: Fact) -> bool {
        let (items, colours): (&[&str], &[&str]) = match fact {
            Fact::Hair(h) => (&["hair"], h.colour.names()),
            Fact::Upper(i) => (
                if i.kind == UpperKind::StripedShirt {
                    &["striped", "stripes"]
                } else {
                    upper_names(i.kind)
                },
                i.colour.names(),
            ),
            Fact::Lower(i) => (lower_names(i), i.colour.names()),
            Fact::Shoes(c) => (&["shoes", "sneakers", "trainers"], c.names()),
            Fact::Bag(Some(b)) => (bag_names(b.kind), b.colour.names()),
            Fact::Hat(Some(c)) => (&["hat", "cap"], c.names()),
            Fact::Bag(None) | Fact::Hat(None) => return false,
        };
        items.iter().any(|i| text.contains(i)) && colours.iter().any(|c| text.contains(c))
    }

    #[test]
    fn captions_are_sentences_that_mention_at_least_three_facts_and_vary() {
        let mut rng = Rng::new(2);
        for identity in Identity::generate(&mut Rng::new(4), 50) {
            let texts: HashSet<String> = (0..6).map(|_| caption(&identity.look, &mut rng)).collect();
            assert!(texts.len() >= 5, "{texts:?}");
            for text in &texts {
                assert!(
                    text.starts_with(|c: char| c.is_ascii_uppercase()) && text.ends_with('.'),
                    "{text}"
                );
                assert!(!text.contains("  ") && !text.contains(" ."), "{text}");
                let named = identity
                    .look
                    .facts()
                    .iter()
                    .filter(|&&f| mentions(text, f))
                    .count();
                assert!(named >= MIN_FACTS, "{text}: {named}");
            }
        }
    }

    #[test]
    fn articles_and_lists_read_right() {
        assert_eq!(with_article("orange tee"), "an orange tee");
        assert_eq!(with_article("red cap"), "a red cap");
        assert_eq!(finish_sentence("she has long hair"), "She has long hair.");
        let facts = [Fact::Shoes(Colour::Red), Fact::Shoes(Colour::Blue)];
        let two = list(&facts, &mut Rng::new(0));
        assert!(two.contains(" and ") && !two.contains(','), "{two}");
    }

    #[test]
    fn fact_sentences_mention_the_fact() {
        let mut rng = Rng::new(8);
        for identity in Identity::generate(&mut Rng::new(6), 30) {
            for fact in identity.look.facts().into_iter().filter(|f| f.is_mentionable()) {
                let s = fact_sentence(identity.look.gender, fact, &mut rng);
                assert!(mentions(&s, fact) && s.ends_with('.'), "{s}");
            }
        }
    }
}
