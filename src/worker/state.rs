//! The sync history kept under `state_dir`: one JSON line per sync in `<connector>.jsonl`, from
//! the worker (`run`) and from `sync` alike.
//!
//! Each line is a [`SyncRecord`]: the report `sync --json` prints, plus what started the sync and
//! its outcome. Lines are only ever appended, so the history survives restarts and crashes (a
//! line torn by a crash is skipped when read). Reading looks at the end of the file only, so a
//! long history costs nothing at start-up. Not for: metrics or scheduling decisions.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::sync::{ShardSpec, SyncReport};

/// What started a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// `sync_on_start`: the sync at start-up.
    Start,
    /// The connector's `interval` came due.
    Interval,
    /// The connector's cron `schedule` came due.
    Schedule,
    /// `s3-connector sync`, run by hand.
    Manual,
    /// Started through the management API: a connector's creation, or `POST .../sync`.
    Api,
}

impl Trigger {
    /// The name written in records, logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Interval => "interval",
            Self::Schedule => "schedule",
            Self::Manual => "manual",
            Self::Api => "api",
        }
    }
}

/// How a sync ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// No error, not cut short.
    Succeeded,
    /// At least one error (listing, download, index write); what succeeded is committed.
    Failed,
    /// Shutdown cut it short without error: what was complete is committed, nothing deleted.
    Cancelled,
    /// Still running when `shutdown_timeout` ran out: the process exited without waiting, so
    /// writes not yet committed were lost (the next sync redoes them).
    Abandoned,
}

impl Outcome {
    /// The outcome of a sync that ended with `report`.
    pub fn of(report: &SyncReport) -> Self {
        if report.errors > 0 {
            Self::Failed
        } else if report.cancelled {
            Self::Cancelled
        } else {
            Self::Succeeded
        }
    }

    /// The name written in records and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Abandoned => "abandoned",
        }
    }
}

/// One line of the history: a sync's report, what started it and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRecord {
    /// The fields of `sync --json`: counts, `started_at`, `finished_at`, `error_messages`, ...
    #[serde(flatten)]
    pub report: SyncReport,
    /// What started the sync.
    pub trigger: Trigger,
    /// How it ended.
    pub outcome: Outcome,
}

impl SyncRecord {
    /// The record of a sync that ended with `report`.
    pub fn new(report: SyncReport, trigger: Trigger) -> Self {
        let outcome = Outcome::of(&report);
        Self {
            report,
            trigger,
            outcome,
        }
    }
}

/// The end of a connector's history: what `status` and a restarted worker need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tail {
    /// The last sync recorded.
    pub last: Option<SyncRecord>,
    /// When the last successful sync finished.
    pub last_success_at: Option<OffsetDateTime>,
}

/// Why the history could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A file or directory operation failed.
    #[error("cannot {action} {path}: {cause}")]
    Io {
        /// What was being done: "append to", "read", "create".
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        cause: io::Error,
    },
    /// A record could not be encoded (not expected with these types).
    #[error("cannot encode a sync record: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The history files under `state_dir`.
#[derive(Debug, Clone)]
pub struct History {
    dir: PathBuf,
    /// `.shard-I-of-N` for one shard's history (`--shard I/N`, N > 1), else empty.
    suffix: String,
}

/// Bytes read per step when reading a history backwards.
const BLOCK: u64 = 64 * 1024;

impl History {
    /// The history kept in `dir` (created on the first append).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            suffix: String::new(),
        }
    }

    /// The history of shard `spec`: its own file per connector
    /// (`<connector>.shard-I-of-N.jsonl`), so that shards sharing a `state_dir` keep apart and
    /// each worker's status reads its own last sync. Unchanged for `0/1`.
    pub fn for_shard(mut self, spec: ShardSpec) -> Self {
        self.suffix = if spec.count > 1 {
            format!(".shard-{}-of-{}", spec.index, spec.count)
        } else {
            String::new()
        };
        self
    }

    /// The history file of `connector`.
    pub fn path(&self, connector: &str) -> PathBuf {
        self.dir.join(format!("{connector}{}.jsonl", self.suffix))
    }

    /// Creates the directory if needed, so that a directory the process cannot write is an
    /// error at start-up rather than at the end of the first sync.
    pub fn create_dir(&self) -> Result<(), StateError> {
        std::fs::create_dir_all(&self.dir).map_err(|cause| StateError::Io {
            action: "create",
            path: self.dir.clone(),
            cause,
        })
    }

    /// Appends `record` as one line to its connector's file, and flushes it to disk.
    pub fn append(&self, record: &SyncRecord) -> Result<(), StateError> {
        let mut line = serde_json::to_vec(record)?;
        line.push(b'\n');
        self.create_dir()?;
        let path = self.path(&record.report.connector);
        let io_error = |cause| StateError::Io {
            action: "append to",
            path: path.clone(),
            cause,
        };
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_error)?;
        // One write of the whole line: with O_APPEND, lines never interleave.
        file.write_all(&line).map_err(io_error)?;
        file.sync_data().map_err(io_error)
    }

    /// The last record of `connector` and the end time of its last success; empty when it has
    /// no history yet.
    pub fn tail(&self, connector: &str) -> Result<Tail, StateError> {
        let path = self.path(connector);
        let Some(file) = if_exists(File::open(&path), &path)? else {
            return Ok(Tail::default());
        };
        let mut tail = Tail::default();
        lines_backwards(file, |line| {
            let Ok(record) = serde_json::from_slice::<SyncRecord>(line) else {
                tracing::warn!(message = "Skipped an unreadable line of the sync history.", path = %path.display());
                return true;
            };
            if record.outcome == Outcome::Succeeded && tail.last_success_at.is_none() {
                tail.last_success_at = Some(record.report.finished_at);
            }
            if tail.last.is_none() {
                tail.last = Some(record);
            }
            tail.last_success_at.is_none()
        })
        .map_err(|cause| StateError::Io {
            action: "read",
            path: path.clone(),
            cause,
        })?;
        Ok(tail)
    }

    /// Every record of `connector`, oldest first (for tools and tests; the worker reads tails).
    pub fn records(&self, connector: &str) -> Result<Vec<SyncRecord>, StateError> {
        let path = self.path(connector);
        let Some(text) = if_exists(std::fs::read_to_string(&path), &path)? else {
            return Ok(Vec::new());
        };
        Ok(text
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect())
    }

    /// Deletes the history of `connector` (a deleted connector's); nothing when it has none.
    pub fn remove(&self, connector: &str) -> Result<(), StateError> {
        let path = self.path(connector);
        match std::fs::remove_file(&path) {
            Err(cause) if cause.kind() != io::ErrorKind::NotFound => Err(StateError::Io {
                action: "delete",
                path,
                cause,
            }),
            _ => Ok(()),
        }
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// `None` for a file that does not exist (a connector without history yet).
fn if_exists<T>(result: io::Result<T>, path: &Path) -> Result<Option<T>, StateError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(cause) => Err(StateError::Io {
            action: "read",
            path: path.to_owned(),
            cause,
        }),
    }
}

/// Calls `visit` with each non-empty line of `file`, last line first, until it returns false.
fn lines_backwards(mut file: File, mut visit: impl FnMut(&[u8]) -> bool) -> Result<(), io::Error> {
    let mut position = file.seek(SeekFrom::End(0))?;
    // Bytes after the last newline found so far: the end of a line whose start is further back.
    let mut pending: Vec<u8> = Vec::new();
    while position > 0 {
        let start = position.saturating_sub(BLOCK);
        let mut block = vec![0; usize::try_from(position - start).unwrap_or(0)];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut block)?;
        position = start;
        block.extend_from_slice(&pending);
        while let Some(newline) = block.iter().rposition(|&b| b == b'\n') {
            let line = &block[newline + 1..];
            if !line.is_empty() && !visit(line) {
                return Ok(());
            }
            block.truncate(newline);
        }
        pending = block;
    }
    if !pending.is_empty() {
        visit(&pending);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::Counters;

    fn record(connector: &str, errors: u64, cancelled: bool, note: &str) -> SyncRecord {
        let counters = Counters::default();
        for _ in 0..errors {
            counters.error(note.to_owned());
        }
        let mut report = SyncReport::from_counters(
            connector,
            &counters,
            &Default::default(),
            OffsetDateTime::now_utc(),
        );
        report.cancelled = cancelled;
        report.objects_listed = note.len() as u64;
        SyncRecord::new(report, Trigger::Interval)
    }

    #[test]
    fn outcome_follows_errors_then_cancellation() {
        assert_eq!(record("c", 0, false, "").outcome, Outcome::Succeeded);
        assert_eq!(record("c", 0, true, "").outcome, Outcome::Cancelled);
        assert_eq!(record("c", 2, true, "x").outcome, Outcome::Failed);
    }

    #[test]
    fn appended_records_read_back_and_the_tail_finds_the_last_success() {
        let dir = tempfile::tempdir().unwrap();
        let history = History::new(dir.path().join("state"));
        assert_eq!(history.tail("c").unwrap(), Tail::default());
        let ok = record("c", 0, false, "first");
        // Long error messages make lines span several read blocks.
        let failed = record("c", 3, false, &"x".repeat(50_000));
        let other = record("d", 0, false, "other connector");
        for r in [&ok, &failed, &other] {
            history.append(r).unwrap();
        }
        let tail = history.tail("c").unwrap();
        assert_eq!(tail.last.as_ref(), Some(&failed));
        assert_eq!(tail.last_success_at, Some(ok.report.finished_at));
        assert_eq!(
            history.records("c").unwrap(),
            vec![ok.clone(), failed.clone()]
        );
        assert_eq!(history.tail("d").unwrap().last, Some(other));

        // A line torn by a crash is skipped; the records before it still count.
        let mut file = OpenOptions::new()
            .append(true)
            .open(history.path("c"))
            .unwrap();
        file.write_all(b"{\"connector\":\"c\",\"added\":").unwrap();
        let tail = history.tail("c").unwrap();
        assert_eq!(tail.last, Some(failed));
        assert_eq!(tail.last_success_at, Some(ok.report.finished_at));
    }

    #[test]
    fn lines_are_visited_last_first_across_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lines");
        let lines: Vec<String> = (0..2000)
            .map(|i| format!("{i}:{}", "y".repeat(i % 97)))
            .collect();
        std::fs::write(&path, lines.join("\n") + "\n\n").unwrap();
        let mut seen = Vec::new();
        lines_backwards(File::open(&path).unwrap(), |line| {
            seen.push(String::from_utf8(line.to_vec()).unwrap());
            true
        })
        .unwrap();
        seen.reverse();
        assert_eq!(seen, lines);
    }

    #[test]
    fn a_record_is_the_sync_report_plus_trigger_and_outcome() {
        let value = serde_json::to_value(record("c", 1, false, "boom")).unwrap();
        for field in [
            "connector",
            "added",
            "objects_listed",
            "started_at",
            "finished_at",
            "error_messages",
            "cancelled",
        ] {
            assert!(value.get(field).is_some(), "{field} missing from {value}");
        }
        assert_eq!(value["trigger"], "interval");
        assert_eq!(value["outcome"], "failed");
        assert_eq!(value["error_messages"][0], "boom");
    }
}
