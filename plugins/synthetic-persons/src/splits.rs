//! Identity-disjoint splits. Pids are contiguous per split and laid out train, val, test,
//! so training pids are `0..train_ids` as classification losses expect.

use std::ops::Range;

use gadms_plugin::dataset::SplitKind;
use gadms_plugin::{PluginError, Result};

use crate::options::Options;

/// How many identities each split has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub train: usize,
    pub val: usize,
    pub test: usize,
}

impl Layout {
    pub fn new(options: &Options) -> Self {
        Self {
            train: options.train_ids,
            val: options.val_ids,
            test: options.test_ids,
        }
    }

    pub fn total(&self) -> usize {
        self.train + self.val + self.test
    }

    /// The pids of `split`; an empty split is an error naming the option that sizes it.
    pub fn pids(&self, split: SplitKind) -> Result<Range<usize>> {
        let (range, option) = match split {
            SplitKind::Train => (0..self.train, "train_ids"),
            SplitKind::Val => (self.train..self.train + self.val, "val_ids"),
            SplitKind::Test => (self.train + self.val..self.total(), "test_ids"),
        };
        if range.is_empty() {
            return Err(PluginError::Data(format!(
                "{}: the `{}` split is empty; set option `{option}` above 0",
                crate::NAME,
                split.as_str()
            )));
        }
        Ok(range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_are_contiguous_disjoint_and_ordered() {
        let layout = Layout {
            train: 5,
            val: 2,
            test: 3,
        };
        assert_eq!(layout.pids(SplitKind::Train).unwrap(), 0..5);
        assert_eq!(layout.pids(SplitKind::Val).unwrap(), 5..7);
        assert_eq!(layout.pids(SplitKind::Test).unwrap(), 7..10);
    }

    #[test]
    fn an_empty_split_names_split_and_option() {
        let layout = Layout {
            train: 5,
            val: 0,
            test: 3,
        };
        let err = layout.pids(SplitKind::Val).unwrap_err().to_string();
        assert!(err.contains("`val`") && err.contains("`val_ids`"), "{err}");
    }
}
