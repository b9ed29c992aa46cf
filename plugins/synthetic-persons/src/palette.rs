//! The named colours of clothes, bags and hats, and the natural tones of hair and skin.
//!
//! The garment palette is small and its colours far apart so that a colour word in a caption
//! singles out one look a human (and a small CNN at 96×32) can tell from the others.

/// Linear-ish RGB in `[0, 1]`, the rasteriser's working colour.
pub type Rgb = [f32; 3];

/// A garment colour with a caption name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Colour {
    Red,
    Orange,
    Yellow,
    Green,
    Blue,
    Purple,
    Pink,
    Brown,
    Black,
    White,
    Grey,
}

impl Colour {
    pub const ALL: [Colour; 11] = [
        Self::Red,
        Self::Orange,
        Self::Yellow,
        Self::Green,
        Self::Blue,
        Self::Purple,
        Self::Pink,
        Self::Brown,
        Self::Black,
        Self::White,
        Self::Grey,
    ];

    /// Shoes come in the colours shoes usually have.
    pub const SHOES: [Colour; 6] = [
        Self::Black,
        Self::White,
        Self::Brown,
        Self::Grey,
        Self::Red,
        Self::Blue,
    ];

    /// The caption words for this colour (synonyms where English has them).
    pub fn names(self) -> &'static [&'static str] {
        match self {
            Self::Red => &["red"],
            Self::Orange => &["orange"],
            Self::Yellow => &["yellow"],
            Self::Green => &["green"],
            Self::Blue => &["blue"],
            Self::Purple => &["purple"],
            Self::Pink => &["pink"],
            Self::Brown => &["brown"],
            Self::Black => &["black"],
            Self::White => &["white"],
            Self::Grey => &["grey", "gray"],
        }
    }

    pub fn rgb(self) -> Rgb {
        let [r, g, b] = match self {
            Self::Red => [205, 30, 35],
            Self::Orange => [245, 135, 20],
            Self::Yellow => [245, 215, 40],
            Self::Green => [35, 145, 55],
            Self::Blue => [35, 85, 210],
            Self::Purple => [120, 45, 160],
            Self::Pink => [245, 135, 185],
            Self::Brown => [115, 70, 35],
            Self::Black => [28, 28, 30],
            Self::White => [240, 240, 236],
            Self::Grey => [125, 125, 128],
        };
        rgb8(r, g, b)
    }

    /// Whether a pattern drawn in white on this colour would vanish (it gets black instead).
    pub fn is_light(self) -> bool {
        matches!(self, Self::White | Self::Yellow | Self::Pink | Self::Orange)
    }

    /// The second colour of a striped shirt of this colour: white, or black on light colours.
    pub fn stripes(self) -> Colour {
        if self.is_light() {
            Self::Black
        } else {
            Self::White
        }
    }
}

/// A natural hair colour with a caption name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HairColour {
    Black,
    Brown,
    Blonde,
    Red,
    Grey,
}

impl HairColour {
    pub const ALL: [HairColour; 5] = [Self::Black, Self::Brown, Self::Blonde, Self::Red, Self::Grey];

    pub fn names(self) -> &'static [&'static str] {
        match self {
            Self::Black => &["black", "jet-black"],
            Self::Brown => &["brown"],
            Self::Blonde => &["blonde", "blond", "fair"],
            Self::Red => &["red", "ginger"],
            Self::Grey => &["grey", "gray"],
        }
    }

    pub fn rgb(self) -> Rgb {
        let [r, g, b] = match self {
            Self::Black => [22, 18, 16],
            Self::Brown => [100, 58, 28],
            Self::Blonde => [230, 195, 110],
            Self::Red => [185, 75, 25],
            Self::Grey => [175, 175, 170],
        };
        rgb8(r, g, b)
    }
}

/// Skin tones, an individual trait that captions never mention.
pub const SKIN_TONES: [Rgb; 5] = [
    rgb8(250, 215, 185),
    rgb8(235, 190, 150),
    rgb8(200, 150, 110),
    rgb8(150, 100, 65),
    rgb8(95, 62, 40),
];

const fn rgb8(r: u8, g: u8, b: u8) -> Rgb {
    [r as f32 / 255.0, g as f32 / 255.0, b as f32 / 255.0]
}
