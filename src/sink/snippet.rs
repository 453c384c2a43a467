//! Snippets: the line of a document's text shown under a search hit.
//!
//! A pure function of the stored body and the query a person typed. The body's Markdown and
//! HTML markup is reduced to its text (headings, quotes, list markers, emphasis, code ticks,
//! links and images, tags), whitespace collapses to single spaces, and about [`SNIPPET_CHARS`]
//! characters are kept around the first word a query term matches, as the index matches it
//! (case and accents folded, English stems compared, [`crate::sink::analysis`]). Cuts fall
//! between words, never inside one (unless a single word is longer than the whole window) and
//! never inside a UTF-8 character; `…` marks text left out at either end. [`highlighted`] also
//! gives the byte ranges of every matched word in the snippet, for a caller to mark (bold on a
//! terminal, `<mark>` in a page: escaping is the caller's).

use super::analysis;
use super::passages::Snippet;

/// Characters of text in a snippet, ellipses not counted.
pub const SNIPPET_CHARS: usize = 240;

/// Characters of text kept before the first hit, when there is more text before it.
const LEAD_CHARS: usize = 40;

/// About [`SNIPPET_CHARS`] characters of `body`'s text around the first word that a term of
/// `query` matches (from the start when none does), markup removed, cut between words.
pub fn snippet(body: &str, query: &str) -> String {
    highlighted(body, query).text
}

/// [`snippet`] with the byte ranges (in the snippet's text) of every word a query term
/// matches, in order.
pub fn highlighted(body: &str, query: &str) -> Snippet {
    let text = plain_text(body);
    let matched = matches(&text, &query_terms(query));
    let hit = matched.first().map_or(0, |range| range.start);
    let (start, end) = window(&text, hit);
    let mut snippet = String::with_capacity(end - start + 6);
    if start > 0 {
        snippet.push('…');
    }
    let shift = snippet.len();
    snippet.push_str(&text[start..end]);
    if end < text.len() {
        snippet.push('…');
    }
    let highlights = matched
        .into_iter()
        .filter(|range| range.start >= start && range.end <= end)
        .map(|range| [range.start - start + shift, range.end - start + shift])
        .collect();
    Snippet {
        text: snippet,
        highlights,
    }
}

/// A term of the query: its folded text, its English stem, and whether it matches any word it
/// begins (`conn*`, compared unstemmed).
#[derive(Debug, PartialEq, Eq)]
struct Term {
    text: String,
    stem: String,
    prefix: bool,
}

/// The terms of `query` that a hit may contain: its words, without operators (`AND`, `OR`,
/// `NOT`), without prohibited terms (`-word`, `NOT word`), without field names (`title:`).
fn query_terms(query: &str) -> Vec<Term> {
    let mut terms = Vec::new();
    let mut prohibit_next = false;
    for word in query.split_whitespace() {
        if matches!(word, "AND" | "OR" | "&&" | "||") {
            continue;
        }
        if word == "NOT" {
            prohibit_next = true;
            continue;
        }
        if std::mem::take(&mut prohibit_next) || word.starts_with(['-', '!']) {
            continue;
        }
        let value = word.rsplit_once(':').map_or(word, |(_, value)| value);
        let prefix = value.trim_end_matches(['"', ')']).ends_with('*');
        let stems = analysis::english_words(value);
        terms.extend(
            analysis::folded_words(value)
                .into_iter()
                .zip(stems)
                .map(|((text, _), (stem, _))| Term { text, stem, prefix }),
        );
    }
    terms
}

/// The byte range of the first word of `text` that one of `terms` matches.
#[cfg(test)]
fn first_hit(text: &str, terms: &[Term]) -> Option<std::ops::Range<usize>> {
    matches(text, terms).into_iter().next()
}

/// The byte ranges of the words of `text` that one of `terms` matches, in order: same stem,
/// or beginning with a prefix term.
fn matches(text: &str, terms: &[Term]) -> Vec<std::ops::Range<usize>> {
    if terms.is_empty() {
        return Vec::new();
    }
    // Both analyses cut the same words, so the two lists run side by side.
    analysis::folded_words(text)
        .into_iter()
        .zip(analysis::english_words(text))
        .filter(|((word, _), (stem, _))| {
            terms.iter().any(|term| {
                *stem == term.stem || (term.prefix && word.starts_with(term.text.as_str()))
            })
        })
        .map(|((_, range), _)| range)
        .collect()
}

/// The byte range of the snippet in `text` (words separated by single spaces) for a hit
/// starting at byte `hit`: up to [`LEAD_CHARS`] before it (more when the hit is near the end),
/// [`SNIPPET_CHARS`] in all, both ends moved inwards to the nearest space.
fn window(text: &str, hit: usize) -> (usize, usize) {
    let total = text.chars().count();
    if total <= SNIPPET_CHARS {
        return (0, text.len());
    }
    // Byte offset of the character with this index (the end of the text past the last one).
    let byte_of = |char_index: usize| {
        text.char_indices()
            .nth(char_index)
            .map_or(text.len(), |(byte, _)| byte)
    };
    let hit_word = text[..hit].rfind(' ').map_or(0, |space| space + 1);
    let hit_char = text[..hit].chars().count();
    let lead_char = hit_char
        .saturating_sub(LEAD_CHARS)
        .min(total - SNIPPET_CHARS);
    let lead = byte_of(lead_char);
    let start = if lead == 0 || text[..lead].ends_with(' ') {
        lead
    } else {
        // Forward to the next word, but never past the start of the hit's own word.
        let next_word = text[lead..]
            .find(' ')
            .map_or(text.len(), |space| lead + space + 1);
        next_word.min(hit_word)
    };
    let start_char = text[..start].chars().count();
    let limit = byte_of(start_char + SNIPPET_CHARS);
    let end = if limit >= text.len() || text[limit..].starts_with(' ') {
        limit
    } else {
        match text[start..limit].rfind(' ') {
            Some(space) if space > 0 => start + space,
            // One word longer than the whole window: cut it at a character boundary.
            _ => limit,
        }
    };
    (start, end)
}

/// `body` with Markdown and HTML markup reduced to text, whitespace collapsed to single spaces.
fn plain_text(body: &str) -> String {
    let mut plain = String::with_capacity(body.len());
    let mut in_fence = false;
    for line in body.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            plain.push_str(line);
        } else if !is_rule(trimmed) {
            inline_text(strip_line_markers(trimmed), &mut plain);
        }
        plain.push(' ');
    }
    plain.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A line that is only a rule, a table separator or a setext underline (`---`, `|:--|`, `===`).
fn is_rule(line: &str) -> bool {
    line.chars().filter(|c| !c.is_whitespace()).count() >= 3
        && line
            .chars()
            .all(|c| matches!(c, '-' | '*' | '_' | '=' | '|' | ':' | '+') || c.is_whitespace())
}

/// `line` without its block markers: quote `>`, heading `#`, list `-`/`*`/`+`/`1.`, task box.
fn strip_line_markers(mut line: &str) -> &str {
    loop {
        let before = line;
        line = line.trim_start();
        if let Some(rest) = line.strip_prefix('>') {
            line = rest;
        } else if line.starts_with('#') {
            let rest = line.trim_start_matches('#');
            if rest.is_empty() || rest.starts_with(char::is_whitespace) {
                line = rest.trim_end().trim_end_matches('#');
            }
        } else if let Some(rest) = line
            .strip_prefix(['-', '*', '+'])
            .filter(|rest| rest.starts_with(char::is_whitespace))
        {
            line = rest;
        } else if let Some(rest) = ordered_marker(line) {
            line = rest;
        } else if let Some(rest) = ["[ ]", "[x]", "[X]"]
            .iter()
            .find_map(|box_| line.strip_prefix(box_))
        {
            line = rest;
        }
        if line == before {
            return line;
        }
    }
}

/// The rest of `line` after an ordered-list marker (`12.` or `12)` and a space).
fn ordered_marker(line: &str) -> Option<&str> {
    let digits = line.len() - line.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 || digits > 9 {
        return None;
    }
    line[digits..]
        .strip_prefix(['.', ')'])
        .filter(|rest| rest.starts_with(char::is_whitespace))
}

/// Appends the text of one line's inline markup: link and image text without the address,
/// tags dropped, emphasis and code marks dropped (underscores only at a word's edge, so
/// `snake_case` stays), backslash escapes and a few entities resolved.
fn inline_text(line: &str, out: &mut String) {
    let chars: Vec<char> = line.chars().collect();
    let is_word = |index: Option<usize>| {
        index
            .and_then(|index| chars.get(index))
            .is_some_and(|c| c.is_alphanumeric())
    };
    let mut index = 0;
    while index < chars.len() {
        let c = chars[index];
        match c {
            '\\' if chars
                .get(index + 1)
                .is_some_and(|next| next.is_ascii_punctuation()) =>
            {
                out.push(chars[index + 1]);
                index += 2;
                continue;
            }
            '!' if chars.get(index + 1) == Some(&'[') && link_end(&chars, index + 1).is_some() => {}
            '[' => {
                if let Some((text_end, end)) = link_end(&chars, index) {
                    let inner: String = chars[index + 1..text_end].iter().collect();
                    inline_text(&inner, out);
                    index = end;
                    continue;
                }
                out.push(c);
            }
            '<' => {
                if let Some(end) = tag_end(&chars, index) {
                    let inner: String = chars[index + 1..end].iter().collect();
                    if inner.contains("://") || (inner.contains('@') && !inner.contains(' ')) {
                        out.push_str(&inner);
                    } else {
                        out.push(' ');
                    }
                    index = end + 1;
                    continue;
                }
                out.push(c);
            }
            '&' => {
                let rest: String = chars[index..chars.len().min(index + 7)].iter().collect();
                let entity = [
                    ("&amp;", '&'),
                    ("&lt;", '<'),
                    ("&gt;", '>'),
                    ("&quot;", '"'),
                    ("&#39;", '\''),
                    ("&nbsp;", ' '),
                ]
                .into_iter()
                .find(|(name, _)| rest.starts_with(name));
                if let Some((name, replacement)) = entity {
                    out.push(replacement);
                    index += name.len();
                    continue;
                }
                out.push(c);
            }
            '`' => {}
            '~' if chars.get(index + 1) == Some(&'~') => index += 1,
            '*' if !(index > 0
                && chars[index - 1].is_whitespace()
                && chars.get(index + 1).is_none_or(|next| next.is_whitespace())) => {}
            '_' if !(is_word(index.checked_sub(1)) && is_word(Some(index + 1))) => {}
            _ => out.push(c),
        }
        index += 1;
    }
}

/// For a `[` at `open`: the index of its `]` and the index just past the link's address
/// (`[text](url)` or `[text][ref]`); `None` when it is not a link.
fn link_end(chars: &[char], open: usize) -> Option<(usize, usize)> {
    let close = open + 1 + chars[open + 1..].iter().position(|&c| c == ']')?;
    let closer = match chars.get(close + 1) {
        Some('(') => ')',
        Some('[') => ']',
        _ => return None,
    };
    let end = close + 2 + chars[close + 2..].iter().position(|&c| c == closer)?;
    Some((close, end + 1))
}

/// For a `<` at `open` that starts a tag (`<b>`, `</p>`, `<!-- -->`, `<https://x>`): the index
/// of its `>`.
fn tag_end(chars: &[char], open: usize) -> Option<usize> {
    let first = chars.get(open + 1)?;
    if !(first.is_ascii_alphabetic() || matches!(first, '/' | '!')) {
        return None;
    }
    Some(open + 1 + chars[open + 1..].iter().position(|&c| c == '>')?)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn markup_is_reduced_to_its_text() {
        let cases = [
            (
                "# Getting started\n\nRead *this* first.",
                "Getting started Read this first.",
            ),
            ("## Setup ##", "Setup"),
            ("> quoted **bold** text", "quoted bold text"),
            (
                "- one\n* two\n+ three\n12. four\n3) five",
                "one two three four five",
            ),
            ("- [ ] todo\n- [x] done", "todo done"),
            (
                "See [the guide](https://x.example/guide) now",
                "See the guide now",
            ),
            (
                "![a diagram](img.png) and [ref link][1]",
                "a diagram and ref link",
            ),
            (
                "Use `cargo test` and ```inline```",
                "Use cargo test and inline",
            ),
            ("```rust\nlet x = 1;\n```\nafter", "let x = 1; after"),
            (
                "snake_case stays, _emphasis_ goes, __strong__ too",
                "snake_case stays, emphasis goes, strong too",
            ),
            ("2 * 3 = 6", "2 * 3 = 6"),
            (
                "Title\n=====\ntext\n\n---\n| a | b |\n|---|:-:|",
                "Title text | a | b |",
            ),
            (
                "a <b>bold</b> <br/>word <https://x.example> &amp; more",
                "a bold word https://x.example & more",
            ),
            (
                "escaped \\*star\\* and ~~struck~~",
                "escaped *star* and struck",
            ),
            ("5 < 6 and [not a link]", "5 < 6 and [not a link]"),
        ];
        for (body, expected) in cases {
            assert_eq!(plain_text(body), expected, "{body:?}");
        }
    }

    #[test]
    fn query_terms_leave_out_operators_prohibitions_and_field_names() {
        let terms: Vec<(String, bool)> =
            query_terms("connector AND NOT setup -guide title:Café \"Two words\" conn* !x")
                .into_iter()
                .map(|term| (term.text, term.prefix))
                .collect();
        let expected = [
            ("connector", false),
            ("cafe", false),
            ("two", false),
            ("words", false),
            ("conn", true),
        ];
        assert_eq!(
            terms,
            expected.map(|(text, prefix)| (text.to_owned(), prefix))
        );
    }

    #[test]
    fn snippets_start_and_end_between_words_around_the_first_hit() {
        let filler = "lorem ipsum dolor sit amet ".repeat(20);
        let body = format!("# Heading\n\n{filler}the bucket holds *café* notes. {filler}");
        let found = snippet(&body, "cafe");
        assert!(found.starts_with('…') && found.ends_with('…'), "{found}");
        let text = found.trim_matches('…');
        assert!(text.starts_with(['l', 'i', 'd', 's', 'a']), "{found}");
        assert!(
            ["lorem", "ipsum", "dolor", "sit", "amet"]
                .iter()
                .any(|word| text.ends_with(word)),
            "{found}"
        );
        assert!(text.contains("the bucket holds café notes."), "{found}");
        assert!(!found.contains('#') && !found.contains('*'), "{found}");
        assert!(text.chars().count() <= SNIPPET_CHARS);

        // No hit: from the start, without the heading's `#`.
        let found = snippet(&body, "absent");
        assert!(found.starts_with("Heading lorem ipsum"), "{found}");
        // A short body comes whole, without ellipses.
        assert_eq!(snippet("## Short *note*", "note"), "Short note");
        // A hit near the end still fills the window.
        let found = snippet(&format!("{filler}final word"), "final");
        assert!(found.ends_with("final word"), "{found}");
        assert!(found.trim_start_matches('…').chars().count() > SNIPPET_CHARS - 10);
        // A prohibited term is not a hit; a prefix is.
        let body = format!("{filler}setup here {filler}connector there");
        assert!(snippet(&body, "connector -setup").contains("connector there"));
        assert!(snippet(&body, "conn*").contains("connector there"));
    }

    #[test]
    fn highlights_mark_every_matched_word_by_its_stem() {
        let found = highlighted(
            "The *Reports* report reporting; a record. Conn connectors",
            "report conn*",
        );
        assert_eq!(
            found.text,
            "The Reports report reporting; a record. Conn connectors"
        );
        assert_eq!(
            found.marked(),
            ["Reports", "report", "reporting", "Conn", "connectors"]
        );
        // After a cut, the ranges count the leading ellipsis.
        let filler = "lorem ipsum dolor sit amet ".repeat(20);
        let found = highlighted(&format!("{filler}the flows {filler}"), "flow");
        let [start, end] = found.highlights[0];
        assert!(found.text.starts_with('…'));
        assert_eq!(&found.text[start..end], "flows");
        assert_eq!(found.highlights.len(), 1);
    }

    #[test]
    fn a_word_longer_than_the_window_is_cut_at_a_character_boundary() {
        let body = format!("start {} end", "é".repeat(400));
        let found = snippet(&body, "end");
        assert!(found.ends_with("end"), "{found}");
        // The window ends before the long word rather than inside it...
        assert_eq!(snippet(&body, "start"), "start…");
        // ...unless the long word is where the snippet starts.
        let found = snippet(&"é".repeat(400), "");
        assert_eq!(found, format!("{}…", "é".repeat(SNIPPET_CHARS)));
    }

    /// Text of words (some accented, some with markup) separated by spaces and newlines.
    fn body() -> impl Strategy<Value = String> {
        let word = prop_oneof![
            Just("connector".to_owned()),
            Just("Café".to_owned()),
            Just("**bold**".to_owned()),
            Just("# ".to_owned()),
            Just("[link](http://x)".to_owned()),
            "[a-zé😀]{1,12}",
            "\\PC{1,8}",
        ];
        prop::collection::vec(
            (word, prop_oneof![Just(" "), Just("\n"), Just("  ")]),
            0..120,
        )
        .prop_map(|words| words.into_iter().map(|(w, s)| w + s).collect())
    }

    proptest! {
        #![proptest_config(crate::proptest_config::config())]

        #[test]
        fn any_text_gives_a_snippet_cut_between_words(body in body(), query in "\\PC{0,20}") {
            let found = snippet(&body, &query);
            let text = plain_text(&body);
            let hit = first_hit(&text, &query_terms(&query)).map_or(0, |range| range.start);
            let (start, end) = window(&text, hit);
            let core = &text[start..end];
            prop_assert_eq!(found.trim_start_matches('…').trim_end_matches('…'), core);
            prop_assert!(core.chars().count() <= SNIPPET_CHARS);
            prop_assert!(start <= hit);
            prop_assert!(start == 0 || text[..start].ends_with(' '), "{:?}", found);
            let first_word = core.split(' ').next().unwrap_or_default();
            if first_word.chars().count() < SNIPPET_CHARS {
                prop_assert!(end == text.len() || text[end..].starts_with(' '), "{:?}", found);
            }
        }

        #[test]
        fn highlights_are_ordered_word_ranges_of_the_snippet(body in body(), query in "\\PC{0,20}") {
            let found = highlighted(&body, &query);
            let mut last = 0;
            for [start, end] in &found.highlights {
                prop_assert!(last <= *start && start < end && *end <= found.text.len());
                prop_assert!(found.text.is_char_boundary(*start) && found.text.is_char_boundary(*end));
                last = *end;
            }
        }

        #[test]
        fn the_first_matched_word_is_in_the_snippet(
            body in body(),
            term in prop_oneof![Just("connector"), Just("cafe"), Just("bold"), Just("link")],
        ) {
            let text = plain_text(&body);
            let terms = query_terms(term);
            if let Some(hit) = first_hit(&text, &terms) {
                let found = snippet(&body, term);
                let word_start = text[..hit.start].rfind(' ').map_or(0, |s| s + 1);
                let word_end = text[hit.start..].find(' ').map_or(text.len(), |s| hit.start + s);
                if text[word_start..word_end].chars().count() <= SNIPPET_CHARS - LEAD_CHARS {
                    let word = &text[hit];
                    prop_assert!(found.contains(word), "{:?} lacks {:?}", found, word);
                }
            }
        }
    }
}
