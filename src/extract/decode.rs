//! Bytes to text for the extraction stage: byte-order marks, UTF-8 validation, charset labels
//! (from Content-Type or declared in the document) and the Windows-1252 fallback.
//!
//! Not a statistical charset detector: without a BOM, valid UTF-8 or a label, we assume
//! Windows-1252, which decodes every byte and is right for most legacy Western text.

use std::borrow::Cow;

use encoding_rs::{Encoding, REPLACEMENT, UTF_16BE, UTF_16LE, WINDOWS_1252};

/// Where a document may declare its own encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Declared {
    /// Nowhere: only BOM, UTF-8 validity and the Content-Type label count.
    Nowhere,
    /// `<meta charset=...>` or `<meta http-equiv=Content-Type content="...; charset=...">`.
    HtmlMeta,
    /// `<?xml ... encoding="..."?>`, plus BOM-less UTF-16 recognised by its `<?` pattern.
    XmlDecl,
}

/// How far into a document we look for a declaration; HTML's prescan uses the same bound.
const PRESCAN_LEN: usize = 1024;

/// Decodes `bytes`: BOM, else valid UTF-8, else the Content-Type label, else the document's own
/// declaration, else Windows-1252.
pub(super) fn decode_with_hint<'a>(
    bytes: &'a [u8],
    header: Option<&'static Encoding>,
    declared: Declared,
) -> Cow<'a, str> {
    if let Some((encoding, bom_len)) = Encoding::for_bom(bytes) {
        let rest = bytes.get(bom_len..).unwrap_or_default();
        return encoding.decode_without_bom_handling(rest).0;
    }
    // BOM-less UTF-16 XML is valid UTF-8 (NULs are legal), so it must be caught first.
    if declared == Declared::XmlDecl {
        if bytes.starts_with(b"<\0?\0") {
            return UTF_16LE.decode_without_bom_handling(bytes).0;
        }
        if bytes.starts_with(b"\0<\0?") {
            return UTF_16BE.decode_without_bom_handling(bytes).0;
        }
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Cow::Borrowed(text);
    }
    let from_document = || {
        match declared {
            Declared::Nowhere => None,
            Declared::HtmlMeta => label_after(prefix(bytes), b"charset"),
            Declared::XmlDecl if bytes.starts_with(b"<?xml") => {
                label_after(prefix(bytes), b"encoding")
            }
            Declared::XmlDecl => None,
        }
        // A label read as ASCII cannot truthfully say UTF-16 (HTML treats it as UTF-8).
        .filter(|e| *e != UTF_16LE && *e != UTF_16BE)
    };
    let encoding = header
        .or_else(from_document)
        .filter(|e| *e != REPLACEMENT)
        .unwrap_or(WINDOWS_1252);
    encoding.decode_without_bom_handling(bytes).0
}

/// The encoding named by the `charset` parameter of a Content-Type, if known to encoding_rs.
pub(super) fn charset_from_content_type(content_type: &str) -> Option<&'static Encoding> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("charset") {
            return None;
        }
        let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
        Encoding::for_label(value.as_bytes())
    })
}

fn prefix(bytes: &[u8]) -> &[u8] {
    &bytes[..bytes.len().min(PRESCAN_LEN)]
}

/// Finds `key` (ASCII case-insensitively) followed by `=` and a possibly quoted label, and
/// returns the first such label that names a known encoding.
fn label_after(haystack: &[u8], key: &[u8]) -> Option<&'static Encoding> {
    let mut from = 0;
    while let Some(found) = find_ignore_case(haystack.get(from..)?, key) {
        let mut i = from + found + key.len();
        from = i;
        i = skip_spaces(haystack, i);
        if haystack.get(i) != Some(&b'=') {
            continue;
        }
        i = skip_spaces(haystack, i + 1);
        if matches!(haystack.get(i), Some(b'"' | b'\'')) {
            i += 1;
        }
        let rest = haystack.get(i..).unwrap_or_default();
        let end = rest
            .iter()
            .position(|b| {
                matches!(b, b'"' | b'\'' | b';' | b'>' | b'/' | b'?') || b.is_ascii_whitespace()
            })
            .unwrap_or(rest.len());
        if let Some(encoding) = Encoding::for_label(&rest[..end]) {
            return Some(encoding);
        }
    }
    None
}

fn skip_spaces(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

fn find_ignore_case(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::decode_text;

    #[test]
    fn decode_text_table() {
        let cases: &[(&str, &[u8], &str)] = &[
            ("empty", b"", ""),
            ("ascii", b"hello", "hello"),
            (
                "utf-8",
                "caf\u{e9} \u{20ac} \u{6771}".as_bytes(),
                "caf\u{e9} \u{20ac} \u{6771}",
            ),
            ("utf-8 bom stripped", b"\xEF\xBB\xBFabc", "abc"),
            ("utf-8 bom only", b"\xEF\xBB\xBF", ""),
            ("utf-16le bom", b"\xFF\xFEa\x00\xE9\x00", "a\u{e9}"),
            ("utf-16be bom", b"\xFE\xFF\x00a\x00\xE9", "a\u{e9}"),
            (
                "utf-16le surrogate pair",
                b"\xFF\xFE\x3D\xD8\x00\xDE",
                "\u{1F600}",
            ),
            ("utf-16le odd length", b"\xFF\xFEa\x00b", "a\u{FFFD}"),
            ("windows-1252 e-acute", b"caf\xE9", "caf\u{e9}"),
            ("windows-1252 euro", b"\x80 5", "\u{20ac} 5"),
            ("windows-1252 quotes", b"\x93q\x94", "\u{201c}q\u{201d}"),
            ("truncated utf-8 falls back", b"ab\xC3", "ab\u{c3}"),
        ];
        for (name, input, want) in cases {
            assert_eq!(decode_text(input), *want, "{name}");
        }
    }

    #[test]
    fn valid_utf8_is_borrowed() {
        assert!(matches!(decode_text(b"plain"), Cow::Borrowed("plain")));
    }

    #[test]
    fn charset_from_content_type_table() {
        let cases: &[(&str, Option<&'static Encoding>)] = &[
            ("text/plain", None),
            ("text/plain; charset=utf-8", Some(encoding_rs::UTF_8)),
            (
                "text/html;Charset=\"ISO-8859-2\"",
                Some(encoding_rs::ISO_8859_2),
            ),
            (
                "text/plain; format=flowed; charset=latin1",
                Some(WINDOWS_1252),
            ),
            ("text/plain; charset=no-such-thing", None),
        ];
        for (ct, want) in cases {
            assert_eq!(charset_from_content_type(ct), *want, "{ct}");
        }
    }

    #[test]
    fn declared_encodings_apply_only_to_non_utf8() {
        let html = b"<meta http-equiv=\"Content-Type\" content=\"text/html; charset=windows-1251\">\xCF\xF0\xE8";
        assert!(
            decode_with_hint(html, None, Declared::HtmlMeta).ends_with("\u{41f}\u{440}\u{438}")
        );
        let meta = b"<meta charset='koi8-r'>\xD0";
        assert!(decode_with_hint(meta, None, Declared::HtmlMeta).ends_with('\u{43f}'));
        let xml = b"<?xml version=\"1.0\" encoding=\"ISO-8859-2\"?><a>\xB1</a>";
        assert!(decode_with_hint(xml, None, Declared::XmlDecl).contains('\u{105}'));
        let utf16_label = b"<meta charset=utf-16>\xE9";
        assert!(decode_with_hint(utf16_label, None, Declared::HtmlMeta).ends_with('\u{e9}'));
        let bomless_utf16 = b"<\0?\0x\0m\0l\0?\0>\0<\0a\0/\0>\0";
        assert_eq!(
            decode_with_hint(bomless_utf16, None, Declared::XmlDecl),
            "<?xml?><a/>"
        );
    }
}
