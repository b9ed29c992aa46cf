//! Whether a difference is more than seed noise: the 95 % confidence interval of a mean over
//! seeds, and a paired t-test of a variant against the baseline over the seeds both ran —
//! or, when they share one seed, a paired bootstrap over the evaluation's queries. The
//! formulas are the textbook ones, stated in the report's README ([`METHOD`]) so a reader
//! can redo them from `statistics.csv`.

use gadms_plugin::rng::Rng;
use statrs::distribution::{ContinuousCDF, StudentsT};

/// The confidence level of the intervals.
pub const LEVEL: f64 = 0.95;
/// The p-value below which a difference is marked.
pub const ALPHA: f64 = 0.05;

/// How the statistics are computed, for the report's README.
pub const METHOD: &str = "Over the n finished seeds of a variant: the mean, the sample \
    standard deviation s (n − 1 in the denominator) and the 95 % confidence interval of the \
    mean, mean ± t(0.975; n − 1) · s / √n (Student's t; none with one seed). Against the \
    baseline, a two-sided paired t-test over the seeds both ran (the same seed pairs the two \
    runs): d = variant − baseline per seed, t = mean(d) / (sd(d) / √k) with k − 1 degrees of \
    freedom for k shared seeds; no t-test when every d is the same. With one shared seed, a \
    paired bootstrap over the evaluation's queries instead (the variance it sees is that of \
    the test set, not of training): the per-query differences d_q (hit within k for R@k, AP, \
    INP, × 100) resampled with replacement 5,000 times (fixed generator), and p = (1 + #{b : \
    |mean_b − δ| ≥ |δ|}) / (5,000 + 1) for the observed difference δ. `*` marks p < 0.05. With \
    a handful of seeds the test has little power: an unmarked difference is not evidence of \
    no difference.";

/// Resamples of the bootstrap.
pub const BOOTSTRAP_DRAWS: usize = 5000;

/// Half the width of the 95 % confidence interval of a mean of `n` values with sample
/// standard deviation `std`; `None` below two values.
pub fn ci_half_width(std: f64, n: usize) -> Option<f64> {
    Some(t_quantile(n.checked_sub(1).filter(|&df| df > 0)?, 0.5 + LEVEL / 2.0) * std / (n as f64).sqrt())
}

/// How a difference was tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Over the seeds both ran.
    PairedT,
    /// Over the queries of one seed's evaluation.
    Bootstrap,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Self::PairedT => "paired t",
            Self::Bootstrap => "bootstrap",
        }
    }
}

/// A test of a variant against the baseline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Test {
    pub method: Method,
    /// The pairs compared: seeds, or queries.
    pub pairs: usize,
    /// The t statistic (the paired t-test's).
    pub statistic: Option<f64>,
    /// Two-sided.
    pub p: f64,
}

impl Test {
    pub fn significant(&self) -> bool {
        self.p < ALPHA
    }
}

/// The two-sided paired t-test of `a` against `b` (pairs at the same index); `None` below
/// two pairs or when the differences do not vary (t is undefined) — up to rounding: the
/// metrics are ratios of query counts, and two runs that differ by the same count on every
/// seed give differences equal but for the last bits.
pub fn paired_t(a: &[f64], b: &[f64]) -> Option<Test> {
    let d: Vec<f64> = a.iter().zip(b).map(|(a, b)| a - b).collect();
    let k = d.len();
    let mean = d.iter().sum::<f64>() / k as f64;
    let var = sample_variance(&d)?;
    let scale = a.iter().chain(b).fold(0.0f64, |m, x| m.max(x.abs()));
    if var.sqrt() <= 1e-9 * scale {
        return None;
    }
    let statistic = mean / (var / k as f64).sqrt();
    let t = students_t(k - 1);
    Some(Test {
        method: Method::PairedT,
        pairs: k,
        statistic: Some(statistic),
        p: 2.0 * (1.0 - t.cdf(statistic.abs())),
    })
}

/// The sample variance (n − 1 in the denominator); `None` below two values.
pub fn sample_variance(values: &[f64]) -> Option<f64> {
    let n = values.len();
    if n < 2 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    Some(values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64)
}

/// The paired bootstrap over queries of `a` against `b` (per-query values of one metric, in
/// the same query order): [`BOOTSTRAP_DRAWS`] resamples of the mean difference, centred on
/// the observed one. `None` without queries or when the two differ in count.
pub fn bootstrap(a: &[f64], b: &[f64]) -> Option<Test> {
    if a.is_empty() || a.len() != b.len() {
        return None;
    }
    let d: Vec<f64> = a.iter().zip(b).map(|(a, b)| a - b).collect();
    let q = d.len();
    let observed = d.iter().sum::<f64>() / q as f64;
    let mut rng = Rng::derive(BOOTSTRAP_SEED, &[q as u64]);
    let extreme = (0..BOOTSTRAP_DRAWS)
        .filter(|_| {
            let mean = (0..q).map(|_| d[rng.below(q as u64) as usize]).sum::<f64>() / q as f64;
            // A relative tolerance: a resample equal to the observed mean up to rounding
            // is not "at least as far from it" as an observed zero.
            (mean - observed).abs() >= observed.abs() * (1.0 - 1e-12)
        })
        .count();
    Some(Test {
        method: Method::Bootstrap,
        pairs: q,
        statistic: None,
        p: (1 + extreme) as f64 / (BOOTSTRAP_DRAWS + 1) as f64,
    })
}

/// The bootstrap's generator seed: fixed, so a report is the same each time it is built.
const BOOTSTRAP_SEED: u64 = 0x6164_6d73;

fn students_t(df: usize) -> StudentsT {
    StudentsT::new(0.0, 1.0, df as f64).expect("positive degrees of freedom")
}

fn t_quantile(df: usize, p: f64) -> f64 {
    students_t(df).inverse_cdf(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance
    }

    #[test]
    fn the_interval_uses_students_t() {
        // t(0.975; 2) = 4.302653 (tables); s = 1, n = 3 → 4.302653 / √3 = 2.484138.
        assert!(close(ci_half_width(1.0, 3).unwrap(), 2.484_138, 1e-5));
        // t(0.975; 1) = 12.706205.
        assert!(close(
            ci_half_width(2.0, 2).unwrap(),
            12.706_205 * 2.0 / 2f64.sqrt(),
            1e-4
        ));
        assert_eq!(ci_half_width(1.0, 1), None);
    }

    #[test]
    fn the_paired_test_matches_a_hand_computation() {
        // d = (1, 2, 3): mean 2, sd 1, t = 2 / (1 / √3) = 3.464102; two-sided p with 2 df:
        // p = 1 − t / √(t² + 2) (the t(2) closed form) = 1 − 3.464102 / √14 = 0.074180.
        let test = paired_t(&[11.0, 12.0, 13.0], &[10.0, 10.0, 10.0]).unwrap();
        assert_eq!(test.pairs, 3);
        assert!(close(test.statistic.unwrap(), 3.464_102, 1e-6), "{test:?}");
        assert!(close(test.p, 0.074_180, 1e-6), "{test:?}");
        assert!(!test.significant());
        assert_eq!(paired_t(&[1.0], &[0.0]), None, "one pair");
        assert_eq!(paired_t(&[2.0, 3.0], &[1.0, 2.0]), None, "no variation");
        // 2 of 12 queries fewer on both seeds, as two real runs logged it.
        let (a, b) = ([16.666666666666664, 33.33333333333333], [25.0, 41.66666666666667]);
        assert_ne!(
            a[0] - b[0],
            a[1] - b[1],
            "the differences differ in their last bits"
        );
        assert_eq!(paired_t(&a, &b), None, "no variation but rounding");
    }

    #[test]
    fn the_bootstrap_counts_resamples_as_far_from_the_observed_difference_as_zero() {
        // Every query gains the same: every resample's mean is the observed one, none is as
        // far from it as 0 is, so p = 1 / (draws + 1), the smallest the test gives.
        let test = bootstrap(&[2.0; 50], &[1.0; 50]).unwrap();
        assert_eq!((test.method, test.pairs), (Method::Bootstrap, 50));
        assert_eq!(test.p, 1.0 / (BOOTSTRAP_DRAWS + 1) as f64);
        // No difference at all: every resample is as far from 0 as 0 is, p = 1.
        assert_eq!(bootstrap(&[1.0; 10], &[1.0; 10]).unwrap().p, 1.0);
        // Half the queries +1, half −1: the observed difference is 0, p = 1; one query
        // better out of forty: a resample misses it often, p well above 0.05.
        let a: Vec<f64> = (0..40).map(|i| f64::from(i % 2)).collect();
        let b: Vec<f64> = (0..40).map(|i| f64::from((i + 1) % 2)).collect();
        assert_eq!(bootstrap(&a, &b).unwrap().p, 1.0);
        let mut one = vec![0.0; 40];
        one[0] = 100.0;
        assert!(bootstrap(&one, &[0.0; 40]).unwrap().p > 0.2);
        assert_eq!(bootstrap(&[1.0], &[1.0, 2.0]), None);
    }
}
