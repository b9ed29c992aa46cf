//! Text that remembers where it came from.
//!
//! Cleaning rewrites a caption (entities decoded, mojibake repaired, accents composed,
//! whitespace collapsed, letters lower-cased) before it is split into tokens, yet the
//! synthetic dataset marks noise phrases by byte ranges of the *original* caption. Every
//! character therefore carries the byte range of the input it was made from; a rewrite that
//! turns several characters into others gives each output character the union of their
//! ranges.

use std::ops::Range;

/// Byte range of the original text that a character stems from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    /// The smallest span covering both.
    pub fn cover(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    pub fn range(self) -> Range<usize> {
        self.start..self.end
    }
}

/// Characters with their source spans, kept as two parallel vectors so that the matching
/// code can work on a plain `&[char]`.
#[derive(Clone, Debug)]
pub(super) struct Text {
    pub chars: Vec<char>,
    pub spans: Vec<Span>,
}

impl Text {
    /// Each character of `text` spans its own UTF-8 bytes.
    pub fn new(text: &str) -> Self {
        let (chars, spans) = text
            .char_indices()
            .map(|(at, c)| {
                (
                    c,
                    Span {
                        start: at,
                        end: at + c.len_utf8(),
                    },
                )
            })
            .unzip();
        Self { chars, spans }
    }

    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            chars: Vec::with_capacity(capacity),
            spans: Vec::with_capacity(capacity),
        }
    }

    pub fn len(&self) -> usize {
        self.chars.len()
    }

    pub fn push(&mut self, c: char, span: Span) {
        self.chars.push(c);
        self.spans.push(span);
    }

    /// Appends every character of `replacement`, each spanning `span`.
    pub fn push_all(&mut self, replacement: impl IntoIterator<Item = char>, span: Span) {
        for c in replacement {
            self.push(c, span);
        }
    }

    /// Appends `src[range]` unchanged, spans included.
    pub fn extend_from(&mut self, src: &Text, range: Range<usize>) {
        self.chars.extend_from_slice(&src.chars[range.clone()]);
        self.spans.extend_from_slice(&src.spans[range]);
    }

    /// The span covering the characters in `range` (which must not be empty).
    pub fn span_of(&self, range: Range<usize>) -> Span {
        self.spans[range]
            .iter()
            .copied()
            .reduce(Span::cover)
            .expect("span of an empty range")
    }

    /// Splits into consecutive pieces, each ending after a `'\n'` (the last one may not).
    pub fn lines(&self) -> Vec<Text> {
        let mut pieces = Vec::new();
        let mut start = 0;
        for (i, &c) in self.chars.iter().enumerate() {
            if c == '\n' {
                pieces.push(self.slice(start..i + 1));
                start = i + 1;
            }
        }
        if start < self.len() {
            pieces.push(self.slice(start..self.len()));
        }
        pieces
    }

    /// Appends `other` in place.
    pub fn append(&mut self, mut other: Text) {
        self.chars.append(&mut other.chars);
        self.spans.append(&mut other.spans);
    }

    /// Applies a per-character rewrite: `f` returns `None` to keep the character or the
    /// characters that replace it (possibly none).
    pub fn map_chars(&self, mut f: impl FnMut(char) -> Option<String>) -> Text {
        let mut out = Text::with_capacity(self.len());
        for (&c, &span) in self.chars.iter().zip(&self.spans) {
            match f(c) {
                Some(replacement) => out.push_all(replacement.chars(), span),
                None => out.push(c, span),
            }
        }
        out
    }

    fn slice(&self, range: Range<usize>) -> Text {
        Text {
            chars: self.chars[range.clone()].to_vec(),
            spans: self.spans[range].to_vec(),
        }
    }
}

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.chars
            .iter()
            .try_for_each(|c| std::fmt::Write::write_char(f, *c))
    }
}
