//! Tests of the embedded index on temporary directories.

use std::collections::HashMap;

use tantivy::TantivyDocument;

use time::{OffsetDateTime, UtcOffset};

use super::*;
use crate::sink::{ContentStatus, IndexedEntry, PassageHit, PassageQuery, ScanFrom};

fn at_millis(millis: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000).unwrap()
}

/// A document with every optional field but `extraction_error` set.
fn full_doc(bucket: &str, key: &str, body: &str) -> Document {
    crate::sink::memory::full_document(bucket, key, body)
}

/// An index holding `documents`, committed; one writer thread makes one segment per commit.
async fn index_with(dir: &Path, documents: Vec<Document>) -> EmbeddedIndex {
    let index = EmbeddedIndex::open(dir, Some(1)).unwrap();
    assert!(index.upsert(documents).await.unwrap().is_empty());
    index.commit().await.unwrap();
    index
}

#[tokio::test]
async fn committed_documents_round_trip_through_get() {
    let dir = tempfile::tempdir().unwrap();
    let mut full = full_doc("bucket-a", "docs/Report 2024.PDF", "quarterly numbers");
    full.content_status = ContentStatus::Error;
    full.extraction_error = Some("pdf: encrypted".to_owned());
    (full.attributes, _) = crate::sink::Attributes::capped(
        [("author".to_owned(), "Zoë".to_owned())],
        [("Project".to_owned(), "Apollo 11".to_owned())],
    );
    // Nanoseconds and a non-UTC offset: the stored instant must survive exactly.
    full.indexed_at = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789)
        .unwrap()
        .to_offset(UtcOffset::from_hms(2, 0, 0).unwrap());
    let bare = Document {
        content_type: None,
        storage_class: None,
        title: None,
        body: None,
        extraction_error: None,
        content_status: ContentStatus::Archived,
        size_in_bytes: u64::MAX,
        ..full_doc("bucket-b", "cold/archive.tar", "")
    };
    let mut empty_strings = full_doc("bucket-b", "empty", "");
    empty_strings.title = Some(String::new());
    empty_strings.content_type = Some(String::new());

    let index = index_with(
        dir.path(),
        vec![full.clone(), bare.clone(), empty_strings.clone()],
    )
    .await;

    assert_eq!(index.count().unwrap(), 3);
    assert_eq!(index.get(full.id).unwrap(), Some(full));
    assert_eq!(index.get(bare.id).unwrap(), Some(bare));
    assert_eq!(index.get(empty_strings.id).unwrap(), Some(empty_strings));
    assert_eq!(index.get(DocId::of("bucket-a", "absent")).unwrap(), None);
}

#[tokio::test]
async fn upserting_an_id_again_replaces_the_document() {
    let dir = tempfile::tempdir().unwrap();
    let first = full_doc("b", "notes.txt", "old text");
    let index = index_with(dir.path(), vec![first.clone()]).await;

    let mut second = first.clone();
    second.body = Some("new text".to_owned());
    second.etag = "\"new\"".to_owned();
    index.upsert(vec![second.clone()]).await.unwrap();
    index.commit().await.unwrap();

    assert_eq!(index.count().unwrap(), 1);
    assert_eq!(index.get(first.id).unwrap(), Some(second.clone()));

    // Twice in one batch: the later one wins.
    let mut third = second.clone();
    third.etag = "\"third\"".to_owned();
    index.upsert(vec![second, third.clone()]).await.unwrap();
    index.commit().await.unwrap();
    assert_eq!(index.count().unwrap(), 1);
    assert_eq!(index.get(first.id).unwrap(), Some(third));
}

#[tokio::test]
async fn deletes_take_effect_on_commit() {
    let dir = tempfile::tempdir().unwrap();
    let kept = full_doc("b", "kept.txt", "kept");
    let gone = full_doc("b", "gone.txt", "gone");
    let index = index_with(dir.path(), vec![kept.clone(), gone.clone()]).await;

    index
        .delete(vec![gone.id, DocId::of("b", "never-indexed")])
        .await
        .unwrap();
    assert_eq!(index.get(gone.id).unwrap(), Some(gone.clone()));

    index.commit().await.unwrap();
    assert_eq!(index.count().unwrap(), 1);
    assert_eq!(index.get(gone.id).unwrap(), None);
    assert_eq!(index.get(kept.id).unwrap(), Some(kept));
}

#[tokio::test]
async fn new_documents_are_inserted_without_a_delete_and_replaced_later() {
    let dir = tempfile::tempdir().unwrap();
    let index = EmbeddedIndex::open(dir.path(), Some(1)).unwrap();
    let first = full_doc("b", "a.txt", "first words");
    let other = full_doc("b", "b.txt", "other words");
    assert!(
        index
            .insert_new(vec![first.clone(), other.clone()])
            .await
            .unwrap()
            .is_empty()
    );
    index.commit().await.unwrap();
    assert_eq!(index.count().unwrap(), 2);
    assert_eq!(index.get(first.id).unwrap(), Some(first.clone()));

    // An update replaces the inserted copy: one document, the new text.
    let second = full_doc("b", "a.txt", "second words");
    index.upsert(vec![second.clone()]).await.unwrap();
    index.commit().await.unwrap();
    assert_eq!(index.count().unwrap(), 2);
    assert_eq!(index.get(first.id).unwrap(), Some(second));
    assert!(index.search("first", 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn uncommitted_writes_are_invisible() {
    let dir = tempfile::tempdir().unwrap();
    let index = EmbeddedIndex::open(dir.path(), Some(1)).unwrap();
    let doc = full_doc("b", "pending.txt", "platypus");
    index.upsert(vec![doc.clone()]).await.unwrap();

    assert_eq!(index.count().unwrap(), 0);
    assert_eq!(index.get(doc.id).unwrap(), None);
    assert!(index.search("platypus", 10).await.unwrap().is_empty());
    assert!(index.indexed_buckets().await.unwrap().is_empty());
    assert!(
        crate::sink::collect_versions(&index, "b")
            .await
            .unwrap()
            .is_empty()
    );

    index.commit().await.unwrap();
    assert_eq!(index.count().unwrap(), 1);
    assert_eq!(index.search("platypus", 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_bucket_disappears_with_its_last_document() {
    let dir = tempfile::tempdir().unwrap();
    let alphas: Vec<Document> = (0..5)
        .map(|n| full_doc("alpha", &format!("{n}.txt"), "text"))
        .collect();
    let beta = full_doc("beta", "1.txt", "one");
    let mut documents = alphas.clone();
    documents.insert(2, beta.clone());
    let index = index_with(dir.path(), documents).await;
    assert_eq!(index.indexed_buckets().await.unwrap(), ["alpha", "beta"]);

    // Few enough deletes that tantivy keeps the segment, and with it the `beta` term.
    index.delete(vec![alphas[0].id, beta.id]).await.unwrap();
    index.commit().await.unwrap();
    assert_eq!(index.indexed_buckets().await.unwrap(), ["alpha"]);
}

#[tokio::test]
async fn indexed_versions_lists_the_alive_documents_of_one_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let mut a1 = full_doc("alpha", "1.txt", "one");
    let a2 = full_doc("alpha", "2.txt", "two");
    let a3 = full_doc("alpha", "3.txt", "three");
    let b1 = full_doc("beta", "1.txt", "one");
    let mut first_batch = vec![a1.clone(), a2.clone(), b1.clone()];
    // Padding keeps the deleted share of the segment low enough that it is not merged away.
    first_batch.extend((0..6).map(|n| full_doc("gamma", &format!("{n}"), "pad")));
    let index = index_with(dir.path(), first_batch).await;

    // A second segment, an update and a delete, so that stale copies exist on disk.
    a1.etag = "\"changed\"".to_owned();
    a1.last_modified = at_millis(1_800_000_000_999);
    a1.size_in_bytes = 12_345;
    index.upsert(vec![a1.clone(), a3.clone()]).await.unwrap();
    index.delete(vec![a2.id]).await.unwrap();
    index.commit().await.unwrap();

    let alpha = crate::sink::collect_versions(&index, "alpha")
        .await
        .unwrap();
    let expected: HashMap<_, _> = [(a1.id, a1.version()), (a3.id, a3.version())].into();
    assert_eq!(alpha, expected);
    assert_ne!(alpha[&a1.id], full_doc("alpha", "1.txt", "one").version());

    let beta = crate::sink::collect_versions(&index, "beta").await.unwrap();
    assert_eq!(beta, HashMap::from([(b1.id, b1.version())]));
    assert_eq!(
        crate::sink::collect_versions(&index, "gamma")
            .await
            .unwrap()
            .len(),
        6
    );
    assert!(
        crate::sink::collect_versions(&index, "delta")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn search_ranks_by_relevance_and_covers_filename_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let with_body = full_doc("b", "animals/kangaroo-facts.txt", "the kangaroo hops far");
    let without_body = full_doc("b", "animals/kangaroo-list.txt", "nothing relevant here");
    let by_filename = full_doc("b", "misc/wombat.md", "burrows");
    let by_key = full_doc("b", "platypus/readme.md", "egg laying");
    let index = index_with(
        dir.path(),
        vec![
            without_body.clone(),
            with_body.clone(),
            by_filename.clone(),
            by_key.clone(),
        ],
    )
    .await;

    let hits = index.search("kangaroo", 10).await.unwrap();
    let keys: Vec<&str> = hits.iter().map(|hit| hit.key.as_str()).collect();
    assert_eq!(keys, [with_body.key.as_str(), without_body.key.as_str()]);
    assert!(hits[0].score > hits[1].score);
    assert_eq!(hits[0].id, with_body.id.to_hex());
    assert_eq!(hits[0].bucket, "b");

    let hits = index.search("wombat", 10).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].key, by_filename.key);

    let hits = index.search("platypus", 10).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].key, by_key.key);

    assert_eq!(index.search("kangaroo", 1).await.unwrap().len(), 1);
    assert!(index.search("kangaroo", 0).await.unwrap().is_empty());
    // A stray quote is a typo, not an error.
    let hits = index.search("\"wombat", 10).await.unwrap();
    assert_eq!(hits.len(), 1);
}

#[tokio::test]
async fn reopening_keeps_committed_documents_only() {
    let dir = tempfile::tempdir().unwrap();
    let committed = full_doc("b", "committed.txt", "saved");
    let pending = full_doc("b", "pending.txt", "lost");
    {
        let index = index_with(dir.path(), vec![committed.clone()]).await;
        index.upsert(vec![pending.clone()]).await.unwrap();
    }

    let index = EmbeddedIndex::open_or_create(dir.path()).unwrap();
    assert_eq!(index.count().unwrap(), 1);
    assert_eq!(index.get(committed.id).unwrap(), Some(committed));
    assert_eq!(index.get(pending.id).unwrap(), None);
    // The dropped index released the lock.
    index.upsert(vec![pending.clone()]).await.unwrap();
    index.commit().await.unwrap();
    assert_eq!(index.count().unwrap(), 2);
}

#[tokio::test]
async fn a_second_writer_gets_the_lock_error_but_can_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let doc = full_doc("b", "shared.txt", "echidna");
    let writer = index_with(dir.path(), vec![doc.clone()]).await;
    let other = EmbeddedIndex::open_or_create(dir.path()).unwrap();

    let error = other.upsert(vec![doc.clone()]).await.unwrap_err();
    assert!(
        matches!(
            &error,
            SinkError::Embedded(EmbeddedError::Locked { path }) if path == dir.path()
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("another s3-connector process"),
        "{message}"
    );
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
    assert!(matches!(
        other.delete(vec![doc.id]).await,
        Err(SinkError::Embedded(EmbeddedError::Locked { .. }))
    ));

    // Reading needs no lock, and a commit without writes just picks up other commits.
    assert_eq!(other.search("echidna", 5).await.unwrap().len(), 1);
    let later = full_doc("b", "later.txt", "echidna again");
    writer.upsert(vec![later.clone()]).await.unwrap();
    writer.commit().await.unwrap();
    other.commit().await.unwrap();
    assert_eq!(other.get(later.id).unwrap(), Some(later));
}

#[tokio::test]
async fn documents_with_unstorable_dates_are_rejected_alone() {
    let dir = tempfile::tempdir().unwrap();
    let fine = full_doc("b", "fine.txt", "ok");
    let mut far_future = full_doc("b", "future.txt", "too late");
    far_future.last_modified = OffsetDateTime::from_unix_timestamp(12_000_000_000).unwrap();
    let index = EmbeddedIndex::open_or_create(dir.path()).unwrap();

    let rejected = index
        .upsert(vec![far_future.clone(), fine.clone()])
        .await
        .unwrap();
    index.commit().await.unwrap();

    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].0, far_future.id);
    assert_eq!(index.count().unwrap(), 1);
    assert_eq!(index.get(fine.id).unwrap(), Some(fine));
}

/// Every page of `bucket`, `limit` entries at a time.
async fn all_pages(index: &EmbeddedIndex, bucket: &str, limit: usize) -> Vec<Vec<IndexedEntry>> {
    let mut pages = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = index
            .indexed_page(bucket, ScanFrom::after(after.as_deref()), limit)
            .await
            .unwrap();
        assert!(page.len() <= limit);
        let Some(last) = page.last() else {
            return pages;
        };
        after = Some(last.key.clone());
        pages.push(page);
    }
}

/// Every key of `bucket`, in the order the pages gave them.
async fn all_keys(index: &EmbeddedIndex, bucket: &str) -> Vec<String> {
    let pages = all_pages(index, bucket, 10).await;
    pages.concat().into_iter().map(|entry| entry.key).collect()
}

#[tokio::test]
async fn pages_list_a_buckets_alive_documents_in_key_byte_order_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    // Byte order, not char or UTF-16 order: "｡" (EF BD A1) before "😀" (F0 9F 98 80); a key
    // that is a prefix of the next; buckets whose names extend "a" ("a-b" sorts before "a/",
    // "a0" right after the bucket's range).
    let keys = [
        "😀", "Z", "a", "a/", "a/b", "a0", "é", "｡", " space", "+plus", "%25",
    ];
    let index = index_with(
        dir.path(),
        keys.iter()
            .step_by(2)
            .map(|key| full_doc("a", key, "x"))
            .collect(),
    )
    .await;
    let mut later: Vec<Document> = keys
        .iter()
        .skip(1)
        .step_by(2)
        .map(|key| full_doc("a", key, "y"))
        .collect();
    later.push(full_doc("a-b", "a", "other bucket"));
    later.push(full_doc("a0", "a", "other bucket"));
    index.upsert(later).await.unwrap();
    index.commit().await.unwrap();
    // An update (a new copy in a third segment) and a delete.
    let mut updated = full_doc("a", "a/", "z");
    updated.etag = "\"new\"".to_owned();
    index.upsert(vec![updated.clone()]).await.unwrap();
    index.delete(vec![DocId::of("a", "Z")]).await.unwrap();
    index.commit().await.unwrap();

    let mut expected: Vec<&str> = keys.iter().copied().filter(|key| *key != "Z").collect();
    expected.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    for limit in [1, 2, 3, 100] {
        let entries: Vec<IndexedEntry> = all_pages(&index, "a", limit).await.concat();
        let found: Vec<&str> = entries.iter().map(|entry| entry.key.as_str()).collect();
        assert_eq!(found, expected, "pages of {limit}");
        for entry in &entries {
            assert_eq!(entry.id, DocId::of("a", &entry.key));
            let version = if entry.key == "a/" {
                updated.version()
            } else {
                full_doc("a", &entry.key, "x").version()
            };
            assert_eq!(entry.version, version, "{}", entry.key);
        }
    }
    assert_eq!(all_keys(&index, "a-b").await, ["a"]);
    assert!(all_pages(&index, "none", 10).await.is_empty());

    // From a key on: the key itself when the index holds it, else the next; never another
    // bucket's key ("a0" is past bucket "a"'s range, and the bucket "a0" holds "a").
    for (first, expected) in [
        ("a/", vec!["a/", "a/b", "a0"]),
        ("a0", vec!["a0", "é", "｡"]),
        ("a/c", vec!["a0", "é", "｡"]),
        ("é", vec!["é", "｡", "😀"]),
        ("😀0", vec![]),
    ] {
        let page = index
            .indexed_page("a", ScanFrom::AtLeast(first), 3)
            .await
            .unwrap();
        let found: Vec<&str> = page.iter().map(|entry| entry.key.as_str()).collect();
        assert_eq!(found, expected, "at least {first:?}");
    }
}

/// `entry` as s3-connector wrote it before accent folding: text fields on tantivy's `default`
/// tokenizer.
fn before_folding(entry: &tantivy::schema::FieldEntry) -> tantivy::schema::FieldEntry {
    super::upgrade::with_tokenizer(entry, |tokenizer| {
        [
            crate::sink::analysis::FOLDED,
            crate::sink::analysis::ENGLISH,
        ]
        .contains(&tokenizer)
        .then_some("default")
    })
}

/// The fields of `schema` that `keep` keeps, as s3-connector wrote them before accent folding.
fn schema_before_folding(
    schema: &tantivy::schema::Schema,
    keep: impl Fn(tantivy::schema::Field) -> bool,
) -> tantivy::schema::Schema {
    let mut builder = tantivy::schema::Schema::builder();
    for (field, entry) in schema.fields() {
        if keep(field) {
            builder.add_field(before_folding(entry));
        }
    }
    builder.build()
}

#[tokio::test]
async fn an_index_from_before_bucket_key_is_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let (schema, fields) = schema::build();
    // Today's fields before `bucket_key`, analysed as s3-connector did then.
    let before_bucket_key = |field: tantivy::schema::Field| field < fields.bucket_key;
    let old_schema = schema_before_folding(&schema, before_bucket_key);
    let old = Index::create_in_dir(dir.path(), old_schema).unwrap();
    let mut writer = old.writer_with_num_threads(1, 15_000_000).unwrap();
    let documents: Vec<Document> = ["b", "a", "c"]
        .iter()
        .map(|key| full_doc("x", key, key))
        .collect();
    for document in &documents {
        let mut stored = TantivyDocument::new();
        for (field, value) in fields.encode(document).unwrap().field_values() {
            if before_bucket_key(field) {
                stored.add_field_value(field, value);
            }
        }
        writer.add_document(stored).unwrap();
    }
    writer.delete_term(tantivy::Term::from_field_text(
        fields.id,
        &documents[2].id.to_hex(),
    ));
    writer.commit().unwrap();
    drop((writer, old));

    let index = EmbeddedIndex::open_or_create(dir.path()).unwrap();
    assert_eq!(index.count().unwrap(), 2);
    assert_eq!(
        index.get(documents[0].id).unwrap().as_ref(),
        Some(&documents[0])
    );
    assert_eq!(all_keys(&index, "x").await, ["a", "b"]);
    assert_eq!(index.search("b", 10).await.unwrap().len(), 1);
    // The staging and retired copies are gone; opening again finds nothing to upgrade.
    let siblings: Vec<_> = std::fs::read_dir(dir.path().parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(&*dir.path().file_name().unwrap().to_string_lossy()))
        .collect();
    assert_eq!(siblings.len(), 1, "{siblings:?}");
    drop(index);
    assert_eq!(
        EmbeddedIndex::open_or_create(dir.path())
            .unwrap()
            .count()
            .unwrap(),
        2
    );
}

#[tokio::test]
async fn an_index_from_before_accent_folding_is_analysed_again_so_cafe_finds_cafe() {
    let dir = tempfile::tempdir().unwrap();
    let (schema, fields) = schema::build();
    // Today's fields with tantivy's default tokenizer, as s3-connector wrote them before.
    let old_schema = schema_before_folding(&schema, |_| true);
    assert_ne!(old_schema, schema);
    let old = Index::create_in_dir(dir.path(), old_schema).unwrap();
    let mut writer = old.writer_with_num_threads(1, 15_000_000).unwrap();
    let mut document = full_doc("x", "menus/Résumé.txt", "The café opens at nine");
    document.title = Some("Crème brûlée".to_owned());
    writer
        .add_document(fields.encode(&document).unwrap())
        .unwrap();
    writer.commit().unwrap();
    // The old analysis: "cafe" is not a term of this index.
    let reader = old.reader().unwrap();
    let parser = tantivy::query::QueryParser::for_index(&old, vec![fields.body]);
    let hits = reader
        .searcher()
        .search(
            &parser.parse_query("cafe").unwrap(),
            &tantivy::collector::Count,
        )
        .unwrap();
    assert_eq!(hits, 0);
    drop((reader, writer, old));

    let index = EmbeddedIndex::open_or_create(dir.path()).unwrap();
    assert_eq!(index.get(document.id).unwrap().as_ref(), Some(&document));
    for query in ["cafe", "CAFÉ", "creme brulee", "resume", "café"] {
        let hits = index.search(query, 10).await.unwrap();
        assert_eq!(hits.len(), 1, "{query}");
    }
}

#[test]
fn an_index_with_another_schema_is_refused_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let mut builder = tantivy::schema::Schema::builder();
    builder.add_text_field("something_else", tantivy::schema::TEXT);
    Index::create_in_dir(dir.path(), builder.build()).unwrap();

    let error = EmbeddedIndex::open_or_create(dir.path()).unwrap_err();
    assert!(
        matches!(error, EmbeddedError::SchemaMismatch { .. }),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains(&dir.path().display().to_string())
    );
}

#[test]
fn open_or_create_makes_missing_directories() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b/index");
    let index = EmbeddedIndex::open_or_create(&nested).unwrap();
    assert_eq!(index.count().unwrap(), 0);
    assert!(nested.join("meta.json").is_file());
}

/// Passage settings of the tests: `max_tokens` words a passage.
fn passage_settings(max_tokens: usize) -> crate::config::embedding::PassageSettings {
    crate::config::embedding::PassageSettings {
        max_tokens,
        overlap_tokens: 0,
        max_passages_per_document: 100,
    }
}

/// `document` with its body cut into passages of `max_tokens` words, embedded by `embedder`.
fn with_passages(
    mut document: Document,
    embedder: &crate::embed::testing::WordHashEmbedder,
    max_tokens: usize,
) -> Document {
    let body = document.body.clone().unwrap_or_default();
    let (passages, _) = crate::embed::passages_of(&body, embedder, &passage_settings(max_tokens));
    document.passages = passages
        .into_iter()
        .map(|passage| crate::sink::StoredPassage {
            vector: Some(embedder.vector(&passage.text)),
            passage,
        })
        .collect();
    document
}

fn keyword(text: &str, limit: usize) -> PassageQuery {
    PassageQuery {
        text: text.to_owned(),
        vector: None,
        mode: crate::sink::passages::SearchMode::Keyword,
        fusion: crate::sink::passages::Fusion::default(),
        limit,
    }
}

/// What a keyword search of `index` for `text` finds (10 hits at most).
async fn keyword_hits(index: &EmbeddedIndex, text: &str) -> Vec<PassageHit> {
    index.search_passages(&keyword(text, 10)).await.unwrap()
}

/// (key, passage ordinal) of each hit.
fn places(hits: &[PassageHit]) -> Vec<(String, Option<u32>)> {
    hits.iter()
        .map(|hit| {
            (
                hit.key.clone(),
                hit.passage.as_ref().map(|span| span.ordinal),
            )
        })
        .collect()
}

#[tokio::test]
async fn passages_are_stored_replaced_and_deleted_with_their_document_and_never_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let embedder = crate::embed::testing::WordHashEmbedder::new(32);
    let first = with_passages(
        full_doc(
            "b",
            "long.txt",
            "alpha beta gamma delta epsilon zeta eta theta",
        ),
        &embedder,
        3,
    );
    assert_eq!(first.passages.len(), 3);
    let plain = full_doc("b", "plain.txt", "alpha without passages");
    let index = index_with(dir.path(), vec![first.clone(), plain.clone()]).await;

    assert_eq!(index.get(first.id).unwrap().as_ref(), Some(&first));
    assert_eq!(index.count().unwrap(), 2);
    assert_eq!(all_keys(&index, "b").await, ["long.txt", "plain.txt"]);
    assert_eq!(index.indexed_buckets().await.unwrap(), ["b"]);
    let vectors = index.passage_vectors(first.id).await.unwrap();
    let expected: Vec<_> = first
        .passages
        .iter()
        .map(|stored| (stored.passage.content_hash, stored.vector.clone().unwrap()))
        .collect();
    assert_eq!(vectors, expected);
    // A whole-document search never answers a passage.
    let hits = index.search("alpha", 10).await.unwrap();
    assert_eq!(hits.len(), 2);

    // An upsert replaces the passages; a delete removes them.
    let second = with_passages(full_doc("b", "long.txt", "omega psi chi phi"), &embedder, 3);
    index.upsert(vec![second.clone()]).await.unwrap();
    index.commit().await.unwrap();
    assert_eq!(
        index.get(first.id).unwrap().unwrap().passages,
        second.passages
    );
    assert!(keyword_hits(&index, "gamma").await.is_empty());
    assert_eq!(
        places(&keyword_hits(&index, "phi").await),
        [("long.txt".to_owned(), Some(1))]
    );
    index.delete(vec![first.id]).await.unwrap();
    index.commit().await.unwrap();
    assert!(index.passage_vectors(first.id).await.unwrap().is_empty());
    assert!(keyword_hits(&index, "phi").await.is_empty());
    assert_eq!(index.count().unwrap(), 1);
}

#[tokio::test]
async fn a_document_whose_embedding_failed_is_unfinished_for_the_next_sync() {
    let dir = tempfile::tempdir().unwrap();
    let mut failed = full_doc("b", "failed.txt", "some text");
    failed.embedding_error = Some("embedding endpoint: 500".to_owned());
    let done = full_doc("b", "done.txt", "other text");
    let index = index_with(dir.path(), vec![failed.clone(), done.clone()]).await;

    let page = index.indexed_page("b", ScanFrom::Start, 10).await.unwrap();
    let versions: Vec<(&str, VersionStamp)> = page
        .iter()
        .map(|entry| (entry.key.as_str(), entry.version))
        .collect();
    assert_eq!(
        versions,
        [
            ("done.txt", done.version()),
            ("failed.txt", VersionStamp::UNFINISHED)
        ]
    );
    assert_eq!(
        index.indexed_version(failed.id).await.unwrap(),
        Some(VersionStamp::UNFINISHED)
    );
    assert_eq!(
        index.indexed_version(done.id).await.unwrap(),
        Some(done.version())
    );
    assert_eq!(index.get(failed.id).unwrap(), Some(failed.clone()));
    // Still found by its words.
    assert_eq!(index.search("some", 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn keyword_passage_search_stems_weighs_titles_and_highlights() {
    let dir = tempfile::tempdir().unwrap();
    let embedder = crate::embed::testing::WordHashEmbedder::new(32);
    let mut titled = full_doc("b", "a.txt", "nothing about it here");
    titled.title = Some("Boundary layers".to_owned());
    let mut bodied = full_doc("b", "b.txt", "the boundary layer of a wing");
    bodied.title = Some("Wings".to_owned());
    let split = with_passages(
        full_doc(
            "b",
            "c.txt",
            "first part is dull. then flows reported over plates",
        ),
        &embedder,
        5,
    );
    let index = index_with(dir.path(), vec![titled, bodied, split]).await;

    // "boundary layers" in a title outranks it in a body.
    let hits = keyword_hits(&index, "boundary layer").await;
    assert_eq!(
        places(&hits),
        [("a.txt".to_owned(), None), ("b.txt".to_owned(), None)]
    );
    // Stems: "flow" finds "flows", "reports" finds "reported"; the hit is the passage, with
    // its span, and the snippet highlights the words.
    let hits = keyword_hits(&index, "flow reports").await;
    assert_eq!(places(&hits), [("c.txt".to_owned(), Some(1))]);
    let span = hits[0].passage.as_ref().unwrap();
    assert_eq!((span.start, span.end), (25, 51));
    // The hit carries the passage's whole text, as a language model is handed it.
    assert_eq!(span.text, "flows reported over plates");
    let snippet = hits[0].snippet.as_ref().unwrap();
    assert_eq!(snippet.text, "flows reported over plates");
    assert_eq!(snippet.marked(), ["flows", "reported"]);
    // Phrases still need their words in order.
    assert!(keyword_hits(&index, "\"plates over\"").await.is_empty());
    assert_eq!(
        index.search("\"boundary layer\"", 10).await.unwrap().len(),
        2
    );
}

#[tokio::test]
async fn semantic_and_hybrid_search_rank_passages_by_their_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let embedder = crate::embed::testing::WordHashEmbedder::new(64);
    let mut tagged = full_doc("b", "x.txt", "red green blue. cyan magenta yellow");
    (tagged.attributes, _) =
        crate::sink::Attributes::capped([("team".to_owned(), "ops".to_owned())], []);
    let documents = [
        with_passages(tagged, &embedder, 3),
        with_passages(
            full_doc("b", "y.txt", "red orange. purple violet"),
            &embedder,
            2,
        ),
        full_doc("b", "z.txt", "cyan without vectors"),
    ];
    // Two commits: two segments to scan.
    let index = index_with(dir.path(), documents[..1].to_vec()).await;
    index.upsert(documents[1..].to_vec()).await.unwrap();
    index.commit().await.unwrap();

    let semantic = |text: &str, vector_of: &str, limit| PassageQuery {
        vector: Some(embedder.vector(vector_of)),
        mode: crate::sink::passages::SearchMode::Semantic,
        ..keyword(text, limit)
    };
    let hits = index
        .search_passages(&semantic("cyan", "cyan magenta yellow", 2))
        .await
        .unwrap();
    assert_eq!(places(&hits)[0], ("x.txt".to_owned(), Some(1)));
    assert_eq!(
        hits[0].passage.as_ref().unwrap().text,
        "cyan magenta yellow"
    );
    assert!((hits[0].score - 1.0).abs() < 0.02, "{}", hits[0].score);
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].snippet.as_ref().unwrap().highlights, [[0, 4]]);
    // Filters hold for vectors too.
    let hits = index
        .search_passages(&semantic("-meta.team:ops", "cyan magenta yellow", 10))
        .await
        .unwrap();
    assert!(hits.iter().all(|hit| hit.key == "y.txt"), "{hits:?}");
    assert_eq!(hits.len(), 2);
    // Hybrid: the keyword ranking's whole document and the passage found both ways.
    let hybrid = PassageQuery {
        mode: crate::sink::passages::SearchMode::Hybrid,
        ..semantic("cyan", "cyan magenta yellow", 3)
    };
    let hits = index.search_passages(&hybrid).await.unwrap();
    assert_eq!(
        places(&hits)[..2],
        [("x.txt".to_owned(), Some(1)), ("z.txt".to_owned(), None)]
    );
    // The passage brings its text; the whole document none (its body can be megabytes), only
    // a snippet.
    assert_eq!(
        hits[0].passage.as_ref().unwrap().text,
        "cyan magenta yellow"
    );
    assert!(hits[1].snippet.is_some());
    // Without a vector, semantic search is refused.
    let error = index
        .search_passages(&PassageQuery {
            vector: None,
            ..semantic("cyan", "cyan", 2)
        })
        .await
        .unwrap_err();
    assert!(error.to_string().contains("vector"), "{error}");
}

#[tokio::test]
async fn the_model_is_recorded_beside_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let index = EmbeddedIndex::open(dir.path(), Some(1)).unwrap();
    assert_eq!(index.recorded_model().await.unwrap(), None);
    let model = crate::embed::EmbeddingModel {
        id: "local:all-MiniLM-L6-v2".to_owned(),
        dimensions: 384,
    };
    index.record_model(&model).await.unwrap();
    drop(index);
    let index = EmbeddedIndex::open(dir.path(), Some(1)).unwrap();
    assert_eq!(index.recorded_model().await.unwrap(), Some(model));
}

#[tokio::test]
async fn an_index_with_passages_and_another_analysis_is_upgraded_with_its_passages() {
    let dir = tempfile::tempdir().unwrap();
    let (schema, fields) = schema::build();
    let old = Index::create_in_dir(dir.path(), schema_before_folding(&schema, |_| true)).unwrap();
    let mut writer = old.writer_with_num_threads(1, 15_000_000).unwrap();
    let embedder = crate::embed::testing::WordHashEmbedder::new(8);
    let document = with_passages(
        full_doc("x", "a.txt", "pressure distributions over wings"),
        &embedder,
        2,
    );
    writer
        .add_document(fields.encode(&document).unwrap())
        .unwrap();
    for passage in fields.encode_passages(&document) {
        writer.add_document(passage).unwrap();
    }
    writer.commit().unwrap();
    drop((writer, old));

    let index = EmbeddedIndex::open_or_create(dir.path()).unwrap();
    assert_eq!(index.count().unwrap(), 1);
    assert_eq!(index.get(document.id).unwrap().as_ref(), Some(&document));
    assert_eq!(
        places(&keyword_hits(&index, "wing").await),
        [("a.txt".to_owned(), Some(1))]
    );
}
