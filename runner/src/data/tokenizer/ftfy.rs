//! The part of `ftfy.fix_text` (ftfy 6, default settings) that the reference cleaning relies
//! on, rewritten to keep every character's source span.
//!
//! As in ftfy, the text is fixed line by line (each piece ending after a `'\n'`), and each
//! line goes through the fixes below, in ftfy's order, until a round changes nothing:
//!
//! 1. `unescape_html`: `&name;` / `&#n;` references (see [`Entities::unescape_ftfy`]). As in
//!    ftfy's "auto" mode it is switched off, for this and all later lines, once a line
//!    contains `<`, because the text then looks like HTML source.
//! 2. `fix_encoding`, **subset**: mojibake from UTF-8 read as Windows-1252 or Latin-1, the
//!    common case ("cafÃ©" → "café", "â€™" → "’", "ðŸ™‚" → "🙂"), repeated until stable so
//!    that doubly encoded text is fixed too. ftfy decides *whether* a line is mojibake with
//!    a hand-tuned badness heuristic, then re-decodes the whole line or, when that fails, the
//!    bad sequences in it. Here a line counts as mojibake when it has a byte sequence that
//!    forms valid UTF-8 *and* either decodes to a character real mojibake comes from (see
//!    [`is_mojibake_target`]) or contains a C1 control, which keeps legitimate text such as
//!    "CAFÉ’S" or "café…”" intact; then, as in ftfy, the whole line is re-decoded if it can
//!    be, otherwise each such sequence. The two heuristics disagree at the margins, e.g. ftfy
//!    misses "Ã…" and "â„¢", repaired here, and decodes random Latin-1 pairs such as "Ì°"
//!    that are kept here. Not implemented: the other single-byte encodings ftfy tries
//!    (Windows-1250/1/3/4/7, ISO-8859-2, MacRoman, CP437), hence mojibake of Greek,
//!    Cyrillic, …; `restore_byte_a0` ("Ã " for "à" whose `\xa0` became a space),
//!    `replace_lossy_sequences` and the CESU-8 "utf-8-variants".
//! 3. `fix_c1_controls`: U+0080–U+009F become their Windows-1252 characters.
//! 4. `fix_latin_ligatures`: "ﬁ" → "fi", "ĳ" → "ij", the Serbo-Croatian digraphs, ….
//! 5. `fix_character_width`: full-width and half-width forms become their NFKC form
//!    ("ＡＢＣ" → "ABC"), the ideographic space a space.
//! 6. `uncurl_quotes`: ‘ ’ ‚ ‛ ʼ → `'` and “ ” „ ‟ → `"`.
//! 7. `fix_line_breaks`: CRLF, CR, U+2028, U+2029 and U+0085 → `'\n'`.
//! 8. (`fix_surrogates` has nothing to do: a Rust string cannot hold surrogates.)
//! 9. `remove_terminal_escapes`: ANSI sequences `ESC [ digits-and-; letter`.
//! 10. `remove_control_chars`: C0 controls other than tab/LF/FF/CR, DEL, the deprecated
//!     Arabic format controls U+206A–U+206F, the BOM U+FEFF and U+FFF9–U+FFFC.
//! 11. NFC normalisation ("e\u{301}" → "é").
//!
//! ftfy also cuts lines longer than a million characters into pieces; captions never are.

use regex::Regex;
use unicode_normalization::char::{canonical_combining_class, compose, decompose_canonical};
use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};

use super::html::Entities;
use super::text::Text;

/// Windows-1252's characters for the bytes 0x80–0x9F. The five bytes it leaves undefined
/// decode to the C1 control of the same number, as in ftfy's "sloppy" codec and the HTML5
/// numeric-reference rules.
const WINDOWS_1252_C1: [char; 32] = [
    // 0x80–0x8F
    '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8D}', 'Ž', '\u{8F}',
    // 0x90–0x9F
    '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9D}', 'ž', 'Ÿ',
];

/// The Windows-1252 character of a byte in 0x80–0x9F.
pub(super) fn windows_1252_c1(byte: u8) -> char {
    WINDOWS_1252_C1[usize::from(byte - 0x80)]
}

/// The byte a character would have been read from as (sloppy) Windows-1252, which also
/// covers Latin-1: C1 controls map to their own numbers.
fn windows_1252_byte(c: char) -> Option<u8> {
    match u8::try_from(c) {
        Ok(byte) => Some(byte),
        Err(_) => WINDOWS_1252_C1
            .iter()
            .position(|&d| d == c)
            .map(|i| 0x80 + i as u8),
    }
}

/// The characters whose UTF-8 bytes, mis-read as Windows-1252, make the mojibake seen in
/// practice: Latin-1 and Latin Extended-A letters, general punctuation and symbols (U+2000
/// – U+2FFF: quotes, dashes, €, ™, arrows, …), Latin ligatures, variation selectors, the BOM,
/// U+FFFD and emoji. Leading bytes of other ranges are ordinary accented capitals ("É",
/// "Ø", …) that legitimately precede punctuation, so sequences decoding elsewhere are left
/// alone.
fn is_mojibake_target(c: char) -> bool {
    matches!(c,
        '\u{80}'..='\u{17F}'
        | '\u{2000}'..='\u{2FFF}'
        | '\u{FB00}'..='\u{FB06}'
        | '\u{FE00}'..='\u{FE0F}'
        | '\u{FEFF}'
        | '\u{FFFD}'
        | '\u{1F000}'..='\u{1FAFF}')
}

/// The Latin ligatures and digraphs ftfy's `fix_latin_ligatures` spells out.
fn ligature(c: char) -> Option<&'static str> {
    Some(match c {
        'Ĳ' => "IJ",
        'ĳ' => "ij",
        'ŉ' => "ʼn",
        'Ǳ' => "DZ",
        'ǲ' => "Dz",
        'ǳ' => "dz",
        'Ǆ' => "DŽ",
        'ǅ' => "Dž",
        'ǆ' => "dž",
        'Ǉ' => "LJ",
        'ǈ' => "Lj",
        'ǉ' => "lj",
        'Ǌ' => "NJ",
        'ǋ' => "Nj",
        'ǌ' => "nj",
        'ﬀ' => "ff",
        'ﬁ' => "fi",
        'ﬂ' => "fl",
        'ﬃ' => "ffi",
        'ﬄ' => "ffl",
        'ﬅ' => "ſt",
        'ﬆ' => "st",
        _ => return None,
    })
}

/// ftfy's `fix_character_width`: the ideographic space and the forms in U+FF01–U+FFEF that
/// NFKC changes.
fn standard_width(c: char) -> Option<String> {
    match c {
        '\u{3000}' => Some(" ".into()),
        '\u{FF01}'..='\u{FFEF}' => {
            let nfkc: String = std::iter::once(c).nfkc().collect();
            (nfkc.chars().ne(std::iter::once(c))).then_some(nfkc)
        }
        _ => None,
    }
}

fn uncurl(c: char) -> char {
    match c {
        '\u{2BC}' | '\u{2018}'..='\u{201B}' => '\'',
        '\u{201C}'..='\u{201F}' => '"',
        _ => c,
    }
}

/// Steps 3–6, which all act on single characters.
fn fix_char(c: char) -> Option<String> {
    if c.is_ascii() {
        return None;
    }
    let c1_fixed = match c {
        '\u{80}'..='\u{9F}' => windows_1252_c1(c as u8),
        _ => c,
    };
    let spelled = match ligature(c1_fixed) {
        Some(spelled) => spelled.into(),
        None => standard_width(c1_fixed).unwrap_or_else(|| c1_fixed.into()),
    };
    let fixed: String = spelled.chars().map(uncurl).collect();
    fixed.chars().ne(std::iter::once(c)).then_some(fixed)
}

fn is_unwanted_control(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}'
        | '\u{B}'
        | '\u{E}'..='\u{1F}'
        | '\u{7F}'
        | '\u{206A}'..='\u{206F}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFC}')
}

/// ftfy's `fix_text` for the subset of fixes listed in the module documentation.
pub(super) struct Ftfy {
    /// ftfy's `ANSI_RE`; `\d` is any decimal digit, as in Python.
    ansi: Regex,
}

impl Ftfy {
    pub fn new() -> Result<Self, regex::Error> {
        Ok(Self {
            ansi: Regex::new(r"\x1b\[(?:\d|;)*[a-zA-Z]")?,
        })
    }

    pub fn fix_text(&self, text: &Text, entities: &Entities) -> Text {
        let mut unescape = true;
        let mut out = Text::with_capacity(text.len());
        for line in text.lines() {
            unescape &= !line.chars.contains(&'<');
            out.append(self.fix_line(line, entities, unescape));
        }
        out
    }

    fn fix_line(&self, mut text: Text, entities: &Entities, unescape: bool) -> Text {
        loop {
            let before = text.chars.clone();
            if unescape {
                text = entities.unescape_ftfy(&text);
            }
            text = fix_encoding(text);
            text = text.map_chars(fix_char);
            text = fix_line_breaks(&text);
            text = self.remove_terminal_escapes(text);
            text = text.map_chars(|c| is_unwanted_control(c).then(String::new));
            text = nfc(text);
            if text.chars == before {
                return text;
            }
        }
    }

    fn remove_terminal_escapes(&self, text: Text) -> Text {
        if !text.chars.contains(&'\x1b') {
            return text;
        }
        let string = text.to_string();
        // Character index of every byte offset that starts a character, plus the end.
        let mut char_index = vec![0; string.len() + 1];
        for (i, (at, _)) in string.char_indices().enumerate() {
            char_index[at] = i;
        }
        char_index[string.len()] = text.len();
        let mut out = Text::with_capacity(text.len());
        let mut kept_from = 0;
        for escape in self.ansi.find_iter(&string) {
            out.extend_from(&text, kept_from..char_index[escape.start()]);
            kept_from = char_index[escape.end()];
        }
        out.extend_from(&text, kept_from..text.len());
        out
    }
}

/// Re-decodes mojibake (see the module documentation) until none is left. Like ftfy, a line
/// that contains mojibake and reads back as UTF-8 as a whole is re-decoded as a whole (so
/// that sequences outside [`is_mojibake_target`] are fixed along with it); otherwise each
/// sequence is fixed on its own.
fn fix_encoding(mut text: Text) -> Text {
    while (0..text.len()).any(|i| decode_mojibake(&text.chars[i..]).is_some()) {
        text = match decode_whole(&text) {
            Some(decoded) => decoded,
            None => decode_sequences(&text),
        };
    }
    text
}

/// The whole text read back as UTF-8 bytes that Windows-1252 displayed, if it is that.
fn decode_whole(text: &Text) -> Option<Text> {
    let bytes = text
        .chars
        .iter()
        .map(|&c| windows_1252_byte(c))
        .collect::<Option<Vec<u8>>>()?;
    let decoded = String::from_utf8(bytes).ok()?;
    let mut out = Text::with_capacity(decoded.len());
    // One byte per source character, so byte offsets are character indices.
    for (at, c) in decoded.char_indices() {
        out.push(c, text.span_of(at..at + c.len_utf8()));
    }
    Some(out)
}

/// Every mojibake sequence re-decoded on its own.
fn decode_sequences(text: &Text) -> Text {
    let mut out = Text::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match decode_mojibake(&text.chars[i..]) {
            Some((c, len)) => {
                out.push(c, text.span_of(i..i + len));
                i += len;
            }
            None => {
                out.extend_from(text, i..i + 1);
                i += 1;
            }
        }
    }
    out
}

/// The character that `chars` starts with, read back as the UTF-8 bytes that Windows-1252
/// displayed as these characters, and how many characters that takes.
fn decode_mojibake(chars: &[char]) -> Option<(char, usize)> {
    let lead = windows_1252_byte(chars[0])?;
    let len = match lead {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return None,
    };
    let mut bytes = [lead, 0, 0, 0];
    for (byte, &c) in bytes[1..len].iter_mut().zip(chars.get(1..len)?) {
        *byte = windows_1252_byte(c).filter(|b| (0x80..=0xBF).contains(b))?;
    }
    let decoded = std::str::from_utf8(&bytes[..len]).ok()?.chars().next()?;
    // C1 controls are never meant as text (ftfy counts any of them as mojibake).
    let has_c1 = chars[..len].iter().any(|c| ('\u{80}'..='\u{9F}').contains(c));
    (is_mojibake_target(decoded) || has_c1).then_some((decoded, len))
}

fn fix_line_breaks(text: &Text) -> Text {
    if !text
        .chars
        .iter()
        .any(|c| matches!(c, '\r' | '\u{2028}' | '\u{2029}' | '\u{85}'))
    {
        return text.clone();
    }
    let mut out = Text::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let len = if text.chars[i..].starts_with(&['\r', '\n']) {
            2
        } else {
            1
        };
        match text.chars[i] {
            '\r' | '\u{2028}' | '\u{2029}' | '\u{85}' => out.push('\n', text.span_of(i..i + len)),
            _ => out.extend_from(text, i..i + 1),
        }
        i += len;
    }
    out
}

/// Unicode NFC (canonical decomposition, canonical ordering, canonical composition), done
/// by hand so that a composed character spans everything it was composed from.
fn nfc(text: Text) -> Text {
    if is_nfc_quick(text.chars.iter().copied()) == IsNormalized::Yes {
        return text;
    }
    let mut decomposed = Text::with_capacity(text.len());
    for (&c, &span) in text.chars.iter().zip(&text.spans) {
        decompose_canonical(c, |d| decomposed.push(d, span));
    }
    let classes: Vec<u8> = decomposed
        .chars
        .iter()
        .map(|&c| canonical_combining_class(c))
        .collect();

    // Canonical ordering: a stable sort by class of each run of non-starters.
    let mut order: Vec<usize> = (0..decomposed.len()).collect();
    for run in order.split_mut(|&k| classes[k] == 0) {
        run.sort_by_key(|&k| classes[k]);
    }

    // Canonical composition: a character joins the last starter unless a character between
    // them blocks it (has class 0 or a class at least its own).
    let mut out = Text::with_capacity(decomposed.len());
    let mut starter: Option<usize> = None;
    let mut last_class: Option<u8> = None;
    for k in order {
        let (c, span, class) = (decomposed.chars[k], decomposed.spans[k], classes[k]);
        let blocked = last_class.is_some_and(|last| last >= class);
        if let Some(s) = starter.filter(|_| !blocked) {
            if let Some(composed) = compose(out.chars[s], c) {
                out.chars[s] = composed;
                out.spans[s] = out.spans[s].cover(span);
                continue;
            }
        }
        if class == 0 {
            starter = Some(out.len());
            last_class = None;
        } else {
            last_class = Some(class);
        }
        out.push(c, span);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(text: &str) -> String {
        let entities = Entities::new().unwrap();
        Ftfy::new()
            .unwrap()
            .fix_text(&Text::new(text), &entities)
            .to_string()
    }

    /// Expected values are ftfy 6.3.1's `fix_text` on the same strings.
    #[test]
    fn matches_ftfy_on_known_cases() {
        let cases = [
            ("caf\u{c3}\u{a9}", "café"),
            ("\u{e2}\u{20ac}\u{153}Hello\u{e2}\u{20ac}\u{9d}", "\"Hello\""),
            ("\u{f0}\u{178}\u{2122}\u{201a}", "🙂"),
            ("\u{ef}\u{ac}\u{81}ne", "fine"),
            ("na\u{ef}ve caf\u{c3}\u{a9}", "naïve café"),
            ("CAF\u{c9}\u{2019}S", "CAFÉ'S"),
            ("caf\u{e9}\u{2026}\u{201d}", "café…\""),
            ("Stra\u{df}e\u{2019}s", "Straße's"),
            ("a\u{85}b", "a…b"),
            ("a\u{80}b", "a€b"),
            ("a\u{81}b", "a\u{81}b"),
            ("a\r\nb\rc\u{2028}d", "a\nb\nc\nd"),
            ("\x1b[36;44mhi\x1b[0m", "hi"),
            ("&amp;amp;amp;", "&"),
            ("<b>&amp;amp;</b>", "<b>&amp;amp;</b>"),
            ("&EACUTE;", "É"),
            ("&SZLIG;", "SS"),
            ("&#59;", "&#59;"),
            ("ＡＢＣ", "ABC"),
            ("ﬁne", "fine"),
            ("Rene\u{301}e", "Renée"),
            ("\u{feff}bom", "bom"),
        ];
        for (input, expected) in cases {
            assert_eq!(fixed(input), expected, "fix_text({input:?})");
        }
    }

    #[test]
    fn nfc_agrees_with_the_crate() {
        let samples = [
            "Rene\u{301}e",
            "a\u{323}\u{302}",
            "a\u{302}\u{323}",
            "\u{1e0b}\u{323}",
            "e\u{301}\u{301}\u{301}",
            "\u{1100}\u{1161}\u{11a8}",
            "\u{d55c}\u{11a8}",
            "\u{301}start",
            "\u{212b}ngstr\u{f6}m",
            "o\u{308}\u{304}",
            "\u{f900}\u{2126}",
        ];
        for sample in samples {
            let ours = nfc(Text::new(sample));
            assert_eq!(ours.to_string(), sample.nfc().collect::<String>(), "{sample:?}");
            assert_eq!(ours.spans.first().map(|s| s.start), Some(0));
            assert_eq!(ours.spans.iter().map(|s| s.end).max(), Some(sample.len()));
        }
    }

    #[test]
    fn composed_characters_span_their_parts() {
        let text = nfc(Text::new("xe\u{301}y"));
        assert_eq!(text.to_string(), "xéy");
        assert_eq!(text.spans[1].range(), 1..4);
        assert_eq!(text.spans[2].range(), 4..5);
    }
}
