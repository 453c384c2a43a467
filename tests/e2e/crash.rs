//! Crash trials: the real binary (`s3-connector sync`) is SIGKILLed at seeded moments of a sync
//! (right at the start, while listing and downloading, while writing a batch, while deleting
//! documents whose objects left the bucket, while committing), the bucket is changed (adds,
//! overwrites with new text, deletes), and a clean sync must leave the index holding exactly the
//! bucket: every key once, each body the object's current text, nothing stale; the sync after it
//! must find everything unchanged. Both sinks, against SeaweedFS (moto is too slow for thousands
//! of objects times dozens of syncs).
//!
//! Repeatable: `S3C_CRASH_SEED=<n>` replays a run (the seed is printed either way);
//! `S3C_CRASH_TRIALS` (per sink, default 10) and `S3C_CRASH_OBJECTS` (default 2000) scale it.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use futures::StreamExt as _;
use s3_connector::sink::DocId;
use s3_connector::sink::embedded::EmbeddedIndex;
use serde_json::Value;

use crate::fixture::{create_bucket, s3_client};
use crate::support::fault_proxy::{mix, unit_interval};
use crate::support::moto::{ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY};
use crate::support::{OsmemServer, SeaweedServer, unique_name};

const BIN: &str = env!("CARGO_BIN_EXE_s3-connector");
/// Debug events of the sync only: the SDK's debug output would flood the pipe.
const LOG_LEVEL: &str = "warn,s3_connector=debug";

unsafe extern "C" {
    /// POSIX `kill(2)`; the child is not reaped before it is waited for, so its pid stays ours.
    safe fn kill(pid: i32, signal: i32) -> i32;
}
const SIGKILL: i32 = 9;

/// A seeded pseudo-random sequence (splitmix64).
pub(crate) struct Rng(pub u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// A number in `0..n`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        (unit_interval(self.next()) * n as f64) as u64
    }
}

pub(crate) fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a number")),
        Err(_) => default,
    }
}

/// The number in `$var`, else a fresh one (print it: it replays the run).
pub(crate) fn seed_from(var: &str) -> u64 {
    match std::env::var(var) {
        Ok(seed) => seed
            .parse()
            .unwrap_or_else(|_| panic!("{var}={seed:?} is not a number")),
        Err(_) => mix(u64::from(std::process::id())
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)),
    }
}

/// The moment of a sync a trial aims its SIGKILL at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Start,
    ListingAndDownloads,
    BatchWrites,
    Deletion,
    Commit,
}

const PHASES: [Phase; 5] = [
    Phase::Start,
    Phase::ListingAndDownloads,
    Phase::BatchWrites,
    Phase::Deletion,
    Phase::Commit,
];

impl Phase {
    /// The debug event that opens this phase (`None`: the process start).
    fn event(self) -> Option<&'static str> {
        match self {
            Phase::Start => None,
            Phase::ListingAndDownloads => Some("Sync started."),
            Phase::BatchWrites => Some("Writing a batch."),
            Phase::Deletion => Some("Deleting documents that left the bucket."),
            Phase::Commit => Some("Committing."),
        }
    }

    /// The latest phase whose event is in `line`.
    fn of_line(line: &str) -> Option<Phase> {
        PHASES
            .iter()
            .rev()
            .find(|phase| phase.event().is_some_and(|event| line.contains(event)))
            .copied()
    }

    /// The most milliseconds the kill waits after the event: long enough to land inside the
    /// phase, short enough not to leave it.
    fn max_delay_ms(self) -> u64 {
        match self {
            Phase::Start => 60,
            Phase::ListingAndDownloads => 250,
            Phase::BatchWrites => 20,
            Phase::Deletion | Phase::Commit => 3,
        }
    }

    /// The first trial of these phases starts from an empty index, so the killed sync is a
    /// full sync of the whole bucket; later ones (and the other phases) kill a sync of changes.
    fn starts_on_empty_index(self) -> bool {
        matches!(self, Phase::Start | Phase::ListingAndDownloads)
    }
}

/// What happened to one killed sync.
struct Kill {
    /// The phase aimed at.
    aimed: Phase,
    /// The phase whose event was the last one read before the kill was sent.
    landed: Phase,
    /// False when the sync ended before the kill (the trial still checks convergence).
    killed: bool,
}

/// Runs `sync` and SIGKILLs it `delay` after the first line of `phase`'s event (after the start
/// for [`Phase::Start`]).
fn sync_and_kill(config: &Path, phase: Phase, delay: Duration) -> Kill {
    let mut child = Command::new(BIN)
        .args(["sync", "--config"])
        .arg(config)
        .args(["--json", "--log-level", LOG_LEVEL])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start s3-connector sync");
    let pid = i32::try_from(child.id()).expect("pid fits in i32");
    let stderr = child.stderr.take().expect("stderr");
    // The phase of the last event read, and whether the kill was sent, shared with the reader.
    let state = Arc::new(Mutex::new((Phase::Start, false)));
    let reader_state = Arc::clone(&state);
    let reader = thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let mut state = reader_state.lock().unwrap();
            if state.1 {
                continue; // drain
            }
            if let Some(now) = Phase::of_line(&line) {
                state.0 = now;
            }
            if phase.event().is_some_and(|event| line.contains(event)) {
                drop(state);
                thread::sleep(delay);
                let mut state = reader_state.lock().unwrap();
                kill(pid, SIGKILL);
                state.1 = true;
            }
        }
    });
    if phase == Phase::Start {
        thread::sleep(delay);
        let mut state = state.lock().unwrap();
        kill(pid, SIGKILL);
        state.1 = true;
    }
    let status = child.wait().expect("wait for s3-connector");
    reader.join().expect("stderr reader");
    let (landed, _) = *state.lock().unwrap();
    Kill {
        aimed: phase,
        landed,
        killed: status.signal() == Some(SIGKILL),
    }
}

/// Runs `sync --json` on `config` to its end; returns its report and stderr, after checking
/// that it exited 0.
pub(crate) fn sync_to_end(config: &Path) -> (Value, String) {
    let output = Command::new(BIN)
        .args(["sync", "--config"])
        .arg(config)
        .arg("--json")
        .env_remove("RUST_LOG")
        .output()
        .expect("run s3-connector sync");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(0),
        "the sync failed\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
        tail(&stderr)
    );
    let report = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("sync --json printed no report ({e}): {stdout}"));
    (report, stderr)
}

/// The last few KB of `text`.
pub(crate) fn tail(text: &str) -> &str {
    let start = text.len().saturating_sub(6000);
    let start = (start..text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    &text[start..]
}

/// Runs a sync to its end; returns its report, after checking it had no errors.
fn clean_sync(config: &Path) -> Value {
    let (report, stderr) = sync_to_end(config);
    assert_eq!(report["errors"], 0, "{report}\n{}", tail(&stderr));
    report
}

/// The sink a trial run writes to.
#[derive(Clone, Copy, Debug)]
enum SinkKind {
    Embedded,
    Osmem,
}

/// One sink's trials: its config file and how to read its index back.
struct Target {
    sink: SinkKind,
    dir: tempfile::TempDir,
    endpoint: String,
    bucket: String,
    /// The OpenSearch index name (a fresh one for each empty-index trial).
    index_name: String,
}

impl Target {
    fn config(&self) -> std::path::PathBuf {
        self.dir.path().join("config.yml")
    }

    /// Writes the config, pointing at the current index.
    fn write_config(&self) {
        let (index, index_name) = match self.sink {
            SinkKind::Embedded => (
                format!(
                    "  kind: embedded\n  path: {}",
                    self.dir.path().join("index").display()
                ),
                String::new(),
            ),
            SinkKind::Osmem => (
                format!(
                    "  kind: opensearch\n  url: {}\n  max_retries: 3",
                    OsmemServer::shared().url()
                ),
                format!("\n    index_name: {}", self.index_name),
            ),
        };
        let text = format!(
            "index:\n{index}\nconnectors:\n  - id: c{index_name}\n    buckets: [{bucket:?}]\n    region: {REGION}\n    endpoint_url: {endpoint}\n    aws_access_key_id: {ACCESS_KEY_ID}\n    aws_secret_access_key: {SECRET_ACCESS_KEY}\n    max_attempts: 3\n",
            bucket = self.bucket,
            endpoint = self.endpoint,
        );
        std::fs::write(self.config(), text).expect("write config");
    }

    /// Starts over with an empty index.
    fn empty_index(&mut self) {
        match self.sink {
            SinkKind::Embedded => {
                let _ = std::fs::remove_dir_all(self.dir.path().join("index"));
            }
            SinkKind::Osmem => {
                let old = std::mem::replace(&mut self.index_name, unique_name("s3c-crash"));
                OsmemServer::shared().request("DELETE", &format!("/{old}"), "");
            }
        }
        self.write_config();
    }

    /// Every indexed document as `(id, key, body)`, duplicates included.
    async fn documents(&self) -> Vec<(String, String, String)> {
        match self.sink {
            SinkKind::Embedded => {
                embedded_documents(&self.dir.path().join("index/c"), &self.bucket).await
            }
            SinkKind::Osmem => osmem_documents(&self.index_name),
        }
    }
}

/// Every document of `bucket` in the embedded index at `dir` as `(id, key, body)`; checks that
/// the index counts no document twice.
pub(crate) async fn embedded_documents(dir: &Path, bucket: &str) -> Vec<(String, String, String)> {
    let index = EmbeddedIndex::open_or_create(dir).expect("open the embedded index");
    let ids = s3_connector::sink::collect_versions(&index, bucket)
        .await
        .expect("read versions");
    let count = index.count().expect("count");
    let documents: Vec<_> = ids
        .into_keys()
        .map(|id| {
            let document = index.get(id).expect("get").expect("a listed id exists");
            (
                id.to_string(),
                document.key,
                document.body.unwrap_or_default(),
            )
        })
        .collect();
    // Only a duplicate makes the live document count exceed the distinct ids.
    assert_eq!(
        count,
        documents.len() as u64,
        "the embedded index counts {count} documents for {} distinct ids",
        documents.len()
    );
    documents
}

/// Every document of osmem's index `index_name` as `(id, key, body)`, read directly (not
/// through any proxy); checks `_count` against the hits.
pub(crate) fn osmem_documents(index_name: &str) -> Vec<(String, String, String)> {
    let osmem = OsmemServer::shared();
    let query = r#"{"size": 10000, "query": {"match_all": {}}, "_source": ["key", "body"]}"#;
    let answer = osmem.json("POST", &format!("/{index_name}/_search"), query);
    let hits = answer["hits"]["hits"].as_array().expect("hits").clone();
    let count = osmem.json("GET", &format!("/{index_name}/_count"), "")["count"]
        .as_u64()
        .expect("count");
    assert_eq!(count, hits.len() as u64, "_count against the _search hits");
    hits.iter()
        .map(|hit| {
            (
                hit["_id"].as_str().expect("_id").to_owned(),
                hit["_source"]["key"].as_str().expect("key").to_owned(),
                hit["_source"]["body"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

/// The text of `key` at generation `generation`: distinct for every write.
pub(crate) fn text(key: &str, generation: u64, rng: &mut Rng) -> String {
    const WORDS: [&str; 8] = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
    ];
    let words: Vec<&str> = (0..8 + rng.below(16))
        .map(|_| WORDS[rng.below(8) as usize])
        .collect();
    format!("{key} generation {generation} {}", words.join(" "))
}

/// Applies changes to the bucket and to `model` (key -> text): `overwrite` existing keys get
/// new text, `add` new keys appear, `delete` keys go.
pub(crate) async fn mutate(
    s3: &Client,
    bucket: &str,
    model: &mut BTreeMap<String, String>,
    next_key: &mut u64,
    generation: u64,
    (overwrite, add, delete): (usize, usize, usize),
    rng: &mut Rng,
) {
    let mut keys: Vec<String> = model.keys().cloned().collect();
    let mut chosen = Vec::new();
    while chosen.len() < overwrite + delete && !keys.is_empty() {
        chosen.push(keys.swap_remove(rng.below(keys.len() as u64) as usize));
    }
    let (to_delete, to_overwrite) = chosen.split_at(delete.min(chosen.len()));
    let mut puts = Vec::new();
    for key in to_overwrite {
        puts.push((key.clone(), text(key, generation, rng)));
    }
    for _ in 0..add {
        let key = format!("docs/{:06}.txt", *next_key);
        *next_key += 1;
        puts.push((key.clone(), text(&key, generation, rng)));
    }
    let writes = futures::stream::iter(puts.iter().cloned())
        .map(|(key, body)| async move {
            crate::fixture::put(s3, bucket, &key, body.into_bytes()).await;
        })
        .buffer_unordered(32)
        .collect::<Vec<()>>();
    let deletes = futures::stream::iter(to_delete.iter().cloned())
        .map(|key| async move { crate::fixture::delete(s3, bucket, &key).await })
        .buffer_unordered(32)
        .collect::<Vec<()>>();
    futures::join!(writes, deletes);
    for (key, body) in puts {
        model.insert(key, body);
    }
    for key in to_delete {
        model.remove(key);
    }
}

/// Checks that `documents` (`(id, key, body)`) are exactly `model` (key -> text) of `bucket`:
/// every key once, under its id, with its text.
pub(crate) fn assert_documents_are(
    documents: &[(String, String, String)],
    bucket: &str,
    model: &BTreeMap<String, String>,
    trial: &str,
) {
    let mut by_key: HashMap<&str, Vec<(&str, &str)>> = HashMap::new();
    for (id, key, body) in documents {
        by_key.entry(key).or_default().push((id, body));
    }
    let duplicated: Vec<_> = by_key.iter().filter(|(_, d)| d.len() > 1).collect();
    assert!(
        duplicated.is_empty(),
        "{trial}: keys indexed more than once: {duplicated:?}"
    );
    let missing: Vec<_> = model
        .keys()
        .filter(|k| !by_key.contains_key(k.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{trial}: missing from the index: {missing:?}"
    );
    let extra: Vec<_> = by_key.keys().filter(|k| !model.contains_key(**k)).collect();
    assert!(
        extra.is_empty(),
        "{trial}: indexed but not in the bucket: {extra:?}"
    );
    for (key, text) in model {
        let (id, body) = by_key[key.as_str()][0];
        assert_eq!(
            id,
            DocId::of(bucket, key).to_string(),
            "{trial}: id of {key}"
        );
        assert_eq!(body, text, "{trial}: stale or wrong text for {key}");
    }
}

/// Seeds `objects` objects, then runs `trials` kill-mutate-resync-check rounds on `sink`.
async fn crash_trials(sink: SinkKind) {
    let seed = seed_from("S3C_CRASH_SEED");
    let trials = env_number("S3C_CRASH_TRIALS", 10);
    let objects = env_number("S3C_CRASH_OBJECTS", 2000);
    eprintln!(
        "crash trials on {sink:?}: S3C_CRASH_SEED={seed} S3C_CRASH_TRIALS={trials} S3C_CRASH_OBJECTS={objects}"
    );
    let mut rng = Rng(seed);
    let seaweed = SeaweedServer::shared();
    let s3 = s3_client(&seaweed.endpoint());
    let bucket = unique_name("crash");
    create_bucket(&s3, &bucket).await;
    let mut target = Target {
        sink,
        dir: tempfile::tempdir().expect("temp dir"),
        endpoint: seaweed.endpoint(),
        bucket: bucket.clone(),
        index_name: unique_name("s3c-crash"),
    };
    target.write_config();

    let started = Instant::now();
    let mut model = BTreeMap::new();
    let mut next_key = 0;
    mutate(
        &s3,
        &bucket,
        &mut model,
        &mut next_key,
        0,
        (0, objects as usize, 0),
        &mut rng,
    )
    .await;
    eprintln!("seeded {objects} objects in {:?}", started.elapsed());

    let mut kills = Vec::new();
    for trial in 0..trials {
        let phase = PHASES[(trial as usize) % PHASES.len()];
        let name = format!("seed {seed}, {sink:?} trial {trial} ({phase:?})");
        if phase.starts_on_empty_index() && trial < PHASES.len() as u64 {
            target.empty_index();
        } else {
            // Work for the sync about to be killed: new text to download and write, documents
            // to delete (well under the 100 a mass-delete guard would hold back).
            let generation = 2 * trial + 1;
            mutate(
                &s3,
                &bucket,
                &mut model,
                &mut next_key,
                generation,
                (150, 30, 30),
                &mut rng,
            )
            .await;
        }
        let delay = Duration::from_millis(rng.below(phase.max_delay_ms() + 1));
        let step = Instant::now();
        let kill = sync_and_kill(&target.config(), phase, delay);
        let killed_after = step.elapsed();
        mutate(
            &s3,
            &bucket,
            &mut model,
            &mut next_key,
            2 * trial + 2,
            (20, 20, 20),
            &mut rng,
        )
        .await;
        let step = Instant::now();
        let report = clean_sync(&target.config());
        let clean = step.elapsed();
        assert_eq!(report["objects_listed"], model.len(), "{name}: {report}");
        let step = Instant::now();
        assert_documents_are(&target.documents().await, &bucket, &model, &name);
        let checked = step.elapsed();
        let again = clean_sync(&target.config());
        assert_eq!(
            (&again["added"], &again["updated"], &again["deleted"]),
            (&Value::from(0), &Value::from(0), &Value::from(0)),
            "{name}: the sync after the clean one changed something: {again}"
        );
        eprintln!(
            "{name}: SIGKILL {} ms after the event: {}, last event read {:?}; \
             killed sync {} ms, clean sync {} ms (added {}, updated {}, deleted {}), check {} ms",
            delay.as_millis(),
            if kill.killed {
                "killed"
            } else {
                "the sync had already ended"
            },
            kill.landed,
            killed_after.as_millis(),
            clean.as_millis(),
            report["added"],
            report["updated"],
            report["deleted"],
            checked.as_millis(),
        );
        kills.push(kill);
        assert_eq!(again["unchanged"], model.len(), "{name}: {again}");
    }

    let mut table = String::new();
    for phase in PHASES {
        let aimed: Vec<&Kill> = kills.iter().filter(|k| k.aimed == phase).collect();
        let killed = aimed.iter().filter(|k| k.killed).count();
        let inside = aimed
            .iter()
            .filter(|k| k.killed && k.landed == phase)
            .count();
        table.push_str(&format!(
            "  {phase:?}: {} trial(s), {killed} killed, {inside} killed with that phase's event the last one read\n",
            aimed.len()
        ));
    }
    let killed = kills.iter().filter(|k| k.killed).count();
    eprintln!(
        "crash trials on {sink:?} (S3C_CRASH_SEED={seed}): {trials} trials, {killed} SIGKILLs, {} objects at the end, every clean sync converged, every following sync unchanged; {:.1} s\n{table}",
        model.len(),
        started.elapsed().as_secs_f64()
    );
    // Every phase must really have been hit, or the test proves less than it claims.
    if trials >= PHASES.len() as u64 {
        for phase in PHASES {
            assert!(
                kills.iter().any(|k| k.aimed == phase && k.killed),
                "seed {seed}: no trial killed a sync aimed at {phase:?}\n{table}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_any_moment_then_a_clean_sync_converges_embedded() {
    crash_trials(SinkKind::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_any_moment_then_a_clean_sync_converges_osmem() {
    crash_trials(SinkKind::Osmem).await;
}
