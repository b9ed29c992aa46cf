use toml::Value;

/// Deep-merges `over` into `base`: tables merge key by key, everything else replaces.
/// A component table that names a different `plugin` replaces the base table instead of
/// merging, because the base's options belong to the other plugin.
pub fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Table(b), Value::Table(o)) => {
            let switches_plugin = matches!((b.get("plugin"), o.get("plugin")), (Some(x), Some(y)) if x != y);
            if switches_plugin {
                *b = o;
                return;
            }
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// Applies `key.path=value` (the value parsed as TOML, or taken as a string when it does
/// not parse).
pub fn apply_override(root: &mut Value, assignment: &str) -> Result<(), String> {
    let (path, raw) = assignment.split_once('=').ok_or("expected `key.path=value`")?;
    let value = format!("v = {}", raw.trim())
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(raw.trim().to_string()));
    set_path(root, path.trim(), value)
}

/// Sets the value at a key path, creating tables on the way. A path is keys joined by `.`,
/// each key optionally followed by element selectors for an array of tables: `[1]` (an
/// index, from 0) or `[CUHK-PEDES]` (the element whose `name` is that; quoted, `["1"]`, for a
/// name of digits). `data.eval[CUHK-PEDES].root` thus changes one evaluation set's root
/// without repeating the array. Selected elements must exist: an array is never extended.
pub fn set_path(root: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let steps = steps(path)?;
    let mut cursor = root;
    let mut walked = String::new();
    for (i, step) in steps.iter().enumerate() {
        // A missing key becomes a table, unless an element is selected in it next.
        let create = !matches!(steps.get(i + 1), Some(Step::Index(_) | Step::Name(_)));
        cursor = descend(cursor, step, &walked, create)?;
        step.append_to(&mut walked);
    }
    *cursor = value;
    Ok(())
}

/// The value at a dotted key path of plain keys (`model.init.variant`), if set.
pub fn value_at<'a>(root: &'a toml::Table, path: &str) -> Option<&'a Value> {
    let (parents, last) = path.rsplit_once('.').unwrap_or(("", path));
    let mut table = root;
    for key in parents.split('.').filter(|k| !k.is_empty()) {
        table = table.get(key)?.as_table()?;
    }
    table.get(last)
}

/// One step of a key path.
#[derive(Debug, PartialEq)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
    Name(&'a str),
}

impl Step<'_> {
    /// Extends the path walked so far, for messages.
    fn append_to(&self, walked: &mut String) {
        match self {
            Step::Key(key) if walked.is_empty() => walked.push_str(key),
            Step::Key(key) => *walked = format!("{walked}.{key}"),
            Step::Index(i) => *walked = format!("{walked}[{i}]"),
            Step::Name(name) => *walked = format!("{walked}[{name}]"),
        }
    }
}

/// Splits `a.b[1].c[name]` into its steps.
fn steps(path: &str) -> Result<Vec<Step<'_>>, String> {
    let malformed = |problem: &str| {
        format!("key path `{path}`: {problem}; write keys joined by `.`, each with optional `[index]` or `[name]`")
    };
    let mut steps = Vec::new();
    let mut rest = path.trim();
    loop {
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        let key = &rest[..end];
        if key.is_empty() || key.contains(']') {
            return Err(malformed("expected a key"));
        }
        steps.push(Step::Key(key));
        rest = &rest[end..];
        while let Some(inner) = rest.strip_prefix('[') {
            let close = inner.find(']').ok_or_else(|| malformed("`[` without `]`"))?;
            steps.push(selector(inner[..close].trim()).ok_or_else(|| malformed("empty `[]`"))?);
            rest = &inner[close + 1..];
        }
        match rest.strip_prefix('.') {
            Some(next) => rest = next,
            None if rest.is_empty() => return Ok(steps),
            None => return Err(malformed("expected `.` or `[` after `]`")),
        }
    }
}

/// `1` → an index; `name` or `"name"` → a name.
fn selector(text: &str) -> Option<Step<'_>> {
    if let Some(quoted) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        return Some(Step::Name(quoted));
    }
    match text.parse() {
        Ok(index) => Some(Step::Index(index)),
        Err(_) if text.is_empty() => None,
        Err(_) => Some(Step::Name(text)),
    }
}

/// The value one step below `cursor`, at `walked`; a missing key is created as a table when
/// `create` allows.
fn descend<'v>(
    cursor: &'v mut Value,
    step: &Step,
    walked: &str,
    create: bool,
) -> Result<&'v mut Value, String> {
    match step {
        Step::Key(key) => {
            let kind = cursor.type_str();
            let table = cursor
                .as_table_mut()
                .ok_or_else(|| format!("`{walked}` is a {kind}, not a table with key `{key}`"))?;
            if create {
                return Ok(table
                    .entry(key.to_string())
                    .or_insert_with(|| Value::Table(Default::default())));
            }
            let full = if walked.is_empty() {
                key.to_string()
            } else {
                format!("{walked}.{key}")
            };
            table
                .get_mut(*key)
                .ok_or_else(|| format!("`{full}` is not set, so it has no element to select"))
        }
        Step::Index(index) => {
            let items = array(cursor, walked)?;
            let len = items.len();
            items.get_mut(*index).ok_or_else(|| {
                format!(
                    "`{walked}` has {len} element(s), so index {index} is out of range (indices start at 0)"
                )
            })
        }
        Step::Name(name) => {
            let items = array(cursor, walked)?;
            let names: Vec<String> = items
                .iter()
                .filter_map(|item| item.get("name").and_then(Value::as_str))
                .map(|n| format!("`{n}`"))
                .collect();
            let count = items.len();
            items
                .iter_mut()
                .find(|item| item.get("name").and_then(Value::as_str) == Some(name))
                .ok_or_else(|| {
                    if names.is_empty() {
                        format!(
                            "no element of `{walked}` is named `{name}`: none of its {count} element(s) has \
                             a `name`; select one by index"
                        )
                    } else {
                        format!(
                            "no element of `{walked}` is named `{name}`; the names are {}",
                            names.join(", ")
                        )
                    }
                })
        }
    }
}

/// The array at `walked`, or an error saying that `[…]` needs one.
fn array<'v>(cursor: &'v mut Value, walked: &str) -> Result<&'v mut Vec<Value>, String> {
    let kind = cursor.type_str();
    cursor
        .as_array_mut()
        .ok_or_else(|| format!("`{walked}` is a {kind}, not an array; `[…]` selects an element of an array"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Value {
        Value::Table(
            r#"
            data.train = { plugin = "webperson", root = "a" }
            data.eval = [
                { plugin = "cuhk-pedes", name = "CUHK-PEDES", root = "b" },
                { plugin = "rstpreid", name = "RSTPReid", root = "c" },
                { plugin = "icfg-pedes", name = "1", root = "d" },
            ]
            "#
            .parse()
            .unwrap(),
        )
    }

    fn roots(config: &Value) -> Vec<&str> {
        let eval = config["data"]["eval"].as_array().unwrap();
        eval.iter().map(|e| e["root"].as_str().unwrap()).collect()
    }

    #[test]
    fn paths_split_into_keys_indices_and_names() {
        use Step::*;
        assert_eq!(steps("a.b").unwrap(), [Key("a"), Key("b")]);
        assert_eq!(
            steps("data.eval[1].root").unwrap(),
            [Key("data"), Key("eval"), Index(1), Key("root")]
        );
        assert_eq!(
            steps("x[ v1.2 ][\"3\"]").unwrap(),
            [Key("x"), Name("v1.2"), Name("3")]
        );
        for bad in ["", "a..b", "a[1", "a[]", "a[1]b", ".a", "a."] {
            let err = steps(bad).unwrap_err();
            assert!(err.contains("[index]"), "{bad}: {err}");
        }
    }

    #[test]
    fn an_override_changes_one_element_by_index_or_name() {
        let mut c = config();
        apply_override(&mut c, r#"data.eval[1].root="/data""#).unwrap();
        assert_eq!(roots(&c), ["b", "/data", "d"]);
        apply_override(&mut c, r#"data.eval[CUHK-PEDES].root="/x""#).unwrap();
        assert_eq!(roots(&c), ["/x", "/data", "d"]);
        // A name made of digits is quoted; unquoted digits are an index.
        apply_override(&mut c, r#"data.eval["1"].root="/y""#).unwrap();
        assert_eq!(roots(&c), ["/x", "/data", "/y"]);
        // A new key inside an element, and a whole element replaced.
        apply_override(&mut c, "data.eval[0].split=\"val\"").unwrap();
        assert_eq!(c["data"]["eval"][0]["split"].as_str(), Some("val"));
        apply_override(&mut c, "data.eval[2]={ plugin = \"rstpreid\", root = \"z\" }").unwrap();
        assert_eq!(roots(&c), ["/x", "/data", "z"]);
        assert_eq!(c["data"]["eval"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn a_missing_element_names_the_array_and_what_it_holds() {
        let mut c = config();
        let err = apply_override(&mut c, "data.eval[3].root=1").unwrap_err();
        assert!(
            err.contains("`data.eval` has 3 element(s)") && err.contains("index 3"),
            "{err}"
        );
        let err = apply_override(&mut c, "data.eval[ICFG].root=1").unwrap_err();
        assert!(
            err.contains("`data.eval`")
                && err.contains("`ICFG`")
                && err.contains("`CUHK-PEDES`, `RSTPReid`, `1`"),
            "{err}"
        );
        let err = apply_override(&mut c, "data.train[0].root=1").unwrap_err();
        assert!(err.contains("`data.train` is a table, not an array"), "{err}");
        let err = apply_override(&mut c, "data.extra[0].root=1").unwrap_err();
        assert!(err.contains("`data.extra` is not set"), "{err}");
        let err = apply_override(&mut c, "data.train.root.x=1").unwrap_err();
        assert!(
            err.contains("`data.train.root` is a string, not a table"),
            "{err}"
        );
        let mut unnamed = Value::Table("a = [{ x = 1 }]".parse().unwrap());
        let err = apply_override(&mut unnamed, "a[b].x=2").unwrap_err();
        assert!(err.contains("has a `name`; select one by index"), "{err}");
        assert_eq!(c, config(), "a failed override changes nothing");
    }
}
