//! A connector's embedder, loaded once and shared: the syncs (scheduled or started through the
//! API), the event consumer and the API's search of one connector use one `Arc<dyn Embedder>`,
//! built on first use from the connector's `embedding:` block and kept while the block stays the
//! same. An update that changes the block, or the connector's deletion, drops it; whoever still
//! holds it (a sync in flight) finishes with it.
//!
//! Loading (the local model: its weights read from disk and its thread pool started) runs on the
//! blocking pool, never on the async runtime's threads, and users that come while it loads wait
//! for that one load. A load that fails is not kept: the next user tries again, and each gets
//! the error. Not for: the CLI, whose commands load a model once per process.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::OnceCell;

use crate::config::embedding::EmbeddingSettings;
use crate::embed::{EmbedError, Embedder};

/// One load of one `embedding:` block: empty until it succeeded.
type Load = Arc<OnceCell<Arc<dyn Embedder>>>;

/// What builds an embedder from an `embedding:` block: `embed::for_connector` in the worker
/// (the tests count loads through it).
pub(crate) use crate::embed::Loader;

/// The embedder of one connector, once loaded, with the block it was loaded from.
#[derive(Default)]
pub(crate) struct LoadedEmbedder {
    current: Mutex<Option<(EmbeddingSettings, Load)>>,
}

impl fmt::Debug for LoadedEmbedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let loaded = self
            .lock()
            .as_ref()
            .is_some_and(|(_, load)| load.initialized());
        f.debug_struct("LoadedEmbedder")
            .field("loaded", &loaded)
            .finish()
    }
}

impl LoadedEmbedder {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(EmbeddingSettings, Load)>> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The embedder of `settings`: the one kept when it was loaded from the same block, else
    /// one built now by `load` on the blocking pool (which replaces the one kept, and calls
    /// `loaded` once it succeeded).
    pub(crate) async fn get(
        &self,
        settings: &EmbeddingSettings,
        load: Loader,
        loaded: impl FnOnce(),
    ) -> Result<Arc<dyn Embedder>, EmbedError> {
        let cell = {
            let mut current = self.lock();
            match current.as_ref() {
                Some((kept, cell)) if kept == settings => Arc::clone(cell),
                _ => {
                    let cell = Load::default();
                    *current = Some((settings.clone(), Arc::clone(&cell)));
                    cell
                }
            }
        };
        let embedder = cell
            .get_or_try_init(|| async {
                let built = crate::embed::load_blocking(load, Some(settings))
                    .await?
                    .ok_or_else(|| {
                        EmbedError::Model("the embedding block configures no model".to_owned())
                    })?;
                loaded();
                Ok::<_, EmbedError>(built)
            })
            .await?;
        Ok(Arc::clone(embedder))
    }

    /// Drops the embedder kept (the connector's block changed, or the connector was deleted).
    pub(crate) fn clear(&self) {
        self.lock().take();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::config::embedding::{EmbeddingProvider, PassageSettings};
    use crate::embed::testing::WordHashEmbedder;

    /// Loads counted by the loaders below (one counter per test: tests run in parallel).
    static SLOW_LOADS: AtomicUsize = AtomicUsize::new(0);
    static FLAKY_LOADS: AtomicUsize = AtomicUsize::new(0);
    static KEYED_LOADS: AtomicUsize = AtomicUsize::new(0);

    fn settings(batch_size: usize) -> EmbeddingSettings {
        EmbeddingSettings {
            provider: EmbeddingProvider::Openai {
                endpoint_url: "http://127.0.0.1:9/v1".into(),
                model: "fake".into(),
                api_key: None,
                dimensions: 8,
                batch_size,
                requests_per_second: 0,
                tokenizer: None,
            },
            passages: PassageSettings::default(),
            threads: 1,
        }
    }

    fn word_hash() -> Result<Option<Arc<dyn Embedder>>, EmbedError> {
        Ok(Some(Arc::new(WordHashEmbedder::new(8))))
    }

    /// Takes a while (the blocking pool's thread sleeps), so that users arrive during the load.
    fn slow(_: Option<&EmbeddingSettings>) -> Result<Option<Arc<dyn Embedder>>, EmbedError> {
        SLOW_LOADS.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(200));
        word_hash()
    }

    /// Fails the first time.
    fn flaky(_: Option<&EmbeddingSettings>) -> Result<Option<Arc<dyn Embedder>>, EmbedError> {
        if FLAKY_LOADS.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(EmbedError::Model("model.safetensors is missing".into()));
        }
        word_hash()
    }

    fn keyed(_: Option<&EmbeddingSettings>) -> Result<Option<Arc<dyn Embedder>>, EmbedError> {
        KEYED_LOADS.fetch_add(1, Ordering::SeqCst);
        word_hash()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn users_arriving_during_the_load_share_it() {
        let loaded = Arc::new(LoadedEmbedder::default());
        let block = settings(32);
        let reported = Arc::new(AtomicUsize::new(0));
        let users: Vec<_> = (0..8)
            .map(|_| {
                let (loaded, block, reported) =
                    (Arc::clone(&loaded), block.clone(), Arc::clone(&reported));
                tokio::spawn(async move {
                    loaded
                        .get(&block, slow, || {
                            reported.fetch_add(1, Ordering::SeqCst);
                        })
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut embedders = Vec::new();
        for user in users {
            embedders.push(user.await.unwrap());
        }
        assert_eq!(SLOW_LOADS.load(Ordering::SeqCst), 1);
        assert_eq!(reported.load(Ordering::SeqCst), 1);
        assert!(embedders.iter().all(|e| Arc::ptr_eq(e, &embedders[0])));
    }

    #[tokio::test]
    async fn a_failed_load_is_not_kept() {
        let loaded = LoadedEmbedder::default();
        let block = settings(32);
        let error = loaded.get(&block, flaky, || ()).await.err().unwrap();
        assert_eq!(
            error.to_string(),
            "embedding model: model.safetensors is missing"
        );
        let first = loaded.get(&block, flaky, || ()).await.unwrap();
        let again = loaded.get(&block, flaky, || ()).await.unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(FLAKY_LOADS.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn another_block_loads_anew_and_clear_drops_the_one_kept() {
        let loaded = LoadedEmbedder::default();
        let first = loaded.get(&settings(32), keyed, || ()).await.unwrap();
        let same = loaded.get(&settings(32), keyed, || ()).await.unwrap();
        assert!(Arc::ptr_eq(&first, &same));
        assert_eq!(KEYED_LOADS.load(Ordering::SeqCst), 1);

        let other = loaded.get(&settings(16), keyed, || ()).await.unwrap();
        assert!(!Arc::ptr_eq(&first, &other));
        assert_eq!(KEYED_LOADS.load(Ordering::SeqCst), 2);

        // Kept by `loaded` and by its users only: once they and `clear` let go, it is gone.
        let kept = Arc::downgrade(&other);
        drop((first, same, other));
        assert!(kept.upgrade().is_some());
        loaded.clear();
        assert!(kept.upgrade().is_none());
        loaded.get(&settings(16), keyed, || ()).await.unwrap();
        assert_eq!(KEYED_LOADS.load(Ordering::SeqCst), 3);
    }

    static WORKER_LOADS: AtomicUsize = AtomicUsize::new(0);

    fn counted(
        settings: Option<&EmbeddingSettings>,
    ) -> Result<Option<Arc<dyn Embedder>>, EmbedError> {
        WORKER_LOADS.fetch_add(1, Ordering::SeqCst);
        crate::embed::for_connector(settings)
    }

    /// The connector `docs` of a config with an `openai` embedding block of this batch size
    /// (its client is made without calling the endpoint).
    fn config(dir: &std::path::Path, batch_size: usize) -> crate::config::Config {
        let text = format!(
            "index:\n  kind: embedded\n  path: {index}\nstate_dir: {state}\ndefaults:\n  region: us-east-1\nconnectors:\n  - id: docs\n    buckets: [docs]\n    embedding:\n      provider: openai\n      endpoint_url: http://127.0.0.1:9/v1\n      model: fake\n      dimensions: 8\n      batch_size: {batch_size}\n",
            index = dir.join("index").display(),
            state = dir.join("state").display(),
        );
        crate::testing::config_of(&text)
    }

    fn loads_metric(shared: &super::super::Shared) -> String {
        shared
            .metrics
            .render()
            .lines()
            .find(|line| line.starts_with("s3c_embedding_model_loads_total{connector=\"docs\"}"))
            .map(|line| line.rsplit(' ').next().unwrap().to_owned())
            .unwrap_or_default()
    }

    /// The worker's own path: searches and syncs of one connector share one load; an update
    /// of the block drops it and the next user loads the new one; an update of anything else
    /// keeps it; a sync that started before the update loads the old block for itself only;
    /// deleting the connector drops it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connector_loads_its_block_once_and_again_only_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let first = config(dir.path(), 32);
        let shards = crate::sync::ConfigShards::whole(&first);
        let mut worker = super::super::Worker::new(first, shards).unwrap();
        Arc::get_mut(&mut worker.shared).unwrap().loader = counted;
        let shared = worker.shared;
        let entry = shared.entry("docs").unwrap();
        assert_eq!(loads_metric(&shared), "0");

        let before = entry.connector();
        let users: Vec<_> = (0..4)
            .map(|_| {
                let (shared, entry) = (Arc::clone(&shared), Arc::clone(&entry));
                tokio::spawn(async move {
                    shared
                        .embedder(&entry, &entry.connector())
                        .await
                        .unwrap()
                        .unwrap()
                })
            })
            .collect();
        let mut first = Vec::new();
        for user in users {
            first.push(user.await.unwrap());
        }
        assert!(first.iter().all(|e| Arc::ptr_eq(e, &first[0])));
        assert_eq!(WORKER_LOADS.load(Ordering::SeqCst), 1);
        assert_eq!(loads_metric(&shared), "1");
        let old = Arc::downgrade(&first[0]);
        drop(first);

        // Another block: the kept embedder goes at once, the next user loads the new one.
        let changed = config(dir.path(), 16).connectors.remove(0);
        shared.update(&entry, changed, super::super::Origin::File);
        assert!(old.upgrade().is_none(), "the old block's embedder is kept");
        let new = shared.embedder(&entry, &entry.connector()).await.unwrap();
        let new = new.unwrap();
        assert_eq!(WORKER_LOADS.load(Ordering::SeqCst), 2);
        assert_eq!(loads_metric(&shared), "2");

        // The same block with another schedule: kept.
        let mut same = config(dir.path(), 16).connectors.remove(0);
        same.sync_on_start = !same.sync_on_start;
        shared.update(&entry, same, super::super::Origin::File);
        let kept = shared.embedder(&entry, &entry.connector()).await.unwrap();
        assert!(Arc::ptr_eq(&new, &kept.unwrap()));
        assert_eq!(WORKER_LOADS.load(Ordering::SeqCst), 2);

        // A sync that started before the update: the old block, for it only.
        let stale = shared.embedder(&entry, &before).await.unwrap().unwrap();
        assert!(!Arc::ptr_eq(&new, &stale));
        assert_eq!(WORKER_LOADS.load(Ordering::SeqCst), 3);
        let kept = shared.embedder(&entry, &entry.connector()).await.unwrap();
        assert!(Arc::ptr_eq(&new, &kept.unwrap()));
        assert_eq!(WORKER_LOADS.load(Ordering::SeqCst), 3);

        // Deleted: dropped once its users let go.
        let last = Arc::downgrade(&new);
        drop((new, stale));
        shared.remove("docs");
        assert!(
            last.upgrade().is_none(),
            "a deleted connector's embedder is kept"
        );
    }
}
