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

pub mod api;
mod console;
mod events;
pub mod http;
pub mod metrics;
pub mod state;
pub mod status;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ConnectorConfig, Schedule};
use crate::sink::AnySink;
use crate::source::s3::S3Source;
use crate::sync::shard::Shard;
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
    /// The API runs on one worker only: its connectors are not sharded.
    #[error(
        "the management API (api:) cannot run on shard {shard}: run it on one worker without --shard, or remove the api block"
    )]
    ApiOnShard {
        /// The shard given.
        shard: String,
    },
    /// The connectors stored through the API could not be read.
    #[error(transparent)]
    Store(#[from] api::store::StoreError),
}

/// A worker over one configuration.
#[derive(Debug, Clone)]
pub struct Worker {
    shared: Arc<Shared>,
}

/// What the scheduler tasks, the sync tasks and the HTTP handlers share.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The configuration; its `connectors` were moved into [`Shared::connectors`].
    config: Config,
    /// This worker's shard of each connector (`run --shard I/N`).
    shards: ConfigShards,
    started_at: OffsetDateTime,
    history: History,
    metrics: WorkerMetrics,
    /// Every connector, file connectors first in file order, then API connectors by creation.
    connectors: RwLock<Vec<Arc<Entry>>>,
    shutting_down: AtomicBool,
    /// The token of [`Worker::run`], once it runs: connectors created later schedule under it.
    running: Mutex<Option<CancellationToken>>,
    /// The management API, when the config enables it.
    api: Option<api::ApiState>,
}

/// Where a connector's settings come from.
#[derive(Debug)]
pub(crate) enum Origin {
    /// The config file: read-only through the API.
    File,
    /// Created through the API after its probe passed; persisted under `state_dir`.
    Api(Box<api::store::StoredConnector>),
}

/// One connector and its live state.
#[derive(Debug)]
pub(crate) struct Entry {
    connector: Arc<ConnectorConfig>,
    origin: Origin,
    /// The part of each bucket this worker syncs (`run --shard I/N`; API connectors whole).
    shard: Shard,
    slot: Mutex<Slot>,
    /// Claimed by the sync that runs; a second one is skipped (schedule) or refused (API).
    busy: AtomicBool,
    /// Cancelled when the connector is deleted: its schedule stops, its sync stops starting
    /// work.
    removed: CancellationToken,
    /// The turn on the connector's index, taken by a full sync for its whole run and by the
    /// event consumer for one round, so the two never write the index at once (the embedded
    /// index has one writer). Holds the index while the consumer keeps it open.
    index_turn: tokio::sync::Mutex<Option<AnySink>>,
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
    /// sync read from the (shard's) history, and the connectors stored through the API (when it
    /// is enabled) loaded back.
    pub fn new(mut config: Config, shards: ConfigShards) -> Result<Self, WorkerError> {
        if config.api.is_some() && shards.spec().count > 1 {
            return Err(WorkerError::ApiOnShard {
                shard: shards.spec().to_string(),
            });
        }
        let history = History::new(&config.state_dir).for_shard(shards.spec());
        history.create_dir()?;
        let file_connectors = std::mem::take(&mut config.connectors);
        let mut entries = Vec::with_capacity(file_connectors.len());
        for (position, connector) in file_connectors.into_iter().enumerate() {
            let shard = shards.of(position);
            entries.push(Entry::new(connector, Origin::File, shard, &history)?);
        }
        let api = match &config.api {
            Some(settings) => {
                let (state, stored) = api::ApiState::open(&config, settings, &entries)?;
                for (connector, record) in stored {
                    entries.push(Entry::new(
                        connector,
                        Origin::Api(Box::new(record)),
                        Shard::whole(),
                        &history,
                    )?);
                }
                Some(state)
            }
            None => None,
        };
        let metrics = WorkerMetrics::new(entries.iter().map(|e| e.connector.id.as_str()));
        for entry in &entries {
            if let Some(at) = lock(&entry.slot).last_success_at {
                metrics.last_success(&entry.connector.id, at);
            }
        }
        Ok(Self {
            shared: Arc::new(Shared {
                config,
                shards,
                started_at: OffsetDateTime::now_utc(),
                history,
                metrics,
                connectors: RwLock::new(entries.into_iter().map(Arc::new).collect()),
                shutting_down: AtomicBool::new(false),
                running: Mutex::new(None),
                api,
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
        for entry in self.shared.entries() {
            let connector = &entry.connector;
            let opened = AnySink::open(&self.shared.config.index, connector.index_name()).await;
            if let Err(error) = &opened {
                tracing::error!(message = "Cannot open the index of a connector.", connector = %connector.id, %error);
            }
            lock(&entry.slot).index_reachable = Some(opened.map(drop).map_err(|e| e.to_string()));
        }
    }

    /// Runs every connector's schedule until `cancel` is cancelled, then waits for the syncs
    /// in flight (which stop starting work, finish their downloads and commit).
    pub async fn run(&self, cancel: CancellationToken) {
        let entries = self.shared.entries();
        for entry in &entries {
            let connector = &entry.connector;
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
        *lock(&self.shared.running) = Some(cancel.clone());
        let mut loops = JoinSet::new();
        for entry in entries {
            let first = entry.connector.sync_on_start.then_some(Trigger::Start);
            if entry.connector.notifications.is_some() {
                loops.spawn(events::consume(
                    Arc::clone(&self.shared),
                    Arc::clone(&entry),
                    cancel.clone(),
                ));
            }
            loops.spawn(connector_loop(
                Arc::clone(&self.shared),
                entry,
                first,
                cancel.clone(),
            ));
        }
        while loops.join_next().await.is_some() {}
        // Syncs started through the API run outside the loops.
        while self
            .shared
            .entries()
            .iter()
            .any(|e| e.busy.load(Ordering::SeqCst))
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Marks the worker as shutting down: `/readyz` answers 503 from now on.
    pub fn begin_shutdown(&self) {
        self.shared.shutting_down.store(true, Ordering::SeqCst);
    }

    /// Records every sync still running as abandoned (called when the shutdown timeout ran
    /// out, just before the process exits); returns the ids of their connectors.
    pub fn abandon(&self, waited: Duration) -> Vec<String> {
        let mut abandoned = Vec::new();
        for entry in self.shared.entries() {
            let connector = &entry.connector;
            let Some(running) = lock(&entry.slot).running.take() else {
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
            self.shared.finish(&entry, record);
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

impl Entry {
    fn new(
        connector: ConnectorConfig,
        origin: Origin,
        shard: Shard,
        history: &History,
    ) -> Result<Self, WorkerError> {
        let tail = history.tail(&connector.id)?;
        let events = connector
            .notifications
            .as_ref()
            .map(|notifications| EventsStatus {
                queue_url: notifications.queue_url.clone(),
                ..EventsStatus::default()
            });
        Ok(Self {
            connector: Arc::new(connector),
            origin,
            shard,
            slot: Mutex::new(Slot {
                last: tail.last,
                last_success_at: tail.last_success_at,
                events,
                ..Slot::default()
            }),
            busy: AtomicBool::new(false),
            removed: CancellationToken::new(),
            index_turn: tokio::sync::Mutex::new(None),
        })
    }

    /// Claims the right to run a sync; false when one runs.
    fn claim(&self) -> bool {
        self.busy
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    fn status(&self) -> ConnectorStatus {
        let connector = &self.connector;
        let slot = lock(&self.slot);
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
    }
}

impl Shared {
    /// A snapshot of the connectors.
    fn entries(&self) -> Vec<Arc<Entry>> {
        self.connectors
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The connector with this id.
    fn entry(&self, id: &str) -> Option<Arc<Entry>> {
        self.entries().into_iter().find(|e| e.connector.id == id)
    }

    fn status(&self) -> StatusReport {
        StatusReport {
            shard: (self.shards.spec().count > 1).then(|| self.shards.spec().to_string()),
            worker_running: true,
            worker_started_at: Some(self.started_at),
            shutting_down: self.shutting_down.load(Ordering::SeqCst),
            connectors: self.entries().iter().map(|e| e.status()).collect(),
        }
    }

    /// Ready when not shutting down and every connector's index opened at its last attempt.
    fn readiness(&self) -> Result<(), Vec<String>> {
        let mut reasons = Vec::new();
        if self.shutting_down.load(Ordering::SeqCst) {
            reasons.push("shutting down".to_owned());
        }
        for entry in self.entries() {
            let id = &entry.connector.id;
            match &lock(&entry.slot).index_reachable {
                Some(Ok(())) => {}
                Some(Err(error)) => reasons.push(format!(
                    "the index of connector {id} cannot be opened: {error}"
                )),
                // Connectors created through the API open their index at their first sync.
                None if matches!(entry.origin, Origin::Api(_)) => {}
                None => reasons.push(format!("the index of connector {id} was not opened yet")),
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
    fn finish(&self, entry: &Entry, record: SyncRecord) {
        let connector = &record.report.connector;
        self.metrics.record(&record, || {
            if let Err(error) = self.history.append(&record) {
                tracing::error!(message = "Could not append to the sync history.", connector = %connector, %error);
            }
        });
        self.metrics.in_progress(connector, false);
        let mut slot = lock(&entry.slot);
        if record.outcome == Outcome::Succeeded {
            slot.last_success_at = Some(record.report.finished_at);
        }
        slot.last = Some(record);
    }

    /// Adds a connector created through the API and, when the worker runs, starts its
    /// schedule (counted from now; the caller starts the first sync).
    fn add(self: &Arc<Self>, entry: Entry) -> Arc<Entry> {
        let entry = Arc::new(entry);
        self.metrics.register(&entry.connector.id);
        self.connectors
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::clone(&entry));
        if let Some(cancel) = lock(&self.running).clone() {
            tokio::spawn(connector_loop(
                Arc::clone(self),
                Arc::clone(&entry),
                None,
                cancel,
            ));
        }
        entry
    }

    /// Removes a connector: its schedule stops and a sync in flight stops starting work.
    fn remove(&self, id: &str) -> Option<Arc<Entry>> {
        let mut connectors = self
            .connectors
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let position = connectors.iter().position(|e| e.connector.id == id)?;
        let entry = connectors.remove(position);
        entry.removed.cancel();
        Some(entry)
    }

    /// Starts a sync of `entry` now, outside its schedule; false when one already runs.
    fn start_sync(self: &Arc<Self>, entry: &Arc<Entry>, trigger: Trigger, retarget: bool) -> bool {
        if !entry.claim() {
            return false;
        }
        let cancel = lock(&self.running)
            .as_ref()
            .map_or_else(CancellationToken::new, CancellationToken::child_token);
        tokio::spawn(sync_once(
            Arc::clone(self),
            Arc::clone(entry),
            trigger,
            retarget,
            cancel,
        ));
        true
    }
}

/// Waits for each due time of one connector and starts its sync, or skips it when the previous
/// one still runs. `first` starts a sync at once. Returns when `cancel` is cancelled (and its
/// sync in flight has ended) or the connector is removed.
async fn connector_loop(
    shared: Arc<Shared>,
    entry: Arc<Entry>,
    first: Option<Trigger>,
    cancel: CancellationToken,
) {
    let connector = Arc::clone(&entry.connector);
    let timer = connector.timer.as_ref();
    let kind = match timer {
        Some(Schedule::Cron(_)) => Trigger::Schedule,
        _ => Trigger::Interval,
    };
    let now = OffsetDateTime::now_utc();
    let mut next = match first {
        Some(trigger) => Some((now, trigger)),
        None => timer.and_then(|t| t.first_after(now)).map(|at| (at, kind)),
    };
    let mut current: Option<JoinHandle<()>> = None;
    while let Some((due, trigger)) = next {
        lock(&entry.slot).next_run = Some(due);
        let wait = (due - OffsetDateTime::now_utc())
            .try_into()
            .unwrap_or(Duration::ZERO);
        tokio::select! {
            () = cancel.cancelled() => break,
            () = entry.removed.cancelled() => break,
            () = tokio::time::sleep(wait) => {}
        }
        if entry.claim() {
            current = Some(tokio::spawn(sync_once(
                Arc::clone(&shared),
                Arc::clone(&entry),
                trigger,
                false,
                cancel.child_token(),
            )));
        } else {
            skip(&shared, &entry, trigger);
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
    lock(&entry.slot).next_run = None;
    if let Some(sync) = current {
        let _ = sync.await;
    }
    tokio::select! {
        () = cancel.cancelled() => {}
        () = entry.removed.cancelled() => {}
    }
}

fn skip(shared: &Shared, entry: &Entry, trigger: Trigger) {
    let connector = &entry.connector;
    let since = {
        let mut slot = lock(&entry.slot);
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

/// One sync of one connector, from opening its index to recording its report. The caller has
/// claimed `entry`; the claim is released here.
async fn sync_once(
    shared: Arc<Shared>,
    entry: Arc<Entry>,
    trigger: Trigger,
    retarget: bool,
    cancel: CancellationToken,
) {
    let cancel_on_removal = {
        let (removed, cancel) = (entry.removed.clone(), cancel.clone());
        tokio::spawn(async move {
            removed.cancelled().await;
            cancel.cancel();
        })
    };
    let connector: &ConnectorConfig = &entry.connector;
    let pipeline = Pipeline::new(connector)
        .await
        .with_shard(entry.shard.clone())
        .retarget(retarget);
    lock(&entry.slot).running = Some(RunningSync {
        trigger,
        started_at: pipeline.started_at(),
        counters: Arc::clone(pipeline.counters()),
        source: pipeline.source().clone(),
    });
    shared.metrics.in_progress(&connector.id, true);
    tracing::info!(message = "Starting a sync.", connector = %connector.id, trigger = trigger.as_str());
    // The event consumer finishes its round first (at most its long poll, `wait_time`).
    let mut turn = entry.index_turn.lock().await;
    let opened = match turn.take() {
        Some(sink) => Ok(sink),
        None => AnySink::open(&shared.config.index, connector.index_name()).await,
    };
    lock(&entry.slot).index_reachable =
        Some(opened.as_ref().map(drop).map_err(ToString::to_string));
    let report = match opened {
        // The worker has no override: a held-back mass delete waits for a person.
        Ok(index) => crate::with_sink!(&index, sink => pipeline.run(sink, &cancel, false).await),
        Err(error) => pipeline.failed(format!("cannot open the index: {error}")),
    };
    // The index is released (as `turn` was emptied above), so a manual sync can run between
    // two scheduled ones.
    drop(turn);
    cancel_on_removal.abort();
    // Taking `running` claims the right to record this sync; `abandon` may have taken it.
    if lock(&entry.slot).running.take().is_some() {
        let record = SyncRecord::new(report, trigger);
        if record.outcome == Outcome::Failed {
            tracing::warn!(message = "A sync ended with errors.", connector = %connector.id, errors = record.report.errors, first_error = record.report.error_messages.first().map(String::as_str));
        }
        shared.finish(&entry, record);
    }
    entry.busy.store(false, Ordering::SeqCst);
}
