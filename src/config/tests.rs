//! Table-driven tests of loading and validation.

use std::path::Path;

use super::*;

const VALID: &str = r#"
connectors:
  - id: team-docs
    buckets: ["team-docs"]
    region: us-east-1
    endpoint_url: http://127.0.0.1:9000
    aws_access_key_id: ${KEY_ID}
    aws_secret_access_key: ${SECRET}
    aws_session_token: ${TOKEN:-}
"#;

fn lookup(name: &str) -> Option<String> {
    match name {
        "KEY_ID" => Some("AKIAEXAMPLE".into()),
        "SECRET" => Some("wJalrXUtnFEMI-super-secret".into()),
        _ => None,
    }
}

pub(super) fn parse_text(text: &str) -> Result<Config, ConfigError> {
    parse(text, Path::new("test.yml"), Path::new("."), &lookup)
}

pub(super) fn problems_of(text: &str) -> Vec<String> {
    match parse_text(text) {
        Err(ConfigError::Invalid { problems, .. }) => {
            problems.iter().map(ToString::to_string).collect()
        }
        Err(other) => vec![format!("not a validation error: {other}")],
        Ok(_) => Vec::new(),
    }
}

/// Asserts, for each `(input, expected)` of `cases`, that a problem `problems(input)` reports
/// starts with `expected`.
pub(super) fn assert_reported(cases: &[(&str, &str)], problems: impl Fn(&str) -> Vec<String>) {
    for (input, expected) in cases {
        let found = problems(input);
        assert!(
            found.iter().any(|p| p.starts_with(expected)),
            "{input}: expected {expected:?} in {found:#?}"
        );
    }
}

/// Replaces one connector line of [`VALID`] (matched by its start) with `line`, or appends it.
fn with_line(field_prefix: &str, line: &str) -> String {
    let mut replaced = false;
    let mut lines: Vec<String> = VALID
        .lines()
        .map(|existing| {
            let content = existing.trim_start().trim_start_matches("- ");
            if !field_prefix.is_empty() && content.starts_with(field_prefix) {
                replaced = true;
                format!("{}{line}", &existing[..existing.len() - content.len()])
            } else {
                existing.to_owned()
            }
        })
        .collect();
    if !replaced {
        lines.push(format!("    {line}"));
    }
    lines.join("\n")
}

#[test]
fn valid_config_gets_defaults() {
    let config = parse_text(VALID).unwrap();
    let connector = &config.connectors[0];
    assert_eq!(connector.index_name(), "team-docs");
    assert!(
        connector.path_style,
        "path style defaults on with an endpoint"
    );
    assert_eq!(connector.access_key_id(), Some("AKIAEXAMPLE"));
    assert_eq!(
        connector.secret_access_key().map(Secret::expose),
        Some("wJalrXUtnFEMI-super-secret")
    );
    assert!(connector.session_token().is_none(), "${{TOKEN:-}} is unset");
    assert_eq!(connector.page_size, defaults::page_size());
    assert_eq!(connector.max_delete_fraction, 0.5);
    assert_eq!(connector.max_content_bytes, 10 * 1024 * 1024);
    assert_eq!(connector.max_extracted_bytes, 10 * 1024 * 1024);
    assert_eq!(connector.extraction_timeout, 30);
    assert_eq!(connector.max_body_chars, 1_000_000);
    assert_eq!(connector.concurrency, 16);
    assert!(
        matches!(config.index, IndexConfig::Embedded { ref path } if path == Path::new("./data/index"))
    );
    assert_eq!(
        connector.buckets,
        BucketSelection::Named(vec!["team-docs".into()])
    );
}

#[test]
fn each_broken_rule_is_named_with_path_value_and_rule() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "id:",
            "id: Team_Docs",
            r#"connectors[0].id: "Team_Docs" must match"#,
        ),
        (
            "buckets:",
            "buckets: [\"Team-Docs\"]",
            r#"connectors[0].buckets[0]: "Team-Docs" has 'T' at position 1"#,
        ),
        ("buckets:", "buckets: [\"ab\"]", "3 to 63 characters"),
        ("buckets:", "buckets: [\"a..b\"]", "two adjacent periods"),
        ("buckets:", "buckets: [\"10.0.0.1\"]", "IP address"),
        (
            "buckets:",
            "buckets: []",
            "connectors[0].buckets: must name at least one bucket",
        ),
        (
            "buckets:",
            "buckets: [\"*\", \"a-b-c\"]",
            r#"connectors[0].buckets[0]: "*" must be the only entry"#,
        ),
        (
            "buckets:",
            "buckets: [\"abc\", \"abc\"]",
            r#"connectors[0].buckets[1]: "abc" is listed twice"#,
        ),
        (
            "region:",
            "region: US East",
            r#"connectors[0].region: "US East" must be a region name"#,
        ),
        (
            "endpoint_url:",
            "endpoint_url: 127.0.0.1:9000",
            r#"connectors[0].endpoint_url: "127.0.0.1:9000" must be an http:// or https:// URL"#,
        ),
        (
            "",
            "expected_bucket_owner: \"12345\"",
            r#"connectors[0].expected_bucket_owner: "12345" must be a 12-digit AWS account id"#,
        ),
        (
            "",
            "role_arn: arn:aws:iam::123:role/x\n    external_id: abc-123",
            r#"connectors[0].role_arn: "arn:aws:iam::123:role/x" must be an IAM role ARN"#,
        ),
        (
            "",
            "role_arn: arn:aws:iam::123456789012:role/reader",
            "connectors[0].external_id: is required with role_arn",
        ),
        (
            "",
            "external_id: abc-123",
            r#"connectors[0].external_id: "abc-123" is only allowed together with role_arn"#,
        ),
        (
            "",
            "role_arn: arn:aws:iam::123456789012:role/r\n    external_id: x",
            "external ids have 2 to 1224 characters",
        ),
        (
            "",
            "role_arn: arn:aws:iam::123456789012:role/r\n    external_id: abc\n    role_duration_seconds: 60",
            "connectors[0].role_duration_seconds: 60 is out of range: must be between 900 and 43200",
        ),
        (
            "aws_secret_access_key:",
            "read_timeout: 5",
            "connectors[0].aws_secret_access_key: is missing: aws_access_key_id needs its secret key",
        ),
        (
            "aws_access_key_id:",
            "read_timeout: 5",
            "connectors[0].aws_secret_access_key: **REDACTED** is set without aws_access_key_id",
        ),
        (
            "",
            "page_size: 0",
            "connectors[0].page_size: 0 is out of range: must be between 1 and 1000",
        ),
        ("", "page_size: 1001", "must be between 1 and 1000"),
        (
            "",
            "max_delete_fraction: 0",
            "connectors[0].max_delete_fraction: 0 is out of range: must be greater than 0 and at most 1",
        ),
        (
            "",
            "max_delete_fraction: 1.5",
            "connectors[0].max_delete_fraction: 1.5 is out of range",
        ),
        (
            "",
            "max_delete_fraction: -0.1",
            "connectors[0].max_delete_fraction: -0.1 is out of range",
        ),
        (
            "",
            "max_delete_fraction: .nan",
            "connectors[0].max_delete_fraction: NaN is out of range",
        ),
        (
            "",
            "max_attempts: 0",
            "connectors[0].max_attempts: 0 is out of range",
        ),
        (
            "",
            "concurrency: 0",
            "connectors[0].concurrency: 0 is out of range",
        ),
        (
            "",
            "read_timeout: 0",
            "connectors[0].read_timeout: 0 is out of range",
        ),
        (
            "",
            "connect_timeout: 99999",
            "connectors[0].connect_timeout: 99999 is out of range",
        ),
        (
            "",
            "max_content_bytes: 2147483648",
            "connectors[0].max_content_bytes: 2147483648 is out of range",
        ),
        (
            "",
            "max_extracted_bytes: 4294967297",
            "connectors[0].max_extracted_bytes: 4294967297 is out of range: must be between 0 and 4294967296",
        ),
        (
            "",
            "extraction_timeout: 0",
            "connectors[0].extraction_timeout: 0 is out of range: must be between 1 and 3600",
        ),
        (
            "",
            "max_body_chars: 0",
            "connectors[0].max_body_chars: 0 is out of range",
        ),
        (
            "",
            "sync_rules: no/such/file.json",
            r#"connectors[0].sync_rules: "no/such/file.json" cannot be read"#,
        ),
        (
            "",
            "sync_rules: [{\"bucket\": \"team-docs\", \"extension\": \".txt\"}]",
            "connectors[0].sync_rules[0].extension: must be a list of strings",
        ),
        (
            "",
            "sync_rules: [{\"prefix\": \"a/\"}]",
            "connectors[0].sync_rules[0].bucket: is required",
        ),
        (
            "",
            "sync_rules: [{\"bucket\": \"team-docs\", \"prefx\": \"a/\"}]",
            "connectors[0].sync_rules[0].prefx: unknown field \"prefx\"",
        ),
        (
            "",
            "sync_rules: [{\"bucket\": \"other-bucket\"}]",
            r#"connectors[0].sync_rules: "other-bucket" names a bucket that is not in buckets"#,
        ),
        (
            "aws_session_token:",
            "aws_session_token: ${UNSET_TOKEN}",
            "connectors[0].aws_session_token: uses ${UNSET_TOKEN}, which is not set",
        ),
    ];
    for (replace, line, expected) in cases {
        let text = with_line(replace, line);
        let problems = problems_of(&text);
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "config with `{line}`: expected a problem containing {expected:?}, got {problems:#?}"
        );
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = r#"
connectors:
  - id: ok-one
    buckets: ["good-bucket"]
    page_size: 0
    expected_bucket_owner: "1"
  - id: ok-one
    buckets: ["Bad"]
"#;
    let problems = problems_of(text);
    let paths: Vec<&str> = problems
        .iter()
        .map(|p| p.split(':').next().unwrap_or(""))
        .collect();
    assert_eq!(
        paths,
        [
            "connectors[0].expected_bucket_owner",
            "connectors[0].page_size",
            "connectors[1].id",
            "connectors[1].index_name",
            "connectors[1].buckets[0]",
        ],
        "{problems:#?}"
    );
}

#[test]
fn structural_errors_name_the_field() {
    let cases = [
        (
            "connectors:\n  - id: a\n    buckets: [\"abc\"]\n    bukets: [\"x\"]\n",
            "connectors[0].bukets: unknown field `bukets`",
        ),
        (
            "connectors:\n  - id: a\n    buckets: [\"abc\"]\n    page_size: many\n",
            "connectors[0].page_size: invalid type",
        ),
        (
            "index:\n  kind: lucene\nconnectors: []\n",
            "index.kind: unknown variant `lucene`",
        ),
    ];
    assert_reported(&cases, problems_of);
    match parse_text("connectors: [\n") {
        Err(ConfigError::Syntax { message, .. }) => {
            assert!(message.contains("at line 2 column 1"), "{message}")
        }
        other => panic!("expected a syntax error, got {other:?}"),
    }
}

#[test]
fn every_structural_problem_is_reported_with_did_you_mean() {
    let text = "connectors:\n  - id: a\n    buckets: [\"abc\"]\n    aws_acess_key_id: AKIAEXAMPLE\n    page_size: many\n    colour: blue\n  - id: b\n    buckets: [\"def\"]\n    bukets: [\"x\"]\nstate_dri: /tmp\n";
    let message = parse_text(text).unwrap_err().to_string();
    for expected in [
        "5 problem(s):",
        "connectors[0].aws_acess_key_id: unknown field `aws_acess_key_id`; did you mean `aws_access_key_id`?",
        "connectors[0].page_size: invalid type",
        "connectors[0].colour: unknown field `colour`, expected one of",
        "connectors[1].bukets: unknown field `bukets`; did you mean `buckets`?",
        "state_dri: unknown field `state_dri`; did you mean `state_dir`?",
    ] {
        assert!(
            message.contains(expected),
            "{expected:?} not in:\n{message}"
        );
    }
    // A required field with the wrong type is reported once, not again as missing.
    let problems = problems_of("connectors:\n  - id: a\n    buckets: 5\n");
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0]
            .starts_with("connectors[0].buckets: invalid type: integer `5`, expected a list"),
        "{problems:#?}"
    );
}

/// A misspelt kind, unknown fields and wrong types used to hide every broken value rule (one
/// stage at a time); now one run names them all.
#[test]
fn structural_and_value_problems_are_reported_together() {
    let text = r#"
index:
  kind: embeded
  path: ./index
connectors:
  - id: Docs
    buckets: ["Team-Docs"]
    page_size: many
    max_attempts: 0
    region: US East
    expected_bucket_owner: "42"
    read_timeout: soon
  - id: other
    buckets: 7
    concurrency: 1000
listen: nowhere
"#;
    let problems = problems_of(text);
    let expected = [
        "index.kind: unknown variant `embeded`; did you mean `embedded`?",
        "connectors[0].page_size: invalid type: string \"many\", expected a whole number from 1 to 1000",
        "connectors[0].read_timeout: \"soon\" is not a duration",
        "connectors[1].buckets: invalid type: integer `7`, expected a list",
        "listen: \"nowhere\" is not an IP:PORT address",
        "connectors[0].id: \"Docs\" must match",
        "connectors[0].buckets[0]: \"Team-Docs\" has 'T' at position 1",
        "connectors[0].region: \"US East\" must be a region name",
        "connectors[0].expected_bucket_owner: \"42\" must be a 12-digit AWS account id",
        "connectors[0].max_attempts: 0 is out of range",
        "connectors[1].concurrency: 1000 is out of range",
    ];
    for expected in expected {
        assert!(
            problems.iter().any(|p| p.starts_with(expected)),
            "{expected:?} not in {problems:#?}"
        );
    }
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    // The placeholder that stood in for the broken `buckets` is not reported as empty.
    assert!(!problems.iter().any(|p| p.contains("at least one bucket")));
}

/// An unknown kind with no near miss: its block is dropped and the rest still checked.
#[test]
fn an_unknown_kind_does_not_hide_the_connectors() {
    let problems = problems_of(
        "index:\n  kind: lucene\n  url: http://h\nconnectors:\n  - id: a\n    buckets: [\"x\"]\n",
    );
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(problems[0].starts_with("index.kind: unknown variant `lucene`, expected"));
    assert!(problems[1].starts_with("connectors[0].buckets[0]: \"x\""));
}

/// Every duration field takes the same syntax: a duration such as `90s` or a number of seconds.
#[test]
fn every_duration_field_takes_90s_or_90() {
    let text = format!(
        "{VALID}    read_timeout: 90s\n    connect_timeout: 2m\n    extraction_timeout: 45\n    role_arn: arn:aws:iam::123456789012:role/r\n    external_id: ext-1\n    role_duration_seconds: 2h\n    interval: 15m\n    notifications:\n      queue_url: https://sqs.us-east-1.amazonaws.com/123456789012/q\n      wait_time: 10s\n      visibility_timeout: 10m\nshutdown_timeout: 1m\n"
    );
    let config = parse_text(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let connector = &config.connectors[0];
    assert_eq!(
        (
            connector.read_timeout,
            connector.connect_timeout,
            connector.extraction_timeout,
            connector.role_duration_seconds
        ),
        (90, 120, 45, 7200)
    );
    let notifications = connector.notifications.as_ref().unwrap();
    assert_eq!(
        (notifications.wait_time, notifications.visibility_timeout),
        (10, 600)
    );
    assert_eq!(config.shutdown_timeout.as_secs(), 60);
    let inherited = format!("defaults:\n  read_timeout: 2m\n{VALID}");
    let config = parse_text(&inherited).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.connectors[0].read_timeout, 120);

    let os = "index:\n  kind: opensearch\n  url: http://h\n  request_timeout: 30s\n";
    let config = parse_text(&format!("{os}{VALID}")).unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(config.index, IndexConfig::Opensearch(ref o) if o.request_timeout == 30));

    for (line, expected) in [
        (
            "read_timeout: 1500ms",
            "connectors[0].read_timeout: \"1500ms\" is not a whole number of seconds",
        ),
        (
            "read_timeout: 2h",
            "connectors[0].read_timeout: 7200 is out of range: must be between 1 and 3600",
        ),
    ] {
        let problems = problems_of(&with_line("", line));
        assert!(
            problems.iter().any(|p| p.starts_with(expected)),
            "{line}: {problems:#?}"
        );
    }
    let problems = problems_of(&format!("defaults:\n  read_timeout: soon\n{VALID}"));
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(problems[0].starts_with("defaults.read_timeout: \"soon\" is not a duration"));
}

#[test]
fn secrets_never_appear_in_errors_or_debug() {
    let secret = "wJalrXUtnFEMI-super-secret";
    let text = with_line("aws_access_key_id:", "page_size: 0");
    let error = parse_text(&text).unwrap_err();
    assert!(!error.to_string().contains(secret), "{error}");
    assert!(!format!("{error:?}").contains(secret));

    let numeric_secret = with_line("aws_secret_access_key:", "aws_secret_access_key: [1, 2]");
    let error = parse_text(&numeric_secret).unwrap_err();
    assert!(error.to_string().contains(REDACTED), "{error}");

    let config = parse_text(VALID).unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains(secret), "{debug}");
    assert!(debug.contains(REDACTED));
}

#[test]
fn rule_files_load_relative_to_the_config_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    std::fs::write(
        dir.path().join("rules/docs.json"),
        r#"[{"bucket": "team-docs", "prefix": "docs/", "extension": [".md"]}]"#,
    )
    .unwrap();
    let text = with_line("", "sync_rules: rules/docs.json");
    let config = parse(&text, &dir.path().join("c.yml"), dir.path(), &lookup).unwrap();
    let rules = &config.connectors[0].rules;
    assert!(!rules.is_all());
    assert!(rules.matches("team-docs", "docs/a.md"));
    assert!(!rules.matches("team-docs", "docs/a.txt"));

    std::fs::write(dir.path().join("rules/docs.json"), "[{\"bucket\": 1}]").unwrap();
    let error = parse(&text, &dir.path().join("c.yml"), dir.path(), &lookup).unwrap_err();
    assert!(
        error.to_string().contains("sync_rules (file ")
            && error
                .to_string()
                .contains("docs.json)[0].bucket: must be a string"),
        "{error}"
    );
}

#[test]
fn worker_settings_have_defaults_and_schedules_are_validated() {
    let config = parse_text(VALID).unwrap();
    assert_eq!(config.state_dir, Path::new("./data/state"));
    assert_eq!(config.listen.to_string(), "127.0.0.1:9464");
    assert_eq!(config.shutdown_timeout.as_secs(), 30);
    let connector = &config.connectors[0];
    assert!(connector.timer.is_none() && !connector.sync_on_start);

    let text = format!(
        "{VALID}    interval: 15m\n    sync_on_start: true\n  - id: nightly\n    buckets: [\"nightly\"]\n    schedule: \"0 2 * * *\"\nlisten: 0.0.0.0:9000\nshutdown_timeout: 90\nstate_dir: /var/lib/s3c\n"
    );
    let config = parse_text(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(config.listen.to_string(), "0.0.0.0:9000");
    assert_eq!(config.shutdown_timeout.as_secs(), 90);
    assert_eq!(config.state_dir, Path::new("/var/lib/s3c"));
    let timers: Vec<String> = config
        .connectors
        .iter()
        .map(|c| {
            c.timer
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(timers, ["every 15m", "cron \"0 2 * * *\""]);
    assert!(config.connectors[0].sync_on_start);

    let cases: &[(&str, &str)] = &[
        (
            "    schedule: \"0 */6 * *\"\n",
            r#"connectors[0].schedule: "0 */6 * *" is not a cron expression"#,
        ),
        (
            "    schedule: \"0 0 30 2 *\"\n",
            r#"connectors[0].schedule: "0 0 30 2 *" never matches a date"#,
        ),
        (
            "    interval: fortnightly\n",
            r#"connectors[0].interval: "fortnightly" is not a duration"#,
        ),
        (
            "    interval: 0\n",
            r#"connectors[0].interval: "0" is too short: the interval must be at least 1s"#,
        ),
        (
            "    interval: 1h\n    schedule: \"@daily\"\n",
            r#"connectors[0].interval: "1h" is set together with schedule"#,
        ),
        (
            "listen: localhost\n",
            r#"listen: "localhost" is not an IP:PORT address"#,
        ),
        (
            "shutdown_timeout: soon\n",
            r#"shutdown_timeout: "soon" is not a duration"#,
        ),
    ];
    for (extra, expected) in cases {
        let text = format!("{VALID}{extra}");
        let problems = problems_of(&text);
        assert!(
            problems
                .iter()
                .any(|p| p == expected || p.starts_with(expected)),
            "config with `{extra}`: expected a problem starting with {expected:?}, got {problems:#?}"
        );
    }
}

#[test]
fn the_index_view_needs_neither_credentials_nor_valid_connector_settings() {
    let text = r#"
index:
  kind: embedded
  path: /srv/index
connectors:
  - id: docs
    index_name: team-docs
    buckets: ["Not A Bucket"]
    aws_access_key_id: ${UNSET_KEY}
    aws_secret_access_key: ${UNSET_SECRET}
    interval: never
  - id: logs
    buckets: ["logs"]
    prefx: typo
"#;
    assert!(parse_text(text).is_err());
    let view = parse_index_view(text, Path::new("t.yml"), Path::new("."), &lookup).unwrap();
    assert!(
        matches!(view.index, IndexConfig::Embedded { ref path } if path == Path::new("/srv/index"))
    );
    assert_eq!(
        view.connectors,
        [
            ("docs".to_owned(), "team-docs".to_owned()),
            ("logs".to_owned(), "logs".to_owned())
        ]
    );
    // What the view reads is still validated.
    let broken = "index:\n  kind: opensearch\n  url: nowhere\nconnectors:\n  - id: Bad\n";
    let problems = match parse_index_view(broken, Path::new("t.yml"), Path::new("."), &lookup) {
        Err(ConfigError::Invalid { problems, .. }) => problems,
        other => panic!("expected problems, got {other:?}"),
    };
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["index.url", "connectors[0].id"], "{problems:#?}");
}
