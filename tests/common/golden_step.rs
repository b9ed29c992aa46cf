//! The golden training step's pieces, for the tests that run the runner's step on it: the
//! golden model with its losses built from the real plugin libraries (loaded dynamically,
//! as in a run), the golden batch as the collator makes it, and the `gadms` strategy.

use std::collections::HashMap;

use gadms::model::weights::{load_named, read_safetensors, Strictness};
use gadms::model::{Clip, ModelConfig, TextTransformer};
use gadms::plugin::{default_search_path, PluginSet};
use gadms::train::step::{Batch, MtpBatch, WeightedLoss};
use gadms_golden::Golden;
use gadms_plugin::loss::LossContext;
use gadms_plugin::masking::{MaskingContext, Vocab};
use gadms_plugin::MaskingStrategy;
use tch::nn::VarStore;
use tch::Tensor;

use crate::common::{device, golden_config, int, tensors_on};

pub struct GoldenStep {
    pub golden: Golden,
    pub config: ModelConfig,
    /// `model_io.safetensors` on `device`.
    pub io: HashMap<String, Tensor>,
    pub plugins: PluginSet,
    pub vs: VarStore,
    pub clip: Clip,
}

impl GoldenStep {
    /// The golden model's encoders (not yet loaded: losses add parameters first).
    pub fn new() -> Self {
        let golden = Golden::load();
        let config = golden_config(&golden);
        let device = device();
        let io = tensors_on(&golden, "model_io.safetensors", device);
        let plugins = PluginSet::discover(&default_search_path());
        assert!(
            plugins.problems.is_empty(),
            "plugin problems: {:?}",
            plugins.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>()
        );
        let vs = VarStore::new(device);
        let clip = Clip::new(&vs.root(), &config);
        Self {
            golden,
            config,
            io,
            plugins,
            vs,
            clip,
        }
    }

    /// Loss plugin `name` with its parameters in the model's store.
    pub fn loss(&self, name: &str, weight: f64, options: &str) -> WeightedLoss {
        let ctx = LossContext {
            embed_dim: self.config.embed_dim,
            vocab: Vocab::clip_layout(self.config.vocab_size),
            num_classes: int(self.golden.model_config(), "num_classes"),
            caption_tokens: None,
        };
        let loss = self
            .plugins
            .loss(name)
            .unwrap()
            .build(&self.vs.root(), &ctx, options)
            .unwrap();
        WeightedLoss {
            name: name.into(),
            weight,
            loss,
        }
    }

    /// The MTP loss as the reference configures it, at its weight.
    pub fn mtp(&self) -> WeightedLoss {
        let c = self.golden.model_config();
        let options = format!(
            "depth = {}\nheads = {}",
            int(c, "cmt_depth"),
            int(c, "cross_heads")
        );
        self.loss("mtp", c["mlm_loss_weight"].as_f64().unwrap(), &options)
    }

    /// Loads the golden weights into every parameter built so far.
    pub fn load_weights(&self) {
        let file = self.golden.dir.join("model.safetensors");
        load_named(
            &self.vs,
            &read_safetensors(&file).unwrap(),
            &file,
            Strictness::default(),
        )
        .unwrap();
    }

    /// The `gadms` strategy with the reference's tail, min–max over groups of `group`.
    pub fn masking(&self, group: i64) -> Box<dyn MaskingStrategy> {
        let c = self.golden.model_config();
        let options = format!("layers = {}\ngroup = {group}", int(c, "dense_layers_n"));
        self.plugins
            .masking("gadms")
            .unwrap()
            .create(
                &MaskingContext {
                    vocab: Vocab::clip_layout(self.config.vocab_size),
                    context_length: self.config.context_length,
                },
                &options,
            )
            .unwrap()
    }

    /// Samples in the golden batch.
    pub fn batch_size(&self) -> i64 {
        self.io["input/pids"].size()[0]
    }

    /// Rows `start..start + len` of the golden batch, as the collator would make them.
    pub fn batch(&self, start: i64, len: i64) -> Batch {
        let rows = |name: &str| self.io[name].narrow(0, start, len);
        let labels = rows("input/mlm_labels");
        let positions = labels.view([-1]).ne(0).nonzero().view([-1]);
        Batch {
            images: rows("input/images"),
            clean: rows("input/caption_ids_ori"),
            // Trimmed as the collator trims it: the reference's numbers from a shorter encode.
            alignment: TextTransformer::feature_prefix(&rows("input/noise_text")),
            mtp: Some(MtpBatch {
                ids: rows("input/mlm_ids"),
                labels,
                positions,
            }),
            pids: rows("input/pids"),
        }
    }
}
