//! Scratch dataset folders for the tests. Image files hold arbitrary bytes: the plugin only
//! checks that they exist.

use std::path::{Path, PathBuf};

/// A fresh folder under the system's temp dir, removed when dropped.
pub struct Fixture {
    pub root: PathBuf,
}

impl Fixture {
    /// `name` must be unique among the tests, which run in parallel.
    pub fn new(name: &str) -> Self {
        let root = std::env::temp_dir().join(format!("gadms-benchmarks-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        Self { root }
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// Writes `contents` to `relative`, creating its folders.
    pub fn write(&self, relative: &str, contents: &[u8]) -> PathBuf {
        let path = self.path(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// Writes a stand-in image file at each of `relatives` under `images`.
    pub fn images<'a>(&self, images: &str, relatives: impl IntoIterator<Item = &'a str>) {
        for relative in relatives {
            self.write(&format!("{images}/{relative}"), b"not decoded");
        }
    }

    pub fn remove(&self, relative: &str) {
        std::fs::remove_file(self.path(relative)).unwrap();
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The file part of `source`, relative to `root`, for comparing loaded image paths.
pub fn relative(source: &gadms_plugin::dataset::ImageSource, root: &Path) -> String {
    match source {
        gadms_plugin::dataset::ImageSource::File(path) => {
            assert!(path.is_absolute(), "{}", path.display());
            path.strip_prefix(root)
                .unwrap_or_else(|_| panic!("{} is not under {}", path.display(), root.display()))
                .to_string_lossy()
                .into_owned()
        }
        other => panic!("expected a file, got {other:?}"),
    }
}
