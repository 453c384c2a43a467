//! Text out of the XML parts of office documents (OOXML and OpenDocument), driven by a small
//! table of element roles per format, on top of `quick-xml`.
//!
//! Elements are matched by local name (the prefix is ignored: `w:t` and `a:t` are both `t`),
//! which is what these vocabularies need for plain text. Not a layout engine: no numbering,
//! no fields, no reading order other than document order.
//!
//! Headings the vocabulary marks ([`Roles::heading`]) are written as Markdown heading lines
//! (`# ` to `###### ` before the paragraph's first text), so that passages cut from the text
//! know the headings above them.

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

use super::ExtractError;
use super::budget::Budget;
use super::decode::{self, Declared};
use super::text::TextSink;

/// Events between two clock checks.
const EVENTS_PER_CHECK: u32 = 4096;

/// What the elements of one vocabulary mean for the text.
#[derive(Debug)]
pub(super) struct Roles {
    /// Only character data inside these elements is text (OOXML's `t`); empty: all character
    /// data outside skipped elements is text (OpenDocument).
    pub(super) text: &'static [&'static str],
    /// Elements that end a line when they close (paragraphs, headings, rows).
    pub(super) lines: &'static [&'static str],
    /// Elements that stand for a line break (`w:br`, `text:line-break`).
    pub(super) breaks: &'static [&'static str],
    /// Elements that separate words (tabs, spaces, table cells).
    pub(super) spaces: &'static [&'static str],
    /// Elements whose whole content is left out (deleted text, field codes, annotations).
    pub(super) skip: &'static [&'static str],
    /// The heading level (1 to 6) that a start or empty element gives the paragraph it is in
    /// or opens (`w:pStyle w:val="Heading2"`, `text:h text:outline-level="2"`); `None` for
    /// every other element.
    pub(super) heading: fn(&BytesStart<'_>) -> Option<usize>,
}

/// What gives the heading level of an element, as [`Roles::heading`] does.
pub(super) type HeadingOf<'a> = dyn Fn(&BytesStart<'_>) -> Option<usize> + 'a;

/// [`Roles::heading`] of a vocabulary without headings.
pub(super) fn no_headings(_: &BytesStart<'_>) -> Option<usize> {
    None
}

/// The value of the attribute of `tag` whose local name is `local_name`.
pub(super) fn attribute(tag: &BytesStart<'_>, local_name: &str) -> Option<String> {
    tag.attributes().flatten().find_map(|a| {
        (local(a.key.as_ref()) == local_name)
            .then(|| {
                a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .ok()
                    .map(|v| v.into_owned())
            })
            .flatten()
    })
}

/// A heading's mark: its level's `#`s, then a space.
fn heading_mark(sink: &mut TextSink, level: usize) {
    sink.push_str(&"######"[..level.clamp(1, 6)]);
    sink.space();
}

fn local(name: &str) -> &str {
    name.rsplit_once(':').map_or(name, |(_, local)| local)
}

fn is(list: &[&str], tag: &BytesStart<'_>) -> bool {
    let name = tag.name();
    let local = local(name.as_ref());
    list.contains(&local)
}

/// Appends the text of one XML part to `sink`. `format` and `part` name the part in errors.
pub(super) fn part_text(
    xml: &[u8],
    roles: &Roles,
    sink: &mut TextSink,
    budget: &Budget,
    format: &'static str,
    part: &str,
) -> Result<(), ExtractError> {
    part_text_headed(xml, roles, &roles.heading, sink, budget, format, part)
}

/// [`part_text`] with the heading levels given by `heading` instead of [`Roles::heading`]
/// (a DOCX's, which its `styles.xml` defines).
pub(super) fn part_text_headed(
    xml: &[u8],
    roles: &Roles,
    heading_of: &HeadingOf<'_>,
    sink: &mut TextSink,
    budget: &Budget,
    format: &'static str,
    part: &str,
) -> Result<(), ExtractError> {
    let text = decode::decode_with_hint(xml, None, Declared::XmlDecl);
    let mut reader = Reader::from_str(&text);
    let malformed = |reader: &Reader<&[u8]>, message: String| ExtractError::Corrupt {
        format,
        message: format!(
            "malformed XML in {part} at byte {}: {message}",
            reader.buffer_position()
        ),
    };
    // Nesting of text elements we are inside, and of the skipped element we are inside.
    let mut in_text = 0usize;
    let mut skipping = 0usize;
    let mut events = 0u32;
    // The level of the paragraph's heading, written before its first text.
    let mut heading: Option<usize> = None;
    let text = |sink: &mut TextSink, heading: &mut Option<usize>, content: &str| {
        if let Some(level) = heading.take_if(|_| !content.trim().is_empty()) {
            heading_mark(sink, level);
        }
        sink.push_str(content);
    };
    loop {
        events += 1;
        if events.is_multiple_of(EVENTS_PER_CHECK) {
            budget.check_time()?;
        }
        let event = reader
            .read_event()
            .map_err(|e| malformed(&reader, e.to_string()))?;
        match event {
            Event::Start(tag) => {
                if skipping > 0 || is(roles.skip, &tag) {
                    skipping += 1;
                    continue;
                }
                if let Some(level) = heading_of(&tag) {
                    heading = Some(level);
                }
                if is(roles.text, &tag) {
                    in_text += 1;
                } else if is(roles.spaces, &tag) {
                    sink.space();
                }
            }
            Event::End(end) => {
                let name = end.name();
                let name = local(name.as_ref());
                if skipping > 0 {
                    skipping -= 1;
                } else if roles.text.contains(&name) {
                    in_text = in_text.saturating_sub(1);
                } else if roles.lines.contains(&name) {
                    heading = None;
                    sink.line();
                } else if roles.spaces.contains(&name) {
                    sink.space();
                }
            }
            Event::Empty(tag) if skipping == 0 => {
                if let Some(level) = heading_of(&tag) {
                    heading = Some(level);
                } else if is(roles.breaks, &tag) || is(roles.lines, &tag) {
                    sink.line();
                } else if is(roles.spaces, &tag) {
                    sink.space();
                }
            }
            Event::Text(content) if skipping == 0 && (in_text > 0 || roles.text.is_empty()) => {
                text(sink, &mut heading, &content);
            }
            Event::CData(content) if skipping == 0 && (in_text > 0 || roles.text.is_empty()) => {
                text(sink, &mut heading, &content);
            }
            Event::GeneralRef(reference)
                if skipping == 0 && (in_text > 0 || roles.text.is_empty()) =>
            {
                match reference.resolve_char_ref() {
                    Ok(Some(c)) => text(sink, &mut heading, c.encode_utf8(&mut [0; 4])),
                    Ok(None) => {
                        if let Some(replacement) = resolve_predefined_entity(&reference) {
                            text(sink, &mut heading, replacement);
                        }
                    }
                    Err(e) => return Err(malformed(&reader, e.to_string())),
                }
            }
            Event::Eof => return Ok(()),
            _ => {}
        }
    }
}

/// The text of the first element named `local_name` (e.g. `title` for Dublin Core's
/// `dc:title` in `docProps/core.xml` or `meta.xml`), trimmed; `None` if absent, empty or the
/// XML is broken (a title is a nicety, never a reason to fail).
pub(super) fn first_text(xml: &[u8], local_name: &str) -> Option<String> {
    let text = decode::decode_with_hint(xml, None, Declared::XmlDecl);
    let mut reader = Reader::from_str(&text);
    let mut inside = false;
    let mut found = String::new();
    loop {
        match reader.read_event().ok()? {
            Event::Start(tag) if local(tag.name().as_ref()) == local_name => {
                inside = true;
            }
            Event::Text(content) if inside => found.push_str(&content),
            Event::GeneralRef(reference) if inside => {
                if let Ok(Some(c)) = reference.resolve_char_ref() {
                    found.push(c);
                } else if let Some(replacement) = resolve_predefined_entity(&reference) {
                    found.push_str(replacement);
                }
            }
            Event::End(end) if inside && local(end.name().as_ref()) == local_name => {
                let title = found.split_whitespace().collect::<Vec<_>>().join(" ");
                return (!title.is_empty()).then_some(title);
            }
            Event::Eof => return None,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLES: Roles = Roles {
        text: &["t"],
        lines: &["p"],
        breaks: &["br"],
        spaces: &["tab"],
        skip: &["del"],
        heading: no_headings,
    };

    fn run(xml: &str, roles: &Roles) -> Result<String, ExtractError> {
        let mut sink = TextSink::default();
        part_text(
            xml.as_bytes(),
            roles,
            &mut sink,
            &Budget::unlimited(),
            "TEST",
            "part.xml",
        )?;
        Ok(sink.finish())
    }

    #[test]
    fn roles_shape_the_text() {
        let xml = "<w:doc xmlns:w=\"u\"><w:p><w:r><w:t>Hel</w:t></w:r><w:r><w:t>lo</w:t></w:r>\
                   <w:tab/><w:t xml:space=\"preserve\">wor &amp; ld</w:t><w:br/><w:t>next</w:t></w:p>\
                   <w:p><w:del><w:t>gone</w:t></w:del><w:instr>not text</w:instr><w:t>&#233;t&#xE9;</w:t></w:p></w:doc>";
        assert_eq!(
            run(xml, &ROLES).unwrap(),
            "Hello wor & ld\nnext\n\u{e9}t\u{e9}"
        );
        let all_text = Roles { text: &[], ..ROLES };
        assert_eq!(
            run("<a><p>one <b>two</b></p><p>three</p></a>", &all_text).unwrap(),
            "one two\nthree"
        );
    }

    #[test]
    fn malformed_xml_names_the_part() {
        let err = run("<w:doc><w:p><w:t>x</w:p></w:doc>", &ROLES).unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with("corrupt TEST: malformed XML in part.xml at byte"),
            "{message}"
        );
    }

    #[test]
    fn first_text_finds_dublin_core_titles() {
        let core = b"<cp:coreProperties xmlns:dc=\"d\"><dc:creator>Ann</dc:creator>\
                     <dc:title>  Pelican   &amp; Co </dc:title></cp:coreProperties>";
        assert_eq!(first_text(core, "title").as_deref(), Some("Pelican & Co"));
        assert_eq!(first_text(b"<a><title/></a>", "title"), None);
        assert_eq!(first_text(b"<a><title>x", "title"), None);
    }
}
