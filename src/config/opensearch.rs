//! The `index: {kind: opensearch}` section: where the OpenSearch cluster is, how to authenticate
//! and how hard to push it, and the offline checks of those values.
//!
//! Only data and validation live here; building the HTTP client from it is the job of
//! `sink::opensearch`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{NumberRule, Problem, REDACTED, Secret, defaults, redact_urls, rules_of_names};

/// An OpenSearch cluster (self-managed, Amazon OpenSearch Service or Serverless). Each connector
/// writes to the index named by its `index_name`, created with an explicit mapping on first use.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpensearchConfig {
    /// Base URL of the cluster, `http://` or `https://`, e.g. `https://search.internal:9200`.
    /// A path (behind a reverse proxy) is kept. A user or password in it (`user:pw@host`) is
    /// refused, since a URL gets printed: use `username` and `password`.
    pub url: String,
    /// User for HTTP basic authentication. Needs `password`; not allowed with `aws_sigv4`.
    #[serde(default)]
    pub username: Option<String>,
    /// Password for HTTP basic authentication (masked in every output).
    #[serde(default)]
    pub password: Option<Secret>,
    /// Sign requests with AWS SigV4 (Amazon OpenSearch Service or Serverless), with credentials
    /// from the default AWS chain (environment, profile, web identity, container and instance
    /// roles). Not allowed with `username`.
    #[serde(default)]
    pub aws_sigv4: Option<AwsSigV4Config>,
    /// PEM file of a CA certificate to trust in addition to the system's roots, for clusters
    /// with a private CA. A relative path is relative to the config file's directory.
    #[serde(default)]
    pub ca_cert: Option<PathBuf>,
    /// Skip TLS certificate verification. Default false; when true every connection can be
    /// intercepted, and a warning is logged each time the index is opened.
    #[serde(default)]
    pub tls_insecure_skip_verify: bool,
    /// Most documents in one bulk request, 1..=10000. Default 500.
    #[serde(default = "defaults::opensearch_bulk_max_docs")]
    pub bulk_max_docs: usize,
    /// Most bytes of NDJSON in one bulk request, 1024..=104857600 (100 MiB, OpenSearch's default
    /// `http.max_content_length`). Default 5242880 (5 MiB). A single larger document is sent
    /// alone.
    #[serde(default = "defaults::opensearch_bulk_max_bytes")]
    pub bulk_max_bytes: u64,
    /// Bulk requests in flight at once, 1..=64. Default 2.
    #[serde(default = "defaults::opensearch_bulk_concurrency")]
    pub bulk_concurrency: usize,
    /// Retries after the first attempt, 0..=20, with exponential backoff and jitter (100 ms
    /// doubling, at most 20 s apart): of a whole request that failed with 429, 502, 503, 504, a
    /// timeout or a broken connection, and of the bulk items that failed with 429 or 5xx (only
    /// those items are sent again). Default 8.
    #[serde(default = "defaults::opensearch_max_retries")]
    pub max_retries: u32,
    /// Timeout of one request, connecting included, 1..=3600 seconds: a duration such as `60s`
    /// or `2m` (a bare number is seconds). Default 60s.
    #[serde(
        default = "defaults::opensearch_request_timeout",
        deserialize_with = "super::duration::seconds"
    )]
    pub request_timeout: u64,
}

/// AWS SigV4 request signing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsSigV4Config {
    /// The domain's or collection's region, e.g. `eu-west-1`.
    pub region: String,
    /// Which service signs: `es` (Amazon OpenSearch Service) or `aoss` (Serverless).
    /// Default `es`.
    #[serde(default)]
    pub service: SigV4Service,
}

/// The SigV4 service name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SigV4Service {
    /// Amazon OpenSearch Service domains.
    #[default]
    Es,
    /// Amazon OpenSearch Serverless collections.
    Aoss,
}

impl SigV4Service {
    /// The name requests are signed for.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Es => "es",
            Self::Aoss => "aoss",
        }
    }
}

impl OpensearchConfig {
    /// The basic-auth user and password, when both are set (empty values count as unset).
    pub fn basic_auth(&self) -> Option<(&str, &Secret)> {
        let username = self.username.as_deref().filter(|v| !v.is_empty())?;
        let password = self.password.as_ref().filter(|v| !v.is_empty())?;
        Some((username, password))
    }
}

/// Checks the section, resolving `ca_cert` against `base_dir`; appends what is broken with
/// paths `index.<field>`.
pub(super) fn validate(
    config: &mut OpensearchConfig,
    base_dir: &Path,
    problems: &mut Vec<Problem>,
) {
    let mut push = |field: &str, value: Option<String>, rule: String| {
        problems.push(Problem {
            path: format!("index.{field}"),
            value,
            rule,
        });
    };
    let shown = Some(format!("{:?}", redact_urls(&config.url)));
    if rules_of_names::has_user_info(&config.url) {
        push(
            "url",
            shown,
            "carries a user name or password (user:password@host), which would be printed wherever the URL is: put the user in index.username and the password in index.password, from the environment (password: ${OPENSEARCH_PASSWORD})".into(),
        );
    } else if let Err(rule) = rules_of_names::check_endpoint_url(&config.url) {
        push("url", shown, rule);
    }
    let has_user = config.username.as_deref().is_some_and(|v| !v.is_empty());
    let has_password = config.password.as_ref().is_some_and(|v| !v.is_empty());
    if has_user && !has_password {
        push(
            "password",
            None,
            "is missing: username needs its password".into(),
        );
    }
    if has_password && !has_user {
        push(
            "password",
            Some(REDACTED.to_owned()),
            "is set without username".into(),
        );
    }
    if let Some(sigv4) = &config.aws_sigv4 {
        if has_user || has_password {
            push(
                "aws_sigv4",
                None,
                "is set together with username/password; choose one way to authenticate".into(),
            );
        }
        if let Err(rule) = rules_of_names::check_region(&sigv4.region) {
            push(
                "aws_sigv4.region",
                Some(format!("{:?}", sigv4.region)),
                rule,
            );
        }
    }
    if let Some(ca_cert) = config.ca_cert.as_mut() {
        let full = base_dir.join(&*ca_cert);
        if config.tls_insecure_skip_verify {
            push(
                "ca_cert",
                Some(format!("{:?}", ca_cert.display().to_string())),
                "has no effect with tls_insecure_skip_verify: true; remove one of them".into(),
            );
        } else if let Err(error) = std::fs::metadata(&full) {
            push(
                "ca_cert",
                Some(format!("{:?}", ca_cert.display().to_string())),
                format!("cannot be read from {}: {error}", full.display()),
            );
        }
        *ca_cert = full;
    }
    super::check_numbers(&NUMBERS, config, &mut push);
}

/// The whole-number fields of the OpenSearch index block.
pub(super) const NUMBERS: [NumberRule<OpensearchConfig>; 5] = [
    NumberRule {
        field: "bulk_max_docs",
        min: 1,
        max: 10_000,
        value: |c| c.bulk_max_docs as u64,
        unit: "",
    },
    NumberRule {
        field: "bulk_max_bytes",
        min: 1024,
        max: 100 * 1024 * 1024,
        value: |c| c.bulk_max_bytes,
        unit: "",
    },
    NumberRule {
        field: "bulk_concurrency",
        min: 1,
        max: 64,
        value: |c| c.bulk_concurrency as u64,
        unit: "",
    },
    NumberRule {
        field: "max_retries",
        min: 0,
        max: 20,
        value: |c| c.max_retries.into(),
        unit: "",
    },
    NumberRule {
        field: "request_timeout",
        min: 1,
        max: 3600,
        value: |c| c.request_timeout,
        unit: "",
    },
];

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{ConfigError, IndexConfig, parse};

    const CONNECTOR: &str = "connectors:\n  - id: docs\n    buckets: [\"team-docs\"]\n";

    fn parse_index(index: &str) -> Result<crate::config::Config, ConfigError> {
        let text = format!("index:\n{index}\n{CONNECTOR}");
        let lookup = |name: &str| (name == "OS_PASSWORD").then(|| "pa55-DO-NOT-LEAK".to_owned());
        parse(&text, Path::new("test.yml"), Path::new("/etc/s3c"), &lookup)
    }

    fn problems(index: &str) -> Vec<String> {
        match parse_index(index) {
            Err(ConfigError::Invalid { problems, .. }) => {
                problems.iter().map(ToString::to_string).collect()
            }
            Err(other) => vec![format!("not a validation error: {other}")],
            Ok(_) => Vec::new(),
        }
    }

    #[test]
    fn a_minimal_section_gets_the_documented_defaults() {
        let config = parse_index("  kind: opensearch\n  url: http://127.0.0.1:9200").unwrap();
        let IndexConfig::Opensearch(os) = config.index else {
            panic!("not opensearch: {:?}", config.index)
        };
        assert_eq!(os.url, "http://127.0.0.1:9200");
        assert_eq!(
            (
                os.bulk_max_docs,
                os.bulk_max_bytes,
                os.bulk_concurrency,
                os.max_retries,
                os.request_timeout
            ),
            (500, 5_242_880, 2, 8, 60)
        );
        assert!(os.basic_auth().is_none() && os.aws_sigv4.is_none());
        assert!(!os.tls_insecure_skip_verify);
    }

    #[test]
    fn the_issue_example_parses_with_sigv4_and_a_password_from_the_environment() {
        let config = parse_index(
            "  kind: opensearch\n  url: https://search.internal:9200\n  aws_sigv4: { region: eu-west-1, service: aoss }\n  bulk_max_docs: 100\n  bulk_max_bytes: 1048576\n  bulk_concurrency: 4\n  max_retries: 3\n  request_timeout: 5",
        )
        .unwrap();
        let IndexConfig::Opensearch(os) = config.index else {
            panic!("not opensearch")
        };
        let sigv4 = os.aws_sigv4.unwrap();
        assert_eq!(sigv4.region, "eu-west-1");
        assert_eq!(sigv4.service.as_str(), "aoss");
        assert_eq!((os.bulk_max_docs, os.bulk_concurrency), (100, 4));

        let config = parse_index(
            "  kind: opensearch\n  url: https://search.internal:9200\n  username: admin\n  password: ${OS_PASSWORD}",
        )
        .unwrap();
        let IndexConfig::Opensearch(os) = config.index else {
            panic!("not opensearch")
        };
        let (user, password) = os.basic_auth().unwrap();
        assert_eq!((user, password.expose()), ("admin", "pa55-DO-NOT-LEAK"));
        assert!(!format!("{os:?}").contains("DO-NOT-LEAK"));
    }

    #[test]
    fn every_broken_rule_is_reported_with_its_field_and_secrets_stay_masked() {
        let cases: &[(&str, &[&str])] = &[
            (
                "  kind: opensearch\n  url: search.internal:9200",
                &["index.url: \"search.internal:9200\" must be an http:// or https:// URL"],
            ),
            (
                "  kind: opensearch\n  url: http://admin:${OS_PASSWORD}@search.internal:9200",
                &[
                    "index.url: \"http://**REDACTED**@search.internal:9200\" carries a user name or password (user:password@host), which would be printed wherever the URL is: put the user in index.username and the password in index.password",
                ],
            ),
            (
                "  kind: opensearch\n  url: https://${OS_PASSWORD}@search.internal/prefix",
                &["index.url: \"https://**REDACTED**@search.internal/prefix\" carries"],
            ),
            (
                "  kind: opensearch\n  url: http://h\n  username: admin",
                &["index.password: is missing: username needs its password"],
            ),
            (
                "  kind: opensearch\n  url: http://h\n  password: ${OS_PASSWORD}",
                &["index.password: **REDACTED** is set without username"],
            ),
            (
                "  kind: opensearch\n  url: http://h\n  username: a\n  password: b\n  aws_sigv4: {region: Eu_West}",
                &[
                    "index.aws_sigv4: is set together with username/password",
                    "index.aws_sigv4.region: \"Eu_West\" must be a region name",
                ],
            ),
            (
                "  kind: opensearch\n  url: http://h\n  ca_cert: no/such/ca.pem",
                &["index.ca_cert: \"no/such/ca.pem\" cannot be read from /etc/s3c/no/such/ca.pem"],
            ),
            (
                "  kind: opensearch\n  url: http://h\n  ca_cert: /etc/hostname\n  tls_insecure_skip_verify: true",
                &["index.ca_cert: \"/etc/hostname\" has no effect with tls_insecure_skip_verify"],
            ),
            (
                "  kind: opensearch\n  url: http://h\n  bulk_max_docs: 0\n  bulk_max_bytes: 10\n  bulk_concurrency: 65\n  max_retries: 21\n  request_timeout: 0",
                &[
                    "index.bulk_max_docs: 0 is out of range: must be between 1 and 10000",
                    "index.bulk_max_bytes: 10 is out of range: must be between 1024 and 104857600",
                    "index.bulk_concurrency: 65 is out of range: must be between 1 and 64",
                    "index.max_retries: 21 is out of range: must be between 0 and 20",
                    "index.request_timeout: 0 is out of range: must be between 1 and 3600",
                ],
            ),
        ];
        for (index, expected) in cases {
            let found = problems(index);
            assert_eq!(found.len(), expected.len(), "{index}: {found:?}");
            for (found, expected) in found.iter().zip(*expected) {
                assert!(found.starts_with(expected), "{index}:\n{found}\n{expected}");
            }
            assert!(!found.concat().contains("DO-NOT-LEAK"), "{found:?}");
        }
    }

    #[test]
    fn unknown_fields_wrong_types_and_services_are_syntax_errors_that_mask_the_password() {
        for (index, expected) in [
            (
                "  kind: opensearch\n  url: http://h\n  bulk_size: 5",
                "unknown field `bulk_size`",
            ),
            (
                "  kind: opensearch\n  url: http://h\n  aws_sigv4: {region: eu-west-1, service: s3}",
                "unknown variant `s3`",
            ),
            (
                "  kind: opensearch\n  url: http://h\n  password: [1]",
                "invalid type: sequence",
            ),
            (
                "  kind: opensearch\n  url: http://h\n  username: u\n  password: 918273645",
                "invalid type: number (**REDACTED**), expected a string",
            ),
        ] {
            let error = parse_index(index).unwrap_err().to_string();
            assert!(error.contains(expected), "{index}: {error}");
            assert!(!error.contains("918273645"), "{error}");
        }
    }
}
