//! Gradient caching (`train.micro_batch`): a step over micro-batches gives the gradients of
//! one big batch for the batch-level losses (SDM and ID see every sample) and the mean of
//! the micro-batches' own for MTP — checked against the plain step on the golden model,
//! with the real plugin libraries.

use gadms::dist::Single;
use gadms::train::grad_cache::{self, StepParts};
use gadms::train::precision::Precision;
use gadms::train::stages::Stages;
use gadms::train::step::{self, Batch, StepOutput, WeightedLoss};
use gadms_plugin::MaskingStrategy;
use tch::{Kind, Tensor};

mod common;
#[path = "common/golden_step.rs"]
mod golden_step;
use golden_step::GoldenStep;

/// Micro-batches the golden batch is cut into.
const MICRO: i64 = 4;

struct Fixture {
    step: GoldenStep,
    /// SDM and ID, which compare the samples of the batch, then MTP.
    losses: Vec<WeightedLoss>,
    /// Min–max groups of one micro-batch, so the scores of a micro-batch are its own.
    masking: Box<dyn MaskingStrategy>,
}

impl Fixture {
    fn new() -> Self {
        let step = GoldenStep::new();
        let losses = vec![step.loss("sdm", 1.0, ""), step.loss("id", 0.5, ""), step.mtp()];
        step.load_weights();
        let masking = step.masking(step.batch_size() / MICRO);
        Self {
            step,
            losses,
            masking,
        }
    }

    fn batch_level(&self) -> &[WeightedLoss] {
        &self.losses[..2]
    }

    fn mtp(&self) -> &[WeightedLoss] {
        &self.losses[2..]
    }

    fn micro_batches(&self) -> Vec<Batch> {
        let size = self.step.batch_size() / MICRO;
        (0..MICRO).map(|k| self.step.batch(k * size, size)).collect()
    }

    fn params(&self) -> Vec<Tensor> {
        self.step.vs.trainable_variables()
    }

    /// One plain forward of `losses` on `batch` and its gradients at [`Fixture::params`].
    fn plain(&self, losses: &[WeightedLoss], batch: &Batch) -> (StepOutput, Vec<Tensor>) {
        let out = step::forward(
            &self.step.clip,
            self.masking.as_ref(),
            losses,
            batch,
            &Single,
            &mut Stages::default(),
        )
        .unwrap();
        let params = self.params();
        let refs: Vec<&Tensor> = params.iter().collect();
        let grads = Tensor::run_backward(&[&out.total], &refs, false, false);
        (out, grads)
    }

    /// The cached step over the micro-batches with every loss.
    fn cached(&self, losses: &[WeightedLoss]) -> (StepOutput, Vec<Tensor>) {
        let parts = StepParts {
            clip: &self.step.clip,
            masking: self.masking.as_ref(),
            losses,
            collective: &Single,
            precision: Precision::Fp32,
            device: self.step.vs.device(),
        };
        let params = self.params();
        let refs: Vec<&Tensor> = params.iter().collect();
        grad_cache::gradients(&parts, &self.micro_batches(), &refs, &mut Stages::default()).unwrap()
    }
}

fn value(out: &StepOutput, name: &str) -> f64 {
    out.losses
        .iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no loss `{name}`"))
        .1
        .double_value(&[])
}

/// The largest difference of two gradient lists, relative to the largest gradient;
/// undefined counts as zero.
fn relative_difference(a: &[Tensor], b: &[Tensor]) -> f64 {
    let dense = |g: &Tensor, like: &Tensor| match g.defined() {
        true => g.to_kind(Kind::Double),
        false => like.zeros_like().to_kind(Kind::Double),
    };
    let mut diff: f64 = 0.0;
    let mut scale: f64 = 0.0;
    for (x, y) in a.iter().zip(b) {
        let like = if x.defined() { x } else { y };
        if !like.defined() {
            continue;
        }
        let (x, y) = (dense(x, like), dense(y, like));
        diff = diff.max((&x - &y).abs().max().double_value(&[]));
        scale = scale.max(x.abs().max().double_value(&[]));
    }
    diff / scale
}

fn sum(a: Vec<Tensor>, b: Vec<Tensor>, scale_b: f64) -> Vec<Tensor> {
    a.into_iter()
        .zip(b)
        .map(|(x, y)| match (x.defined(), y.defined()) {
            (_, false) => x,
            (false, true) => y * scale_b,
            (true, true) => x + y * scale_b,
        })
        .collect()
}

#[test]
fn micro_batches_give_the_big_batch_gradients_of_sdm_and_id_and_the_mean_of_mtp() {
    let f = Fixture::new();
    let whole = f.step.batch(0, f.step.batch_size());
    let (big, mut expected) = f.plain(f.batch_level(), &whole);
    let micro = f.micro_batches();
    let mut mtp_mean = 0.0;
    for batch in &micro {
        let (out, grads) = f.plain(f.mtp(), batch);
        mtp_mean += value(&out, "mtp") / MICRO as f64;
        expected = sum(expected, grads, 1.0 / MICRO as f64);
    }

    let (cached, grads) = f.cached(&f.losses);

    for name in ["sdm", "id"] {
        let (ours, reference) = (value(&cached, name), value(&big, name));
        assert!(
            (ours - reference).abs() <= 1e-5 * reference.abs(),
            "{name}: {ours} over micro-batches, {reference} on the big batch"
        );
    }
    assert!((value(&cached, "mtp") - mtp_mean).abs() <= 1e-5 * mtp_mean.abs());
    let relative = relative_difference(&grads, &expected);
    assert!(relative < 1e-5, "gradients differ by {relative} of the largest");
}

#[test]
fn plain_accumulation_would_differ_so_the_comparison_can_fail() {
    let f = Fixture::new();
    let whole = f.step.batch(0, f.step.batch_size());
    let (_, big) = f.plain(f.batch_level(), &whole);
    let mut accumulated: Vec<Tensor> = f.params().iter().map(|_| Tensor::new()).collect();
    for batch in &f.micro_batches() {
        let (_, grads) = f.plain(f.batch_level(), batch);
        accumulated = sum(accumulated, grads, 1.0 / MICRO as f64);
    }
    let relative = relative_difference(&accumulated, &big);
    assert!(
        relative > 1e-2,
        "SDM per micro-batch should differ from SDM on the batch, differs by {relative}"
    );
}

#[test]
fn each_micro_batch_is_scored_as_a_group_of_its_own() {
    let f = Fixture::new();
    let (cached, _) = f.cached(f.batch_level());
    let per_micro: Vec<Tensor> = f
        .micro_batches()
        .iter()
        .map(|b| f.plain(f.batch_level(), b).0.scores.unwrap().scores)
        .collect();
    let scores = cached.scores.unwrap();
    assert_eq!(scores.scores.size()[0], f.step.batch_size());
    let difference = (&scores.scores - Tensor::cat(&per_micro, 0))
        .abs()
        .max()
        .double_value(&[]);
    assert!(difference < 1e-6, "scores differ by {difference}");
}
