//! Retrieval metrics — CMC (R@1/5/10), mAP and mINP — with the reference formulas
//! (`utils/metrics.py::rank`, method spec §6.2), computed as a stream of query blocks.
//!
//! The reference argsorts the whole `[Q, G]` similarity matrix. For the larger test sets
//! (ICFG-PEDES: 19,848 × 19,848) that matrix and its int64 argsort take several GiB, so
//! [`RetrievalAccumulator`] never sees more than one block of similarity rows `[q, G]` at a
//! time and keeps only a few numbers per query.
//!
//! Every metric depends on a query's row only through the ranks of its true matches (the
//! gallery items with the query's pid), so nothing is sorted along the gallery. With the
//! true matches of a query at 0-based ranks `r_0 < r_1 < … < r_{n−1}`:
//!
//! - CMC: `cmc[k]` = 1 when `r_0 ≤ k`; R@k = mean over queries × 100 of `cmc[k − 1]`;
//! - AP = `(1/n) Σ_i (i + 1)/(r_i + 1)`, which is the reference's
//!   `Σ_k (c[k]/(k + 1)) · match[k] / num_rel`, since `c[r_i] = i + 1`;
//! - INP = `n / (r_{n−1} + 1)`.
//!
//! The rank of the true match at gallery index `j` is the number of gallery items ranked
//! before it: those with strictly higher similarity, plus, among equal similarities, those
//! with a lower gallery index. Ties thus resolve exactly as a *stable* descending sort would.
//! The reference's `torch.argsort` leaves tie order unspecified, so on ties its numbers may
//! differ from ours (and from run to run); without ties both agree.
//!
//! The cost is `n_max · G` comparisons per query (`n_max` = the most gallery items sharing
//! one pid) instead of a `G log G` sort: every element is independent, which suits a GPU,
//! while on a CPU it is slower than sorting once `n_max` reaches a few dozen.

use tch::{Kind, TchError, Tensor};

/// Cut-offs reported as R@k; the accumulator always tracks at least this many CMC ranks.
const RECALL_RANKS: [usize; 3] = [1, 5, 10];

/// Default bound on the elements of one `[rows, n_max, G]` comparison temporary. A few such
/// bool tensors (one byte per element) are alive at once: a few hundred MiB at most.
const COMPARE_ELEMENTS: i64 = 1 << 26;

/// Bad input to the retrieval metrics.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("the gallery is empty: retrieval needs at least one gallery item")]
    EmptyGallery,
    #[error("max_rank must be at least 1")]
    ZeroMaxRank,
    #[error("{what} must be {expected}; got shape {shape:?} of kind {kind:?}")]
    BadTensor {
        what: &'static str,
        expected: &'static str,
        shape: Vec<i64>,
        kind: Kind,
    },
    #[error("the similarity block has {columns} columns but the gallery has {gallery} items")]
    GallerySizeMismatch { columns: i64, gallery: i64 },
    #[error("the similarity block has {rows} rows but {pids} query pids were given")]
    QueryCountMismatch { rows: i64, pids: i64 },
    #[error("query {query} has a NaN similarity, which has no rank")]
    NanSimilarity { query: usize },
    #[error(
        "query {query} (pid {pid}) has no gallery item with its pid; every query needs at \
         least one true match"
    )]
    NoMatch { query: usize, pid: i64 },
    #[error("no queries were added, so there is nothing to average")]
    NoQueries,
    #[error(transparent)]
    Torch(#[from] TchError),
}

/// Retrieval results over all queries, in percent like the reference's report.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RetrievalMetrics {
    pub r1: f64,
    pub r5: f64,
    pub r10: f64,
    pub map: f64,
    pub minp: f64,
    /// `cmc[k]`: share of queries with a true match in the top `k + 1`, for `k < max_rank`.
    /// Ranks beyond the gallery size count every query (each has a match somewhere), where
    /// the reference would return a shorter curve.
    pub cmc: Vec<f64>,
    pub num_queries: usize,
    /// Each query's results (empty for metrics read back from a log).
    #[serde(skip)]
    pub per_query: PerQuery,
}

/// Each query's results, in query order: what a report's bootstrap over queries resamples
/// when a comparison has one seed.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PerQuery {
    /// The 0-based rank of the query's first true match.
    pub first_rank: Vec<u32>,
    /// AP and INP as fractions.
    pub ap: Vec<f64>,
    pub inp: Vec<f64>,
}

impl PerQuery {
    /// The per-query values whose mean is metric `metric` (`R1`, `R5`, `R10`, `mAP`, `mINP`,
    /// in percent); `None` for another metric.
    pub fn values(&self, metric: &str) -> Option<Vec<f64>> {
        let percent = |v: &[f64]| v.iter().map(|x| x * 100.0).collect();
        let within = |k: u32| {
            self.first_rank
                .iter()
                .map(|&r| if r < k { 100.0 } else { 0.0 })
                .collect()
        };
        match metric {
            "R1" => Some(within(1)),
            "R5" => Some(within(5)),
            "R10" => Some(within(10)),
            "mAP" => Some(percent(&self.ap)),
            "mINP" => Some(percent(&self.inp)),
            _ => None,
        }
    }
}

impl RetrievalMetrics {
    /// The `metrics.jsonl` record of this evaluation of `dataset` after `epoch` (0: before
    /// training, or weights evaluated on their own), which reports and resumption read.
    pub fn record(&self, epoch: usize, dataset: &str) -> serde_json::Value {
        serde_json::json!({"kind": "eval", "epoch": epoch, "dataset": dataset, "R1": self.r1,
            "R5": self.r5, "R10": self.r10, "mAP": self.map, "mINP": self.minp, "queries": self.num_queries})
    }
}

/// Accumulates retrieval metrics over blocks of query rows against one fixed gallery.
///
/// Per block, on the similarity block's device: one gather of the true matches' scores, the
/// rank comparisons in row chunks of bounded size, and a single host read of the block's
/// per-query results. A block that fails validation leaves the accumulator unchanged.
#[derive(Debug)]
pub struct RetrievalAccumulator {
    gallery: GalleryIndex,
    max_rank: usize,
    /// Bound on the elements of one rank-comparison temporary (see [`COMPARE_ELEMENTS`]).
    compare_elements: i64,
    /// `hits[k]`: queries whose first true match ranks within the top `k + 1`; length
    /// `max(max_rank, 10)`.
    hits: Vec<u64>,
    /// Per-query AP and INP as fractions, in query order; summed in [`Self::finish`] so the
    /// results do not depend on how the queries were split into blocks.
    ap: Vec<f64>,
    inp: Vec<f64>,
    /// Per-query 0-based rank of the first true match, in query order.
    first: Vec<u32>,
}

impl RetrievalAccumulator {
    /// Indexes the gallery by pid. `gallery_pids`: `[G]` integer pids on any device;
    /// `max_rank`: the length of the reported CMC curve (the reference uses 10).
    pub fn new(gallery_pids: &Tensor, max_rank: usize) -> Result<Self, MetricsError> {
        if max_rank == 0 {
            return Err(MetricsError::ZeroMaxRank);
        }
        check_pids("gallery pids", gallery_pids)?;
        if gallery_pids.numel() == 0 {
            return Err(MetricsError::EmptyGallery);
        }
        let gallery = tch::no_grad(|| GalleryIndex::new(gallery_pids));
        let tracked = max_rank.max(RECALL_RANKS[RECALL_RANKS.len() - 1]);
        Ok(Self {
            gallery,
            max_rank,
            compare_elements: COMPARE_ELEMENTS,
            hits: vec![0; tracked],
            ap: Vec::new(),
            inp: Vec::new(),
            first: Vec::new(),
        })
    }

    /// Adds the queries of one block. `sims`: `[q, G]` similarities of any float kind, on
    /// any device (gradients are not tracked); `query_pids`: `[q]` integer pids on any
    /// device. Errors name the query by its index in the whole stream.
    pub fn add_block(&mut self, sims: &Tensor, query_pids: &Tensor) -> Result<(), MetricsError> {
        if sims.dim() != 2 || !sims.is_floating_point() {
            return Err(bad_tensor(
                "the similarity block",
                "a [queries, gallery] float tensor",
                sims,
            ));
        }
        check_pids("query pids", query_pids)?;
        let (rows, columns) = (sims.size()[0], sims.size()[1]);
        if columns != self.gallery.len {
            return Err(MetricsError::GallerySizeMismatch {
                columns,
                gallery: self.gallery.len,
            });
        }
        let pids = query_pids.size()[0];
        if pids != rows {
            return Err(MetricsError::QueryCountMismatch { rows, pids });
        }
        if rows == 0 {
            return Ok(());
        }
        // The index follows the similarities' device; it moves once, on the first block.
        if self.gallery.pids.device() != sims.device() {
            self.gallery = self.gallery.to_device(sims.device());
        }

        let stats = tch::no_grad(|| self.block_stats(sims, query_pids));
        let stats = Vec::<f64>::try_from(&stats.to_device(tch::Device::Cpu))?;
        let offset = self.ap.len();
        let (flags, rest) = stats.split_at(2);
        if let Some(row) = first_flagged(flags[0]) {
            return Err(MetricsError::NanSimilarity { query: offset + row });
        }
        if let Some(row) = first_flagged(flags[1]) {
            let pid = query_pids.int64_value(&[row as i64]);
            return Err(MetricsError::NoMatch {
                query: offset + row,
                pid,
            });
        }
        let (hits, per_query) = rest.split_at(self.hits.len());
        let (ap, rest) = per_query.split_at(rows as usize);
        let (inp, first) = rest.split_at(rows as usize);
        for (total, &block) in self.hits.iter_mut().zip(hits) {
            *total += block as u64;
        }
        self.ap.extend_from_slice(ap);
        self.inp.extend_from_slice(inp);
        self.first.extend(first.iter().map(|&r| r as u32));
        Ok(())
    }

    /// Averages over all queries added.
    pub fn finish(self) -> Result<RetrievalMetrics, MetricsError> {
        let num_queries = self.ap.len();
        if num_queries == 0 {
            return Err(MetricsError::NoQueries);
        }
        let percent = |x: f64| x / num_queries as f64 * 100.0;
        let cmc: Vec<f64> = self.hits.iter().map(|&h| percent(h as f64)).collect();
        let [r1, r5, r10] = RECALL_RANKS.map(|k| cmc[k - 1]);
        Ok(RetrievalMetrics {
            r1,
            r5,
            r10,
            map: percent(self.ap.iter().sum()),
            minp: percent(self.inp.iter().sum()),
            cmc: cmc[..self.max_rank].to_vec(),
            num_queries,
            per_query: PerQuery {
                first_rank: self.first,
                ap: self.ap,
                inp: self.inp,
            },
        })
    }

    /// The block's results as one float64 vector, so that a single host read fetches them:
    /// `[first NaN row or −1, first row without match or −1, hits (len H), AP (q), INP (q),
    /// first true match's rank (q)]`.
    fn block_stats(&self, sims: &Tensor, query_pids: &Tensor) -> Tensor {
        let gallery = &self.gallery;
        let device = sims.device();
        let query_pids = query_pids.to_device(device).to_kind(Kind::Int64);

        // Each query's true matches: the member row of its pid; a pid absent from the
        // gallery lands on a neighbour's row and is masked out by `found`.
        let num_pids = gallery.pids.size()[0];
        let slot = query_pids
            .searchsorted(&gallery.pids, false, false, "left", None::<Tensor>)
            .clamp_max(num_pids - 1);
        let found = gallery.pids.index_select(0, &slot).eq_tensor(&query_pids);
        let members = gallery.members.index_select(0, &slot);
        let is_match = members.lt(gallery.len).logical_and(&found.unsqueeze(1));

        // [q, n_max] ascending ranks; padding (rank G) sorts after the n true matches.
        let (ranks, _) = self
            .match_ranks(sims, &members)
            .masked_fill(&is_match.logical_not(), gallery.len)
            .sort(1, false);
        let is_match = ranks.lt(gallery.len);
        let num_matches = is_match.sum_dim_intlist(1, false, Kind::Double);
        let width = ranks.size()[1];
        let position = Tensor::arange_start(1, width + 1, (Kind::Double, device));
        let rank1 = ranks.to_kind(Kind::Double) + 1.0;
        let ap = (position / &rank1 * &is_match).sum_dim_intlist(1, false, Kind::Double)
            / num_matches.clamp_min(1.0);
        let last = rank1.masked_fill(&is_match.logical_not(), 0.0).amax(1, false);
        let inp = &num_matches / last.clamp_min(1.0);

        let first = ranks.select(1, 0);
        let cutoffs = Tensor::arange(self.hits.len() as i64, (Kind::Int64, device));
        let hits = first
            .unsqueeze(1)
            .le_tensor(&cutoffs.unsqueeze(0))
            .sum_dim_intlist(0, false, Kind::Double);

        let nan_row = first_true(&sims.isnan().any_dim(1, false));
        let unmatched_row = first_true(&num_matches.eq(0.0));
        let first = first.to_kind(Kind::Double);
        Tensor::cat(&[nan_row, unmatched_row, hits, ap, inp, first], 0)
    }

    /// `[q, n_max]` int64: the 0-based rank of the gallery item `members[i, j]` in row `i`
    /// of `sims` (`[q, G]`); padded members (index G) get an arbitrary value. Rows are
    /// compared in chunks so that each `[rows, n_max, G]` temporary stays within
    /// `compare_elements`.
    fn match_ranks(&self, sims: &Tensor, members: &Tensor) -> Tensor {
        let (rows, len) = (sims.size()[0], sims.size()[1]);
        let width = members.size()[1];
        let chunk = (self.compare_elements / (width * len)).max(1);
        let index = Tensor::arange(len, (Kind::Int64, sims.device())).view([1, 1, len]);
        let pieces: Vec<Tensor> = (0..rows)
            .step_by(chunk as usize)
            .map(|start| {
                let size = chunk.min(rows - start);
                let sims = sims.narrow(0, start, size);
                let members = members.narrow(0, start, size).clamp_max(len - 1);
                let scores = sims.gather(1, &members, false).unsqueeze(2);
                let sims = sims.unsqueeze(1);
                let tied_before = sims
                    .eq_tensor(&scores)
                    .logical_and(&index.lt_tensor(&members.unsqueeze(2)));
                sims.gt_tensor(&scores)
                    .logical_or(&tied_before)
                    .sum_dim_intlist(2, false, Kind::Int64)
            })
            .collect();
        Tensor::cat(&pieces, 0)
    }
}

/// The gallery grouped by pid, so that a query finds its true matches by one binary search
/// instead of comparing its pid with all G gallery pids.
#[derive(Debug)]
struct GalleryIndex {
    /// Distinct gallery pids, ascending: `[P]` int64.
    pids: Tensor,
    /// Gallery indices of each pid's items, ascending, padded with G: `[P, n_max]` int64,
    /// `n_max` = the most items any pid has.
    members: Tensor,
    /// Gallery size G.
    len: i64,
}

impl GalleryIndex {
    /// `pids`: `[G]` integer, G > 0. Reads `n_max` from the device once.
    fn new(pids: &Tensor) -> Self {
        let len = pids.size()[0];
        let device = pids.device();
        let (sorted, order) = pids.to_kind(Kind::Int64).sort_stable(true, 0, false);
        let (unique, group, counts) = sorted.unique_consecutive(true, true, 0);
        let width = counts.max().int64_value(&[]);
        let starts = counts.cumsum(0, Kind::Int64) - &counts;
        let slot = Tensor::arange(len, (Kind::Int64, device)) - starts.index_select(0, &group);
        let num_pids = unique.size()[0];
        let members = Tensor::full([num_pids * width], len, (Kind::Int64, device)).index_put(
            &[Some(group * width + slot)],
            &order,
            false,
        );
        Self {
            pids: unique,
            members: members.view([num_pids, width]),
            len,
        }
    }

    fn to_device(&self, device: tch::Device) -> Self {
        Self {
            pids: self.pids.to_device(device),
            members: self.members.to_device(device),
            len: self.len,
        }
    }
}

/// `[1]` float64: the index of the first true element of a `[q]` bool mask, or −1.
fn first_true(mask: &Tensor) -> Tensor {
    let any = mask.any().to_kind(Kind::Double);
    let index = mask.to_kind(Kind::Int64).argmax(0, false).to_kind(Kind::Double);
    (any * (index + 1.0) - 1.0).view([1])
}

/// Decodes [`first_true`].
fn first_flagged(value: f64) -> Option<usize> {
    (value >= 0.0).then_some(value as usize)
}

fn check_pids(what: &'static str, pids: &Tensor) -> Result<(), MetricsError> {
    let integer = matches!(
        pids.kind(),
        Kind::Uint8 | Kind::Int8 | Kind::Int16 | Kind::Int | Kind::Int64
    );
    if pids.dim() != 1 || !integer {
        return Err(bad_tensor(what, "a 1-D integer tensor", pids));
    }
    Ok(())
}

fn bad_tensor(what: &'static str, expected: &'static str, tensor: &Tensor) -> MetricsError {
    MetricsError::BadTensor {
        what,
        expected,
        shape: tensor.size(),
        kind: tensor.kind(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gadms_golden::{assert_close, Golden};
    use tch::Device;

    /// Feeds `sims` (`[Q, G]`) in blocks of `block` rows.
    fn stream(sims: &Tensor, qids: &Tensor, gids: &Tensor, block: i64) -> RetrievalMetrics {
        let mut acc = RetrievalAccumulator::new(gids, 10).unwrap();
        let rows = sims.size()[0];
        for start in (0..rows).step_by(block as usize) {
            let size = block.min(rows - start);
            acc.add_block(&sims.narrow(0, start, size), &qids.narrow(0, start, size))
                .unwrap();
        }
        acc.finish().unwrap()
    }

    /// Number of queries behind a percentage of `queries` (CMC values are exact counts).
    fn count(percent: f64, queries: usize) -> i64 {
        let count = percent * queries as f64 / 100.0;
        assert!(
            (count - count.round()).abs() < 1e-3,
            "{percent}% of {queries} is not a count"
        );
        count.round() as i64
    }

    /// Checks one direction of `metrics.safetensors` (`t2i` or `i2t`) in several block sizes.
    fn check_golden(direction: &str, sims: &Tensor, qids: &Tensor, gids: &Tensor) {
        let golden = Golden::load();
        let tensors = golden.tensors("metrics.safetensors");
        let results = &golden.file("metrics.safetensors")["results"][direction];
        let rows = sims.size()[0];
        let ours = stream(sims, qids, gids, rows);
        for block in [1, 7] {
            assert_eq!(
                stream(sims, qids, gids, block),
                ours,
                "{direction}: block size {block}"
            );
        }
        let q = ours.num_queries;
        assert_eq!(q as i64, rows);
        // The per-query results average to the metrics (the bootstrap resamples them).
        for (name, value) in [
            ("R1", ours.r1),
            ("R5", ours.r5),
            ("R10", ours.r10),
            ("mAP", ours.map),
            ("mINP", ours.minp),
        ] {
            let per_query = ours.per_query.values(name).unwrap();
            assert_eq!(per_query.len(), q);
            let mean = per_query.iter().sum::<f64>() / q as f64;
            assert!(
                (mean - value).abs() < 1e-9,
                "{direction} {name}: per-query mean {mean} against {value}"
            );
        }

        let reference_cmc = Vec::<f64>::try_from(&tensors[&format!("{direction}/cmc")]).unwrap();
        let counts = |cmc: &[f64]| cmc.iter().map(|&p| count(p, q)).collect::<Vec<_>>();
        assert_eq!(
            counts(&ours.cmc),
            counts(&reference_cmc),
            "{direction}: CMC hit counts"
        );
        for (name, value, k) in [("R1", ours.r1, 0), ("R5", ours.r5, 4), ("R10", ours.r10, 9)] {
            assert_eq!(value, ours.cmc[k], "{direction}: {name} is a CMC entry");
            assert_eq!(
                count(value, q),
                count(results[name].as_f64().unwrap(), q),
                "{direction} {name}"
            );
        }
        for (name, value) in [("mAP", ours.map), ("mINP", ours.minp)] {
            let reference = &tensors[&format!("{direction}/{name}")];
            assert_close(
                &format!("{direction} {name}"),
                &Tensor::from(value),
                reference,
                Some(1e-4),
            );
            assert!(
                (value - results[name].as_f64().unwrap()).abs() <= 1e-4,
                "{direction} {name}"
            );
        }
    }

    #[test]
    fn golden_text_to_image() {
        let t = Golden::load().tensors("metrics.safetensors");
        check_golden("t2i", &t["similarity"], &t["qids"], &t["gids"]);
    }

    #[test]
    fn cuda_blocks_give_the_cpu_results_when_a_gpu_is_present() {
        if !tch::Cuda::is_available() {
            return;
        }
        let t = Golden::load().tensors("metrics.safetensors");
        let (sims, qids, gids) = (&t["similarity"], &t["qids"], &t["gids"]);
        let cuda = Device::Cuda(0);
        let on_gpu = stream(&sims.to_device(cuda), &qids.to_device(cuda), gids, 7);
        let on_cpu = stream(sims, qids, gids, 50);
        // Counts agree exactly; the float64 AP/INP sums may round in another order.
        assert_eq!(on_gpu.cmc, on_cpu.cmc);
        assert!((on_gpu.map - on_cpu.map).abs() < 1e-9 && (on_gpu.minp - on_cpu.minp).abs() < 1e-9);
    }

    #[test]
    fn golden_image_to_text() {
        let t = Golden::load().tensors("metrics.safetensors");
        check_golden("i2t", &t["similarity"].tr(), &t["gids"], &t["qids"]);
    }

    /// Straightforward port of the reference: full argsort of each row, then the formulas
    /// of §6.2 on the match vector. Returns (cmc[..10], mAP, mINP) in percent.
    fn full_sort_reference(sims: &Tensor, qids: &[i64], gids: &[i64]) -> (Vec<f64>, f64, f64) {
        let order = Vec::<Vec<i64>>::try_from(&sims.argsort(1, true)).unwrap();
        let (mut cmc, mut map, mut minp) = (vec![0.0; 10], 0.0, 0.0);
        for (row, qid) in order.iter().zip(qids) {
            let matches: Vec<bool> = row.iter().map(|&g| gids[g as usize] == *qid).collect();
            let first = matches.iter().position(|&m| m).unwrap();
            let last = matches.iter().rposition(|&m| m).unwrap();
            cmc.iter_mut().skip(first).for_each(|c| *c += 1.0);
            let (mut seen, mut ap) = (0.0, 0.0);
            for (k, _) in matches.iter().enumerate().filter(|(_, &m)| m) {
                seen += 1.0;
                ap += seen / (k + 1) as f64;
            }
            map += ap / seen;
            minp += seen / (last + 1) as f64;
        }
        let q = qids.len() as f64;
        (
            cmc.iter().map(|c| c / q * 100.0).collect(),
            map / q * 100.0,
            minp / q * 100.0,
        )
    }

    #[test]
    fn matches_a_full_sort_on_random_data_with_chunked_comparisons() {
        tch::manual_seed(7);
        let (queries, gallery) = (37, 23);
        let sims = Tensor::rand([queries, gallery], (Kind::Float, Device::Cpu));
        let gids = Tensor::randint(6, [gallery], (Kind::Int64, Device::Cpu));
        let pick = Tensor::randint(gallery, [queries], (Kind::Int64, Device::Cpu));
        let qids = gids.index_select(0, &pick);
        let (cmc, map, minp) = full_sort_reference(
            &sims,
            &Vec::<i64>::try_from(&qids).unwrap(),
            &Vec::<i64>::try_from(&gids).unwrap(),
        );

        let mut acc = RetrievalAccumulator::new(&gids, 10).unwrap();
        // One row per comparison chunk, and blocks that do not divide the query count.
        acc.compare_elements = 1;
        for start in (0..queries).step_by(5) {
            let size = 5.min(queries - start);
            acc.add_block(&sims.narrow(0, start, size), &qids.narrow(0, start, size))
                .unwrap();
        }
        let ours = acc.finish().unwrap();
        for (k, (a, b)) in ours.cmc.iter().zip(&cmc).enumerate() {
            assert!((a - b).abs() < 1e-9, "cmc[{k}]: ours {a}, full sort {b}");
        }
        assert!(
            (ours.map - map).abs() < 1e-9,
            "mAP: ours {}, full sort {map}",
            ours.map
        );
        assert!(
            (ours.minp - minp).abs() < 1e-9,
            "mINP: ours {}, full sort {minp}",
            ours.minp
        );
    }

    #[test]
    fn ties_rank_by_gallery_index_and_short_galleries_saturate_the_curve() {
        let gids = Tensor::from_slice(&[0i64, 1, 1]);
        let sims = Tensor::from_slice(&[0.5f32, 0.5, 0.5, 0.5, 0.5, 0.5]).view([2, 3]);
        let qids = Tensor::from_slice(&[1i64, 0]);
        let mut acc = RetrievalAccumulator::new(&gids, 12).unwrap();
        acc.add_block(&sims, &qids).unwrap();
        let m = acc.finish().unwrap();
        // Query 0 (pid 1): matches at ranks 1 and 2 → AP = (1/2 + 2/3)/2, INP = 2/3.
        // Query 1 (pid 0): match at rank 0 → AP = INP = 1.
        assert_eq!(m.cmc.len(), 12);
        assert_eq!(&m.cmc[..3], &[50.0, 100.0, 100.0]);
        assert!(m.cmc[3..].iter().all(|&c| c == 100.0));
        assert_eq!((m.r1, m.r5, m.r10), (50.0, 100.0, 100.0));
        assert!((m.map - ((0.5 + 2.0 / 3.0) / 2.0 + 1.0) / 2.0 * 100.0).abs() < 1e-12);
        assert!((m.minp - (2.0 / 3.0 + 1.0) / 2.0 * 100.0).abs() < 1e-12);
    }

    #[test]
    fn a_query_without_match_is_named_and_its_block_discarded() {
        let gids = Tensor::from_slice(&[3i64, 8, 3]);
        let sims = Tensor::from_slice(&[0.9f32, 0.1, 0.2, 0.3, 0.8, 0.4]).view([2, 3]);
        let mut acc = RetrievalAccumulator::new(&gids, 10).unwrap();
        acc.add_block(&sims.narrow(0, 0, 1), &Tensor::from_slice(&[3i64]))
            .unwrap();
        let err = acc.add_block(&sims, &Tensor::from_slice(&[8i64, 5])).unwrap_err();
        assert!(matches!(err, MetricsError::NoMatch { query: 2, pid: 5 }), "{err}");
        assert!(err.to_string().contains("pid 5"), "{err}");
        acc.add_block(&sims.narrow(0, 1, 1), &Tensor::from_slice(&[8i64]))
            .unwrap();
        let m = acc.finish().unwrap();
        assert_eq!((m.num_queries, m.r1), (2, 100.0));
    }

    #[test]
    fn bad_inputs_are_rejected() {
        let gids = Tensor::from_slice(&[1i64, 2]);
        let empty = Tensor::zeros([0], (Kind::Int64, Device::Cpu));
        assert!(matches!(
            RetrievalAccumulator::new(&empty, 10),
            Err(MetricsError::EmptyGallery)
        ));
        assert!(matches!(
            RetrievalAccumulator::new(&gids, 0),
            Err(MetricsError::ZeroMaxRank)
        ));
        let float_ids = gids.to_kind(Kind::Float);
        assert!(matches!(
            RetrievalAccumulator::new(&float_ids, 10),
            Err(MetricsError::BadTensor { .. })
        ));

        let mut acc = RetrievalAccumulator::new(&gids, 10).unwrap();
        let qids = Tensor::from_slice(&[1i64]);
        let sims = |n: i64| Tensor::ones([1, n], (Kind::Float, Device::Cpu));
        let err = acc.add_block(&sims(3), &qids).unwrap_err();
        assert!(
            matches!(
                err,
                MetricsError::GallerySizeMismatch {
                    columns: 3,
                    gallery: 2
                }
            ),
            "{err}"
        );
        let err = acc
            .add_block(&sims(2), &Tensor::from_slice(&[1i64, 2]))
            .unwrap_err();
        assert!(
            matches!(err, MetricsError::QueryCountMismatch { rows: 1, pids: 2 }),
            "{err}"
        );
        let err = acc.add_block(&sims(2).to_kind(Kind::Int64), &qids).unwrap_err();
        assert!(matches!(err, MetricsError::BadTensor { .. }), "{err}");
        let nan = Tensor::from_slice(&[0.1f32, 0.2, f32::NAN, 0.3]).view([2, 2]);
        let err = acc.add_block(&nan, &Tensor::from_slice(&[1i64, 2])).unwrap_err();
        assert!(matches!(err, MetricsError::NanSimilarity { query: 1 }), "{err}");
        assert!(matches!(acc.finish(), Err(MetricsError::NoQueries)));
    }
}
