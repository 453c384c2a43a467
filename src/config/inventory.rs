//! A connector's `inventory` block: take each bucket's object list from its newest complete
//! S3 Inventory instead of ListObjectsV2.
//!
//! Only the settings live here (where the inventories are, how old one may be); finding,
//! checking and reading an inventory is `source::inventory`.

use std::time::Duration;

use serde::Deserialize;

use super::ConnectorProblems;
use super::{defaults, duration, rules_of_names};

/// The `inventory` block as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryFile {
    /// Where S3 Inventory writes its reports: `s3://BUCKET` or `s3://BUCKET/PREFIX`, the
    /// destination bucket and the destination prefix of the bucket's inventory configuration.
    /// The inventory of a synced bucket `B` is read from `PREFIX/B/CONFIG_ID/`. Read with the
    /// connector's own credentials (`s3:ListBucket` and `s3:GetObject` on that bucket).
    /// Required.
    pub destination: String,
    /// The inventory configuration's id (its name in the S3 console), the same for every
    /// bucket the connector syncs. Its output format must be CSV or Parquet (an ORC inventory
    /// fails the bucket's sync, deleting nothing). Required.
    pub config_id: String,
    /// How old (from the manifest's `creationTimestamp`) the newest complete inventory may be
    /// before the sync lists the bucket with ListObjectsV2 instead: a duration such as `36h`
    /// or `8d`. Default `9d` (a weekly inventory plus the two days S3 may take to deliver it).
    #[serde(default, deserialize_with = "duration::optional_text")]
    pub max_age: Option<String>,
    /// How long before the inventory's creation an object must have been last modified for a
    /// document to be deleted because the inventory does not list it: S3 Inventory is
    /// eventually consistent, and an object written shortly before its scan may be missing
    /// from it. Documents of objects modified later are kept (`kept_after_inventory`) until a
    /// later inventory, or a sync without `inventory:`, settles them. A duration such as `6h`;
    /// `0s` trusts the inventory up to its creation. Default `1d`.
    #[serde(default, deserialize_with = "duration::optional_text")]
    pub deletion_grace: Option<String>,
}

/// The validated `inventory` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventorySettings {
    /// The destination bucket.
    pub bucket: String,
    /// The destination prefix, without a trailing `/`; empty for none.
    pub prefix: String,
    /// The inventory configuration's id.
    pub config_id: String,
    /// The oldest inventory the sync uses.
    pub max_age: Duration,
    /// Documents of objects modified less than this before the inventory's creation are not
    /// deleted on its word.
    pub deletion_grace: Duration,
}

impl InventorySettings {
    /// Where the inventories of `source_bucket` live in the destination bucket: the folder
    /// that holds the dated manifest folders and `data/`, ending in `/`.
    pub fn folder(&self, source_bucket: &str) -> String {
        let prefix = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        format!("{prefix}{source_bucket}/{}/", self.config_id)
    }
}

/// Splits `s3://bucket/prefix` into bucket and prefix (no leading or trailing `/`).
fn parse_destination(text: &str) -> Result<(String, String), String> {
    let Some(rest) = text.strip_prefix("s3://") else {
        return Err("must be an S3 URL: s3://BUCKET or s3://BUCKET/PREFIX".to_owned());
    };
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    rules_of_names::check_bucket_name(bucket)
        .map_err(|rule| format!("names bucket {bucket:?}, which {rule}"))?;
    let prefix = prefix.trim_matches('/');
    if prefix.contains("//") {
        return Err("has an empty path segment (\"//\") in its prefix".to_owned());
    }
    Ok((bucket.to_owned(), prefix.to_owned()))
}

/// Checks a `config_id`: one path segment of S3 Inventory's layout.
fn check_config_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if id.contains('/') {
        return Err("must not contain \"/\": it is one folder of the inventory's path".to_owned());
    }
    Ok(())
}

/// Checks the `inventory` block of one connector; the settings when every rule holds.
pub(super) fn validate(
    file: Option<&InventoryFile>,
    report: &mut ConnectorProblems<'_>,
) -> Option<InventorySettings> {
    let file = file?;
    let before = report.list.len();
    let destination = parse_destination(&file.destination);
    if let Err(rule) = &destination {
        report.check(
            "inventory.destination",
            &file.destination,
            Err(rule.clone()),
        );
    }
    report.check(
        "inventory.config_id",
        &file.config_id,
        check_config_id(&file.config_id),
    );
    let max_age = match &file.max_age {
        None => Some(defaults::inventory_max_age()),
        Some(text) => match duration::parse(text) {
            Ok(age) if age >= Duration::from_secs(3600) => Some(age),
            Ok(_) => {
                report.check(
                    "inventory.max_age",
                    text,
                    Err("is too short: S3 Inventory is written daily at most, so it must be at least 1h".to_owned()),
                );
                None
            }
            Err(rule) => {
                report.check("inventory.max_age", text, Err(rule));
                None
            }
        },
    };
    let deletion_grace = match &file.deletion_grace {
        None => Some(defaults::inventory_deletion_grace()),
        Some(text) => match duration::parse(text) {
            Ok(grace) => Some(grace),
            Err(rule) => {
                report.check("inventory.deletion_grace", text, Err(rule));
                None
            }
        },
    };
    if report.list.len() != before {
        return None;
    }
    let (bucket, prefix) = destination.ok()?;
    Some(InventorySettings {
        bucket,
        prefix,
        config_id: file.config_id.clone(),
        max_age: max_age?,
        deletion_grace: deletion_grace?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_split_into_bucket_and_prefix_or_say_what_is_wrong() {
        type Split<'a> = Result<(&'a str, &'a str), &'a str>;
        let table: &[(&str, Split)] = &[
            ("s3://inv-bucket", Ok(("inv-bucket", ""))),
            ("s3://inv-bucket/", Ok(("inv-bucket", ""))),
            (
                "s3://inv-bucket/some/prefix/",
                Ok(("inv-bucket", "some/prefix")),
            ),
            ("inv-bucket/prefix", Err("must be an S3 URL")),
            ("s3://Inv_Bucket/x", Err("names bucket \"Inv_Bucket\"")),
            ("s3://inv-bucket/a//b", Err("empty path segment")),
        ];
        for (text, expected) in table {
            let got = parse_destination(text);
            match (expected, &got) {
                (Ok((bucket, prefix)), Ok((got_bucket, got_prefix))) => {
                    assert_eq!(
                        (*bucket, *prefix),
                        (got_bucket.as_str(), got_prefix.as_str()),
                        "{text}"
                    )
                }
                (Err(fragment), Err(message)) => {
                    assert!(message.contains(fragment), "{text}: {message}")
                }
                _ => panic!("{text}: got {got:?}"),
            }
        }
    }

    #[test]
    fn the_folder_of_a_bucket_follows_s3_inventorys_layout() {
        let mut settings = InventorySettings {
            bucket: "inv".into(),
            prefix: "reports/s3".into(),
            config_id: "daily".into(),
            max_age: Duration::from_secs(3600),
            deletion_grace: Duration::ZERO,
        };
        assert_eq!(settings.folder("docs"), "reports/s3/docs/daily/");
        settings.prefix.clear();
        assert_eq!(settings.folder("docs"), "docs/daily/");
    }

    /// The problems `config::parse` reports for a connector with `block` as its inventory.
    fn problems(block: &str) -> Vec<String> {
        let text = format!("connectors:\n  - id: c\n    buckets: [docs]\n    inventory: {block}\n");
        match crate::config::parse(
            &text,
            std::path::Path::new("t.yml"),
            std::path::Path::new("."),
            &|_| None,
        ) {
            Err(crate::config::ConfigError::Invalid { problems, .. }) => {
                problems.iter().map(ToString::to_string).collect()
            }
            Err(other) => vec![other.to_string()],
            Ok(config) => {
                assert!(config.connectors[0].inventory.is_some());
                Vec::new()
            }
        }
    }

    #[test]
    fn a_bad_block_names_field_value_and_rule_and_a_good_one_is_parsed() {
        assert_eq!(
            problems("{destination: s3://inv/p, config_id: daily}"),
            Vec::<String>::new()
        );
        let table = [
            (
                "{destination: inv/p, config_id: daily}",
                "connectors[0].inventory.destination: \"inv/p\" must be an S3 URL",
            ),
            (
                "{destination: s3://inv, config_id: a/b}",
                "connectors[0].inventory.config_id: \"a/b\" must not contain",
            ),
            (
                "{destination: s3://inv, config_id: d, max_age: 10m}",
                "connectors[0].inventory.max_age: \"10m\" is too short",
            ),
            (
                "{destination: s3://inv, config_id: d, max_age: soon}",
                "connectors[0].inventory.max_age: \"soon\" is not a duration",
            ),
            (
                "{destination: s3://inv, config_id: d, deletion_grace: a while}",
                "connectors[0].inventory.deletion_grace: \"a while\" is not a duration",
            ),
        ];
        crate::config::tests::assert_reported(&table, problems);
        let missing = problems("{destination: s3://inv}");
        assert!(
            missing.iter().any(|p| p.contains("config_id")),
            "{missing:?}"
        );
    }

    #[test]
    fn config_ids_are_one_path_segment() {
        assert!(check_config_id("daily-docs").is_ok());
        assert!(check_config_id("").is_err());
        assert!(check_config_id("a/b").unwrap_err().contains("\"/\""));
    }
}
