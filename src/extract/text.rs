//! Text helpers shared by the extractors: the whitespace-collapsing sink used by the markup
//! formats (HTML, XML, JSON) and Markdown title detection.
//!
//! Not a Markdown renderer: Markdown bodies are indexed verbatim; only a title is looked for.

/// The separator owed before the next piece of text; the larger one wins.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
enum Gap {
    #[default]
    None,
    Space,
    Line,
}

/// Accumulates text, collapsing whitespace runs (including U+00A0) to one separator and never
/// starting or ending with one.
///
/// Works on UTF-8 bytes because every whitespace byte it looks for is ASCII (or the whole
/// two-byte NBSP), so multi-byte characters are never split.
#[derive(Debug, Default)]
pub(super) struct TextSink {
    out: Vec<u8>,
    gap: Gap,
}

impl TextSink {
    pub(super) fn with_capacity(capacity: usize) -> Self {
        TextSink {
            out: Vec::with_capacity(capacity),
            gap: Gap::None,
        }
    }

    /// Words on either side must not glue together.
    pub(super) fn space(&mut self) {
        self.gap = self.gap.max(Gap::Space);
    }

    /// A block boundary: the next text starts on a new line.
    pub(super) fn line(&mut self) {
        self.gap = Gap::Line;
    }

    pub(super) fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// Appends UTF-8 text, collapsing whitespace.
    pub(super) fn push(&mut self, text: &[u8]) {
        let n = text.len();
        let mut i = 0;
        while i < n {
            let start = i;
            while i < n && space_len(text, i) == 0 {
                i += 1;
            }
            if i > start {
                self.flush_gap();
                self.out.extend_from_slice(&text[start..i]);
            }
            while i < n {
                let len = space_len(text, i);
                if len == 0 {
                    break;
                }
                i += len;
                self.space();
            }
        }
    }

    pub(super) fn push_str(&mut self, text: &str) {
        self.push(text.as_bytes());
    }

    pub(super) fn push_char(&mut self, c: char) {
        self.push(c.encode_utf8(&mut [0; 4]).as_bytes());
    }

    fn flush_gap(&mut self) {
        if !self.out.is_empty() {
            match self.gap {
                Gap::None => {}
                Gap::Space => self.out.push(b' '),
                Gap::Line => self.out.push(b'\n'),
            }
        }
        self.gap = Gap::None;
    }

    /// The text; invalid UTF-8 (only possible if a caller pushed it) becomes U+FFFD.
    pub(super) fn finish(self) -> String {
        String::from_utf8(self.out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

/// Length of the whitespace sequence starting at `i`, or 0.
#[inline(always)]
fn space_len(text: &[u8], i: usize) -> usize {
    match text[i] {
        b' ' | b'\t' | b'\n' | b'\r' | 0x0B | 0x0C => 1,
        0xC2 if text.get(i + 1) == Some(&0xA0) => 2,
        _ => 0,
    }
}

/// The title of a Markdown document: `title:` in leading YAML front matter, else the first
/// level-1 heading (`# Title` or `Title` underlined with `===`) outside fenced code.
pub(super) fn markdown_title(text: &str) -> Option<String> {
    let mut lines = text.lines().peekable();
    if lines.peek().is_some_and(|l| l.trim_end() == "---") {
        lines.next();
        for line in lines.by_ref() {
            let line = line.trim_end();
            if line == "---" || line == "..." {
                break;
            }
            if let Some(value) = line.strip_prefix("title:") {
                let value = value.trim().trim_matches(|c| c == '"' || c == '\'').trim();
                if !value.is_empty() {
                    return Some(value.to_owned());
                }
            }
        }
    }
    let mut fence: Option<&str> = None;
    let mut previous: Option<&str> = None;
    for line in lines {
        let indented = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if indented < 4 {
            if let Some(open) = fence {
                if trimmed.starts_with(open) {
                    fence = None;
                }
                previous = None;
                continue;
            }
            if trimmed.starts_with("```") {
                fence = Some("```");
                continue;
            }
            if trimmed.starts_with("~~~") {
                fence = Some("~~~");
                continue;
            }
            if let Some(rest) = trimmed.strip_prefix('#')
                && (rest.is_empty() || rest.starts_with([' ', '\t']))
            {
                let title = rest.trim().trim_end_matches('#').trim_end();
                if !title.is_empty() {
                    return Some(title.to_owned());
                }
            }
            if !trimmed.is_empty()
                && trimmed.bytes().all(|b| b == b'=')
                && let Some(above) = previous
            {
                return Some(above.to_owned());
            }
        }
        previous = Some(trimmed).filter(|t| !t.is_empty() && indented < 4);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sink_collapses_whitespace() {
        let cases: &[(&[&str], &str)] = &[
            (&["  a  b  "], "a b"),
            (&["a\n\n\tb"], "a b"),
            (&["a", "b"], "ab"),
            (&["a ", " b"], "a b"),
            (&["a\u{a0}\u{a0}b"], "a b"),
            (&["caf\u{e9}\u{a0}"], "caf\u{e9}"),
            (&["\u{c2}x"], "\u{c2}x"),
            (&["   "], ""),
        ];
        for (parts, want) in cases {
            let mut sink = TextSink::default();
            for part in *parts {
                sink.push_str(part);
            }
            assert_eq!(sink.finish(), *want, "{parts:?}");
        }
        let mut sink = TextSink::default();
        sink.line();
        sink.push_str("a");
        sink.space();
        sink.line();
        sink.space();
        sink.push_str("b");
        sink.space();
        assert_eq!(sink.finish(), "a\nb");
    }

    #[test]
    fn markdown_title_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("# Hello\ntext", Some("Hello")),
            ("intro\n\n## Sub\n# Main #\n", Some("Main")),
            ("#hashtag\n", None),
            ("```sh\n# not a title\n```\n# Real\n", Some("Real")),
            ("    # indented code\n", None),
            ("Setext Title\n============\n", Some("Setext Title")),
            (
                "---\ntitle: \"From front matter\"\n---\n# Heading\n",
                Some("From front matter"),
            ),
            ("---\nauthor: x\n---\n# Heading\n", Some("Heading")),
            ("no title at all", None),
            ("", None),
        ];
        for (input, want) in cases {
            assert_eq!(markdown_title(input).as_deref(), *want, "{input:?}");
        }
    }
}
