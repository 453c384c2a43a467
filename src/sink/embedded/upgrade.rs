//! Upgrading an embedded index written by an earlier s3-connector to the current schema: one
//! made before the `bucket_key` field existed (before the streaming merge of listing and
//! index), before accent folding (its text fields analysed by tantivy's `default` tokenizer, so
//! "cafe" would not find "café"), or before metadata and tags.
//!
//! Such an index has a prefix of today's fields, each as today or differing only in how a text
//! field is analysed (its tokenizer), so its documents can be read with today's field handles,
//! and writing them again analyses their stored text the current way. Every indexed field is
//! stored or derived from stored ones, so a change of analysis (English stemming, #24) upgrades
//! the same way. A document's passages are copied with it (a layout from before passages has
//! none). Documents are copied, alive ones only, into a new index
//! beside the old one (`<dir>.upgrading`), committed, and the directories swapped: the old index
//! stays whole until the new one is complete, so a crash part-way leaves it as it was and the
//! next open starts over. Memory is the writer's budget; time is one pass over the stored
//! documents.

use std::fs;
use std::path::{Path, PathBuf};

use tantivy::collector::DocSetCollector;
use tantivy::directory::error::LockError;
use tantivy::schema::{FieldEntry, FieldType, Schema};
use tantivy::{DocAddress, Index, TantivyDocument, TantivyError};

use super::EmbeddedError;
use super::read::term_query;
use super::schema::{self, Fields};
use super::write::WRITER_HEAP_BYTES;

/// The smallest budget tantivy accepts for a writer; the one taken on the old index only holds
/// its lock.
const LOCK_ONLY_HEAP: usize = 15_000_000;

/// Whether `old` is a layout an earlier s3-connector wrote, which [`upgrade`] turns into
/// `current`: a prefix of its fields, each the same but perhaps for its analysis.
pub(super) fn is_previous(old: &Schema, current: &Schema) -> bool {
    let old: Vec<_> = old.fields().map(|(_, entry)| entry).collect();
    let current: Vec<_> = current.fields().map(|(_, entry)| entry).collect();
    old.len() <= current.len()
        && old
            .iter()
            .zip(&current)
            .all(|(old, new)| analysis_aside(old) == analysis_aside(new))
}

/// `entry` with the tokenizer of a text field left out: two entries equal under this differ at
/// most in how text is analysed, which [`upgrade`] redoes from the stored fields.
fn analysis_aside(entry: &FieldEntry) -> FieldEntry {
    with_tokenizer(entry, |_| Some(""))
}

/// `entry` with the tokenizer `new` answers for its current one, if it is an indexed text
/// field and `new` answers; else `entry` as it is.
pub(super) fn with_tokenizer(
    entry: &FieldEntry,
    new: impl FnOnce(&str) -> Option<&'static str>,
) -> FieldEntry {
    if let FieldType::Str(options) = entry.field_type()
        && let Some(indexing) = options.get_indexing_options()
        && let Some(tokenizer) = new(indexing.tokenizer())
    {
        let indexing = indexing.clone().set_tokenizer(tokenizer);
        return FieldEntry::new_text(
            entry.name().to_owned(),
            options.clone().set_indexing_options(indexing),
        );
    }
    entry.clone()
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
    schema::register_analyzers(&new);
    let mut writer = new
        .writer::<TantivyDocument>(WRITER_HEAP_BYTES)
        .map_err(tantivy_error("upgrading"))?;
    let reader = old.reader().map_err(tantivy_error("upgrading"))?;
    let searcher = reader.searcher();
    let has_passages = old.schema().get_field(schema::PASSAGE_OF).is_ok();
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
        let corrupt = |detail| EmbeddedError::Corrupt {
            path: dir.to_path_buf(),
            detail,
        };
        // A passage is copied with its document, below.
        if has_passages && stored.get_first(fields.passage_of).is_some() {
            continue;
        }
        let mut document = fields.decode(&stored).map_err(corrupt)?;
        if has_passages {
            let query = term_query(fields.passage_of, &document.id.to_hex());
            let addresses = searcher
                .search(&query, &DocSetCollector)
                .map_err(tantivy_error("reading passages to upgrade from"))?;
            for address in addresses {
                let stored: TantivyDocument = searcher
                    .doc(address)
                    .map_err(tantivy_error("reading a passage to upgrade from"))?;
                document
                    .passages
                    .push(fields.decode_passage(&stored).map_err(corrupt)?.1);
            }
            document
                .passages
                .sort_by_key(|stored| stored.passage.ordinal);
        }
        // Every stored document was encodable once; one that is not now is left out, and the
        // next sync writes it again.
        if let Some(encoded) = fields.encode(&document) {
            writer
                .add_document(encoded)
                .map_err(tantivy_error("upgrading"))?;
            for passage in fields.encode_passages(&document) {
                writer
                    .add_document(passage)
                    .map_err(tantivy_error("upgrading"))?;
            }
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
