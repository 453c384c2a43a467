//! Test fixtures for sync scenarios: an S3 client to seed buckets, a connector built from YAML,
//! and a sync run against the embedded index in a temporary directory, or against an OpenSearch
//! index (osmem-server, or a real cluster) with a name of its own.

use std::path::{Path, PathBuf};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::StorageClass;
use s3_connector::config::{self, Config};
use s3_connector::sink::embedded::EmbeddedIndex;
use s3_connector::sink::opensearch::OpensearchSink;
use s3_connector::sink::{AnySink, DocId, Document, SearchHit, Sink, SinkError};
use s3_connector::sync::{Pipeline, SyncReport};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

use crate::support::moto::{ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY};
use crate::support::{OsmemServer, unique_name};

/// The test keys, for clients that bypass the connector.
fn test_credentials() -> Credentials {
    Credentials::new(ACCESS_KEY_ID, SECRET_ACCESS_KEY, None, None, "tests")
}

/// An S3 client for seeding buckets directly, bypassing the connector.
pub fn s3_client(endpoint: &str) -> Client {
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(test_credentials())
        .build();
    Client::from_conf(config)
}

/// An SQS client for creating queues and sending messages directly (moto serves SQS beside S3).
pub fn sqs_client(endpoint: &str) -> aws_sdk_sqs::Client {
    let config = aws_sdk_sqs::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(test_credentials())
        .build();
    aws_sdk_sqs::Client::from_conf(config)
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

/// The index a sync scenario runs against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The embedded index in the setup's temporary directory.
    Embedded,
    /// The shared osmem-server of this test process.
    Osmem,
    /// The cluster at `$OPENSEARCH_URL` (see `opensearch_real.rs`).
    RealOpensearch(String),
}

/// Where a [`Setup`]'s connector writes.
enum Target {
    Embedded,
    /// An index of its own on an OpenSearch cluster; `extra` are lines added to `index:`.
    Opensearch {
        url: String,
        index_name: String,
        extra: String,
    },
}

/// A connector's config plus its own index (directory, or OpenSearch index).
pub struct Setup {
    /// Holds the index (and rule files) until the test ends.
    pub dir: TempDir,
    target: Target,
}

impl Setup {
    /// A fresh temporary directory.
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
            target: Target::Embedded,
        }
    }

    /// A setup writing to a fresh index of the OpenSearch cluster at `url`, with `index_extra`
    /// YAML lines (`  field: value`) added to the `index:` section.
    pub fn opensearch(url: &str, index_extra: &str) -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
            target: Target::Opensearch {
                url: url.to_owned(),
                index_name: unique_name("s3c-e2e"),
                extra: index_extra.to_owned(),
            },
        }
    }

    /// A setup for `backend`, with the backend's defaults.
    pub fn for_backend(backend: &Backend) -> Self {
        match backend {
            Backend::Embedded => Self::new(),
            Backend::Osmem => Self::opensearch(&OsmemServer::shared().url(), ""),
            Backend::RealOpensearch(url) => Self::opensearch(url, &real_cluster_index_lines()),
        }
    }

    /// The OpenSearch index name, when the setup writes to OpenSearch.
    pub fn index_name(&self) -> Option<&str> {
        match &self.target {
            Target::Embedded => None,
            Target::Opensearch { index_name, .. } => Some(index_name),
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
        let (index, index_name) = match &self.target {
            Target::Embedded => (
                format!("  kind: embedded\n  path: {}", self.index_root().display()),
                String::new(),
            ),
            Target::Opensearch {
                url,
                index_name,
                extra,
            } => (
                format!("  kind: opensearch\n  url: {url}\n  max_retries: 3\n{extra}"),
                format!("\n    index_name: {index_name}"),
            ),
        };
        format!(
            "index:\n{index}\nstate_dir: {state_dir}\nconnectors:\n  - id: c{index_name}\n    buckets: [{buckets}]\n    region: {REGION}\n    endpoint_url: {endpoint}\n    aws_access_key_id: {ACCESS_KEY_ID}\n    aws_secret_access_key: {SECRET_ACCESS_KEY}\n    max_attempts: 3\n{extra}\n",
            buckets = buckets.join(", "),
            state_dir = self.dir.path().join("state").display(),
        )
    }

    /// Opens the connector's embedded index (for embedded setups only).
    pub fn index(&self) -> EmbeddedIndex {
        EmbeddedIndex::open_or_create(&self.index_root().join("c")).expect("open index")
    }

    /// Runs one full sync of the config's first connector into its index.
    pub async fn sync(&self, config: &Config) -> SyncReport {
        self.sync_with(config, false).await
    }

    /// [`Setup::sync`], with the mass-delete guard's override (`sync --allow-mass-delete`) set.
    pub async fn sync_with(&self, config: &Config, allow_mass_delete: bool) -> SyncReport {
        let connector = &config.connectors[0];
        let index = AnySink::open(&config.index, connector.index_name())
            .await
            .unwrap_or_else(|e| panic!("open the index: {e}"));
        let pipeline = Pipeline::new(connector).await;
        let cancel = CancellationToken::new();
        s3_connector::with_sink!(&index, sink => pipeline.run(sink, &cancel, allow_mass_delete).await)
    }

    /// The connector's index searched for `query`.
    pub async fn search(&self, query: &str, limit: usize) -> Vec<SearchHit> {
        let index = self.sink().await;
        s3_connector::with_sink!(&index, sink => sink.search(query, limit).await).expect("search")
    }

    /// The connector's OpenSearch index (panics on the embedded index).
    pub async fn opensearch_sink(&self) -> OpensearchSink {
        match self.sink().await {
            AnySink::Opensearch(sink) => sink,
            other => panic!("not an OpenSearch index: {other:?}"),
        }
    }

    /// The indexed document of `bucket/key`, if any.
    pub fn doc(&self, bucket: &str, key: &str) -> Option<Document> {
        let id = DocId::of(bucket, key);
        match self.target {
            Target::Embedded => self.index().get(id).expect("read index"),
            Target::Opensearch { .. } => self
                .on_opensearch(move |sink| async move { sink.get(id).await })
                .expect("read index"),
        }
    }

    /// Number of indexed documents.
    pub fn count(&self) -> u64 {
        match self.target {
            Target::Embedded => self.index().count().expect("count"),
            Target::Opensearch { .. } => self
                .on_opensearch(|sink| async move { sink.count().await })
                .expect("count"),
        }
    }

    /// The connector's index, as the sync opens it.
    pub async fn sink(&self) -> AnySink {
        self.open_sink()
            .await
            .unwrap_or_else(|e| panic!("open the index: {e}"))
    }

    /// Opens the connector's index, returning the error instead of panicking.
    pub async fn open_sink(&self) -> Result<AnySink, SinkError> {
        let config = config::parse(
            &self.config_text("http://127.0.0.1:1", &["unused"], ""),
            Path::new("sink.yml"),
            self.dir.path(),
            &|name| std::env::var(name).ok(),
        )
        .unwrap_or_else(|e| panic!("config invalid: {e}"));
        AnySink::open(&config.index, config.connectors[0].index_name()).await
    }

    /// Runs `read` on the OpenSearch index on a thread of its own, so that the synchronous
    /// helpers above work inside async tests too.
    fn on_opensearch<T, F, Fut>(&self, read: F) -> T
    where
        T: Send,
        F: FnOnce(OpensearchSink) -> Fut + Send,
        Fut: std::future::Future<Output = T>,
    {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("runtime");
                    runtime.block_on(async { read(self.opensearch_sink().await).await })
                })
                .join()
                .expect("reading the OpenSearch index panicked")
        })
    }
}

/// `index:` lines for a real cluster, from the environment: basic auth from
/// `OPENSEARCH_USERNAME`/`OPENSEARCH_PASSWORD` (expanded by the config loader, so the password is
/// never written to the file), `OPENSEARCH_CA_CERT`, and `OPENSEARCH_INSECURE=1`.
fn real_cluster_index_lines() -> String {
    let mut lines = String::new();
    if std::env::var_os("OPENSEARCH_USERNAME").is_some() {
        lines.push_str("  username: ${OPENSEARCH_USERNAME}\n  password: ${OPENSEARCH_PASSWORD}\n");
    }
    if let Some(ca_cert) = std::env::var_os("OPENSEARCH_CA_CERT") {
        lines.push_str(&format!(
            "  ca_cert: {:?}\n",
            Path::new(&ca_cert).display().to_string()
        ));
    }
    if std::env::var("OPENSEARCH_INSECURE").is_ok_and(|v| v == "1" || v == "true") {
        lines.push_str("  tls_insecure_skip_verify: true\n");
    }
    lines
}

/// The path of a file in the repository, for example configs.
pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}
