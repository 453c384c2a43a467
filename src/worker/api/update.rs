//! `PATCH /api/v1/connectors/{id}`: an API connector changed by a JSON merge patch of its
//! request, checked like a create, bound to its index's source, probed again when what the
//! probe checks changed, stored crash-safely and applied at once.
//!
//! Order of the checks, cheapest and least surprising first: the connector (404, also for
//! another tenant's; 409 for the config file's), the merged body (400), its index against the
//! other connectors, live or deleted with their documents kept (409 naming the owner, unless
//! the operator re-targets), the index's recorded source (409 unless `"retarget": true`; a
//! tenant may re-target only the index it already writes), the probe with the ExternalId of
//! the connector's tenant (422); nothing is stored
//! unless every one passed, and nothing is stored if another change of the connector was
//! stored meanwhile (409).
//!
//! A changed `embedding` block is stored like any change; when the index holds vectors of
//! another model than the new block makes, the answer's `model_change` says so, naming both
//! (the worker never re-embeds on its own: the next sync fails until they agree).

use std::sync::Arc;

use serde_json::json;

use super::store::{KeptIndex, StoredConnector};
use super::{
    ApiState, Entry, Origin, Shared, entry_for, index_free, lock, probe_failed, request,
    stored_connectors, take_index, verified, view,
};
use crate::config::ConnectorConfig;
use crate::embed::EmbeddingModel;
use crate::http::handle::{Answer, ApiError, Caller, StatusCode};
use crate::http::model::Connector;
use crate::sink::IndexSource;
use crate::sink::{AnySink, Sink};
use crate::sync::target;

/// The fields of a connector's form that its probe checks: a change in any of them is probed
/// again before it is stored.
const PROBED_FIELDS: [&str; 6] = [
    "buckets",
    "role_arn",
    "expected_bucket_owner",
    "sync_rules",
    "notifications",
    "inventory",
];

/// `PATCH /api/v1/connectors/{id}`: merge the body into the stored request, validate it like a
/// create, refuse to point an index with documents at another source unless `"retarget":
/// true`, probe again when the probed fields changed, store, and apply (the schedule at once).
pub(super) async fn update(
    shared: &Arc<Shared>,
    api: &ApiState,
    caller: &Caller,
    id: &str,
    body: &[u8],
) -> Answer<Connector> {
    let Ok(entry) = entry_for(shared, caller, id) else {
        if let Some(conflict) = lock(&api.conflicts)
            .iter()
            .find(|c| c.stored.id() == id && caller.sees(c.stored.tenant.as_deref()))
        {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "connector {id} is stored but not running: {}; delete it and create it again",
                    conflict.reason
                ),
            ));
        }
        return Err(ApiError::no_connector(id));
    };
    let Some(before) = entry.stored() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "connector {id} comes from the config file and is read-only here; change it in the file"
            ),
        ));
    };
    let tenant = before.tenant.as_deref();
    let external_id = api.external_id(tenant)?;
    let (checked, flags) =
        request::parse_update(body, caller, id, &before, &external_id, &api.defaults)
            .map_err(ApiError::problems)?;
    api.admit_endpoint(&checked, caller)?;
    let connector = checked.connector;
    let same_index = connector.index_name() == entry.connector().index_name();
    if flags.retarget && !same_index && *caller != Caller::Admin {
        return Err(ApiError::operator_only(
            "\"retarget\": true with another index_name",
        ));
    }
    index_free(
        shared,
        api,
        caller,
        &connector,
        Some(&entry),
        tenant,
        flags.retarget,
    )?;
    let retarget = match bound_elsewhere(shared, &connector).await {
        Ok(None) => false,
        Ok(Some(_)) if flags.retarget => true,
        Ok(Some(_)) if *caller != Caller::Admin && !same_index => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "index {} holds documents of another source; nothing was changed; choose another index_name",
                    connector.index_name()
                ),
            ));
        }
        Ok(Some((recorded, wanted))) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "index {} holds documents from {recorded}, but the update points it at {wanted}; nothing was changed. If the index should follow the new source (its old documents are then deleted by the next sync), send the update again with \"retarget\": true; otherwise give the connector another index_name",
                    connector.index_name()
                ),
            )
            .with("recorded", &recorded)
            .with("wanted", &wanted));
        }
        Err(cause) => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "cannot read which source index {} holds, so nothing was changed: {cause}",
                    connector.index_name()
                ),
            ));
        }
    };
    let probed = PROBED_FIELDS
        .iter()
        .any(|field| before.form.get(field) != checked.form.get(field));
    let mut steps = Vec::new();
    if probed {
        steps = api.probe(&connector, flags).await;
        probe_failed(&connector, &steps)?;
    }
    let _changing = api.changing.lock().await;
    // Another request may have changed or deleted the connector while the probe ran.
    let current = shared.entry(id);
    if !current.is_some_and(|c| Arc::ptr_eq(&c, &entry)) || entry.stored().as_ref() != Some(&before)
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "connector {id} was changed or deleted while this update was checked; read it and send the update again"
            ),
        ));
    }
    let stored = StoredConnector {
        form: checked.form,
        verified: if probed {
            verified(&connector)
        } else {
            before.verified.clone()
        },
        request: Some(checked.request),
        retarget_pending: retarget || before.retarget_pending,
        tenant: before.tenant.clone(),
    };
    let all: Vec<StoredConnector> = stored_connectors(shared, api)
        .into_iter()
        .map(|s| if s.id() == id { stored.clone() } else { s })
        .collect();
    // An index the connector moves away from keeps its documents, and stays the connector's.
    let left = (!same_index).then(|| KeptIndex {
        index_name: entry.connector().index_name().to_owned(),
        connector: id.to_owned(),
        tenant: before.tenant.clone(),
    });
    take_index(api, stored.index_name(), left, &all).map_err(|cause| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the connector could not be stored, so nothing was changed: {cause}"),
        )
    })?;
    let pending = stored.retarget_pending;
    let embedding_changed = entry.connector().embedding != connector.embedding;
    shared.update(&entry, connector, Origin::Api(Box::new(stored)));
    if pending {
        entry
            .retarget_next
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
    tracing::info!(message = "Updated a connector through the API.", connector = %id, probed, retarget);
    let mut answer = view(&entry);
    answer.probed = Some(probed);
    answer.retarget_pending = Some(pending);
    if probed {
        answer.steps = Some(json!(steps));
    }
    if embedding_changed {
        answer.model_change = model_change(shared, &entry).await;
    }
    Ok(answer)
}

/// What the connector's new `embedding` block means for its index: `None` when the index
/// records no model, or the model the block makes; else both models, what fails until they
/// agree and the ways out (or why the new model cannot be loaded). Loads the new model, which
/// the connector's next sync then uses.
async fn model_change(shared: &Shared, entry: &Entry) -> Option<String> {
    let connector = entry.connector();
    let index = connector.index_name();
    let recorded = recorded_model(shared, index).await.ok()??;
    let embedder = match shared.embedder(entry, &connector).await {
        Ok(embedder) => embedder?,
        Err(error) => {
            return Some(format!(
                "the new embedding model cannot be loaded, so the next sync fails: {error}"
            ));
        }
    };
    let wanted = embedder.model();
    (recorded != *wanted).then(|| {
        format!(
            "the index {index} holds vectors of {recorded}, but the new embedding block makes \
             vectors of {wanted}: the next sync fails and semantic or hybrid searches are refused \
             (keyword search keeps working) until the two agree. Rebuild every vector with \
             {wanted} (POST /api/v1/connectors/{id}/sync?reembed=true: every object is \
             downloaded and embedded again), or set embedding back to {recorded}",
            id = connector.id
        )
    })
}

/// The embedding model whose vectors `index` holds; `None` for none, or no index yet.
async fn recorded_model(shared: &Shared, index: &str) -> Result<Option<EmbeddingModel>, String> {
    let Some(sink) = AnySink::open_existing(&shared.config.index, index)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    crate::with_sink!(&sink, sink => sink.recorded_model().await).map_err(|e| e.to_string())
}

/// The source the connector's index records and the one the connector points at, when the
/// index holds documents and the two differ so that a sync would refuse them (the retarget
/// guard, `crate::sync::target`); `None` when a sync may proceed.
pub(super) async fn bound_elsewhere(
    shared: &Shared,
    connector: &ConnectorConfig,
) -> Result<Option<(IndexSource, IndexSource)>, String> {
    let Some(sink) = AnySink::open_existing(&shared.config.index, connector.index_name())
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    crate::with_sink!(&sink, sink => compare_sources(sink, connector).await)
}

async fn compare_sources<S: Sink>(
    sink: &S,
    connector: &ConnectorConfig,
) -> Result<Option<(IndexSource, IndexSource)>, String> {
    let wanted = IndexSource::of(connector);
    let Some(recorded) = sink.recorded_source().await.map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    if target::compare(&recorded, &wanted) != target::Verdict::Elsewhere {
        return Ok(None);
    }
    // An emptied index mixes nothing.
    let buckets = sink.indexed_buckets().await.map_err(|e| e.to_string())?;
    Ok((!buckets.is_empty()).then_some((recorded, wanted)))
}
