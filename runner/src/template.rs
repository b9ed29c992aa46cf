//! `gadms-run new-plugin`: a new masking plugin crate from the template crate
//! `plugins/template-masking`, whose two files are embedded in the binary.

use std::path::{Path, PathBuf};

const CARGO_TOML: &str = include_str!("../../plugins/template-masking/Cargo.toml");
const LIB_RS: &str = include_str!("../../plugins/template-masking/src/lib.rs");

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error(
        "`{0}` is not a valid plugin name: use lowercase letters, digits and dashes, starting with a letter"
    )]
    BadName(String),
    #[error("{} already exists; choose another name or remove it", .0.display())]
    Exists(PathBuf),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Writes `<dir>/<name>/` with the template's crate renamed to `gadms-<name>` and its
/// component to `<name>`. `dir` should be the workspace's `plugins/` folder, whose members
/// the workspace picks up by glob.
pub fn new_masking_plugin(dir: &Path, name: &str) -> Result<PathBuf, TemplateError> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err(TemplateError::BadName(name.into()));
    }
    let root = dir.join(name);
    if root.exists() {
        return Err(TemplateError::Exists(root));
    }
    let cargo = CARGO_TOML
        .replace(
            "name = \"gadms-template-masking\"",
            &format!("name = \"gadms-{name}\""),
        )
        .replace(
            "Template for new gadms masking plugins: `every-nth`, a deterministic MTP masking",
            &format!("gadms masking plugin `{name}`"),
        );
    let lib = LIB_RS.replace(
        "const NAME: &str = \"every-nth\";",
        &format!("const NAME: &str = \"{name}\";"),
    );
    let write = |path: PathBuf, text: &str| {
        std::fs::create_dir_all(path.parent().expect("a file in a folder"))
            .and_then(|_| std::fs::write(&path, text))
            .map_err(|source| TemplateError::Write { path, source })
    };
    write(root.join("Cargo.toml"), &cargo)?;
    write(root.join("src/lib.rs"), &lib)?;
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_is_renamed_where_it_matters() {
        // The replacements must hit: a template edit that breaks them fails here.
        assert!(CARGO_TOML.contains("name = \"gadms-template-masking\""));
        assert!(LIB_RS.contains("const NAME: &str = \"every-nth\";"));
        let dir = std::env::temp_dir().join(format!("gadms-template-test-{}", std::process::id()));
        let root = new_masking_plugin(&dir, "my-masking").unwrap();
        let cargo = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
        assert!(cargo.contains("name = \"gadms-my-masking\""));
        assert!(std::fs::read_to_string(root.join("src/lib.rs"))
            .unwrap()
            .contains("\"my-masking\""));
        assert!(matches!(
            new_masking_plugin(&dir, "my-masking"),
            Err(TemplateError::Exists(_))
        ));
        assert!(matches!(
            new_masking_plugin(&dir, "My_Masking"),
            Err(TemplateError::BadName(_))
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
