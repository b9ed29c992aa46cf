//! Parity of a whole training step with the authors' code: the GA-DMS pre-training forward
//! (scores, SDM on the noise-masked text, MTP), the gradients of the listed parameters, and
//! the parameters after one Adam step — using the runner's step and the real plugin
//! libraries, loaded dynamically as in a run.

use std::collections::HashMap;

use gadms::train::optim::AdamConfig;
use gadms::train::stages::Stages;
use gadms::train::step;
use gadms_golden::assert_close;
use tch::{Kind, Tensor};

mod common;
#[path = "common/golden_step.rs"]
mod golden_step;
use golden_step::GoldenStep;

#[test]
fn one_training_step_matches_the_reference() {
    let fixture = GoldenStep::new();
    let (g, io, vs) = (&fixture.golden, &fixture.io, &fixture.vs);
    let losses = vec![fixture.loss("sdm", 1.0, ""), fixture.mtp()];
    // Built (so its parameters exist, as in the reference model) but not part of the loss.
    let _id = fixture.loss("id", 1.0, "");
    fixture.load_weights();
    let masking = fixture.masking(fixture.batch_size());
    let batch = fixture.batch(0, fixture.batch_size());
    let out = step::forward(
        &fixture.clip,
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
    let mut opt = AdamConfig::default().build(vs);
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
