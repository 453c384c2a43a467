//! XML to searchable text, with `quick-xml`: element text, CDATA and attribute values (data-
//! oriented XML often keeps its content in attributes, e.g. `<item name="Widget" sku="W-1"/>`).
//!
//! Every tag boundary separates words, since XML has no notion of inline markup. Not indexed:
//! element and attribute names, namespace declarations (`xmlns`, `xmlns:*`) and `xsi:*`
//! attributes (URIs, not content), comments, processing instructions and the DOCTYPE.
//! Entities declared in a DTD are never expanded (no entity-expansion bombs); such references
//! are kept literally as `&name;`.

use quick_xml::XmlVersion;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

use super::text::TextSink;
use super::{ExtractError, Extracted};

/// Extracts text from well-formed XML; anything else is an [`ExtractError::Xml`].
pub(super) fn extract(text: &str) -> Result<Extracted, ExtractError> {
    let mut reader = Reader::from_str(text);
    let mut sink = TextSink::with_capacity(text.len() / 2);
    let mut depth: usize = 0;
    let mut saw_element = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| error_at(text, reader.error_position(), e.to_string()))?;
        match event {
            Event::Start(tag) => {
                depth += 1;
                saw_element = true;
                attributes(&tag, &mut sink)
                    .map_err(|message| error_at(text, reader.buffer_position(), message))?;
                sink.space();
            }
            Event::Empty(tag) => {
                saw_element = true;
                attributes(&tag, &mut sink)
                    .map_err(|message| error_at(text, reader.buffer_position(), message))?;
                sink.space();
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                sink.space();
            }
            Event::Text(content) => sink.push_str(&content),
            Event::CData(content) => sink.push_str(&content),
            Event::GeneralRef(reference) => match reference.resolve_char_ref() {
                Ok(Some(c)) => sink.push_char(c),
                Ok(None) => match resolve_predefined_entity(&reference) {
                    Some(replacement) => sink.push_str(replacement),
                    None => {
                        sink.push_str("&");
                        sink.push_str(&reference);
                        sink.push_str(";");
                    }
                },
                Err(e) => return Err(error_at(text, reader.buffer_position(), e.to_string())),
            },
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
            Event::Eof => break,
        }
    }
    let end = text.len() as u64;
    if depth > 0 {
        let message = format!("unexpected end of document: {depth} element(s) not closed");
        return Err(error_at(text, end, message));
    }
    if !saw_element {
        return Err(error_at(text, end, "no root element".to_owned()));
    }
    Ok(Extracted {
        body: sink.finish(),
        title: None,
    })
}

/// Appends the values of a tag's content-bearing attributes.
fn attributes(tag: &BytesStart<'_>, sink: &mut TextSink) -> Result<(), String> {
    for attribute in tag.attributes() {
        let attribute = attribute.map_err(|e| format!("bad attribute: {e}"))?;
        let key: &str = attribute.key.as_ref();
        if key == "xmlns" || key.starts_with("xmlns:") || key.starts_with("xsi:") {
            continue;
        }
        // Unknown (DTD-declared) entities make normalisation fail; the raw value still reads well.
        let value = attribute
            .normalized_value(XmlVersion::Implicit1_0)
            .unwrap_or_else(|_| attribute.value.clone());
        sink.space();
        sink.push_str(&value);
        sink.space();
    }
    Ok(())
}

/// An error at a byte offset, with a 1-based line and column (in characters).
fn error_at(text: &str, offset: u64, message: String) -> ExtractError {
    let offset = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(text.len());
    let before = &text.as_bytes()[..offset];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = before[line_start..]
        .iter()
        .filter(|&&b| b & 0xC0 != 0x80)
        .count()
        + 1;
    ExtractError::Xml {
        line,
        column,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_table() {
        let cases: &[(&str, &str)] = &[
            ("<a>hello</a>", "hello"),
            ("<a><b>one</b><b>two</b></a>", "one two"),
            ("<a>  lots \n\n of   space </a>", "lots of space"),
            ("<?xml version=\"1.0\"?><!-- c --><?pi data?><a>x</a>", "x"),
            (
                "<a>&lt;&gt;&amp;&quot;&apos; &#233;&#xE9; caf&#x00E9;</a>",
                "<>&\"' \u{e9}\u{e9} caf\u{e9}",
            ),
            ("<a><![CDATA[<not> &markup;]]></a>", "<not> &markup;"),
            (
                "<item name=\"Widget &amp; Co\" sku='W-1'/>",
                "Widget & Co W-1",
            ),
            (
                "<r xmlns=\"urn:x\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
                 xsi:schemaLocation=\"urn:x x.xsd\" id=\"7\">t</r>",
                "7 t",
            ),
            (
                "<!DOCTYPE r [<!ENTITY e \"boom\">]><r>a &e; b</r>",
                "a &e; b",
            ),
            ("<ns:a xmlns:ns=\"u\"><ns:b>q</ns:b></ns:a>", "q"),
            ("<a/>", ""),
            ("<a>1</a><b>2</b>", "1 2"),
        ];
        for (input, want) in cases {
            let got = extract(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(got.body, *want, "{input}");
            assert_eq!(got.title, None);
        }
    }

    #[test]
    fn malformed_xml_is_an_error_with_position() {
        let cases: &[(&str, usize, usize, &str)] = &[
            ("<a>\n  <b></c>\n</a>", 2, 6, "ill-formed document"),
            ("<a><b></a>", 1, 7, "ill-formed document"),
            ("<a>text", 1, 8, "not closed"),
            ("<a>\n<b>", 2, 4, "2 element(s) not closed"),
            ("</a>", 1, 1, "ill-formed document"),
            ("<a x=1/>", 1, 9, "bad attribute"),
            ("<a x=\"1\" x=\"2\"/>", 1, 17, "bad attribute"),
            ("<a>&#0;</a>", 1, 8, ""),
            ("<a><!-- unterminated</a>", 1, 4, "syntax error"),
            ("just text", 1, 10, "no root element"),
            ("", 1, 1, "no root element"),
            ("<a>\u{e9}\u{e9}</b>", 1, 6, "ill-formed document"),
        ];
        for (input, line, column, needle) in cases {
            let err = extract(input).unwrap_err();
            let ExtractError::Xml {
                line: got_line,
                column: got_column,
                ref message,
            } = err
            else {
                panic!("{input}: not an XML error: {err}");
            };
            assert_eq!((got_line, got_column), (*line, *column), "{input}: {err}");
            assert!(message.contains(needle), "{input}: {err}");
        }
    }

    #[test]
    fn xml_bytes_are_decoded() {
        use super::super::{Format, extract};
        let cases: &[(&[u8], &str)] = &[
            (
                b"<?xml version=\"1.0\" encoding=\"ISO-8859-2\"?><a>\xB1</a>",
                "\u{105}",
            ),
            (b"<a>caf\xE9</a>", "caf\u{e9}"),
            (b"\xFE\xFF\0<\0a\0>\0\xE9\0<\0/\0a\0>", "\u{e9}"),
        ];
        for (input, want) in cases {
            assert_eq!(
                extract(Format::Xml, input).unwrap().body,
                *want,
                "{input:?}"
            );
        }
    }
}
