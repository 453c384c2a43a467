//! Filters in what a person types: `meta.<name>:<value>` (user metadata) and `tag.<key>:<value>`
//! (object tags) are taken out of the query text before a sink's own query parser sees it.
//!
//! Each sink then requires (or, after `-` or `NOT`, excludes) the filter's term in its one
//! keyword field of [`Attributes::filter_terms`](super::Attributes::filter_terms), and searches
//! the rest of the text as before; a query of filters only lists every document that passes
//! them. Filters always narrow the whole query, whatever operators stand around them. Names and
//! values match whole, without regard to case or accents (`meta.author:zoe` finds `Zoë`); a
//! value with spaces is quoted (`meta.author:"Zoë Smith"`).

use super::analysis;

/// What a filter looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterKind {
    /// User metadata: `meta.<name>`.
    Metadata,
    /// Object tags: `tag.<key>`.
    Tag,
}

impl FilterKind {
    /// The prefix of the filter's field in a query and of its terms.
    fn prefix(self) -> &'static str {
        match self {
            Self::Metadata => "meta",
            Self::Tag => "tag",
        }
    }
}

/// The indexed term of one metadata entry or tag: `meta.<name>=<value>`, name and value
/// lowercased and folded to ASCII, the value trimmed.
pub fn filter_term(kind: FilterKind, name: &str, value: &str) -> String {
    format!(
        "{}.{}={}",
        kind.prefix(),
        analysis::fold_keyword(name),
        analysis::fold_keyword(value.trim())
    )
}

/// A query split into its text and its filters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filtered {
    /// The query without its filters, for the sink's query parser (may be blank).
    pub text: String,
    /// Terms a document must hold.
    pub required: Vec<String>,
    /// Terms a document must not hold.
    pub excluded: Vec<String>,
}

impl Filtered {
    /// Whether the query holds filters.
    pub fn has_filters(&self) -> bool {
        !self.required.is_empty() || !self.excluded.is_empty()
    }
}

/// One whitespace-separated piece of a query, quotes kept together.
fn pieces(query: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = None;
    let mut quoted = false;
    for (index, c) in query.char_indices() {
        match c {
            '"' => {
                quoted = !quoted;
                start.get_or_insert(index);
            }
            c if c.is_whitespace() && !quoted => {
                if let Some(start) = start.take() {
                    pieces.push(&query[start..index]);
                }
            }
            _ => {
                start.get_or_insert(index);
            }
        }
    }
    if let Some(start) = start {
        pieces.push(&query[start..]);
    }
    pieces
}

/// The filter a piece states (without its `-`/`+`): its term.
fn as_filter(piece: &str) -> Option<String> {
    let (field, value) = piece.split_once(':')?;
    let (prefix, name) = field.split_once('.')?;
    let kind = [FilterKind::Metadata, FilterKind::Tag]
        .into_iter()
        .find(|kind| kind.prefix().eq_ignore_ascii_case(prefix))?;
    let value = value
        .strip_prefix('"')
        .map_or(value, |rest| rest.strip_suffix('"').unwrap_or(rest));
    (!name.is_empty()).then(|| filter_term(kind, name, value))
}

/// Whether a piece is a binary operator.
fn is_operator(piece: &str) -> bool {
    matches!(piece, "AND" | "OR" | "&&" | "||")
}

/// Takes the filters out of `query`, with the operator that joined each to the rest.
pub fn split(query: &str) -> Filtered {
    let pieces = pieces(query);
    let mut filtered = Filtered::default();
    let mut kept: Vec<&str> = Vec::with_capacity(pieces.len());
    let mut negate_next = false;
    let mut drop_operator_after = false;
    for piece in pieces {
        if piece == "NOT" {
            negate_next = true;
            continue;
        }
        let (negated, bare) = match piece.strip_prefix(['-', '!']) {
            Some(bare) => (true, bare),
            None => (false, piece.strip_prefix('+').unwrap_or(piece)),
        };
        if let Some(term) = as_filter(bare) {
            if negated || std::mem::take(&mut negate_next) {
                filtered.excluded.push(term);
            } else {
                filtered.required.push(term);
            }
            // `a AND meta.x:y OR b` becomes `a OR b`; `meta.x:y AND b` becomes `b`.
            if kept.last().is_some_and(|last| is_operator(last)) {
                kept.pop();
            } else {
                drop_operator_after = true;
            }
            continue;
        }
        if std::mem::take(&mut drop_operator_after) && is_operator(piece) {
            continue;
        }
        if std::mem::take(&mut negate_next) {
            kept.push("NOT");
        }
        kept.push(piece);
    }
    filtered.text = kept.join(" ");
    filtered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_taken_out_with_the_operator_that_joined_them() {
        let cases: [(&str, &str, &[&str], &[&str]); 9] = [
            ("connector", "connector", &[], &[]),
            ("meta.author:alice", "", &["meta.author=alice"], &[]),
            ("setup meta.Author:Zoë", "setup", &["meta.author=zoe"], &[]),
            ("a AND meta.team:x OR b", "a OR b", &["meta.team=x"], &[]),
            ("meta.team:x AND b", "b", &["meta.team=x"], &[]),
            (
                "guide -tag.project:apollo NOT meta.draft:yes",
                "guide",
                &[],
                &["tag.project=apollo", "meta.draft=yes"],
            ),
            (
                "tag.Owner:\"Zoë Smith\" +meta.a:b",
                "",
                &["tag.owner=zoe smith", "meta.a=b"],
                &[],
            ),
            // Not filters: other fields, a name missing, a phrase with a colon.
            (
                "title:meta.x meta.:y \"meta.a:b c\" NOT setup",
                "title:meta.x meta.:y \"meta.a:b c\" NOT setup",
                &[],
                &[],
            ),
            ("  ", "", &[], &[]),
        ];
        for (query, text, required, excluded) in cases {
            let filtered = split(query);
            assert_eq!(filtered.text, text, "{query}");
            assert_eq!(filtered.required, required, "{query}");
            assert_eq!(filtered.excluded, excluded, "{query}");
        }
    }
}
