//! The connectors created through the API, kept in `state_dir/api-connectors.json`, with the
//! indexes that connectors left with their documents, deleted or moved to another index (each
//! still belongs to its connector: no other may take it without the operator's retarget).
//!
//! The whole file is rewritten on every change with a crash-safe replace (temporary file,
//! fsync, rename), so a crash leaves the old list or the new one. Each entry keeps the
//! connector's config-file form (the ExternalId is its tenant's; the one secret is an
//! `embedding.api_key`, which the file holds like the config file would, and which Debug output
//! masks), its tenant and what its probe verified; at start-up the form is validated again
//! with the current `defaults:`. [`read_json`] and [`write_json`] serve the tenants' file too.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

/// What a connector's probe verified before it was stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verified {
    /// `s3://bucket[/prefix]` as probed.
    pub verified_bucket_uri: String,
    /// The role assumed with the ExternalId of the connector's tenant (the deployment's for
    /// the operator's).
    pub verified_role_arn: String,
    /// The account the bucket belongs to (sent as ExpectedBucketOwner and accepted by S3).
    pub verified_bucket_owner_account_id: String,
    /// When the probe passed.
    #[serde(with = "time::serde::rfc3339")]
    pub verified_at: OffsetDateTime,
}

/// One stored connector (its Debug output masks the `embedding.api_key`).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredConnector {
    /// The connector in the config file's form.
    pub form: Value,
    /// What its probe verified.
    pub verified: Verified,
    /// The request's fields (`bucket_uri`, `role_arn`, ...), which an update merges into;
    /// absent in files written before updates existed (then derived from `form`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Value>,
    /// An update pointed the index at another source with `"retarget": true`, and no sync
    /// has re-targeted it yet: the next sync may (also after a restart).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retarget_pending: bool,
    /// The tenant that created it; `None` for the operator's (and in files written before
    /// tenants existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

impl std::fmt::Debug for StoredConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredConnector")
            .field("form", &masked(&self.form))
            .field("verified", &self.verified)
            .field("request", &self.request.as_ref().map(masked))
            .field("retarget_pending", &self.retarget_pending)
            .field("tenant", &self.tenant)
            .finish()
    }
}

/// The secret fields of a connector's request or form: masked wherever they appear.
const SECRET_FIELDS: [&str; 1] = ["api_key"];

/// `value` with the value of every secret field in it (at any depth) masked, for Debug output.
pub fn masked(value: &Value) -> Value {
    match value {
        Value::Object(object) => Value::Object(
            object
                .iter()
                .map(|(field, value)| {
                    let value = if SECRET_FIELDS.contains(&field.as_str()) && !value.is_null() {
                        Value::String(crate::config::REDACTED.to_owned())
                    } else {
                        masked(value)
                    };
                    (field.clone(), value)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(masked).collect()),
        other => other.clone(),
    }
}

impl StoredConnector {
    /// The connector's id, from its form.
    pub fn id(&self) -> &str {
        self.form.get("id").and_then(Value::as_str).unwrap_or("")
    }

    /// The index it writes, from its form (the id when the form names none).
    pub fn index_name(&self) -> &str {
        self.form
            .get("index_name")
            .and_then(Value::as_str)
            .unwrap_or_else(|| self.id())
    }
}

/// An index a connector left with its documents (deleted, or moved to another index): it
/// stays that connector's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptIndex {
    /// The index.
    pub index_name: String,
    /// The connector that wrote it.
    pub connector: String,
    /// That connector's tenant; `None` for the operator's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

/// Everything the file holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stored {
    /// The connectors.
    pub connectors: Vec<StoredConnector>,
    /// The indexes connectors left with their documents.
    pub kept: Vec<KeptIndex>,
}

/// The file's content.
#[derive(Debug, Serialize, Deserialize)]
struct StoreFile {
    version: u32,
    connectors: Vec<StoredConnector>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    kept_indexes: Vec<KeptIndex>,
}

/// Why the store could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading or writing failed.
    #[error("cannot {action} the {what} file {path}: {cause}")]
    Io {
        /// "read" or "write".
        action: &'static str,
        /// What the file holds: "API connectors", "tenants".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// The file is not what this version writes.
    #[error(
        "the {what} file {path} cannot be read: {cause}; restore it from a backup or move it aside (its {what} are then gone)"
    )]
    Format {
        /// What the file holds: "API connectors", "tenants".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The parser's message.
        cause: serde_json::Error,
    },
}

/// The file of stored connectors.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
}

impl Store {
    /// The store in `state_dir`.
    pub fn new(state_dir: &Path) -> Self {
        Self {
            path: state_dir.join("api-connectors.json"),
        }
    }

    /// The stored connectors and kept indexes; none when the file does not exist yet.
    pub fn load(&self) -> Result<Stored, StoreError> {
        Ok(read_json::<StoreFile>(&self.path, WHAT)?
            .map(|file| Stored {
                connectors: file.connectors,
                kept: file.kept_indexes,
            })
            .unwrap_or_default())
    }

    /// Replaces the stored connectors and kept indexes.
    pub fn save(
        &self,
        connectors: &[StoredConnector],
        kept: &[KeptIndex],
    ) -> Result<(), StoreError> {
        let file = StoreFile {
            version: 1,
            connectors: connectors.to_vec(),
            kept_indexes: kept.to_vec(),
        };
        write_json(&self.path, WHAT, &file)
    }
}

/// What the connectors' file holds, in its errors.
const WHAT: &str = "API connectors";

/// The JSON of `path` (holding `what`); `None` when the file does not exist.
pub fn read_json<T: DeserializeOwned>(
    path: &Path,
    what: &'static str,
) -> Result<Option<T>, StoreError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(cause) if cause.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(cause) => {
            return Err(StoreError::Io {
                action: "read",
                what,
                path: path.to_owned(),
                cause,
            });
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|cause| StoreError::Format {
            what,
            path: path.to_owned(),
            cause,
        })
}

/// Replaces `path` (holding `what`) with `value` as JSON, crash-safely.
pub fn write_json<T: Serialize>(
    path: &Path,
    what: &'static str,
    value: &T,
) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|cause| StoreError::Format {
        what,
        path: path.to_owned(),
        cause,
    })?;
    crate::durable::replace(path, &bytes).map_err(|cause| StoreError::Io {
        action: "write",
        what,
        path: path.to_owned(),
        cause,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_connectors_load_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        assert_eq!(store.load().unwrap(), Stored::default());
        let stored = StoredConnector {
            form: serde_json::json!({"id": "acme", "buckets": ["acme-docs"]}),
            verified: Verified {
                verified_bucket_uri: "s3://acme-docs".into(),
                verified_role_arn: "arn:aws:iam::111122223333:role/search".into(),
                verified_bucket_owner_account_id: "111122223333".into(),
                verified_at: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            },
            request: Some(serde_json::json!({"id": "acme", "bucket_uri": "s3://acme-docs"})),
            retarget_pending: true,
            tenant: Some("acme".into()),
        };
        let kept = KeptIndex {
            index_name: "old-docs".into(),
            connector: "gone".into(),
            tenant: Some("acme".into()),
        };
        store
            .save(std::slice::from_ref(&stored), std::slice::from_ref(&kept))
            .unwrap();
        assert_eq!(
            store.load().unwrap(),
            Stored {
                connectors: vec![stored.clone()],
                kept: vec![kept],
            }
        );
        assert_eq!(stored.index_name(), "acme");
        // A file written before updates and tenants existed still loads.
        let mut old = serde_json::to_value(&stored).unwrap();
        old.as_object_mut().unwrap().remove("request");
        old.as_object_mut().unwrap().remove("retarget_pending");
        old.as_object_mut().unwrap().remove("tenant");
        let old: StoredConnector = serde_json::from_value(old).unwrap();
        assert_eq!(
            (old.request, old.retarget_pending, old.tenant),
            (None, false, None)
        );
        std::fs::write(
            dir.path().join("api-connectors.json"),
            r#"{"version": 1, "connectors": []}"#,
        )
        .unwrap();
        assert_eq!(store.load().unwrap(), Stored::default());
        std::fs::write(dir.path().join("api-connectors.json"), "{").unwrap();
        assert!(matches!(store.load(), Err(StoreError::Format { .. })));
    }
}
