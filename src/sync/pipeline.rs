//! One way to wire a connector's sync: credentials → S3 store → counters → context, run on an
//! index. The CLI's `sync`, the worker and the end-to-end tests all start syncs here, so they
//! cannot drift apart in how they build what a sync needs.

use std::sync::Arc;

use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use super::{Counters, Shard, SyncContext, SyncReport, sync_connector};
use crate::config::ConnectorConfig;
use crate::credentials;
use crate::sink::Sink;
use crate::source::s3::S3Source;

/// A connector's sync, ready to run: its S3 client (credentials resolved) and live counters.
#[derive(Debug)]
pub struct Pipeline<'a> {
    connector: &'a ConnectorConfig,
    source: S3Source,
    counters: Arc<Counters>,
    started_at: OffsetDateTime,
    shard: Shard,
}

impl<'a> Pipeline<'a> {
    /// Sets up the connector's credentials and S3 client; no S3 request is sent yet.
    pub async fn new(connector: &'a ConnectorConfig) -> Self {
        let started_at = OffsetDateTime::now_utc();
        let sdk_config = credentials::sdk_config(connector).await;
        Self {
            connector,
            source: S3Source::new(connector, &sdk_config),
            counters: Arc::new(Counters::default()),
            started_at,
            shard: Shard::whole(),
        }
    }

    /// Restricts the sync to one shard of each bucket (`--shard I/N`).
    pub fn with_shard(mut self, shard: Shard) -> Self {
        self.shard = shard;
        self
    }

    /// When the sync began (its credentials were set up from then on).
    pub fn started_at(&self) -> OffsetDateTime {
        self.started_at
    }

    /// The S3 client, whose request counters a status page may read while the sync runs.
    pub fn source(&self) -> &S3Source {
        &self.source
    }

    /// The live counters, for a progress display or a status page.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// Runs one full sync into `sink`. `allow_mass_delete` is `sync --allow-mass-delete`.
    pub async fn run<S: Sink>(
        &self,
        sink: &S,
        cancel: &CancellationToken,
        allow_mass_delete: bool,
    ) -> SyncReport {
        sync_connector(&SyncContext {
            connector: self.connector,
            source: &self.source,
            sink,
            counters: &self.counters,
            cancel,
            allow_mass_delete,
            shard: &self.shard,
        })
        .await
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
