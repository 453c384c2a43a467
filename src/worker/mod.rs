//! The long-running worker behind `s3-connector run`: syncs each connector on its schedule,
//! records every sync, and serves health, status and metrics over HTTP.
//!
//! One scheduler task per connector, so a slow or failing connector never delays another. A
//! connector never has two syncs at once: a sync that comes due while the previous one still
//! runs is skipped, logged and counted. On shutdown ([`Worker::run`]'s token is cancelled) no
//! new sync starts and the running ones stop starting work, finish their downloads in flight and
//! commit; [`Worker::abandon`] records the syncs still running when the caller stops waiting.
//! Like the CLI, this layer sits above `sync` and wires config, credentials, source and sink;
//! signal handling and exit codes stay in `cli::run`.

mod events;
pub mod http;
pub mod metrics;
pub mod state;
pub mod status;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ConnectorConfig, Schedule};
use crate::sink::AnySink;
use crate::source::s3::S3Source;
use crate::sync::{ConfigShards, Counters, Pipeline, SyncReport};
use metrics::WorkerMetrics;
use state::{History, Outcome, SyncRecord, Trigger};
use status::{ConnectorStatus, EventsStatus, RunningStatus, StatusReport};

/// Why the worker could not start.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The HTTP listener could not bind its address.
    #[error("cannot listen on {address}: {cause} (set `listen` in the config, or --listen)")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// The history could not be read.
    #[error(transparent)]
    State(#[from] state::StateError),
}

/// A worker over one configuration.
#[derive(Debug, Clone)]
pub struct Worker {
    shared: Arc<Shared>,
}

/// What the scheduler tasks, the sync tasks and the HTTP handlers share.
#[derive(Debug)]
pub(crate) struct Shared {
    config: Config,
    /// This worker's shard of each connector (`run --shard I/N`).
    shards: ConfigShards,
    started_at: OffsetDateTime,
    history: History,
    metrics: WorkerMetrics,
    /// One per connector, in config order.
    slots: Vec<Mutex<Slot>>,
    /// One per connector: the turn on its index, taken by a full sync for its whole run and by
    /// the event consumer for one round, so the two never write the index at once (the
    /// embedded index has one writer). Holds the index while the consumer keeps it open.
    indexes: Vec<tokio::sync::Mutex<Option<AnySink>>>,
    shutting_down: AtomicBool,
}

/// The live state of one connector.
#[derive(Debug, Default)]
struct Slot {
    running: Option<RunningSync>,
    next_run: Option<OffsetDateTime>,
    last: Option<SyncRecord>,
    last_success_at: Option<OffsetDateTime>,
    skipped: u64,
    index_reachable: Option<Result<(), String>>,
    /// The event consumer's totals, for connectors with `notifications`.
    events: Option<EventsStatus>,
}

/// A sync in progress: enough to write its record if it has to be abandoned.
#[derive(Debug)]
struct RunningSync {
    trigger: Trigger,
    started_at: OffsetDateTime,
    counters: Arc<Counters>,
    source: S3Source,
}

impl Worker {
    /// A worker for `config` that syncs `shards` of its connectors, with each connector's last
    /// sync read from the (shard's) history.
    pub fn new(config: Config, shards: ConfigShards) -> Result<Self, WorkerError> {
        let history = History::new(&config.state_dir).for_shard(shards.spec());
        history.create_dir()?;
        let metrics = WorkerMetrics::new(config.connectors.iter().map(|c| c.id.as_str()));
        let mut slots = Vec::with_capacity(config.connectors.len());
        for connector in &config.connectors {
            let tail = history.tail(&connector.id)?;
            if let Some(at) = tail.last_success_at {
                metrics.last_success(&connector.id, at);
            }
            slots.push(Mutex::new(Slot {
                last: tail.last,
                last_success_at: tail.last_success_at,
                events: connector
                    .notifications
                    .as_ref()
                    .map(|notifications| EventsStatus {
                        queue_url: notifications.queue_url.clone(),
                        ..EventsStatus::default()
                    }),
                ..Slot::default()
            }));
        }
        Ok(Self {
            shared: Arc::new(Shared {
                config,
                shards,
                started_at: OffsetDateTime::now_utc(),
                history,
                metrics,
                indexes: slots
                    .iter()
                    .map(|_| tokio::sync::Mutex::new(None))
                    .collect(),
                slots,
                shutting_down: AtomicBool::new(false),
            }),
        })
    }

    /// Binds the HTTP listener and serves it in a background task.
    pub async fn listen(&self, address: SocketAddr) -> Result<SocketAddr, WorkerError> {
        let listener = TcpListener::bind(address)
            .await
            .map_err(|cause| WorkerError::Listen { address, cause })?;
        let bound = listener.local_addr().unwrap_or(address);
        tokio::spawn(http::serve(listener, Arc::clone(&self.shared)));
        Ok(bound)
    }

    /// Opens each connector's index once, so that `/readyz` reflects whether the indexes can be
    /// reached before the first sync.
    pub async fn check_indexes(&self) {
        for (slot, connector) in self.shared.slots.iter().zip(&self.shared.config.connectors) {
            let opened = AnySink::open(&self.shared.config.index, connector.index_name()).await;
            if let Err(error) = &opened {
                tracing::error!(message = "Cannot open the index of a connector.", connector = %connector.id, %error);
            }
            lock(slot).index_reachable = Some(opened.map(drop).map_err(|e| e.to_string()));
        }
    }

    /// Runs every connector's schedule until `cancel` is cancelled, then waits for the syncs
    /// in flight (which stop starting work, finish their downloads and commit).
    pub async fn run(&self, cancel: CancellationToken) {
        for connector in &self.shared.config.connectors {
            if connector.timer.is_none() && !connector.sync_on_start {
                if connector.notifications.is_some() {
                    tracing::warn!(
                        message = "This connector has no schedule, no interval and sync_on_start is false: run applies its event notifications but never backfills or reconciles it with a full sync.",
                        connector = %connector.id
                    );
                } else {
                    tracing::warn!(
                        message = "This connector has no schedule, no interval and sync_on_start is false, so run never syncs it.",
                        connector = %connector.id
                    );
                }
            }
        }
        let mut loops = JoinSet::new();
        for (position, connector) in self.shared.config.connectors.iter().enumerate() {
            loops.spawn(connector_loop(
                Arc::clone(&self.shared),
                position,
                cancel.clone(),
            ));
            if connector.notifications.is_some() {
                loops.spawn(events::consume(
                    Arc::clone(&self.shared),
                    position,
                    cancel.clone(),
                ));
            }
        }
        while loops.join_next().await.is_some() {}
    }

    /// Marks the worker as shutting down: `/readyz` answers 503 from now on.
    pub fn begin_shutdown(&self) {
        self.shared.shutting_down.store(true, Ordering::SeqCst);
    }

    /// Records every sync still running as abandoned (called when the shutdown timeout ran
    /// out, just before the process exits); returns the ids of their connectors.
    pub fn abandon(&self, waited: Duration) -> Vec<String> {
        let mut abandoned = Vec::new();
        for (position, connector) in self.shared.config.connectors.iter().enumerate() {
            let Some(running) = lock(&self.shared.slots[position]).running.take() else {
                continue;
            };
            let mut report = SyncReport::from_counters(
                &connector.id,
                &running.counters,
                running.source.stats(),
                running.started_at,
            );
            report.cancelled = true;
            report.error_messages.push(format!(
                "abandoned at shutdown after waiting {}: writes not yet committed are lost, and the next sync redoes them",
                humantime::format_duration(waited)
            ));
            let record = SyncRecord {
                report,
                trigger: running.trigger,
                outcome: Outcome::Abandoned,
            };
            self.shared.finish(position, record);
            abandoned.push(connector.id.clone());
        }
        abandoned
    }

    /// The status of every connector, as `/status` serves it.
    pub fn status(&self) -> StatusReport {
        self.shared.status()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn status(&self) -> StatusReport {
        let connectors = self
            .config
            .connectors
            .iter()
            .zip(&self.slots)
            .map(|(connector, slot)| {
                let slot = lock(slot);
                ConnectorStatus {
                    id: connector.id.clone(),
                    schedule: connector.timer.as_ref().map(ToString::to_string),
                    sync_on_start: connector.sync_on_start,
                    running: slot.running.as_ref().map(|running| RunningStatus {
                        trigger: running.trigger,
                        started_at: running.started_at,
                        objects_listed: running.counters.objects_listed.load(Ordering::Relaxed),
                    }),
                    next_run: slot.next_run,
                    last_sync: slot.last.clone(),
                    last_success_at: slot.last_success_at,
                    skipped: slot.skipped,
                    index_reachable: slot.index_reachable.as_ref().map(Result::is_ok),
                    notifications: slot.events.clone(),
                }
            })
            .collect();
        StatusReport {
            shard: (self.shards.spec().count > 1).then(|| self.shards.spec().to_string()),
            worker_running: true,
            worker_started_at: Some(self.started_at),
            shutting_down: self.shutting_down.load(Ordering::SeqCst),
            connectors,
        }
    }

    /// Ready when not shutting down and every connector's index opened at its last attempt.
    fn readiness(&self) -> Result<(), Vec<String>> {
        let mut reasons = Vec::new();
        if self.shutting_down.load(Ordering::SeqCst) {
            reasons.push("shutting down".to_owned());
        }
        for (connector, slot) in self.config.connectors.iter().zip(&self.slots) {
            match &lock(slot).index_reachable {
                Some(Ok(())) => {}
                Some(Err(error)) => reasons.push(format!(
                    "the index of connector {} cannot be opened: {error}",
                    connector.id
                )),
                None => reasons.push(format!(
                    "the index of connector {} was not opened yet",
                    connector.id
                )),
            }
        }
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(reasons)
        }
    }

    /// Records a finished sync: metrics and history together, then the live state. A sync
    /// already recorded as abandoned is not recorded again.
    fn finish(&self, position: usize, record: SyncRecord) {
        let connector = &record.report.connector;
        self.metrics.record(&record, || {
            if let Err(error) = self.history.append(&record) {
                tracing::error!(message = "Could not append to the sync history.", connector = %connector, %error);
            }
        });
        self.metrics.in_progress(connector, false);
        let mut slot = lock(&self.slots[position]);
        if record.outcome == Outcome::Succeeded {
            slot.last_success_at = Some(record.report.finished_at);
        }
        slot.last = Some(record);
    }
}

/// Waits for each due time of one connector and starts its sync, or skips it when the previous
/// one still runs. Returns when `cancel` is cancelled and its sync in flight has ended.
async fn connector_loop(shared: Arc<Shared>, position: usize, cancel: CancellationToken) {
    let connector = &shared.config.connectors[position];
    let timer = connector.timer.as_ref();
    let kind = match timer {
        Some(Schedule::Cron(_)) => Trigger::Schedule,
        _ => Trigger::Interval,
    };
    let now = OffsetDateTime::now_utc();
    let mut next = if connector.sync_on_start {
        Some((now, Trigger::Start))
    } else {
        timer.and_then(|t| t.first_after(now)).map(|at| (at, kind))
    };
    let mut current: Option<JoinHandle<()>> = None;
    while let Some((due, trigger)) = next {
        lock(&shared.slots[position]).next_run = Some(due);
        let wait = (due - OffsetDateTime::now_utc())
            .try_into()
            .unwrap_or(Duration::ZERO);
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep(wait) => {}
        }
        if current.as_ref().is_some_and(|sync| !sync.is_finished()) {
            skip(&shared, position, trigger);
        } else {
            current = Some(tokio::spawn(sync_once(
                Arc::clone(&shared),
                position,
                trigger,
                cancel.child_token(),
            )));
        }
        let now = OffsetDateTime::now_utc();
        next = timer
            .and_then(|t| match trigger {
                // The schedule counts from the start-up sync.
                Trigger::Start => t.first_after(due),
                _ => t.next_after(due, now),
            })
            .map(|at| (at, kind));
    }
    lock(&shared.slots[position]).next_run = None;
    if let Some(sync) = current {
        let _ = sync.await;
    }
    cancel.cancelled().await;
}

fn skip(shared: &Shared, position: usize, trigger: Trigger) {
    let connector = &shared.config.connectors[position];
    let since = {
        let mut slot = lock(&shared.slots[position]);
        slot.skipped += 1;
        slot.running.as_ref().map(|r| r.started_at)
    };
    shared.metrics.skipped(&connector.id);
    tracing::warn!(
        message = "Skipped a sync that came due: the previous sync of this connector is still running.",
        connector = %connector.id,
        trigger = trigger.as_str(),
        running_since = ?since,
    );
}

/// One sync of one connector, from opening its index to recording its report.
async fn sync_once(
    shared: Arc<Shared>,
    position: usize,
    trigger: Trigger,
    cancel: CancellationToken,
) {
    let connector: &ConnectorConfig = &shared.config.connectors[position];
    let pipeline = Pipeline::new(connector)
        .await
        .with_shard(shared.shards.of(position));
    lock(&shared.slots[position]).running = Some(RunningSync {
        trigger,
        started_at: pipeline.started_at(),
        counters: Arc::clone(pipeline.counters()),
        source: pipeline.source().clone(),
    });
    shared.metrics.in_progress(&connector.id, true);
    tracing::info!(message = "Starting a sync.", connector = %connector.id, trigger = trigger.as_str());
    // The event consumer finishes its round first (at most its long poll, `wait_time`).
    let mut turn = shared.indexes[position].lock().await;
    let opened = match turn.take() {
        Some(sink) => Ok(sink),
        None => AnySink::open(&shared.config.index, connector.index_name()).await,
    };
    lock(&shared.slots[position]).index_reachable =
        Some(opened.as_ref().map(drop).map_err(ToString::to_string));
    let report = match opened {
        // The worker has no override: a held-back mass delete waits for a person.
        Ok(index) => crate::with_sink!(&index, sink => pipeline.run(sink, &cancel, false).await),
        Err(error) => pipeline.failed(format!("cannot open the index: {error}")),
    };
    // The index is released (as `turn` was emptied above), so a manual sync can run between
    // two scheduled ones.
    drop(turn);
    // Taking `running` claims the right to record this sync; `abandon` may have taken it.
    if lock(&shared.slots[position]).running.take().is_none() {
        return;
    }
    let record = SyncRecord::new(report, trigger);
    if record.outcome == Outcome::Failed {
        tracing::warn!(message = "A sync ended with errors.", connector = %connector.id, errors = record.report.errors, first_error = record.report.error_messages.first().map(String::as_str));
    }
    shared.finish(position, record);
}
