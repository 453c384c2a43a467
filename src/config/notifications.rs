//! The connector's `notifications:` block: the SQS queue that carries the buckets' event
//! notifications, how its messages are wrapped, and how `run` polls it; plus the offline checks
//! of those values.
//!
//! Only data and validation live here; the SQS client and the consumer loop are in
//! `crate::events`.

use serde::Deserialize;

use super::{NumberRule, Problem, defaults, rules_of_names};

/// Where a connector's S3 event notifications arrive: `run` consumes this queue between its
/// scheduled full syncs, and for each key an event names asks S3 for the object's current state
/// (events are hints; S3 is the truth).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationsConfig {
    /// The queue's URL, as SQS names it:
    /// `https://sqs.eu-west-1.amazonaws.com/123456789012/docs-events`.
    pub queue_url: String,
    /// How the events are wrapped: `s3` (S3's own notification JSON), `sns` (S3 → SNS → SQS),
    /// `eventbridge` (S3 → EventBridge rule → SQS), or `auto` (recognised per message).
    /// Default `auto`.
    #[serde(default)]
    pub format: EventFormat,
    /// Long polling per ReceiveMessage, 0..=20 seconds (SQS's limit): a duration such as `20s`
    /// (a bare number is seconds). Default 20s.
    #[serde(
        default = "defaults::notifications_wait_time",
        deserialize_with = "super::duration::seconds"
    )]
    pub wait_time: u64,
    /// How long a received message stays hidden from other consumers, 1..=43200 seconds (SQS's
    /// limit, 12h): a duration such as `5m` (a bare number is seconds). Extended by the same
    /// amount every half of it while the message's objects are still being downloaded,
    /// extracted or written, so a slow object is not processed twice. Default 300 (5m).
    #[serde(
        default = "defaults::notifications_visibility_timeout",
        deserialize_with = "super::duration::seconds"
    )]
    pub visibility_timeout: u64,
    /// Messages per ReceiveMessage, 1..=10 (SQS's limit). Default 10.
    #[serde(default = "defaults::notifications_max_messages")]
    pub max_messages: u32,
    /// Endpoint of SQS. Default: AWS's SQS of the connector's region, or the connector's
    /// `endpoint_url` when that is set (emulators serve SQS beside S3).
    #[serde(default)]
    pub sqs_endpoint_url: Option<String>,
}

/// How the S3 events inside an SQS message are wrapped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventFormat {
    /// Recognised per message: an SNS envelope, an EventBridge event, or S3's own records.
    #[default]
    Auto,
    /// S3's notification JSON (`{"Records": [...]}`), sent straight to the queue.
    S3,
    /// S3's notification JSON inside an SNS envelope (`{"Type": "Notification", "Message": ...}`).
    Sns,
    /// EventBridge events (`"detail-type": "Object Created"` / `"Object Deleted"`).
    Eventbridge,
}

impl EventFormat {
    /// The name the config file uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::S3 => "s3",
            Self::Sns => "sns",
            Self::Eventbridge => "eventbridge",
        }
    }
}

/// A queue URL taken apart: what the IAM policy and the SQS ARN need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueName {
    /// The 12-digit account id in the URL's path (emulators use one too).
    pub account: String,
    /// The queue's name, the last segment of the URL.
    pub name: String,
    /// The region in an AWS host (`sqs.<region>.amazonaws.com`), if the host is AWS's.
    pub region: Option<String>,
}

impl NotificationsConfig {
    /// The queue's account, name and region, read from `queue_url` (validated by `load`).
    pub fn queue(&self) -> Option<QueueName> {
        parse_queue_url(&self.queue_url).ok()
    }
}

/// Takes `https://sqs.<region>.amazonaws.com/<account>/<name>` (or an emulator's
/// `http://host:port/<account>/<name>`) apart.
pub fn parse_queue_url(url: &str) -> Result<QueueName, String> {
    const RULE: &str = "must be an SQS queue URL, http(s)://HOST/ACCOUNT/QUEUE, e.g. https://sqs.eu-west-1.amazonaws.com/123456789012/docs-events";
    rules_of_names::check_endpoint_url(url).map_err(|_| RULE.to_owned())?;
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let mut parts = rest.trim_end_matches('/').split('/');
    let host = parts.next().unwrap_or_default();
    let (Some(account), Some(name), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(RULE.to_owned());
    };
    if rules_of_names::check_account_id(account).is_err() {
        return Err(format!(
            "{RULE} (the path's first segment must be the 12-digit account id)"
        ));
    }
    let base = name.strip_suffix(".fifo").unwrap_or(name);
    let valid_name = (1..=80).contains(&name.len())
        && base
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid_name {
        return Err(format!(
            "{RULE} (queue names have 1 to 80 letters, digits, - and _, and .fifo at the end of a FIFO queue)"
        ));
    }
    let region = host
        .strip_prefix("sqs.")
        .and_then(|h| h.split_once(".amazonaws.com"))
        .map(|(region, _)| region.to_owned());
    Ok(QueueName {
        account: account.to_owned(),
        name: name.to_owned(),
        region,
    })
}

/// Checks the block; `push(field, value, rule)` reports a problem of `notifications.<field>`.
pub(super) fn validate(
    config: &NotificationsConfig,
    push: &mut dyn FnMut(&str, Option<String>, String),
) {
    if let Err(rule) = parse_queue_url(&config.queue_url) {
        push(
            "queue_url",
            Some(format!("{:?}", super::redact_urls(&config.queue_url))),
            rule,
        );
    }
    if let Some(url) = &config.sqs_endpoint_url
        && let Err(rule) = rules_of_names::check_endpoint_url(url)
    {
        push(
            "sqs_endpoint_url",
            Some(format!("{:?}", super::redact_urls(url))),
            rule,
        );
    }
    super::check_numbers(&NUMBERS, config, push);
}

/// The whole-number fields of the `notifications` block.
pub(super) const NUMBERS: [NumberRule<NotificationsConfig>; 3] = [
    NumberRule {
        field: "wait_time",
        min: 0,
        max: 20,
        value: |c| c.wait_time,
        unit: " seconds (SQS's long-polling limit)",
    },
    NumberRule {
        field: "visibility_timeout",
        min: 1,
        max: 43_200,
        value: |c| c.visibility_timeout,
        unit: " seconds (SQS allows at most 12 hours)",
    },
    NumberRule {
        field: "max_messages",
        min: 1,
        max: 10,
        value: |c| c.max_messages.into(),
        unit: " (SQS returns at most 10 messages a call)",
    },
];

/// [`validate`] for the connector at `position`, with paths `connectors[N].notifications.<field>`.
pub(super) fn validate_connector(
    config: &NotificationsConfig,
    position: usize,
    problems: &mut Vec<Problem>,
) {
    validate(config, &mut |field, value, rule| {
        problems.push(Problem {
            path: format!("connectors[{position}].notifications.{field}"),
            value,
            rule,
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> NotificationsConfig {
        yaml_serde::from_str(yaml).unwrap()
    }

    fn problems(config: &NotificationsConfig) -> Vec<String> {
        let mut problems = Vec::new();
        validate_connector(config, 0, &mut problems);
        problems.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn defaults_and_a_minimal_block() {
        let minimal =
            config("queue_url: https://sqs.eu-west-1.amazonaws.com/123456789012/docs-events");
        assert_eq!(minimal.format, EventFormat::Auto);
        assert_eq!(minimal.wait_time, 20);
        assert_eq!(minimal.visibility_timeout, 300);
        assert_eq!(minimal.max_messages, 10);
        assert!(problems(&minimal).is_empty());
        assert_eq!(
            minimal.queue(),
            Some(QueueName {
                account: "123456789012".into(),
                name: "docs-events".into(),
                region: Some("eu-west-1".into()),
            })
        );
    }

    #[test]
    fn every_broken_value_names_field_value_and_rule() {
        let broken = config(
            "queue_url: sqs://nowhere\nformat: sns\nwait_time: 21\nvisibility_timeout: 0\nmax_messages: 11\nsqs_endpoint_url: localhost:4566",
        );
        let found = problems(&broken);
        let expected = [
            "connectors[0].notifications.queue_url: \"sqs://nowhere\" must be an SQS queue URL",
            "connectors[0].notifications.sqs_endpoint_url: \"localhost:4566\" must be an http:// or https:// URL",
            "connectors[0].notifications.wait_time: 21 is out of range: must be between 0 and 20",
            "connectors[0].notifications.visibility_timeout: 0 is out of range: must be between 1 and 43200",
            "connectors[0].notifications.max_messages: 11 is out of range: must be between 1 and 10",
        ];
        assert_eq!(found.len(), expected.len(), "{found:#?}");
        for (found, expected) in found.iter().zip(expected) {
            assert!(found.starts_with(expected), "{found} vs {expected}");
        }
    }

    #[test]
    fn queue_urls() {
        type Parts<'a> = (&'a str, &'a str, Option<&'a str>);
        let cases: &[(&str, Result<Parts<'_>, &str>)] = &[
            (
                "https://sqs.us-east-1.amazonaws.com/123456789012/q",
                Ok(("123456789012", "q", Some("us-east-1"))),
            ),
            (
                "http://127.0.0.1:4566/000000000000/events.fifo",
                Ok(("000000000000", "events.fifo", None)),
            ),
            (
                "http://127.0.0.1:4566/123456789012/a_b-c/",
                Ok(("123456789012", "a_b-c", None)),
            ),
            (
                "https://sqs.us-east-1.amazonaws.com/q",
                Err("ACCOUNT/QUEUE"),
            ),
            (
                "https://sqs.us-east-1.amazonaws.com/12345/q",
                Err("12-digit account id"),
            ),
            (
                "https://sqs.us-east-1.amazonaws.com/123456789012/a.b",
                Err("queue names have"),
            ),
            (
                "https://sqs.us-east-1.amazonaws.com/123456789012/q/extra",
                Err("ACCOUNT/QUEUE"),
            ),
            ("arn:aws:sqs:us-east-1:123456789012:q", Err("SQS queue URL")),
        ];
        for (url, expected) in cases {
            match (parse_queue_url(url), expected) {
                (Ok(found), Ok((account, name, region))) => {
                    assert_eq!(found.account, *account, "{url}");
                    assert_eq!(found.name, *name, "{url}");
                    assert_eq!(found.region.as_deref(), *region, "{url}");
                }
                (Err(found), Err(part)) => assert!(found.contains(part), "{url}: {found}"),
                (found, expected) => panic!("{url}: {found:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn unknown_fields_and_formats_are_refused() {
        assert!(
            yaml_serde::from_str::<NotificationsConfig>(
                "queue_url: http://h/123456789012/q\nwait: 3"
            )
            .is_err()
        );
        assert!(
            yaml_serde::from_str::<NotificationsConfig>(
                "queue_url: http://h/123456789012/q\nformat: kafka"
            )
            .is_err()
        );
    }
}
