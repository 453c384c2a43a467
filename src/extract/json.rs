//! JSON and NDJSON to searchable text: every object key and every scalar value, in document
//! order, with escapes decoded. Keys are followed by a space and values by a newline, so
//! `{"name":"Ann","tags":["a","b"]}` becomes `name Ann\ntags a\nb`.
//!
//! Streams through serde's visitor API instead of building a `serde_json::Value`, so memory
//! stays proportional to the output. Not a schema-aware flattener: paths are not recorded.
//! `null` and empty strings produce no text.

use std::fmt::{self, Write as _};

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Unexpected, Visitor};

use super::{ExtractError, Extracted};

/// Extracts keys and scalar values.
///
/// `Json` is one value, or several concatenated top-level values (`{...}{...}`, as log shippers
/// such as Kinesis Firehose write under a `.json` name). `Ndjson` is one value per line; blank
/// lines are skipped and error lines count in the whole input. serde_json's nesting limit (128)
/// keeps hostile input from exhausting the stack.
pub(super) fn extract(text: &str, ndjson: bool) -> Result<Extracted, ExtractError> {
    let mut out = Writer {
        out: String::with_capacity(text.len() / 2),
        gap: Gap::None,
    };
    if ndjson {
        for (index, line) in text.split('\n').enumerate() {
            if !line.trim().is_empty() {
                out.gap = Gap::Line;
                parse_one(line, &mut out).map_err(|e| json_error(e, index))?;
            }
        }
    } else {
        let mut de = serde_json::Deserializer::from_str(text);
        Node::value(&mut out)
            .deserialize(&mut de)
            .map_err(|e| json_error(e, 0))?;
        if de.end().is_err() {
            concatenated_tail(text, &mut out)?;
        }
    }
    Ok(Extracted {
        body: out.out,
        title: None,
    })
}

/// Parses exactly one value (surrounded by optional whitespace).
fn parse_one(text: &str, out: &mut Writer) -> Result<(), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    Node::value(out).deserialize(&mut de)?;
    de.end()
}

/// Writes every value after the first of concatenated JSON. Boundaries come from a cheap
/// validating pass, because probing for "more input?" through serde_json errors would rescan
/// the input each time (quadratic).
fn concatenated_tail(text: &str, out: &mut Writer) -> Result<(), ExtractError> {
    let mut values = serde_json::Deserializer::from_str(text).into_iter::<IgnoredAny>();
    let mut start = None;
    while let Some(value) = values.next() {
        value.map_err(|e| json_error(e, 0))?;
        let end = values.byte_offset();
        if let Some(start) = start
            && let Some(slice) = text.get(start..end)
        {
            out.gap = Gap::Line;
            parse_one(slice, out).map_err(|e| json_error(e, 0))?;
        }
        start = Some(end);
    }
    Ok(())
}

/// Our error for a serde_json error in text that starts `lines_before` lines into the input.
fn json_error(error: serde_json::Error, lines_before: usize) -> ExtractError {
    let (line, column) = (error.line(), error.column());
    let full = error.to_string();
    // serde_json appends the position to its message; we report it in our own words.
    let suffix = format!(" at line {line} column {column}");
    let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
    ExtractError::Json {
        line: line.saturating_add(lines_before),
        column,
        message,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Gap {
    None,
    Space,
    Line,
}

struct Writer {
    out: String,
    gap: Gap,
}

impl Writer {
    fn separate(&mut self) {
        if !self.out.is_empty() {
            match self.gap {
                Gap::None => {}
                Gap::Space => self.out.push(' '),
                Gap::Line => self.out.push('\n'),
            }
        }
        self.gap = Gap::None;
    }

    fn key(&mut self, key: &str) {
        if !key.is_empty() {
            self.separate();
            self.out.push_str(key);
            self.gap = Gap::Space;
        }
    }

    fn value(&mut self, value: &str) {
        if !value.is_empty() {
            self.separate();
            self.out.push_str(value);
        }
        self.gap = Gap::Line;
    }

    fn display(&mut self, value: impl fmt::Debug) {
        self.separate();
        // Writing to a String cannot fail.
        let _ = write!(self.out, "{value:?}");
        self.gap = Gap::Line;
    }
}

/// Any JSON value, or an object key (`key`), written to `out` as it is parsed.
struct Node<'w> {
    out: &'w mut Writer,
    key: bool,
}

impl<'w> Node<'w> {
    /// A value.
    fn value(out: &'w mut Writer) -> Self {
        Self { out, key: false }
    }

    /// An object key.
    fn key(out: &'w mut Writer) -> Self {
        Self { out, key: true }
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        if self.key {
            de.deserialize_str(self)
        } else {
            de.deserialize_any(self)
        }
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.key {
            "an object key"
        } else {
            "a JSON value"
        })
    }

    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.out.value(if v { "true" } else { "false" });
        Ok(())
    }

    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.out.display(v);
        Ok(())
    }

    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.out.display(v);
        Ok(())
    }

    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        // Debug rather than Display: 1e300 stays short instead of 301 digits.
        self.out.display(v);
        Ok(())
    }

    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        if self.key {
            self.out.key(v);
        } else {
            self.out.value(v);
        }
        Ok(())
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<(), E> {
        if self.key {
            Err(E::custom("object key is not a string"))
        } else {
            Err(E::invalid_type(Unexpected::Bytes(v), &self))
        }
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.out.gap = Gap::Line;
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Node::value(self.out))?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(Node::key(self.out))?.is_some() {
            map.next_value_seed(Node::value(self.out))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_table() {
        let cases: &[(&str, &str)] = &[
            (r#"{"name":"Ann","tags":["a","b"]}"#, "name Ann\ntags a\nb"),
            (
                r#"{"caf\u00e9": "line1\nline2\t\"q\" \ud83d\ude00 \/"}"#,
                "caf\u{e9} line1\nline2\t\"q\" \u{1F600} /",
            ),
            (
                r#"{"n": 42, "neg": -7, "big": 18446744073709551615, "f": 1.5, "e": 1e300, "t": true, "x": false, "z": null}"#,
                "n 42\nneg -7\nbig 18446744073709551615\nf 1.5\ne 1e300\nt true\nx false\nz",
            ),
            (r#"{"a": {"b": {"c": "deep"}}}"#, "a b c deep"),
            (r#"[1, [2, [3]], {"k": []}]"#, "1\n2\n3\nk"),
            (r#""just a string""#, "just a string"),
            ("  \n 7 \n", "7"),
            (r#"{"": "empty key", "empty": ""}"#, "empty key\nempty"),
            (r#"{"a":1}{"b":2}"#, "a 1\nb 2"),
            ("{\"a\":1}\n{\"b\":2}\n [3]", "a 1\nb 2\n3"),
            ("{\"a\":1}\n{\"b\":2}\n [3]", "a 1\nb 2\n3"),
        ];
        for (input, want) in cases {
            let got = extract(input, false).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(got.body, *want, "{input}");
            assert_eq!(got.title, None);
        }
    }

    #[test]
    fn ndjson_table() {
        let cases: &[(&str, &str)] = &[
            ("{\"a\":1}\n{\"b\":\"x\"}\n", "a 1\nb x"),
            ("{\"a\":1}\r\n\r\n\n  \n{\"b\":2}", "a 1\nb 2"),
            ("", ""),
            ("\n\n", ""),
            ("[1,2]\n\"s\"\n", "1\n2\ns"),
        ];
        for (input, want) in cases {
            let got = extract(input, true).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(got.body, *want, "{input:?}");
        }
    }

    #[test]
    fn invalid_json_reports_position() {
        let cases: &[(&str, bool, usize, usize, &str)] = &[
            ("{\"a\": tru}", false, 1, 10, "expected ident"),
            ("{\n  \"a\": 1,\n}", false, 3, 1, "trailing comma"),
            ("", false, 1, 0, "EOF while parsing a value"),
            (
                "{\"a\":1}\n{\"b\":\n",
                true,
                2,
                5,
                "EOF while parsing a value",
            ),
            ("{}\r\n\n{} {}\n", true, 3, 4, "trailing characters"),
            ("{\"a\":1} {\"b\":2} {\"c\"}", false, 1, 21, "expected `:`"),
            ("{\"a\":1}\nnot json\n", true, 2, 2, "expected ident"),
            ("[\"\\x\"]", false, 1, 4, "invalid escape"),
            (&"[".repeat(200), false, 1, 128, "recursion limit exceeded"),
        ];
        for (input, ndjson, line, column, message) in cases {
            let err = extract(input, *ndjson).unwrap_err();
            let want = ExtractError::Json {
                line: *line,
                column: *column,
                message: (*message).to_owned(),
            };
            assert_eq!(err, want, "{input:?}: {err}");
        }
    }

    #[test]
    fn json_through_public_api_decodes_bytes() {
        use super::super::{Format, extract};
        let utf16 = b"\xFF\xFE{\0\"\0k\0\"\0:\0\"\0\xE9\0\"\0}\0";
        assert_eq!(extract(Format::Json, utf16).unwrap().body, "k \u{e9}");
        let bom = b"\xEF\xBB\xBF{\"k\":1}";
        assert_eq!(extract(Format::Json, bom).unwrap().body, "k 1");
        let msg = extract(Format::Ndjson, b"{}\n{]").unwrap_err().to_string();
        assert_eq!(
            msg,
            "invalid JSON at line 2, column 2: key must be a string"
        );
    }
}
