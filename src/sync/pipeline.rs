//! One way to wire a connector's work: credentials → S3 store → counters → context, run on an
//! index. The CLI's `sync`, the worker, the event consumer and the end-to-end tests all start
//! their work here — a full sync ([`Pipeline::run`]) or the keys event notifications named
//! ([`Pipeline::apply_keys`]) — so they cannot drift apart in how they build what it needs.
//! The embedding model (a connector with `embedding:`) is loaded by the caller, once, through
//! [`crate::embed::for_connector`], and handed in with [`Pipeline::with_embedder`].

use std::collections::HashSet;
use std::sync::Arc;

use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use super::touched::{self, KeyResult, TouchedKey};
use super::{Counters, Shard, SyncContext, SyncReport, sync_connector};
use crate::config::ConnectorConfig;
use crate::credentials;
use crate::embed::Embedder;
use crate::sink::Sink;
use crate::source::ObjectStore;
use crate::source::s3::S3Source;

/// A connector's work, ready to run: its object store (the S3 client, credentials resolved)
/// and live counters.
#[derive(Debug)]
pub struct Pipeline<'a, O: ObjectStore = S3Source> {
    connector: &'a ConnectorConfig,
    source: O,
    counters: Arc<Counters>,
    started_at: OffsetDateTime,
    retarget: bool,
    shard: Shard,
    embedder: LoadedEmbedder,
    reembed: bool,
}

/// The embedder of a pipeline; shown by its model in `Debug`.
#[derive(Clone, Default)]
struct LoadedEmbedder(Option<Arc<dyn Embedder>>);

impl std::fmt::Debug for LoadedEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(embedder) => write!(f, "Some({})", embedder.model()),
            None => f.write_str("None"),
        }
    }
}

impl<'a> Pipeline<'a> {
    /// Sets up the connector's credentials and S3 client; no S3 request is sent yet.
    pub async fn new(connector: &'a ConnectorConfig) -> Self {
        let started_at = OffsetDateTime::now_utc();
        let sdk_config = credentials::sdk_config(connector).await;
        Self {
            started_at,
            ..Self::over(connector, S3Source::new(connector, &sdk_config))
        }
    }
}

impl<'a, O: ObjectStore> Pipeline<'a, O> {
    /// The connector's work over `source`, an object store already set up (the event
    /// consumer's S3 client, or an in-memory store in tests).
    pub fn over(connector: &'a ConnectorConfig, source: O) -> Self {
        Self {
            connector,
            source,
            counters: Arc::new(Counters::default()),
            started_at: OffsetDateTime::now_utc(),
            retarget: false,
            shard: Shard::whole(),
            embedder: LoadedEmbedder::default(),
            reembed: false,
        }
    }

    /// Gives every document its passages and their vectors from `embedder`, the model of the
    /// connector's `embedding:` block (`None`: the connector has none).
    pub fn with_embedder(mut self, embedder: Option<Arc<dyn Embedder>>) -> Self {
        self.embedder = LoadedEmbedder(embedder);
        self
    }

    /// Rebuilds every vector in this sync (`sync --reembed`): every object is downloaded and
    /// embedded again, and an index that records another model is re-bound to this one.
    pub fn reembed(mut self, reembed: bool) -> Self {
        self.reembed = reembed;
        self
    }

    /// Restricts the sync to one shard of each bucket (`--shard I/N`).
    pub fn with_shard(mut self, shard: Shard) -> Self {
        self.shard = shard;
        self
    }

    /// Lets this sync write an index that records another source (`sync --retarget`,
    /// `"retarget": true`): the index is re-bound to this connector's source.
    pub fn retarget(mut self, retarget: bool) -> Self {
        self.retarget = retarget;
        self
    }

    /// When the work began (its credentials were set up from then on).
    pub fn started_at(&self) -> OffsetDateTime {
        self.started_at
    }

    /// The object store, whose request counters a status page may read while the work runs.
    pub fn source(&self) -> &O {
        &self.source
    }

    /// The live counters, for a progress display or a status page.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// What a sync of this pipeline sees, counting in `counters`.
    fn context<'s, S: Sink>(
        &'s self,
        sink: &'s S,
        counters: &'s Counters,
        cancel: &'s CancellationToken,
    ) -> SyncContext<'s, O, S> {
        SyncContext {
            connector: self.connector,
            source: &self.source,
            sink,
            counters,
            cancel,
            allow_mass_delete: false,
            retarget: self.retarget,
            shard: &self.shard,
            embedder: self.embedder.0.as_ref(),
            reembed: self.reembed,
        }
    }

    /// Runs one full sync into `sink`. `allow_mass_delete` is `sync --allow-mass-delete`.
    pub async fn run<S: Sink>(
        &self,
        sink: &S,
        cancel: &CancellationToken,
        allow_mass_delete: bool,
    ) -> SyncReport {
        sync_connector(&SyncContext {
            allow_mass_delete,
            ..self.context(sink, &self.counters, cancel)
        })
        .await
    }

    /// Makes `sink` agree with S3 for `keys` that event notifications named, commits, and
    /// says per key (in the same order) whether that worked ([`touched::apply_keys`]).
    /// `located` holds the buckets located so far (kept from round to round); a round counts
    /// in its own `counters`.
    pub async fn apply_keys<S: Sink>(
        &self,
        sink: &S,
        keys: &[TouchedKey],
        located: &mut HashSet<String>,
        counters: &Counters,
        cancel: &CancellationToken,
    ) -> Vec<KeyResult> {
        // Events name single keys: whichever shard owns a key, S3 says what it is now.
        let whole = Shard::whole();
        let ctx = SyncContext {
            // The retarget guard is the full sync's: events come from the connector's own
            // queue and buckets.
            retarget: false,
            shard: &whole,
            // Rebuilding is the full sync's too: events never re-embed what they did not name.
            reembed: false,
            ..self.context(sink, counters, cancel)
        };
        touched::apply_keys(&ctx, keys, located).await
    }

    /// The report of a sync that could not start: `error` (e.g. the index cannot be opened).
    pub fn failed(&self, error: String) -> SyncReport {
        self.counters.error(error);
        let mut report = SyncReport::from_counters(
            &self.connector.id,
            &self.counters,
            self.source.stats(),
            self.started_at,
        );
        report.shard = (!self.shard.is_whole()).then(|| self.shard.label());
        report
    }
}
