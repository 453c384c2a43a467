//! Sync rules: which buckets, prefixes and keys a connector indexes.
//!
//! The format is Elastic's advanced-rules DSL for its S3 connector, unchanged, so existing rule
//! files keep working: `[{"bucket": "b", "prefix": "docs/", "extension": [".txt", ".pdf"]}]`.
//! Two additions: `"glob": ["**/*.md"]` (keys must match one) and `"exclude": ["**/drafts/**"]`
//! (keys matching one are dropped), both globset patterns over the whole key, where `*` does not
//! cross `/` and `**` does.
//!
//! An object is synced when any rule of its bucket matches it; a connector without rules has
//! the explicit [`SyncRules::all`] set, which syncs every object of every selected bucket. Rules
//! are pure data and pure functions of keys: nothing here talks to S3.

use std::collections::BTreeSet;

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use serde_json::Value;

/// Keys a rule object may have.
const RULE_FIELDS: [&str; 5] = ["bucket", "prefix", "extension", "glob", "exclude"];

/// A problem in a rule list, pointing at the rule and field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", self.path())]
pub struct RuleError {
    /// Index of the rule in the list; `None` for the list itself.
    pub index: Option<usize>,
    /// The offending field (`bucket`, `extension[1]`, ...); empty for the rule or list itself.
    pub field: String,
    /// What is wrong, including the offending value.
    pub message: String,
}

impl RuleError {
    /// Where the problem is, relative to the rule list: `[2].extension[0]`.
    pub fn path(&self) -> String {
        let mut path = String::new();
        if let Some(index) = self.index {
            path.push_str(&format!("[{index}]"));
        }
        if !self.field.is_empty() {
            path.push('.');
            path.push_str(&self.field);
        }
        path
    }
}

/// One rule: all of its conditions must hold for a key to match.
#[derive(Debug, Clone)]
struct Rule {
    bucket: String,
    prefix: String,
    /// Lowercased, each with its leading dot; empty means any extension.
    extensions: Vec<String>,
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
}

impl Rule {
    fn matches(&self, key: &str) -> bool {
        key.starts_with(&self.prefix)
            && (self.extensions.is_empty()
                || self.extensions.iter().any(|ext| extension_of(key) == *ext))
            && self.include.as_ref().is_none_or(|set| set.is_match(key))
            && self.exclude.as_ref().is_none_or(|set| !set.is_match(key))
    }
}

/// A validated rule set: either [`SyncRules::all`] (no rules: every object of every selected
/// bucket) or a non-empty list of rules.
#[derive(Debug, Clone, Default)]
pub struct SyncRules {
    /// Empty for the "all" set; a written rule list is never empty.
    rules: Vec<Rule>,
}

impl SyncRules {
    /// The rule set that syncs every object of every selected bucket.
    pub fn all() -> Self {
        Self::default()
    }

    /// True for [`SyncRules::all`].
    pub fn is_all(&self) -> bool {
        self.rules.is_empty()
    }

    /// Parses a rule file's text (a JSON array of rule objects).
    pub fn from_json_str(text: &str) -> Result<Self, Vec<RuleError>> {
        let value: Value = serde_json::from_str(text).map_err(|error| {
            vec![RuleError {
                index: None,
                field: String::new(),
                message: format!("is not valid JSON: {error}"),
            }]
        })?;
        Self::from_value(&value)
    }

    /// Validates a parsed rule list; an empty list is [`SyncRules::all`]. Every problem is
    /// reported, not just the first.
    pub fn from_value(value: &Value) -> Result<Self, Vec<RuleError>> {
        let Some(items) = value.as_array() else {
            return Err(vec![RuleError {
                index: None,
                field: String::new(),
                message: format!("must be a list of rules, found {}", type_name(value)),
            }]);
        };
        let mut errors = Vec::new();
        let mut rules = Vec::new();
        for (index, item) in items.iter().enumerate() {
            if let Some(rule) = parse_rule(index, item, &mut errors) {
                rules.push(rule);
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self { rules })
    }

    /// The buckets the rules name, sorted and without repeats; none for [`SyncRules::all`].
    pub fn buckets(&self) -> BTreeSet<&str> {
        self.rules.iter().map(|rule| rule.bucket.as_str()).collect()
    }

    /// True when the rules sync some objects of `bucket` (always, for [`SyncRules::all`]).
    pub fn covers_bucket(&self, bucket: &str) -> bool {
        self.is_all() || self.rules.iter().any(|rule| rule.bucket == bucket)
    }

    /// The prefixes to list in `bucket`: the fewest that cover every rule of that bucket (a
    /// prefix inside another is dropped, so no object is listed twice). `[""]` lists everything;
    /// an empty result means the rules do not cover this bucket. They come in byte order and
    /// none starts another, so their listings, one after another, are one listing in S3's key
    /// order: the sync's merge with the index relies on it.
    pub fn list_prefixes(&self, bucket: &str) -> Vec<String> {
        if self.is_all() {
            return vec![String::new()];
        }
        let prefixes: BTreeSet<&str> = self
            .rules
            .iter()
            .filter(|rule| rule.bucket == bucket)
            .map(|rule| rule.prefix.as_str())
            .collect();
        let mut minimal: Vec<String> = Vec::new();
        // Sorted order puts every prefix after the shorter prefixes that cover it.
        for prefix in prefixes {
            if !minimal.iter().any(|kept| prefix.starts_with(kept.as_str())) {
                minimal.push(prefix.to_owned());
            }
        }
        minimal
    }

    /// True when some rule of `bucket` matches `key` (always, for [`SyncRules::all`]).
    pub fn matches(&self, bucket: &str, key: &str) -> bool {
        self.is_all()
            || self
                .rules
                .iter()
                .any(|rule| rule.bucket == bucket && rule.matches(key))
    }
}

/// The lowercased extension of a key's last path segment, with its dot; empty when none.
pub fn extension_of(key: &str) -> String {
    let name = key.rsplit('/').next().unwrap_or(key);
    match name.rfind('.') {
        Some(dot) if dot > 0 => name[dot..].to_lowercase(),
        _ => String::new(),
    }
}

fn parse_rule(index: usize, item: &Value, errors: &mut Vec<RuleError>) -> Option<Rule> {
    let mut error = |field: &str, message: String| {
        errors.push(RuleError {
            index: Some(index),
            field: field.to_owned(),
            message,
        })
    };
    let Some(object) = item.as_object() else {
        error(
            "",
            format!(
                "must be an object with \"bucket\" and optional \"prefix\", \"extension\", \"glob\", \"exclude\"; found {}",
                type_name(item)
            ),
        );
        return None;
    };
    let mut ok = true;
    for key in object.keys() {
        if !RULE_FIELDS.contains(&key.as_str()) {
            let message = match crate::did_you_mean::closest(key, &RULE_FIELDS) {
                Some(meant) => format!("unknown field {key:?}; did you mean {meant:?}?"),
                None => format!(
                    "unknown field {key:?}; expected one of {}",
                    RULE_FIELDS.join(", ")
                ),
            };
            error(key, message);
            ok = false;
        }
    }
    let bucket = string(object.get("bucket"), "bucket", true, &mut error);
    let prefix = string(object.get("prefix"), "prefix", false, &mut error);
    let extensions = string_list(object.get("extension"), "extension", &mut error)
        .map(|list| {
            list.into_iter()
                .map(|ext| {
                    let ext = ext.to_lowercase();
                    if ext.starts_with('.') {
                        ext
                    } else {
                        format!(".{ext}")
                    }
                })
                .collect()
        })
        .unwrap_or_else(|| {
            ok = false;
            Vec::new()
        });
    let include = glob_set(object.get("glob"), "glob", &mut error);
    let exclude = glob_set(object.get("exclude"), "exclude", &mut error);
    match (ok, bucket, prefix, include, exclude) {
        (true, Some(bucket), Some(prefix), Some(include), Some(exclude)) => Some(Rule {
            bucket,
            prefix,
            extensions,
            include,
            exclude,
        }),
        _ => None,
    }
}

/// A string: empty when absent and not `required`, `None` after reporting an error (a required
/// one must not be blank).
fn string(
    value: Option<&Value>,
    field: &str,
    required: bool,
    error: &mut impl FnMut(&str, String),
) -> Option<String> {
    match value {
        Some(Value::String(text)) if required && text.trim().is_empty() => {
            error(field, "must not be empty".to_owned());
            None
        }
        Some(Value::String(text)) => Some(text.clone()),
        None | Some(Value::Null) if !required => Some(String::new()),
        None => {
            error(field, "is required".to_owned());
            None
        }
        Some(other) => {
            error(
                field,
                format!("must be a string, found {}", type_name(other)),
            );
            None
        }
    }
}

/// A list of non-empty strings; `Some(vec![])` when absent, `None` after reporting an error.
fn string_list(
    value: Option<&Value>,
    field: &str,
    error: &mut impl FnMut(&str, String),
) -> Option<Vec<String>> {
    let items = match value {
        None | Some(Value::Null) => return Some(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            error(
                field,
                format!("must be a list of strings, found {}", type_name(other)),
            );
            return None;
        }
    };
    let mut list = Vec::with_capacity(items.len());
    let mut ok = true;
    for (position, item) in items.iter().enumerate() {
        match item {
            Value::String(text) if !text.is_empty() => list.push(text.clone()),
            Value::String(_) => {
                error(&format!("{field}[{position}]"), "must not be empty".into());
                ok = false;
            }
            other => {
                error(
                    &format!("{field}[{position}]"),
                    format!("must be a string, found {}", type_name(other)),
                );
                ok = false;
            }
        }
    }
    ok.then_some(list)
}

/// `Some(None)` when absent, `Some(Some(set))` when valid, `None` after reporting an error.
fn glob_set(
    value: Option<&Value>,
    field: &str,
    error: &mut impl FnMut(&str, String),
) -> Option<Option<GlobSet>> {
    let patterns = string_list(value, field, error)?;
    if patterns.is_empty() {
        return Some(None);
    }
    let mut builder = GlobSetBuilder::new();
    let mut ok = true;
    for (position, pattern) in patterns.iter().enumerate() {
        match compile_glob(pattern) {
            Ok(glob) => {
                builder.add(glob);
            }
            Err(reason) => {
                error(
                    &format!("{field}[{position}]"),
                    format!("{pattern:?} is not a valid glob: {reason}"),
                );
                ok = false;
            }
        }
    }
    if !ok {
        return None;
    }
    match builder.build() {
        Ok(set) => Some(Some(set)),
        Err(reason) => {
            error(field, format!("could not be compiled: {reason}"));
            None
        }
    }
}

fn compile_glob(pattern: &str) -> Result<Glob, globset::Error> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rules(value: Value) -> SyncRules {
        SyncRules::from_value(&value).unwrap()
    }

    #[test]
    fn elastic_rules_match_by_prefix_and_extension() {
        let rules = rules(json!([
            {"bucket": "docs", "prefix": "folder1/docs", "extension": [".txt", "PDF"]},
            {"bucket": "logs"}
        ]));
        let cases = [
            ("docs", "folder1/docs/a.txt", true),
            ("docs", "folder1/docs/deep/b.PDF", true),
            ("docs", "folder1/docs-archive/c.txt", true),
            ("docs", "folder1/docs/a.md", false),
            ("docs", "folder2/a.txt", false),
            ("docs", "folder1/docs/no-extension", false),
            ("logs", "anything/at/all", true),
            ("other", "folder1/docs/a.txt", false),
        ];
        for (bucket, key, expected) in cases {
            assert_eq!(rules.matches(bucket, key), expected, "{bucket}/{key}");
        }
    }

    #[test]
    fn globs_and_excludes() {
        let rules = rules(json!([
            {"bucket": "b", "glob": ["**/*.md", "*.txt"], "exclude": ["**/drafts/**"]}
        ]));
        let cases = [
            ("readme.md", true),
            ("a/b/c.md", true),
            ("a/drafts/c.md", false),
            ("drafts/c.md", false),
            ("top.txt", true),
            ("nested/top.txt", false),
            ("a/b/c.pdf", false),
        ];
        for (key, expected) in cases {
            assert_eq!(rules.matches("b", key), expected, "{key}");
        }
    }

    #[test]
    fn list_prefixes_are_minimal() {
        let rules = rules(json!([
            {"bucket": "b", "prefix": "a/b/"},
            {"bucket": "b", "prefix": "a/"},
            {"bucket": "b", "prefix": "c/"},
            {"bucket": "d"},
            {"bucket": "d", "prefix": "x/"}
        ]));
        assert_eq!(rules.list_prefixes("b"), vec!["a/", "c/"]);
        assert_eq!(rules.list_prefixes("d"), vec![""]);
        assert!(rules.list_prefixes("nope").is_empty());
        assert_eq!(rules.buckets().into_iter().collect::<Vec<_>>(), ["b", "d"]);
    }

    #[test]
    fn invalid_rules_name_index_and_field() {
        let cases = [
            (json!({"bucket": "b"}), "", "must be a list of rules"),
            (json!(["b"]), "[0]", "must be an object"),
            (json!([{"prefix": "a"}]), "[0].bucket", "is required"),
            (json!([{"bucket": ""}]), "[0].bucket", "must not be empty"),
            (json!([{"bucket": 5}]), "[0].bucket", "must be a string"),
            (
                json!([{"bucket": "b"}, {"bucket": "b", "extensions": [".txt"]}]),
                "[1].extensions",
                "unknown field \"extensions\"",
            ),
            (
                json!([{"bucket": "b", "prefx": "a/"}]),
                "[0].prefx",
                "unknown field \"prefx\"; did you mean \"prefix\"?",
            ),
            (
                json!([{"bucket": "b", "colour": "blue"}]),
                "[0].colour",
                "unknown field \"colour\"; expected one of bucket, prefix",
            ),
            (
                json!([{"bucket": "b", "extension": ".txt"}]),
                "[0].extension",
                "must be a list of strings",
            ),
            (
                json!([{"bucket": "b", "extension": [".txt", 3]}]),
                "[0].extension[1]",
                "must be a string, found a number",
            ),
            (
                json!([{"bucket": "b", "prefix": ["a"]}]),
                "[0].prefix",
                "must be a string",
            ),
            (
                json!([{"bucket": "b", "glob": ["a/[b"]}]),
                "[0].glob[0]",
                "is not a valid glob",
            ),
            (
                json!([{"bucket": "b", "exclude": [""]}]),
                "[0].exclude[0]",
                "must not be empty",
            ),
        ];
        for (value, path, fragment) in cases {
            let errors = SyncRules::from_value(&value).unwrap_err();
            assert!(
                errors
                    .iter()
                    .any(|e| e.path() == path && e.message.contains(fragment)),
                "{value}: expected {path} {fragment:?}, got {errors:?}"
            );
        }
    }

    #[test]
    fn every_problem_is_reported() {
        let errors = SyncRules::from_value(&json!([{"bucket": ""}, {"bucket": "b", "nope": 1}, 7]))
            .unwrap_err();
        let paths: Vec<String> = errors.iter().map(RuleError::path).collect();
        assert_eq!(paths, ["[0].bucket", "[1].nope", "[2]"]);
    }

    #[test]
    fn an_empty_list_is_the_explicit_all_set() {
        let all = SyncRules::from_value(&json!([])).unwrap();
        assert!(all.is_all());
        assert!(all.matches("any-bucket", "any/key.txt"));
        assert!(all.covers_bucket("any-bucket"));
        assert_eq!(all.list_prefixes("any-bucket"), [""]);
        assert!(all.buckets().is_empty());
        let one = SyncRules::from_value(&json!([{"bucket": "b", "prefix": "p/"}])).unwrap();
        assert!(!one.is_all());
        assert!(one.covers_bucket("b") && !one.covers_bucket("c"));
        assert!(!one.matches("c", "p/x.txt") && one.matches("b", "p/x.txt"));
        assert!(SyncRules::from_json_str("not json").is_err());
    }

    #[test]
    fn extensions_of_keys() {
        let cases = [
            ("a/b/report.PDF", ".pdf"),
            ("a.tar.gz", ".gz"),
            ("dir.d/noext", ""),
            (".hidden", ""),
            ("", ""),
        ];
        for (key, ext) in cases {
            assert_eq!(extension_of(key), ext, "{key}");
        }
    }
}
