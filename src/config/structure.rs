//! Structural problems of a config file (unknown fields, wrong types), all at once, with a
//! "did you mean" for a misspelt field.
//!
//! serde stops at the first problem. To report every one, the offending field is taken out of
//! the YAML value and the file deserialized again, until it fits or a problem cannot be taken
//! out (a missing required field). The field names offered come from serde's own message, so
//! they are always the struct's real fields.

use serde::de::DeserializeOwned;
use serde_path_to_error::{Path, Segment};
use yaml_serde::Value;

use super::{REDACTED, SECRET_FIELDS};

/// Problems reported before giving up: a file with more has a bigger problem than typos.
const MAX_PROBLEMS: usize = 50;

/// A field name within this edit distance of a valid one is offered as "did you mean".
const MAX_SUGGESTION_DISTANCE: usize = 3;

/// Deserializes `value`, or returns every structural problem found, each as "path: what".
pub(super) fn deserialize_reporting_all<T: DeserializeOwned>(
    mut value: Value,
) -> Result<T, Vec<String>> {
    let mut problems = Vec::new();
    let mut removed: Vec<String> = Vec::new();
    while problems.len() < MAX_PROBLEMS {
        let error = match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(parsed) if problems.is_empty() => return Ok(parsed),
            Ok(_) => return Err(problems),
            Err(error) => error,
        };
        let message = error.inner().to_string();
        // A field taken out because its value had the wrong type may be required: its absence
        // is the same problem again.
        if removed
            .iter()
            .any(|field| message == format!("missing field `{field}`"))
        {
            return Err(problems);
        }
        problems.push(describe(error.path(), &message));
        match remove_at(&mut value, error.path()) {
            Some(field) => removed.push(field),
            None => return Err(problems),
        }
    }
    Err(problems)
}

/// "path: message", with the offered field for an unknown one and secrets masked.
fn describe(path: &Path, message: &str) -> String {
    let field = path.to_string();
    if SECRET_FIELDS.iter().any(|secret| field.ends_with(secret)) {
        return format!("{field}: must be a string ({REDACTED})");
    }
    match unknown_field(message) {
        Some((unknown, expected)) => match suggestion(unknown, &expected) {
            Some(known) => format!("{field}: unknown field `{unknown}`; did you mean `{known}`?"),
            None => format!("{field}: {message}"),
        },
        None => format!("{field}: {message}"),
    }
}

/// The unknown field and the expected ones, from serde's "unknown field `x`, expected one of
/// `a`, `b`" (or "expected `a` or `b`").
fn unknown_field(message: &str) -> Option<(&str, Vec<&str>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (unknown, rest) = rest.split_once('`')?;
    let expected = rest.split('`').skip(1).step_by(2).collect();
    Some((unknown, expected))
}

/// The expected field closest to `unknown`, if it is close enough to be a typo.
fn suggestion<'a>(unknown: &str, expected: &[&'a str]) -> Option<&'a str> {
    expected
        .iter()
        .map(|known| (strsim::levenshtein(unknown, known), *known))
        .filter(|(distance, _)| *distance <= MAX_SUGGESTION_DISTANCE)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, known)| known)
}

/// Takes the field at `path` out of `value`; returns its name, or `None` when the path does not
/// end in a field of a mapping.
fn remove_at(value: &mut Value, path: &Path) -> Option<String> {
    let segments: Vec<&Segment> = path.iter().collect();
    let (last, parents) = segments.split_last()?;
    let Segment::Map { key } = last else {
        return None;
    };
    let mut parent = value;
    for segment in parents {
        parent = match segment {
            Segment::Seq { index } => parent.get_mut(*index)?,
            Segment::Map { key } => parent.get_mut(key.as_str())?,
            Segment::Enum { .. } | Segment::Unknown => return None,
        };
    }
    parent.as_mapping_mut()?.shift_remove(key.as_str())?;
    Some(key.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_only_for_near_misses() {
        let fields = [
            "aws_access_key_id",
            "aws_secret_access_key",
            "buckets",
            "page_size",
        ];
        let table = [
            ("aws_acess_key_id", Some("aws_access_key_id")),
            ("bukets", Some("buckets")),
            ("pagesize", Some("page_size")),
            ("colour", None),
            ("", None),
        ];
        for (unknown, expected) in table {
            assert_eq!(suggestion(unknown, &fields), expected, "{unknown}");
        }
    }

    #[test]
    fn serde_messages_are_read_for_the_unknown_and_the_expected_fields() {
        assert_eq!(
            unknown_field("unknown field `bukets`, expected one of `id`, `buckets`"),
            Some(("bukets", vec!["id", "buckets"]))
        );
        assert_eq!(
            unknown_field("unknown field `x`, expected `a` or `b`"),
            Some(("x", vec!["a", "b"]))
        );
        assert_eq!(
            unknown_field("unknown field `x`, there are no fields"),
            Some(("x", vec![]))
        );
        assert_eq!(unknown_field("invalid type: string"), None);
    }
}
