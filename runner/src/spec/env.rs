//! `${env:NAME}` and `${env:NAME:-default}` in a spec's string values, so that one spec
//! serves every machine: data roots and other paths come from the environment instead of
//! edits. Substitution happens on the parsed TOML, before merging and typing, so it reaches
//! every table (`experiment`, `base`, each `[[variant]]`) and an error can name the key path
//! as the spec writes it.
//!
//! Rules, as in a shell: a variable that is unset or empty takes the default, and without a
//! default is an error. `$${` is a literal `${`; any other `${…}` is an error, so a typo such
//! as `${ENV:X}` never passes through silently.

use toml::Value;

/// Why a string could not be interpolated; the caller adds the file and key path.
#[derive(Debug, PartialEq)]
pub enum EnvError {
    /// `${env:NAME}` with `NAME` unset or empty and no default.
    Unset(String),
    /// Anything else between `${` and `}` (or a `${` never closed): the text and the problem.
    Malformed { text: String, problem: &'static str },
}

impl EnvError {
    pub fn message(&self) -> String {
        match self {
            EnvError::Unset(name) => format!(
                "environment variable `{name}` is not set (or is empty); set it \
                 (`export {name}=...`), or give a default: `${{env:{name}:-value}}`"
            ),
            EnvError::Malformed { text, problem } => format!(
                "`{text}`: {problem}; write `${{env:NAME}}` or `${{env:NAME:-default}}`, \
                 and `$${{` for a literal `${{`"
            ),
        }
    }
}

/// A string of the spec that could not be interpolated.
#[derive(Debug, PartialEq)]
pub struct Failure {
    /// Its key path: `base.data.eval[1].root`.
    pub path: String,
    /// The string as the spec holds it, to find its line.
    pub text: String,
    pub error: EnvError,
}

/// Replaces the interpolations in every string under `value` (not in keys), which lies at
/// `path`; stops at the first failure.
pub fn interpolate(
    value: &mut Value,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), Failure> {
    match value {
        Value::String(s) => {
            *s = expand(s, lookup).map_err(|error| Failure {
                path: path.to_string(),
                text: s.clone(),
                error,
            })?;
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate(item, &format!("{path}[{i}]"), lookup)?;
            }
        }
        Value::Table(table) => {
            for (key, item) in table.iter_mut() {
                let inner = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                interpolate(item, &inner, lookup)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// One string with its interpolations replaced.
pub fn expand(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, EnvError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        if rest[..at].ends_with('$') {
            // `$${`: the escape keeps `${` and drops the doubled `$`.
            out.push_str(&rest[..at - 1]);
            out.push_str("${");
            rest = &rest[at + 2..];
            continue;
        }
        out.push_str(&rest[..at]);
        let body_and_after = &rest[at + 2..];
        let Some(end) = body_and_after.find('}') else {
            return Err(EnvError::Malformed {
                text: rest[at..].to_string(),
                problem: "no closing `}`",
            });
        };
        out.push_str(&resolve(&body_and_after[..end], lookup)?);
        rest = &body_and_after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The value of one `${body}`.
fn resolve(body: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, EnvError> {
    let malformed = |problem| EnvError::Malformed {
        text: format!("${{{body}}}"),
        problem,
    };
    let spec = body
        .strip_prefix("env:")
        .ok_or_else(|| malformed("only `env:` interpolations exist"))?;
    let (name, default) = match spec.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (spec, None),
    };
    if !is_variable_name(name) {
        return Err(malformed(
            "not a variable name (letters, digits and `_`, not starting with a digit)",
        ));
    }
    match (lookup(name).filter(|v| !v.is_empty()), default) {
        (Some(v), _) => Ok(v),
        (None, Some(d)) => Ok(d.to_string()),
        (None, None) => Err(EnvError::Unset(name.to_string())),
    }
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "DATA" => Some("/mnt/data".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn ok(text: &str) -> String {
        expand(text, &env).unwrap()
    }

    #[test]
    fn variables_defaults_and_the_escape() {
        assert_eq!(ok("${env:DATA}/WebPerson"), "/mnt/data/WebPerson");
        assert_eq!(
            ok("${env:DATA:-/x} and ${env:NOPE:-../data}"),
            "/mnt/data and ../data"
        );
        assert_eq!(ok("${env:EMPTY:-fallback}"), "fallback");
        assert_eq!(ok("${env:NOPE:-}"), "");
        assert_eq!(
            ok("$${env:DATA} costs $5, $$ stays"),
            "${env:DATA} costs $5, $$ stays"
        );
        assert_eq!(ok("no interpolation"), "no interpolation");
    }

    #[test]
    fn unset_and_malformed_interpolations_are_errors() {
        assert_eq!(expand("${env:NOPE}", &env), Err(EnvError::Unset("NOPE".into())));
        assert_eq!(expand("${env:EMPTY}", &env), Err(EnvError::Unset("EMPTY".into())));
        for (text, problem) in [
            ("${DATA}", "only `env:`"),
            ("${env:1X}", "not a variable name"),
            ("${env:DATA", "no closing"),
        ] {
            let err = expand(text, &env).unwrap_err().message();
            assert!(err.contains(problem) && err.contains("$${"), "{err}");
        }
        let err = EnvError::Unset("NOPE".into()).message();
        assert!(
            err.contains("`NOPE`") && err.contains("export NOPE=") && err.contains("${env:NOPE:-value}"),
            "{err}"
        );
    }

    #[test]
    fn every_string_under_a_value_is_expanded_and_an_error_names_its_path() {
        let mut value = Value::Table(
            r#"
            base = { data = { eval = [{ root = "a" }, { root = "${env:DATA}", n = 1 }] } }
            variant = [{ name = "${env:DATA:-x}" }]
            "#
            .parse()
            .unwrap(),
        );
        interpolate(&mut value, "", &env).unwrap();
        assert_eq!(
            value["base"]["data"]["eval"][1]["root"].as_str(),
            Some("/mnt/data")
        );
        assert_eq!(value["variant"][0]["name"].as_str(), Some("/mnt/data"));

        let text = r#"base = { data = { eval = [{}, { root = "${env:NOPE}" }] } }"#;
        let mut value = Value::Table(text.parse().unwrap());
        let failure = interpolate(&mut value, "", &env).unwrap_err();
        assert_eq!(
            failure,
            Failure {
                path: "base.data.eval[1].root".into(),
                text: "${env:NOPE}".into(),
                error: EnvError::Unset("NOPE".into())
            }
        );
    }
}
