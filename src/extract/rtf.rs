//! RTF to text: a single-pass tokenizer over groups, control words and text.
//!
//! Hand-written because the RTF crates we found either recurse per group or panic on malformed
//! input; the part of RTF that text extraction needs is small: groups with an explicit stack
//! (no recursion, so nesting depth cannot overflow the stack), `\'hh` bytes decoded with the
//! document's code page (`\ansicpg`), `\uN` with its `\ucN` fallback skipped, paragraph and cell
//! breaks, and destinations that hold no body text (font and colour tables, style sheets,
//! pictures, embedded objects, field instructions, and every `\*` destination) skipped. The
//! `\title` of the `\info` group becomes the title. Not handled: formatting, tables as tables,
//! per-font charsets (`\fcharset`).

use encoding_rs::{Encoding, WINDOWS_1252};

use super::budget::Budget;
use super::text::TextSink;
use super::{ExtractError, Extracted};

/// Group nesting kept track of at most; deeper groups are treated as text of their parent.
const MAX_DEPTH: usize = 4096;
/// Bytes between two clock checks.
const BYTES_PER_CHECK: usize = 1 << 20;

/// Destinations whose content is not body text.
const SKIPPED: &[&[u8]] = &[
    b"fonttbl",
    b"colortbl",
    b"stylesheet",
    b"listtable",
    b"listoverridetable",
    b"revtbl",
    b"rsidtbl",
    b"generator",
    b"pict",
    b"object",
    b"objdata",
    b"fldinst",
    b"themedata",
    b"colorschememapping",
    b"datastore",
    b"latentstyles",
    b"xmlnstbl",
    b"filetbl",
    b"header",
    b"footer",
    b"headerl",
    b"headerr",
    b"headerf",
    b"footerl",
    b"footerr",
    b"footerf",
    b"private",
    b"bkmkstart",
    b"bkmkend",
];

/// Where the text of the current group goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Body,
    Title,
    /// `\info` fields other than the title, and skipped destinations.
    Nowhere,
}

#[derive(Clone, Copy, Debug)]
struct Group {
    target: Target,
    /// Fallback characters to skip after `\uN`.
    uc: usize,
}

struct State {
    body: TextSink,
    title: String,
    encoding: &'static Encoding,
    /// `\'hh` bytes waiting to be decoded together (multi-byte code pages).
    pending: Vec<u8>,
    stack: Vec<Group>,
    group: Group,
    /// Fallback characters still to skip after a `\uN`.
    skip: usize,
}

impl State {
    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let (text, _, _) = self.encoding.decode(&self.pending);
        let text = text.into_owned();
        self.pending.clear();
        self.emit_str(&text);
    }

    fn emit_str(&mut self, text: &str) {
        match self.group.target {
            Target::Body => self.body.push_str(text),
            Target::Title => self.title.push_str(text),
            Target::Nowhere => {}
        }
    }

    fn emit_char(&mut self, c: char) {
        self.flush();
        self.emit_str(c.encode_utf8(&mut [0; 4]));
    }

    /// A byte of text, or a fallback byte to skip after `\uN`. Bytes written as `\'hh` always
    /// join the pending sequence: in double-byte code pages a trail byte can be ASCII.
    fn byte(&mut self, byte: u8, escaped: bool) {
        if self.skip > 0 {
            self.skip -= 1;
            return;
        }
        if byte.is_ascii() && !escaped {
            self.flush();
            self.emit_str(std::str::from_utf8(&[byte]).unwrap_or_default());
        } else {
            self.pending.push(byte);
        }
    }

    fn line(&mut self) {
        self.flush();
        if self.group.target == Target::Body {
            self.body.line();
        }
    }

    fn space(&mut self) {
        self.flush();
        match self.group.target {
            Target::Body => self.body.space(),
            Target::Title => self.title.push(' '),
            Target::Nowhere => {}
        }
    }
}

/// Extracts the text and title of an RTF document.
pub(super) fn extract(bytes: &[u8], budget: &Budget) -> Result<Extracted, ExtractError> {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    if !bytes[start..].starts_with(b"{\\rtf") {
        return Err(ExtractError::Corrupt {
            format: "RTF",
            message: "the document does not start with {\\rtf".to_owned(),
        });
    }
    let mut state = State {
        body: TextSink::with_capacity(bytes.len() / 4),
        title: String::new(),
        encoding: WINDOWS_1252,
        pending: Vec::new(),
        stack: Vec::new(),
        group: Group {
            target: Target::Body,
            uc: 1,
        },
        skip: 0,
    };
    // A `\*` just seen: the next control word starts an ignorable destination.
    let mut starred = false;
    // Just after `{`: a control word here starts a destination.
    let mut group_start = false;
    let mut i = start;
    let mut next_check = i + BYTES_PER_CHECK;
    while i < bytes.len() {
        if i >= next_check {
            budget.check_time()?;
            next_check = i + BYTES_PER_CHECK;
        }
        let byte = bytes[i];
        match byte {
            b'{' => {
                state.flush();
                if state.stack.len() < MAX_DEPTH {
                    state.stack.push(state.group);
                }
                state.skip = 0;
                group_start = true;
                starred = false;
                i += 1;
                continue;
            }
            b'}' => {
                state.flush();
                if let Some(group) = state.stack.pop() {
                    state.group = group;
                }
                state.skip = 0;
                i += 1;
            }
            b'\\' => {
                let (next, star) = control(bytes, i + 1, &mut state, &mut starred, group_start);
                i = next;
                if star {
                    // `{\*\dest`: the destination word still opens the group.
                    continue;
                }
            }
            b'\r' | b'\n' => i += 1,
            _ => {
                state.byte(byte, false);
                i += 1;
            }
        }
        group_start = false;
    }
    state.flush();
    let title = state.title.split_whitespace().collect::<Vec<_>>().join(" ");
    Ok(Extracted {
        body: state.body.finish(),
        title: (!title.is_empty()).then_some(title),
    })
}

/// Handles the control word or symbol after a backslash at `i`; returns where to go on, and
/// whether it was `\*` (which keeps the group's start open for its destination word).
fn control(
    bytes: &[u8],
    mut i: usize,
    state: &mut State,
    starred: &mut bool,
    group_start: bool,
) -> (usize, bool) {
    let Some(&first) = bytes.get(i) else {
        return (i, false);
    };
    if !first.is_ascii_alphabetic() {
        // A control symbol.
        i += 1;
        match first {
            b'\'' => {
                let value = bytes
                    .get(i..i + 2)
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok());
                if let Some(value) = value {
                    state.byte(value, true);
                    return (i + 2, false);
                }
            }
            b'*' => {
                *starred = true;
                return (i, true);
            }
            b'~' => state.emit_char('\u{a0}'),
            b'_' => state.emit_char('-'),
            b'\\' | b'{' | b'}' => state.byte(first, false),
            b'\r' | b'\n' => state.line(),
            _ => {}
        }
        return (i, false);
    }
    let word_start = i;
    while bytes.get(i).is_some_and(u8::is_ascii_alphabetic) && i - word_start < 32 {
        i += 1;
    }
    let word = &bytes[word_start..i];
    let number_start = i;
    if bytes.get(i) == Some(&b'-') {
        i += 1;
    }
    while bytes.get(i).is_some_and(u8::is_ascii_digit) && i - number_start < 11 {
        i += 1;
    }
    let parameter: Option<i64> = std::str::from_utf8(&bytes[number_start..i])
        .ok()
        .and_then(|s| s.parse().ok());
    if bytes.get(i) == Some(&b' ') {
        i += 1;
    }
    if group_start && (*starred || SKIPPED.contains(&word)) {
        state.flush();
        state.group.target = Target::Nowhere;
        *starred = false;
        return (i, false);
    }
    *starred = false;
    match word {
        b"par" | b"line" | b"sect" | b"page" | b"row" => state.line(),
        b"tab" | b"cell" => state.space(),
        b"emdash" => state.emit_char('\u{2014}'),
        b"endash" => state.emit_char('\u{2013}'),
        b"bullet" => state.emit_char('\u{2022}'),
        b"lquote" => state.emit_char('\u{2018}'),
        b"rquote" => state.emit_char('\u{2019}'),
        b"ldblquote" => state.emit_char('\u{201c}'),
        b"rdblquote" => state.emit_char('\u{201d}'),
        b"info" if group_start => {
            state.flush();
            state.group.target = Target::Nowhere;
        }
        b"title" if group_start && state.group.target == Target::Nowhere => {
            state.flush();
            state.group.target = Target::Title;
        }
        b"ansicpg" => {
            if let Some(encoding) = parameter.and_then(code_page) {
                state.flush();
                state.encoding = encoding;
            }
        }
        b"uc" => {
            if let Some(n) = parameter {
                state.group.uc = n.clamp(0, 16) as usize;
            }
        }
        b"u" => {
            if let Some(n) = parameter {
                // Signed 16-bit in the file: negative values are code units above 0x7FFF.
                let unit = (n as i32).rem_euclid(0x1_0000) as u32;
                state.emit_char(char::from_u32(unit).unwrap_or('\u{fffd}'));
                state.skip = state.group.uc;
            }
        }
        _ => {}
    }
    (i, false)
}

/// The encoding of a Windows code page number.
fn code_page(number: i64) -> Option<&'static Encoding> {
    let label = match number {
        437 | 850 | 1252 => "windows-1252",
        932 => "shift_jis",
        936 => "gbk",
        949 => "euc-kr",
        950 => "big5",
        874 => "windows-874",
        10000 => "macintosh",
        1250..=1258 => return Encoding::for_label(format!("windows-{number}").as_bytes()),
        _ => return None,
    };
    Encoding::for_label(label.as_bytes())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// What WordPad writes, more or less: tables, an info group, code-page and Unicode escapes.
    pub(in crate::extract) const RTF: &str = r#"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0\fnil\fcharset0 Calibri;}}
{\colortbl ;\red255\green0\blue0;}
{\*\generator Riched20 10.0.19041}{\info{\title Heron \'e9tude}{\author Ann}}
\viewkind4\uc1\pard\sa200\sl276\slmult1\f0\fs22\lang9 The heron caf\'e9 opens at dawn.\par
Second line with {\b bold} and \u8364? euro and \u-3913?? skipped.\par
{\*\bkmkstart x}{\field{\*\fldinst HYPERLINK ""http://x""}{\fldrslt link text}}\tab tabbed\line broken\par
{\pict\wmetafile8 0a0b0c0d}\trowd\cellx100\cellx200 cell one\cell cell two\cell\row
}"#;

    /// The body of `rtf`, extracted without limits.
    fn body(rtf: &[u8]) -> String {
        extract(rtf, &Budget::unlimited()).unwrap().body
    }

    #[test]
    fn body_title_and_escapes() {
        let got = extract(RTF.as_bytes(), &Budget::unlimited()).unwrap();
        assert_eq!(got.title.as_deref(), Some("Heron \u{e9}tude"));
        assert_eq!(
            got.body,
            "The heron caf\u{e9} opens at dawn.\nSecond line with bold and \u{20ac} euro and \u{f0b7}? skipped.\nlink text tabbed\nbroken\ncell one cell two"
        );
    }

    #[test]
    fn code_pages_and_multibyte_bytes() {
        let cyrillic = body(br"{\rtf1\ansi\ansicpg1251 \'cf\'f0\'e8\'e2\'e5\'f2}");
        assert_eq!(cyrillic, "\u{41f}\u{440}\u{438}\u{432}\u{435}\u{442}");
        let japanese = body(br"{\rtf1\ansi\ansicpg932 \'93\'fa\'96\'7b}");
        assert_eq!(japanese, "\u{65e5}\u{672c}");
    }

    #[test]
    fn not_rtf_is_corrupt_and_truncated_rtf_keeps_its_text() {
        let err = extract(b"plain text", &Budget::unlimited()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "corrupt RTF: the document does not start with {\\rtf"
        );
        let cut = body(br"{\rtf1 {\b unclosed groups {{{ text");
        assert_eq!(cut, "unclosed groups text");
    }

    #[test]
    fn deep_nesting_and_garbage_never_panic() {
        let deep = format!("{{\\rtf1 {}x{}", "{".repeat(100_000), "}".repeat(100_000));
        assert_eq!(body(deep.as_bytes()), "x");
        let mut rng = crate::extract::tests::Rng::new(3);
        for _ in 0..2000 {
            let len = rng.below(200);
            let mut input = b"{\\rtf1".to_vec();
            input.extend(rng.bytes(len, b"{}\\'*uc0123456789abcdef -pard\xe9"));
            let _ = extract(&input, &Budget::unlimited());
        }
    }
}
