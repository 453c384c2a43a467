//! The `s3-connector` binary as a user runs it: exit codes, `--json` output, error messages.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::fixture::{Setup, create_bucket, put, s3_client};
use crate::support::moto::SECRET_ACCESS_KEY;
use crate::support::{MotoServer, unique_name};

const SECRET: &str = "s3c-secret-DO-NOT-LEAK";
const TOKEN: &str = "s3c-token-DO-NOT-LEAK";

fn run(args: &[&str]) -> Output {
    run_with_env(args, &[])
}

/// Runs the binary with `args` and these environment variables set (and `RUST_LOG` unset).
pub(crate) fn run_with_env(args: &[&str], envs: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_s3-connector"))
        .args(args)
        .env_remove("RUST_LOG")
        .envs(envs.iter().copied())
        .output()
        .expect("run s3-connector")
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn validate_lists_every_problem_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yml");
    std::fs::write(
        &path,
        "connectors:\n  - id: Bad_Id\n    buckets: [\"UPPER\"]\n    aws_access_key_id: AKIAEXAMPLE\n    aws_secret_access_key: hunter2-very-secret\n    expected_bucket_owner: \"42\"\n    page_size: 5000\n",
    )
    .unwrap();
    let output = run(&["validate", "--config", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    for expected in [
        "4 problem(s)",
        "connectors[0].id: \"Bad_Id\" must match",
        "connectors[0].buckets[0]: \"UPPER\" has 'U' at position 1",
        "connectors[0].expected_bucket_owner: \"42\" must be a 12-digit AWS account id",
        "connectors[0].page_size: 5000 is out of range",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    assert!(!stderr.contains("hunter2"), "{stderr}");

    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.yml");
    let output = run(&["validate", "--config", example.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("valid (1 connector)"));

    let output = run(&["validate", "--config", "/no/such/config.yml"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("cannot read config file /no/such/config.yml"));
}

#[tokio::test]
async fn sync_json_reports_search_finds_and_failures_exit_non_zero() {
    let moto = MotoServer::shared();
    let endpoint = moto.endpoint();
    let s3 = s3_client(&endpoint);
    let bucket = unique_name("cli");
    create_bucket(&s3, &bucket).await;
    put(
        &s3,
        &bucket,
        "notes/quarterly.txt",
        "quarterly revenue summary",
    )
    .await;
    put(&s3, &bucket, "notes/other.md", "unrelated words").await;
    let setup = Setup::new();
    let config_path = setup.dir.path().join("cli.yml");
    // Distinctive secrets (moto does not check them while IAM enforcement is off), to prove
    // they never reach logs or reports.
    let config_text = setup.config_text(&endpoint, &[&bucket], "").replace(
        &format!("aws_secret_access_key: {SECRET_ACCESS_KEY}"),
        &format!("aws_secret_access_key: {SECRET}\n    aws_session_token: {TOKEN}"),
    );
    assert!(config_text.contains(SECRET));
    std::fs::write(&config_path, config_text).unwrap();
    let config = config_path.to_str().unwrap();

    let output = run(&["sync", "--config", config, "--json", "--log-level", "debug"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one JSON object per connector: {stdout}");
    let report: Value = serde_json::from_str(lines[0]).unwrap();
    for field in [
        "connector",
        "added",
        "updated",
        "unchanged",
        "deleted",
        "metadata_only",
        "extraction_errors",
        "errors",
        "objects_listed",
        "bytes_downloaded",
        "duration_ms",
    ] {
        assert!(report.get(field).is_some(), "{field} missing from {report}");
    }
    assert_eq!(report["connector"], "c");
    assert_eq!(report["added"], 2);
    assert_eq!(report["objects_listed"], 2);
    assert_eq!(report["errors"], 0);
    let logs = text(&output.stderr);
    assert!(logs.contains("DEBUG"), "debug logging is on: {logs}");
    assert!(
        !logs.contains('\u{1b}'),
        "logs to a pipe carry no ANSI colour codes: {logs:?}"
    );
    for secret in [SECRET, TOKEN] {
        assert!(!logs.contains(secret), "a secret appears in the debug logs");
        assert!(!stdout.contains(secret), "a secret appears in the report");
    }

    // `status` shows the manual sync, as it shows the worker's.
    let output = run(&["status", "--config", config, "--listen", "127.0.0.1:1"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let status = text(&output.stdout);
    assert!(
        status.contains("last sync: succeeded (manual)") && status.contains("2 added"),
        "{status}"
    );

    let output = run(&[
        "search",
        "--config",
        config,
        "--connector",
        "c",
        "--json",
        "revenue",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let hits: Vec<Value> = text(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0]["key"], "notes/quarterly.txt");
    assert_eq!(hits[0]["bucket"], bucket.as_str());
    assert!(hits[0]["score"].as_f64().unwrap() > 0.0);
    assert_eq!(hits[0]["id"].as_str().unwrap().len(), 32);

    // A connector that never synced: `search` says so and creates nothing.
    let fresh = Setup::new();
    let fresh_path = fresh.dir.path().join("fresh.yml");
    std::fs::write(&fresh_path, fresh.config_text(&endpoint, &[&bucket], "")).unwrap();
    let output = run(&[
        "search",
        "--config",
        fresh_path.to_str().unwrap(),
        "--connector",
        "c",
        "revenue",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("the index of connector c (c) does not exist yet")
            && stderr.contains("s3-connector sync --config"),
        "{stderr}"
    );
    assert!(
        !fresh.index_root().join("c").exists(),
        "search created an index"
    );

    let output = run(&["sync", "--config", config, "--connector", "nope"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("no connector with id \"nope\""));

    let missing = unique_name("missing-bucket");
    let broken_path = setup.dir.path().join("broken.yml");
    std::fs::write(
        &broken_path,
        setup
            .config_text(&endpoint, &[&missing], "")
            .replace("max_attempts: 3", "max_attempts: 1")
            // An index of its own: the retarget guard refuses to point the first one elsewhere.
            .replace("  - id: c\n", "  - id: c\n    index_name: broken\n"),
    )
    .unwrap();
    let output = run(&["sync", "--config", broken_path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains(&format!("bucket {missing} does not exist")),
        "{stdout}"
    );

    // Nothing listens on port 1: the error names the endpoint it could not reach.
    let unreachable_path = setup.dir.path().join("unreachable.yml");
    std::fs::write(
        &unreachable_path,
        setup
            .config_text("http://127.0.0.1:1", &[&bucket], "")
            .replace("max_attempts: 3", "max_attempts: 1"),
    )
    .unwrap();
    // Another endpoint: the retarget guard would refuse it first.
    let output = run(&[
        "sync",
        "--retarget",
        "--config",
        unreachable_path.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("the connection to http://127.0.0.1:1 failed or broke"),
        "{stdout}"
    );
}

#[tokio::test]
async fn sync_holds_back_a_mass_delete_until_allowed_once() {
    let moto = MotoServer::shared();
    let endpoint = moto.endpoint();
    let s3 = s3_client(&endpoint);
    let bucket = unique_name("cli-mass-delete");
    create_bucket(&s3, &bucket).await;
    let keys: Vec<String> = (0..110).map(|n| format!("doc-{n:03}.txt")).collect();
    for key in &keys {
        put(&s3, &bucket, key, format!("text of {key}")).await;
    }
    let setup = Setup::new();
    let config_path = setup.dir.path().join("mass.yml");
    std::fs::write(&config_path, setup.config_text(&endpoint, &[&bucket], "")).unwrap();
    let config = config_path.to_str().unwrap();
    let output = run(&["sync", "--config", config]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));

    for key in &keys {
        s3.delete_object()
            .bucket(&bucket)
            .key(key)
            .send()
            .await
            .unwrap();
    }
    let output = run(&["sync", "--config", config]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("0 deleted, 110 deletions held back"),
        "{stdout}"
    );
    assert!(
        stdout.contains("its listing would delete 110 of its 110 indexed documents"),
        "{stdout}"
    );
    assert_eq!(setup.count(), 110);

    let output = run(&["sync", "--config", config, "--json", "--allow-mass-delete"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let report: Value = serde_json::from_str(text(&output.stdout).trim()).unwrap();
    assert_eq!(report["deleted"], 110);
    assert_eq!(report["deletions_held_back"], 0);
    assert_eq!(setup.count(), 0);
}

/// `search` reads only the index: it works without the AWS key variables the connector names,
/// picks the only connector without `--connector`, shows each hit's title and snippet, takes
/// a query that starts with `-`, and runs a file of queries (`--queries`) in one process.
#[tokio::test]
async fn search_needs_no_credentials_nor_connector_flag_and_takes_a_leading_dash() {
    let moto = MotoServer::shared();
    let endpoint = moto.endpoint();
    let s3 = s3_client(&endpoint);
    let bucket = unique_name("cli-search");
    create_bucket(&s3, &bucket).await;
    put(
        &s3,
        &bucket,
        "a/plan.md",
        "# Launch plan\n\nThe rollout starts in March.",
    )
    .await;
    put(&s3, &bucket, "b/draft.txt", "rollout draft, not final").await;
    let setup = Setup::new();
    let path = setup.dir.path().join("search.yml");
    let with_keys = setup.config_text(&endpoint, &[&bucket], "");
    std::fs::write(&path, &with_keys).unwrap();
    let config = path.to_str().unwrap();
    let output = run(&["sync", "--config", config]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));

    // The same config, its keys now read from variables that are not set.
    let keys_from_env = with_keys
        .lines()
        .map(|line| match line.split_once("aws_") {
            Some((indent, rest)) if rest.starts_with("access_key_id") => {
                format!("{indent}aws_access_key_id: ${{S3C_TEST_UNSET_KEY_ID}}")
            }
            Some((indent, rest)) if rest.starts_with("secret_access_key") => {
                format!("{indent}aws_secret_access_key: ${{S3C_TEST_UNSET_SECRET}}")
            }
            _ => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&path, keys_from_env).unwrap();
    let output = run(&["validate", "--config", config]);
    assert_eq!(output.status.code(), Some(2), "the keys are unset");

    let output = run(&["search", "--config", config, "rollout"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains(&format!("s3://{bucket}/a/plan.md")),
        "{stdout}"
    );
    assert!(stdout.contains("Launch plan"), "the title: {stdout}");
    assert!(
        stdout.contains("**rollout** starts in March"),
        "the snippet, its matched word marked (stdout is no terminal): {stdout}"
    );

    for query in [&["-draft", "rollout"][..], &["rollout", "-draft"]] {
        let output = run(&[&["search", "--config", config, "--json"][..], query].concat());
        assert_eq!(
            output.status.code(),
            Some(0),
            "{query:?}: {}",
            text(&output.stderr)
        );
        let hits: Vec<Value> = text(&output.stdout)
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(hits.len(), 1, "{query:?}: {hits:?}");
        assert_eq!(hits[0]["key"], "a/plan.md");
        assert_eq!(hits[0]["title"], "Launch plan");
    }

    // `--queries`: one JSON line per line read, in order, from a file or standard input.
    let queries = setup.dir.path().join("queries.txt");
    std::fs::write(&queries, "rollout\n\n-draft rollout\nabsentword\n").unwrap();
    let answers = |output: Output| -> Vec<Value> {
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
        text(&output.stdout)
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    };
    let from_file = answers(run(&[
        "search",
        "--config",
        config,
        "--queries",
        queries.to_str().unwrap(),
    ]));
    let keys = |answer: &Value| -> Vec<String> {
        let mut keys: Vec<String> = answer["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|hit| hit["key"].as_str().unwrap().to_owned())
            .collect();
        keys.sort();
        keys
    };
    let expected = [
        ("rollout", vec!["a/plan.md", "b/draft.txt"]),
        ("", vec![]),
        ("-draft rollout", vec!["a/plan.md"]),
        ("absentword", vec![]),
    ];
    assert_eq!(from_file.len(), expected.len(), "{from_file:?}");
    for (answer, (query, hits)) in from_file.iter().zip(&expected) {
        assert_eq!(answer["query"], *query, "{answer}");
        assert_eq!(answer["mode"], "keyword", "{answer}");
        assert_eq!(keys(answer), *hits, "{answer}");
    }
    assert_eq!(from_file[2]["hits"][0]["title"], "Launch plan");
    let mut child = Command::new(env!("CARGO_BIN_EXE_s3-connector"))
        .args([
            "search",
            "--config",
            config,
            "--limit",
            "1",
            "--queries",
            "-",
        ])
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"rollout\nmarch\n").unwrap();
    let from_stdin = answers(child.wait_with_output().unwrap());
    assert_eq!(from_stdin.len(), 2, "{from_stdin:?}");
    assert_eq!(from_stdin[0]["hits"].as_array().unwrap().len(), 1);
    assert_eq!(keys(&from_stdin[1]), ["a/plan.md"]);
    // Queries from a file or from the command line, not both.
    let output = run(&[
        "search",
        "--config",
        config,
        "--queries",
        queries.to_str().unwrap(),
        "rollout",
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
}

/// `trust-policy` describes a connector's role: on a connector without one there is nothing to
/// describe, and a script must see that (exit 2, as for any configuration error), not an empty
/// success.
#[test]
fn trust_policy_without_a_role_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-role.yml");
    std::fs::write(
        &path,
        "connectors:\n  - id: docs\n    buckets: [\"team-docs\"]\n    endpoint_url: http://127.0.0.1:1\n",
    )
    .unwrap();
    let output = run(&[
        "trust-policy",
        "--config",
        path.to_str().unwrap(),
        "--connector",
        "docs",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    assert!(
        text(&output.stderr).contains("connector docs has no role_arn and external_id"),
        "{}",
        text(&output.stderr)
    );
}

/// Shards need the OpenSearch index: `plan-shards` on an embedded index says so and lists
/// nothing (the endpoint here does not answer), instead of proposing shards `sync` refuses.
#[test]
fn plan_shards_refuses_an_embedded_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("embedded.yml");
    std::fs::write(
        &path,
        "index:\n  kind: embedded\nconnectors:\n  - id: docs\n    buckets: [\"team-docs\"]\n    endpoint_url: http://127.0.0.1:1\n",
    )
    .unwrap();
    let config = path.to_str().unwrap();
    let output = run(&[
        "plan-shards",
        "--config",
        config,
        "--connector",
        "docs",
        "--shards",
        "2",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty(), "{}", text(&output.stdout));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("writes to the embedded index")
            && stderr.contains("index.kind: opensearch"),
        "{stderr}"
    );
}
