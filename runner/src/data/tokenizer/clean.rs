//! The reference's text cleaning, `whitespace_clean(basic_clean(text)).lower()`:
//! `ftfy.fix_text`, `html.unescape` twice, whitespace runs collapsed to one space and the
//! ends stripped, then lower-casing.

use super::ftfy::Ftfy;
use super::html::Entities;
use super::text::Text;
use super::TokenizerError;

pub(super) struct Cleaner {
    entities: Entities,
    ftfy: Ftfy,
}

impl Cleaner {
    pub fn new() -> Result<Self, TokenizerError> {
        Ok(Self {
            entities: Entities::new()?,
            ftfy: Ftfy::new()?,
        })
    }

    /// The cleaned text, each character with the bytes of `text` it came from.
    pub fn clean(&self, text: &str) -> Text {
        let fixed = self.ftfy.fix_text(&Text::new(text), &self.entities);
        let unescaped = self.entities.unescape(&self.entities.unescape(&fixed));
        lowercase(&collapse_whitespace(&unescaped))
    }
}

/// `re.sub(r"\s+", " ", text).strip()`. Python's `\s` (with the `regex` module) is Unicode
/// White_Space, as is [`char::is_whitespace`]; `str.strip` also strips U+001C–U+001F, which
/// ftfy has already removed. The space that replaces a run spans the whole run.
fn collapse_whitespace(text: &Text) -> Text {
    let mut out = Text::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let run = text.chars[i..].iter().take_while(|c| c.is_whitespace()).count();
        if run == 0 {
            out.extend_from(text, i..i + 1);
            i += 1;
            continue;
        }
        if out.len() > 0 && i + run < text.len() {
            out.push(' ', text.span_of(i..i + run));
        }
        i += run;
    }
    out
}

/// Python's `str.lower`: full Unicode lower-casing, including the context-dependent final
/// sigma. [`str::to_lowercase`] implements exactly that but gives no alignment; per
/// character it yields as many characters as [`char::to_lowercase`] does (final sigma only
/// swaps σ for ς), so the two are walked side by side to carry the spans over.
fn lowercase(text: &Text) -> Text {
    let lower = text.to_string().to_lowercase();
    let mut lower_chars = lower.chars();
    let mut out = Text::with_capacity(lower.len());
    for (&c, &span) in text.chars.iter().zip(&text.spans) {
        for _ in c.to_lowercase() {
            out.push(
                lower_chars.next().expect("same length as the per-char mapping"),
                span,
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_is_collapsed_and_stripped() {
        let cleaned = Cleaner::new().unwrap().clean(" \tA  b\u{3000}\nc \u{a0}");
        assert_eq!(cleaned.to_string(), "a b c");
        assert_eq!(cleaned.spans[1].range(), 3..5);
    }

    #[test]
    fn final_sigma_and_dotted_capital_i() {
        let cleaned = Cleaner::new().unwrap().clean("ΟΔΟΣ İ");
        assert_eq!(cleaned.to_string(), "οδος i\u{307}");
        assert_eq!(cleaned.spans[5].range(), cleaned.spans[6].range());
    }

    #[test]
    fn entities_are_decoded_after_ftfy_too() {
        let cleaner = Cleaner::new().unwrap();
        // '<' switches ftfy's own unescaping off; the two html.unescape passes still run.
        assert_eq!(
            cleaner.clean("<|mask|> &amp;amp;amp; &lt").to_string(),
            "<|mask|> &amp; <"
        );
        assert_eq!(
            cleaner.clean("&ampx; &notit; &#x41;&#65").to_string(),
            "&x; ¬it; aa"
        );
    }
}
