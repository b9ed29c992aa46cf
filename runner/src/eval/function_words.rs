//! Function words: the tokens that carry grammar, not content. A caption's articles,
//! prepositions and punctuation get scores near 0 from every scorer, noise or not, so
//! counting them dilutes a noise-token AUROC towards whatever a scorer does with them; the
//! content-word AUROC ([`super::noise`]) leaves them out. This file is the one place that
//! says which tokens they are.

use std::collections::HashSet;

use crate::data::tokenizer::Tokenizer;

/// Whole words that are function words (lower-case, as the tokenizer lower-cases text):
/// articles and determiners, personal and possessive pronouns, prepositions, conjunctions,
/// and the copula and auxiliary verbs. Content words — nouns, adjectives, the verbs of
/// wearing and carrying, colours, numbers — are everything else.
#[rustfmt::skip]
pub const FUNCTION_WORDS: &[&str] = &[
    // articles and determiners
    "a", "an", "the", "this", "that", "these", "those", "some", "each", "every",
    // pronouns
    "he", "she", "it", "they", "his", "her", "its", "their", "him", "them",
    // prepositions
    "in", "on", "at", "of", "with", "without", "to", "for", "from", "by", "into", "onto", "over",
    "under", "near", "across", "around", "up", "down", "out",
    // conjunctions
    "and", "or", "but", "nor", "so", "as", "while",
    // copula and auxiliaries
    "is", "are", "was", "were", "be", "been", "has", "have", "had", "also",
];

/// A token made of ASCII punctuation only (".", ",", "!"; not "'s", which has a letter) is
/// a function word too; the tokenizer splits punctuation from letters, so such a token is
/// never part of a word.
fn is_punctuation(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().all(u8::is_ascii_punctuation)
}

/// Tells function-word positions of a tokenised caption.
pub struct FunctionWords<'a> {
    tokenizer: &'a Tokenizer,
    words: HashSet<&'static [u8]>,
}

impl<'a> FunctionWords<'a> {
    pub fn new(tokenizer: &'a Tokenizer) -> Self {
        Self {
            tokenizer,
            words: FUNCTION_WORDS.iter().map(|w| w.as_bytes()).collect(),
        }
    }

    /// Whether position `p` of `ids` holds a function word: punctuation, or a token that is
    /// a whole word of [`FUNCTION_WORDS`] (it ends a word and the token before it ends one
    /// too or starts the text, so the last piece "a" of a longer word does not count).
    pub fn at(&self, ids: &[i64], p: usize) -> bool {
        let Some((bytes, ends_word)) = self.tokenizer.piece(ids[p]) else {
            return false;
        };
        if is_punctuation(bytes) {
            return true;
        }
        let starts_word = p == 0
            || ids[p - 1] == Tokenizer::SOT
            || self.tokenizer.piece(ids[p - 1]).is_some_and(|(_, ends)| ends);
        ends_word && starts_word && self.words.contains(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn articles_prepositions_and_punctuation_are_function_words_content_is_not() {
        let tokenizer = Tokenizer::clip().unwrap();
        let words = FunctionWords::new(&tokenizer);
        let ids = tokenizer.tokenize("A man in a red jacket, with the bag.", 20);
        let shown: Vec<(String, bool)> = (1..ids.iter().position(|&t| t == Tokenizer::EOT).unwrap())
            .map(|p| {
                (
                    tokenizer.decode(&ids[p..=p]).unwrap().trim().to_string(),
                    words.at(&ids, p),
                )
            })
            .collect();
        let expected = [
            ("a", true),
            ("man", false),
            ("in", true),
            ("a", true),
            ("red", false),
            ("jacket", false),
            (",", true),
            ("with", true),
            ("the", true),
            ("bag", false),
            (".", true),
        ];
        let expected: Vec<(String, bool)> = expected.iter().map(|(w, f)| (w.to_string(), *f)).collect();
        assert_eq!(shown, expected);
    }

    #[test]
    fn the_last_piece_of_a_longer_word_is_content_even_when_it_spells_a_function_word() {
        let tokenizer = Tokenizer::clip().unwrap();
        let words = FunctionWords::new(&tokenizer);
        // "parkas" is "park" + "as", "moccasin" is "moc" + "cas" + "in".
        let ids = tokenizer.tokenize("parkas moccasin as in", 10);
        let pieces: Vec<String> = ids[1..8]
            .iter()
            .map(|&t| tokenizer.decode(&[t]).unwrap())
            .collect();
        assert_eq!(pieces, ["park", "as ", "moc", "cas", "in ", "as ", "in "]);
        let function: Vec<bool> = (1..8).map(|p| words.at(&ids, p)).collect();
        assert_eq!(function, [false, false, false, false, false, true, true]);
    }
}
