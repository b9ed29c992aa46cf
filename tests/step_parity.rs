//! Parity of a whole training step with the authors' code: the GA-DMS pre-training forward
//! (scores, SDM on the noise-masked text, MTP), the gradients of the listed parameters, and
//! the parameters after one Adam step — using the runner's step and the real plugin
//! libraries, loaded dynamically as in a run.

use std::collections::HashMap;

use gadms::model::weights::{load_named, read_safetensors, Strictness};
use gadms::model::{Clip, TextTransformer};
use gadms::plugin::{default_search_path, PluginSet};
use gadms::train::optim::AdamConfig;
use gadms::train::stages::Stages;
use gadms::train::step::{self, Batch, MtpBatch, WeightedLoss};
use gadms_golden::{assert_close, Golden};
use gadms_plugin::loss::LossContext;
use gadms_plugin::masking::{MaskingContext, Vocab};
use tch::nn::VarStore;
use tch::{Kind, Tensor};

mod common;
use common::{device, golden_config, int, tensors_on};

fn plugins() -> PluginSet {
    let set = PluginSet::discover(&default_search_path());
    assert!(
        set.problems.is_empty(),
        "plugin problems: {:?}",
        set.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>()
    );
    set
}

#[test]
fn one_training_step_matches_the_reference() {
    let g = Golden::load();
    let c = g.model_config();
    let config = golden_config(&g);
    let device = device();
    let io = tensors_on(&g, "model_io.safetensors", device);
    let plugins = plugins();

    let vs = VarStore::new(device);
    let clip = Clip::new(&vs.root(), &config);
    let vocab = Vocab::clip_layout(config.vocab_size);
    let ctx = LossContext {
        embed_dim: config.embed_dim,
        vocab,
        num_classes: int(c, "num_classes"),
    };
    let build = |name: &str, options: &str| {
        plugins
            .loss(name)
            .unwrap()
            .build(&vs.root(), &ctx, options)
            .unwrap()
    };
    let mtp_options = format!(
        "depth = {}\nheads = {}",
        int(c, "cmt_depth"),
        int(c, "cross_heads")
    );
    let losses = vec![
        WeightedLoss {
            name: "sdm".into(),
            weight: 1.0,
            loss: build("sdm", ""),
        },
        WeightedLoss {
            name: "mtp".into(),
            weight: c["mlm_loss_weight"].as_f64().unwrap(),
            loss: build("mtp", &mtp_options),
        },
    ];
    // Built (so its parameters exist, as in the reference model) but not part of the loss.
    let _id = build("id", "");
    let file = g.dir.join("model.safetensors");
    load_named(
        &vs,
        &read_safetensors(&file).unwrap(),
        &file,
        Strictness::default(),
    )
    .unwrap();

    let batch_size = io["input/pids"].size()[0];
    let masking_options = format!("layers = {}\ngroup = {batch_size}", int(c, "dense_layers_n"));
    let masking = plugins
        .masking("gadms")
        .unwrap()
        .create(
            &MaskingContext {
                vocab,
                context_length: config.context_length,
            },
            &masking_options,
        )
        .unwrap();

    let labels = io["input/mlm_labels"].shallow_clone();
    let positions = labels.view([-1]).ne(0).nonzero().view([-1]);
    let batch = Batch {
        images: io["input/images"].shallow_clone(),
        clean: io["input/caption_ids_ori"].shallow_clone(),
        // Trimmed as the collator trims it: the reference's numbers from a shorter encode.
        alignment: TextTransformer::feature_prefix(&io["input/noise_text"]),
        mtp: Some(MtpBatch {
            ids: io["input/mlm_ids"].shallow_clone(),
            labels,
            positions,
        }),
        pids: io["input/pids"].shallow_clone(),
    };
    let out = step::forward(
        &clip,
        masking.as_ref(),
        &losses,
        &batch,
        &gadms::dist::Single,
        &mut Stages::default(),
    )
    .unwrap();
    let check = |name: &str, ours: &Tensor| assert_close(name, ours, &io[name], g.atol(name));
    check("output/grad_emap", &out.scores.as_ref().unwrap().scores);
    let part = |n: &str| out.losses.iter().find(|(k, _)| k == n).unwrap().1.shallow_clone();
    check("output/loss/sdm", &part("sdm"));
    check("output/loss/mlm_weighted", &part("mtp"));
    check("output/loss/total", &out.total);

    let lr = io["output/optimizer/lr_epoch1"].double_value(&[]);
    let mut opt = AdamConfig::default().build(&vs);
    assert_eq!(
        opt.rules().len(),
        1,
        "the reference gives every parameter the same group rule"
    );
    opt.set_lr(lr);
    let grads: HashMap<String, Tensor> = opt
        .names()
        .map(String::from)
        .zip(opt.backward(&out.total))
        .collect();
    let vars: HashMap<String, Tensor> = vs.variables();
    let before = vars["classifier.weight"].copy();
    let listed = g.file("model_io.safetensors")["grad_params"].as_array().unwrap();
    for name in listed.iter().map(|n| n.as_str().unwrap()) {
        check(&format!("output/grad/{name}"), &grads[name]);
    }
    assert!(
        !grads["classifier.weight"].defined(),
        "no active loss uses the classifier"
    );
    let ordered: Vec<Tensor> = opt.names().map(|n| grads[n].shallow_clone()).collect();
    opt.step(&ordered).unwrap();
    for name in listed.iter().map(|n| n.as_str().unwrap()) {
        check(&format!("output/after_step/{name}"), &vars[name]);
    }
    let skipped = io["output/optimizer/classifier_grad_is_none"]
        .to_kind(Kind::Bool)
        .int64_value(&[])
        == 1;
    assert!(
        skipped && vars["classifier.weight"].equal(&before),
        "Adam must skip a parameter without gradient"
    );
}
