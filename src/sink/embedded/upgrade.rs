//! Upgrading an embedded index written before the `bucket_key` field existed (s3-connector
//! before the streaming merge of listing and index) to the current schema.
//!
//! Such an index has every field of today's schema but the last, so its documents can be read
//! with today's field handles. They are copied, alive ones only, into a new index beside the old
//! one (`<dir>.upgrading`), committed, and the directories swapped: the old index stays whole
//! until the new one is complete, so a crash part-way leaves it as it was and the next open
//! starts over. Memory is the writer's budget; time is one pass over the stored documents.

use std::fs;
use std::path::{Path, PathBuf};

use tantivy::directory::error::LockError;
use tantivy::schema::Schema;
use tantivy::{DocAddress, Index, TantivyDocument, TantivyError};

use super::EmbeddedError;
use super::schema::Fields;
use super::write::WRITER_HEAP_BYTES;

/// The smallest budget tantivy accepts for a writer; the one taken on the old index only holds
/// its lock.
const LOCK_ONLY_HEAP: usize = 15_000_000;

/// Whether `old` is today's schema without its last field (`bucket_key`).
pub(super) fn is_previous(old: &Schema, current: &Schema) -> bool {
    let old: Vec<_> = old.fields().map(|(_, entry)| entry).collect();
    let current: Vec<_> = current.fields().map(|(_, entry)| entry).collect();
    old.len() + 1 == current.len() && old.iter().zip(&current).all(|(a, b)| a == b)
}

/// Rewrites the index in `dir` (opened as `old`) with `schema`; returns how many documents it
/// copied.
pub(super) fn upgrade(
    dir: &Path,
    old: Index,
    schema: &Schema,
    fields: &Fields,
) -> Result<u64, EmbeddedError> {
    let tantivy_error = |action| EmbeddedError::tantivy(dir, action);
    let io_error = |action: &'static str| {
        let tantivy_error = tantivy_error(action);
        move |cause: std::io::Error| tantivy_error(TantivyError::from(cause))
    };
    // The old index's write lock keeps another process from writing it while it is copied.
    let lock = old
        .writer_with_num_threads::<TantivyDocument>(1, LOCK_ONLY_HEAP)
        .map_err(|cause| match cause {
            TantivyError::LockFailure(LockError::LockBusy, _) => EmbeddedError::Locked {
                path: dir.to_path_buf(),
            },
            cause => tantivy_error("upgrading")(cause),
        })?;
    let staging = sibling(dir, "upgrading");
    let retired = sibling(dir, "previous");
    for leftover in [&staging, &retired] {
        if leftover.exists() {
            fs::remove_dir_all(leftover).map_err(io_error("removing a leftover upgrade of"))?;
        }
    }
    fs::create_dir_all(&staging).map_err(io_error("upgrading"))?;
    let new = Index::create_in_dir(&staging, schema.clone()).map_err(tantivy_error("upgrading"))?;
    let mut writer = new
        .writer::<TantivyDocument>(WRITER_HEAP_BYTES)
        .map_err(tantivy_error("upgrading"))?;
    let reader = old.reader().map_err(tantivy_error("upgrading"))?;
    let searcher = reader.searcher();
    let mut copied = 0;
    let alive = searcher
        .segment_readers()
        .iter()
        .enumerate()
        .flat_map(|(ordinal, segment)| {
            segment
                .doc_ids_alive()
                .map(move |doc| DocAddress::new(ordinal as u32, doc))
        });
    for address in alive {
        let stored: TantivyDocument = searcher
            .doc(address)
            .map_err(tantivy_error("reading a document to upgrade from"))?;
        let document = fields
            .decode(&stored)
            .map_err(|detail| EmbeddedError::Corrupt {
                path: dir.to_path_buf(),
                detail,
            })?;
        // Every stored document was encodable once; one that is not now is left out, and the
        // next sync writes it again.
        if let Some(encoded) = fields.encode(&document) {
            writer
                .add_document(encoded)
                .map_err(tantivy_error("upgrading"))?;
            copied += 1;
        }
    }
    writer.commit().map_err(tantivy_error("upgrading"))?;
    writer
        .wait_merging_threads()
        .map_err(tantivy_error("upgrading"))?;
    drop((reader, lock, old));
    fs::rename(dir, &retired).map_err(io_error("upgrading"))?;
    fs::rename(&staging, dir).map_err(io_error("upgrading"))?;
    fs::remove_dir_all(&retired).map_err(io_error("removing the pre-upgrade copy of"))?;
    Ok(copied)
}

/// `<dir>.<suffix>`, beside `dir`.
fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(suffix);
    dir.with_file_name(name)
}
