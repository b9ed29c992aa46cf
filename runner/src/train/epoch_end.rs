//! Rank 0's stage after each epoch: how well the scores find the labelled noise, the sample
//! captions of the report, the evaluation, and the checkpoint (with `best/` when the epoch
//! improves on the validation set).

use super::checkpoint::{self, Candidate, Kept, Position};
use super::setup::Run;
use super::trainer::RunError;
use crate::components;
use crate::eval::function_words::FunctionWords;
use crate::eval::metrics::RetrievalMetrics;
use crate::eval::noise::NoiseAurocs;
use crate::eval::retrieval::evaluate;
use crate::eval::token_scores::TokenScores;
use crate::spec::KeepBest;

impl Run<'_> {
    /// Everything rank 0 does after training epoch `epoch`; returns its evaluation.
    pub fn end_epoch(
        &self,
        epoch: usize,
        global_step: usize,
    ) -> Result<Vec<(String, RetrievalMetrics)>, RunError> {
        self.log_noise_auroc(epoch)?;
        self.write_token_scores(epoch)?;
        let last = self.evaluate(epoch)?;
        self.save_checkpoint(epoch, global_step, &last)?;
        Ok(last)
    }

    /// Evaluates every evaluation set, logging each.
    pub fn evaluate(&self, epoch: usize) -> Result<Vec<(String, RetrievalMetrics)>, RunError> {
        let batch = self.plan.config.train.eval_batch_size;
        let mut out = Vec::new();
        for e in &self.evals {
            let (m, cosines) =
                evaluate(&self.clip, &e.split, self.device, batch).map_err(|source| RunError::Eval {
                    dataset: e.name.clone(),
                    epoch,
                    source: Box::new(source),
                })?;
            let mut record = m.record(epoch, &e.name);
            cosines.add_to(&mut record);
            self.dir.log_metrics(&record)?;
            self.dir.write_queries(&e.name, epoch, &m.per_query)?;
            let cosine = |c: Option<f64>| c.map_or("none".into(), |c| format!("{c:.3}"));
            self.log.line(format!(
                "epoch {epoch} {}: R@1 {:.2} R@5 {:.2} R@10 {:.2} mAP {:.2} mINP {:.2}; mean pairwise \
                 cosine of the image features {}, of the text features {}",
                e.name,
                m.r1,
                m.r5,
                m.r10,
                m.map,
                m.minp,
                cosine(cosines.image),
                cosine(cosines.text)
            ))?;
            out.push((e.name.clone(), m));
        }
        Ok(out)
    }

    /// The noise-token AUROCs of the scores (all tokens, content words), for data with
    /// labelled noise and scores that change from token to token: a scorer's, or the
    /// oracle's (1 by construction, a check that the labels reach the table).
    fn log_noise_auroc(&self, epoch: usize) -> Result<(), RunError> {
        let scored = self.masking.scoring().is_some() || self.masking.noise_label_scores().is_some();
        let (Some(noise), true) = (&self.train_split.noise, scored) else {
            return Ok(());
        };
        let aurocs = NoiseAurocs::of(
            self.scores.table(),
            self.model_cfg.context_length as usize,
            &self.train_split.tokens,
            noise,
            &components::vocab(&self.model_cfg),
            &FunctionWords::new(&self.tokenizer),
        );
        if let (Some(record), Some(all)) = (aurocs.record(epoch), aurocs.all) {
            self.dir.log_metrics(&record)?;
            let content = aurocs.content.map_or("none".into(), |c| format!("{c:.3}"));
            self.log.line(format!(
                "epoch {epoch}: noise-token AUROC of the scores {all:.3} (content words {content})"
            ))?;
        }
        Ok(())
    }

    /// A few captions with their scores and masks, for the report.
    fn write_token_scores(&self, epoch: usize) -> Result<(), RunError> {
        TokenScores::sample(
            epoch,
            &self.train_split,
            &self.tokenizer,
            self.masking.as_ref(),
            self.scores.table(),
            6,
        )
        .map_err(|source| RunError::SampleMasking {
            epoch,
            source: Box::new(source),
        })?
        .write(&self.dir.path)?;
        Ok(())
    }

    /// The checkpoint of `epoch`, committed with `best/` when the epoch improves the first
    /// validation set's R@1, and with `best-<set>/` when it improves a test set's own R@1
    /// and the run keeps those (`train.keep_best = "each"`).
    fn save_checkpoint(
        &self,
        epoch: usize,
        global_step: usize,
        last: &[(String, RetrievalMetrics)],
    ) -> Result<(), RunError> {
        let position = Position {
            epoch,
            global_step,
            hash: self.plan.hash.clone(),
        };
        let candidates = self.best_candidates(last);
        let kept = checkpoint::commit(
            &self.dir.path,
            &position,
            &self.vs,
            &self.opt,
            &self.scores,
            &candidates,
        )?;
        for best in kept {
            let folder = match candidates.iter().find(|c| c.dataset == best.dataset) {
                Some(c) if c.kept_as == Kept::OwnTestBest => checkpoint::test_best_folder(&best.dataset),
                _ => "best".to_string(),
            };
            self.log.line(format!(
                "epoch {epoch}: best so far on {} (R@1 {:.2}), kept in {folder}/",
                best.dataset, best.r1
            ))?;
        }
        Ok(())
    }

    /// The evaluations that may make this epoch a kept best: the first validation set's,
    /// and each test set's when the run keeps their own bests.
    fn best_candidates<'e>(&self, last: &'e [(String, RetrievalMetrics)]) -> Vec<Candidate<'e>> {
        let each = self.plan.config.train.keep_best == KeepBest::Each;
        let mut candidates = Vec::new();
        let mut validation_seen = false;
        for (e, (name, m)) in self.evals.iter().zip(last) {
            let kept_as = match e.validation {
                true if validation_seen => continue,
                true => {
                    validation_seen = true;
                    Kept::Validation
                }
                false if each => Kept::OwnTestBest,
                false => continue,
            };
            candidates.push(Candidate {
                dataset: name,
                r1: m.r1,
                kept_as,
            });
        }
        candidates
    }
}
