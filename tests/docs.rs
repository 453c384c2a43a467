//! The documentation's promises, checked by `cargo test` (no server, no network):
//!
//! - every relative link and `#anchor` of README.md and docs/*.md resolves: the file exists, and
//!   the anchor is the GitHub slug of one of its headings;
//! - the reference names every command-line flag (in its command's row of the command table),
//!   every field of the sync's JSON report and every metric the worker exports, each in the
//!   section that lists them;
//! - every `scripts/...` the pages name exists.
//!
//! Where each list lives is said once, in the constants below. A failure names everything
//! missing at once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use clap::CommandFactory as _;
use regex::Regex;

use s3_connector::source::s3::S3Stats;
use s3_connector::sync::{Counters, SyncReport};

/// The page with the command table (one row per command, starting with "| `<command>") and the
/// JSON report's fields.
const COMMANDS_PAGE: &str = "docs/commands.md";
/// The heading of the section of [`COMMANDS_PAGE`] that lists the JSON report's fields.
const JSON_REPORT_SECTION: &str = "The JSON report";
/// The page with the metrics table, and the heading of its section.
const METRICS_PAGE: &str = "docs/worker-and-api.md";
const METRICS_SECTION: &str = "Metrics";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every docs/*.md, relative to the repository's root.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![PathBuf::from("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/ exists")
        .map(|entry| entry.expect("docs/ is readable").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .map(|path| Path::new("docs").join(path.file_name().expect("a file name")))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

fn read(page: &Path) -> String {
    std::fs::read_to_string(root().join(page))
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", page.display()))
}

/// The lines of `text` outside fenced code blocks, with their 1-based numbers.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut lines = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            lines.push((number + 1, line));
        }
    }
    lines
}

/// `line` without its inline code spans.
fn without_code(line: &str) -> String {
    let mut out = String::new();
    for (i, part) in line.split('`').enumerate() {
        if i % 2 == 0 {
            out.push_str(part);
        }
    }
    out
}

/// The heading text of a Markdown heading line, if it is one.
fn heading(line: &str) -> Option<&str> {
    let hashes = line.len() - line.trim_start_matches('#').len();
    ((1..=6).contains(&hashes) && line[hashes..].starts_with(' ')).then(|| line[hashes..].trim())
}

/// GitHub's anchor for a heading: lower case, links reduced to their text, every character
/// that is not a letter, digit, space, `-` or `_` dropped, spaces turned into `-`.
fn slug(heading: &str) -> String {
    static LINK: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\[([^\]]*)\]\([^)]*\)").expect("a valid pattern"));
    LINK.replace_all(heading, "$1")
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a page's headings; a repeated heading gets `-1`, `-2`, ... as on GitHub.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut anchors = BTreeSet::new();
    for (_, line) in prose_lines(text) {
        if let Some(heading) = heading(line) {
            let base = slug(heading);
            let mut anchor = base.clone();
            let mut n = 0;
            while anchors.contains(&anchor) {
                n += 1;
                anchor = format!("{base}-{n}");
            }
            anchors.insert(anchor);
        }
    }
    anchors
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let link = Regex::new(r"\]\(([^)\s]+)(?:\s+[^)]*)?\)").expect("a valid pattern");
    let mut broken = Vec::new();
    let mut checked = 0;
    let mut known: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    for page in pages() {
        let text = read(&page);
        let dir = page.parent().unwrap_or(Path::new(""));
        for (number, line) in prose_lines(&text) {
            for target in link
                .captures_iter(&without_code(line))
                .map(|c| c[1].to_owned())
            {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                checked += 1;
                let (file, anchor) = target.split_once('#').unwrap_or((&target, ""));
                let file = if file.is_empty() {
                    page.clone()
                } else {
                    dir.join(file)
                };
                let at = format!("{}:{number}: ({target})", page.display());
                if !root().join(&file).exists() {
                    broken.push(format!("{at}: {} does not exist", file.display()));
                } else if !anchor.is_empty() {
                    if file.extension().is_none_or(|ext| ext != "md") {
                        broken.push(format!("{at}: an anchor into a file that is not Markdown"));
                    } else if !known
                        .entry(file.clone())
                        .or_insert_with(|| anchors(&read(&file)))
                        .contains(anchor)
                    {
                        broken.push(format!(
                            "{at}: no heading of {} has the anchor #{anchor}",
                            file.display()
                        ));
                    }
                }
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} links found: is the pattern right?"
    );
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// The lines of `page`'s section under the heading `title`, up to the next heading of the same
/// or a higher level.
fn section(page: &str, title: &str) -> String {
    let text = read(Path::new(page));
    let mut level = None;
    let mut lines = Vec::new();
    for (_, line) in prose_lines(&text) {
        let hashes = line.len() - line.trim_start_matches('#').len();
        match (level, heading(line)) {
            (None, Some(h)) if h == title => level = Some(hashes),
            (Some(l), Some(_)) if hashes <= l => break,
            (Some(_), _) => lines.push(line),
            _ => {}
        }
    }
    assert!(level.is_some(), "{page} has no heading \"{title}\"");
    lines.join("\n")
}

/// Whether `text` names `flag` (`--retarget`), not only a longer flag it starts.
fn names_flag(text: &str, flag: &str) -> bool {
    text.match_indices(flag).any(|(at, _)| {
        !text[at + flag.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_')
    })
}

#[test]
fn the_command_table_names_every_command_and_flag() {
    let cli = s3_connector::cli::Cli::command();
    let text = read(Path::new(COMMANDS_PAGE));
    let mut missing = Vec::new();
    for arg in cli.get_arguments().filter(|arg| arg.is_global_set()) {
        if let Some(long) = arg.get_long()
            && !names_flag(&text, &format!("--{long}"))
        {
            missing.push(format!("global option --{long}"));
        }
    }
    for command in cli.get_subcommands() {
        let name = command.get_name();
        let row_start = format!("| `{name}");
        let Some(row) = text.lines().find(|line| {
            line.strip_prefix(&row_start)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('`'))
        }) else {
            missing.push(format!(
                "the command {name} (no row starting with {row_start})"
            ));
            continue;
        };
        for arg in command.get_arguments().filter(|arg| !arg.is_global_set()) {
            let Some(long) = arg.get_long() else { continue };
            if !matches!(long, "help" | "version") && !names_flag(row, &format!("--{long}")) {
                missing.push(format!("{name} --{long}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "{COMMANDS_PAGE}'s command table lacks:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_json_report_section_names_every_field() {
    let mut report = SyncReport::from_counters(
        "sample",
        &Counters::default(),
        &S3Stats::default(),
        time::OffsetDateTime::now_utc(),
    );
    report.shard = Some("0/2".to_owned());
    let serde_json::Value::Object(fields) = serde_json::to_value(&report).expect("serializes")
    else {
        panic!("the report is not a JSON object");
    };
    assert_section_names(
        COMMANDS_PAGE,
        JSON_REPORT_SECTION,
        "report fields",
        fields.keys(),
    );
}

#[test]
fn the_metrics_section_names_every_metric() {
    let names = s3_connector::worker::metrics::names();
    assert_section_names(METRICS_PAGE, METRICS_SECTION, "metrics", names);
}

/// Asserts that the section `title` of `page` names each of `names` in backticks, naming every
/// one it lacks.
fn assert_section_names(
    page: &str,
    title: &str,
    what: &str,
    names: impl IntoIterator<Item = impl std::fmt::Display>,
) {
    let text = section(page, title);
    let missing: Vec<String> = names
        .into_iter()
        .map(|name| format!("`{name}`"))
        .filter(|name| !text.contains(name))
        .collect();
    assert!(
        missing.is_empty(),
        "the section \"{title}\" of {page} lacks the {what} {}",
        missing.join(", ")
    );
}

#[test]
fn every_script_the_pages_name_exists() {
    let script = Regex::new(r"scripts/[A-Za-z0-9_./-]*[A-Za-z0-9_]").expect("a valid pattern");
    let mut missing = BTreeSet::new();
    for page in pages() {
        for found in script.find_iter(&read(&page)) {
            if !root().join(found.as_str()).exists() {
                missing.insert(format!("{}: {}", page.display(), found.as_str()));
            }
        }
    }
    assert!(missing.is_empty(), "named but missing: {missing:?}");
}
