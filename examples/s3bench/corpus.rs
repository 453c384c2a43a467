//! Deterministic benchmark data: the datasets `scripts/bench` uploads, and the documents the
//! extraction benchmark reads.
//!
//! Every object is a pure function of (seed, group, index, round): reruns with the same seed
//! produce the same bytes, and any object can be made on its own (in parallel, without holding a
//! dataset in memory). Round 0 is the dataset as uploaded; round `r > 0` is the content an object
//! gets when the benchmark changes it for the `r`-th time. Not a test fixture: nothing here
//! checks behaviour.

use rand::seq::IndexedRandom as _;
use rand::{Rng, SeedableRng as _};
use rand_chacha::ChaCha8Rng;

/// The kind of document a generator makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Plain text paragraphs (`.txt`).
    Text,
    /// An HTML page with head, script, style, headings, links, lists, tables and entities.
    Html,
    /// A JSON array of records.
    Json,
    /// An XML catalogue with attributes.
    Xml,
}

impl Kind {
    /// The key extension, with its dot.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Text => ".txt",
            Self::Html => ".html",
            Self::Json => ".json",
            Self::Xml => ".xml",
        }
    }

    /// The Content-Type the object is uploaded with.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Text => "text/plain; charset=utf-8",
            Self::Html => "text/html; charset=utf-8",
            Self::Json => "application/json",
            Self::Xml => "application/xml",
        }
    }

    /// A document of this kind of exactly `size` bytes (at least a small minimum per kind).
    pub fn generate(self, rng: &mut ChaCha8Rng, size: usize) -> Vec<u8> {
        let text = match self {
            Self::Text => text_document(rng, size),
            Self::Html => html_document(rng, size),
            Self::Json => json_document(rng, size),
            Self::Xml => xml_document(rng, size),
        };
        text.into_bytes()
    }
}

/// A run of similar objects inside a dataset.
#[derive(Debug, Clone)]
struct Group {
    /// First path segment of its keys.
    name: &'static str,
    /// Number of objects.
    count: usize,
    /// Size range in bytes, inclusive.
    sizes: (usize, usize),
    /// Kinds, assigned round-robin by index so an object keeps its key across rounds.
    kinds: &'static [Kind],
    /// Number of "folders" the objects are spread over.
    prefixes: usize,
}

/// One object of a dataset.
pub struct Object {
    /// Its key.
    pub key: String,
    /// Its Content-Type.
    pub content_type: &'static str,
    /// Its content.
    pub bytes: Vec<u8>,
}

/// A named dataset: a list of groups.
#[derive(Debug, Clone)]
pub struct Dataset {
    groups: Vec<Group>,
}

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;
const TEXT_AND_HTML: &[Kind] = &[Kind::Text, Kind::Html];

/// The names [`Dataset::named`] knows.
pub const DATASETS: &[&str] = &["small", "mixed", "large-listing"];

impl Dataset {
    /// `small`, `mixed` or `large-listing`, with every count multiplied by `scale` (rounded
    /// up, at least one object per group): `scale` 1 is the full benchmark, a small one the
    /// smoke run.
    pub fn named(name: &str, scale: f64) -> Option<Self> {
        let small = Group {
            name: "small",
            count: 20_000,
            sizes: (2 * KIB, 8 * KIB),
            kinds: TEXT_AND_HTML,
            prefixes: 100,
        };
        let groups = match name {
            "small" => vec![small],
            "mixed" => vec![
                small,
                Group {
                    name: "medium",
                    count: 1_000,
                    sizes: (64 * KIB, 256 * KIB),
                    kinds: TEXT_AND_HTML,
                    prefixes: 10,
                },
                Group {
                    name: "large",
                    count: 50,
                    sizes: (MIB, 4 * MIB),
                    kinds: TEXT_AND_HTML,
                    prefixes: 1,
                },
            ],
            "large-listing" => vec![Group {
                name: "tiny",
                count: 200_000,
                sizes: (16, 128),
                kinds: &[Kind::Text],
                prefixes: 1_000,
            }],
            _ => return None,
        };
        let groups = groups
            .into_iter()
            .map(|group| Group {
                count: ((group.count as f64 * scale).ceil() as usize).max(1),
                ..group
            })
            .collect();
        Some(Self { groups })
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.groups.iter().map(|group| group.count).sum()
    }

    /// The group of object `index` and the index inside it.
    fn locate(&self, mut index: usize) -> (usize, &Group, usize) {
        for (number, group) in self.groups.iter().enumerate() {
            if index < group.count {
                return (number, group, index);
            }
            index -= group.count;
        }
        panic!("object index out of range");
    }

    /// The key of object `index` (the same in every round).
    pub fn key(&self, index: usize) -> String {
        let (_, group, local) = self.locate(index);
        let kind = group.kinds[local % group.kinds.len()];
        let width = digits(group.prefixes - 1);
        format!(
            "{}/p{:0width$}/doc-{local:07}{}",
            group.name,
            local % group.prefixes,
            kind.extension()
        )
    }

    /// Object `index` as of `round`.
    pub fn object(&self, seed: u64, index: usize, round: u64) -> Object {
        let (number, group, local) = self.locate(index);
        let kind = group.kinds[local % group.kinds.len()];
        let mut rng = object_rng(seed, number as u64, local as u64, round);
        let size = rng.random_range(group.sizes.0..=group.sizes.1);
        Object {
            key: self.key(index),
            content_type: kind.content_type(),
            bytes: kind.generate(&mut rng, size),
        }
    }
}

/// The generator of one object: seeded with all four coordinates, so no two objects share one.
pub fn object_rng(seed: u64, group: u64, index: u64, round: u64) -> ChaCha8Rng {
    let mut bytes = [0u8; 32];
    for (slot, value) in bytes.chunks_exact_mut(8).zip([seed, group, index, round]) {
        slot.copy_from_slice(&value.to_le_bytes());
    }
    ChaCha8Rng::from_seed(bytes)
}

fn digits(mut n: usize) -> usize {
    let mut width = 1;
    while n >= 10 {
        n /= 10;
        width += 1;
    }
    width
}

/// Words of the generated prose: mostly English, a few with non-ASCII letters (so decoding sees
/// multi-byte UTF-8), a few numbers and codes.
#[rustfmt::skip]
const WORDS: &[&str] = &[
    "the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "as", "was", "with", "be",
    "by", "on", "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have",
    "an", "had", "they", "you", "were", "their", "one", "all", "we", "can", "her", "has", "there",
    "been", "if", "more", "when", "will", "would", "who", "so", "no", "report", "quarterly",
    "revenue", "storage", "bucket", "object", "index", "search", "latency", "throughput",
    "customer", "contract", "invoice", "policy", "security", "encryption", "backup", "region",
    "cluster", "deployment", "incident", "review", "budget", "forecast", "meeting", "agenda",
    "minutes", "project", "milestone", "release", "feature", "document", "archive", "analysis",
    "summary", "appendix", "section", "figure", "table", "value", "result", "method", "process",
    "system", "network", "service", "request", "response", "account", "access", "permission",
    "café", "naïve", "Zürich", "größe", "façade", "résumé", "São", "Paulo", "Ångström", "niño",
    "2024", "2025", "Q3", "v1.2.3", "42", "3.14", "ISO-9001", "RFC-7231", "#1024", "50%",
];

/// Words only, ASCII, to fill a document to an exact byte length.
const FILLER: &[&str] = &[
    "lorem", "ipsum", "dolor", "sit", "amet", "data", "text", "word",
];

fn word(rng: &mut ChaCha8Rng) -> &'static str {
    WORDS.choose(rng).copied().unwrap_or("word")
}

/// A sentence of 6 to 18 words, capitalised, ending with a full stop.
fn sentence(rng: &mut ChaCha8Rng, out: &mut String) {
    let count = rng.random_range(6..=18);
    for position in 0..count {
        let next = word(rng);
        if position == 0 {
            let mut chars = next.chars();
            if let Some(first) = chars.next() {
                out.extend(first.to_uppercase());
                out.push_str(chars.as_str());
            }
        } else {
            out.push(' ');
            out.push_str(next);
        }
    }
    out.push('.');
}

/// A paragraph of 2 to 6 sentences.
fn paragraph(rng: &mut ChaCha8Rng, out: &mut String) {
    let count = rng.random_range(2..=6);
    for position in 0..count {
        if position > 0 {
            out.push(' ');
        }
        sentence(rng, out);
    }
}

/// Appends ASCII filler words until `out` is exactly `target` bytes long. A document already
/// longer (a block overshot) is left whole rather than cut inside its markup.
fn fill(rng: &mut ChaCha8Rng, out: &mut String, target: usize) {
    if out.len() >= target {
        return;
    }
    while out.len() < target {
        out.push(' ');
        out.push_str(FILLER.choose(rng).copied().unwrap_or("word"));
    }
    // Everything past the old end is ASCII, so the cut is on a character boundary.
    out.truncate(target);
}

/// Writes blocks with `block` while the document is more than a block away from `limit`.
fn blocks(
    rng: &mut ChaCha8Rng,
    out: &mut String,
    limit: usize,
    mut block: impl FnMut(&mut ChaCha8Rng, &mut String),
) {
    // A block is at most about a kilobyte; the filler makes up the rest exactly.
    const MARGIN: usize = 1200;
    while out.len() + MARGIN < limit {
        block(rng, out);
    }
}

fn text_document(rng: &mut ChaCha8Rng, size: usize) -> String {
    let mut out = String::with_capacity(size + 64);
    let body = size.saturating_sub(1);
    blocks(rng, &mut out, body, |rng, out| {
        paragraph(rng, out);
        out.push_str("\n\n");
    });
    fill(rng, &mut out, body);
    out.push('\n');
    out
}

fn html_document(rng: &mut ChaCha8Rng, size: usize) -> String {
    const TAIL: &str = "\n</div>\n</body>\n</html>\n";
    let mut out = String::with_capacity(size + 64);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>");
    sentence(rng, &mut out);
    out.push_str(
        "</title>\n<style>body { font-family: sans-serif; } .note { color: #555; }</style>\n\
         <script>var page = { id: 1 }; function track(e) { return e && page.id; }</script>\n\
         </head>\n<body>\n<div class=\"content\">\n",
    );
    let body = size.saturating_sub(TAIL.len());
    blocks(rng, &mut out, body, |rng, out| {
        match rng.random_range(0..6) {
            0 => {
                out.push_str("<h2>");
                sentence(rng, out);
                out.push_str("</h2>\n");
            }
            1 => {
                out.push_str("<ul>\n");
                for _ in 0..rng.random_range(2..=5) {
                    out.push_str("  <li>");
                    sentence(rng, out);
                    out.push_str("</li>\n");
                }
                out.push_str("</ul>\n");
            }
            2 => {
                out.push_str("<table class=\"data\">\n");
                for _ in 0..rng.random_range(2..=4) {
                    out.push_str("<tr><td>");
                    out.push_str(word(rng));
                    out.push_str("</td><td>");
                    out.push_str(word(rng));
                    out.push_str("</td><td>");
                    out.push_str(&rng.random_range(0..100_000).to_string());
                    out.push_str("</td></tr>\n");
                }
                out.push_str("</table>\n");
            }
            _ => {
                out.push_str("<p class=\"note\">");
                sentence(rng, out);
                out.push_str(" <a href=\"/docs/");
                out.push_str(word(rng));
                out.push_str(".html\">");
                out.push_str(word(rng));
                out.push_str("</a> &amp; <b>");
                out.push_str(word(rng));
                out.push_str("</b> &eacute;t&eacute; &#8212; ");
                paragraph(rng, out);
                out.push_str("</p>\n");
            }
        }
    });
    fill(rng, &mut out, body);
    out.push_str(TAIL);
    out
}

fn json_document(rng: &mut ChaCha8Rng, size: usize) -> String {
    const TAIL: &str = "\", \"end\": true}\n]\n";
    let mut out = String::with_capacity(size + 64);
    out.push_str("[\n");
    let body = size.saturating_sub(TAIL.len());
    let mut id = 0u64;
    blocks(rng, &mut out, body, |rng, out| {
        id += 1;
        out.push_str(&format!("{{\"id\": {id}, \"title\": \""));
        sentence(rng, out);
        out.push_str("\", \"tags\": [\"");
        out.push_str(word(rng));
        out.push_str("\", \"");
        out.push_str(word(rng));
        out.push_str(&format!(
            "\"], \"score\": {}.{}, \"active\": {}, \"body\": \"",
            rng.random_range(0..100),
            rng.random_range(0..100),
            rng.random_bool(0.5)
        ));
        paragraph(rng, out);
        out.push_str(" \\\"quoted\\\" \\u00e9\"},\n");
    });
    // The last record's string takes the filler.
    out.push_str("{\"note\": \"");
    fill(rng, &mut out, body);
    out.push_str(TAIL);
    out
}

fn xml_document(rng: &mut ChaCha8Rng, size: usize) -> String {
    const TAIL: &str = "</note>\n</catalog>\n";
    let mut out = String::with_capacity(size + 64);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<catalog xmlns:x=\"urn:bench\">\n");
    let body = size.saturating_sub(TAIL.len());
    let mut id = 0u64;
    blocks(rng, &mut out, body, |rng, out| {
        id += 1;
        out.push_str(&format!("<item id=\"{id}\" lang=\"en\" x:kind=\""));
        out.push_str(word(rng));
        out.push_str("\">\n  <title>");
        sentence(rng, out);
        out.push_str("</title>\n  <description><![CDATA[");
        paragraph(rng, out);
        out.push_str("]]> &amp; more</description>\n</item>\n");
    });
    out.push_str("<note>");
    fill(rng, &mut out, body);
    out.push_str(TAIL);
    out
}
