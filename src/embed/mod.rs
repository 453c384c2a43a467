//! Embedding: a document's extracted text cut into passages, and each passage turned into a
//! vector by a model, so that the index can be searched by meaning as well as by words.
//!
//! The stage sits between [`extract`](crate::extract) and [`sink`](crate::sink): it knows text,
//! tokens and vectors, nothing of S3 or of an index. [`Passage`] is what a sink stores and a
//! search returns; [`Embedder`] is the one seam every provider (the local model, an
//! OpenAI-compatible endpoint, the fakes of the tests) sits behind.

pub mod local;
pub mod openai;
mod passage;
pub mod pool;
pub mod tokens;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use crate::config::embedding::{EmbeddingProvider, EmbeddingSettings};
pub use passage::passages_of;

/// The content hash of one passage's text: what lets a re-sync reuse the vector of a passage
/// whose text (and model) did not change. md5 of the UTF-8 text, as 16 raw bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PassageHash([u8; 16]);

impl PassageHash {
    /// The hash of this passage text.
    pub fn of(text: &str) -> Self {
        Self(Md5::digest(text.as_bytes()).into())
    }

    /// The 32 lowercase hex characters a sink stores.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses the 32-hex-character form; `None` for anything else.
    pub fn from_hex(hex_hash: &str) -> Option<Self> {
        let mut bytes = [0u8; 16];
        hex::decode_to_slice(hex_hash, &mut bytes).ok()?;
        Some(Self(bytes))
    }
}

impl fmt::Debug for PassageHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PassageHash({})", self.to_hex())
    }
}

/// One passage of a document's text: a span that fits the model's token budget. A search hit
/// carries it too (its JSON: every field but the content hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Passage {
    /// Its place among the document's passages, from 0.
    pub ordinal: u32,
    /// Where it starts in the document's text (`Document::body`), in bytes.
    pub start: usize,
    /// Where it ends (exclusive) in the document's text, in bytes.
    pub end: usize,
    /// The headings above it, outermost first, joined with " > ", where extraction knows them.
    pub heading: Option<String>,
    /// The page it starts on (from 1), where extraction knows pages.
    pub page: Option<u32>,
    /// The text: `body[start..end]`, whole, as a language model is handed it (a hit's snippet
    /// is only the part around the matched words).
    pub text: String,
    /// [`PassageHash::of`] the text.
    #[serde(skip)]
    pub content_hash: PassageHash,
}

/// The model that made an index's vectors: a sync with another one is refused unless it
/// re-embeds everything.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbeddingModel {
    /// The model's name as configured (`sentence-transformers/all-MiniLM-L6-v2`, or the
    /// endpoint's `model`), with the provider: `local:all-MiniLM-L6-v2`.
    pub id: String,
    /// Components of every vector.
    pub dimensions: usize,
}

impl fmt::Display for EmbeddingModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} dimensions)", self.id, self.dimensions)
    }
}

/// A boxed future of an [`Embedder`]: providers are chosen at run time, so the trait is used
/// as `dyn Embedder`.
pub type EmbedFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<Vec<f32>>, EmbedError>> + Send + 'a>>;

/// Turns texts into vectors with one model.
pub trait Embedder: Send + Sync {
    /// The model, as the index records it.
    fn model(&self) -> &EmbeddingModel;

    /// Tokens of `text` as the model counts them: what passages are budgeted in.
    fn count_tokens(&self, text: &str) -> usize;

    /// One L2-normalised vector of [`EmbeddingModel::dimensions`] per text, in order. A
    /// provider answering another count or length of vectors is an error for the whole call.
    fn embed<'a>(&'a self, texts: &'a [String]) -> EmbedFuture<'a>;

    /// Requests to a remote provider retried so far after transient errors (0 for a local
    /// model). The sync reports the difference over its run as `embedding_retries`.
    fn retries(&self) -> u64 {
        0
    }
}

/// Why embedding failed.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The model could not be loaded or run.
    #[error("embedding model: {0}")]
    Model(String),
    /// The endpoint failed or answered something unusable (after retries).
    #[error("embedding endpoint: {0}")]
    Endpoint(String),
    /// The provider answered the wrong number or length of vectors.
    #[error("the embedding provider answered {got}, expected {expected}")]
    Shape {
        /// What was expected ("3 vectors of 384").
        expected: String,
        /// What came ("2 vectors").
        got: String,
    },
}

/// Embeds `texts` in calls of at most `batch` texts, one call after another, with the vectors
/// in the order of the texts: how a provider splits what it is given into what its model or
/// endpoint takes at once.
async fn in_batches<'a, F, Call>(
    texts: &'a [String],
    batch: usize,
    mut embed_batch: F,
) -> Result<Vec<Vec<f32>>, EmbedError>
where
    F: FnMut(&'a [String]) -> Call,
    Call: Future<Output = Result<Vec<Vec<f32>>, EmbedError>>,
{
    let mut vectors = Vec::with_capacity(texts.len());
    for texts in texts.chunks(batch.max(1)) {
        vectors.extend(embed_batch(texts).await?);
    }
    Ok(vectors)
}

/// The embedder a connector's `embedding:` block configures; `None` without one. Loads the
/// model (or prepares the endpoint's client) and checks, before anything is written, that the
/// configured dimensions and passage budget fit the model.
pub fn for_connector(
    settings: Option<&EmbeddingSettings>,
) -> Result<Option<std::sync::Arc<dyn Embedder>>, EmbedError> {
    let Some(settings) = settings else {
        return Ok(None);
    };
    let embedder: std::sync::Arc<dyn Embedder> = match &settings.provider {
        EmbeddingProvider::Local {
            model_dir,
            dimensions,
        } => {
            let local = local::LocalEmbedder::load(model_dir, settings.threads)?;
            let model = local.model();
            if let Some(configured) = dimensions
                && *configured != model.dimensions
            {
                return Err(EmbedError::Model(format!(
                    "embedding.dimensions is {configured}, but the model in {} makes vectors \
                     of {} ({})",
                    model_dir.display(),
                    model.dimensions,
                    model.id
                )));
            }
            if settings.passages.max_tokens > local.window() {
                return Err(EmbedError::Model(format!(
                    "embedding.max_tokens is {}, but the model in {} reads {} word pieces at \
                     most: longer passages would be cut",
                    settings.passages.max_tokens,
                    model_dir.display(),
                    local.window()
                )));
            }
            std::sync::Arc::new(local)
        }
        EmbeddingProvider::Openai { .. } => {
            std::sync::Arc::new(openai::OpenaiEmbedder::new(&settings.provider)?)
        }
    };
    Ok(Some(embedder))
}

/// What builds an embedder from an `embedding:` block: [`for_connector`], or a stand-in that
/// tests count loads through.
pub type Loader =
    fn(Option<&EmbeddingSettings>) -> Result<Option<std::sync::Arc<dyn Embedder>>, EmbedError>;

/// `load` (usually [`for_connector`]) of `settings` on tokio's blocking pool, for async
/// callers: reading a model's weights and starting its threads must not hold a thread of the
/// runtime.
pub async fn load_blocking(
    load: Loader,
    settings: Option<&EmbeddingSettings>,
) -> Result<Option<std::sync::Arc<dyn Embedder>>, EmbedError> {
    let settings = settings.cloned();
    tokio::task::spawn_blocking(move || load(settings.as_ref()))
        .await
        .map_err(|error| EmbedError::Model(format!("loading the model stopped: {error}")))?
}

/// Deterministic embedders for tests of the code around the seam (sync, sinks, search):
/// never a stand-in for the real model's tests.
#[doc(hidden)]
pub mod testing {
    use std::hash::{Hash, Hasher};
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::{EmbedError, EmbedFuture, Embedder, EmbeddingModel};

    /// Bag of lowercased words hashed into `dimensions` buckets, L2-normalised: texts sharing
    /// words have a positive cosine. Counts the texts it embedded; fails every call whose texts
    /// contain `fail_on`, when set.
    pub struct WordHashEmbedder {
        model: EmbeddingModel,
        /// Texts embedded so far.
        pub embedded: AtomicUsize,
        /// A word that makes a call fail.
        pub fail_on: Option<String>,
    }

    impl WordHashEmbedder {
        /// An embedder of `dimensions` components named `test:word-hash`.
        pub fn new(dimensions: usize) -> Self {
            Self {
                model: EmbeddingModel {
                    id: "test:word-hash".into(),
                    dimensions,
                },
                embedded: AtomicUsize::new(0),
                fail_on: None,
            }
        }

        /// The vector of one text.
        pub fn vector(&self, text: &str) -> Vec<f32> {
            let mut vector = vec![0f32; self.model.dimensions];
            for word in text
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
            {
                #[allow(deprecated)]
                let mut hasher = std::hash::SipHasher::new();
                word.to_lowercase().hash(&mut hasher);
                vector[(hasher.finish() % self.model.dimensions as u64) as usize] += 1.0;
            }
            let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
            if norm > 0.0 {
                vector.iter_mut().for_each(|x| *x /= norm);
            }
            vector
        }
    }

    impl Embedder for WordHashEmbedder {
        fn model(&self) -> &EmbeddingModel {
            &self.model
        }

        fn count_tokens(&self, text: &str) -> usize {
            text.split_whitespace().count()
        }

        fn embed<'a>(&'a self, texts: &'a [String]) -> EmbedFuture<'a> {
            Box::pin(async move {
                if let Some(word) = &self.fail_on
                    && texts.iter().any(|text| text.contains(word.as_str()))
                {
                    return Err(EmbedError::Endpoint(format!("refused text with `{word}`")));
                }
                self.embedded.fetch_add(texts.len(), Ordering::Relaxed);
                Ok(texts.iter().map(|text| self.vector(text)).collect())
            })
        }
    }
}
