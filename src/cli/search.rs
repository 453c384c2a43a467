//! `s3-connector search`: a connector's index searched from the command line, by words
//! (BM25), by meaning (the passages' vectors) or both; each hit a passage where the index has
//! them, a whole document where it has none.
//!
//! A keyword search reads only the `index` block and the connectors' ids and index names of the
//! config file ([`config::load_index_view`]): it needs no AWS credentials, and the variables
//! the connectors' keys name need not be set. A semantic or hybrid search also reads the
//! connector's `embedding:` block (the whole config) to turn the query into a vector with the
//! model the index recorded.
//!
//! `--queries FILE` runs one query per line in one process, so the index is opened and the
//! model loaded once for all of them (`scripts/eval` runs Cranfield's 225 queries so).

use std::io::{BufRead as _, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use std::io::IsTerminal as _;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use serde::Serialize;

use super::{ConfigArg, EXIT_CONFIG, EXIT_FAILED};
use crate::config::{self, IndexView};
use crate::embed::{Embedder, EmbeddingModel, Passage};
use crate::sink::passages::{self, Fusion, PassageQuery, SearchMode, Snippet};
use crate::sink::{AnySink, PassageHit, Sink};

/// How `search` ranks (`--mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// BM25 over words: English stems, title and filename above body.
    Keyword,
    /// The cosine of the query's vector to the passages' vectors.
    Semantic,
    /// Both, by reciprocal-rank fusion (k = 60).
    Hybrid,
}

impl From<Mode> for SearchMode {
    fn from(mode: Mode) -> Self {
        match mode {
            Mode::Keyword => SearchMode::Keyword,
            Mode::Semantic => SearchMode::Semantic,
            Mode::Hybrid => SearchMode::Hybrid,
        }
    }
}

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
    /// How to rank: keyword (BM25), semantic (vectors) or hybrid (both, fused). Default:
    /// hybrid when the index has vectors (a recorded model), keyword otherwise.
    #[arg(long, value_enum)]
    mode: Option<Mode>,
    /// Print one JSON object per hit (id, bucket, key, score, title, passage with its whole
    /// text, snippet, highlights).
    #[arg(long)]
    json: bool,
    /// Run many queries in one process (the index opened and the model loaded once): one query
    /// per line of FILE (`-`: standard input). Prints one JSON object per line read, in order:
    /// `{"query", "mode", "hits"}`, hits as `--json` prints them (a blank line gets none).
    /// Stops at the first query that fails, with the exit code of a single search.
    #[arg(long, value_name = "FILE", conflicts_with = "query")]
    queries: Option<PathBuf>,
    /// The query: words, "phrases", field:value; -word leaves out documents with the word
    /// (a query may start with it: `search -draft report`). Options go before the query.
    #[arg(required_unless_present = "queries", num_args = 1.., allow_hyphen_values = true)]
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
    /// The passage: ordinal, byte range in the document's text, heading, page and its whole
    /// text; absent for a whole-document hit.
    #[serde(skip_serializing_if = "Option::is_none")]
    passage: Option<Passage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    snippet: Option<String>,
    /// Byte ranges of `snippet` the query matched.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    highlights: Vec<[usize; 2]>,
}

impl From<PassageHit> for PrintedHit {
    fn from(hit: PassageHit) -> Self {
        let (snippet, highlights) = Snippet::parts(hit.snippet);
        Self {
            id: hit.id.to_hex(),
            bucket: hit.bucket,
            key: hit.key,
            score: hit.score,
            title: hit.title,
            passage: hit.passage,
            snippet,
            highlights,
        }
    }
}

/// The answer to one query of `--queries`: one JSON line.
#[derive(Debug, Serialize)]
struct BatchAnswer {
    query: String,
    mode: SearchMode,
    hits: Vec<PrintedHit>,
}

/// Why a query got no hits: a wrong config or index for the mode asked (exit 2), or a failed
/// search (exit 1).
enum Failure {
    Config(String),
    Search(anyhow::Error),
}

/// One connector's index, ready for queries: opened once, with the model of its `embedding:`
/// block loaded once when the mode needs vectors.
struct Searcher {
    index: AnySink,
    recorded: Option<EmbeddingModel>,
    embedder: Option<Arc<dyn Embedder>>,
    mode: SearchMode,
    limit: usize,
    /// The connector's id, for messages.
    id: String,
}

impl Searcher {
    /// The best hits for `text`.
    async fn search(&self, text: &str) -> Result<Vec<PassageHit>, Failure> {
        let vector = if self.mode.needs_vector() {
            let vector =
                passages::query_vector(self.embedder.as_deref(), self.recorded.as_ref(), text)
                    .await
                    .map_err(|error| Failure::Config(format!("connector {}: {error}", self.id)))?;
            Some(vector)
        } else {
            None
        };
        let search = PassageQuery {
            text: text.to_owned(),
            vector,
            mode: self.mode,
            fusion: Fusion::default(),
            limit: self.limit,
        };
        crate::with_sink!(&self.index, sink => sink.search_passages(&search).await)
            .map_err(|error| Failure::Search(error.into()))
    }
}

/// Prints the best hits, as text or one JSON object per line; with `--queries`, one JSON
/// object per query.
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
    let queries = match &args.queries {
        Some(file) => match read_queries(file) {
            Ok(lines) => lines,
            Err(error) => {
                eprintln!("error: cannot read --queries {}: {error}", file.display());
                return Ok(ExitCode::from(EXIT_CONFIG));
            }
        },
        None => vec![args.query.join(" ")],
    };
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
    let recorded =
        crate::with_sink!(&index, sink => sink.recorded_model().await).with_context(|| {
            format!("cannot read the model recorded by the index of connector {id}")
        })?;
    let mode = args.mode.map_or_else(
        || SearchMode::default_for(recorded.as_ref()),
        SearchMode::from,
    );
    let embedder = if mode.needs_vector() && recorded.is_some() {
        match connector_embedder(path, id).await {
            Ok(embedder) => embedder,
            Err(message) => {
                eprintln!("error: {message}");
                return Ok(ExitCode::from(EXIT_CONFIG));
            }
        }
    } else {
        None
    };
    let searcher = Searcher {
        index,
        recorded,
        embedder,
        mode,
        limit: args.limit,
        id: id.to_owned(),
    };
    let mut out = std::io::stdout().lock();
    for (line, query) in queries.iter().enumerate() {
        let found = if args.queries.is_some() && query.trim().is_empty() {
            Vec::new()
        } else {
            match searcher.search(query).await {
                Ok(found) => found,
                Err(failure) => {
                    out.flush()?;
                    let at = args
                        .queries
                        .as_ref()
                        .map(|file| format!("line {} of {}", line + 1, file.display()));
                    return match (failure, at) {
                        (Failure::Config(message), None) => {
                            eprintln!("error: {message}");
                            Ok(ExitCode::from(EXIT_CONFIG))
                        }
                        (Failure::Config(message), Some(at)) => {
                            eprintln!("error: {message} ({at})");
                            Ok(ExitCode::from(EXIT_CONFIG))
                        }
                        (Failure::Search(error), None) => Err(error),
                        (Failure::Search(error), Some(at)) => {
                            Err(error.context(format!("the search for {query:?} failed ({at})")))
                        }
                    };
                }
            }
        };
        if args.queries.is_some() {
            let answer = BatchAnswer {
                query: query.clone(),
                mode,
                hits: found.into_iter().map(PrintedHit::from).collect(),
            };
            serde_json::to_writer(&mut out, &answer)?;
            writeln!(out)?;
        } else {
            print_hits(&mut out, query, found, args.json)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The lines of `file` (`-`: standard input), one query each.
fn read_queries(file: &Path) -> std::io::Result<Vec<String>> {
    if file == Path::new("-") {
        std::io::stdin().lock().lines().collect()
    } else {
        std::fs::read_to_string(file).map(|text| text.lines().map(str::to_owned).collect())
    }
}

/// The hits of one query, as text or one JSON object per line.
fn print_hits(
    out: &mut std::io::StdoutLock<'_>,
    query: &str,
    found: Vec<PassageHit>,
    json: bool,
) -> anyhow::Result<()> {
    if found.is_empty() && !json {
        writeln!(out, "no documents match {query:?}")?;
    }
    let marks = if out.is_terminal() {
        Marks::BOLD
    } else {
        Marks::STARS
    };
    for hit in found {
        let hit = PrintedHit::from(hit);
        if json {
            serde_json::to_writer(&mut *out, &hit)?;
            writeln!(out)?;
        } else {
            print_hit(out, &hit, marks)?;
        }
    }
    Ok(())
}

/// The embedder of connector `id`'s `embedding:` block (`None` without one), loaded once for
/// every query (on the blocking pool); else what to tell the user.
async fn connector_embedder(path: &Path, id: &str) -> Result<Option<Arc<dyn Embedder>>, String> {
    let config = config::load(path).map_err(|error| {
        format!("semantic and hybrid search read the connector's `embedding:` block: {error}")
    })?;
    let connector = config
        .connectors
        .iter()
        .find(|connector| connector.id == id)
        .ok_or_else(|| format!("no connector with id {id:?} in {}", path.display()))?;
    crate::embed::load_blocking(crate::embed::for_connector, connector.embedding.as_ref())
        .await
        .map_err(|error| format!("connector {id}: {error}"))
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

/// How highlighted words are marked: before and after each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Marks {
    open: &'static str,
    close: &'static str,
}

impl Marks {
    /// Bold on a terminal.
    const BOLD: Self = Self {
        open: "\x1b[1m",
        close: "\x1b[0m",
    };
    /// Markdown's strong emphasis, anywhere else.
    const STARS: Self = Self {
        open: "**",
        close: "**",
    };
}

/// A hit as up to three lines: score, URL and passage (ordinal, heading or page), then the
/// title and the snippet (its matched words marked), indented.
fn print_hit(out: &mut impl Write, hit: &PrintedHit, marks: Marks) -> std::io::Result<()> {
    write!(out, "{:>8.3}  s3://{}/{}", hit.score, hit.bucket, hit.key)?;
    if let Some(passage) = &hit.passage {
        write!(out, "  #{}", passage.ordinal)?;
        if let Some(heading) = &passage.heading {
            write!(out, " {heading}")?;
        }
        if let Some(page) = passage.page {
            write!(out, " (page {page})")?;
        }
    }
    writeln!(out)?;
    if let Some(title) = &hit.title {
        writeln!(out, "          {title}")?;
    }
    if let Some(snippet) = &hit.snippet {
        writeln!(out, "          {}", marked(snippet, &hit.highlights, marks))?;
    }
    Ok(())
}

/// `text` with each of `highlights` (ordered byte ranges) between `marks`.
fn marked(text: &str, highlights: &[[usize; 2]], marks: Marks) -> String {
    let mut out = String::with_capacity(text.len() + highlights.len() * 8);
    let mut at = 0;
    for &[start, end] in highlights {
        let (Some(before), Some(word)) = (text.get(at..start), text.get(start..end)) else {
            continue;
        };
        out.push_str(before);
        out.push_str(marks.open);
        out.push_str(word);
        out.push_str(marks.close);
        at = end;
    }
    out.push_str(text.get(at..).unwrap_or_default());
    out
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
    use crate::embed::PassageHash;

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
            passage: None,
            snippet: Some("…laptops use full-disk encryption".into()),
            highlights: Vec::new(),
        };
        let mut out = Vec::new();
        print_hit(&mut out, &hit, Marks::STARS).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "   1.500  s3://b/handbook/security.txt\n          Security policy\n          …laptops use full-disk encryption\n"
        );
    }

    #[test]
    fn a_passage_hit_names_its_place_and_marks_its_words() {
        let hit = PrintedHit {
            id: "0".repeat(32),
            bucket: "b".into(),
            key: "guide.md".into(),
            score: 0.25,
            title: None,
            passage: Some(Passage {
                ordinal: 3,
                start: 10,
                end: 40,
                heading: Some("Setup > Keys".into()),
                page: Some(2),
                text: "Keys: rotate the keys yearly.".into(),
                content_hash: PassageHash::of("Keys: rotate the keys yearly."),
            }),
            snippet: Some("rotate the keys yearly".into()),
            highlights: vec![[11, 15], [16, 22]],
        };
        let mut out = Vec::new();
        print_hit(&mut out, &hit, Marks::STARS).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "   0.250  s3://b/guide.md  #3 Setup > Keys (page 2)\n          rotate the **keys** **yearly**\n"
        );
        assert_eq!(marked("a b", &[[2, 3]], Marks::BOLD), "a \x1b[1mb\x1b[0m");
        let json = serde_json::to_value(&hit).unwrap();
        assert_eq!(json["passage"]["ordinal"], 3);
        assert_eq!(json["passage"]["text"], "Keys: rotate the keys yearly.");
        assert!(json["passage"].get("content_hash").is_none());
        assert_eq!(json["highlights"][1][0], 16);
    }
}
