//! Passages and vectors end to end (#24): the real binary syncs moto buckets into the embedded
//! index with `embedding: {provider: openai}` pointed at the test suite's own endpoint
//! ([`EmbedServer`]: word-hash vectors, every request recorded, failures and held answers on
//! demand), and the test reads the index back. What the unit scenarios of
//! `src/sync/embedding_scenarios.rs` prove on the in-memory sink, here through S3, the
//! process boundary and tantivy: vectors reused by content hash, a failed document embedded by
//! the next process, a model change refused until `sync --reembed`, the `dimensions` field,
//! and SIGKILLs at deterministic points of a sync with embeddings.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use s3_connector::embed::EmbeddingModel;
use s3_connector::sink::passages::{Fusion, PassageQuery, SearchMode};
use s3_connector::sink::{DocId, Document, PassageHit, Sink};
use s3_connector::sync::SyncReport;

use crate::crash::{Rng, tail};
use crate::fixture::{Setup, create_bucket, delete, put, s3_client};
use crate::support::{EmbedServer, MotoServer, unique_name};

const BIN: &str = env!("CARGO_BIN_EXE_s3-connector");

/// Components of the test endpoint's vectors: enough buckets that the few words of a test
/// rarely share one.
const DIMENSIONS: usize = 64;

/// How long a test waits for the endpoint to see a request of a running sync.
const REQUEST_WAIT: Duration = Duration::from_secs(60);

/// One paragraph: `word` five times. At most 47 bytes, so at most 16 tokens by the estimate
/// (one per 3 bytes) the openai provider counts without a tokenizer: with `max_tokens: 16`
/// each paragraph is one passage, and two never fit in one.
fn paragraph(word: &str) -> String {
    assert!(word.len() <= 8, "{word} is too long for one passage");
    [word; 5].join(" ")
}

/// A text of one paragraph per word.
fn paragraphs(words: &[&str]) -> String {
    words
        .iter()
        .map(|word| paragraph(word))
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// A bucket on the shared moto, an embedded index in a temporary directory, and the config of
/// connector `c` with an `embedding:` block for the test endpoint.
struct Bench {
    s3: aws_sdk_s3::Client,
    endpoint: String,
    bucket: String,
    setup: Setup,
}

impl Bench {
    async fn new(prefix: &str) -> Self {
        let endpoint = MotoServer::shared().endpoint();
        let s3 = s3_client(&endpoint);
        let bucket = unique_name(prefix);
        create_bucket(&s3, &bucket).await;
        Self {
            s3,
            endpoint,
            bucket,
            setup: Setup::new(),
        }
    }

    async fn put(&self, key: &str, text: &str) {
        put(&self.s3, &self.bucket, key, text.as_bytes().to_vec()).await;
    }

    async fn delete(&self, key: &str) {
        delete(&self.s3, &self.bucket, key).await;
    }

    /// Writes (and validates) `config.yml` with model `model` of `dimensions` at `server`;
    /// returns its path.
    fn write_config(&self, server: &EmbedServer, model: &str, dimensions: usize) -> PathBuf {
        let block = format!(
            "    embedding:\n      provider: openai\n      endpoint_url: {}\n      model: {model}\n      dimensions: {dimensions}\n      batch_size: 2\n      max_tokens: 16\n      overlap_tokens: 0\n",
            server.url()
        );
        self.setup.config(&self.endpoint, &[&self.bucket], &block);
        self.setup.dir.path().join("config.yml")
    }

    fn id(&self, key: &str) -> DocId {
        DocId::of(&self.bucket, key)
    }

    /// The indexed document of `key` with its passages, as committed.
    fn doc(&self, key: &str) -> Option<Document> {
        self.setup
            .index()
            .get(self.id(key))
            .expect("read the index")
    }

    /// The keys of the hits of a semantic search for `query`, with the vector the endpoint
    /// makes of it, the best first; every passage of the index is scored, so `limit` covers
    /// them all.
    async fn semantic(&self, server: &EmbedServer, query: &str) -> Vec<PassageHit> {
        let search = PassageQuery {
            text: query.to_owned(),
            vector: Some(server.vector(query)),
            mode: SearchMode::Semantic,
            fusion: Fusion::default(),
            limit: 1000,
        };
        self.setup
            .index()
            .search_passages(&search)
            .await
            .expect("semantic search")
    }

    /// Whether a semantic search for `word` finds a passage of `key` with that word alone
    /// (cosine about 1: the int8 scan rounds).
    async fn finds_by_meaning(&self, server: &EmbedServer, word: &str, key: &str) -> bool {
        self.semantic(server, word)
            .await
            .iter()
            .any(|hit| hit.key == key && hit.score > 0.95)
    }

    async fn recorded_model(&self) -> Option<EmbeddingModel> {
        self.setup
            .index()
            .recorded_model()
            .await
            .expect("read the recorded model")
    }
}

/// The outcome of one `s3-connector` run.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The `--json` report of a sync of one connector.
    fn report(&self) -> SyncReport {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "no JSON report ({e}):\n{}\n--- stderr ---\n{}",
                self.stdout,
                tail(&self.stderr)
            )
        })
    }
}

/// Runs the binary with `args` to its end.
fn run(args: &[&str]) -> Run {
    let output = Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run s3-connector");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `sync --json` of `config` (plus `extra` flags) in a process of its own.
fn sync(config: &Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "sync",
        "--config",
        config.to_str().expect("UTF-8 path"),
        "--json",
    ];
    args.extend_from_slice(extra);
    run(&args)
}

/// A sync (with `extra` flags) that must succeed; its report.
fn clean_sync(config: &Path, extra: &[&str]) -> SyncReport {
    let run = sync(config, extra);
    let report = run.report();
    assert_eq!(
        (run.code, report.errors),
        (Some(0), 0),
        "{:?}\n--- stderr ---\n{}",
        report.error_messages,
        tail(&run.stderr)
    );
    report
}

/// Checks that the committed document of `key` holds `text` cut into passages that cover it in
/// order, each with the endpoint's vector of its text, and no embedding error.
fn assert_embedded(bench: &Bench, server: &EmbedServer, key: &str, text: &str) {
    let document = bench
        .doc(key)
        .unwrap_or_else(|| panic!("{key} is not indexed"));
    assert_eq!(document.body.as_deref(), Some(text), "{key}");
    assert_eq!(document.embedding_error, None, "{key}");
    assert!(!document.passages.is_empty(), "{key} has no passages");
    let mut at = 0;
    for (ordinal, stored) in document.passages.iter().enumerate() {
        let passage = &stored.passage;
        assert_eq!(passage.ordinal as usize, ordinal, "{key}");
        assert_eq!(&text[passage.start..passage.end], passage.text, "{key}");
        assert!(
            text[at..passage.start].trim().is_empty(),
            "{key}: text between passages is lost: {:?}",
            &text[at..passage.start]
        );
        at = passage.end;
        let vector = stored
            .vector
            .as_ref()
            .unwrap_or_else(|| panic!("passage {ordinal} of {key} has no vector"));
        let expected = server.vector(&passage.text);
        assert_eq!(vector.len(), expected.len(), "{key}");
        assert!(
            vector
                .iter()
                .zip(&expected)
                .all(|(got, want)| (got - want).abs() < 1e-5),
            "passage {ordinal} of {key}: the vector is not the endpoint's for its text"
        );
    }
    assert!(text[at..].trim().is_empty(), "{key}: the end is lost");
}

#[tokio::test]
async fn a_changed_object_reembeds_only_its_changed_passages_and_a_deleted_one_leaves_search() {
    let bench = Bench::new("embed-reuse").await;
    let server = EmbedServer::start(DIMENSIONS);
    let config = bench.write_config(&server, "embed-a", DIMENSIONS);
    let one = paragraphs(&["alpha", "bravo", "charlie"]);
    let two = paragraphs(&["delta", "echo"]);
    bench.put("one.txt", &one).await;
    bench.put("two.txt", &two).await;
    bench
        .put("gone.txt", &paragraphs(&["foxtrot", "golf"]))
        .await;

    let first = clean_sync(&config, &[]);
    assert_eq!((first.added, first.passages_embedded), (3, 7), "{first:?}");
    assert_eq!(first.passages_reused, 0);
    let requests = server.requests();
    let mut texts = server.texts();
    texts.sort();
    let mut expected: Vec<String> = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf",
    ]
    .iter()
    .map(|word| paragraph(word))
    .collect();
    expected.sort();
    assert_eq!(texts, expected, "each passage embedded once");
    assert!(
        requests
            .iter()
            .all(|r| r.model == "embed-a" && r.dimensions == Some(DIMENSIONS as u64)),
        "every request names the model and asks for the configured dimensions: {requests:?}"
    );
    assert_embedded(&bench, &server, "one.txt", &one);
    assert!(bench.finds_by_meaning(&server, "foxtrot", "gone.txt").await);

    // One paragraph of one.txt changes, two.txt stays, gone.txt goes.
    let one_changed = paragraphs(&["alpha", "hotel", "charlie"]);
    bench.put("one.txt", &one_changed).await;
    bench.delete("gone.txt").await;
    server.clear();
    let second = clean_sync(&config, &[]);
    assert_eq!(
        (second.updated, second.unchanged, second.deleted),
        (1, 1, 1),
        "{second:?}"
    );
    assert_eq!(
        (second.passages_embedded, second.passages_reused),
        (1, 2),
        "{second:?}"
    );
    assert_eq!(
        server.texts(),
        [paragraph("hotel")],
        "the endpoint saw the changed passage only: not the unchanged ones of one.txt, \
         nothing of the unchanged two.txt"
    );
    assert_embedded(&bench, &server, "one.txt", &one_changed);
    assert_embedded(&bench, &server, "two.txt", &two);
    assert!(bench.finds_by_meaning(&server, "hotel", "one.txt").await);
    assert!(!bench.finds_by_meaning(&server, "bravo", "one.txt").await);
    assert!(bench.finds_by_meaning(&server, "echo", "two.txt").await);
    for word in ["foxtrot", "golf"] {
        let hits = bench.semantic(&server, word).await;
        assert!(
            hits.iter().all(|hit| hit.key != "gone.txt"),
            "a passage of the deleted object is still found for {word}: {hits:?}"
        );
    }
    assert_eq!(bench.doc("gone.txt"), None);

    server.clear();
    let third = clean_sync(&config, &[]);
    assert_eq!((third.unchanged, third.passages_embedded), (2, 0));
    assert!(
        server.requests().is_empty(),
        "an unchanged bucket costs no call"
    );
}

#[tokio::test]
async fn a_document_whose_embedding_failed_is_found_by_words_and_embedded_by_the_next_process() {
    let bench = Bench::new("embed-unfinished").await;
    let server = EmbedServer::start(DIMENSIONS);
    let config = bench.write_config(&server, "embed-a", DIMENSIONS);
    let good = paragraphs(&["alpha", "bravo"]);
    let bad = paragraphs(&["charlie", "kilo"]);
    bench.put("good.txt", &good).await;
    bench.put("bad.txt", &bad).await;
    server.fail_on(Some("kilo"));

    let failed = sync(&config, &[]);
    let report = failed.report();
    assert_ne!(failed.code, Some(0), "a failed document fails the sync");
    assert_eq!((report.added, report.errors), (2, 1), "{report:?}");
    assert_eq!(report.embedding_failures, 1);
    assert_eq!(report.passages_embedded, 2, "good.txt's passages only");
    assert!(
        report
            .error_messages
            .iter()
            .any(|m| m.contains("bad.txt") && m.contains("keyword search only")),
        "{:?}",
        report.error_messages
    );
    let stored = bench.doc("bad.txt").expect("bad.txt is indexed");
    assert!(
        stored
            .embedding_error
            .as_deref()
            .is_some_and(|e| e.contains("refused on purpose")),
        "{:?}",
        stored.embedding_error
    );
    assert_eq!(stored.passages.len(), 2, "its passages are kept, for words");
    assert!(stored.passages.iter().all(|p| p.vector.is_none()));
    let by_words = bench
        .setup
        .index()
        .search("charlie", 10)
        .await
        .expect("keyword search");
    assert_eq!(
        by_words.iter().map(|h| h.key.as_str()).collect::<Vec<_>>(),
        ["bad.txt"]
    );
    assert!(!bench.finds_by_meaning(&server, "charlie", "bad.txt").await);
    assert_embedded(&bench, &server, "good.txt", &good);

    // A new process, the endpoint healthy again: exactly bad.txt is embedded.
    server.fail_on(None);
    server.clear();
    let next = clean_sync(&config, &[]);
    assert_eq!(
        (next.unchanged, next.updated + next.added),
        (1, 1),
        "{next:?}"
    );
    assert_eq!((next.passages_embedded, next.passages_reused), (2, 0));
    let mut texts = server.texts();
    texts.sort();
    assert_eq!(texts, [paragraph("charlie"), paragraph("kilo")]);
    assert_embedded(&bench, &server, "bad.txt", &bad);
    assert!(bench.finds_by_meaning(&server, "kilo", "bad.txt").await);

    server.clear();
    let after = clean_sync(&config, &[]);
    assert_eq!((after.unchanged, after.passages_embedded), (2, 0));
    assert!(server.requests().is_empty(), "bad.txt is done now");
}

#[tokio::test]
async fn another_model_is_refused_until_sync_reembed_rebuilds_every_vector() {
    let bench = Bench::new("embed-reembed").await;
    let server_a = EmbedServer::start(DIMENSIONS);
    let server_b = EmbedServer::start(32);
    let texts = [
        ("a.txt", paragraphs(&["alpha", "bravo"])),
        ("b.txt", paragraphs(&["charlie"])),
    ];
    for (key, text) in &texts {
        bench.put(key, text).await;
    }
    let config = bench.write_config(&server_a, "model-a", DIMENSIONS);
    assert_eq!(clean_sync(&config, &[]).passages_embedded, 3);
    let before: Vec<_> = texts.iter().map(|(key, _)| bench.doc(key)).collect();
    let model_a = EmbeddingModel {
        id: "openai:model-a".into(),
        dimensions: DIMENSIONS,
    };
    assert_eq!(bench.recorded_model().await, Some(model_a.clone()));

    let config = bench.write_config(&server_b, "model-b", 32);
    let refused = sync(&config, &[]);
    assert_ne!(refused.code, Some(0), "{}", refused.stdout);
    let said = format!("{}{}", refused.stdout, refused.stderr);
    for name in [
        "openai:model-a (64 dimensions)",
        "openai:model-b (32 dimensions)",
        "--reembed",
    ] {
        assert!(said.contains(name), "{name} is not named in:\n{said}");
    }
    assert!(server_b.requests().is_empty(), "nothing was embedded");
    let after: Vec<_> = texts.iter().map(|(key, _)| bench.doc(key)).collect();
    assert_eq!(after, before, "the refused sync left the index as it was");
    assert_eq!(bench.recorded_model().await, Some(model_a));

    let report = clean_sync(&config, &["--reembed"]);
    assert_eq!((report.passages_embedded, report.passages_reused), (3, 0));
    assert_eq!(server_b.texts().len(), 3);
    assert!(server_b.requests().iter().all(|r| r.model == "model-b"));
    for (key, text) in &texts {
        assert_embedded(&bench, &server_b, key, text);
    }
    assert_eq!(
        bench.recorded_model().await.map(|m| m.id),
        Some("openai:model-b".to_owned())
    );

    let config_arg = config.to_str().expect("UTF-8 path");
    let search = run(&[
        "search", "--config", config_arg, "--mode", "semantic", "--json", "charlie",
    ]);
    assert_eq!(search.code, Some(0), "{}", search.stderr);
    let hits: Vec<serde_json::Value> = search
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON hit per line"))
        .collect();
    assert_eq!(hits.len(), 3, "every passage has a vector: {hits:?}");
    assert_eq!(hits[0]["key"], "b.txt", "{hits:?}");
    assert_eq!(hits[0]["passage"]["ordinal"], 0);
    assert_eq!(
        server_b.requests().last().map(|r| r.inputs.clone()),
        Some(vec!["charlie".to_owned()]),
        "the query was embedded by the connector's model"
    );
}

#[tokio::test]
async fn an_endpoint_refusing_dimensions_gets_requests_without_it_and_a_length_mismatch_names_it() {
    let bench = Bench::new("embed-dimensions").await;
    let text = paragraphs(&["alpha", "bravo"]);
    bench.put("a.txt", &text).await;
    bench.put("b.txt", &paragraphs(&["charlie"])).await;

    // The model makes vectors of the configured length anyway: the sync goes on without the
    // field, and says so.
    let server = EmbedServer::start(DIMENSIONS);
    server.refuse_dimensions(true);
    let config = bench.write_config(&server, "no-dimensions", DIMENSIONS);
    let run = sync(&config, &[]);
    let report = run.report();
    assert_eq!((run.code, report.errors), (Some(0), 0), "{report:?}");
    assert_eq!(report.passages_embedded, 3);
    let sent: Vec<_> = server.requests().iter().map(|r| r.dimensions).collect();
    assert_eq!(sent[0], Some(DIMENSIONS as u64), "{sent:?}");
    assert!(sent[1..].iter().all(Option::is_none), "{sent:?}");
    assert!(
        run.stderr.contains("refuses the `dimensions` field"),
        "{}",
        tail(&run.stderr)
    );
    assert_embedded(&bench, &server, "a.txt", &text);

    // The model makes another length: every failure names the field.
    let bench = Bench::new("embed-dimensions-wrong").await;
    bench.put("a.txt", &text).await;
    bench.put("b.txt", &paragraphs(&["charlie"])).await;
    let server = EmbedServer::start(32);
    server.refuse_dimensions(true);
    let config = bench.write_config(&server, "no-dimensions", DIMENSIONS);
    let run = sync(&config, &[]);
    let report = run.report();
    assert_ne!(run.code, Some(0));
    assert_eq!(report.embedding_failures, 2, "{report:?}");
    let failures: Vec<_> = report
        .error_messages
        .iter()
        .filter(|m| m.contains("embedding its passages failed"))
        .collect();
    assert_eq!(failures.len(), 2, "{:?}", report.error_messages);
    for message in failures {
        assert!(
            message.contains("refuses the `dimensions` field (embedding.dimensions is 64)")
                && message.contains("a vector of 32"),
            "{message}"
        );
    }
}

/// Runs `sync` with the sync's debug events on stderr, SIGKILLs it as soon as a line
/// containing `event` is read, and waits for it; true if the kill ended it.
fn sync_killed_at_event(config: &Path, event: &str) -> bool {
    let mut child = Command::new(BIN)
        .args(["sync", "--config"])
        .arg(config)
        .args(["--json", "--log-level", "warn,s3_connector=debug"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start s3-connector sync");
    let stderr = child.stderr.take().expect("stderr");
    let mut seen = false;
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        if !seen && line.contains(event) {
            seen = true;
            child.kill().expect("SIGKILL the sync");
        }
    }
    let status = child.wait().expect("wait for the sync");
    seen && !status.success()
}

/// Runs `sync` and SIGKILLs it while the endpoint holds its `nth` request (from 1) unanswered;
/// true if the sync got that far.
fn sync_killed_at_request(config: &Path, server: &EmbedServer, nth: usize) -> bool {
    server.clear();
    server.hold_from(Some(nth));
    let mut child = Command::new(BIN)
        .args(["sync", "--config"])
        .arg(config)
        .arg("--json")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start s3-connector sync");
    let reached = server.wait_for_requests(nth, REQUEST_WAIT);
    child.kill().expect("SIGKILL the sync");
    let status = child.wait().expect("wait for the sync");
    server.hold_from(None);
    reached && !status.success()
}

/// After a clean sync, documents, passages and vectors agree with the bucket (`model`: key ->
/// text): every object once with its text, every passage with the endpoint's vector of its
/// text, nothing of a deleted object, each document found by meaning.
async fn assert_agrees(
    bench: &Bench,
    server: &EmbedServer,
    model: &BTreeMap<String, String>,
    trial: &str,
) {
    let index = bench.setup.index();
    assert_eq!(index.count().expect("count"), model.len() as u64, "{trial}");
    for (key, text) in model {
        assert_embedded(bench, server, key, text);
        let word = text.split_whitespace().next().expect("a word");
        assert!(
            bench.finds_by_meaning(server, word, key).await,
            "{trial}: {key} is not found by meaning ({word})"
        );
    }
    let keys: Vec<_> = bench
        .semantic(server, "anything")
        .await
        .into_iter()
        .map(|hit| hit.key)
        .collect();
    for key in &keys {
        assert!(
            model.contains_key(key),
            "{trial}: a passage of {key}, which is not in the bucket, is still searched"
        );
    }
    let passages: usize = model.values().map(|text| text.split("\n\n").count()).sum();
    assert_eq!(keys.len(), passages, "{trial}: passages in the vector scan");
}

/// The text of `key` at `generation`: two or three paragraphs of words of their own.
fn generation_text(key_number: u64, generation: u64, rng: &mut Rng) -> String {
    let paragraphs = 2 + rng.below(2);
    let words: Vec<String> = (0..paragraphs)
        .map(|p| format!("k{key_number}g{generation}p{p}"))
        .collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    self::paragraphs(&words)
}

#[tokio::test]
async fn sigkill_during_a_sync_with_embeddings_then_documents_passages_and_vectors_agree() {
    let bench = Bench::new("embed-crash").await;
    let server = EmbedServer::start(DIMENSIONS);
    let config = bench.write_config(&server, "embed-a", DIMENSIONS);
    let mut rng = Rng(24);
    let mut model = BTreeMap::new();
    let mut next_key = 0;
    let mut generation = 0;
    for _ in 0..8 {
        let key = format!("doc{next_key:02}.txt");
        let text = generation_text(next_key, generation, &mut rng);
        bench.put(&key, &text).await;
        model.insert(key, text);
        next_key += 1;
    }

    // Kill points, each while a request is held unanswered or at a debug event: the fifth
    // request of the full sync (some vectors made, none written), the first and the third
    // request of syncs of changes (at least six passages to embed, two a request), the
    // deletions and the commit of syncs of changes.
    enum Point {
        Request(usize),
        Event(&'static str),
    }
    let points = [
        Point::Request(5),
        Point::Request(1),
        Point::Request(3),
        Point::Event("Deleting documents that left the bucket."),
        Point::Event("Committing."),
    ];
    for (trial, point) in points.iter().enumerate() {
        generation += 1;
        if trial > 0 {
            // Work for the sync about to be killed: overwrites, an addition, a deletion.
            let keys: Vec<String> = model.keys().cloned().collect();
            for key in keys.iter().take(2) {
                let number: u64 = key[3..5].parse().expect("key number");
                let text = generation_text(number, generation, &mut rng);
                bench.put(key, &text).await;
                model.insert(key.clone(), text);
            }
            let gone = keys.last().expect("a key").clone();
            bench.delete(&gone).await;
            model.remove(&gone);
            let key = format!("doc{next_key:02}.txt");
            let text = generation_text(next_key, generation, &mut rng);
            bench.put(&key, &text).await;
            model.insert(key, text);
            next_key += 1;
        }
        let name = match point {
            Point::Request(n) => format!("trial {trial}: killed holding request {n}"),
            Point::Event(event) => format!("trial {trial}: killed at {event:?}"),
        };
        let killed = match point {
            Point::Request(n) => sync_killed_at_request(&config, &server, *n),
            Point::Event(event) => sync_killed_at_event(&config, event),
        };
        assert!(killed, "{name}: the sync did not get there");
        server.clear();
        let report = clean_sync(&config, &[]);
        assert_eq!(report.objects_listed, model.len() as u64, "{name}");
        assert_agrees(&bench, &server, &model, &name).await;
        server.clear();
        let again = clean_sync(&config, &[]);
        assert_eq!(
            (
                again.added,
                again.updated,
                again.deleted,
                again.passages_embedded
            ),
            (0, 0, 0, 0),
            "{name}: the sync after the clean one changed something: {again:?}"
        );
        assert!(server.requests().is_empty(), "{name}");
    }
}
