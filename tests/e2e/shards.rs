//! Sharded syncs as users run them: N concurrent `s3-connector sync --shard I/N` processes on
//! one SeaweedFS bucket, writing to the OpenSearch emulator, against one unsharded worker's
//! index: through adds, overwrites and deletes, by prefix and by range (boundaries from
//! `plan-shards`); a shard whose listing fails (fault proxy) deletes nothing while the others
//! go on; odd keys land in exactly one shard; the embedded index refuses N > 1.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use s3_connector::sink::{DocId, VersionStamp};
use s3_connector::sync::shard::shard_of_group;

use crate::cli::{run_with_env, text};
use crate::fixture::{Setup, create_bucket, delete, put, s3_client};
use crate::support::{Fault, FaultProxy, Match, OsmemServer, SeaweedServer, unique_name};

/// Keys spread over folders of several depths, with root-level keys and odd characters.
const KEYS: [&str; 24] = [
    "docs/a.txt",
    "docs/b.txt",
    "docs/sub/c.txt",
    "docs/sub/deeper/d.txt",
    "img/e.txt",
    "img/f g.txt",
    "reports/2026/q1.txt",
    "reports/2026/q2.txt",
    "reports/2025/q4.txt",
    "100%/h.txt",
    "plus+sign/i+j.txt",
    "caf\u{e9}/\u{2603} snow.txt",
    "with space/k.txt",
    "root-a.txt",
    "root b.txt",
    "m",
    "m0.txt",
    "n/o.txt",
    "p/q.txt",
    "x/y/z.txt",
    "zz/last.txt",
    "emoji/\u{1F600}.txt",
    "tenant-1/2026/a.txt",
    "tenant-2/2026/b.txt",
];

/// Runs the binary once per shard, all at once, and waits for each.
fn run_shards(config: &Path, count: u32, extra_env: &[(&str, &str)]) -> Vec<Output> {
    let children: Vec<_> = (0..count)
        .map(|index| {
            Command::new(env!("CARGO_BIN_EXE_s3-connector"))
                .args(["sync", "--json", "--config"])
                .arg(config)
                .env("S3C_SHARD", format!("{index}/{count}"))
                .env_remove("RUST_LOG")
                .envs(extra_env.iter().copied())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start s3-connector")
        })
        .collect();
    children
        .into_iter()
        .map(|child| child.wait_with_output().expect("wait for s3-connector"))
        .collect()
}

/// The JSON report a `sync --json` printed.
fn report(output: &Output) -> Value {
    let stdout = text(&output.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "not a JSON report ({e}): {stdout}\n{}",
            text(&output.stderr)
        )
    })
}

/// Every document of `bucket` in the setup's index: id → version.
async fn contents(setup: &Setup, bucket: &str) -> HashMap<DocId, VersionStamp> {
    let index = setup.sink().await;
    s3_connector::with_sink!(&index, sink => s3_connector::sink::collect_versions(sink, bucket).await)
        .expect("read the index")
}

/// Writes a config for `setup` reading `bucket` through `endpoint` with `extra` connector
/// lines, under `name` in the setup's directory, and returns its path.
fn write_config(setup: &Setup, name: &str, endpoint: &str, bucket: &str, extra: &str) -> PathBuf {
    let path = setup.dir.path().join(name);
    std::fs::write(&path, setup.config_text(endpoint, &[bucket], extra)).expect("write config");
    path
}

/// Runs `sync --json --config CONFIG [--shard SHARD]` and returns what it did.
fn sync_json(config: &Path, shard: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_s3-connector"));
    command.args(["sync", "--json", "--config"]).arg(config);
    if let Some(shard) = shard {
        command.args(["--shard", shard]);
    }
    command
        .env_remove("RUST_LOG")
        .output()
        .expect("run s3-connector")
}

/// Syncs the whole bucket once with the binary and returns its report.
fn sync_whole(config: &Path) -> Value {
    let output = sync_json(config, None);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    report(&output)
}

/// Runs the shards, checks each succeeded and that their `objects_listed` add up to `listed`.
fn sync_shards(config: &Path, count: u32, listed: u64) {
    let outputs = run_shards(config, count, &[]);
    let mut total = 0;
    for (index, output) in outputs.iter().enumerate() {
        assert_eq!(
            output.status.code(),
            Some(0),
            "shard {index}: {}",
            text(&output.stderr)
        );
        let report = report(output);
        assert_eq!(report["shard"], format!("{index}/{count}"), "{report}");
        assert_eq!(report["errors"], 0, "{report}");
        total += report["objects_listed"].as_u64().expect("a count");
    }
    assert_eq!(
        total, listed,
        "the shards' objects_listed do not add up to the bucket's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shard_processes_make_the_one_worker_index_through_changes() {
    let seaweed = SeaweedServer::shared();
    let endpoint = seaweed.endpoint();
    let s3 = s3_client(&endpoint);
    let bucket = unique_name("shards");
    create_bucket(&s3, &bucket).await;
    for (n, key) in KEYS.iter().enumerate() {
        put(&s3, &bucket, key, format!("object {n} at {key}")).await;
    }
    let osmem = OsmemServer::shared();
    let one = Setup::opensearch(&osmem.url(), "");
    let sharded = Setup::opensearch(&osmem.url(), "");
    let one_config = write_config(&one, "one.yml", &endpoint, &bucket, "");
    let by_prefix = write_config(&sharded, "prefix.yml", &endpoint, &bucket, "");

    // Round 1: everything new. Three shards by the top-level folder.
    let whole = sync_whole(&one_config);
    assert_eq!(whole["added"], KEYS.len() as u64, "{whole}");
    sync_shards(&by_prefix, 3, KEYS.len() as u64);
    assert_eq!(
        contents(&sharded, &bucket).await,
        contents(&one, &bucket).await
    );

    // Round 2: overwrites, deletes and adds; four shards by two levels of folders.
    for key in ["docs/a.txt", "reports/2026/q1.txt", "root-a.txt", "m"] {
        put(&s3, &bucket, key, format!("rewritten {key}")).await;
    }
    for key in [
        "docs/b.txt",
        "img/f g.txt",
        "root b.txt",
        "tenant-2/2026/b.txt",
    ] {
        delete(&s3, &bucket, key).await;
    }
    for key in ["new/one.txt", "docs/sub/new.txt", "n0.txt"] {
        put(&s3, &bucket, key, format!("new {key}")).await;
    }
    let by_depth = write_config(
        &sharded,
        "depth.yml",
        &endpoint,
        &bucket,
        "    sharding: {by: prefix, depth: 2}",
    );
    let whole = sync_whole(&one_config);
    let listed = whole["objects_listed"].as_u64().expect("a count");
    assert_eq!(listed, KEYS.len() as u64 - 1, "{whole}");
    sync_shards(&by_depth, 4, listed);
    assert_eq!(
        contents(&sharded, &bucket).await,
        contents(&one, &bucket).await
    );

    // Round 3: boundaries proposed by plan-shards, pasted into the config; two shards by range.
    let output = run_with_env(
        &[
            "plan-shards",
            "--config",
            by_prefix.to_str().expect("utf-8 path"),
            "--connector",
            "c",
            "--shards",
            "2",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let plan = text(&output.stdout);
    let block: String = plan
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(block.contains("by: range"), "{plan}");
    let by_range = write_config(&sharded, "range.yml", &endpoint, &bucket, &block);
    put(&s3, &bucket, "docs/a.txt", "rewritten again").await;
    delete(&s3, &bucket, "x/y/z.txt").await;
    let whole = sync_whole(&one_config);
    let listed = whole["objects_listed"].as_u64().expect("a count");
    sync_shards(&by_range, 2, listed);
    assert_eq!(
        contents(&sharded, &bucket).await,
        contents(&one, &bucket).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_keys_land_in_exactly_one_shard() {
    let seaweed = SeaweedServer::shared();
    let endpoint = seaweed.endpoint();
    let s3 = s3_client(&endpoint);
    let bucket = unique_name("shards-odd");
    create_bucket(&s3, &bucket).await;
    for key in KEYS {
        put(&s3, &bucket, key, format!("text of {key}")).await;
    }
    let osmem = OsmemServer::shared();
    let one = Setup::opensearch(&osmem.url(), "");
    sync_whole(&write_config(&one, "one.yml", &endpoint, &bucket, ""));
    let expected = contents(&one, &bucket).await;
    assert_eq!(expected.len(), KEYS.len());
    // Each shard writes an index of its own, so each shard's part can be read alone.
    let count = 3;
    let mut union: BTreeMap<DocId, VersionStamp> = BTreeMap::new();
    for index in 0..count {
        let own = Setup::opensearch(&osmem.url(), "");
        let config = write_config(
            &own,
            "shard.yml",
            &endpoint,
            &bucket,
            "    sharding: {by: prefix, depth: 2}",
        );
        let output = sync_json(&config, Some(&format!("{index}/{count}")));
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
        let part = contents(&own, &bucket).await;
        assert_eq!(report(&output)["objects_listed"], part.len() as u64);
        for (id, version) in part {
            assert!(union.insert(id, version).is_none(), "{id} is in two shards");
        }
    }
    assert_eq!(union, expected.into_iter().collect::<BTreeMap<_, _>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_whose_listing_fails_deletes_nothing_and_the_others_go_on() {
    let seaweed = SeaweedServer::shared();
    let endpoint = seaweed.endpoint();
    let s3 = s3_client(&endpoint);
    let bucket = unique_name("shards-fail");
    create_bucket(&s3, &bucket).await;
    // Ten folders of three objects: each of two shards owns some.
    let folders: Vec<String> = (0..10).map(|n| format!("folder{n}/")).collect();
    for folder in &folders {
        for n in 0..3 {
            put(
                &s3,
                &bucket,
                &format!("{folder}{n}.txt"),
                format!("{folder} {n}"),
            )
            .await;
        }
    }
    let owner = |folder: &str| shard_of_group(folder, 2);
    assert!(folders.iter().any(|f| owner(f) == 0) && folders.iter().any(|f| owner(f) == 1));
    let osmem = OsmemServer::shared();
    let sharded = Setup::opensearch(&osmem.url(), "");
    let direct = write_config(&sharded, "direct.yml", &endpoint, &bucket, "");
    sync_shards(&direct, 2, 30);

    // One object of every folder goes; shard 1 lists through a proxy that fails the listing of
    // one of its folders (every attempt).
    for folder in &folders {
        delete(&s3, &bucket, &format!("{folder}0.txt")).await;
    }
    let failing_folder = folders
        .iter()
        .find(|f| owner(f) == 1)
        .expect("shard 1 owns a folder");
    let proxy = FaultProxy::start(&endpoint);
    let rule = proxy.inject(
        Fault::internal_error(),
        Match::any()
            .method("GET")
            .query_contains(&format!("prefix={}", failing_folder.replace('/', "%2F"))),
        None,
    );
    let proxied = write_config(&sharded, "proxied.yml", &proxy.endpoint(), &bucket, "");
    let before = contents(&sharded, &bucket).await;
    let shard0 = sync_json(&direct, Some("0/2"));
    // Through the proxy: another endpoint to the retarget guard, allowed explicitly.
    let proxied_shard1 = || {
        Command::new(env!("CARGO_BIN_EXE_s3-connector"))
            .args(["sync", "--json", "--retarget", "--shard", "1/2", "--config"])
            .arg(&proxied)
            .env_remove("RUST_LOG")
            .output()
            .expect("run s3-connector")
    };
    let shard1 = proxied_shard1();
    assert!(rule.applied() > 0, "the fault never applied");
    assert_eq!(shard0.status.code(), Some(0), "{}", text(&shard0.stderr));
    assert_eq!(shard1.status.code(), Some(1), "{}", text(&shard1.stdout));
    let failed = report(&shard1);
    assert!(
        failed["error_messages"][0]
            .as_str()
            .is_some_and(|m| m.contains("nothing was deleted")),
        "{failed}"
    );
    assert_eq!(failed["deleted"], 0, "{failed}");
    assert_eq!(
        report(&shard0)["deleted"],
        folders.iter().filter(|f| owner(f) == 0).count() as u64
    );

    let after = contents(&sharded, &bucket).await;
    for folder in &folders {
        let id = DocId::of(&bucket, &format!("{folder}0.txt"));
        if owner(folder) == 0 {
            assert!(!after.contains_key(&id), "shard 0 kept {folder}0.txt");
        } else {
            assert!(
                after.contains_key(&id),
                "the failing shard deleted {folder}0.txt"
            );
        }
    }
    assert_eq!(
        after.len(),
        before.len() - folders.iter().filter(|f| owner(f) == 0).count()
    );
    // The next sync of shard 1 without the fault converges.
    proxy.clear_faults();
    let again = proxied_shard1();
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    assert_eq!(contents(&sharded, &bucket).await.len(), 20);
}

#[test]
fn shard_arguments_are_validated_with_exit_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let embedded = dir.path().join("embedded.yml");
    std::fs::write(
        &embedded,
        "connectors:\n  - id: c\n    buckets: [bkt]\n    endpoint_url: http://127.0.0.1:1\n",
    )
    .expect("write config");
    let path = embedded.to_str().expect("utf-8 path");
    // The embedded index has one writer: N > 1 is refused.
    for args in [
        vec!["sync", "--config", path, "--shard", "1/2"],
        vec!["run", "--config", path, "--shard", "0/4"],
    ] {
        let output = run_with_env(&args, &[]);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = text(&output.stderr);
        assert!(stderr.contains("needs the OpenSearch index"), "{stderr}");
        assert!(stderr.contains("single writer"), "{stderr}");
    }
    let output = run_with_env(&["sync", "--config", path], &[("S3C_SHARD", "4/4")]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("--shard") && stderr.contains("\"4/4\" is out of range"),
        "{stderr}"
    );

    let ranged = dir.path().join("ranged.yml");
    std::fs::write(
        &ranged,
        "index: {kind: opensearch, url: http://127.0.0.1:1}\nconnectors:\n  - id: c\n    buckets: [bkt]\n    sharding: {by: range, boundaries: [m]}\n",
    )
    .expect("write config");
    let output = run_with_env(
        &[
            "sync",
            "--config",
            ranged.to_str().expect("utf-8 path"),
            "--shard",
            "0/3",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("1 boundaries, which make 2 shards, so N must be 2"),
        "{stderr}"
    );

    std::fs::write(
        &ranged,
        "connectors:\n  - id: c\n    buckets: [bkt]\n    sharding: {by: range, boundaries: [m, a]}\n",
    )
    .expect("write config");
    let output = run_with_env(
        &["validate", "--config", ranged.to_str().expect("utf-8 path")],
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("connectors[0].sharding.boundaries[1]: \"a\" must sort after the boundary before it (\"m\")"),
        "{}",
        text(&output.stderr)
    );
}

/// The manifests of deploy/kubernetes (validated against the API schemas by
/// scripts/validate-kubernetes) agree with the binary: the ConfigMap's config is valid and can be
/// sharded N ways, N is the same in the CronJob's completions, parallelism and `--shard`
/// argument and in the StatefulSet's replicas and `S3C_SHARD`, and the pods run as the image's
/// non-root user with a read-only root file system.
#[test]
fn kubernetes_manifests_agree_with_the_binary() {
    let manifest = |name: &str| -> yaml_serde::Value {
        let path = crate::fixture::repo_path(&format!("deploy/kubernetes/{name}"));
        let text = std::fs::read_to_string(&path).expect("read a manifest");
        yaml_serde::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let count = |shard: &str, what: &str| -> u32 {
        let (_, n) = shard
            .rsplit_once('/')
            .unwrap_or_else(|| panic!("{what}: {shard}"));
        n.parse().unwrap_or_else(|_| panic!("{what}: {shard}"))
    };
    let cronjob = manifest("cronjob.yaml");
    let job = &cronjob["spec"]["jobTemplate"]["spec"];
    assert_eq!(job["completionMode"].as_str(), Some("Indexed"));
    let pod = &job["template"]["spec"];
    let args: Vec<&str> = pod["containers"][0]["args"]
        .as_sequence()
        .expect("args")
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    let shard = args[args.iter().position(|a| *a == "--shard").expect("--shard") + 1];
    assert!(shard.starts_with("$(JOB_COMPLETION_INDEX)/"), "{shard}");
    let n = count(shard, "cronjob --shard");
    assert_eq!(job["completions"].as_u64(), Some(u64::from(n)));
    assert_eq!(job["parallelism"].as_u64(), Some(u64::from(n)));

    let statefulset = manifest("statefulset.yaml");
    let worker = &statefulset["spec"]["template"]["spec"];
    let env = worker["containers"][0]["env"].as_sequence().expect("env");
    let value_of = |name: &str| {
        env.iter()
            .find(|e| e["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("no {name}"))
    };
    assert_eq!(
        value_of("POD_INDEX")["valueFrom"]["fieldRef"]["fieldPath"].as_str(),
        Some("metadata.labels['apps.kubernetes.io/pod-index']")
    );
    let s3c_shard = value_of("S3C_SHARD")["value"].as_str().expect("S3C_SHARD");
    assert!(s3c_shard.starts_with("$(POD_INDEX)/"), "{s3c_shard}");
    assert_eq!(
        statefulset["spec"]["replicas"].as_u64(),
        Some(u64::from(count(s3c_shard, "S3C_SHARD")))
    );

    for spec in [pod, worker] {
        let security = &spec["securityContext"];
        assert_eq!(security["runAsUser"].as_u64(), Some(10001));
        assert_eq!(security["runAsNonRoot"].as_bool(), Some(true));
        let container = &spec["containers"][0]["securityContext"];
        assert_eq!(container["readOnlyRootFilesystem"].as_bool(), Some(true));
        assert_eq!(container["allowPrivilegeEscalation"].as_bool(), Some(false));
        assert_eq!(container["capabilities"]["drop"][0].as_str(), Some("ALL"));
    }

    let configmap = manifest("configmap.yaml");
    let text = configmap["data"]["config.yml"]
        .as_str()
        .expect("config.yml");
    let config =
        s3_connector::config::parse(text, Path::new("configmap.yaml"), Path::new("."), &|name| {
            (name == "OPENSEARCH_PASSWORD").then(|| "x".to_owned())
        })
        .unwrap_or_else(|e| panic!("the ConfigMap's config is invalid: {e}"));
    for index in 0..n {
        let spec = s3_connector::sync::ShardSpec { index, count: n };
        s3_connector::sync::ConfigShards::new(spec, &config)
            .unwrap_or_else(|e| panic!("shard {spec}: {e}"));
    }
}
