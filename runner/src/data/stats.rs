//! What a dataset split holds, as `gadms-run dataset stats` prints it: a check that a
//! benchmark was found and read as expected (its counts are published) and a view of how
//! long its captions are for the text encoder's fixed context.

use std::collections::BTreeSet;
use std::fmt;

use gadms_plugin::dataset::SplitData;

use super::tokenizer::Tokenizer;

/// Counts and caption lengths of one split.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitStats {
    /// Distinct pids among the images.
    pub identities: usize,
    pub images: usize,
    pub captions: usize,
    /// Caption lengths in CLIP BPE tokens, without the start and end tokens; `None` for a
    /// split without captions.
    pub tokens: Option<Lengths>,
    /// The context the counts of [`SplitStats::truncated`] refer to.
    pub context_length: usize,
    /// Captions whose tokens plus start and end exceed `context_length`, i.e. that
    /// tokenisation cuts.
    pub truncated: usize,
}

/// Summary of a list of lengths.
#[derive(Debug, Clone, PartialEq)]
pub struct Lengths {
    pub min: usize,
    pub mean: f64,
    pub median: f64,
    pub max: usize,
}

impl Lengths {
    /// `None` for no lengths.
    fn of(mut lengths: Vec<usize>) -> Option<Self> {
        lengths.sort_unstable();
        let (&min, &max) = (lengths.first()?, lengths.last()?);
        let n = lengths.len();
        let median = if n % 2 == 1 {
            lengths[n / 2] as f64
        } else {
            (lengths[n / 2 - 1] + lengths[n / 2]) as f64 / 2.0
        };
        Some(Self {
            min,
            mean: lengths.iter().sum::<usize>() as f64 / n as f64,
            median,
            max,
        })
    }
}

impl SplitStats {
    /// Tokenises every caption of `data` (the reference's cleaning and BPE, §9).
    pub fn compute(data: &SplitData, tokenizer: &Tokenizer, context_length: usize) -> Self {
        let lengths: Vec<usize> = data
            .captions
            .iter()
            .map(|c| tokenizer.encode(&c.text).len())
            .collect();
        // Start and end tokens take two of the positions.
        let truncated = lengths.iter().filter(|&&n| n + 2 > context_length).count();
        Self {
            identities: data.images.iter().map(|i| i.pid).collect::<BTreeSet<_>>().len(),
            images: data.images.len(),
            captions: data.captions.len(),
            tokens: Lengths::of(lengths),
            context_length,
            truncated,
        }
    }

    /// Mean captions per image; 0 for a split without images.
    pub fn captions_per_image(&self) -> f64 {
        if self.images == 0 {
            0.0
        } else {
            self.captions as f64 / self.images as f64
        }
    }
}

impl fmt::Display for SplitStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  identities          {}", self.identities)?;
        writeln!(f, "  images              {}", self.images)?;
        writeln!(f, "  captions            {}", self.captions)?;
        writeln!(f, "  captions per image  {:.2}", self.captions_per_image())?;
        match &self.tokens {
            Some(t) => writeln!(
                f,
                "  caption tokens      min {} / mean {:.1} / median {:.1} / max {}",
                t.min, t.mean, t.median, t.max
            )?,
            None => writeln!(f, "  caption tokens      none")?,
        }
        let share = if self.captions == 0 {
            0.0
        } else {
            100.0 * self.truncated as f64 / self.captions as f64
        };
        writeln!(
            f,
            "  truncated           {} ({share:.1} %) exceed {} tokens with start and end",
            self.truncated, self.context_length
        )
    }
}

#[cfg(test)]
mod tests {
    use gadms_plugin::dataset::{CaptionRecord, ImageRecord, ImageSource};

    use super::*;

    fn data(pids: &[i64], captions: &[(usize, &str)]) -> SplitData {
        let source = ImageSource::Encoded(std::sync::Arc::from(&b""[..]));
        SplitData {
            images: pids
                .iter()
                .map(|&pid| ImageRecord {
                    pid,
                    source: source.clone(),
                })
                .collect(),
            captions: captions
                .iter()
                .map(|&(image, text)| CaptionRecord {
                    pid: pids[image],
                    image,
                    text: text.into(),
                    noise_spans: Vec::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn counts_lengths_and_truncation() {
        let tokenizer = Tokenizer::clip().unwrap();
        // "a man" is two tokens, "red coat ." three; the third caption is long.
        let long = "word ".repeat(77);
        let split = data(
            &[5, 5, 9],
            &[(0, "a man"), (0, "red coat ."), (1, "a man"), (2, long.trim())],
        );
        let stats = SplitStats::compute(&split, &tokenizer, 77);
        assert_eq!(
            stats,
            SplitStats {
                identities: 2,
                images: 3,
                captions: 4,
                tokens: Some(Lengths {
                    min: 2,
                    mean: 21.0,
                    median: 2.5,
                    max: 77
                }),
                context_length: 77,
                truncated: 1,
            }
        );
        // 75 tokens fit exactly with start and end.
        let fits = "word ".repeat(75);
        let stats = SplitStats::compute(&data(&[0], &[(0, fits.trim())]), &tokenizer, 77);
        assert_eq!((stats.truncated, stats.tokens.unwrap().median), (0, 75.0));

        let text = SplitStats::compute(&split, &tokenizer, 77).to_string();
        for line in [
            "identities          2",
            "images              3",
            "captions            4",
            "captions per image  1.33",
            "min 2 / mean 21.0 / median 2.5 / max 77",
            "truncated           1 (25.0 %) exceed 77",
        ] {
            assert!(text.contains(line), "`{line}` not in\n{text}");
        }
    }

    #[test]
    fn an_empty_split_has_no_lengths() {
        let stats = SplitStats::compute(&SplitData::default(), &Tokenizer::clip().unwrap(), 77);
        assert_eq!((&stats.tokens, stats.captions_per_image()), (&None, 0.0));
        assert!(stats.to_string().contains("caption tokens      none"));
    }
}
