//! The errors of the OpenSearch sink, and which of them are worth another try.

use std::error::Error as _;
use std::path::PathBuf;

use crate::config::redact_urls;
use crate::retry::Transient;

/// Errors of the OpenSearch sink. Every message says what was being done and, where there is
/// one, what the cluster answered.
#[derive(Debug, thiserror::Error)]
pub enum OpensearchError {
    /// `url` could not be parsed into a URL.
    #[error("the OpenSearch url {url:?} is not a valid URL: {cause}")]
    Url {
        /// The configured URL, its user information hidden.
        url: String,
        /// The parser's complaint.
        cause: String,
    },

    /// The CA certificate file could not be read or holds no PEM certificate.
    #[error("cannot use the CA certificate {path}: {cause}")]
    CaCert {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        cause: String,
    },

    /// The HTTP client could not be built.
    #[error("cannot set up the OpenSearch client: {0}")]
    Client(String),

    /// The request did not get an answer: connection refused or reset, timeout, TLS failure.
    #[error("{action} failed: no answer from OpenSearch at {url}: {cause}")]
    Transport {
        /// What was being done ("writing a bulk request to index docs").
        action: String,
        /// The cluster's URL.
        url: String,
        /// The transport error with its causes.
        cause: String,
        /// Whether a retry may help (not for TLS or signing failures).
        transient: bool,
    },

    /// OpenSearch answered with an error status.
    #[error("{action} failed: OpenSearch answered {status}{}: {reason}", kind.as_deref().map(|k| format!(" {k}")).unwrap_or_default())]
    Status {
        /// What was being done.
        action: String,
        /// The HTTP status.
        status: u16,
        /// OpenSearch's error type (`index_not_found_exception`), when the body had one.
        kind: Option<String>,
        /// OpenSearch's reason, or the start of the body.
        reason: String,
    },

    /// Some items of a bulk request kept failing with 429 or 5xx.
    #[error(
        "{failed} item(s) of a bulk request still failed after {attempts} attempt(s); the last error: {last}"
    )]
    ItemsFailed {
        /// How many items are still failing.
        failed: usize,
        /// Attempts made so far.
        attempts: u32,
        /// The last item error, as "status type: reason".
        last: String,
    },

    /// Deletes that OpenSearch refused (other than for documents already gone).
    #[error("OpenSearch refused {refused} of {of} delete(s) in index {index}; the first: {first}")]
    DeletesRefused {
        /// The index.
        index: String,
        /// How many deletes were refused.
        refused: usize,
        /// How many were sent.
        of: usize,
        /// The first refused delete, with its reason.
        first: String,
    },

    /// OpenSearch answered something this module cannot read.
    #[error("{action} failed: OpenSearch's answer cannot be read: {detail}")]
    InvalidResponse {
        /// What was being done.
        action: String,
        /// What is wrong with the answer.
        detail: String,
    },

    /// The index exists with a mapping that contradicts the one this connector writes.
    #[error(
        "the OpenSearch index {index} already exists with a mapping that conflicts with the one \
         s3-connector writes, so nothing was written to it (the index was left unchanged): {}; \
         point index_name at a new index, or reindex into one created by s3-connector",
        conflicts.join("; ")
    )]
    MappingConflict {
        /// The index (or alias) name.
        index: String,
        /// One entry per conflicting field: "field `bucket` is text, expected keyword".
        conflicts: Vec<String>,
    },

    /// The passage index exists without k-NN, so it cannot take vectors.
    #[error(
        "the OpenSearch index {index} holds s3-connector's passages but was created without \
         `index.knn: true`, so it cannot store their vectors (a setting an existing index cannot \
         change): delete it (DELETE /{index}) and sync with --reembed; s3-connector creates it \
         again with k-NN on"
    )]
    KnnDisabled {
        /// The passage index.
        index: String,
    },

    /// The passage index maps vectors of another length than the ones written.
    #[error(
        "the OpenSearch index {index} maps passage vectors of {mapped} dimensions, but the \
         vectors to write have {given}: the embedding model changed; sync with --reembed (which \
         rebuilds the passage index for the new model)"
    )]
    DimensionMismatch {
        /// The passage index.
        index: String,
        /// The dimension of its `vector` field.
        mapped: usize,
        /// The length of the vectors given.
        given: usize,
    },

    /// A search by meaning that cannot run on this index or cluster.
    #[error(
        "a {mode} search of the OpenSearch index {index} cannot run: {reason}; search with \
         --mode keyword instead"
    )]
    VectorSearch {
        /// `semantic` or `hybrid`.
        mode: &'static str,
        /// The passage index.
        index: String,
        /// Why: no vectors yet, no query vector, or what the cluster answered to the request.
        reason: String,
    },
}

impl OpensearchError {
    /// The error for a transport failure of `action`, deciding whether it is worth a retry.
    pub(super) fn transport(action: &str, url: &str, cause: &::opensearch::Error) -> Self {
        let mut chain = vec![cause.to_string()];
        let mut source = cause.source();
        // A failed TLS handshake (an untrusted certificate, a name that does not match) fails
        // the same way on the next try.
        let mut tls_failure = false;
        while let Some(error) = source {
            tls_failure |= is_tls_failure(error);
            let text = error.to_string();
            if chain.last() != Some(&text) {
                chain.push(text);
            }
            source = error.source();
        }
        // Errors of the client library itself (signing, URL building) carry no source.
        let transient = cause.is_timeout() || (cause.source().is_some() && !cause.is_json());
        // The client's messages may quote the URL, user information and all.
        Self::Transport {
            action: action.to_owned(),
            url: redact_urls(url).into_owned(),
            cause: redact_urls(&chain.join(": ")).into_owned(),
            transient: transient && !tls_failure,
        }
    }

    /// The error for an error answer: `status` and OpenSearch's error type and reason parsed
    /// from `body` when it is OpenSearch's JSON error format.
    pub(super) fn status(action: &str, status: u16, body: &[u8]) -> Self {
        let (kind, reason) = error_type_and_reason(body);
        Self::Status {
            action: action.to_owned(),
            status,
            kind,
            reason,
        }
    }

    /// The HTTP status of an error answer.
    pub(super) fn status_code(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// OpenSearch's error type of an error answer.
    pub(super) fn kind(&self) -> Option<&str> {
        match self {
            Self::Status { kind, .. } => kind.as_deref(),
            _ => None,
        }
    }
}

/// Whether `error` is, or wraps, a rustls error. I/O errors hide what they wrap from `source()`
/// (it skips to the wrapped error's own source), so they are unwrapped by hand.
fn is_tls_failure(error: &(dyn std::error::Error + 'static)) -> bool {
    if error.is::<rustls::Error>() {
        return true;
    }
    match error.downcast_ref::<std::io::Error>() {
        Some(io) => io.get_ref().is_some_and(|inner| is_tls_failure(inner)),
        None => false,
    }
}

/// Whole requests answered with these statuses are sent again: throttling and a cluster that is
/// busy, restarting or behind an overloaded proxy.
pub(super) fn is_transient_status(status: u16) -> bool {
    matches!(status, 429 | 502..=504)
}

impl Transient for OpensearchError {
    fn is_transient(&self) -> bool {
        match self {
            Self::Transport { transient, .. } => *transient,
            Self::Status { status, .. } => is_transient_status(*status),
            Self::ItemsFailed { .. } => true,
            Self::Url { .. }
            | Self::CaCert { .. }
            | Self::Client(_)
            | Self::DeletesRefused { .. }
            | Self::InvalidResponse { .. }
            | Self::MappingConflict { .. }
            | Self::KnnDisabled { .. }
            | Self::DimensionMismatch { .. }
            | Self::VectorSearch { .. } => false,
        }
    }
}

/// OpenSearch's `{"error": {"type", "reason", "caused_by"}}` as (type, "reason: cause"), or the
/// start of a body in another format.
pub(super) fn error_type_and_reason(body: &[u8]) -> (Option<String>, String) {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    match parsed.as_ref().and_then(|value| value.get("error")) {
        Some(serde_json::Value::String(text)) => (None, text.clone()),
        Some(error) => describe_error(error),
        None => {
            let text = String::from_utf8_lossy(body);
            let mut short: String = text.chars().take(300).collect();
            if short.len() < text.len() {
                short.push_str("...");
            }
            if short.trim().is_empty() {
                short = "(empty body)".to_owned();
            }
            (None, short)
        }
    }
}

/// The type and reason of one error object (of a response or of a bulk item), following
/// `caused_by` so that the reason says what was really wrong.
pub(super) fn describe_error(error: &serde_json::Value) -> (Option<String>, String) {
    let text = |value: &serde_json::Value, field: &str| {
        value.get(field).and_then(|v| v.as_str()).map(str::to_owned)
    };
    let kind = text(error, "type");
    let mut reason = text(error, "reason").unwrap_or_else(|| error.to_string());
    let mut cause = error.get("caused_by");
    while let Some(inner) = cause {
        if let Some(inner_reason) = text(inner, "reason")
            && !reason.contains(&inner_reason)
        {
            reason.push_str(": ");
            reason.push_str(&inner_reason);
        }
        cause = inner.get("caused_by");
    }
    (kind, reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_become_type_and_reason() {
        let body = br#"{"error":{"root_cause":[],"type":"mapper_parsing_exception","reason":"failed to parse field [size_in_bytes]","caused_by":{"type":"illegal_argument_exception","reason":"For input string: \"x\""}},"status":400}"#;
        assert_eq!(
            error_type_and_reason(body),
            (
                Some("mapper_parsing_exception".to_owned()),
                "failed to parse field [size_in_bytes]: For input string: \"x\"".to_owned()
            )
        );
        let plain = br#"{"error":"Incorrect HTTP method for uri [/_x]","status":405}"#;
        assert_eq!(
            error_type_and_reason(plain),
            (None, "Incorrect HTTP method for uri [/_x]".to_owned())
        );
        assert_eq!(
            error_type_and_reason(b"<html>Bad Gateway</html>"),
            (None, "<html>Bad Gateway</html>".to_owned())
        );
        assert_eq!(
            error_type_and_reason(b""),
            (None, "(empty body)".to_owned())
        );
    }

    #[test]
    fn throttling_and_gateway_errors_are_transient_client_errors_are_not() {
        for (status, transient) in [
            (429, true),
            (502, true),
            (503, true),
            (504, true),
            (500, false),
            (400, false),
            (401, false),
            (403, false),
            (404, false),
        ] {
            let error = OpensearchError::status("testing", status, b"{}");
            assert_eq!(error.is_transient(), transient, "{status}");
        }
        let conflict = OpensearchError::MappingConflict {
            index: "docs".into(),
            conflicts: vec!["field `bucket` is text, expected keyword".into()],
        };
        assert!(!conflict.is_transient());
        let message = conflict.to_string();
        assert!(message.contains("index docs") && message.contains("`bucket` is text"));
    }
}
