//! Where a result comes from: the gadms build and code (the code is part of every run's
//! identity) and, per run,
//! `provenance.json` — one session for each time the run was started or resumed, with the
//! command line, host, device, torch version, precision and times.

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use gadms_plugin::abi;
use serde::{Deserialize, Serialize};

use crate::store::{write_atomic, StoreError};

/// The build of gadms a run is made with, for its record: `<version>+<commit>` from a clean
/// checkout; a build from changed sources (or from no checkout) adds the digest of its
/// sources, which tells edits apart.
pub fn build() -> &'static str {
    static BUILD: OnceLock<String> = OnceLock::new();
    BUILD.get_or_init(|| {
        let version = env!("CARGO_PKG_VERSION");
        let commit = &gadms_build_info::COMMIT[..gadms_build_info::COMMIT.len().min(12)];
        if !commit.is_empty() && !gadms_build_info::DIRTY {
            return format!("{version}+{commit}");
        }
        let commit = if commit.is_empty() { "no-git" } else { commit };
        format!("{version}+{commit}-modified.{}", sources())
    })
}

/// The code a run is computed with, for its identity: the version, the digest of the
/// runner's sources (`runner/build-info/src/sources.rs` lists them) and libtorch's version.
/// No commit: a commit of docs, tests or benchmarks alone keeps every stored result, while
/// any edit of the code, committed or not, makes new runs.
pub fn code() -> String {
    format!(
        "{} sources {} libtorch {}",
        env!("CARGO_PKG_VERSION"),
        sources(),
        torch_version()
    )
}

/// The first 16 hex digits of the sources' digest.
fn sources() -> &'static str {
    &gadms_build_info::SOURCES_DIGEST[..16]
}

/// The libtorch version this binary is built against.
pub fn torch_version() -> String {
    abi::parse_fingerprint(abi::FINGERPRINT)
        .get("libtorch")
        .cloned()
        .unwrap_or_else(|| "unknown".into())
}

/// The machine's host name.
pub fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// An NVIDIA GPU as the driver names it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Gpu {
    pub name: String,
    pub driver: String,
}

/// The GPUs `nvidia-smi` lists, in CUDA order (tch has no binding for device properties;
/// every driver installation ships `nvidia-smi`). Empty without a driver.
pub fn gpus() -> Vec<Gpu> {
    std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=name,driver_version", "--format=csv,noheader"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter_map(|l| l.rsplit_once(','))
                .map(|(name, driver)| Gpu {
                    name: name.trim().into(),
                    driver: driver.trim().into(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The device a session trains on: what the spec asked for, what was used and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceRecord {
    /// `train.device` (or `--devices`' placement).
    pub requested: String,
    /// `cpu` or `cuda:N`.
    pub used: String,
    /// How `auto` decided; absent for an explicit device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choice: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<Gpu>,
}

/// One start (or resumption) of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub command: Vec<String>,
    pub host: String,
    pub device: DeviceRecord,
    pub precision: String,
    /// Processes training the run together.
    pub ranks: usize,
    pub started: String,
    #[serde(default)]
    pub ended: Option<String>,
    #[serde(default)]
    pub wall_s: Option<f64>,
    /// `done` or `failed`; absent while running, or after a kill.
    #[serde(default)]
    pub outcome: Option<String>,
    /// The epoch training resumed after (absent for a fresh start).
    #[serde(default)]
    pub resumed_after: Option<usize>,
}

/// `provenance.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Provenance {
    pub gadms: String,
    pub commit: String,
    pub torch: String,
    pub sessions: Vec<Session>,
}

impl Provenance {
    pub const FILE: &str = "provenance.json";

    /// The record of `run` (the sessions so far), or a new one for this build.
    pub fn read_or_new(run: &Path) -> Self {
        std::fs::read_to_string(run.join(Self::FILE))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_else(|| Self {
                gadms: build().into(),
                commit: gadms_build_info::COMMIT.into(),
                torch: torch_version(),
                sessions: Vec::new(),
            })
    }

    pub fn write(&self, run: &Path) -> Result<(), StoreError> {
        let text = serde_json::to_string_pretty(self).expect("provenance serialises");
        write_atomic(&run.join(Self::FILE), text.as_bytes())
    }
}

/// A session being recorded: written when training starts, completed when it ends.
pub struct Recorder {
    run: std::path::PathBuf,
    started: Instant,
}

impl Recorder {
    /// Appends `session` to the run's record.
    pub fn start(run: &Path, session: Session) -> Result<Self, StoreError> {
        let mut record = Provenance::read_or_new(run);
        record.sessions.push(session);
        record.write(run)?;
        Ok(Self {
            run: run.to_path_buf(),
            started: Instant::now(),
        })
    }

    /// Completes the last session with its end time, wall time and outcome.
    pub fn finish(self, outcome: &str) -> Result<(), StoreError> {
        let mut record = Provenance::read_or_new(&self.run);
        if let Some(last) = record.sessions.last_mut() {
            last.ended = Some(now_utc());
            last.wall_s = Some(self.started.elapsed().as_secs_f64());
            last.outcome = Some(outcome.into());
        }
        record.write(&self.run)
    }
}

/// The command line of this process.
pub fn command_line() -> Vec<String> {
    std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

/// Now, as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn now_utc() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    utc(secs)
}

/// Seconds since the Unix epoch as an ISO 8601 UTC time (the civil-from-days conversion of
/// the proleptic Gregorian calendar).
fn utc(secs: u64) -> String {
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times_are_calendar_dates() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_796_428_799), "2026-12-04T23:59:59Z");
    }

    #[test]
    fn a_build_names_the_version_and_commit() {
        let b = build();
        assert!(b.starts_with(concat!(env!("CARGO_PKG_VERSION"), "+")), "{b}");
        if !gadms_build_info::COMMIT.is_empty() {
            assert!(b.contains(&gadms_build_info::COMMIT[..12]), "{b}");
        }
        assert_eq!(
            b.contains("-modified."),
            gadms_build_info::COMMIT.is_empty() || gadms_build_info::DIRTY,
            "{b}"
        );
    }

    #[test]
    fn the_code_of_an_identity_is_its_sources_not_its_commit() {
        let code = code();
        assert!(code.contains(&gadms_build_info::SOURCES_DIGEST[..16]), "{code}");
        assert!(code.contains(&torch_version()), "{code}");
        if !gadms_build_info::COMMIT.is_empty() {
            assert!(!code.contains(&gadms_build_info::COMMIT[..12]), "{code}");
        }
    }
}
