//! The online check of a connector, step by step, before its first sync: resolve credentials
//! (for a role, sts:AssumeRole with the external id), HeadBucket with the expected owner,
//! ListObjectsV2 (MaxKeys=1) under each rule prefix, and a ranged GetObject of one listed object.
//! Each step passes or fails with a cause a person can act on and the raw AWS code for support.
//! `validate` is the offline check; this one talks to AWS (or the S3-compatible store).

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::config::{BucketSelection, ConnectorConfig};
use crate::credentials;
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

/// Probes one connector. `wait` keeps retrying steps refused with AccessDenied for that long,
/// because new IAM policies take 10-60 s to take effect.
pub async fn verify_connector(connector: &ConnectorConfig, wait: Duration) -> Vec<StepResult> {
    let deadline = Instant::now() + wait;
    let mut results = Vec::new();
    let mut record =
        |step: Step, target: &str, status: Status, message: String, code: Option<String>| {
            results.push(StepResult {
                connector: connector.id.clone(),
                step,
                target: target.to_owned(),
                status,
                message,
                code,
            });
        };

    let identity = retry_denied(
        deadline,
        || credentials::resolve(connector),
        |p| p.code.as_deref() == Some("AccessDenied"),
    )
    .await;
    let role_or_keys = connector.role().unwrap_or("connector identity").to_owned();
    match identity {
        Ok(description) => record(
            Step::Credentials,
            &role_or_keys,
            Status::Pass,
            description,
            None,
        ),
        Err(problem) => {
            record(
                Step::Credentials,
                &role_or_keys,
                Status::Fail,
                problem.cause,
                problem.code,
            );
            record(
                Step::HeadBucket,
                "",
                Status::Skip,
                "skipped: no credentials".to_owned(),
                None,
            );
            return results;
        }
    }

    let sdk_config = credentials::sdk_config(connector).await;
    let source = S3Source::new(connector, &sdk_config);
    let rules = connector.rules.as_ref();
    let selection = connector.bucket_selection();
    let listed = match selection {
        BucketSelection::Named(_) => Vec::new(),
        BucketSelection::All => {
            match retry_denied(deadline, || source.list_buckets(), is_denied).await {
                Ok(names) => {
                    record(
                        Step::ListBuckets,
                        "*",
                        Status::Pass,
                        format!("{} bucket(s) visible", names.len()),
                        None,
                    );
                    names
                }
                Err(error) => {
                    record(
                        Step::ListBuckets,
                        "*",
                        Status::Fail,
                        error.to_string(),
                        error.code.clone(),
                    );
                    return results;
                }
            }
        }
    };
    // The same buckets the sync would cover.
    let plan = plan_buckets(&selection, &listed, rules);
    for missing in &plan.missing {
        record(
            Step::ListBuckets,
            missing,
            Status::Fail,
            "the sync rules name this bucket, but ListBuckets does not return it: check its name, or the identity's s3:ListAllMyBuckets".to_owned(),
            None,
        );
    }
    let buckets = plan.selected;
    let restricted =
        |bucket: &str| rules.is_some_and(|r| !r.list_prefixes(bucket).iter().any(String::is_empty));

    for bucket in &buckets {
        if connector.bucket_selection() == BucketSelection::All
            && let Err(error) = source.locate_bucket(bucket).await
        {
            record(
                Step::HeadBucket,
                bucket,
                Status::Fail,
                format!("its region cannot be found, so it would be skipped: {error}"),
                error.code.clone(),
            );
            continue;
        }
        match retry_denied(deadline, || source.head_bucket(bucket), is_denied).await {
            Ok(_) => record(
                Step::HeadBucket,
                bucket,
                Status::Pass,
                match source.expected_owner() {
                    Some(owner) => format!("reachable and owned by account {owner}"),
                    None => "reachable".to_owned(),
                },
                None,
            ),
            // With a prefix-restricted s3:ListBucket, AWS refuses HeadBucket (it carries no
            // prefix); the listing steps below are the real test.
            Err(error) if error.kind == ErrorKind::AccessDenied && restricted(bucket) => record(
                Step::HeadBucket,
                bucket,
                Status::Warn,
                format!("{error}; expected when s3:ListBucket is limited to the rule prefixes"),
                error.code.clone(),
            ),
            Err(error) => {
                let code = error.code.clone();
                // A HEAD answer has no body, so a bare 403 does not say why (policy, bad
                // signature, unknown key): the listing below asks again and gets the code.
                let bare_denial = error.kind == ErrorKind::AccessDenied && code.is_none();
                record(
                    Step::HeadBucket,
                    bucket,
                    Status::Fail,
                    error.to_string(),
                    code,
                );
                if !bare_denial {
                    continue;
                }
            }
        }
        let prefixes = rules.map_or_else(|| vec![String::new()], |r| r.list_prefixes(bucket));
        let mut sample_key = None;
        for prefix in &prefixes {
            let target = format!("{bucket}/{prefix}");
            match retry_denied(deadline, || source.first_key(bucket, prefix), is_denied).await {
                Ok(key) => {
                    let message = match &key {
                        Some(key) => format!("listed, first key {key}"),
                        None => "listed, no objects under this prefix".to_owned(),
                    };
                    record(Step::ListObjects, &target, Status::Pass, message, None);
                    sample_key = sample_key.or(key);
                }
                Err(error) => {
                    let code = error.code.clone();
                    record(
                        Step::ListObjects,
                        &target,
                        Status::Fail,
                        error.to_string(),
                        code,
                    );
                }
            }
        }
        match sample_key {
            Some(key) => {
                let target = format!("{bucket}/{key}");
                match retry_denied(deadline, || source.read_first_byte(bucket, &key), is_denied)
                    .await
                {
                    Ok(()) => record(
                        Step::GetObject,
                        &target,
                        Status::Pass,
                        "readable".to_owned(),
                        None,
                    ),
                    Err(error) => {
                        let code = error.code.clone();
                        record(
                            Step::GetObject,
                            &target,
                            Status::Fail,
                            error.to_string(),
                            code,
                        );
                    }
                }
            }
            None => record(
                Step::GetObject,
                bucket,
                Status::Skip,
                "no object listed to read".to_owned(),
                None,
            ),
        }
    }
    results
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
