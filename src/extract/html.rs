//! HTML to searchable text, on top of the `html5gum` tokenizer (WHATWG tokenization, so tag soup,
//! stray `<`, unclosed tags and every named or numeric character reference behave as in a
//! browser).
//!
//! Not a tree builder: there is no DOM and no mis-nesting repair, which text extraction does not
//! need. What is dropped: `<script>`, `<style>`, `<noscript>`, `<template>`, `<iframe>`,
//! `<noembed>`, `<noframes>` contents, comments, doctype and all attributes. The first non-empty
//! `<title>` becomes [`Extracted::title`] and is not repeated in the body.
//!
//! Headings `<h1>` to `<h6>` become Markdown heading lines (`# ` to `###### ` before their
//! text), so that passages cut from the text know the headings above them; an empty heading
//! writes nothing. Snippets strip the marks again, and search tokenizers never index `#`.

use std::convert::Infallible;

use html5gum::{Emitter, Error, State, Tokenizer};

use super::Extracted;
use super::text::TextSink;

/// Extracts visible text and the title from decoded HTML. Never fails: any input is some HTML.
pub(super) fn extract(html: &str) -> Extracted {
    let mut collector = Collector::new(html.len());
    let emitter = TextEmitter {
        collector: &mut collector,
        tag: Vec::new(),
        tag_is_end: false,
        last_start_tag: Vec::new(),
    };
    // Tokens are uninhabited, so a single `next` runs the tokenizer to the end of the input.
    if let Some(Ok(never) | Err(never)) = Tokenizer::new_with_emitter(html, emitter).next() {
        match never {}
    }
    collector.finish()
}

/// A minimal emitter: text goes straight to the [`Collector`]; attributes, comments and doctypes
/// are never buffered, which is where html5gum's general-purpose emitters spend their time.
///
/// It also chooses tokenizer states: like `html5gum::naive_next_state`, except that `<title>` is
/// tokenized as ordinary markup so that an unclosed `<title>` cannot swallow the whole document.
struct TextEmitter<'c> {
    collector: &'c mut Collector,
    /// Name of the tag being read (the tokenizer lowercases it).
    tag: Vec<u8>,
    tag_is_end: bool,
    /// Needed by the tokenizer to find the end of raw-text elements such as `<script>`.
    last_start_tag: Vec<u8>,
}

impl Emitter for TextEmitter<'_> {
    type Token = Infallible;

    fn set_last_start_tag(&mut self, last_start_tag: Option<&[u8]>) {
        self.last_start_tag.clear();
        self.last_start_tag
            .extend_from_slice(last_start_tag.unwrap_or_default());
    }

    fn emit_eof(&mut self) {}

    fn emit_error(&mut self, _error: Error) {}

    fn should_emit_errors(&mut self) -> bool {
        false
    }

    fn pop_token(&mut self) -> Option<Infallible> {
        None
    }

    fn emit_string(&mut self, s: &[u8]) {
        self.collector.text(s);
    }

    fn init_start_tag(&mut self) {
        self.tag.clear();
        self.tag_is_end = false;
    }

    fn init_end_tag(&mut self) {
        self.tag.clear();
        self.tag_is_end = true;
    }

    fn init_comment(&mut self) {}

    fn emit_current_tag(&mut self) -> Option<State> {
        self.last_start_tag.clear();
        if self.tag_is_end {
            self.collector.end_tag(&self.tag);
            None
        } else {
            self.last_start_tag.extend_from_slice(&self.tag);
            self.collector.start_tag(&self.tag);
            state_after(&self.tag)
        }
    }

    fn emit_current_comment(&mut self) {}

    fn emit_current_doctype(&mut self) {}

    fn set_self_closing(&mut self) {}

    fn set_force_quirks(&mut self) {}

    fn push_tag_name(&mut self, s: &[u8]) {
        self.tag.extend_from_slice(s);
    }

    fn push_comment(&mut self, _s: &[u8]) {}

    fn push_doctype_name(&mut self, _s: &[u8]) {}

    fn init_doctype(&mut self) {}

    fn init_attribute(&mut self) {}

    fn push_attribute_name(&mut self, _s: &[u8]) {}

    fn push_attribute_value(&mut self, _s: &[u8]) {}

    fn set_doctype_public_identifier(&mut self, _value: &[u8]) {}

    fn set_doctype_system_identifier(&mut self, _value: &[u8]) {}

    fn push_doctype_public_identifier(&mut self, _s: &[u8]) {}

    fn push_doctype_system_identifier(&mut self, _s: &[u8]) {}

    fn current_is_appropriate_end_tag_token(&mut self) -> bool {
        self.tag_is_end && !self.last_start_tag.is_empty() && self.last_start_tag == self.tag
    }
}

/// What a tag does to the text flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// Renders inline: words on both sides may belong together (`<b>W</b>ord`).
    Inline,
    /// A table cell or form control: a space, not a line break.
    Cell,
    /// Anything else, unknown elements included: a line break, so adjacent blocks never glue.
    Block,
}

fn role(name: &[u8]) -> Role {
    match name {
        b"a" | b"abbr" | b"acronym" | b"b" | b"bdi" | b"bdo" | b"big" | b"cite" | b"code"
        | b"data" | b"del" | b"dfn" | b"em" | b"font" | b"i" | b"img" | b"ins" | b"kbd"
        | b"label" | b"mark" | b"nobr" | b"q" | b"rb" | b"rp" | b"rt" | b"rtc" | b"ruby" | b"s"
        | b"samp" | b"small" | b"span" | b"strike" | b"strong" | b"sub" | b"sup" | b"time"
        | b"tt" | b"u" | b"var" | b"wbr" | b"script" | b"style" | b"noscript" | b"template"
        | b"title" => Role::Inline,
        b"td" | b"th" | b"input" | b"button" | b"select" | b"option" | b"textarea" => Role::Cell,
        _ => Role::Block,
    }
}

/// The level of a heading element (`h1` to `h6`).
fn heading_level(name: &[u8]) -> Option<usize> {
    match name {
        [b'h', level @ b'1'..=b'6'] => Some(usize::from(level - b'0')),
        _ => None,
    }
}

/// Elements whose content is not visible text, as the end-tag name that closes them.
fn hidden_until(name: &[u8]) -> Option<&'static [u8]> {
    Some(match name {
        b"script" => b"script",
        b"style" => b"style",
        b"noscript" => b"noscript",
        b"iframe" => b"iframe",
        b"noembed" => b"noembed",
        b"noframes" => b"noframes",
        _ => return None,
    })
}

/// The tokenizer state that follows a start tag (HTML's raw-text elements).
fn state_after(name: &[u8]) -> Option<State> {
    match name {
        b"script" => Some(State::ScriptData),
        b"style" | b"xmp" | b"iframe" | b"noembed" | b"noframes" | b"noscript" => {
            Some(State::RawText)
        }
        b"textarea" => Some(State::RcData),
        b"plaintext" => Some(State::PlainText),
        _ => None,
    }
}

struct Collector {
    body: TextSink,
    title: TextSink,
    title_done: bool,
    in_title: bool,
    /// Inside a hidden raw-text element: the end tag that closes it.
    hidden: Option<&'static [u8]>,
    /// `<template>` nests and its content is ordinary markup, so it needs a depth.
    template_depth: usize,
    /// The level of a heading just opened whose mark is written before its first text.
    heading: Option<usize>,
}

impl Collector {
    fn new(input_len: usize) -> Self {
        Collector {
            body: TextSink::with_capacity(input_len / 3),
            title: TextSink::default(),
            title_done: false,
            in_title: false,
            hidden: None,
            template_depth: 0,
            heading: None,
        }
    }

    fn start_tag(&mut self, name: &[u8]) {
        if self.hidden.is_some() {
            return;
        }
        let role = role(name);
        if self.in_title && role != Role::Inline {
            // An unclosed <title>: the first block ends it.
            self.close_title();
        }
        if name == b"template" {
            self.template_depth = self.template_depth.saturating_add(1);
        } else if name == b"title" && !self.title_done && self.template_depth == 0 {
            self.in_title = true;
        }
        self.hidden = hidden_until(name);
        self.gap(role);
        if let Some(level) = heading_level(name) {
            self.heading = Some(level);
        }
    }

    fn end_tag(&mut self, name: &[u8]) {
        if let Some(until) = self.hidden {
            if until == name {
                self.hidden = None;
            }
            return;
        }
        match name {
            b"template" => self.template_depth = self.template_depth.saturating_sub(1),
            b"title" | b"head" if self.in_title => self.close_title(),
            _ => {}
        }
        self.gap(role(name));
    }

    fn close_title(&mut self) {
        self.in_title = false;
        self.title_done = !self.title.is_empty();
    }

    fn gap(&mut self, role: Role) {
        if role != Role::Inline {
            // A heading with no text before the next block writes no mark.
            self.heading = None;
        }
        match role {
            Role::Inline => {}
            Role::Cell => self.body.space(),
            Role::Block => self.body.line(),
        }
    }

    fn text(&mut self, value: &[u8]) {
        if self.hidden.is_some() || self.template_depth > 0 {
            return;
        }
        if self.in_title {
            self.title.push(value);
            return;
        }
        if let Some(level) = self.heading
            && !value.iter().all(u8::is_ascii_whitespace)
        {
            self.heading = None;
            self.body.push(&b"######"[..level]);
            self.body.space();
        }
        self.body.push(value);
    }

    fn finish(self) -> Extracted {
        let title = self.title.finish();
        Extracted {
            body: self.body.finish(),
            title: Some(title).filter(|t| !t.is_empty()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn html(input: &str) -> (String, Option<String>) {
        let got = extract(input);
        (got.body, got.title)
    }

    #[test]
    fn html_table() {
        let cases: &[(&str, &str, &str, Option<&str>)] = &[
            ("plain", "hello world", "hello world", None),
            (
                "title out of body",
                "<html><head><title> My  Page </title></head><body><p>Body</p></body></html>",
                "Body",
                Some("My Page"),
            ),
            (
                "script, style, noscript, template, comments dropped",
                "<p>a</p><script>var x = '<p>no</p>'; if (a < b) {}</script>\
                 <style>p { color: red }</style><noscript>enable js</noscript>\
                 <template><p>tpl <template>inner</template> still</p></template>\
                 <!-- secret --><p>b</p>",
                "a\nb",
                None,
            ),
            (
                "entities",
                "<p>caf&eacute; d&#233;j&#xE0; &amp; &lt;tag&gt; &quot;q&quot; &nbsp;x &copy</p>",
                "caf\u{e9} d\u{e9}j\u{e0} & <tag> \"q\" x \u{a9}",
                None,
            ),
            (
                "blocks separate words, inline does not",
                "<div>one</div><div>two</div><p>three<br>four</p><ul><li>five</li><li>six</li></ul>\
                 <h1>seven</h1><h2>eight</h2><b>ni</b>ne<span>ten</span>",
                "one\ntwo\nthree\nfour\nfive\nsix\n# seven\n## eight\nnineten",
                None,
            ),
            (
                "table cells separated by spaces, rows by lines",
                "<table><tr><td>a</td><td>b</td></tr><tr><th>c</th><td>d</td></tr></table>",
                "a b\nc d",
                None,
            ),
            (
                "whitespace collapsed",
                "  <p>\n\n  a \t\r\n b  </p>\n\n<p>   c</p>  ",
                "a b\nc",
                None,
            ),
            (
                "upper-case tags",
                "<HTML><TITLE>T</TITLE><BODY><P>x<SCRIPT>no()</SCRIPT>y</P></BODY></HTML>",
                "xy",
                Some("T"),
            ),
            (
                "unclosed tags",
                "<div><p>one<p>two<div>three",
                "one\ntwo\nthree",
                None,
            ),
            (
                "stray less-than",
                "<p>a < b and c<d</p>e",
                "a < b and c\ne",
                None,
            ),
            (
                "lone ampersand",
                "<p>AT&T & co &unknown; &#xZZ;</p>",
                "AT&T & co &unknown; &#xZZ;",
                None,
            ),
            (
                "unterminated tag at eof",
                "<p>text</p><a href=\"x",
                "text",
                None,
            ),
            ("unterminated comment", "<p>keep</p><!-- lost", "keep", None),
            (
                "unclosed script hides the rest",
                "<p>keep</p><script>lost",
                "keep",
                None,
            ),
            (
                "unclosed title ends at the first block",
                "<title>Broken<body><p>Body text</p>",
                "Body text",
                Some("Broken"),
            ),
            (
                "only the first title is the title",
                "<title>First</title><p>x</p><title>Second</title>",
                "x\nSecond",
                Some("First"),
            ),
            (
                "empty title is no title",
                "<title>  </title><p>x</p>",
                "x",
                None,
            ),
            (
                "attributes are not text",
                "<a href=\"http://x\" title=\"tip\">link</a><img alt=\"pic\" src=\"p.png\">",
                "link",
                None,
            ),
            (
                "textarea content kept",
                "<textarea><b>raw</b></textarea>",
                "<b>raw</b>",
                None,
            ),
            (
                "cdata outside foreign content is a comment",
                "<p>a<![CDATA[hidden]]>b</p>",
                "ab",
                None,
            ),
            ("doctype", "<!DOCTYPE html><p>x</p>", "x", None),
            (
                "headings become Markdown heading lines, empty ones nothing",
                "<h1>Guide</h1><p>intro</p><h3> <a href=\"#x\">Deep</a>  <i>er</i></h3>\
                 <h2></h2><p>after</p><H6>six</H6><h2><script>x</script>  </h2><h7>no</h7>",
                "# Guide\nintro\n### Deep er\nafter\n###### six\nno",
                None,
            ),
            (
                "a title is never a heading",
                "<title>T</title><h1>T</h1>",
                "# T",
                Some("T"),
            ),
            ("empty", "", "", None),
        ];
        for (name, input, body, title) in cases {
            let (got_body, got_title) = html(input);
            assert_eq!(got_body, *body, "{name}: body");
            assert_eq!(got_title.as_deref(), *title, "{name}: title");
        }
    }

    #[test]
    fn html_bytes_are_decoded() {
        let cases: &[(&[u8], &str)] = &[
            (b"<p>caf\xE9</p>", "caf\u{e9}"),
            ("<p>caf\u{e9}</p>".as_bytes(), "caf\u{e9}"),
            (b"\xFF\xFE<\0p\0>\0\xE9\0", "\u{e9}"),
            (
                b"<meta charset=\"windows-1251\"><p>\xCF\xF0\xE8</p>",
                "\u{41f}\u{440}\u{438}",
            ),
        ];
        for (input, want) in cases {
            let got = super::super::extract(super::super::Format::Html, input).unwrap();
            assert_eq!(got.body, *want, "{input:?}");
        }
    }
}
