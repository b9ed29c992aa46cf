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

/// Sets the value at a dotted key path, creating tables on the way.
pub fn set_path(root: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        return Err("empty key path".into());
    }
    let keys: Vec<&str> = path.split('.').collect();
    let (last, parents) = keys.split_last().expect("split yields at least one key");
    let mut cursor = root;
    for key in parents {
        let table = cursor
            .as_table_mut()
            .ok_or_else(|| format!("`{key}` is inside a value that is not a table"))?;
        cursor = table
            .entry(key.to_string())
            .or_insert_with(|| Value::Table(Default::default()));
    }
    cursor
        .as_table_mut()
        .ok_or_else(|| format!("the parent of `{last}` is not a table"))?
        .insert(last.to_string(), value);
    Ok(())
}
