//! Reading an annotation file: a JSON list of records, parsed in one typed pass. A bad file
//! is an error that says where: serde_json's line and column for malformed JSON, and the
//! record's index and field for a record of the wrong shape.

use std::path::Path;

use gadms_plugin::{PluginError, Result};
use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;

/// Reads `file` as a JSON list of `T`.
pub fn read_list<T: DeserializeOwned>(file: &Path) -> Result<Vec<T>> {
    let bytes = std::fs::read(file).map_err(|e| PluginError::File {
        path: file.into(),
        message: format!("cannot read the annotation file: {e}"),
    })?;
    let mut json = serde_json::Deserializer::from_slice(&bytes);
    let records = serde_path_to_error::deserialize(&mut json).map_err(|e| located(file, e))?;
    json.end().map_err(|e| malformed(file, &e))?;
    Ok(records)
}

fn malformed(file: &Path, error: &serde_json::Error) -> PluginError {
    PluginError::File {
        path: file.into(),
        message: format!("malformed JSON: {error}"),
    }
}

/// Splits the error's path into the record index and the place inside the record.
fn located(file: &Path, error: serde_path_to_error::Error<serde_json::Error>) -> PluginError {
    let inner = error.inner();
    if !inner.is_data() {
        return malformed(file, inner);
    }
    let mut segments = error.path().iter();
    let message = match segments.next() {
        Some(Segment::Seq { index }) => {
            let inside = inside(segments);
            let field = if inside.is_empty() {
                String::new()
            } else {
                format!(", at `{inside}`")
            };
            format!("record {index}{field}: {inner}; fix or remove the record")
        }
        _ => format!("expected a JSON list of records: {inner}"),
    };
    PluginError::File {
        path: file.into(),
        message,
    }
}

/// `field`, `captions[1]`, `key.caption2`: a path inside one record.
fn inside<'a>(segments: impl Iterator<Item = &'a Segment>) -> String {
    let mut path = String::new();
    for segment in segments {
        match segment {
            Segment::Seq { index } => path.push_str(&format!("[{index}]")),
            other => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&other.to_string());
            }
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::fixture::Fixture;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Record {
        id: i64,
        captions: Vec<String>,
    }

    fn read(fixture: &Fixture, text: &str) -> Result<Vec<Record>> {
        read_list(&fixture.write("a.json", text.as_bytes()))
    }

    fn message(fixture: &Fixture, text: &str) -> String {
        read(fixture, text).unwrap_err().to_string()
    }

    #[test]
    fn a_list_of_records_parses_and_other_fields_are_ignored() {
        let f = Fixture::new("annotations-ok");
        let records = read(&f, r#"[{"id": 1, "captions": ["a"], "extra": [1]}]"#).unwrap();
        assert_eq!(
            records,
            [Record {
                id: 1,
                captions: vec!["a".into()]
            }]
        );
    }

    #[test]
    fn malformed_json_names_file_line_and_column() {
        let f = Fixture::new("annotations-malformed");
        let err = message(&f, "[\n{\"id\": 1,, }\n]");
        assert!(
            err.contains("a.json") && err.contains("malformed JSON") && err.contains("line 2 column"),
            "{err}"
        );
        let err = message(&f, "[] trailing");
        assert!(err.contains("malformed JSON") && err.contains("line 1"), "{err}");
    }

    #[test]
    fn a_record_of_the_wrong_shape_names_record_and_field() {
        let f = Fixture::new("annotations-shape");
        let ok = r#"{"id": 1, "captions": ["a"]}"#;
        let err = message(&f, &format!(r#"[{ok}, {{"id": 2}}]"#));
        assert!(
            err.contains("a.json") && err.contains("record 1:") && err.contains("`captions`"),
            "{err}"
        );
        let err = message(&f, &format!(r#"[{ok}, {ok}, {{"id": 3, "captions": ["a", 7]}}]"#));
        assert!(err.contains("record 2, at `captions[1]`"), "{err}");
        let err = message(&f, r#"{"id": 1}"#);
        assert!(err.contains("expected a JSON list of records"), "{err}");
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let f = Fixture::new("annotations-missing");
        let err = read_list::<Record>(&f.path("none.json")).unwrap_err().to_string();
        assert!(err.contains("none.json") && err.contains("cannot read"), "{err}");
    }
}
