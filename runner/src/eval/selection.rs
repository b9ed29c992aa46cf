//! Model selection: which epoch's evaluation a reported number comes from.
//!
//! Papers in this field differ here, and the difference is worth points of R@1: the GA-DMS
//! and IRRA code evaluate each test set after every epoch and report its best epoch on
//! itself, which picks the model on the test data. gadms reports the last epoch unless the
//! experiment says otherwise, and every table names the protocol it follows. All three are
//! computed from the run's evaluation log, so switching needs no retraining.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `[experiment] selection`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Selection {
    /// The evaluation after the last epoch.
    #[default]
    Last,
    /// Every set at the epoch with the best R@1 on the validation split (the first
    /// evaluation set with `split = "val"`).
    BestVal,
    /// Each test set at its own best epoch by R@1: the paper's protocol, optimistic since
    /// the test data choose the model.
    BestTest,
}

#[derive(Debug, thiserror::Error)]
pub enum SelectionError {
    #[error(
        "`experiment.selection = \"best-val\"` needs a validation split among `data.eval` \
         (an entry with `split = \"val\"`); add one, or choose \"last\" or \"best-test\""
    )]
    NoValidation,
}

impl Selection {
    /// The protocol in words, for table captions: `after the last epoch`.
    pub fn describe(self, validation: Option<&str>) -> String {
        match self {
            Self::Last => "after the last epoch".into(),
            Self::BestVal => format!(
                "at the epoch with the best R@1 on the validation split{}",
                validation.map(|v| format!(" ({v})")).unwrap_or_default()
            ),
            Self::BestTest => {
                "at each test set's best epoch by its own R@1 (the paper's protocol: the test data pick \
                 the epoch, so the numbers are optimistic)"
                    .into()
            }
        }
    }

    /// A short label for column headers and chart legends.
    pub fn label(self) -> &'static str {
        match self {
            Self::Last => "last epoch",
            Self::BestVal => "best on val",
            Self::BestTest => "best on test",
        }
    }

    /// The chosen `eval` records of one run, one per evaluation set (validation sets are
    /// left out under `best-val` and `best-test`, where they only choose), in log order.
    /// `evals` are the run's `eval` records; `validation` the validation set's name.
    pub fn choose<'r>(
        self,
        evals: &[&'r Value],
        validation: Option<&str>,
    ) -> Result<Vec<&'r Value>, SelectionError> {
        let is_validation = |r: &Value| validation.is_some() && r["dataset"].as_str() == validation;
        let tests = || evals.iter().copied().filter(|r| !is_validation(r));
        Ok(match self {
            Self::Last => match evals.iter().filter_map(|r| epoch(r)).max() {
                Some(last) => at_epoch(evals.iter().copied(), last),
                None => Vec::new(),
            },
            Self::BestVal => {
                validation.ok_or(SelectionError::NoValidation)?;
                let on_validation: Vec<&Value> = evals.iter().copied().filter(|r| is_validation(r)).collect();
                match best(&on_validation).and_then(epoch) {
                    Some(chosen) => at_epoch(tests(), chosen),
                    None => Vec::new(),
                }
            }
            Self::BestTest => {
                let mut chosen: Vec<&Value> = Vec::new();
                for dataset in datasets(tests()) {
                    let records: Vec<&Value> = tests()
                        .filter(|r| r["dataset"].as_str() == Some(dataset))
                        .collect();
                    chosen.extend(best(&records));
                }
                chosen
            }
        })
    }
}

/// The name of the first evaluation set with `split = "val"` in a run's resolved config.
pub fn validation_set(config: &toml::Table) -> Option<String> {
    let evals = config.get("data")?.get("eval")?.as_array()?;
    evals
        .iter()
        .find(|e| e.get("split").and_then(toml::Value::as_str) == Some("val"))
        .and_then(|e| e.get("name")?.as_str().map(String::from))
}

fn epoch(r: &Value) -> Option<u64> {
    r["epoch"].as_u64()
}

fn at_epoch<'r>(records: impl Iterator<Item = &'r Value>, epoch_: u64) -> Vec<&'r Value> {
    records.filter(|r| epoch(r) == Some(epoch_)).collect()
}

/// The record with the highest R@1; the earliest of equals, as the checkpoint keeps it.
fn best<'r>(records: &[&'r Value]) -> Option<&'r Value> {
    let r1 = |r: &Value| r["R1"].as_f64().unwrap_or(f64::NEG_INFINITY);
    records
        .iter()
        .copied()
        .reduce(|kept, r| if r1(r) > r1(kept) { r } else { kept })
}

/// The dataset names of `records`, in first-seen order.
fn datasets<'r>(records: impl Iterator<Item = &'r Value>) -> Vec<&'r str> {
    let mut names: Vec<&str> = Vec::new();
    for name in records.filter_map(|r| r["dataset"].as_str()) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Three epochs of a test set `A`, a test set `B` and a validation set `V`.
    fn log() -> Vec<Value> {
        let r1 = [
            ("A", [50.0, 60.0, 55.0]),
            ("B", [30.0, 20.0, 35.0]),
            ("V", [40.0, 45.0, 45.0]),
        ];
        (1..=3u64)
            .flat_map(|epoch| {
                r1.iter()
                    .map(move |(set, values)| json!({"kind": "eval", "epoch": epoch, "dataset": set, "R1": values[epoch as usize - 1]}))
            })
            .collect()
    }

    fn picked(selection: Selection, validation: Option<&str>) -> Vec<(String, u64)> {
        let log = log();
        let evals: Vec<&Value> = log.iter().collect();
        selection
            .choose(&evals, validation)
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["dataset"].as_str().unwrap().to_string(),
                    r["epoch"].as_u64().unwrap(),
                )
            })
            .collect()
    }

    fn pairs(p: &[(&str, u64)]) -> Vec<(String, u64)> {
        p.iter().map(|(s, e)| (s.to_string(), *e)).collect()
    }

    #[test]
    fn last_takes_every_set_after_the_last_epoch() {
        assert_eq!(
            picked(Selection::Last, None),
            pairs(&[("A", 3), ("B", 3), ("V", 3)])
        );
    }

    #[test]
    fn best_val_takes_the_test_sets_at_the_validation_set_s_first_best_epoch() {
        // V peaks at 45 in epochs 2 and 3: the earlier one, as `best/` keeps it.
        assert_eq!(
            picked(Selection::BestVal, Some("V")),
            pairs(&[("A", 2), ("B", 2)])
        );
        let log = log();
        let evals: Vec<&Value> = log.iter().collect();
        let e = Selection::BestVal.choose(&evals, None).unwrap_err().to_string();
        assert!(e.contains("split = \"val\""), "{e}");
    }

    #[test]
    fn best_test_takes_each_test_set_at_its_own_best_epoch() {
        assert_eq!(
            picked(Selection::BestTest, Some("V")),
            pairs(&[("A", 2), ("B", 3)])
        );
    }

    #[test]
    fn the_validation_set_is_the_first_eval_entry_with_split_val() {
        let config: toml::Table = r#"
            [data]
            eval = [{ name = "t", split = "test" }, { name = "v", split = "val" }, { name = "w", split = "val" }]
        "#
        .parse()
        .unwrap();
        assert_eq!(validation_set(&config).as_deref(), Some("v"));
        assert_eq!(validation_set(&toml::Table::new()), None);
    }
}
