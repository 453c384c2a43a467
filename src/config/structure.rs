//! Structural problems of a config file (unknown fields, unknown kinds, wrong types), all at
//! once, with a "did you mean" for a misspelt name.
//!
//! serde stops at the first problem. To report every one, the offending value is taken out of
//! the YAML value (or, for a misspelt kind, replaced by the one meant) and the file deserialized
//! again, until it fits. A required field taken out gets a placeholder of the right type, or
//! its whole block goes. The repaired file is returned too, so that the value rules can be
//! checked in the same run: one run names every problem, not those of one stage. The names
//! offered come from serde's own message, so they are always the struct's real fields.

use serde::de::DeserializeOwned;
use serde_path_to_error::{Path, Segment};
use yaml_serde::{Mapping, Value};

use super::{Problem, REDACTED, SECRET_FIELDS};
use crate::did_you_mean::closest;

/// Problems reported before giving up: a file with more has a bigger problem than typos.
const MAX_PROBLEMS: usize = 50;

/// What reading a file's structure found.
pub(super) struct Structure<T> {
    /// The file with every structural problem taken out; `None` when one could not be.
    pub parsed: Option<T>,
    /// Every structural problem, in the order found.
    pub problems: Vec<Problem>,
    /// Paths whose values were taken out or replaced: a value rule broken there is a
    /// consequence of the repair, not a problem of the file.
    pub repaired: Vec<String>,
}

impl<T> Structure<T> {
    /// True when `path` is at or inside a repaired value.
    pub fn is_repaired(&self, path: &str) -> bool {
        self.repaired.iter().any(|repaired| {
            path.strip_prefix(repaired.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        })
    }
}

/// Deserializes `value`, reporting every structural problem with its path.
pub(super) fn deserialize_reporting_all<T: DeserializeOwned>(mut value: Value) -> Structure<T> {
    let mut found = Structure {
        parsed: None,
        problems: Vec::new(),
        repaired: Vec::new(),
    };
    // Each round reports a problem or repairs a missing field; a missing field is repaired at
    // most once per problem, so twice the bound ends every loop.
    for _ in 0..2 * MAX_PROBLEMS {
        let error = match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(parsed) => {
                found.parsed = Some(parsed);
                return found;
            }
            Err(error) => error,
        };
        let message = error.inner().to_string();
        let path = error.path();
        // A field taken out because its value was wrong may be required: its absence is the
        // same problem again, so it gets a placeholder, or else its whole block goes.
        if let Some(field) = missing_field(&message)
            && found.repaired.contains(&child_path(path, field))
        {
            if put_placeholder::<T>(&mut value, path, field) {
                continue;
            }
            if remove_at(&mut value, path).is_some() {
                found.repaired.push(path.to_string());
                continue;
            }
            return found;
        }
        if found.problems.len() == MAX_PROBLEMS {
            return found;
        }
        let (problem, meant) = describe(path, &message);
        found.problems.push(problem);
        found.repaired.push(path.to_string());
        let repaired = match meant {
            Some(meant) => replace_at(&mut value, path, Value::String(meant)),
            None => remove_at(&mut value, path).is_some(),
        };
        if !repaired {
            return found;
        }
    }
    found
}

/// `path.field`, as serde_path_to_error writes it.
fn child_path(path: &Path, field: &str) -> String {
    match path.to_string().as_str() {
        "." => field.to_owned(),
        parent => format!("{parent}.{field}"),
    }
}

/// The field of serde's "missing field `x`".
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.strip_suffix('`')
}

/// Values that stand in for a required field whose own value was wrong.
fn placeholders() -> [Value; 5] {
    [
        Value::Sequence(Vec::new()),
        Value::String(String::new()),
        Value::Number(0.into()),
        Value::Bool(false),
        Value::Mapping(Mapping::new()),
    ]
}

/// Puts the first placeholder that gets deserialization past `path.field` there; false when
/// none does (the field is left out).
fn put_placeholder<T: DeserializeOwned>(value: &mut Value, path: &Path, field: &str) -> bool {
    let at = child_path(path, field);
    for placeholder in placeholders() {
        let Some(parent) = value_at(value, path).and_then(Value::as_mapping_mut) else {
            return false;
        };
        parent.insert(Value::String(field.to_owned()), placeholder);
        match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Err(error) if error.path().to_string() == at => {}
            _ => return true,
        }
    }
    if let Some(parent) = value_at(value, path).and_then(Value::as_mapping_mut) {
        parent.shift_remove(field);
    }
    false
}

/// The problem at `path`, with the offered name for an unknown field or kind and secrets
/// masked; and, for a misspelt kind, the kind meant (to read the rest of its block as).
fn describe(path: &Path, message: &str) -> (Problem, Option<String>) {
    let field = path.to_string();
    let problem = |rule: String| Problem {
        path: field.clone(),
        value: None,
        rule,
    };
    if SECRET_FIELDS.iter().any(|secret| field.ends_with(secret)) {
        return (problem(format!("must be a string ({REDACTED})")), None);
    }
    match unknown_name(message) {
        Some((what, unknown, expected)) => match closest(unknown, &expected) {
            Some(known) => {
                let meant = (what == "variant").then(|| known.to_owned());
                (
                    problem(format!(
                        "unknown {what} `{unknown}`; did you mean `{known}`?"
                    )),
                    meant,
                )
            }
            None => (problem(message.to_owned()), None),
        },
        None => (problem(plain_types(message, &field)), None),
    }
}

/// serde's Rust type names in a message, as the rule a user reads: `expected u32` becomes
/// "expected a whole number from 1 to 1000" (the field's range when it has one).
fn plain_types(message: &str, field: &str) -> String {
    let Some((head, expected)) = message.rsplit_once(", expected ") else {
        return message.to_owned();
    };
    let bits = match expected {
        "u8" => 8,
        "u16" => 16,
        "u32" => 32,
        "u64" | "usize" => 64,
        "f32" | "f64" => return format!("{head}, expected a number"),
        "a sequence" => return format!("{head}, expected a list"),
        other if other.starts_with("struct ") || other.starts_with("internally tagged enum") => {
            return format!("{head}, expected a block of fields (`name: value` lines)");
        }
        _ => return message.to_owned(),
    };
    let (min, max) = super::whole_number_range(field).unwrap_or((0, u64::MAX >> (64 - bits)));
    format!("{head}, expected a whole number from {min} to {max}")
}

/// What is unknown (`field` or `variant`), the unknown name and the expected ones, from serde's
/// "unknown field `x`, expected one of `a`, `b`" (or "expected `a` or `b`").
fn unknown_name(message: &str) -> Option<(&'static str, &str, Vec<&str>)> {
    let (what, rest) = if let Some(rest) = message.strip_prefix("unknown field `") {
        ("field", rest)
    } else {
        ("variant", message.strip_prefix("unknown variant `")?)
    };
    let (unknown, rest) = rest.split_once('`')?;
    let expected = rest.split('`').skip(1).step_by(2).collect();
    Some((what, unknown, expected))
}

/// The value at `path`, if every segment leads somewhere.
fn value_at<'v>(value: &'v mut Value, path: &Path) -> Option<&'v mut Value> {
    let mut at = value;
    for segment in path.iter() {
        at = match segment {
            Segment::Seq { index } => at.get_mut(*index)?,
            Segment::Map { key } => at.get_mut(key.as_str())?,
            Segment::Enum { .. } | Segment::Unknown => return None,
        };
    }
    Some(at)
}

/// The mapping holding the field `path` ends in, and that field's name.
fn parent_and_key<'v>(value: &'v mut Value, path: &Path) -> Option<(&'v mut Mapping, String)> {
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
    Some((parent.as_mapping_mut()?, key.clone()))
}

/// Takes the field at `path` out of `value`; returns its name, or `None` when the path does not
/// end in a field of a mapping.
fn remove_at(value: &mut Value, path: &Path) -> Option<String> {
    let (parent, key) = parent_and_key(value, path)?;
    parent.shift_remove(key.as_str())?;
    Some(key)
}

/// Replaces the field at `path` by `new`; false when the path does not end in a field.
fn replace_at(value: &mut Value, path: &Path, new: Value) -> bool {
    match parent_and_key(value, path) {
        Some((parent, key)) => parent.insert(Value::String(key), new).is_some(),
        None => false,
    }
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
            assert_eq!(closest(unknown, &fields), expected, "{unknown}");
        }
    }

    #[test]
    fn serde_messages_are_read_for_the_unknown_and_the_expected_names() {
        assert_eq!(
            unknown_name("unknown field `bukets`, expected one of `id`, `buckets`"),
            Some(("field", "bukets", vec!["id", "buckets"]))
        );
        assert_eq!(
            unknown_name("unknown field `x`, expected `a` or `b`"),
            Some(("field", "x", vec!["a", "b"]))
        );
        assert_eq!(
            unknown_name("unknown field `x`, there are no fields"),
            Some(("field", "x", vec![]))
        );
        assert_eq!(
            unknown_name("unknown variant `embeded`, expected `embedded` or `opensearch`"),
            Some(("variant", "embeded", vec!["embedded", "opensearch"]))
        );
        assert_eq!(unknown_name("invalid type: string"), None);
    }

    /// (message, field, what the user reads)
    #[test]
    fn rust_type_names_become_plain_words() {
        let table = [
            (
                "invalid type: string \"many\", expected u32",
                "connectors[0].page_size",
                "invalid type: string \"many\", expected a whole number from 1 to 1000",
            ),
            (
                "invalid value: integer `-1`, expected usize",
                "defaults.concurrency",
                "invalid value: integer `-1`, expected a whole number from 1 to 256",
            ),
            (
                "invalid type: string \"x\", expected u32",
                "unknown.field",
                "invalid type: string \"x\", expected a whole number from 0 to 4294967295",
            ),
            (
                "invalid type: string \"half\", expected f64",
                "connectors[0].max_delete_fraction",
                "invalid type: string \"half\", expected a number",
            ),
            (
                "invalid type: string \"x\", expected a sequence",
                "connectors[0].buckets",
                "invalid type: string \"x\", expected a list",
            ),
            (
                "invalid type: string \"x\", expected a boolean",
                "connectors[0].sync_on_start",
                "invalid type: string \"x\", expected a boolean",
            ),
        ];
        for (message, field, plain) in table {
            assert_eq!(plain_types(message, field), plain, "{message}");
        }
    }
}
