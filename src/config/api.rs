//! The `api:` block: the HTTP management API of `run` (connectors created by a request, after a
//! probe) is opt-in, and this is where its bearer token, the deployment's ExternalId and the
//! limits of the HTTP surface (allowed `Host` names, connections, body time) live.
//!
//! Data and validation only; the token file is the one file read here. The routes are in
//! `worker::api`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::{NumberRule, Problem, REDACTED, Secret, defaults, duration, sts_string};

/// The management API. Without this block `run` serves no `/api` route and no console.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// The bearer token every `/api` request must send (`Authorization: Bearer <token>`), at
    /// least 16 characters; write `${S3C_API_TOKEN}` rather than the token itself. Exactly one
    /// of `token` and `token_file`.
    #[serde(default)]
    pub token: Option<Secret>,
    /// A file holding the token (a mounted secret such as `/run/secrets/s3c-api-token`),
    /// relative to the config file's directory; a trailing newline is ignored.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// The ExternalId customers put in their role's trust policy; every connector created
    /// through the API assumes its role with it. 2 to 1224 characters from letters, digits and
    /// `_+=,.@:/-`; `s3-connector external-id` prints a fresh one.
    pub external_id: String,
    /// The principal customers' roles trust, shown by `GET /api/v1/aws-setup`, e.g.
    /// `arn:aws:iam::111122223333:role/s3-connector`. Default: the worker's own identity as
    /// sts:GetCallerIdentity reports it (an assumed-role session becomes its role).
    #[serde(default)]
    pub principal_arn: Option<String>,
    /// Largest request body accepted, in bytes, 1024..=10485760; a larger one is refused with
    /// 413. Default 65536.
    #[serde(default = "defaults::api_max_body_bytes")]
    pub max_body_bytes: usize,
    /// How long the probe of a created or updated connector keeps retrying an AssumeRole that
    /// is refused with AccessDenied, because a freshly created role or trust policy takes some
    /// seconds to propagate through IAM: a duration such as `20s` (a bare number is seconds),
    /// at most `5m`; `0s` turns the wait off. Only that refusal is retried, but it is also
    /// what a wrong ExternalId gets, so such a request answers 422 only after this long; a
    /// client that knows its role is not new sends `"wait": false`. Default `20s`.
    #[serde(
        default = "defaults::api_probe_wait",
        deserialize_with = "duration::text"
    )]
    pub probe_wait: String,
    /// The host names a request's `Host` header may carry (compared without the port, case
    /// ignored), e.g. `[localhost, s3c.example.com]`: a request to any other name is refused
    /// with 421 Misdirected Request, on every route, before its token is checked. An IP address
    /// (the listen address, a pod's IP, `127.0.0.1`, `[::1]`) is always accepted. The check
    /// stops DNS rebinding, where a web page reaches the worker through a name of its own, and
    /// such a name is never an address. Behind a reverse proxy or a Kubernetes Service, list
    /// the names clients use. Default `[localhost]`; a list replaces it.
    #[serde(default = "defaults::api_allowed_hosts")]
    pub allowed_hosts: Vec<String>,
    /// Most HTTP connections open at once, 1..=65536: while that many are open, a new one waits
    /// in the listen queue until one closes (an idle connection is closed after 10 s). Without
    /// an `api:` block the default applies. Default 256.
    #[serde(default = "defaults::api_max_connections")]
    pub max_connections: usize,
    /// How long a request may take to send its whole body once its headers are in: a duration
    /// from `1s` to `5m`. A body still incomplete then is answered 408 and its connection
    /// closed, however steadily it trickles in. Default `30s`.
    #[serde(
        default = "defaults::api_body_timeout",
        deserialize_with = "duration::text"
    )]
    pub body_timeout: String,
    /// The token, read from `token` or `token_file` by [`validate`].
    #[serde(skip)]
    resolved_token: Option<Secret>,
    /// `probe_wait`, parsed by [`validate`].
    #[serde(skip)]
    resolved_probe_wait: Duration,
    /// `body_timeout`, parsed by [`validate`].
    #[serde(skip)]
    resolved_body_timeout: Duration,
}

impl ApiConfig {
    /// The bearer token (set once the config is validated).
    pub fn token(&self) -> Option<&Secret> {
        self.resolved_token.as_ref()
    }

    /// [`ApiConfig::probe_wait`] (set once the config is validated).
    pub fn probe_wait(&self) -> Duration {
        self.resolved_probe_wait
    }

    /// [`ApiConfig::body_timeout`] (set once the config is validated).
    pub fn body_timeout(&self) -> Duration {
        self.resolved_body_timeout
    }

    /// A configuration for tests and tools that build one in code.
    pub fn new(token: &str, external_id: &str) -> Self {
        Self {
            token: Some(Secret::new(token)),
            token_file: None,
            external_id: external_id.to_owned(),
            principal_arn: None,
            max_body_bytes: defaults::api_max_body_bytes(),
            probe_wait: defaults::api_probe_wait(),
            allowed_hosts: defaults::api_allowed_hosts(),
            max_connections: defaults::api_max_connections(),
            body_timeout: defaults::api_body_timeout(),
            resolved_token: Some(Secret::new(token)),
            resolved_probe_wait: defaults::API_PROBE_WAIT,
            resolved_body_timeout: defaults::API_BODY_TIMEOUT,
        }
    }
}

/// Shortest token accepted: a shorter one could be guessed.
const MIN_TOKEN_CHARS: usize = 16;

/// Longest `probe_wait`: a request should not hang for longer than IAM ever takes.
const MAX_PROBE_WAIT: Duration = Duration::from_secs(300);

/// The range of `body_timeout`: a body needs some time, and a connection should not be held
/// for long.
const BODY_TIMEOUT_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(300);

/// Checks the block and reads the token; appends what is broken.
pub(super) fn validate(api: &mut ApiConfig, base_dir: &Path, problems: &mut Vec<Problem>) {
    let mut push = |field: &str, value: Option<String>, rule: String| {
        problems.push(Problem {
            path: format!("api.{field}"),
            value,
            rule,
        });
    };
    let token = match (&api.token, &api.token_file) {
        (Some(_), Some(_)) => {
            push(
                "token_file",
                None,
                "is set together with token; use one of them".into(),
            );
            None
        }
        (None, None) => {
            push(
                "token",
                None,
                "is missing: set token (e.g. ${S3C_API_TOKEN}) or token_file".into(),
            );
            None
        }
        (Some(token), None) => Some(token.clone()),
        (None, Some(file)) => {
            let full = base_dir.join(file);
            match std::fs::read_to_string(&full) {
                Ok(text) => Some(Secret::new(text.trim_end_matches(['\n', '\r']))),
                Err(error) => {
                    push(
                        "token_file",
                        Some(format!("{:?}", file.display().to_string())),
                        format!("cannot be read from {}: {error}", full.display()),
                    );
                    None
                }
            }
        }
    };
    if let Some(token) = &token {
        let field = if api.token.is_some() {
            "token"
        } else {
            "token_file"
        };
        let chars = token.expose().chars().count();
        if chars < MIN_TOKEN_CHARS {
            push(
                field,
                Some(REDACTED.to_owned()),
                format!("is too short: a token needs at least {MIN_TOKEN_CHARS} characters"),
            );
        } else if token.expose().chars().any(|c| !c.is_ascii_graphic()) {
            push(
                field,
                Some(REDACTED.to_owned()),
                "must be printable ASCII without spaces (it travels in an HTTP header)".into(),
            );
        } else {
            api.resolved_token = Some(token.clone());
        }
    }
    if let Err(rule) = sts_string(&api.external_id, 2, 1224, "+=,.@:/-", "external ids") {
        push("external_id", Some(format!("{:?}", api.external_id)), rule);
    }
    if let Some(principal) = &api.principal_arn
        && !principal.starts_with("arn:")
    {
        push(
            "principal_arn",
            Some(format!("{principal:?}")),
            "must be an IAM ARN such as arn:aws:iam::111122223333:role/s3-connector".into(),
        );
    }
    super::check_numbers(&NUMBERS, api, &mut push);
    match duration::parse(&api.probe_wait) {
        Ok(wait) if wait <= MAX_PROBE_WAIT => api.resolved_probe_wait = wait,
        Ok(_) => push(
            "probe_wait",
            Some(format!("{:?}", api.probe_wait)),
            "is too long: at most 5m (IAM propagates within about a minute)".into(),
        ),
        Err(rule) => push("probe_wait", Some(format!("{:?}", api.probe_wait)), rule),
    }
    match duration::parse(&api.body_timeout) {
        Ok(timeout) if BODY_TIMEOUT_RANGE.contains(&timeout) => {
            api.resolved_body_timeout = timeout;
        }
        Ok(_) => push(
            "body_timeout",
            Some(format!("{:?}", api.body_timeout)),
            "is out of range: must be from 1s to 5m".into(),
        ),
        Err(rule) => push(
            "body_timeout",
            Some(format!("{:?}", api.body_timeout)),
            rule,
        ),
    }
    for (position, name) in api.allowed_hosts.iter().enumerate() {
        if let Err(rule) = check_host_name(name) {
            push(
                &format!("allowed_hosts[{position}]"),
                Some(format!("{name:?}")),
                rule,
            );
        }
    }
}

/// An entry of `allowed_hosts`: a DNS name, without scheme or port.
fn check_host_name(name: &str) -> Result<(), String> {
    let valid = (1..=253).contains(&name.len())
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if valid {
        Ok(())
    } else {
        Err("must be a host name such as s3c.example.com, without scheme or port (IP addresses are always accepted and need no entry)".to_owned())
    }
}

/// The whole-number fields of the `api` block.
pub(super) const NUMBERS: [NumberRule<ApiConfig>; 2] = [
    NumberRule {
        field: "max_body_bytes",
        min: 1024,
        max: 10 * 1024 * 1024,
        value: |c| c.max_body_bytes as u64,
        unit: "",
    },
    NumberRule {
        field: "max_connections",
        min: 1,
        max: 65_536,
        value: |c| c.max_connections as u64,
        unit: "",
    },
];

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{ConfigError, parse};

    fn problems(text: &str) -> Vec<String> {
        let lookup = |name: &str| (name == "TOKEN").then(|| "a-long-enough-token-123".to_owned());
        match parse(text, Path::new("t.yml"), Path::new("/nonexistent"), &lookup) {
            Ok(_) => Vec::new(),
            Err(ConfigError::Invalid { problems, .. }) => {
                problems.iter().map(ToString::to_string).collect()
            }
            Err(other) => vec![other.to_string()],
        }
    }

    #[test]
    fn the_api_block_is_checked_field_by_field() {
        let api = |lines: &str| format!("api:\n{lines}\nconnectors: []\n");
        // (block lines, expected problem; empty for valid)
        let table = [
            ("  token: ${TOKEN}\n  external_id: ext-123", ""),
            (
                "  token: short\n  external_id: ext-123",
                "api.token: **REDACTED** is too short",
            ),
            (
                "  token: ${TOKEN}\n  token_file: t\n  external_id: ext-123",
                "api.token_file: is set together with token",
            ),
            ("  external_id: ext-123", "api.token: is missing"),
            (
                "  token_file: missing.txt\n  external_id: ext-123",
                "cannot be read from",
            ),
            (
                "  token: ${TOKEN}\n  external_id: \"has space\"",
                "api.external_id: \"has space\" is not allowed",
            ),
            (
                "  token: ${TOKEN}\n  external_id: ext-123\n  max_body_bytes: 10",
                "api.max_body_bytes: 10 is out of range",
            ),
            (
                "  token: ${TOKEN}\n  external_id: ext-123\n  principal_arn: someone",
                "api.principal_arn",
            ),
            (
                "  token: ${TOKEN}\n  external_id: ext-123\n  probe_wait: 0s",
                "",
            ),
            (
                "  token: ${TOKEN}\n  external_id: ext-123\n  probe_wait: soon",
                "api.probe_wait: \"soon\" is not a duration",
            ),
            (
                "  token: ${TOKEN}\n  external_id: ext-123\n  probe_wait: 1h",
                "api.probe_wait: \"1h\" is too long",
            ),
            (
                "  token: ${TOKEN}\n  external_id: ext-123\n  allowed_hosts: [localhost, S3C.example.com, s3-connector.team.svc]\n  max_connections: 8\n  body_timeout: 5s",
                "",
            ),
            (
                "  token: ${TOKEN}\n  external_id: ext-123\n  allowed_hosts: [localhost, \"s3c.example.com:8443\"]",
                "api.allowed_hosts[1]: \"s3c.example.com:8443\" must be a host name",
            ),
            (
                "  token: ${TOKEN}\n  external_id: ext-123\n  allowed_hosts: [\"https://s3c.example.com\"]",
                "api.allowed_hosts[0]: \"https://s3c.example.com\" must be a host name",
            ),
            (
                "  token: ${TOKEN}\n  external_id: ext-123\n  max_connections: 0",
                "api.max_connections: 0 is out of range",
            ),
            (
                "  token: ${TOKEN}\n  external_id: ext-123\n  body_timeout: 0s",
                "api.body_timeout: \"0s\" is out of range: must be from 1s to 5m",
            ),
            (
                "  token: ${TOKEN}\n  external_id: ext-123\n  body_timeout: 10m",
                "api.body_timeout: \"10m\" is out of range",
            ),
        ];
        for (lines, expected) in table {
            let found = problems(&api(lines));
            if expected.is_empty() {
                assert_eq!(found, Vec::<String>::new(), "{lines}");
            } else {
                assert!(
                    found.iter().any(|p| p.contains(expected)),
                    "{lines}: {found:?}"
                );
            }
            assert!(
                !format!("{found:?}").contains("a-long-enough-token"),
                "{found:?}"
            );
        }
        assert!(problems("connectors: []\n")[0].contains("or enable the api block"));
    }

    #[test]
    fn file_connectors_inherit_defaults_and_a_bad_default_is_named() {
        let text = "defaults:\n  region: eu-west-1\n  max_attempts: 3\nconnectors:\n  - id: a\n    buckets: [bucket-a]\n  - id: b\n    buckets: [bucket-b]\n    max_attempts: 7\n";
        let lookup = |_: &str| None;
        let config = parse(text, Path::new("t.yml"), Path::new("."), &lookup).unwrap();
        assert_eq!(config.connectors[0].region.as_deref(), Some("eu-west-1"));
        assert_eq!(config.connectors[0].max_attempts, 3);
        assert_eq!(config.connectors[1].max_attempts, 7);
        let broken = text.replace("max_attempts: 3", "max_attempts: 99");
        assert_eq!(
            problems(&broken),
            ["defaults.max_attempts: 99 is out of range: must be between 1 and 20"]
        );
    }
}
