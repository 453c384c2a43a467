//! The `defaults:` block: connector settings written once and inherited by every connector of
//! the file that does not set them, and by every connector created through the API.
//!
//! Inheritance happens on the YAML value, before the connectors are deserialized: a default is
//! copied into each connector that lacks the key, so an inherited value goes through exactly
//! the validation a written one does, and a problem in it is reported at `defaults.<field>`.
//! `schedule` and `interval` are inherited together: a connector that sets either keeps its own.

use serde::{Deserialize, Serialize};
use yaml_serde::Value;

use super::Problem;

/// Settings every connector inherits unless it sets them itself. Each field means what the
/// connector field of the same name means (see `ConnectorConfig`); all are optional. The source
/// identity that assumes customers' roles is the worker's default AWS credential chain
/// (environment, web identity, instance or task role): no keys are written here.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorDefaults {
    /// AWS region of the buckets and of STS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Endpoint of an S3-compatible store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    /// Endpoint for STS AssumeRole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sts_endpoint_url: Option<String>,
    /// Path-style addressing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_path_style: Option<bool>,
    /// Session name for AssumeRole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_session_name: Option<String>,
    /// Lifetime of assumed-role credentials: a duration (a bare number is seconds).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::duration::optional_seconds"
    )]
    pub role_duration_seconds: Option<u32>,
    /// Socket read timeout: a duration (a bare number is seconds).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::duration::optional_seconds"
    )]
    pub read_timeout: Option<u64>,
    /// TCP connect timeout: a duration (a bare number is seconds).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::duration::optional_seconds"
    )]
    pub connect_timeout: Option<u64>,
    /// Attempts per S3 request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// ListObjectsV2 page size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<u32>,
    /// Objects larger than this many bytes are indexed with metadata only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_content_bytes: Option<u64>,
    /// Bytes that decompressing or unpacking one object may produce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_extracted_bytes: Option<u64>,
    /// Time budget for extracting one object: a duration (a bare number is seconds).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::duration::optional_seconds"
    )]
    pub extraction_timeout: Option<u64>,
    /// Characters of extracted text kept in a document's body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body_chars: Option<u64>,
    /// Object downloads in flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
    /// S3 requests per second; 0 means unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_second: Option<u32>,
    /// The mass-delete guard's fraction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delete_fraction: Option<f64>,
    /// A cron schedule (UTC); not together with `interval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// A fixed sync interval such as `1h`; not together with `schedule`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::duration::optional_text"
    )]
    pub interval: Option<String>,
    /// Whether `run` syncs the connector once at start-up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_on_start: Option<bool>,
    /// Passages and vectors: the whole `embedding` block, taken as written by a connector
    /// without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<super::embedding::EmbeddingFile>,
}

/// The settings that move together: a connector with either keeps its own timer.
const TIMER_FIELDS: [&str; 2] = ["schedule", "interval"];

/// One value a connector inherited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inherited {
    /// Position of the connector in `connectors`.
    pub position: usize,
    /// The field.
    pub field: String,
}

/// Copies `document.defaults` into each connector of `document.connectors` that lacks the
/// key; returns what was copied, for [`name_inherited`].
pub fn apply(document: &mut Value) -> Vec<Inherited> {
    let Value::Mapping(root) = document else {
        return Vec::new();
    };
    let Some(Value::Mapping(defaults)) = root.get("defaults").cloned() else {
        return Vec::new();
    };
    let Some(Value::Sequence(connectors)) = root.get_mut("connectors") else {
        return Vec::new();
    };
    let mut inherited = Vec::new();
    for (position, connector) in connectors.iter_mut().enumerate() {
        let Value::Mapping(connector) = connector else {
            continue;
        };
        let has_timer = TIMER_FIELDS.iter().any(|f| connector.contains_key(*f));
        for (key, value) in &defaults {
            let Some(field) = key.as_str() else { continue };
            if connector.contains_key(field)
                || (has_timer && TIMER_FIELDS.contains(&field))
                || value.is_null()
            {
                continue;
            }
            connector.insert(key.clone(), value.clone());
            inherited.push(Inherited {
                position,
                field: field.to_owned(),
            });
        }
    }
    inherited
}

/// Rewrites the path of a problem in an inherited value to the `defaults` field it came from,
/// so the message points at the line the user wrote. Problems repeated for several connectors
/// are reported once.
pub fn name_inherited(problems: &mut Vec<Problem>, inherited: &[Inherited]) {
    for problem in problems.iter_mut() {
        // A problem inside an inherited block (`connectors[0].embedding.model`) too.
        let inside = |i: &Inherited| {
            let written = format!("connectors[{}].{}", i.position, i.field);
            let rest = problem.path.strip_prefix(&written)?;
            (rest.is_empty() || rest.starts_with('.')).then(|| rest.to_owned())
        };
        if let Some((found, rest)) = inherited.iter().find_map(|i| Some((i, inside(i)?))) {
            problem.path = format!("defaults.{}{rest}", found.field);
        }
    }
    let mut seen = std::collections::HashSet::new();
    problems.retain(|p| !p.path.starts_with("defaults.") || seen.insert(p.to_string()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        yaml_serde::from_str(text).unwrap()
    }

    #[test]
    fn a_default_fills_only_what_a_connector_lacks() {
        let mut document = yaml(
            "defaults: {region: eu-west-1, interval: 1h, max_attempts: 3}\nconnectors:\n  - {id: a, buckets: [x]}\n  - {id: b, buckets: [y], region: us-east-2, schedule: '0 * * * *'}\n",
        );
        let inherited = apply(&mut document);
        let fields: Vec<(usize, &str)> = inherited
            .iter()
            .map(|i| (i.position, i.field.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                (0, "region"),
                (0, "interval"),
                (0, "max_attempts"),
                (1, "max_attempts")
            ]
        );
        let b = &document["connectors"][1];
        assert_eq!(b["region"].as_str(), Some("us-east-2"));
        assert!(b.get("interval").is_none(), "a schedule keeps interval out");
    }

    #[test]
    fn a_broken_default_is_reported_once_at_its_own_path() {
        let inherited = vec![
            Inherited {
                position: 0,
                field: "region".into(),
            },
            Inherited {
                position: 1,
                field: "region".into(),
            },
        ];
        let problem = |path: &str| Problem {
            path: path.into(),
            value: Some("\"EU\"".into()),
            rule: "must be a region name such as us-east-1".into(),
        };
        let mut problems = vec![
            problem("connectors[0].region"),
            problem("connectors[1].region"),
            problem("connectors[2].region"),
        ];
        name_inherited(&mut problems, &inherited);
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["defaults.region", "connectors[2].region"]);
    }
}
