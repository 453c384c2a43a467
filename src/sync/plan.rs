//! The decisions of a sync, as pure functions of data: which buckets it covers, and for each
//! listed object whether to skip it, index it with content, index its metadata only, or leave
//! it out. Tested with tables, without I/O.

use std::collections::BTreeSet;

use crate::config::BucketSelection;
use crate::extract::{self, Expected};
use crate::rules::SyncRules;
use crate::sink::{ContentStatus, VersionStamp};
use crate::source::s3::ObjectEntry;

/// Storage classes whose objects cannot be read without a restore.
const ARCHIVE_CLASSES: [&str; 2] = ["GLACIER", "DEEP_ARCHIVE"];

/// Limits that shape the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Objects larger than this are indexed with metadata only.
    pub max_content_bytes: u64,
}

/// Whether the object is new to the index or a changed version of an indexed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Not in the index.
    New,
    /// In the index with another version.
    Updated,
}

/// How to get the document's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentPlan {
    /// Download the object and extract its text; the name announces this compression and format
    /// (no format: sniffed from the content).
    Fetch(Expected),
    /// An empty object: nothing to download, the body is empty.
    Empty,
    /// Metadata only, never downloaded, for this reason.
    MetadataOnly(ContentStatus),
}

/// What to do with one listed object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The sync rules leave it out (an indexed copy is deleted at the end of the bucket).
    Excluded,
    /// Indexed with this exact version: nothing to download, nothing to write.
    Unchanged,
    /// Write a document.
    Index {
        /// New or changed.
        change: Change,
        /// Where the content comes from.
        content: ContentPlan,
    },
}

/// Decides what to do with `entry` of `bucket`, given the version the index holds (if any).
pub fn decide(
    bucket: &str,
    entry: &ObjectEntry,
    indexed: Option<VersionStamp>,
    rules: &SyncRules,
    limits: Limits,
) -> Decision {
    if !rules.matches(bucket, &entry.key) {
        return Decision::Excluded;
    }
    let change = match indexed {
        Some(stamp) if stamp == VersionStamp::of(&entry.etag, entry.last_modified, entry.size) => {
            return Decision::Unchanged;
        }
        Some(_) => Change::Updated,
        None => Change::New,
    };
    let archived = entry
        .storage_class
        .as_deref()
        .is_some_and(|class| ARCHIVE_CLASSES.contains(&class));
    let content = if archived {
        ContentPlan::MetadataOnly(ContentStatus::Archived)
    } else {
        match extract::expect_from_name(&entry.key) {
            None => ContentPlan::MetadataOnly(ContentStatus::Unsupported),
            Some(_) if entry.size > limits.max_content_bytes => {
                ContentPlan::MetadataOnly(ContentStatus::TooLarge)
            }
            Some(_) if entry.size == 0 => ContentPlan::Empty,
            Some(expected) => ContentPlan::Fetch(expected),
        }
    };
    Decision::Index { change, content }
}

/// The buckets a connector's sync (and `verify`) covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BucketPlan {
    /// Buckets to sync: those selected (named, or listed for `*`) that the rules cover.
    pub selected: BTreeSet<String>,
    /// Buckets the rules name that ListBuckets did not return (`*` only): an error, and their
    /// documents stay.
    pub missing: BTreeSet<String>,
}

/// Decides which buckets a sync covers from the connector's selection, the rules, and for `*`
/// the buckets ListBuckets returned (`listed`; ignored for named buckets).
pub fn plan_buckets(
    selection: &BucketSelection,
    listed: &[String],
    rules: &SyncRules,
) -> BucketPlan {
    let candidates: &[String] = match selection {
        BucketSelection::Named(names) => names,
        BucketSelection::All => listed,
    };
    let missing = match selection {
        BucketSelection::All => rules
            .buckets()
            .into_iter()
            .filter(|bucket| !listed.iter().any(|l| l == bucket))
            .map(str::to_owned)
            .collect(),
        BucketSelection::Named(_) => BTreeSet::new(),
    };
    BucketPlan {
        selected: candidates
            .iter()
            .filter(|b| rules.covers_bucket(b))
            .cloned()
            .collect(),
        missing,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::OffsetDateTime;

    use super::*;
    use crate::extract::{Compression, Format};

    fn entry(key: &str, size: u64, class: Option<&str>) -> ObjectEntry {
        ObjectEntry {
            key: key.to_owned(),
            size,
            last_modified: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            etag: "\"abc\"".to_owned(),
            storage_class: class.map(str::to_owned),
        }
    }

    #[test]
    fn decision_table() {
        let limits = Limits {
            max_content_bytes: 1000,
        };
        let rules = SyncRules::from_value(&json!([{"bucket": "b", "prefix": "docs/"}])).unwrap();
        let all = SyncRules::all();
        let same = |e: &ObjectEntry| Some(VersionStamp::of(&e.etag, e.last_modified, e.size));
        let fetch = |compression, format| {
            ContentPlan::Fetch(Expected {
                compression,
                format,
            })
        };
        let fetch_text = fetch(None, Some(Format::PlainText));
        let new = |content| Decision::Index {
            change: Change::New,
            content,
        };
        let updated = |content| Decision::Index {
            change: Change::Updated,
            content,
        };
        type Case<'a> = (
            ObjectEntry,
            fn(&ObjectEntry) -> Option<VersionStamp>,
            &'a SyncRules,
            Decision,
        );
        let none: fn(&ObjectEntry) -> Option<VersionStamp> = |_| None;
        let changed: fn(&ObjectEntry) -> Option<VersionStamp> =
            |_| Some(VersionStamp::of("\"old\"", OffsetDateTime::UNIX_EPOCH, 1));
        let text = entry("docs/a.txt", 10, None);
        let outside = entry("other/a.txt", 10, None);
        let in_class = |class| entry("docs/a.txt", 10, Some(class));
        let archived = ContentPlan::MetadataOnly(ContentStatus::Archived);
        let cases: Vec<Case<'_>> = vec![
            (text.clone(), same, &all, Decision::Unchanged),
            (text.clone(), changed, &all, updated(fetch_text)),
            (text.clone(), none, &rules, new(fetch_text)),
            (outside.clone(), none, &rules, Decision::Excluded),
            (outside, same, &rules, Decision::Excluded),
            (in_class("GLACIER"), none, &all, new(archived)),
            (in_class("DEEP_ARCHIVE"), changed, &all, updated(archived)),
            (in_class("GLACIER_IR"), none, &all, new(fetch_text)),
            (in_class("STANDARD_IA"), none, &all, new(fetch_text)),
        ];
        for (entry, indexed, rules, expected) in cases {
            let got = decide("b", &entry, indexed(&entry), rules, limits);
            assert_eq!(got, expected, "{entry:?}");
        }
        // A new object in the standard class, under no rules: (key, size, how its content is got).
        let fetch_as = |format| fetch(None, Some(format));
        let too_large = ContentPlan::MetadataOnly(ContentStatus::TooLarge);
        let unsupported = ContentPlan::MetadataOnly(ContentStatus::Unsupported);
        let new_objects = [
            ("docs/a.txt", 10, fetch_text),
            ("docs/big.txt", 1001, too_large),
            ("docs/cap.txt", 1000, fetch_text),
            ("docs/empty.txt", 0, ContentPlan::Empty),
            ("docs/photo.jpg", 10, unsupported),
            ("docs/page.HTML", 10, fetch_as(Format::Html)),
            // Documents that are not text.
            ("docs/report.PDF", 10, fetch_as(Format::Pdf)),
            ("docs/a.docx", 10, fetch_as(Format::Docx)),
            ("docs/mail.eml", 10, fetch_as(Format::Eml)),
            // Compressed names are judged by their inner name.
            (
                "logs/report.txt.gz",
                10,
                fetch(Some(Compression::Gzip), Some(Format::PlainText)),
            ),
            (
                "logs/app.json.zst",
                10,
                fetch(Some(Compression::Zstd), Some(Format::Json)),
            ),
            ("backup.tar.gz", 10, unsupported),
            ("big.txt.gz", 1001, too_large),
            // No extension: downloaded for sniffing, within the size cap.
            ("exports/2024-10-01", 10, fetch(None, None)),
            ("exports/2024-10-01", 1001, too_large),
            ("exports/data.gz", 10, fetch(Some(Compression::Gzip), None)),
            ("repo/Dockerfile", 10, fetch_as(Format::SourceCode)),
            // Unknown extensions and archives are not downloaded.
            ("docs/blob.xyz", 10, unsupported),
            ("docs/bundle.zip", 10, unsupported),
        ];
        for (key, size, content) in new_objects {
            let got = decide("b", &entry(key, size, None), None, &all, limits);
            assert_eq!(got, new(content), "{key} of {size} bytes");
        }
    }

    #[test]
    fn bucket_plan_table() {
        let rules =
            crate::rules::SyncRules::from_json_str(r#"[{"bucket": "docs"}, {"bucket": "gone"}]"#)
                .unwrap();
        let all = SyncRules::all();
        let names = |list: &[&str]| list.iter().map(|b| (*b).to_owned()).collect::<Vec<_>>();
        let set = |list: &[&str]| {
            list.iter()
                .map(|b| (*b).to_owned())
                .collect::<BTreeSet<_>>()
        };
        let named = BucketSelection::Named(names(&["docs", "other"]));
        // (selection, listed, rules, selected, missing)
        type Row<'a> = (
            &'a BucketSelection,
            &'a [&'a str],
            &'a SyncRules,
            &'a [&'a str],
            &'a [&'a str],
        );
        let table: [Row<'_>; 5] = [
            (&named, &[], &all, &["docs", "other"], &[]),
            (&named, &["ignored"], &rules, &["docs"], &[]),
            (&BucketSelection::All, &["a", "b"], &all, &["a", "b"], &[]),
            (
                &BucketSelection::All,
                &["docs", "b"],
                &rules,
                &["docs"],
                &["gone"],
            ),
            (&BucketSelection::All, &[], &rules, &[], &["docs", "gone"]),
        ];
        for (selection, listed, rules, selected, missing) in table {
            assert_eq!(
                plan_buckets(selection, &names(listed), rules),
                BucketPlan {
                    selected: set(selected),
                    missing: set(missing),
                },
                "{selection:?} {listed:?}"
            );
        }
    }
}
