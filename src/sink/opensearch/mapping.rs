//! The index mapping s3-connector writes, creating the index with it on first use, and checking
//! an existing index against it.
//!
//! An existing index is never overwritten: a field it maps with another type than ours is a
//! conflict, reported with every such field, and nothing is written. Fields it does not map at
//! all are added (OpenSearch only ever adds to a mapping), because leaving them to dynamic
//! mapping would make `bucket` a text field, and the incremental sync would silently stop
//! recognising what it indexed.
//!
//! Searchable text is analysed by [`analysis::FOLDED`] (lowercase, ASCII folding), defined in
//! the index settings when s3-connector creates the index. An analyzer cannot change on an
//! existing index: one made by an earlier s3-connector (or by hand) keeps its analysis, still
//! works, and is reported with a warning naming the fields that do not fold accents and what to
//! do (sync into a new index).

use std::collections::{BTreeMap, BTreeSet};

use ::opensearch::http::Method;
use serde_json::{Value, json};

use super::client::{Body, Client, Reply, index_path};
use super::error::OpensearchError;
use crate::sink::IndexSource;
use crate::sink::analysis;

/// Field → its mapping. Keyword for what is filtered or compared, text for what is searched.
fn field_mappings() -> Value {
    let searchable = json!({"type": "text", "analyzer": analysis::FOLDED});
    json!({
        "id": {"type": "keyword"},
        "bucket": {"type": "keyword"},
        // A key is matched exactly (keyword) and searched by its words (`key.text`).
        "key": {"type": "keyword", "fields": {"text": searchable}},
        "filename": {"type": "text", "analyzer": analysis::FOLDED, "fields": {"keyword": {"type": "keyword", "ignore_above": 1024}}},
        "extension": {"type": "keyword"},
        "size_in_bytes": {"type": "long"},
        "last_modified": {"type": "date"},
        "etag": {"type": "keyword"},
        "content_type": {"type": "keyword"},
        "storage_class": {"type": "keyword"},
        "url": {"type": "keyword"},
        "title": searchable,
        "body": searchable,
        "content_status": {"type": "keyword"},
        "extraction_error": {"type": "text"},
        "indexed_at": {"type": "date"},
        // Kept in `_source` for reading back, never indexed: a field per metadata name would
        // let objects add mapping fields without end (OpenSearch's "mapping explosion").
        "metadata": {"type": "object", "enabled": false},
        "tags": {"type": "object", "enabled": false},
        // What filters match: `meta.<name>=<value>` and `tag.<key>=<value>`, folded.
        "filters": {"type": "keyword"},
        // Why embedding the passages failed; such a document is redone by the next sync.
        "embedding_error": {"type": "text", "index": false},
        // How many passages the passage index holds for the document (absent: none), so that
        // a passage search finds a document either by its passages or whole, never both.
        "passage_count": {"type": "integer"},
    })
}

/// The analysis settings of the index: [`analysis::FOLDED`] as OpenSearch builds it (its
/// `standard` tokenizer splits words by Unicode's rules, tantivy's at every non-alphanumeric
/// character; both lowercase and fold alike).
pub(super) fn analysis_settings() -> Value {
    json!({"analyzer": {analysis::FOLDED: {
        "type": "custom",
        "tokenizer": "standard",
        "filter": ["lowercase", "asciifolding"],
    }}})
}

/// The body of the create-index request.
pub(super) fn create_body() -> Value {
    json!({
        "settings": {"analysis": analysis_settings()},
        "mappings": {"properties": field_mappings()},
    })
}

/// What an existing index's mapping means for us.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct MappingCheck {
    /// Fields mapped with another type than ours, one sentence each.
    pub conflicts: Vec<String>,
    /// Top-level fields of ours that (or a sub-field of which) the index does not map yet.
    pub missing: BTreeSet<String>,
    /// Text fields of ours (dotted paths) that the index analyses with another analyzer than
    /// ours: searches on them do not fold accents.
    pub other_analysis: BTreeSet<String>,
}

/// A field's type and analyzer, as a mapping states them.
#[derive(Debug, PartialEq, Eq)]
struct Mapped {
    kind: String,
    /// `None` for the default analyzer (or a field that has none).
    analyzer: Option<String>,
}

/// Dotted path (`filename.keyword`) → type and analyzer, for a `properties` object and its
/// multi-fields.
fn flatten(properties: &Value, prefix: &str, out: &mut BTreeMap<String, Mapped>) {
    let Some(properties) = properties.as_object() else {
        return;
    };
    for (name, mapping) in properties {
        let path = format!("{prefix}{name}");
        let kind = mapping
            .get("type")
            .and_then(Value::as_str)
            // A field with `properties` and no type is an object.
            .unwrap_or("object");
        let analyzer = mapping.get("analyzer").and_then(Value::as_str);
        out.insert(
            path.clone(),
            Mapped {
                kind: kind.to_owned(),
                analyzer: analyzer.map(str::to_owned),
            },
        );
        for nested in ["properties", "fields"] {
            if let Some(inner) = mapping.get(nested) {
                flatten(inner, &format!("{path}."), out);
            }
        }
    }
}

/// Whether `found` serves where we map `expected`.
fn compatible(expected: &str, found: &str) -> bool {
    expected == found
        || matches!(
            (expected, found),
            ("date", "date_nanos") | ("text", "match_only_text")
        )
}

/// Compares the `mappings` object of one index with ours.
pub(super) fn check(index: &str, mappings: &Value) -> MappingCheck {
    let mut expected = BTreeMap::new();
    flatten(&field_mappings(), "", &mut expected);
    let mut found = BTreeMap::new();
    flatten(
        mappings.get("properties").unwrap_or(&Value::Null),
        "",
        &mut found,
    );
    let mut result = MappingCheck::default();
    if mappings.pointer("/_source/enabled") == Some(&Value::Bool(false)) {
        result.conflicts.push(format!(
            "index {index} does not keep _source, from which s3-connector reads what it indexed"
        ));
    }
    for (path, expected) in &expected {
        let expected_type = &expected.kind;
        match found.get(path) {
            Some(found) if compatible(expected_type, &found.kind) => {
                if found.analyzer != expected.analyzer {
                    result.other_analysis.insert(path.clone());
                }
            }
            Some(found) => result.conflicts.push(format!(
                "index {index} maps field `{path}` as {}, s3-connector needs {expected_type}",
                found.kind
            )),
            None => {
                let top = path.split('.').next().unwrap_or(path);
                result.missing.insert(top.to_owned());
            }
        }
    }
    result
}

/// `GET /{index}/_mapping` (or `_settings`, `what` naming it), with the action's description
/// for errors.
pub(super) async fn read_index(
    client: &Client,
    index: &str,
    what: &str,
) -> Result<(String, Reply), OpensearchError> {
    let read = format!("reading the {what} of index {index}");
    let reply = client
        .send(
            &read,
            Method::Get,
            &index_path(index, &format!("_{what}")),
            &[],
            None,
        )
        .await?;
    Ok((read, reply))
}

/// Whether `index` (or an alias) exists: its mapping can be read.
pub(super) async fn exists(client: &Client, index: &str) -> Result<bool, OpensearchError> {
    let (read, reply) = read_index(client, index, "mapping").await?;
    if reply.status == 404 {
        return Ok(false);
    }
    if reply.is_success() {
        return Ok(true);
    }
    Err(reply.into_error(&read))
}

/// Makes sure `index` exists with a mapping we can work with: creates it with ours if it is
/// missing, adds the fields it lacks, and refuses (without changing anything) when it maps one
/// of our fields differently. Returns whether its text fields fold accents (they do not on an
/// index made before s3-connector folded them: that is logged as a warning, with the remedy).
pub(super) async fn ensure_index(client: &Client, index: &str) -> Result<bool, OpensearchError> {
    let mapping_path = index_path(index, "_mapping");
    let read = format!("reading the mapping of index {index}");
    let reply = client
        .send(&read, Method::Get, &mapping_path, &[], None)
        .await?;
    let reply = if reply.status == 404 {
        let create = format!("creating index {index}");
        let created = client
            .send(
                &create,
                Method::Put,
                &format!("/{index}"),
                &[],
                Some(&Body::json(&create_body())),
            )
            .await?;
        if created.is_success() {
            tracing::info!(message = "Created the OpenSearch index.", index);
            return Ok(true);
        }
        let error = created.into_error(&create);
        if error.kind() != Some("resource_already_exists_exception") {
            return Err(error);
        }
        // Someone else created it in the meantime: check theirs like any existing index.
        client
            .send(&read, Method::Get, &mapping_path, &[], None)
            .await?
    } else {
        reply
    };
    // An alias answers with the mapping of every index behind it.
    let per_index: BTreeMap<String, Value> = reply.json(&read)?;
    let mut conflicts = Vec::new();
    let mut missing = BTreeSet::new();
    let mut other_analysis = BTreeSet::new();
    for (name, mapping) in &per_index {
        let found = check(name, mapping.get("mappings").unwrap_or(&Value::Null));
        conflicts.extend(found.conflicts);
        missing.extend(found.missing);
        other_analysis.extend(found.other_analysis);
    }
    if !conflicts.is_empty() {
        return Err(OpensearchError::MappingConflict {
            index: index.to_owned(),
            conflicts,
        });
    }
    if !missing.is_empty() {
        add_fields(client, index, &missing, &mut other_analysis).await?;
    }
    if !other_analysis.is_empty() {
        tracing::warn!(
            message = "The OpenSearch index analyses some of s3-connector's text fields without accent folding, so a search for \"cafe\" does not find \"café\" in them. An existing index's analyzers cannot change: to get accent folding, sync into a new index (another `index_name` on the connector, or delete this index) and search that.",
            index,
            fields = %other_analysis.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    Ok(other_analysis.is_empty())
}

/// Whether every index behind `index` defines our analyzer in its settings.
async fn defines_our_analyzer(client: &Client, index: &str) -> Result<bool, OpensearchError> {
    let (read, reply) = read_index(client, index, "settings").await?;
    if !reply.is_success() {
        return Err(reply.into_error(&read));
    }
    let per_index: BTreeMap<String, Value> = reply.json(&read)?;
    let pointer = format!("/settings/index/analysis/analyzer/{}", analysis::FOLDED);
    Ok(per_index
        .values()
        .all(|settings| settings.pointer(&pointer).is_some()))
}

/// `mapping` without any `analyzer`: the default analysis, for an index that lacks ours.
fn without_analyzers(mut mapping: Value) -> Value {
    if let Some(object) = mapping.as_object_mut() {
        object.remove("analyzer");
        for value in object.values_mut() {
            *value = without_analyzers(value.take());
        }
    }
    mapping
}

/// Adds our `missing` top-level fields to the mapping of the existing `index`. On an index
/// without our analyzer (which cannot be added to an open index) text fields get the default
/// analysis, and their paths go into `other_analysis`.
async fn add_fields(
    client: &Client,
    index: &str,
    missing: &BTreeSet<String>,
    other_analysis: &mut BTreeSet<String>,
) -> Result<(), OpensearchError> {
    let mapping_path = index_path(index, "_mapping");
    let all = field_mappings();
    let mut properties: serde_json::Map<String, Value> = missing
        .iter()
        .filter_map(|field| Some((field.clone(), all.get(field)?.clone())))
        .collect();
    let analysed = {
        let mut paths = BTreeMap::new();
        flatten(&Value::Object(properties.clone()), "", &mut paths);
        paths
            .into_iter()
            .filter(|(_, mapped)| mapped.analyzer.is_some())
            .map(|(path, _)| path)
            .collect::<Vec<_>>()
    };
    if !analysed.is_empty() && !defines_our_analyzer(client, index).await? {
        for mapping in properties.values_mut() {
            *mapping = without_analyzers(mapping.take());
        }
        other_analysis.extend(analysed);
    }
    let update = format!("adding fields to the mapping of index {index}");
    let reply = client
        .send(
            &update,
            Method::Put,
            &mapping_path,
            &[],
            Some(&Body::json(&json!({ "properties": properties }))),
        )
        .await?;
    if !reply.is_success() {
        let error = reply.into_error(&update);
        return Err(OpensearchError::MappingConflict {
            index: index.to_owned(),
            conflicts: vec![format!(
                "adding the fields {} failed: {error}",
                missing.iter().cloned().collect::<Vec<_>>().join(", ")
            )],
        });
    }
    tracing::info!(
        message = "Added s3-connector's fields to the mapping of an existing OpenSearch index.",
        index,
        fields = %missing.iter().cloned().collect::<Vec<_>>().join(", ")
    );
    Ok(())
}

/// The key under the index mapping's `_meta` that holds the source of its documents.
const SOURCE_META: &str = "s3_connector_source";

/// The source recorded in the mapping's `_meta` (of the first index behind an alias).
pub(super) async fn recorded_source(
    client: &Client,
    index: &str,
) -> Result<Option<IndexSource>, OpensearchError> {
    let (read, reply) = read_index(client, index, "mapping").await?;
    if !reply.is_success() {
        return Err(reply.into_error(&read));
    }
    let per_index: BTreeMap<String, Value> = reply.json(&read)?;
    let recorded = per_index.values().find_map(|mapping| {
        mapping
            .pointer(&format!("/mappings/_meta/{SOURCE_META}"))
            .cloned()
    });
    match recorded {
        None => Ok(None),
        Some(value) => serde_json::from_value(value).map(Some).map_err(|error| {
            OpensearchError::status(
                &read,
                200,
                format!("_meta.{SOURCE_META} is not a source record: {error}").as_bytes(),
            )
        }),
    }
}

/// Records the source in the mapping's `_meta` (other `_meta` keys are replaced: OpenSearch
/// replaces `_meta` as a whole).
pub(super) async fn record_source(
    client: &Client,
    index: &str,
    source: &IndexSource,
) -> Result<(), OpensearchError> {
    let action = format!("recording the source in the mapping of index {index}");
    let body = serde_json::json!({ "_meta": { SOURCE_META: source } });
    let reply = client
        .send(
            &action,
            Method::Put,
            &index_path(index, "_mapping"),
            &[],
            Some(&Body::json(&body)),
        )
        .await?;
    if reply.is_success() {
        Ok(())
    } else {
        Err(reply.into_error(&action))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours() -> Value {
        create_body()["mappings"].clone()
    }

    #[test]
    fn our_own_mapping_passes() {
        assert_eq!(check("docs", &ours()), MappingCheck::default());
    }

    /// Our top-level fields, but `except`.
    fn all_but(except: &[&str]) -> BTreeSet<String> {
        let ours = field_mappings();
        let fields = ours.as_object().unwrap().keys();
        fields
            .filter(|field| !except.contains(&field.as_str()))
            .cloned()
            .collect()
    }

    #[test]
    fn text_fields_analysed_otherwise_are_listed_and_are_no_conflict() {
        // The mapping s3-connector created before it folded accents.
        let before = without_analyzers(ours());
        let found = check("docs", &before);
        assert_eq!(found.conflicts, Vec::<String>::new());
        assert_eq!(found.missing, BTreeSet::new());
        assert_eq!(
            found.other_analysis,
            BTreeSet::from(["body", "filename", "key.text", "title"].map(str::to_owned))
        );
        assert_eq!(
            create_body()["settings"]["analysis"]["analyzer"][analysis::FOLDED]["filter"],
            json!(["lowercase", "asciifolding"])
        );
    }

    #[test]
    fn conflicts_name_each_field_with_both_types_and_missing_fields_are_listed() {
        let cases: Vec<(Value, &[&str], BTreeSet<String>)> = vec![
            // An empty index (created by hand, or by another tool with its own settings).
            (json!({}), &[], all_but(&[])),
            // What dynamic mapping makes of our documents: text with a keyword sub-field.
            (
                json!({"properties": {"bucket": {"type": "text", "fields": {"keyword": {"type": "keyword"}}}}}),
                &["index docs maps field `bucket` as text, s3-connector needs keyword"],
                all_but(&["bucket"]),
            ),
            (
                {
                    let mut mapping = ours();
                    mapping["properties"]["size_in_bytes"] = json!({"type": "keyword"});
                    mapping["properties"]["last_modified"] = json!({"type": "date_nanos"});
                    mapping["properties"]["filename"] = json!({"type": "text"});
                    mapping["properties"]["key"]["fields"]["text"] = json!({"type": "keyword"});
                    mapping["_source"] = json!({"enabled": false});
                    mapping
                },
                &[
                    "index docs does not keep _source, from which s3-connector reads what it indexed",
                    "index docs maps field `key.text` as keyword, s3-connector needs text",
                    "index docs maps field `size_in_bytes` as keyword, s3-connector needs long",
                ],
                BTreeSet::from(["filename".to_owned()]),
            ),
            (
                {
                    let mut mapping = ours();
                    mapping["properties"]["body"] =
                        json!({"properties": {"text": {"type": "text"}}});
                    mapping["properties"]["extra"] = json!({"type": "geo_point"});
                    mapping
                },
                &["index docs maps field `body` as object, s3-connector needs text"],
                BTreeSet::new(),
            ),
        ];
        for (mapping, conflicts, missing) in cases {
            let found = check("docs", &mapping);
            assert_eq!(found.conflicts, conflicts, "{mapping}");
            assert_eq!(found.missing, missing, "{mapping}");
        }
    }
}
