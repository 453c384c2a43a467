//! Tenants, kept in `state_dir/api-tenants.json`: each has an id, the SHA-256 hash of its
//! token (the token itself is shown once, when the tenant is created, and never stored) and
//! the ExternalId the server generated for it. A tenant's connectors are probed and synced with
//! its ExternalId, so one customer's role cannot be assumed for another (the confused deputy).
//!
//! Tokens carry 256 random bits, ExternalIds 128 (`s3c-` and 32 hex digits, within AWS's
//! `[\w+=,.@:/-]`), both from the operating system's generator through `rand`'s thread RNG.
//! A token is found by comparing its hash with every tenant's in constant time. The file is
//! rewritten whole on every change with a crash-safe replace, like the connectors' store.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use super::store::{StoreError, read_json, write_json};
use crate::worker::lock;

/// What the file holds, in its errors.
const WHAT: &str = "tenants";

/// One tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantRecord {
    /// Its id, `[a-z0-9][a-z0-9_-]*`.
    pub id: String,
    /// The SHA-256 of its token, hex.
    pub token_sha256: String,
    /// The ExternalId its connectors assume roles with.
    pub external_id: String,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// The file's content.
#[derive(Debug, Serialize, Deserialize)]
struct TenantsFile {
    version: u32,
    tenants: Vec<TenantRecord>,
}

/// Why a tenant could not be added.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// The id is taken.
    #[error("a tenant with id {0} already exists")]
    Taken(String),
    /// The file could not be written.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The tenants, in memory and in their file.
#[derive(Debug)]
pub struct Tenants {
    path: PathBuf,
    list: Mutex<Vec<TenantRecord>>,
}

impl Tenants {
    /// The tenants stored in `state_dir`; none when the file does not exist yet.
    pub fn open(state_dir: &Path) -> Result<Self, StoreError> {
        let path = state_dir.join("api-tenants.json");
        let list = read_json::<TenantsFile>(&path, WHAT)?
            .map(|file| file.tenants)
            .unwrap_or_default();
        Ok(Self {
            path,
            list: Mutex::new(list),
        })
    }

    /// The tenant whose token this is. Every tenant's hash is compared, each in constant time.
    pub fn resolve(&self, token: &str) -> Option<String> {
        let sent = hash(token);
        let mut found = None;
        for tenant in lock(&self.list).iter() {
            if bool::from(tenant.token_sha256.as_bytes().ct_eq(sent.as_bytes())) {
                found = Some(tenant.id.clone());
            }
        }
        found
    }

    /// One tenant.
    pub fn get(&self, id: &str) -> Option<TenantRecord> {
        lock(&self.list).iter().find(|t| t.id == id).cloned()
    }

    /// Every tenant, by creation.
    pub fn all(&self) -> Vec<TenantRecord> {
        lock(&self.list).clone()
    }

    /// Adds a tenant `id` (already validated) with a new token and ExternalId, stored before
    /// it is answered: the tenant and its token.
    pub fn add(&self, id: &str) -> Result<(TenantRecord, String), AddError> {
        let mut list = lock(&self.list);
        if list.iter().any(|t| t.id == id) {
            return Err(AddError::Taken(id.to_owned()));
        }
        let token = format!("s3ct_{}", hex::encode(rand::random::<[u8; 32]>()));
        let tenant = TenantRecord {
            id: id.to_owned(),
            token_sha256: hash(&token),
            external_id: format!("s3c-{}", hex::encode(rand::random::<[u8; 16]>())),
            created_at: OffsetDateTime::now_utc(),
        };
        let mut changed = list.clone();
        changed.push(tenant.clone());
        self.save(&changed)?;
        *list = changed;
        Ok((tenant, token))
    }

    /// Removes tenant `id`; false when there is none.
    pub fn remove(&self, id: &str) -> Result<bool, StoreError> {
        let mut list = lock(&self.list);
        let changed: Vec<TenantRecord> = list.iter().filter(|t| t.id != id).cloned().collect();
        if changed.len() == list.len() {
            return Ok(false);
        }
        self.save(&changed)?;
        *list = changed;
        Ok(true)
    }

    fn save(&self, tenants: &[TenantRecord]) -> Result<(), StoreError> {
        let file = TenantsFile {
            version: 1,
            tenants: tenants.to_vec(),
        };
        write_json(&self.path, WHAT, &file)
    }
}

/// The SHA-256 of a token, hex.
fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_get_random_tokens_and_external_ids_stored_only_as_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let tenants = Tenants::open(dir.path()).unwrap();
        let (acme, acme_token) = tenants.add("acme").unwrap();
        let (_, beta_token) = tenants.add("beta").unwrap();
        assert!(matches!(tenants.add("acme"), Err(AddError::Taken(_))));
        // 256 bits of token, 128 of ExternalId, in AWS's characters.
        assert_eq!(acme_token.len(), "s3ct_".len() + 64);
        assert_ne!(acme_token, beta_token);
        let id = acme.external_id.strip_prefix("s3c-").unwrap();
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(tenants.resolve(&acme_token).as_deref(), Some("acme"));
        assert_eq!(tenants.resolve(&beta_token).as_deref(), Some("beta"));
        assert_eq!(tenants.resolve("s3ct_guess"), None);
        // The file has the hash, never the token; it survives a restart.
        let file = std::fs::read_to_string(dir.path().join("api-tenants.json")).unwrap();
        assert!(!file.contains(&acme_token) && file.contains(&acme.token_sha256));
        let reopened = Tenants::open(dir.path()).unwrap();
        assert_eq!(reopened.get("acme"), Some(acme));
        assert!(reopened.remove("acme").unwrap());
        assert!(!reopened.remove("acme").unwrap());
        assert_eq!(reopened.resolve(&acme_token), None);
        let ids: Vec<String> = Tenants::open(dir.path())
            .unwrap()
            .all()
            .into_iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(ids, ["beta"]);
    }
}
