//! Identities: a combination of captionable attributes (the [`Look`]) plus individual traits
//! that only show in the pixels (skin tone, build, stature), as real persons share clothes
//! but not bodies.

use std::collections::HashSet;

use gadms_plugin::rng::Rng;

use crate::draw::Draw;
use crate::palette::{Colour, HairColour, Rgb, SKIN_TONES};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Gender {
    Man,
    Woman,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HairLength {
    Short,
    Medium,
    Long,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hair {
    pub colour: HairColour,
    pub length: HairLength,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpperKind {
    TShirt,
    Sweater,
    StripedShirt,
    /// Worn open over a shirt of the trait colour [`Traits::inner`].
    Jacket,
    /// Reaches the knees.
    Coat,
}

impl UpperKind {
    pub const ALL: [UpperKind; 5] = [
        Self::TShirt,
        Self::Sweater,
        Self::StripedShirt,
        Self::Jacket,
        Self::Coat,
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LowerKind {
    Trousers,
    Shorts,
    Skirt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BagKind {
    Backpack,
    Handbag,
    ShoulderBag,
}

impl BagKind {
    pub const ALL: [BagKind; 3] = [Self::Backpack, Self::Handbag, Self::ShoulderBag];
}

/// A garment (or bag) of some kind in a palette colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Item<K> {
    pub kind: K,
    pub colour: Colour,
}

/// One attribute slot with its value: what a caption phrase states. A person has exactly
/// one value per slot, so a fact of the same slot with another value contradicts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fact {
    Hair(Hair),
    Upper(Item<UpperKind>),
    Lower(Item<LowerKind>),
    Shoes(Colour),
    Bag(Option<Item<BagKind>>),
    Hat(Option<Colour>),
}

impl Fact {
    /// Whether a caption can state this fact ("no hat" is true but says little).
    pub fn is_mentionable(self) -> bool {
        !matches!(self, Self::Bag(None) | Self::Hat(None))
    }

    pub fn slot(self) -> usize {
        match self {
            Self::Hair(_) => 0,
            Self::Upper(_) => 1,
            Self::Lower(_) => 2,
            Self::Shoes(_) => 3,
            Self::Bag(_) => 4,
            Self::Hat(_) => 5,
        }
    }

    /// True when `self` and `other` describe the same slot with different values.
    pub fn contradicts(self, other: Fact) -> bool {
        self.slot() == other.slot() && self != other
    }

    /// A fact of the same slot with another value: what a caption that gets this attribute
    /// wrong states instead. Wrong bags and hats are always present items, since "no bag" is
    /// not something a caption states.
    pub fn contradiction(self, rng: &mut Rng) -> Fact {
        loop {
            let other = Look::sample(rng);
            let candidate = match self {
                Fact::Hair(_) => Fact::Hair(other.hair),
                Fact::Upper(_) => Fact::Upper(other.upper),
                Fact::Lower(_) => Fact::Lower(other.lower),
                Fact::Shoes(_) => Fact::Shoes(other.shoes),
                Fact::Bag(_) => Fact::Bag(Some(Item {
                    kind: rng.pick(&BagKind::ALL),
                    colour: rng.pick(&Colour::ALL),
                })),
                Fact::Hat(_) => Fact::Hat(Some(rng.pick(&Colour::ALL))),
            };
            if self.contradicts(candidate) {
                return candidate;
            }
        }
    }

    /// The garment colour this fact states, if it states one (hair has its own palette).
    pub fn colour(self) -> Option<Colour> {
        match self {
            Fact::Upper(item) => Some(item.colour),
            Fact::Lower(item) => Some(item.colour),
            Fact::Shoes(colour) | Fact::Hat(Some(colour)) => Some(colour),
            Fact::Bag(Some(item)) => Some(item.colour),
            Fact::Hair(_) | Fact::Bag(None) | Fact::Hat(None) => None,
        }
    }

    /// The same item in `colour` (the kind stays, so in a sentence the colour word is the
    /// only change); `None` for facts without a garment colour.
    pub fn recoloured(self, colour: Colour) -> Option<Fact> {
        match self {
            Fact::Upper(item) => Some(Fact::Upper(Item { colour, ..item })),
            Fact::Lower(item) => Some(Fact::Lower(Item { colour, ..item })),
            Fact::Shoes(_) => Some(Fact::Shoes(colour)),
            Fact::Bag(Some(item)) => Some(Fact::Bag(Some(Item { colour, ..item }))),
            Fact::Hat(Some(_)) => Some(Fact::Hat(Some(colour))),
            Fact::Hair(_) | Fact::Bag(None) | Fact::Hat(None) => None,
        }
    }

    /// The colours that would make this fact wrong while `seen` as asked on `identity`;
    /// none for a fact without a garment colour (hair).
    pub fn wrong_colours(self, identity: &Identity, seen: Seen) -> Vec<Colour> {
        if self.colour().is_none() {
            return Vec::new();
        }
        let on_person = identity.colours_on_person();
        let worn = |colour: Colour, here: bool| {
            on_person
                .iter()
                .any(|&(slot, c)| c == colour && (slot == self.slot()) == here)
        };
        Colour::ALL
            .into_iter()
            .filter(|&c| match seen {
                Seen::Nowhere => !worn(c, true) && !worn(c, false),
                Seen::Elsewhere => !worn(c, true) && worn(c, false),
            })
            .collect()
    }
}

/// Where on the person a wrong colour is seen: the split between a false colour that the
/// image can refute outright and one that only the binding of colours to parts can.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// On no part of the person.
    Nowhere,
    /// On another part of the person (never on the stated item's own part).
    Elsewhere,
}

/// The captionable attributes; unique per identity within a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Look {
    pub gender: Gender,
    pub hair: Hair,
    pub upper: Item<UpperKind>,
    pub lower: Item<LowerKind>,
    pub shoes: Colour,
    pub bag: Option<Item<BagKind>>,
    pub hat: Option<Colour>,
}

impl Look {
    /// One fact per slot, in slot order.
    pub fn facts(&self) -> [Fact; 6] {
        [
            Fact::Hair(self.hair),
            Fact::Upper(self.upper),
            Fact::Lower(self.lower),
            Fact::Shoes(self.shoes),
            Fact::Bag(self.bag),
            Fact::Hat(self.hat),
        ]
    }

    fn sample(rng: &mut Rng) -> Self {
        let gender = if rng.chance(0.5) {
            Gender::Man
        } else {
            Gender::Woman
        };
        let woman = gender == Gender::Woman;
        // Hair length and skirts follow gender often but not always: the cue is a tendency
        // the model has to learn, as in real data.
        let lengths = [HairLength::Short, HairLength::Medium, HairLength::Long];
        let length = lengths[rng.weighted(if woman {
            &[0.2, 0.35, 0.45]
        } else {
            &[0.8, 0.15, 0.05]
        })];
        let hair = Hair {
            colour: HairColour::ALL[rng.weighted(&[0.3, 0.3, 0.2, 0.1, 0.1])],
            length,
        };
        let upper = Item {
            kind: rng.pick(&UpperKind::ALL),
            colour: rng.pick(&Colour::ALL),
        };
        let lower_kinds = [LowerKind::Trousers, LowerKind::Shorts, LowerKind::Skirt];
        let lower_kind = lower_kinds[rng.weighted(if woman {
            &[0.45, 0.2, 0.35]
        } else {
            &[0.75, 0.25, 0.0]
        })];
        // Top and bottom in one colour would read as a single garment.
        let lower_colour = loop {
            let c = rng.pick(&Colour::ALL);
            if c != upper.colour {
                break c;
            }
        };
        let shoes = rng.pick(&Colour::SHOES);
        let bag = rng.chance(0.65).then(|| Item {
            kind: rng.pick(&BagKind::ALL),
            colour: rng.pick(&Colour::ALL),
        });
        let hat = rng.chance(0.3).then(|| rng.pick(&Colour::ALL));
        Self {
            gender,
            hair,
            upper,
            lower: Item {
                kind: lower_kind,
                colour: lower_colour,
            },
            shoes,
            bag,
            hat,
        }
    }
}

/// Traits that tell apart two persons with similar clothes; drawn, never captioned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Traits {
    pub skin: Rgb,
    /// Width multiplier of the body.
    pub build: f32,
    /// Height multiplier of the figure.
    pub stature: f32,
    /// Size multiplier of the head.
    pub head: f32,
    /// The shirt colour under an open jacket.
    pub inner: Colour,
    /// Which side a handbag or shoulder bag hangs on (+1 or -1).
    pub side: f32,
}

impl Traits {
    fn sample(rng: &mut Rng, gender: Gender) -> Self {
        let broad = if gender == Gender::Man { 0.05 } else { 0.0 };
        Self {
            skin: rng.pick(&SKIN_TONES),
            build: rng.range(0.9, 1.08) + broad,
            stature: rng.range(0.92, 1.0),
            head: rng.range(0.93, 1.07),
            inner: rng.pick(&[Colour::White, Colour::Black, Colour::Grey]),
            side: if rng.chance(0.5) { 1.0 } else { -1.0 },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Identity {
    pub look: Look,
    pub traits: Traits,
}

impl Identity {
    /// Every palette colour drawn on the person, with the slot of the part that shows it:
    /// the items' colours, a striped shirt's second colour and the shirt under an open jacket
    /// (both with the upper slot), and the hair where its colour shares a garment colour's
    /// name (blonde shares none).
    pub fn colours_on_person(&self) -> Vec<(usize, Colour)> {
        let look = &self.look;
        let facts = look.facts();
        let mut colours: Vec<(usize, Colour)> = facts
            .iter()
            .filter_map(|f| Some((f.slot(), f.colour()?)))
            .collect();
        let upper = Fact::Upper(look.upper).slot();
        match look.upper.kind {
            UpperKind::StripedShirt => colours.push((upper, look.upper.colour.stripes())),
            UpperKind::Jacket => colours.push((upper, self.traits.inner)),
            _ => {}
        }
        let hair = match look.hair.colour {
            HairColour::Black => Some(Colour::Black),
            HairColour::Brown => Some(Colour::Brown),
            HairColour::Red => Some(Colour::Red),
            HairColour::Grey => Some(Colour::Grey),
            HairColour::Blonde => None,
        };
        colours.extend(hair.map(|c| (Fact::Hair(look.hair).slot(), c)));
        colours
    }

    /// `count` identities with pairwise different looks. Identity `i` depends only on the
    /// draws before it, so adding test identities leaves the training ones unchanged.
    pub fn generate(rng: &mut Rng, count: usize) -> Vec<Identity> {
        let mut seen = HashSet::with_capacity(count);
        let mut identities = Vec::with_capacity(count);
        while identities.len() < count {
            let look = Look::sample(rng);
            if seen.insert(look) {
                identities.push(Identity {
                    look,
                    traits: Traits::sample(rng, look.gender),
                });
            }
        }
        identities
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_are_unique_and_generation_is_a_prefix_property() {
        let all = Identity::generate(&mut Rng::new(3), 300);
        let looks: HashSet<_> = all.iter().map(|i| i.look).collect();
        assert_eq!(looks.len(), 300);
        assert_eq!(Identity::generate(&mut Rng::new(3), 100), all[..100]);
    }

    #[test]
    fn contradictions_keep_the_slot_change_the_value_and_are_mentionable() {
        let mut rng = Rng::new(5);
        for identity in Identity::generate(&mut Rng::new(9), 100) {
            for truth in identity.look.facts() {
                let wrong = truth.contradiction(&mut rng);
                assert!(wrong.is_mentionable());
                assert!(truth.contradicts(wrong), "{truth:?} → {wrong:?}");
                assert!(!identity.look.facts().contains(&wrong));
            }
        }
    }

    #[test]
    fn some_men_and_some_women_with_skirts_only_on_women() {
        let all = Identity::generate(&mut Rng::new(1), 400);
        let women = all.iter().filter(|i| i.look.gender == Gender::Woman).count();
        assert!((120..280).contains(&women), "{women} women of 400");
        assert!(all
            .iter()
            .all(|i| i.look.lower.kind != LowerKind::Skirt || i.look.gender == Gender::Woman));
    }
}
