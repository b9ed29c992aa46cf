//! The public benchmarks of text-to-person retrieval, read from their released files:
//!
//! - `cuhk-pedes`, `icfg-pedes`, `rstpreid`: one JSON list of image records per benchmark,
//!   split and numbered by the reference's rules (method spec §7.1–7.3, see `pedes`);
//! - `webperson`: the pre-training corpus as a JSON list of `{image path: {caption1,
//!   caption2}}` objects, one identity per image, shared by its captions (§7.4, see `webperson`).
//!
//! The plugin only reads annotations and checks that image files exist; images reach the
//! runner as [`ImageSource::File`](gadms_plugin::dataset::ImageSource::File) paths and are
//! decoded there, so a corrupt image is reported by the runner with its sample.
//!
//! Every problem with the files is an error that names the file, and where one is to blame
//! the record, with what to do about it. The one exception is opt-in: with
//! `skip_missing = true` samples whose image file is missing are dropped, and their count is
//! printed as one line on stderr per loaded split (the dataset contract has no channel for
//! warnings).

mod annotations;
mod images;
mod options;
mod pedes;
mod webperson;

use gadms_plugin::{Registry, Result};

gadms_plugin::declare_plugin!(register);

fn register(registry: &mut Registry) -> Result<()> {
    for benchmark in &pedes::BENCHMARKS {
        registry.dataset(benchmark.name, benchmark.description, pedes::Factory(benchmark));
    }
    registry.dataset(
        webperson::NAME,
        "WebPerson pre-training corpus (JSON of image path → caption1/caption2); train only",
        webperson::Factory,
    );
    Ok(())
}

#[cfg(test)]
mod fixture;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_the_four_datasets() {
        let mut registry = Registry::new();
        register(&mut registry).unwrap();
        let names: Vec<String> = registry.into_entries().into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["cuhk-pedes", "icfg-pedes", "rstpreid", "webperson"]);
    }
}
