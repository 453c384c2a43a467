//! The online check of a connector, step by step, before its first sync: resolve credentials
//! (for a role, sts:AssumeRole with the external id), HeadBucket with the expected owner,
//! ListObjectsV2 (MaxKeys=1) under each rule prefix, and a ranged GetObject of one listed object.
//! For a connector with `notifications`, the queue too: GetQueueAttributes, a ReceiveMessage
//! that hides nothing, and whether each bucket's notification configuration targets the queue.
//! For a connector with `inventory`, each bucket's newest complete S3 Inventory: found, its
//! manifest readable and matching its checksum, and younger than `max_age`.
//! Each step passes or fails with a cause a person can act on and the raw AWS code for support.
//! `validate` is the offline check; this one talks to AWS (or the S3-compatible store).

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;
use tokio::time::Instant;

use aws_sdk_sqs::types::QueueAttributeName;

use crate::config::inventory::InventorySettings;
use crate::config::notifications::{EventFormat, NotificationsConfig};
use crate::config::{BucketSelection, ConnectorConfig, redact_urls};
use crate::credentials;
use crate::events::{Queue, QueueError};
use crate::source::inventory::{self, InventoryError};
use crate::source::s3::{ErrorKind, S3Source, SourceError};
use crate::sync::plan::plan_buckets;

/// Pause between tries while `--wait` lets new IAM policies propagate.
const WAIT_PAUSE: Duration = Duration::from_secs(3);

/// One probe step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Obtain credentials (AssumeRole for a role).
    Credentials,
    /// ListBuckets, for `buckets: ["*"]`.
    ListBuckets,
    /// HeadBucket with the expected owner.
    HeadBucket,
    /// ListObjectsV2 with MaxKeys=1 under one prefix.
    ListObjects,
    /// A ranged GetObject (`bytes=0-0`) of one listed object.
    GetObject,
    /// GetQueueAttributes of the notification queue.
    QueueAttributes,
    /// ReceiveMessage on the notification queue (at most one message, hidden for 0 s).
    QueueReceive,
    /// The bucket's notification configuration names the queue (or EventBridge).
    BucketNotification,
    /// The bucket's newest complete S3 Inventory (`inventory:`): found, readable, fresh.
    Inventory,
}

impl Step {
    /// The step's name as printed.
    pub fn name(self) -> &'static str {
        match self {
            Self::Credentials => "credentials",
            Self::ListBuckets => "list-buckets",
            Self::HeadBucket => "head-bucket",
            Self::ListObjects => "list-objects",
            Self::GetObject => "get-object",
            Self::QueueAttributes => "queue-attributes",
            Self::QueueReceive => "queue-receive",
            Self::BucketNotification => "bucket-notification",
            Self::Inventory => "inventory",
        }
    }
}

/// How a step went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// It worked.
    Pass,
    /// It failed; the connector will not sync correctly.
    Fail,
    /// Not run, because an earlier step failed or there was nothing to probe.
    Skip,
    /// Refused in a way that is expected for the connector's least-privilege policy.
    Warn,
}

/// The result of one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepResult {
    /// The connector's id.
    pub connector: String,
    /// The step.
    pub step: Step,
    /// What it probed: the identity, bucket, `bucket/prefix`, or `bucket/key`.
    pub target: String,
    /// How it went.
    pub status: Status,
    /// What happened, and what to do about a failure.
    pub message: String,
    /// The raw AWS error code of a failure, for support.
    pub code: Option<String>,
}

/// How long a probe keeps retrying refusals that IAM propagation explains: new roles, trust
/// policies and permissions policies take 10-60 s to take effect.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PropagationWait {
    /// For AccessDenied on sts:AssumeRole (a new role or trust policy).
    pub assume_role: Duration,
    /// For AccessDenied on the S3 and SQS calls (a new permissions policy).
    pub access: Duration,
}

impl PropagationWait {
    /// The same wait for every step (`verify --wait`).
    pub fn every_step(wait: Duration) -> Self {
        Self {
            assume_role: wait,
            access: wait,
        }
    }

    /// A wait for AssumeRole only (the API's probe: a refusal of S3 with a passing AssumeRole
    /// is a wrong policy or owner far more often than a slow one, and should answer at once).
    pub fn assume_role_only(wait: Duration) -> Self {
        Self {
            assume_role: wait,
            access: Duration::ZERO,
        }
    }
}

/// Probes one connector, retrying what `wait` allows.
pub async fn verify_connector(
    connector: &ConnectorConfig,
    wait: PropagationWait,
) -> Vec<StepResult> {
    let now = Instant::now();
    let mut probe = Probe {
        connector,
        assume_role_deadline: now + wait.assume_role,
        deadline: now + wait.access,
        results: Vec::new(),
    };
    if !probe.credentials().await {
        return probe.results;
    }
    let sdk_config = credentials::sdk_config(connector).await;
    let source = S3Source::new(connector, &sdk_config);
    let Some(buckets) = probe.buckets(&source).await else {
        return probe.results;
    };
    for bucket in &buckets {
        probe.bucket(&source, bucket).await;
        if let Some(settings) = &connector.inventory {
            probe.inventory(&source, settings, bucket).await;
        }
    }
    if let Some(notifications) = &connector.notifications {
        let queue = Queue::new(connector, notifications, &sdk_config, source.limiter());
        probe.queue(&queue, notifications, &source, &buckets).await;
    }
    probe.results
}

/// The steps of one connector's probe, and what they found so far.
struct Probe<'a> {
    connector: &'a ConnectorConfig,
    /// Until when an AssumeRole refused with AccessDenied is tried again.
    assume_role_deadline: Instant,
    /// Until when other calls refused with AccessDenied are tried again.
    deadline: Instant,
    results: Vec<StepResult>,
}

impl Probe<'_> {
    fn record(
        &mut self,
        step: Step,
        target: &str,
        status: Status,
        message: String,
        code: Option<String>,
    ) {
        self.results.push(StepResult {
            connector: self.connector.id.clone(),
            step,
            target: target.to_owned(),
            status,
            message,
            code,
        });
    }

    /// Records a failed S3 call.
    fn fail(&mut self, step: Step, target: &str, error: &SourceError) {
        self.record(
            step,
            target,
            Status::Fail,
            error.to_string(),
            error.code.clone(),
        );
    }

    /// Resolves the credentials (AssumeRole for a role); false when that failed.
    async fn credentials(&mut self) -> bool {
        let connector = self.connector;
        let started = Instant::now();
        let mut attempts = 0;
        let identity = retry_denied(
            self.assume_role_deadline,
            || {
                attempts += 1;
                credentials::resolve(connector)
            },
            |p| p.code.as_deref() == Some("AccessDenied"),
        )
        .await;
        // Say so when the refusal was retried, with how long it took.
        let waited = (attempts > 1).then(|| started.elapsed().as_secs());
        let role_or_keys = connector.role().unwrap_or("connector identity").to_owned();
        match identity {
            Ok(description) => {
                self.record(
                    Step::Credentials,
                    &role_or_keys,
                    Status::Pass,
                    match waited {
                        Some(seconds) => format!(
                            "{description} (after {seconds} s of waiting for IAM to propagate)"
                        ),
                        None => description,
                    },
                    None,
                );
                true
            }
            Err(problem) => {
                self.record(
                    Step::Credentials,
                    &role_or_keys,
                    Status::Fail,
                    match waited {
                        Some(seconds) => format!(
                            "{} (still refused after {seconds} s of waiting for IAM to propagate)",
                            problem.cause
                        ),
                        None => problem.cause,
                    },
                    problem.code,
                );
                let skipped = "skipped: no credentials".to_owned();
                self.record(Step::HeadBucket, "", Status::Skip, skipped, None);
                false
            }
        }
    }

    /// The buckets a sync would cover (ListBuckets for `*`); `None` when they cannot be known.
    async fn buckets(&mut self, source: &S3Source) -> Option<BTreeSet<String>> {
        let selection = &self.connector.buckets;
        let listed = match selection {
            BucketSelection::Named(_) => Vec::new(),
            BucketSelection::All => {
                match retry_denied(self.deadline, || source.list_buckets(), is_denied).await {
                    Ok(names) => {
                        let visible = format!("{} bucket(s) visible", names.len());
                        self.record(Step::ListBuckets, "*", Status::Pass, visible, None);
                        names
                    }
                    Err(error) => {
                        self.fail(Step::ListBuckets, "*", &error);
                        return None;
                    }
                }
            }
        };
        // The same buckets the sync would cover.
        let plan = plan_buckets(selection, &listed, &self.connector.rules);
        for missing in &plan.missing {
            self.record(
                Step::ListBuckets,
                missing,
                Status::Fail,
                "the sync rules name this bucket, but ListBuckets does not return it: check its name, or the identity's s3:ListAllMyBuckets".to_owned(),
                None,
            );
        }
        Some(plan.selected)
    }

    /// Probes one bucket: its region (for `*`), HeadBucket, a listing under each rule prefix,
    /// and a one-byte read of the first key listed.
    async fn bucket(&mut self, source: &S3Source, bucket: &str) {
        if self.connector.buckets == BucketSelection::All
            && let Err(error) = source.locate_bucket(bucket).await
        {
            self.record(
                Step::HeadBucket,
                bucket,
                Status::Fail,
                format!("its region cannot be found, so it would be skipped: {error}"),
                error.code.clone(),
            );
            return;
        }
        if !self.head_bucket(source, bucket).await {
            return;
        }
        let sample_key = self.list_prefixes(source, bucket).await;
        self.read_one(source, bucket, sample_key).await;
    }

    /// HeadBucket with the expected owner; false when the bucket's probe should stop here.
    async fn head_bucket(&mut self, source: &S3Source, bucket: &str) -> bool {
        let restricted = !self
            .connector
            .rules
            .list_prefixes(bucket)
            .iter()
            .any(String::is_empty);
        match retry_denied(self.deadline, || source.head_bucket(bucket), is_denied).await {
            Ok(_) => {
                let message = match source.expected_owner() {
                    Some(owner) => format!("reachable and owned by account {owner}"),
                    None => "reachable".to_owned(),
                };
                self.record(Step::HeadBucket, bucket, Status::Pass, message, None);
                true
            }
            // With a prefix-restricted s3:ListBucket, AWS refuses HeadBucket (it carries no
            // prefix); the listing steps below are the real test.
            Err(error) if error.kind == ErrorKind::AccessDenied && restricted => {
                self.record(
                    Step::HeadBucket,
                    bucket,
                    Status::Warn,
                    format!("{error}; expected when s3:ListBucket is limited to the rule prefixes"),
                    error.code.clone(),
                );
                true
            }
            Err(error) => {
                self.fail(Step::HeadBucket, bucket, &error);
                // A HEAD answer has no body, so a bare 403 does not say why (policy, bad
                // signature, unknown key): the listing asks again and gets the code.
                error.kind == ErrorKind::AccessDenied && error.code.is_none()
            }
        }
    }

    /// A one-key listing under each rule prefix; returns the first key found, if any.
    async fn list_prefixes(&mut self, source: &S3Source, bucket: &str) -> Option<String> {
        let prefixes = self.connector.rules.list_prefixes(bucket);
        let mut sample_key = None;
        for prefix in &prefixes {
            let target = format!("{bucket}/{prefix}");
            match retry_denied(
                self.deadline,
                || source.first_key(bucket, prefix),
                is_denied,
            )
            .await
            {
                Ok(key) => {
                    let message = match &key {
                        Some(key) => format!("listed, first key {key}"),
                        None => "listed, no objects under this prefix".to_owned(),
                    };
                    self.record(Step::ListObjects, &target, Status::Pass, message, None);
                    sample_key = sample_key.or(key);
                }
                Err(error) => self.fail(Step::ListObjects, &target, &error),
            }
        }
        sample_key
    }

    /// A ranged GetObject of one byte of `key`, or a skip when nothing was listed.
    async fn read_one(&mut self, source: &S3Source, bucket: &str, key: Option<String>) {
        let Some(key) = key else {
            let message = "no object listed to read".to_owned();
            self.record(Step::GetObject, bucket, Status::Skip, message, None);
            return;
        };
        let target = format!("{bucket}/{key}");
        match retry_denied(
            self.deadline,
            || source.read_first_byte(bucket, &key),
            is_denied,
        )
        .await
        {
            Ok(()) => self.record(
                Step::GetObject,
                &target,
                Status::Pass,
                "readable".to_owned(),
                None,
            ),
            Err(error) => self.fail(Step::GetObject, &target, &error),
        }
    }
}

impl Probe<'_> {
    /// Finds the bucket's newest complete S3 Inventory and checks its manifest and age (its
    /// data files are checked by the sync, which reads them whole). None, or a stale one, is a
    /// warning: the sync then lists the bucket instead.
    async fn inventory(&mut self, source: &S3Source, settings: &InventorySettings, bucket: &str) {
        let target = format!("s3://{}/{}", settings.bucket, settings.folder(bucket));
        let fallback = "the sync will list the bucket with ListObjectsV2 instead";
        match inventory::newest(source, settings, bucket).await {
            Ok(Some((path, manifest))) => {
                let age = OffsetDateTime::now_utc() - manifest.created;
                let age = humantime::format_duration(Duration::from_secs(
                    u64::try_from(age.whole_seconds()).unwrap_or(0),
                ));
                if inventory::manifest::is_fresh(
                    manifest.created,
                    OffsetDateTime::now_utc(),
                    settings.max_age,
                ) {
                    let message = format!(
                        "newest complete inventory {path}, created {age} ago, {} data files",
                        manifest.files.len()
                    );
                    self.record(Step::Inventory, &target, Status::Pass, message, None);
                } else {
                    let message = format!(
                        "the newest complete inventory, {path}, was created {age} ago, longer than max_age ({}): {fallback}",
                        humantime::format_duration(settings.max_age)
                    );
                    self.record(Step::Inventory, &target, Status::Warn, message, None);
                }
            }
            Ok(None) => {
                let message = format!(
                    "no complete inventory (manifest.json with a matching manifest.checksum): {fallback}"
                );
                self.record(Step::Inventory, &target, Status::Warn, message, None);
            }
            Err(InventoryError::Store(error)) => self.fail(Step::Inventory, &target, &error),
            Err(error) => self.record(
                Step::Inventory,
                &target,
                Status::Fail,
                error.to_string(),
                None,
            ),
        }
    }
}

impl Probe<'_> {
    /// Records a failed SQS call, naming the permission a denial lacks.
    fn queue_fail(&mut self, step: Step, error: &QueueError) {
        let mut message = error.to_string();
        if error.is_denied() {
            message.push_str(&format!(
                "; the identity's policy must allow {} on the queue",
                error.iam_action()
            ));
        }
        self.record(
            step,
            &error.queue,
            Status::Fail,
            message,
            error.code.clone(),
        );
    }

    /// The notification queue: its attributes, a receive, and each bucket's configuration.
    async fn queue(
        &mut self,
        queue: &Queue,
        notifications: &NotificationsConfig,
        source: &S3Source,
        buckets: &BTreeSet<String>,
    ) {
        let url = redact_urls(queue.url()).into_owned();
        let names = [
            QueueAttributeName::QueueArn,
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::RedrivePolicy,
        ];
        let attributes = match retry_denied(
            self.deadline,
            || queue.attributes(&names),
            QueueError::is_denied,
        )
        .await
        {
            Ok(attributes) => attributes,
            Err(error) => {
                self.queue_fail(Step::QueueAttributes, &error);
                return;
            }
        };
        let waiting = attributes
            .get(&QueueAttributeName::ApproximateNumberOfMessages)
            .map_or("?", String::as_str);
        let arn = attributes
            .get(&QueueAttributeName::QueueArn)
            .cloned()
            .unwrap_or_default();
        match attributes.get(&QueueAttributeName::RedrivePolicy) {
            Some(redrive) => self.record(
                Step::QueueAttributes,
                &url,
                Status::Pass,
                format!("{waiting} message(s) waiting; redrive policy {redrive}"),
                None,
            ),
            None => self.record(
                Step::QueueAttributes,
                &url,
                Status::Warn,
                format!(
                    "{waiting} message(s) waiting; no redrive policy: a message that cannot be read or applied comes back forever. Give the queue a dead-letter queue (RedrivePolicy with maxReceiveCount)"
                ),
                None,
            ),
        }
        // Hidden for 0 s: a message received here is at once visible to the worker again.
        match retry_denied(
            self.deadline,
            || queue.receive(1, Duration::ZERO, Duration::ZERO),
            QueueError::is_denied,
        )
        .await
        {
            Ok(messages) => self.record(
                Step::QueueReceive,
                &url,
                Status::Pass,
                format!(
                    "receiving works ({} message(s) seen and left in the queue)",
                    messages.len()
                ),
                None,
            ),
            Err(error) => self.queue_fail(Step::QueueReceive, &error),
        }
        for bucket in buckets {
            self.bucket_notification(source, bucket, &arn, notifications.format)
                .await;
        }
    }

    /// Whether `bucket` sends its events to the queue `arn` (or on a way that may reach it).
    async fn bucket_notification(
        &mut self,
        source: &S3Source,
        bucket: &str,
        arn: &str,
        format: EventFormat,
    ) {
        let targets = match source.notification_targets(bucket).await {
            Ok(targets) => targets,
            Err(error) if error.kind == ErrorKind::AccessDenied => {
                self.record(
                    Step::BucketNotification,
                    bucket,
                    Status::Warn,
                    "cannot read the bucket's notification configuration (s3:GetBucketNotification is not granted; the worker does not need it)".to_owned(),
                    error.code.clone(),
                );
                return;
            }
            Err(error) => {
                self.fail(Step::BucketNotification, bucket, &error);
                return;
            }
        };
        let (status, message) = notification_verdict(&targets, arn, format);
        self.record(Step::BucketNotification, bucket, status, message, None);
    }
}

/// Whether a bucket's notification configuration delivers created and removed objects to the
/// queue `arn`: a pure function of the configuration.
fn notification_verdict(
    targets: &crate::source::s3::NotificationTargets,
    arn: &str,
    format: EventFormat,
) -> (Status, String) {
    let covers = |events: &[String], kind: &str| {
        events
            .iter()
            .any(|e| e == "s3:*" || e.starts_with(&format!("s3:{kind}")))
    };
    if let Some((_, events)) = targets.queues.iter().find(|(queue, _)| queue == arn) {
        return match (
            covers(events, "ObjectCreated"),
            covers(events, "ObjectRemoved"),
        ) {
            (true, true) => (
                Status::Pass,
                format!("sends {} to this queue", events.join(", ")),
            ),
            (created, _) => (
                Status::Fail,
                format!(
                    "sends only {} to this queue: add {} so that the index follows {}",
                    events.join(", "),
                    if created {
                        "s3:ObjectRemoved:*"
                    } else {
                        "s3:ObjectCreated:*"
                    },
                    if created {
                        "deletions"
                    } else {
                        "new and changed objects"
                    }
                ),
            ),
        };
    }
    if targets.eventbridge && matches!(format, EventFormat::Auto | EventFormat::Eventbridge) {
        return (
            Status::Pass,
            "sends its events to EventBridge; an EventBridge rule must send Object Created and Object Deleted to this queue (not checked)".to_owned(),
        );
    }
    if !targets.topics.is_empty() && matches!(format, EventFormat::Auto | EventFormat::Sns) {
        let topics: Vec<&str> = targets.topics.iter().map(|(t, _)| t.as_str()).collect();
        return (
            Status::Warn,
            format!(
                "sends its events to SNS topic(s) {}; the topic must deliver to this queue (not checked)",
                topics.join(", ")
            ),
        );
    }
    (
        Status::Fail,
        format!(
            "its notification configuration does not send events to this queue ({arn}): add a queue configuration for s3:ObjectCreated:* and s3:ObjectRemoved:* (see docs/events.md)"
        ),
    )
}

fn is_denied(error: &SourceError) -> bool {
    error.kind == ErrorKind::AccessDenied
}

/// Runs `probe` until it succeeds, fails with something other than a denial, or `deadline`
/// passes.
async fn retry_denied<T, E, F, Fut>(
    deadline: Instant,
    mut probe: F,
    denied: impl Fn(&E) -> bool,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    loop {
        match probe().await {
            Err(error) if denied(&error) && Instant::now() + WAIT_PAUSE <= deadline => {
                tracing::info!(message = "Access denied; waiting for IAM changes to propagate.");
                tokio::time::sleep(WAIT_PAUSE).await;
            }
            other => return other,
        }
    }
}

/// True when no step failed (skips and warnings do not fail a connector).
pub fn all_passed(results: &[StepResult]) -> bool {
    results.iter().all(|r| r.status != Status::Fail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::s3::NotificationTargets;

    #[test]
    fn notification_verdicts() {
        let arn = "arn:aws:sqs:us-east-1:123456789012:q";
        let queue = |events: &[&str]| NotificationTargets {
            queues: vec![(
                arn.to_owned(),
                events.iter().map(|e| (*e).to_owned()).collect(),
            )],
            ..NotificationTargets::default()
        };
        let other_queue = NotificationTargets {
            queues: vec![(
                "arn:aws:sqs:us-east-1:123456789012:other".into(),
                vec!["s3:*".into()],
            )],
            ..NotificationTargets::default()
        };
        let bridge = NotificationTargets {
            eventbridge: true,
            ..NotificationTargets::default()
        };
        let topic = NotificationTargets {
            topics: vec![("arn:aws:sns:us-east-1:123456789012:t".into(), vec![])],
            ..NotificationTargets::default()
        };
        let cases: Vec<(NotificationTargets, EventFormat, Status, &str)> = vec![
            (
                queue(&["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]),
                EventFormat::Auto,
                Status::Pass,
                "sends s3:ObjectCreated:*",
            ),
            (
                queue(&["s3:*"]),
                EventFormat::S3,
                Status::Pass,
                "sends s3:*",
            ),
            (
                queue(&["s3:ObjectCreated:Put"]),
                EventFormat::Auto,
                Status::Fail,
                "add s3:ObjectRemoved:*",
            ),
            (
                queue(&["s3:ObjectRemoved:Delete"]),
                EventFormat::Auto,
                Status::Fail,
                "add s3:ObjectCreated:*",
            ),
            (
                other_queue,
                EventFormat::Auto,
                Status::Fail,
                "does not send events to this queue",
            ),
            (
                bridge.clone(),
                EventFormat::Eventbridge,
                Status::Pass,
                "EventBridge",
            ),
            (bridge, EventFormat::S3, Status::Fail, "does not send"),
            (topic.clone(), EventFormat::Sns, Status::Warn, "SNS topic"),
            (
                topic,
                EventFormat::Eventbridge,
                Status::Fail,
                "does not send",
            ),
            (
                NotificationTargets::default(),
                EventFormat::Auto,
                Status::Fail,
                "does not send",
            ),
        ];
        for (targets, format, status, part) in cases {
            let (found, message) = notification_verdict(&targets, arn, format);
            assert_eq!(found, status, "{targets:?}: {message}");
            assert!(message.contains(part), "{targets:?}: {message}");
        }
    }
}
