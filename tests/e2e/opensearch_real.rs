//! The sync scenarios of `sync_embedded.rs`, and passage search by meaning and by both (which
//! osmem-server refuses), against a real OpenSearch cluster, for people who have one. They are `#[ignore]`d, so a plain `cargo test` reports them as ignored (never as
//! passed); run them with `--ignored` and `OPENSEARCH_URL` set:
//!
//! ```sh
//! OPENSEARCH_URL=https://localhost:9200 OPENSEARCH_USERNAME=admin OPENSEARCH_PASSWORD=... \
//!     OPENSEARCH_CA_CERT=/path/ca.pem cargo test --test e2e opensearch_real -- --ignored
//! ```
//!
//! `OPENSEARCH_INSECURE=1` turns certificate verification off instead. Every test writes an index
//! of its own named `s3c-e2e-*` and leaves it behind for inspection. Run with `--ignored` but
//! without `OPENSEARCH_URL`, each test fails and says so.

use s3_connector::embed::Embedder;
use s3_connector::embed::testing::WordHashEmbedder;
use s3_connector::sink::Sink;
use s3_connector::sink::passages::{Fusion, SearchMode};

use crate::fixture::{Backend, Setup};
use crate::sync_opensearch::{query, with_passages};

/// The cluster of `$OPENSEARCH_URL`.
fn real_cluster() -> Backend {
    match std::env::var("OPENSEARCH_URL") {
        Ok(url) if !url.is_empty() => Backend::RealOpensearch(url),
        _ => panic!(
            "OPENSEARCH_URL is not set: the opensearch_real tests need a real OpenSearch cluster \
             (see tests/e2e/opensearch_real.rs)"
        ),
    }
}

crate::sync_embedded::sync_scenarios!(
    real_cluster,
    ignore = "needs a real OpenSearch cluster: set OPENSEARCH_URL and run with --ignored"
);

/// Passages searched by keyword, by meaning (knn), and by both: through the hybrid query and the
/// search pipeline s3-connector creates (rank fusion needs OpenSearch 2.19+; weighted fusion
/// 2.10+), or fused in the client where the cluster takes no pipeline. Needs the k-NN plugin
/// (and neural-search for the pipeline), as in the default OpenSearch distribution.
#[tokio::test]
#[ignore = "needs a real OpenSearch cluster: set OPENSEARCH_URL and run with --ignored"]
async fn passages_are_found_by_words_by_meaning_and_by_both() {
    let setup = Setup::for_backend(&real_cluster());
    let sink = setup.opensearch_sink().await;
    let embedder = WordHashEmbedder::new(16);
    sink.record_model(embedder.model()).await.unwrap();
    let turbine = with_passages(
        "real",
        "turbine.txt",
        &[
            "Turbine blades crack under heat.",
            "Bread rises in a warm oven.",
        ],
        Some(&embedder),
    );
    let recipes = with_passages(
        "real",
        "recipes.txt",
        &["Knead the dough and let it rest."],
        Some(&embedder),
    );
    assert_eq!(
        sink.upsert(vec![turbine.clone(), recipes]).await.unwrap(),
        []
    );
    sink.commit().await.unwrap();

    let keyword = sink
        .search_passages(&query("cracking blades", SearchMode::Keyword, None))
        .await
        .unwrap();
    assert_eq!(keyword[0].id, turbine.id, "{keyword:?}");
    assert_eq!(keyword[0].passage.as_ref().unwrap().ordinal, 0);
    let snippet = keyword[0].snippet.as_ref().unwrap();
    let highlighted: Vec<&str> = snippet
        .highlights
        .iter()
        .map(|[start, end]| &snippet.text[*start..*end])
        .collect();
    assert_eq!(
        highlighted,
        ["crack", "blades"],
        "stemmed highlights: {snippet:?}"
    );

    let vector = Some(embedder.vector("turbine blades heat"));
    for (mode, fusion) in [
        (SearchMode::Semantic, Fusion::default()),
        (SearchMode::Hybrid, Fusion::default()),
        (
            SearchMode::Hybrid,
            Fusion::Weighted {
                semantic_weight: 0.7,
            },
        ),
    ] {
        let mut passage_query = query("turbine blades", mode, vector.clone());
        passage_query.fusion = fusion;
        let hits = sink.search_passages(&passage_query).await.unwrap();
        assert_eq!(hits[0].id, turbine.id, "{mode:?} {fusion:?}: {hits:?}");
        assert_eq!(hits[0].passage.as_ref().unwrap().ordinal, 0, "{hits:?}");
    }
}
