//! `s3-connector search`: BM25 search of a connector's index from the command line.
//!
//! It reads only the `index` block and the connectors' ids and index names of the config file
//! ([`config::load_index_view`]): searching needs no AWS credentials, and the variables the
//! connectors' keys name need not be set.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;

use super::{ConfigArg, EXIT_CONFIG, EXIT_FAILED};
use crate::config::{self, IndexView};
use crate::sink::{AnySink, DocId, Sink};

#[derive(Debug, Args)]
pub(super) struct SearchArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// The connector whose index to search. Default: the config's only connector.
    #[arg(long)]
    connector: Option<String>,
    /// Most hits to print.
    #[arg(long, default_value_t = 10)]
    limit: usize,
    /// Print one JSON object per hit (id, bucket, key, score, title, snippet).
    #[arg(long)]
    json: bool,
    /// The query: words, "phrases", field:value; -word leaves out documents with the word
    /// (a query may start with it: `search -draft report`). Options go before the query.
    #[arg(required = true, num_args = 1.., allow_hyphen_values = true)]
    query: Vec<String>,
}

/// One hit as printed: where, how well it matched, and what it is.
#[derive(Debug, Serialize)]
struct PrintedHit {
    id: String,
    bucket: String,
    key: String,
    score: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    snippet: Option<String>,
}

/// Prints the best hits, as text or one JSON object per line.
pub(super) async fn run(args: SearchArgs) -> anyhow::Result<ExitCode> {
    let path = &args.config.config;
    let view = match config::load_index_view(path) {
        Ok(view) => view,
        Err(error) => {
            eprintln!("error: {error}");
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    };
    let (id, index_name) = match choose_connector(&view, args.connector.as_deref(), path) {
        Ok(chosen) => chosen,
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    };
    if let Some(option) = misplaced_option(&args.query) {
        eprintln!(
            "error: {option} comes after the query, where it would be searched for as a word: put options before the query (search --limit 5 QUERY)"
        );
        return Ok(ExitCode::from(EXIT_CONFIG));
    }
    let query = args.query.join(" ");
    let index = AnySink::open_existing(&view.index, index_name)
        .await
        .with_context(|| format!("cannot open the index of connector {id}"))?;
    let Some(index) = index else {
        eprintln!(
            "error: the index of connector {id} ({index_name}) does not exist yet: no sync has filled it. \
             Run `s3-connector sync --config {config} --connector {id}` (or start the worker) first.",
            config = path.display(),
        );
        return Ok(ExitCode::from(EXIT_FAILED));
    };
    let found = crate::with_sink!(&index, sink => sink.search(&query, args.limit).await)?;
    let mut out = std::io::stdout().lock();
    if found.is_empty() && !args.json {
        writeln!(out, "no documents match {query:?}")?;
    }
    for hit in found {
        let document = match DocId::from_hex(&hit.id) {
            Some(doc_id) => index.get(doc_id).await.ok().flatten(),
            None => None,
        };
        let (title, body) = document.map_or((None, None), |d| (d.title, d.body));
        let hit = PrintedHit {
            snippet: body.map(|body| crate::sink::snippet::snippet(&body, &query)),
            title,
            id: hit.id,
            bucket: hit.bucket,
            key: hit.key,
            score: hit.score,
        };
        if args.json {
            serde_json::to_writer(&mut out, &hit)?;
            writeln!(out)?;
        } else {
            print_hit(&mut out, &hit)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The first query word that is one of `search`'s own options (`--limit`, `--limit=5`, `-c`):
/// a query may start with `-` (`-draft`), so once the query has begun clap reads everything
/// after it as query words, and an option written there would silently become one.
fn misplaced_option(query: &[String]) -> Option<&str> {
    let mut command = <super::Cli as clap::CommandFactory>::command();
    command.build();
    let search = command.find_subcommand("search")?;
    let options: Vec<String> = search
        .get_arguments()
        .flat_map(|arg| {
            let long = arg.get_long().map(|long| format!("--{long}"));
            let short = arg.get_short().map(|short| format!("-{short}"));
            long.into_iter().chain(short)
        })
        .chain(["--help".to_owned(), "-h".to_owned()])
        .collect();
    query
        .iter()
        .map(|word| word.split_once('=').map_or(word.as_str(), |(name, _)| name))
        .find(|word| options.iter().any(|option| option == word))
}

/// A hit as three lines: score and URL, then the title and the snippet, indented.
fn print_hit(out: &mut impl Write, hit: &PrintedHit) -> std::io::Result<()> {
    writeln!(out, "{:>8.3}  s3://{}/{}", hit.score, hit.bucket, hit.key)?;
    for line in [&hit.title, &hit.snippet].into_iter().flatten() {
        writeln!(out, "          {line}")?;
    }
    Ok(())
}

/// The connector named by `--connector`, else the only one; its id and index name, or what to
/// say when there is none or more than one to choose from.
fn choose_connector<'a>(
    view: &'a IndexView,
    wanted: Option<&str>,
    path: &Path,
) -> Result<(&'a str, &'a str), String> {
    let known = || {
        view.connectors
            .iter()
            .map(|(id, _)| id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let chosen = match wanted {
        Some(wanted) => view
            .connectors
            .iter()
            .find(|(id, _)| id == wanted)
            .ok_or_else(|| {
                format!(
                    "no connector with id {wanted:?} in {}; known: {}",
                    path.display(),
                    known()
                )
            })?,
        None => match view.connectors.as_slice() {
            [only] => only,
            [] => return Err(format!("{} has no connectors", path.display())),
            _ => {
                return Err(format!(
                    "{} has several connectors: name one with --connector ({})",
                    path.display(),
                    known()
                ));
            }
        },
    };
    Ok((chosen.0.as_str(), chosen.1.as_str()))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::IndexConfig;

    fn view(ids: &[&str]) -> IndexView {
        IndexView {
            index: IndexConfig::default(),
            connectors: ids
                .iter()
                .map(|id| (id.to_string(), format!("{id}-index")))
                .collect(),
        }
    }

    #[test]
    fn the_only_connector_needs_no_flag() {
        let path = PathBuf::from("c.yml");
        assert_eq!(
            choose_connector(&view(&["docs"]), None, &path),
            Ok(("docs", "docs-index"))
        );
        assert_eq!(
            choose_connector(&view(&["a", "b"]), Some("b"), &path),
            Ok(("b", "b-index"))
        );
        assert_eq!(
            choose_connector(&view(&["a", "b"]), None, &path),
            Err("c.yml has several connectors: name one with --connector (a, b)".to_owned())
        );
        assert_eq!(
            choose_connector(&view(&["a"]), Some("c"), &path),
            Err("no connector with id \"c\" in c.yml; known: a".to_owned())
        );
    }

    /// (arguments, the query read, the limit read)
    #[test]
    fn a_query_may_start_with_a_dash() {
        #[derive(Debug, clap::Parser)]
        struct Command {
            #[command(flatten)]
            search: SearchArgs,
        }
        let table: [(&[&str], &str, usize); 6] = [
            (&["-c", "f.yml", "quarterly report"], "quarterly report", 10),
            (&["-c", "f.yml", "-draft", "report"], "-draft report", 10),
            (&["-c", "f.yml", "report", "-draft"], "report -draft", 10),
            (
                &["-c", "f.yml", "report", "--limit", "3"],
                "report --limit 3",
                10,
            ),
            (&["-c", "f.yml", "--limit", "3", "-draft"], "-draft", 3),
            (&["-c", "f.yml", "--", "--limit"], "--limit", 10),
        ];
        for (args, query, limit) in table {
            let parsed = <Command as clap::Parser>::try_parse_from(
                std::iter::once("search").chain(args.iter().copied()),
            )
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert_eq!(parsed.search.query.join(" "), query, "{args:?}");
            assert_eq!(parsed.search.limit, limit, "{args:?}");
        }
    }

    #[test]
    fn an_option_after_the_query_is_refused_not_searched_for() {
        let words = |text: &str| text.split(' ').map(str::to_owned).collect::<Vec<_>>();
        let table = [
            ("report --limit 3", Some("--limit")),
            ("report --json", Some("--json")),
            ("report --connector=docs", Some("--connector")),
            ("report -c f.yml", Some("-c")),
            ("report --log-level debug", Some("--log-level")),
            ("-draft report", None),
            ("report --limitless", None),
            ("report -", None),
        ];
        for (query, option) in table {
            assert_eq!(misplaced_option(&words(query)), option, "{query}");
        }
    }

    #[test]
    fn a_hit_prints_its_title_and_snippet_under_its_url() {
        let hit = PrintedHit {
            id: "0".repeat(32),
            bucket: "b".into(),
            key: "handbook/security.txt".into(),
            score: 1.5,
            title: Some("Security policy".into()),
            snippet: Some("…laptops use full-disk encryption".into()),
        };
        let mut out = Vec::new();
        print_hit(&mut out, &hit).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "   1.500  s3://b/handbook/security.txt\n          Security policy\n          …laptops use full-disk encryption\n"
        );
    }
}
