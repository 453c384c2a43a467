//! S3 errors: what failed, on which bucket or key, why in words a person can act on, and the
//! raw AWS error code kept for support.

use std::fmt;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use crate::retry::Transient;

/// The S3 operations the worker performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// ListBuckets (`buckets: ["*"]`).
    ListBuckets,
    /// ListObjectsV2.
    ListObjects,
    /// GetObject.
    GetObject,
    /// HeadObject (the current state of a key an event names).
    HeadObject,
    /// GetBucketNotificationConfiguration (`verify` of event notifications).
    GetBucketNotification,
    /// HeadBucket.
    HeadBucket,
    /// GetBucketLocation.
    GetBucketLocation,
    /// GetObjectTagging (`index_tags`).
    GetObjectTagging,
}

impl Operation {
    /// The API name.
    pub fn name(self) -> &'static str {
        match self {
            Self::ListBuckets => "ListBuckets",
            Self::ListObjects => "ListObjectsV2",
            Self::GetObject => "GetObject",
            Self::HeadObject => "HeadObject",
            Self::GetBucketNotification => "GetBucketNotificationConfiguration",
            Self::HeadBucket => "HeadBucket",
            Self::GetBucketLocation => "GetBucketLocation",
            Self::GetObjectTagging => "GetObjectTagging",
        }
    }

    /// The IAM action a policy must allow for this operation.
    pub fn iam_action(self) -> &'static str {
        match self {
            Self::ListBuckets => "s3:ListAllMyBuckets",
            Self::ListObjects | Self::HeadBucket => "s3:ListBucket",
            // S3 authorises HeadObject with s3:GetObject.
            Self::GetObject | Self::HeadObject => "s3:GetObject",
            Self::GetBucketLocation => "s3:GetBucketLocation",
            Self::GetBucketNotification => "s3:GetBucketNotification",
            Self::GetObjectTagging => "s3:GetObjectTagging",
        }
    }
}

/// What kind of failure an S3 call met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The key does not exist (deleted since it was listed).
    NoSuchKey,
    /// The bucket does not exist.
    NoSuchBucket,
    /// 403: the identity's policy does not allow the call, or the bucket's owner is not the
    /// expected one.
    AccessDenied,
    /// 403 with ExpectedBucketOwner, while the same call without it is allowed: the bucket
    /// belongs to another account than `expected_bucket_owner`.
    OwnerMismatch,
    /// The access key is unknown, deactivated or expired, or the secret is wrong.
    InvalidCredentials,
    /// The bucket lives in another region than the client's.
    WrongRegion {
        /// The bucket's region, when S3 said it.
        actual: Option<String>,
    },
    /// 429, 503 SlowDown and other throttling.
    Throttled,
    /// A 5xx error of the server.
    ServerError,
    /// A connect or read timeout.
    Timeout,
    /// The connection failed or broke, or the response was cut short.
    Connection,
    /// Credentials could not be obtained (default chain empty, AssumeRole refused, STS down).
    CredentialsUnavailable,
    /// Anything else.
    Other,
}

/// The facts of a failed call, from which [`classify`] decides the kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Symptoms<'a> {
    /// HTTP status, if a response came.
    pub status: Option<u16>,
    /// AWS error code, if the response had one.
    pub code: Option<&'a str>,
    /// The call timed out.
    pub timed_out: bool,
    /// The connection failed or broke, or the response could not be read.
    pub connection_failed: bool,
    /// Obtaining credentials failed before anything was sent.
    pub credentials_failed: bool,
    /// The call addresses a bucket, not an object: a bare 404 means the bucket is missing.
    pub bucket_call: bool,
}

/// Decides the kind of a failure from its symptoms.
pub fn classify(symptoms: Symptoms<'_>) -> ErrorKind {
    if symptoms.credentials_failed {
        return ErrorKind::CredentialsUnavailable;
    }
    if symptoms.timed_out {
        return ErrorKind::Timeout;
    }
    match (symptoms.code, symptoms.status) {
        (Some("NoSuchKey"), _) => ErrorKind::NoSuchKey,
        (Some("NoSuchBucket"), _) => ErrorKind::NoSuchBucket,
        (
            Some(
                "InvalidAccessKeyId"
                | "SignatureDoesNotMatch"
                | "InvalidClientTokenId"
                | "ExpiredToken"
                | "InvalidToken"
                | "TokenRefreshRequired",
            ),
            _,
        ) => ErrorKind::InvalidCredentials,
        (
            Some(
                "PermanentRedirect"
                | "AuthorizationHeaderMalformed"
                | "IllegalLocationConstraintException",
            ),
            _,
        )
        | (_, Some(301)) => ErrorKind::WrongRegion { actual: None },
        (Some("AccessDenied" | "AllAccessDisabled"), _) => ErrorKind::AccessDenied,
        (
            Some(
                "SlowDown"
                | "Throttling"
                | "ThrottlingException"
                | "TooManyRequests"
                | "RequestLimitExceeded"
                | "ServiceUnavailable",
            ),
            _,
        )
        | (_, Some(429 | 503)) => ErrorKind::Throttled,
        (Some("InternalError" | "RequestTimeout"), _) => ErrorKind::ServerError,
        (_, Some(403)) => ErrorKind::AccessDenied,
        // HEAD answers carry no error body: the SDK reports a bare 404 as "NotFound".
        (None | Some("NotFound"), Some(404)) if symptoms.bucket_call => ErrorKind::NoSuchBucket,
        (None | Some("NotFound"), Some(404)) => ErrorKind::NoSuchKey,
        (_, Some(status)) if status >= 500 => ErrorKind::ServerError,
        _ if symptoms.connection_failed => ErrorKind::Connection,
        _ => ErrorKind::Other,
    }
}

/// A failed S3 call.
#[derive(Debug, Clone, thiserror::Error)]
pub struct SourceError {
    /// The operation.
    pub operation: Operation,
    /// The bucket, `bucket/key`, or empty for ListBuckets.
    pub target: String,
    /// What kind of failure.
    pub kind: ErrorKind,
    /// HTTP status, if a response came.
    pub status: Option<u16>,
    /// The raw AWS error code, for support.
    pub code: Option<String>,
    /// The server's or the client's own message.
    pub message: String,
    /// The expected bucket owner the call carried, if any.
    pub expected_owner: Option<String>,
    /// The endpoint the call went to (`http://127.0.0.1:9000`, or AWS S3 in a region), named
    /// in the advice when the connection failed or timed out.
    pub endpoint: Option<String>,
}

impl SourceError {
    /// Builds the error of a failed SDK call.
    pub fn from_sdk<E>(
        operation: Operation,
        target: impl Into<String>,
        expected_owner: Option<&str>,
        error: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let response = error.raw_response();
        let status = response.map(|r| r.status().as_u16());
        let code = error.code().map(str::to_owned);
        let (timed_out, connection_failed, credentials_failed) = match error {
            SdkError::TimeoutError(_) => (true, false, false),
            SdkError::DispatchFailure(failure) => (
                failure.is_timeout(),
                failure.is_io() || failure.is_other(),
                failure.is_user(),
            ),
            SdkError::ResponseError(_) => (false, true, false),
            _ => (false, false, false),
        };
        let credentials_failed = credentials_failed
            || (response.is_none() && code.is_none() && error_chain(error).contains("credentials"));
        let mut kind = classify(Symptoms {
            status,
            code: code.as_deref(),
            timed_out,
            connection_failed,
            credentials_failed,
            bucket_call: !matches!(operation, Operation::GetObject | Operation::HeadObject),
        });
        if let ErrorKind::WrongRegion { actual } = &mut kind {
            *actual = response
                .and_then(|r| r.headers().get("x-amz-bucket-region"))
                .map(str::to_owned);
        }
        let message = error
            .message()
            .map(str::to_owned)
            .unwrap_or_else(|| informative_chain(error, code.as_deref()));
        Self {
            operation,
            target: target.into(),
            kind,
            status,
            code,
            message,
            expected_owner: expected_owner.map(str::to_owned),
            endpoint: None,
        }
    }

    /// True when the object or bucket is gone: not worth retrying, and not a sync failure for a
    /// single object.
    pub fn is_not_found(&self) -> bool {
        matches!(self.kind, ErrorKind::NoSuchKey)
    }

    fn bucket(&self) -> &str {
        self.target.split('/').next().unwrap_or(&self.target)
    }

    fn endpoint_name(&self) -> &str {
        self.endpoint.as_deref().unwrap_or("the S3 endpoint")
    }

    /// What a person should do about it.
    pub fn advice(&self) -> String {
        let bucket = self.bucket();
        match &self.kind {
            ErrorKind::NoSuchKey => "the object was deleted after it was listed".to_owned(),
            ErrorKind::NoSuchBucket => format!("bucket {bucket} does not exist; check its name and the endpoint"),
            ErrorKind::AccessDenied => match &self.expected_owner {
                Some(owner) => format!(
                    "access denied: either bucket {bucket} is not owned by account {owner} (expected_bucket_owner), or the identity's policy does not allow {} on it",
                    self.operation.iam_action()
                ),
                None => format!(
                    "access denied: the identity's policy does not allow {} on bucket {bucket}",
                    self.operation.iam_action()
                ),
            },
            ErrorKind::OwnerMismatch => format!(
                "bucket {bucket} is not owned by account {} (expected_bucket_owner); S3 refused the call",
                self.expected_owner.as_deref().unwrap_or("?")
            ),
            ErrorKind::InvalidCredentials => "the credentials were refused: the access key is unknown, deactivated or expired, or the secret key is wrong".to_owned(),
            ErrorKind::WrongRegion { actual: Some(region) } => format!("bucket {bucket} is in region {region}; set region: {region} for this connector"),
            ErrorKind::WrongRegion { actual: None } => format!("bucket {bucket} is in another region than the connector's; set the connector's region to the bucket's"),
            ErrorKind::Throttled => "S3 is throttling requests; lower requests_per_second or concurrency".to_owned(),
            ErrorKind::ServerError => "the server failed; this is usually temporary".to_owned(),
            ErrorKind::Timeout => format!(
                "the request to {} timed out; check the network, or raise read_timeout / connect_timeout",
                self.endpoint_name()
            ),
            ErrorKind::Connection => format!(
                "the connection to {} failed or broke; check the endpoint and the network",
                self.endpoint_name()
            ),
            ErrorKind::CredentialsUnavailable => "no credentials could be obtained: set keys, a role, or credentials for the default AWS chain".to_owned(),
            ErrorKind::Other => "unexpected error".to_owned(),
        }
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.operation.name())?;
        if !self.target.is_empty() {
            write!(f, " of {}", self.target)?;
        }
        write!(f, " failed: {}", self.advice())?;
        let mut details = Vec::new();
        if let Some(status) = self.status {
            details.push(format!("HTTP {status}"));
        }
        if let Some(code) = &self.code {
            details.push(code.clone());
        }
        if !self.message.is_empty() {
            details.push(self.message.clone());
        }
        if !details.is_empty() {
            write!(f, " ({})", details.join(": "))?;
        }
        Ok(())
    }
}

impl Transient for SourceError {
    fn is_transient(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Throttled
                | ErrorKind::ServerError
                | ErrorKind::Timeout
                | ErrorKind::Connection
        )
    }
}

/// The error and its sources, joined: the SDK's top-level messages ("dispatch failure") say
/// little on their own.
/// The error's chain without what says nothing new: the SDK's generic "service error" and
/// repeats of the code (a HEAD answer has no body, so its chain is "service error: NotFound:
/// NotFound"), so that the code appears once.
fn informative_chain(error: &dyn std::error::Error, code: Option<&str>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&dyn std::error::Error> = Some(error);
    while let Some(current) = next {
        let text = current.to_string();
        let says_nothing = text == "service error" || Some(text.as_str()) == code;
        if !says_nothing && !parts.contains(&text) {
            parts.push(text);
        }
        next = current.source();
    }
    parts.join(": ")
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        parts.push(cause.to_string());
        source = cause.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_table() {
        let s = |status: Option<u16>, code: Option<&'static str>| Symptoms {
            status,
            code,
            ..Symptoms::default()
        };
        let cases: Vec<(Symptoms<'static>, ErrorKind, bool)> = vec![
            (s(Some(404), Some("NoSuchKey")), ErrorKind::NoSuchKey, false),
            (s(Some(404), None), ErrorKind::NoSuchKey, false),
            (s(Some(404), Some("NotFound")), ErrorKind::NoSuchKey, false),
            (
                Symptoms {
                    bucket_call: true,
                    ..s(Some(404), Some("NotFound"))
                },
                ErrorKind::NoSuchBucket,
                false,
            ),
            (
                s(Some(404), Some("NoSuchBucket")),
                ErrorKind::NoSuchBucket,
                false,
            ),
            (
                s(Some(403), Some("AccessDenied")),
                ErrorKind::AccessDenied,
                false,
            ),
            (s(Some(403), None), ErrorKind::AccessDenied, false),
            (
                s(Some(403), Some("InvalidAccessKeyId")),
                ErrorKind::InvalidCredentials,
                false,
            ),
            (
                s(Some(403), Some("SignatureDoesNotMatch")),
                ErrorKind::InvalidCredentials,
                false,
            ),
            (
                s(Some(400), Some("ExpiredToken")),
                ErrorKind::InvalidCredentials,
                false,
            ),
            (
                s(Some(301), Some("PermanentRedirect")),
                ErrorKind::WrongRegion { actual: None },
                false,
            ),
            (
                s(Some(400), Some("AuthorizationHeaderMalformed")),
                ErrorKind::WrongRegion { actual: None },
                false,
            ),
            (
                s(Some(301), None),
                ErrorKind::WrongRegion { actual: None },
                false,
            ),
            (s(Some(503), Some("SlowDown")), ErrorKind::Throttled, true),
            (s(Some(429), None), ErrorKind::Throttled, true),
            (s(Some(503), None), ErrorKind::Throttled, true),
            (
                s(Some(500), Some("InternalError")),
                ErrorKind::ServerError,
                true,
            ),
            (
                s(Some(400), Some("RequestTimeout")),
                ErrorKind::ServerError,
                true,
            ),
            (s(Some(502), None), ErrorKind::ServerError, true),
            (
                s(Some(400), Some("InvalidArgument")),
                ErrorKind::Other,
                false,
            ),
            (
                Symptoms {
                    timed_out: true,
                    ..Symptoms::default()
                },
                ErrorKind::Timeout,
                true,
            ),
            (
                Symptoms {
                    connection_failed: true,
                    ..Symptoms::default()
                },
                ErrorKind::Connection,
                true,
            ),
            (
                Symptoms {
                    credentials_failed: true,
                    ..Symptoms::default()
                },
                ErrorKind::CredentialsUnavailable,
                false,
            ),
        ];
        for (symptoms, expected, transient) in cases {
            let kind = classify(symptoms);
            assert_eq!(kind, expected, "{symptoms:?}");
            let error = SourceError {
                operation: Operation::GetObject,
                target: "b/k".into(),
                kind,
                status: symptoms.status,
                code: symptoms.code.map(str::to_owned),
                message: String::new(),
                expected_owner: None,
                endpoint: None,
            };
            assert_eq!(error.is_transient(), transient, "{symptoms:?}");
        }
    }

    #[test]
    fn messages_are_actionable_and_keep_the_code() {
        let error = SourceError {
            operation: Operation::ListObjects,
            target: "team-docs".into(),
            kind: ErrorKind::AccessDenied,
            status: Some(403),
            code: Some("AccessDenied".into()),
            message: "Access Denied".into(),
            expected_owner: Some("123456789012".into()),
            endpoint: None,
        };
        assert_eq!(
            error.to_string(),
            "ListObjectsV2 of team-docs failed: access denied: either bucket team-docs is not owned by account 123456789012 (expected_bucket_owner), or the identity's policy does not allow s3:ListBucket on it (HTTP 403: AccessDenied: Access Denied)"
        );
        let error = SourceError {
            kind: ErrorKind::WrongRegion {
                actual: Some("eu-west-1".into()),
            },
            status: Some(301),
            code: Some("PermanentRedirect".into()),
            expected_owner: None,
            ..error
        };
        assert!(
            error
                .to_string()
                .contains("bucket team-docs is in region eu-west-1; set region: eu-west-1")
        );
    }

    /// An error with a text and an optional cause, to build chains.
    #[derive(Debug)]
    struct Link(&'static str, Option<Box<Link>>);

    impl fmt::Display for Link {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Link {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    fn chain(texts: &[&'static str]) -> Link {
        texts
            .iter()
            .rev()
            .fold(None, |cause, text| Some(Link(text, cause.map(Box::new))))
            .unwrap()
    }

    #[test]
    fn the_chain_drops_generic_wrappers_and_repeats_of_the_code() {
        let cases: [(&[&'static str], Option<&str>, &str); 4] = [
            (
                &["service error", "NotFound", "NotFound"],
                Some("NotFound"),
                "",
            ),
            (
                &["dispatch failure", "io error", "connection refused"],
                None,
                "dispatch failure: io error: connection refused",
            ),
            (
                &[
                    "service error",
                    "SlowDown",
                    "Please reduce your request rate",
                ],
                Some("SlowDown"),
                "Please reduce your request rate",
            ),
            (&["timeout", "timeout"], None, "timeout"),
        ];
        for (texts, code, expected) in cases {
            assert_eq!(
                informative_chain(&chain(texts), code),
                expected,
                "{texts:?}"
            );
        }
        let error = SourceError {
            operation: Operation::HeadBucket,
            target: "gone".into(),
            kind: ErrorKind::NoSuchBucket,
            status: Some(404),
            code: Some("NotFound".into()),
            message: informative_chain(
                &chain(&["service error", "NotFound", "NotFound"]),
                Some("NotFound"),
            ),
            expected_owner: None,
            endpoint: None,
        };
        let text = error.to_string();
        assert!(text.ends_with("(HTTP 404: NotFound)"), "{text}");
        let broken = SourceError {
            kind: ErrorKind::Connection,
            endpoint: Some("http://127.0.0.1:9".into()),
            ..error
        };
        assert!(
            broken
                .to_string()
                .contains("the connection to http://127.0.0.1:9 failed or broke"),
            "{broken}"
        );
        assert_eq!(text.matches("NotFound").count(), 1, "{text}");
    }
}
