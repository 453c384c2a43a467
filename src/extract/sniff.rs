//! The format of an object without extension, from its first bytes: magic numbers through
//! `infer` (PDF, Office and OpenDocument containers, EPUB, RTF, compression), then a look at
//! text (markup, JSON, e-mail headers, else plain text).
//!
//! Not a charset detector (see `decode.rs`) and not a guesser of programming languages: text
//! that is not markup, JSON or a message is plain text.

use super::Format;
use super::compress::Compression;
use super::format::by_content_type;
use super::zipped;

/// Bytes looked at for the text heuristics.
const TEXT_WINDOW: usize = 4096;

/// What the first bytes say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Sniffed {
    /// A format we extract.
    Format(Format),
    /// A compressed stream: decompress, then sniff again.
    Compressed(Compression),
    /// Binary content of a kind we do not extract; its media type when known.
    Binary(Option<String>),
}

/// Sniffs `bytes`.
pub(super) fn sniff(bytes: &[u8]) -> Sniffed {
    if let Some(compression) = Compression::sniff(bytes) {
        return Sniffed::Compressed(compression);
    }
    // infer guesses OOXML from the order of the zip entries; the entry names are certain.
    if bytes.starts_with(b"PK\x03\x04")
        && let Some(format) = zipped::container_format(bytes)
    {
        return Sniffed::Format(format);
    }
    if let Some(kind) = infer::get(bytes) {
        let mime = kind.mime_type();
        if let Some(format) = by_content_type(mime) {
            return Sniffed::Format(format);
        }
        if kind.matcher_type() != infer::MatcherType::Text {
            return Sniffed::Binary(Some(mime.to_owned()));
        }
    }
    text(bytes)
}

fn text(bytes: &[u8]) -> Sniffed {
    let window = &bytes[..bytes.len().min(TEXT_WINDOW)];
    let utf16 = window.starts_with(&[0xFF, 0xFE]) || window.starts_with(&[0xFE, 0xFF]);
    let controls = window
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0C | 0x1B))
        .count();
    if !utf16 && (window.contains(&0) || controls * 100 > window.len().max(1)) {
        return Sniffed::Binary(None);
    }
    let start = window.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(window);
    let trimmed = trim_start(start);
    let lower: Vec<u8> = trimmed
        .iter()
        .take(512)
        .map(u8::to_ascii_lowercase)
        .collect();
    let format = if lower.starts_with(b"<!doctype html")
        || lower.starts_with(b"<html")
        || (lower.starts_with(b"<?xml") && contains(&lower, b"<html"))
    {
        Format::Html
    } else if lower.starts_with(b"<?xml") || (lower.starts_with(b"<") && xml_like(&lower)) {
        Format::Xml
    } else if lower.starts_with(b"{\\rtf") {
        Format::Rtf
    } else if lower.starts_with(b"{") || lower.starts_with(b"[") {
        json_kind(bytes)
    } else if looks_like_email(start) {
        Format::Eml
    } else {
        Format::PlainText
    };
    Sniffed::Format(format)
}

fn trim_start(bytes: &[u8]) -> &[u8] {
    let skip = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    &bytes[skip..]
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// `<name` followed by a name character: an element, not prose starting with `<`.
fn xml_like(lower: &[u8]) -> bool {
    lower
        .get(1)
        .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'!')
        && contains(lower, b">")
}

/// JSON when the whole content parses as one or more values; NDJSON when each line does;
/// otherwise text that merely starts with a bracket (logs often do).
fn json_kind(bytes: &[u8]) -> Format {
    let values = serde_json::Deserializer::from_slice(bytes).into_iter::<serde::de::IgnoredAny>();
    let mut count = 0usize;
    for value in values {
        if value.is_err() {
            return Format::PlainText;
        }
        count += 1;
    }
    let lines = bytes
        .split(|&b| b == b'\n')
        .filter(|line| !trim_start(line).is_empty())
        .count();
    if count > 1 && count == lines {
        Format::Ndjson
    } else {
        Format::Json
    }
}

/// An RFC 5322 header block: the first line is a header field, and a message header that
/// every mail has (From, Received, Return-Path, Message-ID, MIME-Version) appears among the
/// first lines.
fn looks_like_email(bytes: &[u8]) -> bool {
    const FIELDS: [&[u8]; 6] = [
        b"from:",
        b"received:",
        b"return-path:",
        b"message-id:",
        b"mime-version:",
        b"delivered-to:",
    ];
    let mut lines = bytes.split(|&b| b == b'\n').take(40).peekable();
    let header = |line: &[u8]| {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return false;
        };
        colon > 0
            && line[..colon]
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
    };
    if !lines.peek().is_some_and(|first| header(first)) {
        return false;
    }
    lines.any(|line| {
        let lower: Vec<u8> = line.iter().take(16).map(u8::to_ascii_lowercase).collect();
        FIELDS.iter().any(|field| lower.starts_with(field))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::compress::tests::compress;
    use crate::extract::office::tests::{docx_bytes, odf_bytes, xlsx_bytes};

    #[test]
    fn sniff_table() {
        use Sniffed::{Binary, Compressed};
        let pdf = include_bytes!("../../tests/fixtures/sample.pdf");
        let odt = odf_bytes(
            "application/vnd.oasis.opendocument.text",
            "<office:text/>",
            "",
        );
        let email = b"Return-Path: <a@b.c>\r\nFrom: a@b.c\r\nSubject: hi\r\n\r\nbody";
        let raw = |bytes: &[u8]| bytes.to_vec();
        let format = Sniffed::Format;
        #[rustfmt::skip]
        let cases: Vec<(&str, Vec<u8>, Sniffed)> = vec![
            ("pdf", pdf.to_vec(), format(Format::Pdf)),
            ("docx", docx_bytes(&["x"], "t"), format(Format::Docx)),
            ("xlsx", xlsx_bytes("S", &["a"]), format(Format::Xlsx)),
            ("odt", odt, format(Format::Odt)),
            ("gzip", compress(Compression::Gzip, b"hello"), Compressed(Compression::Gzip)),
            ("png", raw(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Binary(Some("image/png".to_owned()))),
            ("nul bytes", raw(b"ab\0cd"), Binary(None)),
            ("rtf", raw(br"{\rtf1\ansi hello}"), format(Format::Rtf)),
            ("html", raw(b"  <!DOCTYPE html><p>x"), format(Format::Html)),
            ("xml", raw(b"<?xml version=\"1.0\"?><a/>"), format(Format::Xml)),
            ("bare xml", raw(b"<feed><e>1</e></feed>"), format(Format::Xml)),
            ("json", raw(b" {\"a\": [1, 2]}\n"), format(Format::Json)),
            ("ndjson", raw(b"{\"a\":1}\n{\"a\":2}\n"), format(Format::Ndjson)),
            ("bracketed log", raw(b"[2024-01-01] INFO started\n"), format(Format::PlainText)),
            ("email", raw(email), format(Format::Eml)),
            ("prose with a colon", raw(b"Note: this is just text\nwith lines\n"), format(Format::PlainText)),
            ("utf-16 text", raw(b"\xFF\xFEh\0i\0"), format(Format::PlainText)),
            ("empty", Vec::new(), format(Format::PlainText)),
        ];
        for (name, bytes, want) in cases {
            assert_eq!(sniff(&bytes), want, "{name}");
        }
    }
}
