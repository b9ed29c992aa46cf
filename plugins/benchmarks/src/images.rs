//! Image paths from annotation records: resolved against the images folder, refused when
//! they would leave it, and checked to exist — a missing file is found here, when the split
//! loads, rather than hours later when a batch first needs it.

use std::path::{Component, Path, PathBuf};

use gadms_plugin::dataset::SplitKind;
use gadms_plugin::{PluginError, Result};

/// Resolves the image paths of one split's records.
pub struct ImageFiles<'a> {
    /// The folder the records' paths are relative to.
    folder: &'a Path,
    /// The annotation file, for messages.
    annotations: &'a Path,
    skip_missing: bool,
    /// Paths seen and paths skipped as missing.
    seen: usize,
    skipped: usize,
}

impl<'a> ImageFiles<'a> {
    pub fn new(folder: &'a Path, annotations: &'a Path, skip_missing: bool) -> Self {
        Self {
            folder,
            annotations,
            skip_missing,
            seen: 0,
            skipped: 0,
        }
    }

    /// The image file of record `index`, or `None` when it is missing and missing files are
    /// skipped. A path that is absolute or climbs out with `..` is refused: annotations
    /// must not make the runner read files outside the dataset.
    pub fn resolve(&mut self, index: usize, relative: &str) -> Result<Option<PathBuf>> {
        let inside = !relative.is_empty()
            && Path::new(relative)
                .components()
                .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        if !inside {
            return Err(PluginError::File {
                path: self.annotations.into(),
                message: format!(
                    "record {index}: image path `{relative}` is not inside {} (it is empty, \
                     absolute or has `..`); image paths must be relative to that folder",
                    self.folder.display()
                ),
            });
        }
        self.seen += 1;
        let path = self.folder.join(relative);
        if path.is_file() {
            Ok(Some(path))
        } else if self.skip_missing {
            self.skipped += 1;
            Ok(None)
        } else {
            Err(PluginError::File {
                path,
                message: format!(
                    "image of record {index} (`{relative}` in {}) is missing; restore it, or set \
                     option `skip_missing = true` to drop such samples",
                    self.annotations.display()
                ),
            })
        }
    }

    /// Prints how many images were skipped, if any: one stderr line, since the dataset
    /// contract has no channel for warnings and a silently smaller split misleads.
    pub fn report_skipped(&self, dataset: &str, split: SplitKind) {
        if self.skipped > 0 {
            eprintln!(
                "{dataset}: skipped {} of {} `{}` images whose files are missing under {} (skip_missing = true)",
                self.skipped,
                self.seen,
                split.as_str(),
                self.folder.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::Fixture;

    #[test]
    fn paths_resolve_inside_the_folder() {
        let f = Fixture::new("images-resolve");
        f.images("imgs", ["a/1.jpg"]);
        let (folder, json) = (f.path("imgs"), f.path("x.json"));
        let mut files = ImageFiles::new(&folder, &json, false);
        assert_eq!(files.resolve(0, "a/1.jpg").unwrap(), Some(folder.join("a/1.jpg")));
        assert_eq!(
            files.resolve(1, "./a/1.jpg").unwrap(),
            Some(folder.join("./a/1.jpg"))
        );
    }

    #[test]
    fn paths_that_leave_the_folder_are_refused() {
        let f = Fixture::new("images-escape");
        f.images("imgs", ["a/1.jpg"]);
        f.write("secret.jpg", b"outside");
        let (folder, json) = (f.path("imgs"), f.path("x.json"));
        let mut files = ImageFiles::new(&folder, &json, true);
        let absolute = f.path("secret.jpg").display().to_string();
        for bad in ["../secret.jpg", "a/../../secret.jpg", &absolute, ""] {
            let err = files.resolve(7, bad).unwrap_err().to_string();
            assert!(
                err.contains("x.json") && err.contains("record 7") && err.contains("not inside"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn a_missing_file_is_an_error_unless_skipped() {
        let f = Fixture::new("images-missing");
        let (folder, json) = (f.path("imgs"), f.path("x.json"));
        let err = ImageFiles::new(&folder, &json, false)
            .resolve(3, "gone.jpg")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("gone.jpg") && err.contains("record 3") && err.contains("skip_missing"),
            "{err}"
        );
        let mut files = ImageFiles::new(&folder, &json, true);
        assert_eq!(files.resolve(3, "gone.jpg").unwrap(), None);
        assert_eq!((files.seen, files.skipped), (1, 1));
    }
}
