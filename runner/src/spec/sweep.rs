//! Sweeps inside a variant: `sweep.grid` (every combination of the listed values) and
//! `sweep.zip` (the lists paired element by element), both keyed by dotted paths of the run
//! configuration:
//!
//! ```toml
//! [[variant]]
//! name = "lr"
//! sweep.grid = { "train.lr" = [1e-4, 3e-4], "train.batch_size" = [32, 64] }
//! sweep.zip = { "masking.noise_max" = [0.1, 0.2], "masking.mtp_max" = [0.2, 0.3] }
//! ```
//!
//! gives 2 × 2 × 2 = 8 variants named like `lr[train.lr=0.0001,train.batch_size=32,…]`.

use toml::{Table, Value};

/// One point of a sweep: the key paths and values to set.
pub type Point = Vec<(String, Value)>;

/// The points of a variant's `sweep` table (one empty point when there is none).
pub fn points(sweep: Option<Value>) -> Result<Vec<Point>, String> {
    let Some(sweep) = sweep else {
        return Ok(vec![Vec::new()]);
    };
    let Value::Table(mut sweep) = sweep else {
        return Err("`sweep` must be a table with `grid` and/or `zip`".into());
    };
    let grid = lists(sweep.remove("grid"), "grid")?;
    let zip = lists(sweep.remove("zip"), "zip")?;
    if let Some(key) = sweep.keys().next() {
        return Err(format!("unknown key `sweep.{key}`; expected `grid` or `zip`"));
    }
    let mut points: Vec<Point> = vec![Vec::new()];
    for (path, values) in &grid {
        let mut next = Vec::with_capacity(points.len() * values.len());
        for point in &points {
            for v in values {
                let mut p = point.clone();
                p.push((path.clone(), v.clone()));
                next.push(p);
            }
        }
        points = next;
    }
    if let Some((_, first)) = zip.first() {
        let n = first.len();
        if let Some((path, values)) = zip.iter().find(|(_, v)| v.len() != n) {
            return Err(format!(
                "`sweep.zip` lists must have the same length: `{path}` has {}, not {n}",
                values.len()
            ));
        }
        let mut next = Vec::with_capacity(points.len() * n);
        for point in &points {
            for i in 0..n {
                let mut p = point.clone();
                p.extend(zip.iter().map(|(path, values)| (path.clone(), values[i].clone())));
                next.push(p);
            }
        }
        points = next;
    }
    Ok(points)
}

/// `{ "a.b" = [..], .. }` as (path, values), in key order.
fn lists(table: Option<Value>, kind: &str) -> Result<Vec<(String, Vec<Value>)>, String> {
    let Some(table) = table else { return Ok(Vec::new()) };
    let Value::Table(table) = table else {
        return Err(format!("`sweep.{kind}` must be a table of lists"));
    };
    let table: Table = table;
    table
        .into_iter()
        .map(|(path, v)| match v {
            Value::Array(values) if !values.is_empty() => Ok((path, values)),
            _ => Err(format!(
                "`sweep.{kind}.\"{path}\"` must be a non-empty list of values"
            )),
        })
        .collect()
}

/// The variant name of a sweep point: `name[path=value,…]`.
pub fn name(base: &str, point: &Point) -> String {
    if point.is_empty() {
        return base.to_string();
    }
    let parts: Vec<String> = point
        .iter()
        .map(|(p, v)| format!("{p}={}", v.to_string().trim_matches('"')))
        .collect();
    format!("{base}[{}]", parts.join(","))
}

/// `name` (as [`name`] makes it) with the item of `path` left out: `base[a=1,b=2]` without
/// `a` is `base[b=2]`, and without its only item `base`. Other names are returned as given.
/// Items are told apart by commas, so a swept value with a comma would be cut at it.
pub fn name_without(name: &str, path: &str) -> String {
    let Some((base, items)) = name.strip_suffix(']').and_then(|n| n.split_once('[')) else {
        return name.to_string();
    };
    let prefix = format!("{path}=");
    let kept: Vec<&str> = items.split(',').filter(|i| !i.starts_with(&prefix)).collect();
    if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}[{}]", kept.join(","))
    }
}
