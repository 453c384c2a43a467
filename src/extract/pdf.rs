//! PDF text layer, through `pdf-extract` (glyph positions to words and lines, ToUnicode maps,
//! font encodings) on top of `lopdf` (parsing, decryption).
//!
//! Chosen by running both on pdfTeX, Ghostscript, ReportLab and fpdf2 output, measured against
//! poppler's `pdftotext`: pdf-extract recovered 91-100 % of the words, lopdf's own
//! `extract_text` 78-100 % (it glues words on positioned text) and returned nothing, without
//! an error, for encrypted files.
//!
//! Safety, since PDF is where hostile input lives:
//! - A PDF that needs a password is [`ExtractError::Encrypted`]; one encrypted with an empty user
//!   password (only printing or copying restricted) is read, as every viewer does.
//! - Internal streams are decompressed by lopdf without a cap, so before lopdf sees them their
//!   decompressed size is measured through a capped decoder: object and cross-reference streams
//!   before loading (lopdf expands them while loading), every stream text extraction may read
//!   (page contents, forms, fonts, maps; not images, which are never decoded) after. Normal PDFs
//!   compress these 3 to 10 times, bombs about 1000 times, so the cap on them is
//!   [`STREAM_FACTOR`] times `max_extracted_bytes`.
//! - The text written is capped at `max_extracted_bytes`; the clock is checked at every page
//!   and every few thousand glyphs (nested forms can repeat text without end).
//! - Form XObjects that draw themselves, nest deeper than 32 or are drawn more than 100,000
//!   times are refused before pdf-extract follows them (it recurses without a guard, and a
//!   stack overflow cannot be caught).
//! - pdf-extract panics on many malformed files: that is caught here and reported as a corrupt
//!   PDF (the extraction boundary would catch it too, as "extraction crashed"). Panics of lopdf
//!   while loading, and of our own code, are left to the boundary: they are bugs to fix.
//!
//! Pages are separated by a form feed (`\x0C`, one per page break, an empty page keeps its
//! own), so that the passages cut from the text know the page they start on
//! ([`crate::embed`]'s passage splitter counts form feeds).
//!
//! Not done: OCR of scanned pages (they have no text layer and come out empty).

use std::cell::RefCell;
use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;

use flate2::read::ZlibDecoder;
use lopdf::{Document, Object, ObjectId};
use pdf_extract::{ConvertToFmt, MediaBox, OutputDev, OutputError, PlainTextOutput, Transform};

use super::budget::Budget;
use super::object::panic_message;
use super::{ExtractError, Extracted};

const FORMAT: &str = "PDF";

/// How many times `max_extracted_bytes` a PDF's internal streams may decompress to in total.
pub(super) const STREAM_FACTOR: u64 = 10;

/// Glyphs written between two clock checks.
const GLYPHS_PER_CHECK: u32 = 4096;

/// How far into the file the `%PDF-` header may start (Acrobat accepts 1024 bytes of junk).
const HEADER_WINDOW: usize = 1024;

/// Extracts the text layer and the document-information title.
pub(super) fn extract(bytes: &[u8], budget: &Budget) -> Result<Extracted, ExtractError> {
    let head = &bytes[..bytes.len().min(HEADER_WINDOW)];
    if !head.windows(5).any(|w| w == b"%PDF-") {
        return Err(corrupt("no %PDF- header"));
    }
    let streams = budget.sibling(budget.max_bytes().saturating_mul(STREAM_FACTOR));
    prescan_object_streams(bytes, &streams)?;
    budget.check_time()?;
    let document = Document::load_mem(bytes).map_err(|e| corrupt(&e.to_string()))?;
    if document.is_encrypted() {
        return Err(ExtractError::Encrypted { format: FORMAT });
    }
    measure_streams(&document, &streams)?;
    check_page_parents(&document)?;
    check_forms(&document, budget)?;
    let title = info_title(&document);
    let raw = SharedText::default();
    let mut stop = None;
    let result = {
        let mut output = Guarded {
            inner: PlainTextOutput::new(raw.clone()),
            text: raw.clone(),
            pages: 0,
            budget,
            stop: &mut stop,
            glyphs: 0,
        };
        // pdf-extract has about 130 `unwrap`s and `expect`s on document structure (a page
        // without a MediaBox, a font without a descriptor, a dangling reference): on a damaged
        // file that is a corrupt PDF, not a crash. Fuzzing found them by the dozen.
        catch_unwind(AssertUnwindSafe(|| {
            pdf_extract::output_doc(&document, &mut output)
        }))
    };
    if let Some(error) = stop {
        return Err(error);
    }
    result
        .map_err(|payload| {
            corrupt(&format!(
                "pdf-extract failed: {}",
                panic_message(payload.as_ref())
            ))
        })?
        .map_err(|e| corrupt(&e.to_string()))?;
    let raw = raw.0.take();
    Ok(Extracted {
        body: raw
            .split(PAGE_BREAK)
            .map(tidy)
            .collect::<Vec<_>>()
            .join("\u{c}"),
        title,
    })
}

/// What separates two pages in the text: a form feed.
const PAGE_BREAK: char = '\u{c}';

/// The text pdf-extract writes, shared with [`Guarded`], which adds the page breaks.
#[derive(Clone, Debug, Default)]
struct SharedText(Rc<RefCell<String>>);

impl std::fmt::Write for SharedText {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        self.0.borrow_mut().push_str(text);
        Ok(())
    }
}

impl ConvertToFmt for SharedText {
    type Writer = Self;
    fn convert(self) -> Self {
        self
    }
}

fn corrupt(message: &str) -> ExtractError {
    ExtractError::Corrupt {
        format: FORMAT,
        message: message.to_owned(),
    }
}

/// Trims each line of a page and keeps at most one empty line between paragraphs.
fn tidy(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut blank = false;
    for line in raw.lines().map(str::trim) {
        if line.is_empty() {
            blank = !out.is_empty();
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank { "\n\n" } else { "\n" });
        }
        out.push_str(line);
        blank = false;
    }
    out
}

/// Measures the object and cross-reference streams that lopdf will expand while loading:
/// each `/ObjStm` or `/XRef` dictionary is followed by its `stream` keyword and zlib data.
fn prescan_object_streams(bytes: &[u8], streams: &Budget) -> Result<(), ExtractError> {
    for marker in [&b"/ObjStm"[..], b"/XRef"] {
        let mut from = 0;
        while let Some(found) = find(&bytes[from..], marker) {
            let after = from + found + marker.len();
            from = after;
            let window = &bytes[after..bytes.len().min(after + 4096)];
            let Some(keyword) = find(window, b"stream") else {
                continue;
            };
            let mut start = after + keyword + b"stream".len();
            if bytes.get(start) == Some(&b'\r') {
                start += 1;
            }
            if bytes.get(start) == Some(&b'\n') {
                start += 1;
            }
            let data = &bytes[start.min(bytes.len())..];
            if data.first().is_some_and(|&b| b & 0x0F == 8) {
                streams.count_all(ZlibDecoder::new(data), "decompressed PDF streams")?;
            }
        }
    }
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Measures the decompressed size of every stream text extraction may decode.
fn measure_streams(document: &Document, streams: &Budget) -> Result<(), ExtractError> {
    let contents: HashSet<ObjectId> = document
        .get_pages()
        .values()
        .flat_map(|page| document.get_page_contents(*page))
        .collect();
    for (id, object) in &document.objects {
        let Object::Stream(stream) = object else {
            continue;
        };
        let is_image = is_subtype(stream, b"Image");
        let is_container = stream.dict.has_type(b"ObjStm") || stream.dict.has_type(b"XRef");
        if (is_image || is_container) && !contents.contains(id) {
            continue;
        }
        let Ok(filters) = stream.filters() else {
            continue;
        };
        match filters.first().map(|f| &f[..]) {
            Some(b"FlateDecode") => {
                streams.count_all(
                    ZlibDecoder::new(stream.content.as_slice()),
                    "decompressed PDF streams",
                )?;
            }
            Some(b"LZWDecode") => {
                let mut counter = Counter {
                    budget: streams,
                    error: None,
                };
                let mut decoder =
                    weezl::decode::Decoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8);
                let _ = decoder
                    .into_stream(&mut counter)
                    .decode_all(stream.content.as_slice());
                if let Some(error) = counter.error {
                    return Err(error);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// How deep form XObjects may nest (pdf-extract follows them by recursion).
const MAX_FORM_DEPTH: usize = 32;
/// Form invocations pdf-extract may be asked to follow in total (forms drawing forms twice at
/// every level double the work per level).
const MAX_FORM_CALLS: usize = 100_000;

/// Page-tree levels followed above a page at most (real trees have a handful).
const MAX_PAGE_TREE_DEPTH: usize = 64;

/// Refuses pages whose `/Parent` chain loops or is deeper than [`MAX_PAGE_TREE_DEPTH`]:
/// pdf-extract looks up inherited attributes (`/MediaBox`, `/Resources`) by recursion along
/// that chain, so a page that is its own parent overflowed the stack (found by fuzzing).
fn check_page_parents(document: &Document) -> Result<(), ExtractError> {
    for page in document.get_pages().into_values() {
        let mut id = page;
        let mut depth = 0;
        while let Ok(parent) = document
            .get_dictionary(id)
            .and_then(|dict| dict.get(b"Parent"))
            .and_then(Object::as_reference)
        {
            depth += 1;
            if parent == page || depth > MAX_PAGE_TREE_DEPTH {
                return Err(corrupt("the page tree loops or is too deep"));
            }
            id = parent;
        }
    }
    Ok(())
}

/// Whether the stream's `/Subtype` is `subtype` (`Image`, `Form`).
fn is_subtype(stream: &lopdf::Stream, subtype: &[u8]) -> bool {
    stream
        .dict
        .get(b"Subtype")
        .and_then(Object::as_name)
        .is_ok_and(|name| name == subtype)
}

/// Refuses documents whose form XObjects draw themselves (directly or through others), nest
/// deeper than [`MAX_FORM_DEPTH`] or multiply past [`MAX_FORM_CALLS`]: pdf-extract follows `Do`
/// by recursion without a guard, so a self-drawing form would overflow the thread's stack,
/// which no panic handler can catch.
fn check_forms(document: &Document, budget: &Budget) -> Result<(), ExtractError> {
    let has_forms = document
        .objects
        .values()
        .any(|object| matches!(object, Object::Stream(stream) if is_subtype(stream, b"Form")));
    if !has_forms {
        return Ok(());
    }
    let mut walk = FormWalk {
        document,
        budget,
        stack: Vec::new(),
        calls: 0,
    };
    for page in document.get_pages().into_values() {
        let Ok(content) = document.get_page_content(page) else {
            continue;
        };
        let (direct, inherited) = document.get_page_resources(page).unwrap_or_default();
        let mut resources: Vec<&lopdf::Dictionary> = direct.into_iter().collect();
        resources.extend(
            inherited
                .into_iter()
                .filter_map(|id| document.get_dictionary(id).ok()),
        );
        walk.content(&content, &resources)?;
    }
    Ok(())
}

/// The state of [`check_forms`]: the forms being drawn, and how many were drawn so far.
struct FormWalk<'a> {
    document: &'a Document,
    budget: &'a Budget,
    stack: Vec<ObjectId>,
    calls: usize,
}

impl<'a> FormWalk<'a> {
    fn content(
        &mut self,
        content: &[u8],
        resources: &[&'a lopdf::Dictionary],
    ) -> Result<(), ExtractError> {
        // Content pdf-extract cannot parse fails there, with its own error.
        let Ok(content) = lopdf::content::Content::decode(content) else {
            return Ok(());
        };
        for operation in content.operations.iter().filter(|op| op.operator == "Do") {
            let Some(name) = operation.operands.first().and_then(|o| o.as_name().ok()) else {
                continue;
            };
            let Some(id) = resources.iter().find_map(|dict| self.xobject(dict, name)) else {
                continue;
            };
            let Ok(stream) = self.document.get_object(id).and_then(Object::as_stream) else {
                continue;
            };
            if !is_subtype(stream, b"Form") {
                continue;
            }
            self.calls += 1;
            if self.stack.contains(&id) || self.stack.len() >= MAX_FORM_DEPTH {
                return Err(corrupt("form XObjects draw themselves or nest too deeply"));
            }
            if self.calls > MAX_FORM_CALLS {
                return Err(corrupt("form XObjects are drawn too many times"));
            }
            if self.calls.is_multiple_of(1024) {
                self.budget.check_time()?;
            }
            let own = stream.dict.get(b"Resources").ok().and_then(|r| match r {
                Object::Reference(id) => self.document.get_dictionary(*id).ok(),
                Object::Dictionary(dict) => Some(dict),
                _ => None,
            });
            let inner: Vec<&'a lopdf::Dictionary> = match own {
                Some(dict) => vec![dict],
                None => resources.to_vec(),
            };
            let data = stream
                .decompressed_content()
                .unwrap_or_else(|_| stream.content.clone());
            self.stack.push(id);
            self.content(&data, &inner)?;
            self.stack.pop();
        }
        Ok(())
    }

    /// The object id of XObject `name` in a resource dictionary.
    fn xobject(&self, resources: &'a lopdf::Dictionary, name: &[u8]) -> Option<ObjectId> {
        let xobjects = match resources.get(b"XObject").ok()? {
            Object::Reference(id) => self.document.get_dictionary(*id).ok()?,
            Object::Dictionary(dict) => dict,
            _ => return None,
        };
        xobjects.get(name).ok()?.as_reference().ok()
    }
}

/// A writer that only spends the budget; fails once it is exhausted.
struct Counter<'a> {
    budget: &'a Budget,
    error: Option<ExtractError>,
}

impl std::io::Write for Counter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let spent = self.budget.check_time().and_then(|()| {
            self.budget
                .spend(buf.len() as u64, "decompressed PDF streams")
        });
        match spent {
            Ok(()) => Ok(buf.len()),
            Err(error) => {
                self.error = Some(error);
                Err(std::io::Error::other("budget exhausted"))
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The `/Title` of the document information dictionary (PDFDocEncoding or UTF-16BE).
fn info_title(document: &Document) -> Option<String> {
    let info = document.trailer.get(b"Info").ok()?;
    let info = match info {
        Object::Reference(id) => document.get_dictionary(*id).ok()?,
        Object::Dictionary(dict) => dict,
        _ => return None,
    };
    let Object::String(raw, _) = info.get(b"Title").ok()? else {
        return None;
    };
    let title = if let Some(utf16) = raw.strip_prefix(&[0xFE, 0xFF]) {
        let units: Vec<u16> = utf16
            .chunks_exact(2)
            .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
            .collect();
        String::from_utf16_lossy(&units)
    } else if let Ok(utf8) = std::str::from_utf8(raw) {
        utf8.to_owned()
    } else {
        // PDFDocEncoding matches Latin-1 for the letters titles use.
        raw.iter().map(|&b| char::from(b)).collect()
    };
    let title = title.split_whitespace().collect::<Vec<_>>().join(" ");
    (!title.is_empty()).then_some(title)
}

/// pdf-extract's plain-text output with the extraction budget applied, and a
/// [`PAGE_BREAK`] before every page but the first.
struct Guarded<'a> {
    inner: PlainTextOutput<SharedText>,
    /// The text `inner` writes to.
    text: SharedText,
    /// Pages begun so far.
    pages: u32,
    budget: &'a Budget,
    stop: &'a mut Option<ExtractError>,
    glyphs: u32,
}

impl Guarded<'_> {
    fn halt(&mut self, error: ExtractError) -> Result<(), OutputError> {
        *self.stop = Some(error);
        Err(OutputError::FormatError(std::fmt::Error))
    }
}

impl OutputDev for Guarded<'_> {
    fn begin_page(
        &mut self,
        page_num: u32,
        media_box: &MediaBox,
        art_box: Option<(f64, f64, f64, f64)>,
    ) -> Result<(), OutputError> {
        if let Err(error) = self.budget.check_time() {
            return self.halt(error);
        }
        if self.pages > 0 {
            if let Err(error) = self.budget.spend(1, "extracted PDF text") {
                return self.halt(error);
            }
            self.text.0.borrow_mut().push(PAGE_BREAK);
        }
        self.pages += 1;
        self.inner.begin_page(page_num, media_box, art_box)
    }

    fn end_page(&mut self) -> Result<(), OutputError> {
        self.inner.end_page()
    }

    fn output_character(
        &mut self,
        trm: &Transform,
        width: f64,
        spacing: f64,
        font_size: f64,
        char: &str,
    ) -> Result<(), OutputError> {
        self.glyphs += 1;
        if self.glyphs.is_multiple_of(GLYPHS_PER_CHECK)
            && let Err(error) = self.budget.check_time()
        {
            return self.halt(error);
        }
        // One more byte for the space or newline the output may put before the glyph.
        if let Err(error) = self
            .budget
            .spend(char.len() as u64 + 1, "extracted PDF text")
        {
            return self.halt(error);
        }
        self.inner
            .output_character(trm, width, spacing, font_size, char)
    }

    fn begin_word(&mut self) -> Result<(), OutputError> {
        self.inner.begin_word()
    }

    fn end_word(&mut self) -> Result<(), OutputError> {
        self.inner.end_word()
    }

    fn end_line(&mut self) -> Result<(), OutputError> {
        self.inner.end_line()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::time::Duration;

    use super::*;

    /// Made with ReportLab; see tests/fixtures/README.md.
    const SAMPLE: &[u8] = include_bytes!("../../tests/fixtures/sample.pdf");
    /// The same document encrypted with pypdf (AES-256, user password "secret").
    const ENCRYPTED: &[u8] = include_bytes!("../../tests/fixtures/encrypted.pdf");
    /// The same document encrypted with an empty user password (RC4-128; owner password only).
    const OWNER_ONLY: &[u8] = include_bytes!("../../tests/fixtures/owner-password.pdf");

    #[test]
    fn a_panic_inside_pdf_extract_is_a_corrupt_pdf() {
        // Found by fuzzing: a page without a MediaBox, which pdf-extract `expect`s.
        let bytes = include_bytes!(
            "../../tests/fixtures/fuzz-regressions/extract_pdf/pdf-extract-no-mediabox"
        );
        let err = extract(bytes, &Budget::new(1 << 20, Duration::from_secs(30))).unwrap_err();
        assert_eq!(err.to_string(), "corrupt PDF: pdf-extract failed: MediaBox");
    }

    #[test]
    fn text_layer_and_title() {
        let got = extract(SAMPLE, &Budget::unlimited()).unwrap();
        assert_eq!(got.title.as_deref(), Some("Quarterly pelican report"));
        for word in [
            "Quarterly",
            "pelican",
            "migration",
            "ledger",
            "caf\u{e9}",
            "r\u{e9}sum\u{e9}",
        ] {
            assert!(
                got.body.contains(word),
                "{word} missing from {:?}",
                got.body
            );
        }
    }

    #[test]
    fn a_password_protected_pdf_is_reported_as_encrypted() {
        let err = extract(ENCRYPTED, &Budget::unlimited()).unwrap_err();
        assert_eq!(err, ExtractError::Encrypted { format: "PDF" });
        assert!(err.to_string().contains("encrypted PDF"), "{err}");
        let readable = extract(OWNER_ONLY, &Budget::unlimited()).unwrap();
        assert!(readable.body.contains("pelican"), "{}", readable.body);
    }

    #[test]
    fn truncated_and_foreign_input_is_corrupt() {
        let err = extract(b"hello", &Budget::unlimited()).unwrap_err();
        assert_eq!(err.to_string(), "corrupt PDF: no %PDF- header");
        for cut in [SAMPLE.len() / 2, 200, 20] {
            match extract(&SAMPLE[..cut], &Budget::unlimited()) {
                Err(ExtractError::Corrupt { .. }) => {}
                Ok(got) => assert!(!got.body.contains("percent"), "cut {cut}"),
                Err(other) => panic!("cut {cut}: {other}"),
            }
        }
    }

    #[test]
    fn text_output_is_capped() {
        let budget = Budget::new(100, Duration::from_secs(60));
        let err = extract(SAMPLE, &budget).unwrap_err();
        assert!(
            matches!(err, ExtractError::TooLarge { limit: 100, .. }),
            "{err}"
        );
    }

    /// A PDF of the given objects (numbered from 1; the first is the catalog), with a correct
    /// cross-reference table.
    fn pdf_of(objects: &[Vec<u8>]) -> Vec<u8> {
        let mut pdf = b"%PDF-1.4\n".to_vec();
        let mut offsets = Vec::new();
        for (i, object) in objects.iter().enumerate() {
            offsets.push(pdf.len());
            pdf.extend(format!("{} 0 obj\n", i + 1).bytes());
            pdf.extend(object);
            pdf.extend(b"\nendobj\n");
        }
        let xref = pdf.len();
        pdf.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).bytes());
        for offset in offsets {
            pdf.extend(format!("{offset:010} 00000 n \n").bytes());
        }
        pdf.extend(
            format!(
                "trailer\n<</Size {}/Root 1 0 R>>\nstartxref\n{xref}\n%%EOF\n",
                objects.len() + 1
            )
            .bytes(),
        );
        pdf
    }

    /// A stream object with its `/Length`.
    fn stream(dict: &str, data: &[u8]) -> Vec<u8> {
        let mut object = format!("<<{dict}/Length {}>>\nstream\n", data.len()).into_bytes();
        object.extend(data);
        object.extend(b"\nendstream");
        object
    }

    /// A PDF of one page per text, each written in Helvetica at the top of a Letter page
    /// (an empty text: a page without text).
    pub(crate) fn pages_pdf(pages: &[&str]) -> Vec<u8> {
        let kids: Vec<String> = (0..pages.len())
            .map(|page| format!("{} 0 R", 4 + 2 * page))
            .collect();
        let mut objects = vec![
            CATALOG.to_vec(),
            format!(
                "<</Type/Pages/Kids[{}]/Count {}>>",
                kids.join(" "),
                pages.len()
            )
            .into_bytes(),
            b"<</Type/Font/Subtype/Type1/BaseFont/Helvetica/Encoding/WinAnsiEncoding>>".to_vec(),
        ];
        for (page, text) in pages.iter().enumerate() {
            objects.push(
                format!(
                    "<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]/Contents {} 0 R\
                     /Resources<</Font<</F1 3 0 R>>>>>>",
                    5 + 2 * page
                )
                .into_bytes(),
            );
            let content = if text.is_empty() {
                String::new()
            } else {
                format!("BT /F1 12 Tf 72 720 Td ({text}) Tj ET")
            };
            objects.push(stream("", content.as_bytes()));
        }
        pdf_of(&objects)
    }

    #[test]
    fn pages_are_separated_by_form_feeds() {
        let pdf = pages_pdf(&["Lift and drag", "", "Turbine blades crack"]);
        let got = extract(&pdf, &Budget::unlimited()).unwrap();
        assert_eq!(got.body, "Lift and drag\u{c}\u{c}Turbine blades crack");
        assert_eq!(got.title, None);
        let one = extract(&pages_pdf(&["Only page"]), &Budget::unlimited()).unwrap();
        assert_eq!(one.body, "Only page");
        // A page break is extracted text too: the cap counts it ("Lift" spends 8 bytes, one
        // more per glyph for a separator, and each break 1).
        let pdf = pages_pdf(&["Lift", "", ""]);
        let fits = extract(&pdf, &Budget::new(10, Duration::from_secs(60))).unwrap();
        assert_eq!(fits.body, "Lift\u{c}\u{c}");
        let err = extract(&pdf, &Budget::new(9, Duration::from_secs(60))).unwrap_err();
        assert!(matches!(err, ExtractError::TooLarge { .. }), "{err}");
    }

    const CATALOG: &[u8] = b"<</Type/Catalog/Pages 2 0 R>>";
    const PAGES: &[u8] = b"<</Type/Pages/Kids[3 0 R]/Count 1>>";

    /// A one-page PDF whose content stream is a deflate bomb of `size` spaces.
    fn bomb_pdf(size: usize) -> Vec<u8> {
        use flate2::write::ZlibEncoder;
        use std::io::Write as _;
        let mut encoder = ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        let block = vec![b' '; 1 << 20];
        for _ in 0..size >> 20 {
            encoder.write_all(&block).unwrap();
        }
        let data = encoder.finish().unwrap();
        pdf_of(&[
            CATALOG.to_vec(),
            PAGES.to_vec(),
            b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]/Contents 4 0 R>>".to_vec(),
            stream("/Filter/FlateDecode", &data),
        ])
    }

    #[test]
    fn forms_that_draw_themselves_are_refused_not_followed() {
        let page = b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]/Contents 4 0 R\
            /Resources<</XObject<</F1 5 0 R>>>>>>"
            .to_vec();
        let self_drawing = pdf_of(&[
            CATALOG.to_vec(),
            PAGES.to_vec(),
            page.clone(),
            stream("", b"/F1 Do"),
            stream(
                "/Type/XObject/Subtype/Form/BBox[0 0 10 10]/Resources<</XObject<</F1 5 0 R>>>>",
                b"/F1 Do",
            ),
        ]);
        let err = extract(&self_drawing, &Budget::unlimited()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "corrupt PDF: form XObjects draw themselves or nest too deeply"
        );
        // Forms sharing one resource dictionary that lists themselves are fine when they do
        // not draw themselves (producers often share one dictionary).
        let shared = pdf_of(&[
            CATALOG.to_vec(),
            PAGES.to_vec(),
            page,
            stream("", b"/F1 Do"),
            stream(
                "/Type/XObject/Subtype/Form/BBox[0 0 10 10]/Resources<</XObject<</F1 5 0 R>>>>",
                b"0 0 m 10 10 l S",
            ),
        ]);
        assert_eq!(extract(&shared, &Budget::unlimited()).unwrap().body, "");
    }

    #[test]
    fn a_deflate_bomb_inside_a_pdf_is_too_large() {
        // 16 MiB of content stream: more than STREAM_FACTOR times the 1 MiB cap.
        let bomb = bomb_pdf(16 << 20);
        assert!(bomb.len() < 200_000, "{}", bomb.len());
        let budget = Budget::new(1 << 20, Duration::from_secs(60));
        let err = extract(&bomb, &budget).unwrap_err();
        assert!(
            matches!(
                err,
                ExtractError::TooLarge {
                    what: "decompressed PDF streams",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn an_expired_budget_stops_extraction() {
        let err = extract(SAMPLE, &Budget::expired()).unwrap_err();
        assert!(matches!(err, ExtractError::Timeout { .. }), "{err}");
    }

    #[test]
    fn tidy_keeps_paragraphs() {
        assert_eq!(tidy("\n\n a \n\n\n\nb\nc  \n\n"), "a\n\nb\nc");
    }
}
