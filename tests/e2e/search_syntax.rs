//! What a person types into `search`, and what each sink finds for it: boolean operators as
//! people write them (`AND`, `OR`, `NOT`, `-`, `+`, "phrases", parentheses) and accent folding
//! ("cafe" finds "café"), with the same meaning on the embedded index and on OpenSearch.
//! A small fixed bucket is synced through moto into each sink, then a table of queries runs.

use crate::fixture::{Backend, Setup, create_bucket, put, s3_client};
use crate::support::{Fault, FaultProxy, Match, MotoServer, OsmemServer, unique_name};

/// The bucket every query of [`QUERIES`] runs over.
const OBJECTS: &[(&str, &str)] = &[
    ("a.txt", "The connector setup guide"),
    ("b.txt", "The connector for café owners"),
    ("c.txt", "Setup without anything else"),
    ("d.txt", "Résumé of a naïve coöperation"),
];

/// A query and the keys it must find (in any order).
const QUERIES: &[(&str, &[&str])] = &[
    ("connector", &["a.txt", "b.txt"]),
    ("connector AND NOT setup", &["b.txt"]),
    ("connector NOT setup", &["b.txt"]),
    ("connector -setup", &["b.txt"]),
    ("+connector -setup", &["b.txt"]),
    ("connector AND -setup", &["b.txt"]),
    ("NOT setup AND connector", &["b.txt"]),
    ("connector AND (NOT setup)", &["b.txt"]),
    // As Lucene reads it: NOT makes its clause a prohibition whatever the operator before it.
    ("connector OR NOT setup", &["b.txt"]),
    ("connector AND setup", &["a.txt"]),
    ("connector setup", &["a.txt", "b.txt", "c.txt"]),
    ("connector OR anything", &["a.txt", "b.txt", "c.txt"]),
    ("\"connector setup\"", &["a.txt"]),
    ("\"setup guide\" OR anything", &["a.txt", "c.txt"]),
    ("(cafe OR guide) AND connector", &["a.txt", "b.txt"]),
    ("setup AND NOT (guide OR cafe)", &["c.txt"]),
    // A query of prohibitions only finds everything else, as OpenSearch's query string does.
    ("-setup", &["b.txt", "d.txt"]),
    ("NOT connector NOT setup", &["d.txt"]),
    // Accent folding, both ways.
    ("cafe", &["b.txt"]),
    ("CAFÉ", &["b.txt"]),
    ("resume", &["d.txt"]),
    ("naive cooperation", &["d.txt"]),
    ("résumé", &["d.txt"]),
];

/// The queries of `cases` whose hits are not the keys expected, each with what it found.
async fn wrong_answers(setup: &Setup, cases: &[(&str, &[&str])]) -> Vec<String> {
    let mut wrong = Vec::new();
    for (query, expected) in cases {
        let mut found: Vec<String> = setup
            .search(query, 10)
            .await
            .into_iter()
            .map(|hit| hit.key)
            .collect();
        found.sort();
        if found != *expected {
            wrong.push(format!("{query:?}: found {found:?}, expected {expected:?}"));
        }
    }
    wrong
}

async fn queries_mean_the_same_on(backend: Backend) {
    let s3 = s3_client(&MotoServer::shared().endpoint());
    let bucket = unique_name("search-syntax");
    create_bucket(&s3, &bucket).await;
    for (key, body) in OBJECTS {
        put(&s3, &bucket, key, *body).await;
    }
    let setup = Setup::for_backend(&backend);
    let config = setup.config(&MotoServer::shared().endpoint(), &[&bucket], "");
    let report = setup.sync(&config).await;
    assert_eq!(report.errors, 0, "{:?}", report.error_messages);
    assert_eq!(report.added, OBJECTS.len() as u64);

    let wrong = wrong_answers(&setup, QUERIES).await;
    assert!(wrong.is_empty(), "on {backend:?}:\n{}", wrong.join("\n"));
}

#[tokio::test]
async fn queries_mean_the_same_on_the_embedded_index() {
    queries_mean_the_same_on(Backend::Embedded).await;
}

#[tokio::test]
async fn queries_mean_the_same_on_opensearch() {
    queries_mean_the_same_on(Backend::Osmem).await;
}

/// The mapping s3-connector gave the indices it created before it folded accents.
const MAPPING_BEFORE_FOLDING: &str = r#"{"mappings":{"properties":{
    "id":{"type":"keyword"},"bucket":{"type":"keyword"},
    "key":{"type":"keyword","fields":{"text":{"type":"text"}}},
    "filename":{"type":"text","fields":{"keyword":{"type":"keyword","ignore_above":1024}}},
    "extension":{"type":"keyword"},"size_in_bytes":{"type":"long"},"last_modified":{"type":"date"},
    "etag":{"type":"keyword"},"content_type":{"type":"keyword"},"storage_class":{"type":"keyword"},
    "url":{"type":"keyword"},"title":{"type":"text"},"body":{"type":"text"},
    "content_status":{"type":"keyword"},"extraction_error":{"type":"text"},
    "indexed_at":{"type":"date"}}}}"#;

#[tokio::test]
async fn an_opensearch_index_made_before_accent_folding_keeps_working_and_says_so() {
    let osmem = OsmemServer::shared();
    let s3 = s3_client(&MotoServer::shared().endpoint());
    let bucket = unique_name("search-unfolded");
    create_bucket(&s3, &bucket).await;
    put(&s3, &bucket, "b.txt", "The connector for café owners").await;

    // An analyzer cannot change on an existing index: it is used as it is, and reported.
    let old = Setup::opensearch(&osmem.url(), "");
    osmem.json(
        "PUT",
        &format!("/{}", old.index_name().unwrap()),
        MAPPING_BEFORE_FOLDING,
    );
    assert!(!old.opensearch_sink().await.folds_accents());
    let config = old.config(&MotoServer::shared().endpoint(), &[&bucket], "");
    let report = old.sync(&config).await;
    assert_eq!(
        (report.added, report.errors),
        (1, 0),
        "{:?}",
        report.error_messages
    );
    assert_eq!(old.search("café", 10).await.len(), 1);
    assert!(old.search("cafe", 10).await.is_empty());

    // The remedy the warning names: a new index, which folds.
    let new = Setup::opensearch(&osmem.url(), "");
    assert!(new.opensearch_sink().await.folds_accents());
    let config = new.config(&MotoServer::shared().endpoint(), &[&bucket], "");
    assert_eq!(new.sync(&config).await.added, 1);
    assert_eq!(new.search("cafe", 10).await.len(), 1);

    // An index made by hand without our fields gets them, analysed by default: it cannot
    // define our analyzer while open.
    let bare = Setup::opensearch(&osmem.url(), "");
    osmem.json(
        "PUT",
        &format!("/{}", bare.index_name().unwrap()),
        r#"{"mappings":{"properties":{"team":{"type":"keyword"}}}}"#,
    );
    assert!(!bare.opensearch_sink().await.folds_accents());
    let config = bare.config(&MotoServer::shared().endpoint(), &[&bucket], "");
    assert_eq!(bare.sync(&config).await.added, 1);
    assert_eq!(bare.search("café", 10).await.len(), 1);
}

/// Puts `key` with user metadata (`x-amz-meta-*`) and tags (`k=v&...`).
async fn put_described(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: &str,
    metadata: &[(&str, &str)],
    tagging: &str,
) {
    let mut request = s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(body.as_bytes().to_vec().into());
    for (name, value) in metadata {
        request = request.metadata(*name, *value);
    }
    if !tagging.is_empty() {
        request = request.tagging(tagging);
    }
    request
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {bucket}/{key}: {e:?}"));
}

async fn metadata_and_tags_are_filters_on(backend: Backend) {
    let moto = MotoServer::shared();
    let s3 = s3_client(&moto.endpoint());
    let bucket = unique_name("search-meta");
    create_bucket(&s3, &bucket).await;
    put_described(
        &s3,
        &bucket,
        "alice.txt",
        "The connector guide",
        &[("Author", "Alice"), ("team", "Search Team")],
        "project=apollo&stage=draft",
    )
    .await;
    put_described(
        &s3,
        &bucket,
        "bob.txt",
        "The connector notes",
        &[("author", "Bob")],
        "project=gemini",
    )
    .await;
    put(&s3, &bucket, "plain.txt", "The connector itself").await;

    // The tagging request of one object is denied: it is indexed without tags, nothing fails.
    let proxy = FaultProxy::start(&moto.endpoint());
    proxy.inject(
        Fault::access_denied(),
        Match::any()
            .path_contains("/bob.txt")
            .query_contains("tagging"),
        None,
    );
    let setup = Setup::for_backend(&backend);
    let config = setup.config(&proxy.endpoint(), &[&bucket], "    index_tags: true");
    let report = setup.sync(&config).await;
    assert_eq!(
        (report.added, report.errors),
        (3, 0),
        "{:?}",
        report.error_messages
    );

    let alice = setup.doc(&bucket, "alice.txt").unwrap();
    assert_eq!(alice.attributes.metadata["author"], "Alice");
    assert_eq!(alice.attributes.metadata["team"], "Search Team");
    assert_eq!(alice.attributes.tags["project"], "apollo");
    let bob = setup.doc(&bucket, "bob.txt").unwrap();
    assert_eq!(bob.attributes.metadata["author"], "Bob");
    assert!(bob.attributes.tags.is_empty(), "{:?}", bob.attributes);

    let cases: &[(&str, &[&str])] = &[
        ("meta.author:alice", &["alice.txt"]),
        ("meta.author:ALICE connector", &["alice.txt"]),
        ("connector AND meta.author:bob", &["bob.txt"]),
        ("meta.team:\"search team\"", &["alice.txt"]),
        ("tag.project:apollo", &["alice.txt"]),
        ("tag.project:gemini", &[]),
        ("connector -meta.author:alice", &["bob.txt", "plain.txt"]),
        ("connector NOT tag.stage:draft", &["bob.txt", "plain.txt"]),
        ("guide meta.author:bob", &[]),
        ("meta.author:carol", &[]),
    ];
    let wrong = wrong_answers(&setup, cases).await;
    assert!(wrong.is_empty(), "on {backend:?}:\n{}", wrong.join("\n"));

    let tagging_requests = |proxy: &FaultProxy| {
        proxy
            .requests()
            .iter()
            .filter(|request| request.path_and_query.contains("tagging"))
            .count()
    };
    assert_eq!(tagging_requests(&proxy), 3, "one per downloaded object");

    // Without `index_tags`, no tagging request is made and no tag is indexed.
    let untagged = Setup::for_backend(&backend);
    let config = untagged.config(&proxy.endpoint(), &[&bucket], "");
    proxy.clear_log();
    assert_eq!(untagged.sync(&config).await.added, 3);
    assert_eq!(tagging_requests(&proxy), 0);
    assert!(untagged.search("tag.project:apollo", 10).await.is_empty());
    assert_eq!(untagged.search("meta.author:alice", 10).await.len(), 1);
}

#[tokio::test]
async fn metadata_and_tags_are_filters_on_the_embedded_index() {
    metadata_and_tags_are_filters_on(Backend::Embedded).await;
}

#[tokio::test]
async fn metadata_and_tags_are_filters_on_opensearch() {
    metadata_and_tags_are_filters_on(Backend::Osmem).await;
}
