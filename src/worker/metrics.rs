//! The worker's Prometheus metrics, rendered in the Prometheus text exposition format by
//! `metrics-exporter-prometheus` for `GET /metrics`.
//!
//! Counters advance when a sync ends, by that sync's report, and the history line is appended
//! under the same lock ([`WorkerMetrics::record`]), so a scrape always equals the sum of the
//! history's records at that moment. Every series is labelled with its connector, and each
//! connector has a registry of its own, so a deleted connector's series disappear at once
//! ([`WorkerMetrics::remove`]) and a connector created again under its id starts from zero; a
//! scrape merges the registries family by family. Not for: logging (the worker logs) or the
//! history itself.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};
use time::OffsetDateTime;

use super::state::{Outcome, SyncRecord};
use crate::sync::SyncReport;
use crate::sync::report::COUNTS;

/// The counters fed from sync reports: name, help, and how to read the increment from a
/// record. Declared with the report's counts ([`COUNTS`]); several counts may feed one counter.
fn report_counters() -> impl Iterator<Item = (&'static str, &'static str, fn(&SyncReport) -> u64)> {
    COUNTS
        .iter()
        .filter_map(|count| count.metric.map(|(name, help)| (name, help, count.of)))
}

/// Finished syncs, by connector and outcome.
pub const SYNCS: &str = "s3c_syncs_total";
/// Syncs that came due while the previous one still ran, by connector.
pub const SKIPPED: &str = "s3c_syncs_skipped_total";
/// Histogram of sync wall time.
pub const DURATION: &str = "s3c_sync_duration_seconds";
/// Unix time of the end of the last successful sync.
pub const LAST_SUCCESS: &str = "s3c_last_success_timestamp_seconds";
/// 1 while a sync of the connector runs.
pub const IN_PROGRESS: &str = "s3c_sync_in_progress";
/// Deletions the mass-delete guard held back in the connector's last sync that got that far.
pub const HELD_BACK: &str = "s3c_deletions_held_back";

/// Messages waiting in the connector's notification queue (ApproximateNumberOfMessages).
pub const QUEUE_MESSAGES: &str = "s3c_queue_messages";
/// Messages received from the queue and not yet deleted or returned.
pub const QUEUE_IN_FLIGHT: &str = "s3c_queue_messages_in_flight";
/// Age of the oldest message of the last non-empty receive; 0 after an empty one.
pub const QUEUE_LAG: &str = "s3c_queue_lag_seconds";

/// Embedders built from the connector's `embedding:` block (the local model loaded, or the
/// endpoint's client made): one per block while it stays the same.
pub const MODEL_LOADS: &str = "s3c_embedding_model_loads_total";

/// Every metric the worker exports, each name once: the counters fed by sync reports (in the
/// order of [`COUNTS`]), then the others. The documentation's metrics table is held to this
/// list (`tests/docs.rs`), and a unit test holds it to what [`WorkerMetrics::render`] shows.
pub fn names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for (name, _, _) in report_counters() {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names.extend([
        SYNCS,
        SKIPPED,
        DURATION,
        LAST_SUCCESS,
        IN_PROGRESS,
        HELD_BACK,
        QUEUE_MESSAGES,
        QUEUE_IN_FLIGHT,
        QUEUE_LAG,
        MODEL_LOADS,
    ]);
    names
}

/// Upper bounds of the sync-duration buckets, in seconds: from a second to six hours.
const DURATION_BUCKETS: [f64; 12] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0,
];

const OUTCOMES: [Outcome; 4] = [
    Outcome::Succeeded,
    Outcome::Failed,
    Outcome::Cancelled,
    Outcome::Abandoned,
];

/// The worker's metrics: a registry per connector, none installed globally.
pub struct WorkerMetrics {
    /// By connector id. Held while a sync's end is recorded (metrics and history line) and
    /// while rendering.
    recorders: Mutex<BTreeMap<String, PrometheusRecorder>>,
}

impl std::fmt::Debug for WorkerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerMetrics").finish_non_exhaustive()
    }
}

impl WorkerMetrics {
    /// A registry with every metric of every connector present (at zero), so that dashboards
    /// see a connector before its first sync ends.
    pub fn new<'a>(connectors: impl IntoIterator<Item = &'a str>) -> Self {
        let this = Self {
            recorders: Mutex::new(BTreeMap::new()),
        };
        for connector in connectors {
            this.register(connector);
        }
        this
    }

    /// Makes every metric of `connector` present at zero (at start-up, and for a connector
    /// created through the API), in a registry of its own.
    pub fn register(&self, connector: &str) {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(DURATION.to_owned()), &DURATION_BUCKETS)
            .map(PrometheusBuilder::build_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let id = connector.to_owned();
        metrics::with_local_recorder(&recorder, || {
            describe();
            for (name, _, _) in report_counters() {
                counter!(name, "connector" => id.clone()).absolute(0);
            }
            for outcome in OUTCOMES {
                counter!(SYNCS, "connector" => id.clone(), "outcome" => outcome.as_str())
                    .absolute(0);
            }
            counter!(SKIPPED, "connector" => id.clone()).absolute(0);
            counter!(MODEL_LOADS, "connector" => id.clone()).absolute(0);
            gauge!(IN_PROGRESS, "connector" => id.clone()).set(0.0);
            gauge!(HELD_BACK, "connector" => id.clone()).set(0.0);
        });
        self.lock().insert(id, recorder);
    }

    /// Drops every series of `connector` (deleted through the API): the next scrape has none.
    pub fn remove(&self, connector: &str) {
        self.lock().remove(connector);
    }

    /// Runs `f` on `connector`'s registry; nothing happens for an unknown (deleted) connector.
    fn with(&self, connector: &str, f: impl FnOnce()) {
        if let Some(recorder) = self.lock().get(connector) {
            metrics::with_local_recorder(recorder, f);
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, PrometheusRecorder>> {
        self.recorders
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a finished sync to the metrics and runs `persist` (the history append) under the
    /// same lock as [`WorkerMetrics::render`], so no scrape sees one without the other.
    pub fn record<T>(&self, record: &SyncRecord, persist: impl FnOnce() -> T) -> T {
        let recorders = self.lock();
        let id = record.report.connector.clone();
        let add = || {
            for (name, _, value) in report_counters() {
                counter!(name, "connector" => id.clone()).increment(value(&record.report));
            }
            counter!(SYNCS, "connector" => id.clone(), "outcome" => record.outcome.as_str())
                .increment(1);
            histogram!(DURATION, "connector" => id.clone())
                .record(record.report.duration_ms as f64 / 1000.0);
            // A cancelled or abandoned sync may have stopped before its deletions: it says
            // nothing about them.
            if matches!(record.outcome, Outcome::Succeeded | Outcome::Failed) {
                gauge!(HELD_BACK, "connector" => id.clone())
                    .set(record.report.deletions_held_back as f64);
            }
            if record.outcome == Outcome::Succeeded {
                gauge!(LAST_SUCCESS, "connector" => id.clone())
                    .set(unix_seconds(record.report.finished_at));
            }
        };
        if let Some(recorder) = recorders.get(&id) {
            metrics::with_local_recorder(recorder, add);
        }
        persist()
    }

    /// Adds what a round of event notifications did (its report) to the counters; a round
    /// is not a sync, so the sync counts, durations and gauges stay as they are.
    pub fn record_events(&self, report: &SyncReport) {
        let id = report.connector.clone();
        self.with(&id, || {
            for (name, _, value) in report_counters() {
                counter!(name, "connector" => id.clone()).increment(value(report));
            }
        });
    }

    /// Sets the notification queue's gauges: messages waiting and in flight (when known) and
    /// the lag.
    pub fn queue(&self, connector: &str, depth: Option<(u64, u64)>, lag_seconds: f64) {
        self.with(connector, || {
            if let Some((visible, in_flight)) = depth {
                gauge!(QUEUE_MESSAGES, "connector" => connector.to_owned()).set(visible as f64);
                gauge!(QUEUE_IN_FLIGHT, "connector" => connector.to_owned()).set(in_flight as f64);
            }
            gauge!(QUEUE_LAG, "connector" => connector.to_owned()).set(lag_seconds);
        });
    }

    /// Sets the end time of the connector's last successful sync (also from the history at
    /// start-up).
    pub fn last_success(&self, connector: &str, at: OffsetDateTime) {
        let seconds = unix_seconds(at);
        self.with(connector, || {
            gauge!(LAST_SUCCESS, "connector" => connector.to_owned()).set(seconds);
        });
    }

    /// Marks a sync of the connector as running or not.
    pub fn in_progress(&self, connector: &str, running: bool) {
        let value = if running { 1.0 } else { 0.0 };
        self.with(connector, || {
            gauge!(IN_PROGRESS, "connector" => connector.to_owned()).set(value);
        });
    }

    /// Counts a sync skipped because the previous one still ran.
    pub fn skipped(&self, connector: &str) {
        self.with(connector, || {
            counter!(SKIPPED, "connector" => connector.to_owned()).increment(1);
        });
    }

    /// Counts an embedder built for the connector.
    pub fn model_loaded(&self, connector: &str) {
        self.with(connector, || {
            counter!(MODEL_LOADS, "connector" => connector.to_owned()).increment(1);
        });
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let recorders = self.lock();
        merge(recorders.values().map(|r| r.handle().render()))
    }
}

fn unix_seconds(at: OffsetDateTime) -> f64 {
    at.unix_timestamp_nanos() as f64 / 1e9
}

/// Describes every metric (in the registry of the current scope).
fn describe() {
    for (name, help, _) in report_counters() {
        describe_counter!(name, help);
    }
    describe_counter!(SYNCS, "Finished syncs, by outcome.");
    describe_counter!(
        SKIPPED,
        "Syncs not started because the previous sync of the connector was still running."
    );
    describe_histogram!(DURATION, Unit::Seconds, "Wall time of syncs.");
    describe_gauge!(
        LAST_SUCCESS,
        Unit::Seconds,
        "Unix time at which the last successful sync ended."
    );
    describe_gauge!(IN_PROGRESS, "1 while a sync of the connector runs, else 0.");
    describe_gauge!(
        HELD_BACK,
        "Deletions the mass-delete guard held back in the last completed sync (see max_delete_fraction); non-zero until a person allows or undoes them."
    );
    describe_gauge!(
        QUEUE_MESSAGES,
        "Messages waiting in the connector's notification queue (SQS ApproximateNumberOfMessages)."
    );
    describe_gauge!(
        QUEUE_IN_FLIGHT,
        "Messages received from the notification queue and not yet deleted or returned."
    );
    describe_gauge!(
        QUEUE_LAG,
        Unit::Seconds,
        "Age of the oldest message of the last receive that returned messages (0 after an empty receive): how far events lag behind."
    );
    describe_counter!(
        MODEL_LOADS,
        "Embedders built from the connector's embedding block (the local model loaded, or the endpoint's client made); shared by its syncs, event consumer and searches until the block changes."
    );
}

/// Merges the text expositions of several registries: each family once, with its `# HELP`
/// and `# TYPE` lines, then the samples of every registry, families in the order first seen.
fn merge(texts: impl Iterator<Item = String>) -> String {
    let mut order: Vec<String> = Vec::new();
    let mut families: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for text in texts {
        let mut family = String::new();
        for line in text.lines().filter(|line| !line.is_empty()) {
            let header = line
                .strip_prefix("# HELP ")
                .or_else(|| line.strip_prefix("# TYPE "));
            if let Some(rest) = header {
                family = rest.split(' ').next().unwrap_or_default().to_owned();
            }
            let (headers, samples) = families.entry(family.clone()).or_insert_with(|| {
                order.push(family.clone());
                Default::default()
            });
            if header.is_none() {
                samples.push(line.to_owned());
            } else if !headers.iter().any(|h| h == line) {
                headers.push(line.to_owned());
            }
        }
    }
    let mut out = String::new();
    for name in order {
        if let Some((headers, samples)) = families.remove(&name) {
            for line in headers.iter().chain(&samples) {
                out.push_str(line);
                out.push('\n');
            }
            out.push('\n');
        }
    }
    out
}

/// The `Content-Type` of [`WorkerMetrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::{Counters, SyncReport};
    use crate::worker::state::Trigger;

    /// The report of a sync of connector `a` that did nothing, finished now.
    fn empty_report() -> SyncReport {
        SyncReport::from_counters(
            "a",
            &Counters::default(),
            &Default::default(),
            OffsetDateTime::now_utc(),
        )
    }

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
    }

    #[test]
    fn counters_sum_the_reports_and_every_connector_starts_at_zero() {
        let metrics = WorkerMetrics::new(["a", "b"]);
        let text = metrics.render();
        assert_eq!(
            value(&text, "s3c_objects_listed_total{connector=\"b\"}"),
            Some(0.0),
            "{text}"
        );

        let mut report = empty_report();
        report.objects_listed = 7;
        report.added = 2;
        report.updated = 1;
        report.s3_requests = 9;
        report.duration_ms = 2500;
        let mut persisted = 0;
        for _ in 0..2 {
            metrics.record(&SyncRecord::new(report.clone(), Trigger::Interval), || {
                persisted += 1
            });
        }
        assert_eq!(persisted, 2);
        let text = metrics.render();
        for (series, expected) in [
            ("s3c_objects_listed_total{connector=\"a\"}", 14.0),
            ("s3c_objects_indexed_total{connector=\"a\"}", 6.0),
            ("s3c_s3_requests_total{connector=\"a\"}", 18.0),
            (
                "s3c_syncs_total{connector=\"a\",outcome=\"succeeded\"}",
                2.0,
            ),
            ("s3c_syncs_total{connector=\"a\",outcome=\"failed\"}", 0.0),
            (
                "s3c_sync_duration_seconds_bucket{connector=\"a\",le=\"5\"}",
                2.0,
            ),
            (
                "s3c_sync_duration_seconds_bucket{connector=\"a\",le=\"1\"}",
                0.0,
            ),
            ("s3c_sync_duration_seconds_count{connector=\"a\"}", 2.0),
            ("s3c_objects_listed_total{connector=\"b\"}", 0.0),
        ] {
            assert_eq!(value(&text, series), Some(expected), "{series} in\n{text}");
        }
        let last = value(&text, "s3c_last_success_timestamp_seconds{connector=\"a\"}").unwrap();
        assert!((last - report.finished_at.unix_timestamp() as f64).abs() < 1.0);

        metrics.in_progress("b", true);
        metrics.skipped("b");
        metrics.model_loaded("b");
        let text = metrics.render();
        for (series, expected) in [
            ("s3c_sync_in_progress{connector=\"b\"}", 1.0),
            ("s3c_syncs_skipped_total{connector=\"b\"}", 1.0),
            ("s3c_embedding_model_loads_total{connector=\"b\"}", 1.0),
            ("s3c_embedding_model_loads_total{connector=\"a\"}", 0.0),
        ] {
            assert_eq!(value(&text, series), Some(expected), "{series} in\n{text}");
        }
    }

    #[test]
    fn held_back_deletions_show_the_last_sync_that_got_that_far() {
        let metrics = WorkerMetrics::new(["a"]);
        let series = "s3c_deletions_held_back{connector=\"a\"}";
        assert_eq!(value(&metrics.render(), series), Some(0.0));
        let report = |held_back, errors, cancelled| {
            let mut report = empty_report();
            report.deletions_held_back = held_back;
            report.errors = errors;
            report.cancelled = cancelled;
            SyncRecord::new(report, Trigger::Interval)
        };
        metrics.record(&report(150, 1, false), || ());
        assert_eq!(value(&metrics.render(), series), Some(150.0));
        // A cancelled sync says nothing about deletions: the last value stays.
        metrics.record(&report(0, 0, true), || ());
        assert_eq!(value(&metrics.render(), series), Some(150.0));
        metrics.record(&report(0, 0, false), || ());
        assert_eq!(value(&metrics.render(), series), Some(0.0));
    }

    #[test]
    fn a_removed_connector_has_no_series_and_comes_back_at_zero() {
        let metrics = WorkerMetrics::new(["a", "b"]);
        let mut report = empty_report();
        report.objects_listed = 3;
        metrics.record(&SyncRecord::new(report, Trigger::Interval), || ());
        let text = metrics.render();
        // Each family once, whichever registries have it.
        assert_eq!(
            text.matches("# TYPE s3c_objects_listed_total counter")
                .count(),
            1,
            "{text}"
        );
        assert_eq!(
            value(&text, "s3c_objects_listed_total{connector=\"a\"}"),
            Some(3.0)
        );

        metrics.remove("a");
        let text = metrics.render();
        assert!(!text.contains("connector=\"a\""), "{text}");
        assert_eq!(
            value(&text, "s3c_objects_listed_total{connector=\"b\"}"),
            Some(0.0),
            "{text}"
        );
        // A sync of the deleted connector that ends late records nothing.
        metrics.in_progress("a", false);
        assert!(!metrics.render().contains("connector=\"a\""));

        metrics.register("a");
        let text = metrics.render();
        for series in [
            "s3c_objects_listed_total{connector=\"a\"}",
            "s3c_syncs_total{connector=\"a\",outcome=\"succeeded\"}",
        ] {
            assert_eq!(value(&text, series), Some(0.0), "{series} in\n{text}");
        }
        assert!(
            !text.contains("s3c_sync_duration_seconds_count{connector=\"a\"}"),
            "{text}"
        );
    }

    #[test]
    fn names_lists_every_family_the_worker_renders() {
        let metrics = WorkerMetrics::new(["a"]);
        let report = empty_report();
        metrics.record(&SyncRecord::new(report, Trigger::Interval), || ());
        metrics.queue("a", Some((1, 2)), 3.0);
        let text = metrics.render();
        let rendered: std::collections::BTreeSet<&str> = text
            .lines()
            .filter_map(|line| line.strip_prefix("# TYPE "))
            .filter_map(|rest| rest.split(' ').next())
            .collect();
        let listed: std::collections::BTreeSet<&str> = names().into_iter().collect();
        assert_eq!(listed.len(), names().len(), "a name listed twice");
        assert_eq!(rendered, listed, "{text}");
    }
}
