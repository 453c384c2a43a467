//! Test fixtures for sync scenarios: an S3 client to seed buckets, a connector built from YAML,
//! and a sync run against the embedded index in a temporary directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::StorageClass;
use s3_connector::config::{self, Config};
use s3_connector::sink::embedded::EmbeddedIndex;
use s3_connector::sink::{DocId, Document};
use s3_connector::source::s3::S3Source;
use s3_connector::sync::{self, Counters, SyncContext, SyncReport};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

use crate::support::moto::{ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY};

/// An S3 client for seeding buckets directly, bypassing the connector.
pub fn s3_client(endpoint: &str) -> Client {
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(Credentials::new(
            ACCESS_KEY_ID,
            SECRET_ACCESS_KEY,
            None,
            None,
            "tests",
        ))
        .build();
    Client::from_conf(config)
}

/// Creates `bucket`.
pub async fn create_bucket(client: &Client, bucket: &str) {
    client
        .create_bucket()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create bucket {bucket}: {e:?}"));
}

/// Uploads `body` as `bucket/key`.
pub async fn put(client: &Client, bucket: &str, key: &str, body: impl Into<Vec<u8>>) {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.into()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {bucket}/{key}: {e:?}"));
}

/// Uploads `body` as `bucket/key` in the given storage class.
pub async fn put_with_class(
    client: &Client,
    bucket: &str,
    key: &str,
    body: &str,
    class: StorageClass,
) {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .storage_class(class)
        .body(ByteStream::from(body.as_bytes().to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {bucket}/{key}: {e:?}"));
}

/// Deletes `bucket/key`.
pub async fn delete(client: &Client, bucket: &str, key: &str) {
    client
        .delete_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("delete {bucket}/{key}: {e:?}"));
}

/// A connector's config plus its own index directory.
pub struct Setup {
    /// Holds the index (and rule files) until the test ends.
    pub dir: TempDir,
}

impl Setup {
    /// A fresh temporary directory.
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// Where the embedded index lives.
    pub fn index_root(&self) -> PathBuf {
        self.dir.path().join("index")
    }

    /// Writes `config.yml` for one connector `c` reading `buckets` through `endpoint`, with
    /// `extra` YAML lines added to the connector (each indented by the caller's choice of
    /// `    field: value`), and parses it.
    pub fn config(&self, endpoint: &str, buckets: &[&str], extra: &str) -> Config {
        let text = self.config_text(endpoint, buckets, extra);
        let path = self.dir.path().join("config.yml");
        std::fs::write(&path, &text).expect("write config");
        config::load(&path).unwrap_or_else(|e| panic!("config invalid: {e}\n{text}"))
    }

    /// The YAML text [`Setup::config`] writes.
    pub fn config_text(&self, endpoint: &str, buckets: &[&str], extra: &str) -> String {
        let buckets: Vec<String> = buckets.iter().map(|b| format!("{b:?}")).collect();
        format!(
            "index:\n  kind: embedded\n  path: {index}\nconnectors:\n  - id: c\n    buckets: [{buckets}]\n    region: {REGION}\n    endpoint_url: {endpoint}\n    aws_access_key_id: {ACCESS_KEY_ID}\n    aws_secret_access_key: {SECRET_ACCESS_KEY}\n    max_attempts: 3\n{extra}\n",
            index = self.index_root().display(),
            buckets = buckets.join(", "),
        )
    }

    /// Opens the connector's index.
    pub fn index(&self) -> EmbeddedIndex {
        EmbeddedIndex::open_or_create(&self.index_root().join("c")).expect("open index")
    }

    /// Runs one full sync of the config's first connector into its index.
    pub async fn sync(&self, config: &Config) -> SyncReport {
        let connector = &config.connectors[0];
        let sdk_config = s3_connector::credentials::sdk_config(connector).await;
        let source = S3Source::new(connector, &sdk_config);
        let index = self.index();
        let counters = Arc::new(Counters::default());
        sync::sync_connector(&SyncContext {
            connector,
            source: &source,
            sink: &index,
            counters: &counters,
            cancel: &CancellationToken::new(),
        })
        .await
    }

    /// The indexed document of `bucket/key`, if any.
    pub fn doc(&self, bucket: &str, key: &str) -> Option<Document> {
        self.index()
            .get(DocId::of(bucket, key))
            .expect("read index")
    }

    /// Number of indexed documents.
    pub fn count(&self) -> u64 {
        self.index().count().expect("count")
    }
}

/// The path of a file in the repository, for example configs.
pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}
