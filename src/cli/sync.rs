//! `s3-connector sync`: one full sync of each selected connector, with a progress display on a
//! terminal and a summary or JSON report per connector.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_util::sync::CancellationToken;

use super::shard::ShardArg;
use super::{EXIT_FAILED, SelectionArgs, open_index};
use crate::config::ConnectorConfig;
use crate::embed;
use crate::sink::Sink;
use crate::sync::{Pipeline, Shard, SyncReport};
use crate::worker::state::{History, SyncRecord, Trigger};

#[derive(Debug, Args)]
pub(super) struct SyncArgs {
    #[command(flatten)]
    selection: SelectionArgs,
    /// Print one JSON report per connector on stdout instead of a summary.
    #[arg(long)]
    json: bool,
    /// Let this sync delete more than `max_delete_fraction` of a bucket's documents (or of the
    /// index, for buckets that left the selection): the mass-delete guard's one-time override.
    #[arg(long)]
    allow_mass_delete: bool,
    /// Let this sync write an index that holds documents of another source (other buckets,
    /// owner or endpoint), re-binding the index to the connector's current source; the old
    /// documents are then removed like those of a dropped bucket.
    #[arg(long)]
    retarget: bool,
    /// Rebuild every vector of connectors with `embedding:`: every object is downloaded and
    /// embedded again, no vector is reused. Needed once after changing the embedding model (a
    /// sync with another model than the index records is refused).
    #[arg(long)]
    reembed: bool,
    #[command(flatten)]
    shard: ShardArg,
}

/// Syncs the selected connectors one after the other. Ctrl-C stops starting new work, lets
/// downloads in flight finish and commits; a second Ctrl-C exits at once.
pub(super) async fn run(args: SyncArgs) -> anyhow::Result<ExitCode> {
    let selected = match args.selection.load() {
        Ok(selected) => selected,
        Err(code) => return Ok(code),
    };
    let config = &selected.config;
    let shards = match args.shard.resolve(config) {
        Ok(shards) => shards,
        Err(code) => return Ok(code),
    };
    let cancel = CancellationToken::new();
    tokio::spawn(cancel_on_interrupt(cancel.clone()));
    let history = History::new(&config.state_dir).for_shard(shards.spec());
    let mut all_succeeded = true;
    for (position, connector) in selected.connectors() {
        if cancel.is_cancelled() {
            break;
        }
        let index = open_index(config, connector).await?;
        let options = SyncOptions {
            show_progress: !args.json,
            allow_mass_delete: args.allow_mass_delete,
            retarget: args.retarget,
            reembed: args.reembed,
        };
        let shard = shards.of(position);
        let report = crate::with_sink!(
            &index,
            sink => sync_with_progress(connector, sink, options, shard.clone(), &cancel).await
        );
        all_succeeded &= report.succeeded();
        print_report(&report, args.json)?;
        record_in_history(&history, report);
    }
    Ok(if all_succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

/// How `sync` runs each connector.
#[derive(Debug, Clone, Copy)]
struct SyncOptions {
    /// Draw a spinner with live counts (on a terminal only).
    show_progress: bool,
    /// `--allow-mass-delete`.
    allow_mass_delete: bool,
    /// `--retarget`.
    retarget: bool,
    /// `--reembed`.
    reembed: bool,
}

/// Syncs one connector, drawing a spinner with live counts when stderr is a terminal.
async fn sync_with_progress<S: Sink>(
    connector: &ConnectorConfig,
    sink: &S,
    options: SyncOptions,
    shard: Shard,
    cancel: &CancellationToken,
) -> SyncReport {
    let pipeline = Pipeline::new(connector)
        .await
        .with_shard(shard)
        .retarget(options.retarget)
        .reembed(options.reembed);
    let loaded = embed::load_blocking(embed::for_connector, connector.embedding.as_ref()).await;
    let pipeline = match loaded {
        Ok(embedder) => pipeline.with_embedder(embedder),
        Err(error) => {
            return pipeline.failed(format!(
                "cannot load the embedding model, so nothing was synced: {error}"
            ));
        }
    };
    let counters = Arc::clone(pipeline.counters());
    let bar = if options.show_progress && std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix}: {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_prefix(connector.id.clone());
    let ticker = {
        let bar = bar.clone();
        let source = pipeline.source().clone();
        let (id, started_at) = (connector.id.clone(), pipeline.started_at());
        tokio::spawn(async move {
            loop {
                let so_far = SyncReport::from_counters(&id, &counters, source.stats(), started_at);
                bar.set_message(so_far.summary());
                bar.tick();
                tokio::time::sleep(Duration::from_millis(120)).await;
            }
        })
    };
    let report = pipeline.run(sink, cancel, options.allow_mass_delete).await;
    ticker.abort();
    bar.finish_and_clear();
    report
}

/// Appends the sync to the history that `status` and the worker read, like the worker's own
/// syncs. A history that cannot be written costs the record, not the sync.
fn record_in_history(history: &History, report: SyncReport) {
    let record = SyncRecord::new(report, Trigger::Manual);
    if let Err(error) = history.append(&record) {
        tracing::warn!(message = "Could not record the sync in the history; `status` will not show it.", %error);
    }
}

fn print_report(report: &SyncReport, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, report)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "{}{}: {} in {:.1} s",
            report.connector,
            report
                .shard
                .as_ref()
                .map(|shard| format!(" (shard {shard})"))
                .unwrap_or_default(),
            report.summary(),
            report.duration_ms as f64 / 1e3,
        )?;
        for message in &report.error_messages {
            writeln!(out, "  error: {message}")?;
        }
    }
    Ok(())
}

/// Cancels on the first Ctrl-C; exits the process on the second.
async fn cancel_on_interrupt(cancel: CancellationToken) {
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    eprintln!(
        "interrupted: finishing downloads in flight and committing; press Ctrl-C again to exit at once"
    );
    cancel.cancel();
    if tokio::signal::ctrl_c().await.is_ok() {
        std::process::exit(130);
    }
}
