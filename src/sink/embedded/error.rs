//! The errors of the embedded index; every message names the index directory.

use std::path::{Path, PathBuf};

use tantivy::TantivyError;

/// Errors of the embedded index. Every message names the index directory.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// The index directory could not be created.
    #[error("cannot create the index directory {path}: {cause}")]
    CreateDir {
        /// The index directory.
        path: PathBuf,
        /// Why creation failed.
        cause: std::io::Error,
    },

    /// The directory holds an index written with another schema.
    #[error(
        "the index at {path} was written with a different layout than this version of \
         s3-connector uses; move the directory aside (or delete it) and run a sync to rebuild it"
    )]
    SchemaMismatch {
        /// The index directory.
        path: PathBuf,
    },

    /// Another writer (usually another s3-connector process) holds the index's write lock.
    #[error(
        "another s3-connector process holds the index at {path} for writing; wait for it to \
         finish (or stop it) and try again"
    )]
    Locked {
        /// The index directory.
        path: PathBuf,
    },

    /// A tantivy operation failed.
    #[error("{action} the index at {path} failed: {cause}")]
    Tantivy {
        /// What was being done, as a phrase ("opening", "committing to", ...).
        action: &'static str,
        /// The index directory.
        path: PathBuf,
        /// The tantivy error.
        cause: TantivyError,
    },

    /// A file recording the index's source or model could not be read or written.
    #[error("cannot {action} the record {path}: {detail}")]
    SourceRecord {
        /// "read" or "write".
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },

    /// A search the index cannot answer as asked.
    #[error("cannot search the index at {path}: {detail}")]
    Search {
        /// The index directory.
        path: PathBuf,
        /// What is wrong with the search.
        detail: String,
    },

    /// The index holds data this module cannot have written.
    #[error(
        "the index at {path} is damaged ({detail}); delete the directory and run a sync to \
         rebuild it"
    )]
    Corrupt {
        /// The index directory.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },

    /// An earlier write panicked while holding the writer, which may now be half-updated.
    #[error(
        "an earlier write to the index at {path} crashed; restart s3-connector (writes since \
         the last commit are lost and the next sync redoes them)"
    )]
    WriterPoisoned {
        /// The index directory.
        path: PathBuf,
    },

    /// The blocking task running an index operation panicked or was cancelled.
    #[error("the background task working on the index at {path} failed: {cause}")]
    Task {
        /// The index directory.
        path: PathBuf,
        /// The join error.
        cause: tokio::task::JoinError,
    },
}

impl EmbeddedError {
    /// Turns a tantivy error of `action` on the index in `path` into ours.
    pub(super) fn tantivy(
        path: &Path,
        action: &'static str,
    ) -> impl FnOnce(TantivyError) -> EmbeddedError + use<> {
        let path = path.to_path_buf();
        move |cause| EmbeddedError::Tantivy {
            action,
            path,
            cause,
        }
    }
}
