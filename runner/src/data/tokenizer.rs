//! CLIP's byte-level BPE tokenizer as IRRA/GA-DMS modified it (method spec §9): the
//! vocabulary gives up its last merge ("jekyll</w>") so that `<|mask|>` takes id 49,405 and
//! the vocabulary keeps CLIP's 49,408 entries.
//!
//! Text goes through the reference's cleaning (the `clean` and `ftfy` submodules: a
//! documented subset of `ftfy.fix_text`, HTML unescaping, whitespace collapsing,
//! lower-casing), is split by the reference pattern and each piece is BPE-merged. Every
//! token remembers the bytes of the original caption it came from, so that spans marked on a
//! caption (the synthetic dataset's noise phrases) can be found among token positions
//! ([`Tokenized::positions_overlapping`]).
//!
//! The merges ship inside the binary: `assets/bpe_simple_vocab_16e6.txt.gz`, OpenAI's file
//! byte for byte (sha256 `924691ac…6804a`, checked by a test).

mod clean;
mod ftfy;
mod html;
mod text;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::ops::Range;
use std::sync::RwLock;

use flate2::bufread::GzDecoder;
use regex::Regex;

use clean::Cleaner;
use text::Span;

const MERGES_GZ: &[u8] = include_bytes!("../../assets/bpe_simple_vocab_16e6.txt.gz");

/// CLIP uses the first `49152 - 256 - 2` = 48,894 merges, on the lines after the file's
/// header line; the rest of the file is unused.
const NUM_MERGES: usize = 49152 - 256 - 2;

/// Special tokens, in id order after the 49,405 byte and merge tokens.
const SPECIALS: [&str; 3] = ["<|mask|>", "<|startoftext|>", "<|endoftext|>"];

/// The reference splits text with the special tokens | `'s|'t|'re|'ve|'m|'ll|'d` |
/// `[\p{L}]+` | `[\p{N}]` | `[^\s\p{L}\p{N}]+` under `re.IGNORECASE`. On the lower-cased
/// text the flag only matters for the literals ("'ſ" matches "'s"), so only they are
/// case-insensitive here: Rust would otherwise fold U+0345 into `\p{L}`, which Python's
/// `regex` leaves out of every class (the character is skipped).
const SPLIT_PATTERN: &str = concat!(
    r"(?i:<\|startoftext\|>|<\|endoftext\|>|<\|mask\|>|'s|'t|'re|'ve|'m|'ll|'d)",
    r"|[\p{L}--\x{345}]+|\p{N}|[^\s\p{L}\p{N}\x{345}]+",
);

/// BPE results are cached per word, as the reference does, up to this many words.
const CACHE_WORDS: usize = 1 << 16;

#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("cannot read the embedded BPE merges: {0}")]
    Read(#[from] std::io::Error),
    #[error("BPE merges, line {line}: {reason}")]
    Merges { line: usize, reason: &'static str },
    #[error("HTML entity table, line {line}: {reason}")]
    EntityTable { line: usize, reason: &'static str },
    #[error("tokenizer pattern: {0}")]
    Pattern(#[from] regex::Error),
    #[error("token id {0} is outside the vocabulary")]
    UnknownId(i64),
}

/// A vocabulary entry: the bytes it stands for and whether it ends a word (`</w>`).
#[derive(Debug)]
struct Token {
    bytes: Box<[u8]>,
    end_of_word: bool,
}

/// The CLIP BPE tokenizer. Building it decompresses and indexes the merges (tens of
/// milliseconds); build it once and share it (`Arc<Tokenizer>`) between loader threads.
pub struct Tokenizer {
    /// `(left, right)` → the merged token. Merged tokens get ids in merge-rank order, so the
    /// pair whose merged id is smallest is the highest-ranked one.
    merges: HashMap<(u32, u32), u32>,
    /// Every id's token.
    tokens: Vec<Token>,
    /// Byte → id of its byte-level symbol; `+ 256` gives the same symbol ending a word.
    byte_ids: [u32; 256],
    cleaner: Cleaner,
    splitter: Regex,
    cache: RwLock<HashMap<String, Box<[u32]>>>,
}

/// A fixed-length token sequence with, per position, the bytes of the original text it came
/// from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tokenized {
    /// `[sot] + ids + [eot]`, truncated or zero-padded to the context length.
    pub ids: Vec<i64>,
    /// For each position, the byte range of the input text it stems from; `None` for the
    /// start, end and padding tokens. Cleaning can widen a range: "&amp;" becomes one token
    /// spanning all five bytes, and a word whose accent is composed spans both characters.
    pub spans: Vec<Option<Range<usize>>>,
}

impl Tokenized {
    /// The positions whose source bytes overlap `range` (e.g. a noise phrase), ascending.
    pub fn positions_overlapping(&self, range: Range<usize>) -> impl Iterator<Item = usize> + '_ {
        self.spans.iter().enumerate().filter_map(move |(position, span)| {
            span.as_ref()
                .filter(|s| s.start < range.end && range.start < s.end)
                .map(|_| position)
        })
    }
}

impl Tokenizer {
    /// Id of `<|mask|>`; the pretrained embedding row of CLIP's "jekyll</w>" becomes the mask's.
    pub const MASK: i64 = 49405;
    /// Id of `<|startoftext|>`.
    pub const SOT: i64 = 49406;
    /// Id of `<|endoftext|>`.
    pub const EOT: i64 = 49407;
    /// Id that pads [`Tokenizer::tokenize`]'s output (also the id of "!").
    pub const PAD: i64 = 0;

    /// The tokenizer on the embedded CLIP merges.
    pub fn clip() -> Result<Self, TokenizerError> {
        Self::from_merges(BufReader::new(GzDecoder::new(MERGES_GZ)))
    }

    /// Builds the vocabulary (§9.1): the 256 byte symbols, the same ending a word, one token
    /// per merge but the last, then `<|mask|>`, `<|startoftext|>`, `<|endoftext|>`.
    fn from_merges(merges_file: impl BufRead) -> Result<Self, TokenizerError> {
        let symbols = byte_symbols();
        let mut byte_ids = [0u32; 256];
        let mut tokens = Vec::with_capacity(512 + NUM_MERGES + SPECIALS.len());
        let mut ids: HashMap<String, u32> = HashMap::with_capacity(512 + NUM_MERGES);
        for end_of_word in [false, true] {
            for &(byte, symbol) in &symbols {
                let id = tokens.len() as u32;
                let name = if end_of_word {
                    format!("{symbol}</w>")
                } else {
                    symbol.to_string()
                };
                ids.insert(name, id);
                tokens.push(Token {
                    bytes: Box::new([byte]),
                    end_of_word,
                });
                if !end_of_word {
                    byte_ids[usize::from(byte)] = id;
                }
            }
        }

        let mut merges = HashMap::with_capacity(NUM_MERGES);
        let mut lines = merges_file.lines().skip(1);
        // The last merge would produce "jekyll</w>", whose id now belongs to `<|mask|>`; the
        // reference keeps its rank but cannot encode its result (a `KeyError` on "jekyll").
        // It is dropped here, so "jekyll" encodes as "jeky" + "ll</w>".
        for rank in 0..NUM_MERGES - 1 {
            // 1-based, after the header.
            let bad = |reason| TokenizerError::Merges {
                line: rank + 2,
                reason,
            };
            let line = lines.next().ok_or(bad("file ends early"))??;
            let (left, right) = line.split_once(' ').ok_or(bad("not two symbols"))?;
            let (&left_id, &right_id) = ids
                .get(left)
                .zip(ids.get(right))
                .ok_or(bad("symbol not in the vocabulary yet"))?;
            let id = tokens.len() as u32;
            let (left_token, right_token) = (&tokens[left_id as usize], &tokens[right_id as usize]);
            let token = Token {
                bytes: [&left_token.bytes[..], &right_token.bytes[..]].concat().into(),
                end_of_word: right_token.end_of_word,
            };
            tokens.push(token);
            ids.insert(format!("{left}{right}"), id);
            merges.insert((left_id, right_id), id);
        }
        tokens.extend(SPECIALS.map(|s| Token {
            bytes: s.as_bytes().into(),
            end_of_word: false,
        }));
        debug_assert_eq!(tokens.len() as i64, Self::EOT + 1);

        Ok(Self {
            merges,
            tokens,
            byte_ids,
            cleaner: Cleaner::new()?,
            splitter: Regex::new(SPLIT_PATTERN)?,
            cache: RwLock::new(HashMap::new()),
        })
    }

    /// The bytes of token `id` and whether it ends a word (`</w>`); `None` outside the
    /// vocabulary. Special tokens are their names and end no word.
    pub fn piece(&self, id: i64) -> Option<(&[u8], bool)> {
        let token = self.tokens.get(usize::try_from(id).ok()?)?;
        Some((&token.bytes, token.end_of_word))
    }

    /// 49,408.
    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    /// The reference's `SimpleTokenizer.encode`: the cleaned text's BPE ids, without start
    /// and end tokens or truncation.
    pub fn encode(&self, text: &str) -> Vec<i64> {
        self.encode_spanned(text)
            .into_iter()
            .map(|(id, _)| i64::from(id))
            .collect()
    }

    /// The reference's `tokenize(caption, tokenizer, text_length, truncate=True)`:
    /// `[sot] + encode(text) + [eot]`; when that is longer than `context_length`, the first
    /// `context_length` ids are kept and the last one becomes `eot`; then zero padding.
    ///
    /// # Panics
    /// If `context_length` is 0.
    pub fn tokenize(&self, text: &str, context_length: usize) -> Vec<i64> {
        self.tokenize_with_offsets(text, context_length).ids
    }

    /// [`Tokenizer::tokenize`], with each position's source bytes in `text`.
    ///
    /// # Panics
    /// If `context_length` is 0.
    pub fn tokenize_with_offsets(&self, text: &str, context_length: usize) -> Tokenized {
        assert!(context_length > 0, "context_length must be positive");
        let mut ids = Vec::with_capacity(context_length);
        let mut spans = Vec::with_capacity(context_length);
        ids.push(Self::SOT);
        spans.push(None);
        for (id, span) in self.encode_spanned(text) {
            ids.push(i64::from(id));
            spans.push(Some(span));
        }
        ids.push(Self::EOT);
        spans.push(None);
        if ids.len() > context_length {
            ids.truncate(context_length);
            spans.truncate(context_length);
            ids[context_length - 1] = Self::EOT;
            spans[context_length - 1] = None;
        }
        ids.resize(context_length, Self::PAD);
        spans.resize(context_length, None);
        Tokenized { ids, spans }
    }

    /// The reference's `decode`, for debugging: the tokens' bytes, a space after each that
    /// ends a word, invalid UTF-8 replaced by U+FFFD.
    pub fn decode(&self, ids: &[i64]) -> Result<String, TokenizerError> {
        let mut bytes = Vec::new();
        for &id in ids {
            let token = usize::try_from(id)
                .ok()
                .and_then(|i| self.tokens.get(i))
                .ok_or(TokenizerError::UnknownId(id))?;
            bytes.extend_from_slice(&token.bytes);
            if token.end_of_word {
                bytes.extend_from_slice(b"</w>");
            }
        }
        Ok(String::from_utf8_lossy(&bytes).replace("</w>", " "))
    }

    /// Token ids of `text`, each with the byte range of `text` it came from.
    fn encode_spanned(&self, text: &str) -> Vec<(u32, Range<usize>)> {
        let cleaned = self.cleaner.clean(text);
        let string = cleaned.to_string();
        // The source span of every byte of the cleaned string.
        let byte_spans: Vec<Span> = cleaned
            .chars
            .iter()
            .zip(&cleaned.spans)
            .flat_map(|(c, &span)| std::iter::repeat_n(span, c.len_utf8()))
            .collect();
        let mut encoded = Vec::new();
        for piece in self.splitter.find_iter(&string) {
            let mut at = piece.start();
            for id in self.bpe(piece.as_str()).iter().copied() {
                let end = at + self.tokens[id as usize].bytes.len();
                let span = byte_spans[at..end]
                    .iter()
                    .copied()
                    .reduce(Span::cover)
                    .expect("tokens are not empty");
                encoded.push((id, span.range()));
                at = end;
            }
            debug_assert_eq!(at, piece.end());
        }
        encoded
    }

    /// The ids of one piece of the split: a special token's own id, or the BPE merge of its
    /// bytes with the last one ending the word.
    fn bpe(&self, piece: &str) -> Box<[u32]> {
        if let Some(special) = SPECIALS.iter().position(|&s| s == piece) {
            return Box::new([(Self::MASK as usize + special) as u32]);
        }
        if let Some(ids) = self.cache.read().expect("BPE cache lock").get(piece) {
            return ids.clone();
        }
        let mut word: Vec<u32> = piece.bytes().map(|b| self.byte_ids[usize::from(b)]).collect();
        *word.last_mut().expect("pieces are not empty") += 256;
        while word.len() > 1 {
            let best = word
                .windows(2)
                .filter_map(|pair| {
                    self.merges
                        .get(&(pair[0], pair[1]))
                        .map(|&merged| (merged, pair[0], pair[1]))
                })
                .min();
            let Some((merged, left, right)) = best else { break };
            // Merge every occurrence of the pair, left to right, as the reference does.
            let mut next = Vec::with_capacity(word.len());
            let mut i = 0;
            while i < word.len() {
                if i + 1 < word.len() && word[i] == left && word[i + 1] == right {
                    next.push(merged);
                    i += 2;
                } else {
                    next.push(word[i]);
                    i += 1;
                }
            }
            word = next;
        }
        let ids: Box<[u32]> = word.into();
        let mut cache = self.cache.write().expect("BPE cache lock");
        if cache.len() < CACHE_WORDS {
            cache.insert(piece.to_owned(), ids.clone());
        }
        ids
    }
}

/// GPT-2's byte-level alphabet in vocabulary order: the printable bytes '!'..='~',
/// '¡'..='¬', '®'..='ÿ' stand for themselves, the other 68 bytes for U+0100 onwards.
fn byte_symbols() -> Vec<(u8, char)> {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut symbols: Vec<(u8, char)> = (0..=255u8)
        .filter(|&b| printable(b))
        .map(|b| (b, char::from(b)))
        .collect();
    let unprintable = (0..=255u8).filter(|&b| !printable(b));
    symbols.extend(
        unprintable
            .zip(256u32..)
            .map(|(b, c)| (b, char::from_u32(c).expect("below U+0200"))),
    );
    symbols
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use gadms_golden::Golden;
    use serde_json::Value;

    use super::*;

    fn tokenizer() -> &'static Tokenizer {
        static TOKENIZER: OnceLock<Tokenizer> = OnceLock::new();
        TOKENIZER.get_or_init(|| Tokenizer::clip().expect("embedded tokenizer builds"))
    }

    #[test]
    fn embedded_merges_are_openais_file() {
        assert_eq!(
            crate::digest::sha256_hex(MERGES_GZ),
            "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"
        );
    }

    #[test]
    fn vocabulary_layout() {
        let tok = tokenizer();
        assert_eq!(tok.vocab_size(), 49408);
        assert_eq!(tok.decode(&[0, 255, 256]).unwrap(), "!\u{FFFD}! ");
        assert_eq!(
            tok.decode(&[Tokenizer::MASK, Tokenizer::SOT, Tokenizer::EOT])
                .unwrap(),
            "<|mask|><|startoftext|><|endoftext|>"
        );
        assert_eq!(
            tok.encode("jekyll").len(),
            2,
            "the dropped merge is never applied"
        );
        assert!(matches!(
            tok.decode(&[49408]),
            Err(TokenizerError::UnknownId(49408))
        ));
    }

    /// Every caption of the golden set: fixed-length ids, `encode` lengths, the eot position
    /// and the decoded text, all as the reference produced them.
    #[test]
    fn golden_captions() {
        let tok = tokenizer();
        let golden = Golden::load();
        let entry = golden.file("tokenizer.safetensors");
        let tensors = golden.tensors("tokenizer.safetensors");
        let context_length = entry["context_length"].as_u64().expect("context_length") as usize;
        let captions = entry["captions"].as_array().expect("captions");
        let decoded = entry["decoded"].as_array().expect("decoded");
        let token_ids = Vec::<Vec<i64>>::try_from(&tensors["token_ids"]).unwrap();
        let bpe_lengths = Vec::<i64>::try_from(&tensors["bpe_lengths"]).unwrap();
        let eos_positions = Vec::<i64>::try_from(&tensors["eos_position"]).unwrap();
        assert_eq!(token_ids.len(), captions.len());
        assert_eq!(entry["vocab_size"].as_u64(), Some(tok.vocab_size() as u64));
        for (name, id) in [
            ("<|mask|>", Tokenizer::MASK),
            ("<|startoftext|>", Tokenizer::SOT),
            ("<|endoftext|>", Tokenizer::EOT),
        ] {
            assert_eq!(entry["special_token_ids"][name].as_i64(), Some(id), "{name}");
        }

        for (i, caption) in captions
            .iter()
            .map(|c| c.as_str().expect("caption text"))
            .enumerate()
        {
            let ids = tok.tokenize(caption, context_length);
            assert_eq!(ids, token_ids[i], "caption {i}: {caption:?}");
            let encoded = tok.encode(caption);
            assert_eq!(encoded.len() as i64, bpe_lengths[i], "caption {i}: encode length");
            // eot is the largest id, so the reference's argmax is its first position.
            let eos = ids.iter().position(|&id| id == Tokenizer::EOT);
            assert_eq!(
                eos.map(|p| p as i64),
                Some(eos_positions[i]),
                "caption {i}: eot position"
            );
            assert_eq!(
                Value::from(tok.decode(&encoded).unwrap()),
                decoded[i],
                "caption {i}: decoded"
            );
        }
    }

    #[test]
    fn long_captions_are_truncated_onto_eot() {
        let tok = tokenizer();
        let caption = "a man in a red coat ".repeat(30);
        let tokenized = tok.tokenize_with_offsets(&caption, 77);
        assert_eq!(tokenized.ids.len(), 77);
        assert_eq!(tokenized.ids[0], Tokenizer::SOT);
        assert_eq!(tokenized.ids[76], Tokenizer::EOT);
        assert_eq!(tokenized.spans[76], None);
        assert_eq!(&tokenized.ids[1..76], &tok.encode(&caption)[..75]);
        assert!(tokenized.ids.iter().all(|&id| id != Tokenizer::PAD));
    }

    #[test]
    fn empty_and_blank_captions() {
        let tok = tokenizer();
        for caption in ["", "   \t\n"] {
            assert!(tok.encode(caption).is_empty());
            let tokenized = tok.tokenize_with_offsets(caption, 77);
            assert_eq!(
                &tokenized.ids[..3],
                &[Tokenizer::SOT, Tokenizer::EOT, Tokenizer::PAD]
            );
            assert!(tokenized.ids[2..].iter().all(|&id| id == Tokenizer::PAD));
            assert!(tokenized.spans.iter().all(Option::is_none));
        }
    }

    #[test]
    fn mask_in_text_is_the_mask_token() {
        let tok = tokenizer();
        let caption = "A <|MASK|> woman<|mask|>";
        let tokenized = tok.tokenize_with_offsets(caption, 77);
        assert_eq!(
            &tokenized.ids[..6],
            &[
                Tokenizer::SOT,
                320,
                Tokenizer::MASK,
                2308,
                Tokenizer::MASK,
                Tokenizer::EOT
            ]
        );
        assert_eq!(tokenized.spans[2], Some(2..10));
        assert_eq!(tokenized.spans[4], Some(16..24));
    }

    #[test]
    fn phrase_offsets_map_to_token_positions() {
        let tok = tokenizer();
        let caption = "A woman in a red coat, carrying a café-style umbrella.";
        let phrase = "carrying a café-style";
        let start = caption.find(phrase).unwrap();
        let tokenized = tok.tokenize_with_offsets(caption, 77);
        let positions: Vec<usize> = tokenized
            .positions_overlapping(start..start + phrase.len())
            .collect();
        let expected = tok.encode(phrase);
        let ids: Vec<i64> = positions.iter().map(|&p| tokenized.ids[p]).collect();
        assert_eq!(ids, expected);
        // Contiguous, starting right after "a woman in a red coat ,".
        assert_eq!(
            positions.first(),
            Some(&(1 + tok.encode("A woman in a red coat,").len()))
        );
        assert!(positions.windows(2).all(|w| w[1] == w[0] + 1));
        for &p in &positions {
            let span = tokenized.spans[p].clone().unwrap();
            assert!(
                span.start >= start && span.end <= start + phrase.len(),
                "{span:?}"
            );
        }
    }

    #[test]
    fn offsets_survive_cleaning() {
        let tok = tokenizer();
        // Mojibake, an entity and a decomposed accent each become one token's worth of text
        // that spans all the bytes it was made from.
        let caption = "cafÃ© &amp; Rene\u{301}e";
        let tokenized = tok.tokenize_with_offsets(caption, 77);
        let decoded: Vec<String> = tokenized.ids[1..]
            .iter()
            .take_while(|&&id| id != Tokenizer::EOT)
            .map(|&id| tok.decode(&[id]).unwrap())
            .collect();
        let sources: Vec<&str> = tokenized.spans[1..=decoded.len()]
            .iter()
            .map(|s| &caption[s.clone().unwrap()])
            .collect();
        assert_eq!(decoded.concat(), "café & renée ");
        assert_eq!(sources.concat().replace(' ', ""), "cafÃ©&amp;Rene\u{301}e");
    }

    #[test]
    fn shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Tokenizer>();
        let tok = tokenizer();
        let expected = tok.tokenize("a woman in a red coat", 77);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| assert_eq!(tok.tokenize("a woman in a red coat", 77), expected));
            }
        });
    }
}
