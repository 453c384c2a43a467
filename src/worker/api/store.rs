//! The connectors created through the API, kept in `state_dir/api-connectors.json`.
//!
//! The whole list is rewritten on every change with a crash-safe replace (temporary file,
//! fsync, rename), so a crash leaves the old list or the new one. Each entry keeps the
//! connector's config-file form (no secrets: API connectors have none) and what its probe
//! verified; at start-up the form is validated again with the current `defaults:`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

/// What a connector's probe verified before it was stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verified {
    /// `s3://bucket[/prefix]` as probed.
    pub verified_bucket_uri: String,
    /// The role assumed with the deployment's ExternalId.
    pub verified_role_arn: String,
    /// The account the bucket belongs to (sent as ExpectedBucketOwner and accepted by S3).
    pub verified_bucket_owner_account_id: String,
    /// When the probe passed.
    #[serde(with = "time::serde::rfc3339")]
    pub verified_at: OffsetDateTime,
}

/// One stored connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
}

impl StoredConnector {
    /// The connector's id, from its form.
    pub fn id(&self) -> &str {
        self.form.get("id").and_then(Value::as_str).unwrap_or("")
    }
}

/// The file's content.
#[derive(Debug, Serialize, Deserialize)]
struct StoreFile {
    version: u32,
    connectors: Vec<StoredConnector>,
}

/// Why the store could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading or writing failed.
    #[error("cannot {action} the API connectors file {path}: {cause}")]
    Io {
        /// "read" or "write".
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// The file is not what this version writes.
    #[error(
        "the API connectors file {path} cannot be read: {cause}; restore it from a backup or move it aside (its connectors are then gone)"
    )]
    Format {
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

    /// The stored connectors; none when the file does not exist yet.
    pub fn load(&self) -> Result<Vec<StoredConnector>, StoreError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(cause) if cause.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(cause) => {
                return Err(StoreError::Io {
                    action: "read",
                    path: self.path.clone(),
                    cause,
                });
            }
        };
        let file: StoreFile =
            serde_json::from_slice(&bytes).map_err(|cause| StoreError::Format {
                path: self.path.clone(),
                cause,
            })?;
        Ok(file.connectors)
    }

    /// Replaces the stored list with `connectors`.
    pub fn save(&self, connectors: &[StoredConnector]) -> Result<(), StoreError> {
        let file = StoreFile {
            version: 1,
            connectors: connectors.to_vec(),
        };
        let bytes = serde_json::to_vec_pretty(&file).map_err(|cause| StoreError::Format {
            path: self.path.clone(),
            cause,
        })?;
        crate::durable::replace(&self.path, &bytes).map_err(|cause| StoreError::Io {
            action: "write",
            path: self.path.clone(),
            cause,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_connectors_load_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        assert_eq!(store.load().unwrap(), []);
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
        };
        store.save(std::slice::from_ref(&stored)).unwrap();
        assert_eq!(store.load().unwrap(), std::slice::from_ref(&stored));
        // A file written before updates existed still loads.
        let mut old = serde_json::to_value(&stored).unwrap();
        old.as_object_mut().unwrap().remove("request");
        old.as_object_mut().unwrap().remove("retarget_pending");
        let old: StoredConnector = serde_json::from_value(old).unwrap();
        assert_eq!((old.request, old.retarget_pending), (None, false));
        std::fs::write(dir.path().join("api-connectors.json"), "{").unwrap();
        assert!(matches!(store.load(), Err(StoreError::Format { .. })));
    }
}
