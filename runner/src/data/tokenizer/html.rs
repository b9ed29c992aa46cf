//! HTML character references, decoded the two ways the reference cleaning decodes them:
//! Python's `html.unescape` (the HTML5 rules, applied twice after ftfy) and ftfy's stricter
//! `unescape_html` (inside `fix_text`).
//!
//! The table of named references is `assets/html5_entities.tsv`, written from Python's
//! `html.entities.html5` (the WHATWG `entities.json`, 2,231 names) so that every name the
//! reference decodes is decoded here too.

use std::collections::HashMap;

use super::text::Text;
use super::TokenizerError;

const TABLE: &str = include_str!("../../../assets/html5_entities.tsv");

/// Python's `html._charref` allows at most this many characters in a reference name.
const MAX_NAME_CHARS: usize = 32;

/// ftfy's `HTML_ENTITY_RE` allows at most this many alphanumerics after `&` or `&#`.
const FTFY_MAX_NAME_CHARS: usize = 24;

/// Named references and their replacements.
pub(super) struct Entities {
    /// WHATWG name (with its `;` where the name has one) → replacement.
    named: HashMap<String, String>,
    /// Upper-cased names ftfy also decodes ("EACUTE;" → "É"), those whose upper-case form
    /// `html.unescape` would leave alone.
    shouted: HashMap<String, String>,
}

/// One decoded reference: it replaces `len` characters starting at the `&`.
struct Charref {
    len: usize,
    value: String,
}

impl Entities {
    pub fn new() -> Result<Self, TokenizerError> {
        let mut named = HashMap::new();
        for (index, line) in TABLE
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.starts_with('#'))
        {
            let bad = |reason| TokenizerError::EntityTable {
                line: index + 1,
                reason,
            };
            let (name, points) = line.split_once('\t').ok_or(bad("no tab"))?;
            let value = points
                .split(' ')
                .map(|hex| u32::from_str_radix(hex, 16).ok().and_then(char::from_u32))
                .collect::<Option<String>>()
                .ok_or(bad("bad code point"))?;
            named.insert(name.to_owned(), value);
        }
        let mut entities = Self {
            named,
            shouted: HashMap::new(),
        };
        let shouted = entities
            .named
            .iter()
            .filter(|(name, _)| name.ends_with(';') && name.to_lowercase() == **name)
            .filter_map(|(name, value)| {
                let upper = name.to_uppercase();
                let chars: Vec<char> = format!("&{upper}").chars().collect();
                entities
                    .python_charref(&chars, 0)
                    .is_none()
                    .then(|| (upper, value.to_uppercase()))
            })
            .collect();
        entities.shouted = shouted;
        Ok(entities)
    }

    /// Python's `html.unescape`: every reference matching
    /// `&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)` is decoded; a name that is
    /// not in the table decodes through its longest known prefix ("&ampx" → "&x").
    pub fn unescape(&self, text: &Text) -> Text {
        self.rewrite(text, |i| self.python_charref(&text.chars, i))
    }

    /// ftfy's `unescape_html`: only `&#?[0-9A-Za-z]{1,24};` is considered, and it is decoded
    /// when it is a whole known name (or a shouted one), or a numeric reference that Python
    /// decodes to something without a `;`.
    pub fn unescape_ftfy(&self, text: &Text) -> Text {
        self.rewrite(text, |i| self.ftfy_charref(&text.chars, i))
    }

    fn rewrite(&self, text: &Text, charref_at: impl Fn(usize) -> Option<Charref>) -> Text {
        if !text.chars.contains(&'&') {
            return text.clone();
        }
        let mut out = Text::with_capacity(text.len());
        let mut i = 0;
        while i < text.len() {
            match (text.chars[i] == '&').then(|| charref_at(i)).flatten() {
                Some(Charref { len, value }) => {
                    out.push_all(value.chars(), text.span_of(i..i + len));
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

    /// The reference Python's `html.unescape` would decode at `chars[at]` (an `&`), or `None`
    /// where it leaves the text as it is.
    fn python_charref(&self, chars: &[char], at: usize) -> Option<Charref> {
        let rest = &chars[at + 1..];
        if rest.first() == Some(&'#') {
            let (radix, digits_at) = match rest.get(1) {
                Some('x' | 'X') => (16, 2),
                _ => (10, 1),
            };
            let digits = rest[digits_at..].iter().take_while(|c| c.is_digit(radix)).count();
            if digits == 0 {
                return None;
            }
            let end = digits_at + digits;
            let semicolon = usize::from(rest.get(end) == Some(&';'));
            let value = numeric_charref(&rest[digits_at..end], radix);
            return Some(Charref {
                len: 1 + end + semicolon,
                value,
            });
        }
        let name_len = rest
            .iter()
            .take(MAX_NAME_CHARS)
            .take_while(|c| !matches!(c, '\t' | '\n' | '\x0c' | ' ' | '<' | '&' | '#' | ';'))
            .count();
        if name_len == 0 {
            return None;
        }
        let semicolon = usize::from(rest.get(name_len) == Some(&';'));
        let name: String = rest[..name_len + semicolon].iter().collect();
        if let Some(value) = self.named.get(&name) {
            return Some(Charref {
                len: 1 + name.chars().count(),
                value: value.clone(),
            });
        }
        // The longest known prefix of at least two characters; what follows it stays as text.
        (2..name_len + semicolon).rev().find_map(|prefix_len| {
            let prefix: String = rest[..prefix_len].iter().collect();
            self.named.get(&prefix).map(|value| Charref {
                len: 1 + prefix_len,
                value: value.clone(),
            })
        })
    }

    /// What ftfy's `unescape_html` would decode at `chars[at]` (an `&`).
    fn ftfy_charref(&self, chars: &[char], at: usize) -> Option<Charref> {
        let rest = &chars[at + 1..];
        let hash = usize::from(rest.first() == Some(&'#'));
        let alnum = rest[hash..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric())
            .count();
        if alnum == 0 || alnum > FTFY_MAX_NAME_CHARS || rest.get(hash + alnum) != Some(&';') {
            return None;
        }
        let len = 1 + hash + alnum + 1;
        let matched = &chars[at..at + len];
        if hash == 0 {
            let name: String = matched[1..].iter().collect();
            let value = self.named.get(&name).or_else(|| self.shouted.get(&name))?;
            return Some(Charref {
                len,
                value: value.clone(),
            });
        }
        // ftfy runs `html.unescape` on the match and keeps it only if the `;` was consumed.
        let decoded = self.python_charref(matched, 0)?;
        (decoded.len == len && !decoded.value.contains(';')).then_some(Charref {
            len,
            value: decoded.value,
        })
    }
}

/// Python's decoding of `&#<digits>;`: the HTML5 replacements for C1 and NUL, U+FFFD for
/// surrogates and out-of-range numbers, nothing for other control and non-characters.
fn numeric_charref(digits: &[char], radix: u32) -> String {
    let number = digits.iter().try_fold(0u32, |acc, c| {
        acc.checked_mul(radix)?
            .checked_add(c.to_digit(radix).expect("digits were checked"))
    });
    let Some(number) = number.filter(|&n| n <= 0x10FFFF) else {
        return '\u{FFFD}'.into();
    };
    match number {
        0x00 => '\u{FFFD}'.into(),
        0x0D => '\r'.into(),
        0x80..=0x9F => super::ftfy::windows_1252_c1(number as u8).into(),
        0xD800..=0xDFFF => '\u{FFFD}'.into(),
        0x01..=0x08 | 0x0B | 0x0E..=0x1F | 0x7F | 0xFDD0..=0xFDEF => String::new(),
        n if n & 0xFFFE == 0xFFFE => String::new(),
        n => char::from_u32(n).expect("not a surrogate, in range").into(),
    }
}
