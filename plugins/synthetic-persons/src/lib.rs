//! `synthetic-persons`: a person-retrieval benchmark generated in memory from a seed.
//!
//! Identities are attribute combinations (hair, top, bottom, shoes, bag, hat; see
//! `attributes`) plus drawn-only traits; each has several rendered views (`render`) and
//! several captions per view (`captions`). A share of training captions carries injected
//! noise whose byte ranges are recorded (`noise`), which is what makes the data useful for
//! GA-DMS: a masking strategy can be scored on whether it finds the noise. Nothing is
//! downloaded; the dataset root is ignored.

mod attributes;
mod captions;
mod draw;
mod noise;
mod options;
mod palette;
#[cfg(test)]
mod png;
mod render;
mod splits;

use std::path::Path;
use std::sync::Arc;

use gadms_plugin::dataset::{CaptionRecord, ImageRecord, ImageSource, SplitData, SplitKind};
use gadms_plugin::rng::Rng;
use gadms_plugin::{Dataset, DatasetFactory, Registry, Result};

use crate::attributes::Identity;
use crate::noise::NoiseConfig;
use crate::options::Options;
use crate::render::View;
use crate::splits::Layout;

/// The registered dataset name (also the component name in option errors).
pub const NAME: &str = "synthetic-persons";

gadms_plugin::declare_plugin!(register);

fn register(registry: &mut Registry) -> Result<()> {
    registry.dataset(
        NAME,
        "generated pedestrians with attribute captions and labelled caption noise; no download",
        Factory,
    );
    Ok(())
}

/// Tags of the independent random streams derived from the seed. Views, captions and noise
/// are keyed by (pid, image, caption), so changing one option (say the noise rate) leaves
/// everything it does not govern byte-identical.
mod stream {
    pub const IDENTITIES: u64 = 1;
    pub const VIEW: u64 = 2;
    pub const CAPTION: u64 = 3;
    pub const NOISE: u64 = 4;
}

struct Factory;

impl DatasetFactory for Factory {
    fn open(&self, _root: Option<&Path>, options: &str) -> Result<Box<dyn Dataset>> {
        Ok(Box::new(SyntheticPersons::new(Options::parse(options)?)))
    }
}

struct SyntheticPersons {
    options: Options,
    layout: Layout,
    /// Indexed by pid, over all splits.
    identities: Vec<Identity>,
}

impl SyntheticPersons {
    fn new(options: Options) -> Self {
        let layout = Layout::new(&options);
        let mut rng = Rng::derive(options.seed, &[stream::IDENTITIES]);
        let identities = Identity::generate(&mut rng, layout.total());
        Self {
            options,
            layout,
            identities,
        }
    }

    fn image(&self, pid: usize, view: usize) -> ImageSource {
        let o = &self.options;
        let mut rng = Rng::derive(o.seed, &[stream::VIEW, pid as u64, view as u64]);
        let sampled = View::sample(&mut rng);
        let pixels = render::render(&self.identities[pid], &sampled, o.width, o.height, &mut rng);
        ImageSource::Rgb8 {
            width: o.width,
            height: o.height,
            pixels: Arc::from(pixels),
        }
    }

    fn caption(
        &self,
        pid: usize,
        image: usize,
        view: usize,
        index: usize,
        noise: NoiseConfig,
    ) -> CaptionRecord {
        let key = [pid as u64, view as u64, index as u64];
        let identity = &self.identities[pid];
        let look = &identity.look;
        let seed = self.options.seed;
        let mut wording = Rng::derive(seed, &[&[stream::CAPTION], &key[..]].concat());
        let facts = captions::chosen_facts(look, &mut wording);
        let mut noise_rng = Rng::derive(seed, &[&[stream::NOISE], &key[..]].concat());
        let (text, noise_spans) = noise::caption(identity, facts, noise, &mut wording, &mut noise_rng);
        CaptionRecord {
            pid: pid as i64,
            image,
            text,
            noise_spans,
        }
    }
}

impl Dataset for SyntheticPersons {
    fn load(&self, split: SplitKind) -> Result<SplitData> {
        let o = &self.options;
        let noisy = split == SplitKind::Train || o.eval_noise;
        let noise = NoiseConfig {
            rate: if noisy { o.noise_rate } else { 0.0 },
            wrong_attribute_share: o.wrong_attribute_share,
            wrong_colour: o.wrong_colour,
            wrong_placement: o.wrong_placement,
            sentences: o.noise_sentences,
        };
        let pids = self.layout.pids(split)?;
        let mut data = SplitData {
            images: Vec::with_capacity(pids.len() * o.images_per_id),
            captions: Vec::with_capacity(pids.len() * o.images_per_id * o.captions_per_image),
        };
        for pid in pids {
            for view in 0..o.images_per_id {
                let image = data.images.len();
                data.images.push(ImageRecord {
                    pid: pid as i64,
                    source: self.image(pid, view),
                });
                for index in 0..o.captions_per_image {
                    data.captions.push(self.caption(pid, image, view, index, noise));
                }
            }
        }
        Ok(data)
    }

    /// The generator injects every noise sentence itself and records each one's bytes.
    fn labels_noise(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests;
