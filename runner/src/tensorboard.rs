//! TensorBoard event files, so that `tensorboard --logdir <output>/<experiment>` shows the
//! curves of every run while it trains.
//!
//! The format: a file named `events.out.tfevents.*` holding TFRecord frames — the payload's
//! length (u64, little-endian), its masked CRC32C, the payload, the payload's masked CRC32C —
//! each payload one `tensorflow.Event` protobuf message. The first event names the file
//! version (`brain.Event:2`), the others carry a `Summary` of scalar values at a step.
//!
//! Each session of a run writes a file of its own, as TensorFlow does: a resumed session
//! starts its file with a `SessionLog` START event at the first step after the checkpoint,
//! which tells TensorBoard to drop what the interrupted session logged after that step.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// `tensorflow.Event` (tensorflow/core/util/event.proto), the fields gadms writes.
#[derive(Clone, PartialEq, prost::Message)]
struct Event {
    #[prost(double, tag = "1")]
    wall_time: f64,
    #[prost(int64, tag = "2")]
    step: i64,
    #[prost(oneof = "What", tags = "3, 5, 6")]
    what: Option<What>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum What {
    #[prost(string, tag = "3")]
    FileVersion(String),
    #[prost(message, tag = "5")]
    Summary(Summary),
    #[prost(message, tag = "6")]
    SessionLog(SessionLog),
}

/// `tensorflow.Summary` (tensorflow/core/framework/summary.proto).
#[derive(Clone, PartialEq, prost::Message)]
struct Summary {
    #[prost(message, repeated, tag = "1")]
    value: Vec<SummaryValue>,
}

/// `tensorflow.Summary.Value` with its `simple_value` (a member of a oneof upstream, so it is
/// written even when zero; `optional` encodes alike).
#[derive(Clone, PartialEq, prost::Message)]
struct SummaryValue {
    #[prost(string, tag = "1")]
    tag: String,
    #[prost(float, optional, tag = "2")]
    simple_value: Option<f32>,
}

/// `tensorflow.SessionLog`.
#[derive(Clone, PartialEq, prost::Message)]
struct SessionLog {
    #[prost(int32, tag = "1")]
    status: i32,
}

/// `SessionLog.SessionStatus.START`.
const SESSION_START: i32 = 1;

/// One session's event file, written through as events come (TensorBoard reads it live).
pub struct EventWriter {
    path: PathBuf,
    file: std::fs::File,
}

impl EventWriter {
    /// Creates a new event file in `dir`. `resumed_at`: the first step of a session that
    /// continues an earlier one; TensorBoard then discards the earlier sessions' events from
    /// that step on (what an interrupted session logged past its checkpoint).
    pub fn create(dir: &Path, resumed_at: Option<i64>) -> std::io::Result<Self> {
        let path = dir.join(file_name());
        let file = std::fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)?;
        let mut writer = Self { path, file };
        writer.write(0, What::FileVersion("brain.Event:2".into()))?;
        if let Some(step) = resumed_at {
            writer.write(
                step,
                What::SessionLog(SessionLog {
                    status: SESSION_START,
                }),
            )?;
        }
        Ok(writer)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One event of `scalars` (tag, value) at `step`; nothing when there are none.
    pub fn scalars(&mut self, step: i64, scalars: &[(String, f32)]) -> std::io::Result<()> {
        if scalars.is_empty() {
            return Ok(());
        }
        let value = scalars
            .iter()
            .map(|(tag, v)| SummaryValue {
                tag: tag.clone(),
                simple_value: Some(*v),
            })
            .collect();
        self.write(step, What::Summary(Summary { value }))
    }

    fn write(&mut self, step: i64, what: What) -> std::io::Result<()> {
        let wall_time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let event = Event {
            wall_time,
            step,
            what: Some(what),
        };
        self.file
            .write_all(&frame(&prost::Message::encode_to_vec(&event)))
    }
}

/// `events.out.tfevents.<seconds>.<host>.<pid>.<n>`: TensorBoard reads a folder's event files
/// in name order, so the time comes first; `n` tells apart files one process opens within a
/// second.
fn file_name() -> String {
    static OPENED: AtomicU64 = AtomicU64::new(0);
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!(
        "events.out.tfevents.{seconds:010}.{}.{}.{}",
        crate::provenance::host(),
        std::process::id(),
        OPENED.fetch_add(1, Ordering::Relaxed)
    )
}

/// One TFRecord frame of `payload`.
fn frame(payload: &[u8]) -> Vec<u8> {
    let length = (payload.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(payload.len() + 16);
    out.extend_from_slice(&length);
    out.extend_from_slice(&masked_crc(&length).to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&masked_crc(payload).to_le_bytes());
    out
}

/// TFRecord's masked CRC32C: rotated right by 15 bits plus a constant, so that a CRC stored
/// inside CRC'd data does not weaken the check.
fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = crc32c::crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// A run session's event file, fed the records of the run's metrics log. A record placed by
/// a `global_step` (a training log point) moves the session's step there; the others (the
/// evaluations, the noise AUROC after an epoch) are placed at the latest step, so that every
/// curve shares the training-step axis.
pub struct RecordEvents {
    writer: EventWriter,
    step: i64,
}

impl RecordEvents {
    /// A new event file in `dir` for a session whose metrics log already holds `logged`
    /// (empty for a run starting afresh, the kept records for a resumed one).
    pub fn open(dir: &Path, logged: &[serde_json::Value]) -> std::io::Result<Self> {
        let step = logged
            .iter()
            .filter_map(|r| r["global_step"].as_i64())
            .max()
            .unwrap_or(0);
        let resumed_at = (!logged.is_empty()).then_some(step + 1);
        Ok(Self {
            writer: EventWriter::create(dir, resumed_at)?,
            step,
        })
    }

    pub fn path(&self) -> &Path {
        self.writer.path()
    }

    /// Writes the scalars of `record`.
    pub fn log(&mut self, record: &serde_json::Value) -> std::io::Result<()> {
        if let Some(step) = record["global_step"].as_i64() {
            self.step = step;
        }
        self.writer.scalars(self.step, &record_scalars(record))
    }
}

/// The scalars of a metrics-log record: every number in it but its position (`epoch`, `step`,
/// `global_step`), tagged `<kind>/<field>`, or `<kind>/<dataset>/<field>` for a record of
/// one dataset (`eval/CUHK-PEDES/R1`, `train/loss/sdm`, `noise/auroc`).
pub fn record_scalars(record: &serde_json::Value) -> Vec<(String, f32)> {
    let Some(fields) = record.as_object() else {
        return Vec::new();
    };
    let kind = record["kind"].as_str().unwrap_or("metrics");
    let prefix = match record["dataset"].as_str() {
        Some(dataset) => format!("{kind}/{dataset}"),
        None => kind.to_string(),
    };
    fields
        .iter()
        .filter(|(k, _)| !POSITION.contains(&k.as_str()))
        .filter_map(|(k, v)| Some((format!("{prefix}/{k}"), v.as_f64()? as f32)))
        .collect()
}

/// The fields that place a record in the run rather than measure it.
const POSITION: [&str; 3] = ["epoch", "step", "global_step"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_masked_crc_is_tfrecords() {
        // CRC32C("123456789") = 0xE3069283, TFRecord's mask of it worked by hand:
        // rotate right 15 → 0x2507_C60D, plus 0xA282_EAD8 → 0xC78A_B0E5.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(masked_crc(b"123456789"), 0xc78a_b0e5);
    }

    #[test]
    fn a_record_gives_its_numbers_but_its_position() {
        let record = serde_json::json!({"kind": "eval", "epoch": 2, "dataset": "synth",
            "R1": 12.5, "queries": 6});
        let mut scalars = record_scalars(&record);
        scalars.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            scalars,
            [
                ("eval/synth/R1".to_string(), 12.5),
                ("eval/synth/queries".to_string(), 6.0)
            ]
        );
        let train = serde_json::json!({"kind": "train", "global_step": 7, "loss/itc": 0.5});
        assert_eq!(record_scalars(&train), [("train/loss/itc".to_string(), 0.5)]);
    }

    /// The events of the file at `path`, each frame's length and CRCs checked.
    fn read_events(path: &Path) -> Vec<Event> {
        let bytes = std::fs::read(path).unwrap();
        let mut rest = &bytes[..];
        let mut events = Vec::new();
        while !rest.is_empty() {
            let (head, tail) = rest.split_at(12);
            assert_eq!(masked_crc(&head[..8]).to_le_bytes(), head[8..12]);
            let len = u64::from_le_bytes(head[..8].try_into().unwrap()) as usize;
            let (payload, tail) = tail.split_at(len);
            assert_eq!(masked_crc(payload).to_le_bytes(), tail[..4]);
            events.push(prost::Message::decode(payload).unwrap());
            rest = &tail[4..];
        }
        events
    }

    fn summary(event: &Event) -> Vec<(&str, f32)> {
        match &event.what {
            Some(What::Summary(s)) => s
                .value
                .iter()
                .map(|v| (v.tag.as_str(), v.simple_value.unwrap()))
                .collect(),
            other => panic!("not a summary: {other:?}"),
        }
    }

    #[test]
    fn a_resumed_session_writes_its_own_file_from_the_step_after_the_checkpoint() {
        let dir = std::env::temp_dir().join(format!("gadms-tensorboard-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let train = serde_json::json!({"kind": "train", "epoch": 1, "global_step": 4, "loss": 0.0});
        let eval = serde_json::json!({"kind": "eval", "epoch": 1, "dataset": "d", "R1": 50.0});
        let mut first = RecordEvents::open(&dir, &[]).unwrap();
        first.log(&eval).unwrap();
        first.log(&train).unwrap();
        first.log(&eval).unwrap();
        let mut second = RecordEvents::open(&dir, &[train.clone(), eval.clone()]).unwrap();
        second.log(&eval).unwrap();

        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert_eq!(
            files,
            [first.path(), second.path()],
            "one file per session, in order"
        );
        let first = read_events(&files[0]);
        assert_eq!(first[0].what, Some(What::FileVersion("brain.Event:2".into())));
        let steps: Vec<i64> = first[1..].iter().map(|e| e.step).collect();
        assert_eq!(
            steps,
            [0, 4, 4],
            "an evaluation is placed at the latest training step"
        );
        assert_eq!(summary(&first[2]), [("train/loss", 0.0)], "a zero is written");
        let second = read_events(&files[1]);
        assert_eq!(
            second[1].what,
            Some(What::SessionLog(SessionLog {
                status: SESSION_START
            }))
        );
        assert_eq!(
            second[1].step, 5,
            "the interrupted session's events after step 4 are dropped"
        );
        assert_eq!(
            (second[2].step, summary(&second[2])),
            (4, vec![("eval/d/R1", 50.0)])
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
