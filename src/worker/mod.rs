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
mod embedder;
mod events;
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

use crate::config::{Config, ConnectorConfig, Schedule, redact_urls};
use crate::embed::{EmbedError, Embedder};
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
    /// Event consumers started while the worker runs; [`Worker::run`] waits for them at the end.
    consumers: Mutex<JoinSet<()>>,
    /// Builds a connector's embedder from its `embedding:` block (`embed::for_connector`).
    loader: embedder::Loader,
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
    /// The connector's settings and where they come from; replaced by an update through the
    /// API (a sync takes a snapshot when it starts).
    settings: RwLock<Settings>,
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
    index_turn: tokio::sync::Mutex<Option<OpenIndex>>,
    /// Wakes the schedule loop when the settings changed, so a new schedule applies at once.
    changed: tokio::sync::Notify,
    /// Stops the connector's event consumer (replaced when the settings change).
    consumer: Mutex<Option<CancellationToken>>,
    /// The next sync may re-target the index (an update accepted with `"retarget": true`);
    /// cleared once a sync that re-targeted succeeded.
    retarget_next: AtomicBool,
    /// The embedder of the connector's `embedding:` block, shared by its syncs, its event
    /// consumer and the API's search; loaded on first use ([`Shared::embedder`]).
    embedder: embedder::LoadedEmbedder,
}

/// A connector's settings and their origin, replaced together.
#[derive(Debug)]
struct Settings {
    connector: Arc<ConnectorConfig>,
    origin: Origin,
}

/// An index kept open between the turns of an event consumer, with its name: a connector whose
/// `index_name` changed must not write the old one.
#[derive(Debug)]
pub(crate) struct OpenIndex {
    name: String,
    sink: AnySink,
}

impl OpenIndex {
    /// The kept index when it is `name`'s.
    fn take_if(slot: &mut Option<Self>, name: &str) -> Option<AnySink> {
        slot.take()
            .filter(|open| open.name == name)
            .map(|open| open.sink)
    }
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
    /// When an update through the API replanned the schedule: the schedule loop counts from
    /// the same instant, so the update's answer shows the `next_run` the loop keeps.
    replanned_at: Option<OffsetDateTime>,
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
        let ids: Vec<String> = entries.iter().map(|e| e.connector().id.clone()).collect();
        let metrics = WorkerMetrics::new(ids.iter().map(String::as_str));
        for (entry, id) in entries.iter().zip(&ids) {
            if let Some(at) = lock(&entry.slot).last_success_at {
                metrics.last_success(id, at);
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
                consumers: Mutex::new(JoinSet::new()),
                loader: crate::embed::for_connector,
            }),
        })
    }

    /// Binds the HTTP listener and serves it in a background task.
    pub async fn listen(&self, address: SocketAddr) -> Result<SocketAddr, WorkerError> {
        let listener = TcpListener::bind(address)
            .await
            .map_err(|cause| WorkerError::Listen { address, cause })?;
        let bound = listener.local_addr().unwrap_or(address);
        if self.shared.api.is_some() {
            let url = format!("http://{}/", crate::http::client::connect_address(bound));
            tracing::info!(
                message = %format!("API and console at {url} (api/v1, console at /)."),
                url = %url,
            );
        }
        let handle = Arc::new(api::Handle::new(Arc::clone(&self.shared)));
        let guard = crate::http::guard::Guard::new(self.shared.config.api.as_ref());
        tokio::spawn(crate::http::serve(listener, handle, guard));
        Ok(bound)
    }

    /// Opens each connector's index once, so that `/readyz` reflects whether the indexes can be
    /// reached before the first sync.
    pub async fn check_indexes(&self) {
        for entry in self.shared.entries() {
            let connector = entry.connector();
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
            let connector = entry.connector();
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
            let first = entry.connector().sync_on_start.then_some(Trigger::Start);
            self.shared.start_consumer(&entry);
            loops.spawn(connector_loop(
                Arc::clone(&self.shared),
                entry,
                first,
                cancel.clone(),
            ));
        }
        while loops.join_next().await.is_some() {}
        let mut consumers = std::mem::take(&mut *lock(&self.shared.consumers));
        while consumers.join_next().await.is_some() {}
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
            let connector = entry.connector();
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
        let retarget_next = matches!(&origin, Origin::Api(stored) if stored.retarget_pending);
        let events = connector
            .notifications
            .as_ref()
            .map(|notifications| EventsStatus {
                queue_url: redact_urls(&notifications.queue_url).into_owned(),
                ..EventsStatus::default()
            });
        Ok(Self {
            settings: RwLock::new(Settings {
                connector: Arc::new(connector),
                origin,
            }),
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
            changed: tokio::sync::Notify::new(),
            consumer: Mutex::new(None),
            retarget_next: AtomicBool::new(retarget_next),
            embedder: embedder::LoadedEmbedder::default(),
        })
    }

    fn settings(&self) -> std::sync::RwLockReadGuard<'_, Settings> {
        self.settings.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The connector's current settings.
    fn connector(&self) -> Arc<ConnectorConfig> {
        Arc::clone(&self.settings().connector)
    }

    /// The connector's id (never changed by an update).
    fn id(&self) -> String {
        self.settings().connector.id.clone()
    }

    /// The stored form of a connector created through the API; `None` for the file's.
    fn stored(&self) -> Option<api::store::StoredConnector> {
        match &self.settings().origin {
            Origin::Api(stored) => Some((**stored).clone()),
            Origin::File => None,
        }
    }

    /// The tenant that created it; `None` for the operator's and the file's.
    fn tenant(&self) -> Option<String> {
        match &self.settings().origin {
            Origin::Api(stored) => stored.tenant.clone(),
            Origin::File => None,
        }
    }

    /// True for a connector of the config file.
    fn is_file_connector(&self) -> bool {
        matches!(self.settings().origin, Origin::File)
    }

    /// Claims the right to run a sync; false when one runs.
    fn claim(&self) -> bool {
        self.busy
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    fn status(&self) -> ConnectorStatus {
        let connector = self.connector();
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
        self.entries()
            .into_iter()
            .find(|e| e.settings().connector.id == id)
    }

    fn status(&self) -> StatusReport {
        self.status_of(|_| true)
    }

    /// The status report of the connectors `shown` keeps.
    fn status_of(&self, shown: impl Fn(&Entry) -> bool) -> StatusReport {
        StatusReport {
            shard: (self.shards.spec().count > 1).then(|| self.shards.spec().to_string()),
            worker_running: true,
            worker_started_at: Some(self.started_at),
            shutting_down: self.shutting_down.load(Ordering::SeqCst),
            connectors: self
                .entries()
                .iter()
                .filter(|e| shown(e))
                .map(|e| e.status())
                .collect(),
        }
    }

    /// Ready when not shutting down and every connector `shown` keeps opened its index at its
    /// last attempt.
    fn readiness(&self, shown: impl Fn(&Entry) -> bool) -> Result<(), Vec<String>> {
        let mut reasons = Vec::new();
        if self.shutting_down.load(Ordering::SeqCst) {
            reasons.push("shutting down".to_owned());
        }
        for entry in self.entries().into_iter().filter(|e| shown(e)) {
            let id = entry.id();
            match &lock(&entry.slot).index_reachable {
                Some(Ok(())) => {}
                Some(Err(error)) => reasons.push(format!(
                    "the index of connector {id} cannot be opened: {error}"
                )),
                // Connectors created through the API open their index at their first sync.
                None if !entry.is_file_connector() => {}
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
            // A deleted connector's history was deleted with it: a sync that ends later does
            // not start it again (a new connector of the same id starts empty).
            if entry.removed.is_cancelled() {
                return;
            }
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
        self.metrics.register(&entry.id());
        self.connectors
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::clone(&entry));
        let running = lock(&self.running).clone();
        if let Some(cancel) = running {
            tokio::spawn(connector_loop(
                Arc::clone(self),
                Arc::clone(&entry),
                None,
                cancel,
            ));
            self.start_consumer(&entry);
        }
        entry
    }

    /// Removes a connector: its schedule and event consumer stop, a sync in flight stops
    /// starting work, its embedder is dropped (once its users let go), and its metric series
    /// go.
    fn remove(&self, id: &str) -> Option<Arc<Entry>> {
        let mut connectors = self
            .connectors
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let position = connectors.iter().position(|e| e.id() == id)?;
        let entry = connectors.remove(position);
        drop(connectors);
        entry.removed.cancel();
        if let Some(consumer) = lock(&entry.consumer).take() {
            consumer.cancel();
        }
        entry.embedder.clear();
        self.metrics.remove(id);
        Some(entry)
    }

    /// Replaces a connector's settings (an update through the API): its schedule starts over
    /// from now with the new timer, its embedder is dropped when the `embedding:` block changed,
    /// and its event consumer is restarted with the new settings (after its round in flight). A
    /// sync in flight finishes with the settings (and the embedder) it started with.
    fn update(self: &Arc<Self>, entry: &Arc<Entry>, connector: ConnectorConfig, origin: Origin) {
        let scheduled = lock(&self.running).is_some() && !entry.removed.is_cancelled();
        {
            let mut slot = lock(&entry.slot);
            if scheduled {
                // The loop starts over from now with the new timer (on `changed` below).
                let now = OffsetDateTime::now_utc();
                slot.replanned_at = Some(now);
                slot.next_run = connector.timer.as_ref().and_then(|t| t.first_after(now));
            }
            let queue = connector
                .notifications
                .as_ref()
                .map(|n| redact_urls(&n.queue_url).into_owned());
            if slot.events.as_ref().map(|e| &e.queue_url) != queue.as_ref() {
                slot.events = queue.map(|queue_url| EventsStatus {
                    queue_url,
                    ..EventsStatus::default()
                });
            }
        }
        let embedding_changed = entry.connector().embedding != connector.embedding;
        *entry
            .settings
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Settings {
            connector: Arc::new(connector),
            origin,
        };
        if embedding_changed {
            entry.embedder.clear();
        }
        entry.changed.notify_one();
        self.start_consumer(entry);
    }

    /// Starts the connector's event consumer when the worker runs and the connector has
    /// `notifications`, stopping the one it had.
    fn start_consumer(self: &Arc<Self>, entry: &Arc<Entry>) {
        let Some(cancel) = lock(&self.running).clone() else {
            return;
        };
        let stop = cancel.child_token();
        if let Some(previous) = lock(&entry.consumer).replace(stop.clone()) {
            previous.cancel();
        }
        if entry.connector().notifications.is_some() {
            let task = events::consume(Arc::clone(self), Arc::clone(entry), stop);
            let mut consumers = lock(&self.consumers);
            // Forget the consumers that ended (replaced or deleted connectors).
            while consumers.try_join_next().is_some() {}
            consumers.spawn(task);
        }
    }

    /// The embedder of `connector`, a snapshot of `entry`'s settings; `None` without an
    /// `embedding:` block. The one `entry` keeps while the snapshot's block is the entry's
    /// current one (loaded on first use, counted in the metrics); else (a sync that started
    /// before an update changed the block, or one of a deleted connector) one loaded for this
    /// caller only, which the entry does not keep.
    async fn embedder(
        &self,
        entry: &Entry,
        connector: &ConnectorConfig,
    ) -> Result<Option<Arc<dyn Embedder>>, EmbedError> {
        let Some(settings) = connector.embedding.as_ref() else {
            return Ok(None);
        };
        let current =
            !entry.removed.is_cancelled() && entry.connector().embedding.as_ref() == Some(settings);
        let once = embedder::LoadedEmbedder::default();
        let loaded = if current { &entry.embedder } else { &once };
        let embedder = loaded
            .get(settings, self.loader, || {
                self.metrics.model_loaded(&connector.id);
            })
            .await?;
        Ok(Some(embedder))
    }

    /// Starts a sync of `entry` now, outside its schedule; false when one already runs.
    fn start_sync(
        self: &Arc<Self>,
        entry: &Arc<Entry>,
        trigger: Trigger,
        retarget: bool,
        reembed: bool,
    ) -> bool {
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
            reembed,
            cancel,
        ));
        true
    }
}

/// Waits for each due time of one connector and starts its sync, or skips it when the previous
/// one still runs. `first` starts a sync at once. When the connector's settings change, the
/// schedule starts over from now with the new timer. Returns when `cancel` is cancelled (and its
/// sync in flight has ended) or the connector is removed.
async fn connector_loop(
    shared: Arc<Shared>,
    entry: Arc<Entry>,
    mut first: Option<Trigger>,
    cancel: CancellationToken,
) {
    let mut current: Option<JoinHandle<()>> = None;
    'settings: loop {
        let connector = entry.connector();
        let timer = connector.timer.as_ref();
        let kind = match timer {
            Some(Schedule::Cron(_)) => Trigger::Schedule,
            _ => Trigger::Interval,
        };
        let now = lock(&entry.slot)
            .replanned_at
            .take()
            .unwrap_or_else(OffsetDateTime::now_utc);
        let mut next = match first.take() {
            Some(trigger) => Some((now, trigger)),
            None => timer.and_then(|t| t.first_after(now)).map(|at| (at, kind)),
        };
        while let Some((due, trigger)) = next {
            lock(&entry.slot).next_run = Some(due);
            let wait = (due - OffsetDateTime::now_utc())
                .try_into()
                .unwrap_or(Duration::ZERO);
            tokio::select! {
                () = cancel.cancelled() => break 'settings,
                () = entry.removed.cancelled() => break 'settings,
                () = entry.changed.notified() => continue 'settings,
                () = tokio::time::sleep(wait) => {}
            }
            if entry.claim() {
                current = Some(tokio::spawn(sync_once(
                    Arc::clone(&shared),
                    Arc::clone(&entry),
                    trigger,
                    false,
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
        // No (more) runs: wait for new settings or the end.
        tokio::select! {
            () = cancel.cancelled() => break,
            () = entry.removed.cancelled() => break,
            () = entry.changed.notified() => {}
        }
    }
    lock(&entry.slot).next_run = None;
    if let Some(sync) = current {
        let _ = sync.await;
    }
}

fn skip(shared: &Shared, entry: &Entry, trigger: Trigger) {
    let connector = entry.connector();
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
    reembed: bool,
    cancel: CancellationToken,
) {
    let cancel_on_removal = {
        let (removed, cancel) = (entry.removed.clone(), cancel.clone());
        tokio::spawn(async move {
            removed.cancelled().await;
            cancel.cancel();
        })
    };
    let connector = entry.connector();
    let connector: &ConnectorConfig = &connector;
    // An update accepted with "retarget": true lets this sync re-target.
    let pending_retarget = entry.retarget_next.swap(false, Ordering::SeqCst);
    let pipeline = Pipeline::new(connector)
        .await
        .with_shard(entry.shard.clone())
        .retarget(retarget || pending_retarget)
        .reembed(reembed);
    // The worker never re-embeds on its own: a changed model fails its syncs with the way out
    // (`s3-connector sync --reembed`, or the API's `POST .../sync?reembed=true`), like a
    // changed source.
    let (pipeline, unloaded) = match shared.embedder(&entry, connector).await {
        Ok(embedder) => (pipeline.with_embedder(embedder), None),
        Err(error) => (pipeline, Some(error)),
    };
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
    let opened = match OpenIndex::take_if(&mut turn, connector.index_name()) {
        Some(sink) => Ok(sink),
        None => AnySink::open(&shared.config.index, connector.index_name()).await,
    };
    lock(&entry.slot).index_reachable =
        Some(opened.as_ref().map(drop).map_err(ToString::to_string));
    let report = match (opened, unloaded) {
        (_, Some(error)) => pipeline.failed(format!(
            "cannot load the embedding model, so nothing was synced: {error}"
        )),
        // The worker has no override: a held-back mass delete waits for a person.
        (Ok(index), None) => {
            crate::with_sink!(&index, sink => pipeline.run(sink, &cancel, false).await)
        }
        (Err(error), None) => pipeline.failed(format!("cannot open the index: {error}")),
    };
    // The index is released (as `turn` was emptied above), so a manual sync can run between
    // two scheduled ones.
    drop(turn);
    cancel_on_removal.abort();
    // Taking `running` claims the right to record this sync; `abandon` may have taken it.
    if pending_retarget {
        if report.errors == 0 && !report.cancelled {
            if let Some(api) = &shared.api {
                api.retarget_done(&shared, &entry).await;
            }
        } else {
            // Not done: the next sync tries again.
            entry.retarget_next.store(true, Ordering::SeqCst);
        }
    }
    if lock(&entry.slot).running.take().is_some() {
        let record = SyncRecord::new(report, trigger);
        if record.outcome == Outcome::Failed {
            tracing::warn!(message = "A sync ended with errors.", connector = %connector.id, errors = record.report.errors, first_error = record.report.error_messages.first().map(String::as_str));
        }
        shared.finish(&entry, record);
    }
    entry.busy.store(false, Ordering::SeqCst);
}
