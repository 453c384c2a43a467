//! `s3-connector run` as a process: scheduled syncs against moto, skipped overlaps, independent
//! connectors, the HTTP endpoints, metrics that match the sync history, `status` and
//! `healthcheck`, and shutdown on SIGTERM (clean, timed out, and on a second signal).

use std::collections::HashMap;
use std::fs::File;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use prometheus_parse::{Scrape, Value as Metric};
use s3_connector::sink::DocId;
use s3_connector::sink::embedded::EmbeddedIndex;
use s3_connector::worker::state::{History, Outcome, SyncRecord, Trigger};
use s3_connector::worker::status::StatusReport;
use serde_json::Value;
use tempfile::TempDir;

use crate::fixture::{delete, s3_client};
use crate::support::http::{self, HttpResponse};
use crate::support::moto::{ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, free_port};
use crate::support::{EmbedServer, Fault, FaultProxy, Match, MotoServer, unique_name};

const BIN: &str = env!("CARGO_BIN_EXE_s3-connector");
/// Upper bound for anything the worker should do soon; generous for a loaded machine.
const PATIENCE: Duration = Duration::from_secs(90);

/// One connector of a test config.
pub(crate) struct Connector<'a> {
    pub id: &'a str,
    pub bucket: &'a str,
    pub endpoint: String,
    pub extra: &'a str,
}

/// A directory with a config file, the index and the history of one worker.
pub(crate) struct WorkerDir {
    pub dir: TempDir,
    listen: SocketAddr,
}

impl WorkerDir {
    pub fn new(connectors: &[Connector<'_>], top_level: &str) -> Self {
        Self::with_index(connectors, top_level, None)
    }

    /// [`WorkerDir::new`] with the `index:` section's lines (`  kind: opensearch ...`); `None`:
    /// the embedded index in the directory.
    pub fn with_index(connectors: &[Connector<'_>], top_level: &str, index: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let listen: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let index = index.map_or_else(
            || {
                format!(
                    "  kind: embedded\n  path: {}",
                    dir.path().join("index").display()
                )
            },
            str::to_owned,
        );
        let mut text = format!(
            "index:\n{index}\nstate_dir: {}\nlisten: {listen}\n{top_level}\nconnectors:\n",
            dir.path().join("state").display(),
        );
        for c in connectors {
            text.push_str(&format!(
                "  - id: {}\n    buckets: [{:?}]\n    region: {REGION}\n    endpoint_url: {}\n    aws_access_key_id: {ACCESS_KEY_ID}\n    aws_secret_access_key: {SECRET_ACCESS_KEY}\n    max_attempts: 2\n    read_timeout: 120\n{}\n",
                c.id, c.bucket, c.endpoint, c.extra
            ));
        }
        std::fs::write(dir.path().join("config.yml"), text).unwrap();
        Self { dir, listen }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("config.yml")
    }

    /// The address the worker listens on.
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    pub fn history(&self, connector: &str) -> Vec<SyncRecord> {
        History::new(self.dir.path().join("state"))
            .records(connector)
            .unwrap()
    }

    pub fn index(&self, connector: &str) -> EmbeddedIndex {
        EmbeddedIndex::open_or_create(&self.dir.path().join("index").join(connector)).unwrap()
    }

    /// Runs a one-shot command of the binary on this config.
    pub fn command(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .arg("--config")
            .arg(self.config())
            .env_remove("RUST_LOG")
            .env_remove("S3C_LISTEN")
            .output()
            .unwrap()
    }

    pub fn start(&self) -> WorkerProcess {
        let log = self.dir.path().join("worker.log");
        let child = Command::new(BIN)
            .args(["--log-format", "json", "run", "--config"])
            .arg(self.config())
            .env_remove("RUST_LOG")
            .env_remove("S3C_LISTEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let worker = WorkerProcess {
            child,
            log,
            endpoint: format!("http://{}", self.listen),
        };
        wait_for("the worker's /healthz", || {
            worker.try_get("/healthz").filter(|r| r.status == 200)
        });
        worker
    }
}

/// A running `s3-connector run`; killed if the test ends without stopping it.
pub(crate) struct WorkerProcess {
    child: Child,
    log: PathBuf,
    endpoint: String,
}

impl WorkerProcess {
    pub fn try_get(&self, path: &str) -> Option<HttpResponse> {
        http::send(
            &self.endpoint,
            "GET",
            path,
            &[],
            b"",
            Duration::from_secs(10),
        )
        .ok()
    }

    pub fn get(&self, path: &str) -> HttpResponse {
        self.try_get(path)
            .unwrap_or_else(|| panic!("GET {path} failed; log:\n{}", self.log_text()))
    }

    pub fn status(&self) -> StatusReport {
        let response = self.get("/status");
        assert_eq!(response.status, 200, "{}", response.text());
        serde_json::from_slice(&response.body).unwrap()
    }

    pub fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args(["-s", name, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -s {name} failed");
    }

    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the worker did not exit within {within:?}; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The JSON log lines whose message starts with `prefix`.
    pub fn logs_starting(&self, prefix: &str) -> Vec<Value> {
        self.log_text()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|line| {
                line["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(prefix))
            })
            .collect()
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `check` every 100 ms until it gives a value; fails after [`PATIENCE`].
pub(crate) fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn seed(moto: &MotoServer, bucket: &str, keys: &[&str]) {
    moto.create_bucket(bucket);
    for key in keys {
        moto.put_object(bucket, key, format!("the text of {key}").as_bytes());
    }
}

/// The value of a counter or gauge sample with these labels.
pub(crate) fn sample(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .find_map(|s| match s.value {
            Metric::Counter(v) | Metric::Gauge(v) | Metric::Untyped(v) => Some(v),
            _ => None,
        })
}

/// Parses the exposition and checks that every family announced by `# TYPE` has samples of
/// that type.
pub(crate) fn parse_metrics(text: &str) -> Scrape {
    let scrape = Scrape::parse(text.lines().map(|line| Ok(line.to_owned())))
        .unwrap_or_else(|e| panic!("not Prometheus text: {e}\n{text}"));
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let mut words = line.split_whitespace().skip(2);
        let (name, kind) = (words.next().unwrap(), words.next().unwrap());
        let typed = scrape.samples.iter().any(|s| {
            s.metric == name
                && matches!(
                    (&s.value, kind),
                    (Metric::Counter(_), "counter")
                        | (Metric::Gauge(_), "gauge")
                        | (Metric::Histogram(_), "histogram")
                )
        });
        assert!(typed, "no {kind} samples parsed for {name}:\n{text}");
    }
    scrape
}

/// Scrapes `/metrics` at a moment when no history line was appended during the scrape, and
/// returns it with the history of each connector at that moment.
fn consistent_scrape(
    worker: &WorkerProcess,
    dir: &WorkerDir,
    connectors: &[&str],
) -> (Scrape, HashMap<String, Vec<SyncRecord>>) {
    wait_for("a scrape between two history appends", || {
        let before: Vec<usize> = connectors.iter().map(|c| dir.history(c).len()).collect();
        let response = worker.get("/metrics");
        assert_eq!(response.status, 200);
        assert!(
            response
                .header("content-type")
                .is_some_and(|t| t.starts_with("text/plain; version=0.0.4"))
        );
        let history: HashMap<String, Vec<SyncRecord>> = connectors
            .iter()
            .map(|c| (c.to_string(), dir.history(c)))
            .collect();
        let unchanged = connectors
            .iter()
            .zip(&before)
            .all(|(c, n)| history[*c].len() == *n);
        unchanged.then(|| (parse_metrics(&response.text()), history))
    })
}

fn assert_no_overlap(connector: &str, records: &[SyncRecord]) {
    for pair in records.windows(2) {
        assert!(
            pair[1].report.started_at >= pair[0].report.finished_at,
            "{connector}: a sync started at {} before the previous one ended at {}",
            pair[1].report.started_at,
            pair[0].report.finished_at
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_syncs_on_schedule_skips_overlaps_serves_metrics_and_stops_on_sigterm() {
    let moto = MotoServer::shared();
    let fast_bucket = unique_name("run-fast");
    let slow_bucket = unique_name("run-slow");
    seed(moto, &fast_bucket, &["a.txt", "b.md", "c/d.txt"]);
    seed(moto, &slow_bucket, &["one.txt", "two.txt", "three.txt"]);
    // Every request of the slow connector waits 2 s: each of its syncs outlasts the 1 s interval.
    let proxy = FaultProxy::start(&moto.endpoint());
    proxy.inject(Fault::Delay(Duration::from_secs(2)), Match::any(), None);
    let every_second = "    interval: 1s\n    sync_on_start: true";
    // A bucket that does not exist: every sync of this connector fails.
    let missing_bucket = unique_name("run-missing");
    let dir = WorkerDir::new(
        &[
            Connector {
                id: "fast",
                bucket: &fast_bucket,
                endpoint: moto.endpoint(),
                extra: every_second,
            },
            Connector {
                id: "slow",
                bucket: &slow_bucket,
                endpoint: proxy.endpoint(),
                extra: every_second,
            },
            Connector {
                id: "broken",
                bucket: &missing_bucket,
                endpoint: moto.endpoint(),
                extra: every_second,
            },
        ],
        "shutdown_timeout: 60s",
    );
    let mut worker = dir.start();

    // Two syncs of the slow connector, so that its ticks in between were skipped.
    wait_for("two syncs of the slow connector", || {
        (dir.history("slow").len() >= 2).then_some(())
    });
    let fast = dir.history("fast");
    let slow = dir.history("slow");
    assert_eq!(fast[0].trigger, Trigger::Start);
    assert_eq!(fast[0].report.added, 3, "{:?}", fast[0]);
    assert!(
        fast[1..]
            .iter()
            .all(|r| r.trigger == Trigger::Interval && r.report.unchanged == 3),
        "{fast:#?}"
    );
    for (id, records) in [("fast", &fast), ("slow", &slow)] {
        assert!(
            records.iter().all(|r| r.outcome == Outcome::Succeeded),
            "{id}: {records:#?}"
        );
        assert_no_overlap(id, records);
    }
    assert_eq!(slow[0].report.added, 3);
    // The failing connector fails on every run and keeps its schedule; the others go on.
    let broken = dir.history("broken");
    assert!(broken.len() >= 2, "{broken:#?}");
    assert_no_overlap("broken", &broken);
    for record in &broken {
        assert_eq!(record.outcome, Outcome::Failed);
        assert!(
            record.report.error_messages[0].contains("does not exist"),
            "{:?}",
            record.report.error_messages
        );
    }
    // The slow connector does not hold the fast one back.
    let fast_during_first_slow = fast
        .iter()
        .filter(|r| r.report.finished_at < slow[0].report.finished_at)
        .count();
    assert!(
        fast_during_first_slow >= 2,
        "fast synced {fast_during_first_slow} time(s) while the first slow sync ran"
    );
    let skips = worker.logs_starting("Skipped a sync that came due");
    assert!(
        skips.iter().any(|line| line["connector"] == "slow"),
        "no skip logged for the slow connector:\n{}",
        worker.log_text()
    );

    // /metrics: Prometheus text whose counters are the sums of the history's reports.
    let (scrape, history) = consistent_scrape(&worker, &dir, &["fast", "slow", "broken"]);
    for (id, records) in &history {
        let labels = [("connector", id.as_str())];
        let sum = |f: fn(&SyncRecord) -> u64| records.iter().map(f).sum::<u64>() as f64;
        for (metric, expected) in [
            ("s3c_objects_listed_total", sum(|r| r.report.objects_listed)),
            (
                "s3c_objects_indexed_total",
                sum(|r| r.report.added + r.report.updated),
            ),
            ("s3c_objects_unchanged_total", sum(|r| r.report.unchanged)),
            ("s3c_objects_deleted_total", sum(|r| r.report.deleted)),
            (
                "s3c_objects_metadata_only_total",
                sum(|r| r.report.metadata_only),
            ),
            (
                "s3c_extraction_errors_total",
                sum(|r| r.report.extraction_errors),
            ),
            ("s3c_s3_requests_total", sum(|r| r.report.s3_requests)),
            ("s3c_s3_retries_total", sum(|r| r.report.s3_retries)),
            (
                "s3c_bytes_downloaded_total",
                sum(|r| r.report.bytes_downloaded),
            ),
        ] {
            assert_eq!(
                sample(&scrape, metric, &labels),
                Some(expected),
                "{metric} of {id}"
            );
        }
        assert!(sum(|r| r.report.s3_requests) > 0.0);
        assert_eq!(
            sample(&scrape, "s3c_sync_errors_total", &labels),
            Some(sum(|r| r.report.errors))
        );
        let outcome = if id == "broken" {
            "failed"
        } else {
            "succeeded"
        };
        assert_eq!(
            sample(
                &scrape,
                "s3c_syncs_total",
                &[("connector", id), ("outcome", outcome)]
            ),
            Some(records.len() as f64)
        );
        let durations = scrape
            .samples
            .iter()
            .find(|s| {
                s.metric == "s3c_sync_duration_seconds" && s.labels.get("connector") == Some(id)
            })
            .map(|s| s.value.clone());
        match durations {
            Some(Metric::Histogram(buckets)) => {
                let all = buckets.iter().map(|b| b.count).fold(0.0, f64::max);
                assert_eq!(all, records.len() as f64, "histogram of {id}: {buckets:?}");
            }
            other => panic!("no duration histogram for {id}: {other:?}"),
        }
        let last_success = sample(&scrape, "s3c_last_success_timestamp_seconds", &labels);
        if id == "broken" {
            assert_eq!(last_success, None, "a connector that never succeeded");
            continue;
        }
        let last_finished = records.last().unwrap().report.finished_at;
        assert!((last_success.unwrap() - last_finished.unix_timestamp() as f64).abs() < 1.0);
    }
    assert!(sample(&scrape, "s3c_syncs_skipped_total", &[("connector", "slow")]).unwrap() >= 1.0);

    // The other endpoints, and the commands that ask the running worker.
    let health = worker.get("/healthz");
    assert_eq!((health.status, health.text().as_str()), (200, "ok\n"));
    assert_eq!(worker.get("/readyz").status, 200);
    assert_eq!(worker.get("/nope").status, 404);
    let status = worker.status();
    assert!(status.worker_running && !status.shutting_down);
    let ids: Vec<&str> = status.connectors.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["fast", "slow", "broken"]);
    for connector in &status.connectors {
        assert_eq!(connector.schedule.as_deref(), Some("every 1s"));
        assert!(connector.last_sync.is_some());
        assert_eq!(
            connector.last_success_at.is_some(),
            connector.id != "broken"
        );
        assert_eq!(connector.index_reachable, Some(true));
    }
    assert!(status.connectors[1].skipped >= 1);
    let output = dir.command(&["status", "--json"]);
    assert_eq!(output.status.code(), Some(0));
    let live: StatusReport = serde_json::from_slice(&output.stdout).unwrap();
    assert!(live.worker_running && live.connectors[0].next_run.is_some());
    let output = dir.command(&["healthcheck"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");

    // Change the slow bucket, wait for a slow sync that started afterwards and is still
    // listing (the listing takes 2 s behind the proxy), and send SIGTERM.
    let changed_at = time::OffsetDateTime::now_utc();
    moto.put_object(&slow_bucket, "four.txt", b"the text of four");
    moto.put_object(&slow_bucket, "five.txt", b"the text of five");
    delete(&s3_client(&moto.endpoint()), &slow_bucket, "one.txt").await;
    wait_for("a slow sync listing the changed bucket", || {
        let status = worker.status();
        let running = status.connectors[1].running.as_ref()?;
        (running.started_at > changed_at && running.objects_listed == 0).then_some(())
    });
    worker.signal("TERM");
    let exit = worker.wait_exit(PATIENCE);
    assert_eq!(exit.code(), Some(0), "log:\n{}", worker.log_text());
    assert_eq!(
        worker
            .logs_starting("Shut down: every sync in flight")
            .len(),
        1
    );

    let last = dir.history("slow").pop().unwrap();
    assert_eq!(last.outcome, Outcome::Cancelled, "{last:#?}");
    assert!(last.report.cancelled);
    assert_eq!(last.report.deleted, 0, "a cancelled sync deletes nothing");
    let index = dir.index("slow");
    assert!(
        index
            .get(DocId::of(&slow_bucket, "one.txt"))
            .unwrap()
            .is_some(),
        "the cancelled sync must not delete"
    );
    drop(index);

    // Without a worker, status reads the history.
    let output = dir.command(&["status", "--json"]);
    assert_eq!(output.status.code(), Some(0));
    let offline: StatusReport = serde_json::from_slice(&output.stdout).unwrap();
    assert!(!offline.worker_running);
    assert_eq!(offline.connectors[1].last_sync.as_ref(), Some(&last));
    assert!(offline.connectors.iter().all(|c| c.next_run.is_none()));
    let output = dir.command(&["status"]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("worker: not running"), "{text}");
    assert!(text.contains("slow: every 1s, and at start-up"), "{text}");
    assert!(text.contains("last sync: cancelled (interval)"), "{text}");
    assert_ne!(dir.command(&["healthcheck"]).status.code(), Some(0));

    // The next sync converges: the index holds exactly the bucket.
    proxy.clear_faults();
    let output = dir.command(&["sync", "--connector", "slow", "--json"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["errors"], 0, "{report}");
    assert_eq!(report["deleted"], 1, "{report}");
    assert_eq!(report["objects_listed"], 4, "{report}");
    let index = dir.index("slow");
    assert_eq!(index.count().unwrap(), 4);
    for key in ["two.txt", "three.txt", "four.txt", "five.txt"] {
        let doc = index.get(DocId::of(&slow_bucket, key)).unwrap();
        assert!(
            doc.is_some_and(|d| d.body.unwrap_or_default().contains("the text of")),
            "{key}"
        );
    }
    drop(index);
    let output = dir.command(&["sync", "--connector", "slow", "--json"]);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        (&report["unchanged"], &report["added"], &report["deleted"]),
        (&Value::from(4), &Value::from(0), &Value::from(0)),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_abandons_syncs_after_the_timeout_and_a_second_signal_exits_at_once() {
    let moto = MotoServer::shared();
    let bucket = unique_name("run-stuck");
    seed(moto, &bucket, &["a.txt"]);
    // Every request hangs for 40 s: a sync cannot finish before the test gives up on it.
    let proxy = FaultProxy::start(&moto.endpoint());
    proxy.inject(Fault::Delay(Duration::from_secs(40)), Match::any(), None);
    let connector = |id| Connector {
        id,
        bucket: &bucket,
        endpoint: proxy.endpoint(),
        extra: "    sync_on_start: true",
    };

    // A listen address that is taken: a clear error, exit 1, before any sync.
    let dir = WorkerDir::new(&[connector("stuck")], "");
    let taken = std::net::TcpListener::bind(dir.listen).unwrap();
    let output = dir.command(&["run"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {}", dir.listen)),
        "{stderr}"
    );
    assert!(dir.history("stuck").is_empty());
    drop(taken);

    // shutdown_timeout 1s: the worker exits 0 without the stuck sync and records it.
    let dir = WorkerDir::new(&[connector("stuck")], "shutdown_timeout: 1s");
    let sent_before = proxy.request_count();
    let mut worker = dir.start();
    wait_for("the start-up sync to send its listing", || {
        (proxy.request_count() > sent_before).then_some(())
    });
    let signalled = Instant::now();
    worker.signal("TERM");
    let exit = worker.wait_exit(PATIENCE);
    assert_eq!(exit.code(), Some(0), "log:\n{}", worker.log_text());
    assert!(
        signalled.elapsed() < Duration::from_secs(30),
        "the worker waited for the stuck request instead of the 1 s shutdown timeout"
    );
    let records = dir.history("stuck");
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(records[0].outcome, Outcome::Abandoned);
    assert_eq!(records[0].trigger, Trigger::Start);
    assert!(records[0].report.cancelled);
    assert!(
        records[0].report.error_messages[0].starts_with("abandoned at shutdown after waiting 1s"),
        "{:?}",
        records[0].report.error_messages
    );
    assert_eq!(
        worker.logs_starting("The shutdown timeout ran out").len(),
        1,
        "{}",
        worker.log_text()
    );

    // A long shutdown_timeout, and a second SIGTERM: exit at once with 128 + 15.
    let dir = WorkerDir::new(&[connector("patient")], "shutdown_timeout: 10m");
    let sent_before = proxy.request_count();
    let mut worker = dir.start();
    wait_for("the start-up sync to send its listing", || {
        (proxy.request_count() > sent_before).then_some(())
    });
    worker.signal("TERM");
    wait_for("readiness to drop during shutdown", || {
        (worker.get("/readyz").status == 503).then_some(())
    });
    assert!(worker.status().shutting_down);
    worker.signal("TERM");
    let exit = worker.wait_exit(PATIENCE);
    assert_eq!(exit.code(), Some(143), "log:\n{}", worker.log_text());
    assert!(worker.logs_starting("Second signal: exiting at once").len() == 1);
    assert!(
        dir.history("patient").is_empty(),
        "{:#?}\n{}",
        dir.history("patient"),
        worker.log_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_back_mass_delete_shows_in_status_and_metrics_until_allowed() {
    let moto = MotoServer::shared();
    let bucket = unique_name("run-mass-delete");
    let keys: Vec<String> = (0..110).map(|n| format!("doc-{n:03}.txt")).collect();
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    seed(moto, &bucket, &key_refs);
    let dir = WorkerDir::new(
        &[Connector {
            id: "guarded",
            bucket: &bucket,
            endpoint: moto.endpoint(),
            extra: "    interval: 1s\n    sync_on_start: true",
        }],
        "",
    );
    let mut worker = dir.start();
    wait_for("a first sync that indexed the bucket", || {
        let status = worker.status();
        let last = status.connectors[0].last_sync.clone()?;
        (last.outcome == Outcome::Succeeded && last.report.added == 110).then_some(())
    });

    // One DeleteObjects request, so that no sync sees only a part of the deletions.
    let s3 = s3_client(&moto.endpoint());
    let objects: Vec<ObjectIdentifier> = keys
        .iter()
        .map(|key| ObjectIdentifier::builder().key(key).build().unwrap())
        .collect();
    let batch = Delete::builder()
        .set_objects(Some(objects))
        .build()
        .unwrap();
    s3.delete_objects()
        .bucket(&bucket)
        .delete(batch)
        .send()
        .await
        .unwrap();
    let held = wait_for("a sync that held the deletions back", || {
        let status = worker.status();
        let last = status.connectors[0].last_sync.clone()?;
        (last.report.deletions_held_back > 0).then_some(last)
    });
    assert_eq!(held.outcome, Outcome::Failed);
    assert_eq!(
        (held.report.deletions_held_back, held.report.deleted),
        (110, 0)
    );
    assert!(
        held.report.error_messages[0].contains("--allow-mass-delete"),
        "{:?}",
        held.report.error_messages
    );
    let scrape = parse_metrics(&worker.get("/metrics").text());
    assert_eq!(
        sample(
            &scrape,
            "s3c_deletions_held_back",
            &[("connector", "guarded")]
        ),
        Some(110.0)
    );
    assert_eq!(dir.index("guarded").count().unwrap(), 110);
    let status_text = dir.command(&["status"]);
    let status_text = String::from_utf8_lossy(&status_text.stdout);
    assert!(
        status_text.contains("deletions held back: 110"),
        "{status_text}"
    );

    worker.signal("TERM");
    assert!(worker.wait_exit(PATIENCE).success());
    // The person's way out: one manual sync that allows it.
    let allowed = dir.command(&["sync", "--json", "--allow-mass-delete"]);
    assert!(
        allowed.status.success(),
        "{}",
        String::from_utf8_lossy(&allowed.stderr)
    );
    assert_eq!(dir.index("guarded").count().unwrap(), 0);
}

/// One loaded model per connector: the worker's syncs (on start and through the API) and every
/// semantic and hybrid search of the API share the embedder its `embedding:` block built once
/// (`s3c_embedding_model_loads_total` stays 1), while each search still embeds its query.
#[test]
fn syncs_and_searches_of_a_connector_share_one_loaded_model() {
    const TOKEN: &str = "worker-test-token-0123456789";
    let moto = MotoServer::shared();
    let bucket = unique_name("run-model-once");
    seed(moto, &bucket, &["rockets.txt", "gliders.md"]);
    let endpoint = EmbedServer::start(16);
    let extra = format!(
        "    sync_on_start: true\n    embedding:\n      provider: openai\n      endpoint_url: {}\n      model: word-hash\n      dimensions: 16\n",
        endpoint.url()
    );
    let dir = WorkerDir::new(
        &[Connector {
            id: "meaning",
            bucket: &bucket,
            endpoint: moto.endpoint(),
            extra: &extra,
        }],
        &format!("api:\n  token: {TOKEN}\n  external_id: worker-test"),
    );
    let worker = dir.start();
    // `/status` is behind the API's token: the history says what the syncs did.
    let synced = |added: u64| {
        wait_for("a sync that embedded the bucket", || {
            let last = dir.history("meaning").pop()?;
            (last.outcome == Outcome::Succeeded && last.report.added == added).then_some(last)
        })
    };
    let first = synced(2);
    assert!(first.report.passages_embedded >= 2, "{:?}", first.report);
    let call = |method: &str, path: &str| {
        let bearer = format!("Bearer {TOKEN}");
        let response = http::send(
            &format!("http://{}", dir.listen()),
            method,
            path,
            &[("Authorization", &bearer)],
            b"",
            Duration::from_secs(60),
        )
        .unwrap();
        let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        (response.status, body)
    };
    let loads = || {
        let scrape = parse_metrics(&worker.get("/metrics").text());
        sample(
            &scrape,
            "s3c_embedding_model_loads_total",
            &[("connector", "meaning")],
        )
    };
    assert_eq!(loads(), Some(1.0));

    let before = endpoint.requests().len();
    let searches = ["semantic", "hybrid", "semantic", "hybrid", "semantic"];
    for mode in searches {
        let (status, answer) = call(
            "GET",
            &format!("/api/v1/connectors/meaning/search?q=the+text+of+rockets&mode={mode}&limit=5"),
        );
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["mode"], mode);
        assert_eq!(answer["hits"][0]["key"], "rockets.txt", "{answer}");
    }
    assert_eq!(endpoint.requests().len() - before, searches.len());
    assert_eq!(loads(), Some(1.0));

    // A sync started through the API embeds with the same embedder.
    moto.put_object(&bucket, "balloons.txt", b"the text of balloons.txt");
    let (status, answer) = call("POST", "/api/v1/connectors/meaning/sync");
    assert_eq!(status, 202, "{answer}");
    synced(1);
    assert_eq!(loads(), Some(1.0));
}
