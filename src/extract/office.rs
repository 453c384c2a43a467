//! Office documents: Word (DOCX), PowerPoint (PPTX), Excel (XLSX) and OpenDocument (ODT, ODS,
//! ODP), all zip containers read through [`Package`] so that their decompressed size is capped.
//!
//! DOCX, PPTX and OpenDocument are read from their XML parts with [`markup`] role tables; XLSX
//! goes through `calamine` (shared strings, number formats), after the whole archive has been
//! proven to fit the budget. Password-protected OOXML files are not zip files but OLE2 compound
//! files holding an `EncryptedPackage`; OpenDocument marks encrypted parts in its manifest. Both
//! are reported as [`ExtractError::Encrypted`]. Not handled: legacy binary `.doc`/`.xls`/`.ppt`.
//!
//! Structure for passages, as Markdown heading lines: DOCX paragraphs in a heading style (one
//! its `word/styles.xml` gives a level by outline level, built-in name `heading N` or `Title`,
//! or `w:basedOn`, whatever the language of the style's id: [`WordStyles`]; without a
//! definition, the ids `Heading1` to `Heading6`) or with an outline level; OpenDocument `text:h` by its outline level; each PPTX
//! slide a section under its title (the title placeholder's text), or under `Slide N` when it
//! has none.

use std::io::Cursor;

use calamine::{Data, Reader as _, Xlsx};
use quick_xml::events::BytesStart;

use super::budget::Budget;
use super::markup::{self, HeadingOf, Roles, attribute, no_headings};
use super::text::TextSink;
use super::word_styles::WordStyles;
use super::zipped::Package;
use super::{ExtractError, Extracted};

/// The OLE2 compound-file signature.
const OLE2_MAGIC: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

/// Slides, sheets or parts read at most, so that an archive of millions of tiny entries cannot
/// keep the extraction busy until its deadline.
const MAX_PARTS: usize = 10_000;

const WORD: Roles = Roles {
    text: &["t"],
    lines: &["p", "tr"],
    breaks: &["br", "cr"],
    spaces: &["tab", "tc", "noBreakHyphen"],
    skip: &["delText", "instrText"],
    heading: word_heading_unstyled,
};

const DRAWING: Roles = Roles {
    text: &["t"],
    lines: &["p", "tr"],
    breaks: &["br"],
    spaces: &["tab", "tc"],
    skip: &[],
    heading: slide_title,
};

/// Speaker notes: no headings (a notes page's title placeholder is its slide's image).
const NOTES: Roles = Roles {
    heading: no_headings,
    ..DRAWING
};

const OPEN_DOCUMENT: Roles = Roles {
    text: &[],
    lines: &["p", "h", "table-row", "page"],
    breaks: &["line-break"],
    spaces: &["s", "tab", "table-cell"],
    skip: &[
        "tracked-changes",
        "annotation",
        "forms",
        "scripts",
        "font-face-decls",
        "automatic-styles",
        "sequence-decls",
    ],
    heading: open_document_heading,
};

/// The heading level of a Word paragraph: its style's (`w:pStyle`) as `styles` defines it, or
/// for a style `styles` does not define, its id `Heading1` to `Heading6`; or its outline
/// level 0 to 5 (`w:outlineLvl`; 9 is body text).
fn word_heading(tag: &BytesStart<'_>, styles: &WordStyles) -> Option<usize> {
    let level = match tag.local_name().as_ref() {
        "pStyle" => {
            let id = attribute(tag, "val")?;
            match styles.level(&id) {
                Some(level) => level?,
                None => id
                    .to_ascii_lowercase()
                    .strip_prefix("heading")?
                    .parse()
                    .ok()?,
            }
        }
        "outlineLvl" => attribute(tag, "val")?.parse::<usize>().ok()? + 1,
        _ => return None,
    };
    (1..=6).contains(&level).then_some(level)
}

/// [`word_heading`] without a `styles.xml`: by style id only.
fn word_heading_unstyled(tag: &BytesStart<'_>) -> Option<usize> {
    word_heading(tag, &WordStyles::default())
}

/// The heading level of an OpenDocument `text:h`: its `text:outline-level` (1 when absent).
fn open_document_heading(tag: &BytesStart<'_>) -> Option<usize> {
    if tag.local_name().as_ref() != "h" {
        return None;
    }
    let level = attribute(tag, "outline-level").map_or(Some(1), |level| level.parse().ok())?;
    Some(level.clamp(1, 6))
}

/// Level 1 for the title placeholder of a slide (`<p:ph type="title"/>` or `ctrTitle`).
fn slide_title(tag: &BytesStart<'_>) -> Option<usize> {
    let title = tag.local_name().as_ref() == "ph"
        && matches!(
            attribute(tag, "type").as_deref(),
            Some("title" | "ctrTitle")
        );
    title.then_some(1)
}

/// Whether a slide's XML has a title placeholder.
fn has_title(slide: &[u8]) -> bool {
    [&b"type=\"title\""[..], b"type=\"ctrTitle\""]
        .iter()
        .any(|marker| slide.windows(marker.len()).any(|w| w == *marker))
}

/// Refuses OLE2 files given under an OOXML name: encrypted OOXML, or a legacy binary file.
fn refuse_ole2(bytes: &[u8], format: &'static str) -> Result<(), ExtractError> {
    if !bytes.starts_with(&OLE2_MAGIC) {
        return Ok(());
    }
    let marker: Vec<u8> = "EncryptedPackage"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    if bytes.windows(marker.len()).any(|w| w == marker) {
        Err(ExtractError::Encrypted { format })
    } else {
        Err(ExtractError::Corrupt {
            format,
            message: "this is a legacy binary Office (OLE2) file, not a zip-based one".to_owned(),
        })
    }
}

/// The title in `docProps/core.xml`, if any.
fn core_title(package: &mut Package<'_>) -> Result<Option<String>, ExtractError> {
    Ok(package
        .read("docProps/core.xml")?
        .and_then(|xml| markup::first_text(&xml, "title")))
}

/// Entries `prefix<N>.xml`, in numeric order of N (`slide2` before `slide10`).
fn numbered(names: &[String], prefix: &str) -> Vec<String> {
    let mut found: Vec<(u64, &String)> = names
        .iter()
        .filter_map(|name| {
            let n = name.strip_prefix(prefix)?.strip_suffix(".xml")?;
            Some((n.parse().ok()?, name))
        })
        .collect();
    found.sort();
    found
        .into_iter()
        .take(MAX_PARTS)
        .map(|(_, n)| n.clone())
        .collect()
}

/// DOCX: the body, then headers, footers, footnotes and endnotes.
pub(super) fn docx(bytes: &[u8], budget: &Budget) -> Result<Extracted, ExtractError> {
    const FORMAT: &str = "DOCX";
    refuse_ole2(bytes, FORMAT)?;
    let mut package = Package::open(bytes, FORMAT, budget)?;
    let names = package.names();
    let mut parts = vec!["word/document.xml".to_owned()];
    for prefix in ["word/header", "word/footer"] {
        parts.extend(numbered(&names, prefix));
    }
    parts.extend(
        ["word/footnotes.xml", "word/endnotes.xml"]
            .into_iter()
            .filter(|p| package.has(p))
            .map(str::to_owned),
    );
    let parts: Vec<(String, &Roles)> = parts.into_iter().map(|part| (part, &WORD)).collect();
    let styles = match package.read("word/styles.xml")? {
        Some(xml) => WordStyles::parse(&xml, budget)?,
        None => WordStyles::default(),
    };
    let heading = |tag: &BytesStart<'_>| word_heading(tag, &styles);
    parts_text(
        &mut package,
        &parts,
        Some(&heading),
        budget,
        FORMAT,
        |_, _| None,
    )
}

/// The text of `parts` (each read with its roles, its headings by `heading` when given) in
/// order, one block each, titled by `docProps/core.xml`; `section` gives the heading, if any,
/// written before a part (its index and XML).
fn parts_text(
    package: &mut Package<'_>,
    parts: &[(String, &Roles)],
    heading: Option<&HeadingOf<'_>>,
    budget: &Budget,
    format: &'static str,
    section: impl Fn(usize, &[u8]) -> Option<String>,
) -> Result<Extracted, ExtractError> {
    let mut sink = TextSink::default();
    for (index, (part, roles)) in parts.iter().enumerate() {
        let xml = package.require(part)?;
        if let Some(heading) = section(index, &xml) {
            sink.push_str("# ");
            sink.push_str(&heading);
            sink.line();
        }
        let heading = heading.unwrap_or(&roles.heading);
        markup::part_text_headed(&xml, roles, heading, &mut sink, budget, format, part)?;
        sink.line();
    }
    Ok(Extracted {
        body: sink.finish(),
        title: core_title(package)?,
    })
}

/// PPTX: each slide in order (a section under its title, or `Slide N`), then the speaker
/// notes.
pub(super) fn pptx(bytes: &[u8], budget: &Budget) -> Result<Extracted, ExtractError> {
    const FORMAT: &str = "PPTX";
    refuse_ole2(bytes, FORMAT)?;
    let mut package = Package::open(bytes, FORMAT, budget)?;
    let names = package.names();
    let parts = numbered(&names, "ppt/slides/slide");
    if parts.is_empty() && !package.has("ppt/presentation.xml") {
        return Err(ExtractError::Corrupt {
            format: FORMAT,
            message: "the part ppt/presentation.xml is missing".to_owned(),
        });
    }
    let slides = parts.len();
    let mut parts: Vec<(String, &Roles)> = parts.into_iter().map(|part| (part, &DRAWING)).collect();
    parts.extend(
        numbered(&names, "ppt/notesSlides/notesSlide")
            .into_iter()
            .map(|part| (part, &NOTES)),
    );
    parts_text(&mut package, &parts, None, budget, FORMAT, |index, xml| {
        (index < slides && !has_title(xml)).then(|| format!("Slide {}", index + 1))
    })
}

/// XLSX: every sheet's name, then its rows, cells separated by tabs.
pub(super) fn xlsx(bytes: &[u8], budget: &Budget) -> Result<Extracted, ExtractError> {
    const FORMAT: &str = "XLSX";
    refuse_ole2(bytes, FORMAT)?;
    let title = {
        let mut package = Package::open(bytes, FORMAT, budget)?;
        package.check_all()?;
        core_title(&mut package)?
    };
    let corrupt = |e: calamine::XlsxError| ExtractError::Corrupt {
        format: FORMAT,
        message: e.to_string(),
    };
    let mut workbook = Xlsx::new(Cursor::new(bytes)).map_err(corrupt)?;
    let mut body = String::new();
    for name in workbook.sheet_names().into_iter().take(MAX_PARTS) {
        budget.check_time()?;
        let range = workbook.worksheet_range(&name).map_err(corrupt)?;
        body.push_str(&name);
        body.push('\n');
        for row in range.rows() {
            let mut first = true;
            for cell in row {
                if matches!(cell, Data::Empty) {
                    continue;
                }
                if !first {
                    body.push('\t');
                }
                first = false;
                use std::fmt::Write as _;
                let _ = write!(body, "{cell}");
            }
            if !first {
                body.push('\n');
            }
        }
        budget.check_time()?;
    }
    let body = body.trim_end().to_owned();
    Ok(Extracted { body, title })
}

/// OpenDocument text, spreadsheet or presentation: `content.xml`, titled by `meta.xml`.
pub(super) fn open_document(
    bytes: &[u8],
    format: &'static str,
    budget: &Budget,
) -> Result<Extracted, ExtractError> {
    let mut package = Package::open(bytes, format, budget)?;
    if let Some(manifest) = package.read("META-INF/manifest.xml")?
        && manifest
            .windows(b"encryption-data".len())
            .any(|w| w == b"encryption-data")
    {
        return Err(ExtractError::Encrypted { format });
    }
    let content = package.require("content.xml")?;
    let mut sink = TextSink::default();
    markup::part_text(
        &content,
        &OPEN_DOCUMENT,
        &mut sink,
        budget,
        format,
        "content.xml",
    )?;
    let title = package
        .read("meta.xml")?
        .and_then(|xml| markup::first_text(&xml, "title"));
    Ok(Extracted {
        body: sink.finish(),
        title,
    })
}

#[cfg(test)]
pub(super) mod tests {
    use std::time::Duration;

    use super::*;
    use crate::extract::word_styles::tests::styles_xml;
    use crate::extract::zipped::tests::{build_zip, with_entry};

    fn core(title: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\
             <cp:coreProperties xmlns:cp=\"http://schemas.openxmlformats.org/package/2006/metadata/core-properties\" \
             xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><dc:title>{title}</dc:title></cp:coreProperties>"
        )
    }

    /// A DOCX as Word writes it, reduced to the parts text extraction reads.
    pub(in crate::extract) fn docx_bytes(paragraphs: &[&str], title: &str) -> Vec<u8> {
        let body: String = paragraphs
            .iter()
            .map(|p| format!("<w:p><w:r><w:t xml:space=\"preserve\">{p}</w:t></w:r></w:p>"))
            .collect();
        let document = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\
             <w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\">\
             <w:body>{body}<w:sectPr/></w:body></w:document>"
        );
        build_zip(&[
            ("[Content_Types].xml", b"<Types/>"),
            ("word/document.xml", document.as_bytes()),
            ("docProps/core.xml", core(title).as_bytes()),
        ])
    }

    #[test]
    fn docx_body_headers_and_title() {
        let document = "<w:document xmlns:w=\"w\"><w:body>\
            <w:p><w:r><w:t>Pelican</w:t></w:r><w:r><w:rPr><w:b/></w:rPr><w:t xml:space=\"preserve\"> ledger</w:t></w:r></w:p>\
            <w:p><w:del><w:r><w:delText>removed</w:delText></w:r></w:del><w:r><w:instrText>PAGE</w:instrText></w:r>\
            <w:r><w:t>caf&#233;</w:t><w:tab/><w:t>two</w:t><w:br/><w:t>three</w:t></w:r></w:p>\
            <w:tbl><w:tr><w:tc><w:p><w:r><w:t>cell1</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>cell2</w:t></w:r></w:p></w:tc></w:tr></w:tbl>\
            </w:body></w:document>";
        let header = "<w:hdr xmlns:w=\"w\"><w:p><w:r><w:t>Header words</w:t></w:r></w:p></w:hdr>";
        let notes = "<w:footnotes xmlns:w=\"w\"><w:footnote><w:p><w:r><w:t>A footnote</w:t></w:r></w:p></w:footnote></w:footnotes>";
        let bytes = build_zip(&[
            ("word/document.xml", document.as_bytes()),
            ("word/header1.xml", header.as_bytes()),
            ("word/footnotes.xml", notes.as_bytes()),
            ("docProps/core.xml", core("Annual &amp; Final").as_bytes()),
        ]);
        let got = docx(&bytes, &Budget::unlimited()).unwrap();
        assert_eq!(
            got.body,
            "Pelican ledger\ncaf\u{e9} two\nthree\ncell1\ncell2\nHeader words\nA footnote"
        );
        assert_eq!(got.title.as_deref(), Some("Annual & Final"));
        let plain = docx(&docx_bytes(&["only text"], ""), &Budget::unlimited()).unwrap();
        assert_eq!(plain.body, "only text");
        assert_eq!(plain.title, None);
    }

    #[test]
    fn pptx_slides_in_numeric_order_then_notes() {
        let slide = |text: &str| {
            format!(
                "<p:sld xmlns:p=\"p\" xmlns:a=\"a\"><p:cSld><p:spTree><p:sp><p:txBody>\
                 <a:p><a:r><a:t>{text}</a:t></a:r></a:p><a:p><a:r><a:t>more</a:t></a:r><a:br/><a:r><a:t>x</a:t></a:r></a:p>\
                 </p:txBody></p:sp></p:spTree></p:cSld></p:sld>"
            )
        };
        let (s1, s2, s10) = (slide("first"), slide("second"), slide("tenth"));
        let note = "<p:notes xmlns:p=\"p\" xmlns:a=\"a\"><a:p><a:r><a:t>speaker note</a:t></a:r></a:p></p:notes>";
        let bytes = build_zip(&[
            ("ppt/presentation.xml", b"<p:presentation xmlns:p=\"p\"/>"),
            ("ppt/slides/slide10.xml", s10.as_bytes()),
            ("ppt/slides/slide2.xml", s2.as_bytes()),
            ("ppt/slides/slide1.xml", s1.as_bytes()),
            ("ppt/notesSlides/notesSlide1.xml", note.as_bytes()),
            ("docProps/core.xml", core("Deck").as_bytes()),
        ]);
        let got = pptx(&bytes, &Budget::unlimited()).unwrap();
        assert_eq!(
            got.body,
            "# Slide 1\nfirst\nmore\nx\n# Slide 2\nsecond\nmore\nx\n# Slide 3\ntenth\nmore\nx\n\
             speaker note"
        );
        assert_eq!(got.title.as_deref(), Some("Deck"));
    }

    /// A PPTX whose slides are `(title placeholder text, body text)`.
    pub(crate) fn pptx_bytes(slides: &[(Option<&str>, &str)]) -> Vec<u8> {
        let shape = |placeholder: &str, text: &str| {
            format!(
                "<p:sp><p:nvSpPr><p:cNvPr id=\"2\" name=\"s\"/><p:cNvSpPr/><p:nvPr>{placeholder}</p:nvPr>\
                 </p:nvSpPr><p:txBody><a:bodyPr/><a:p><a:r><a:t>{text}</a:t></a:r></a:p></p:txBody></p:sp>"
            )
        };
        let xml: Vec<String> = slides
            .iter()
            .map(|(title, body)| {
                let title = title.map_or(String::new(), |title| {
                    shape("<p:ph type=\"title\"/>", title)
                });
                format!(
                    "<p:sld xmlns:p=\"p\" xmlns:a=\"a\"><p:cSld><p:spTree>{title}{}</p:spTree>\
                     </p:cSld></p:sld>",
                    shape("<p:ph idx=\"1\"/>", body)
                )
            })
            .collect();
        let names: Vec<String> = (1..=slides.len())
            .map(|n| format!("ppt/slides/slide{n}.xml"))
            .collect();
        let mut entries: Vec<(&str, &[u8])> =
            vec![("ppt/presentation.xml", b"<p:presentation xmlns:p=\"p\"/>")];
        entries.extend(
            names
                .iter()
                .map(String::as_str)
                .zip(xml.iter().map(String::as_bytes)),
        );
        build_zip(&entries)
    }

    #[test]
    fn pptx_slides_are_sections_under_their_titles() {
        let bytes = pptx_bytes(&[
            (Some("Walrus strategy"), "Krill first."),
            (None, "No title here."),
            (Some("Risks &amp; ice"), "Thin ice."),
        ]);
        let got = pptx(&bytes, &Budget::unlimited()).unwrap();
        assert_eq!(
            got.body,
            "# Walrus strategy\nKrill first.\n# Slide 2\nNo title here.\n# Risks & ice\nThin ice."
        );
        assert_eq!(got.title, None);
    }

    /// A DOCX whose paragraphs are `(style id, text)`.
    pub(crate) fn styled_docx_bytes(paragraphs: &[(&str, &str)]) -> Vec<u8> {
        docx_with_styles(paragraphs, None)
    }

    /// The paragraph styles of a German Word's `styles.xml`: localised ids, built-in names,
    /// outline levels, and a style of its user's based on `heading 1`.
    const GERMAN_STYLES: &[(&str, &str, Option<u8>, Option<&str>)] = &[
        ("Standard", "Normal", None, None),
        ("berschrift1", "heading 1", Some(0), Some("Standard")),
        ("berschrift2", "heading 2", Some(1), Some("Standard")),
        ("Titel", "Title", None, Some("Standard")),
        ("Kapitel", "Kapitel", None, Some("berschrift1")),
    ];

    /// A DOCX as a German Word writes it: paragraphs `(style id, text)` with the ids of
    /// [`GERMAN_STYLES`], and its `styles.xml`.
    pub(crate) fn german_docx_bytes(paragraphs: &[(&str, &str)]) -> Vec<u8> {
        docx_with_styles(paragraphs, Some(&styles_xml(GERMAN_STYLES)))
    }

    /// A DOCX whose paragraphs are `(style id, text)`, with `styles` as its `styles.xml`.
    fn docx_with_styles(paragraphs: &[(&str, &str)], styles: Option<&str>) -> Vec<u8> {
        let body: String = paragraphs
            .iter()
            .map(|(style, text)| {
                let properties = if style.is_empty() {
                    String::new()
                } else {
                    format!("<w:pPr><w:pStyle w:val=\"{style}\"/></w:pPr>")
                };
                format!("<w:p>{properties}<w:r><w:t>{text}</w:t></w:r></w:p>")
            })
            .collect();
        let document = format!(
            "<w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\">\
             <w:body>{body}</w:body></w:document>"
        );
        let core = core("Styled");
        let mut entries: Vec<(&str, &[u8])> = vec![
            ("word/document.xml", document.as_bytes()),
            ("docProps/core.xml", core.as_bytes()),
        ];
        if let Some(styles) = styles {
            entries.push(("word/styles.xml", styles.as_bytes()));
        }
        build_zip(&entries)
    }

    #[test]
    fn docx_heading_styles_come_from_styles_xml_whatever_the_language_of_their_ids() {
        let bytes = german_docx_bytes(&[
            ("Titel", "Jahresbericht"),
            ("Standard", "Vorwort."),
            ("berschrift1", "Einleitung"),
            ("", "Text."),
            ("berschrift2", "Ziele"),
            ("Kapitel", "Ergebnisse"),
            ("Heading3", "Not defined in styles.xml: by its id"),
        ]);
        let got = docx(&bytes, &Budget::unlimited()).unwrap();
        assert_eq!(
            got.body,
            "# Jahresbericht\nVorwort.\n# Einleitung\nText.\n## Ziele\n# Ergebnisse\n\
             ### Not defined in styles.xml: by its id"
        );
        // French, as LibreOffice writes it: the level from the name alone, inherited by a
        // style based on it; a style defined as no heading stays body text whatever its id.
        let french = styles_xml(&[
            ("Titre1", "heading 1", None, None),
            ("Titre2", "Heading 2", None, None),
            ("Conclusion", "Conclusion", None, Some("Titre2")),
            ("Heading1", "Corps de texte", None, None),
        ]);
        let bytes = docx_with_styles(
            &[
                ("Titre1", "Introduction"),
                ("Titre2", "Contexte"),
                ("Conclusion", "Fin"),
                ("Heading1", "Pas un titre"),
            ],
            Some(&french),
        );
        assert_eq!(
            docx(&bytes, &Budget::unlimited()).unwrap().body,
            "# Introduction\n## Contexte\n## Fin\nPas un titre"
        );
    }

    #[test]
    fn docx_heading_styles_and_outline_levels_become_heading_lines() {
        let bytes = styled_docx_bytes(&[
            ("Heading1", "Install"),
            ("", "Run the installer."),
            ("heading2", "On Linux"),
            ("Normal", "Use the package."),
            ("Heading7", "Not a heading level"),
            ("Heading3", ""),
            ("Title", "Styled title"),
        ]);
        let got = docx(&bytes, &Budget::unlimited()).unwrap();
        assert_eq!(
            got.body,
            "# Install\nRun the installer.\n## On Linux\nUse the package.\nNot a heading level\n\
             Styled title"
        );
        assert_eq!(got.title.as_deref(), Some("Styled"));
        let outline = build_zip(&[(
            "word/document.xml",
            b"<w:document xmlns:w=\"w\"><w:body><w:p><w:pPr><w:outlineLvl w:val=\"1\"/></w:pPr>\
              <w:r><w:t>Deep</w:t></w:r></w:p><w:p><w:pPr><w:outlineLvl w:val=\"9\"/></w:pPr>\
              <w:r><w:t>body</w:t></w:r></w:p></w:body></w:document>",
        )]);
        assert_eq!(
            docx(&outline, &Budget::unlimited()).unwrap().body,
            "## Deep\nbody"
        );
    }

    /// A minimal XLSX with one sheet, shared strings and a number.
    pub(in crate::extract) fn xlsx_bytes(sheet: &str, strings: &[&str]) -> Vec<u8> {
        let shared: String = strings
            .iter()
            .map(|s| format!("<si><t>{s}</t></si>"))
            .collect();
        let shared = format!(
            "<sst xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\" count=\"{n}\" uniqueCount=\"{n}\">{shared}</sst>",
            n = strings.len()
        );
        let cells: String = (0..strings.len())
            .map(|i| {
                format!(
                    "<c r=\"{}1\" t=\"s\"><v>{i}</v></c>",
                    (b'A' + i as u8) as char
                )
            })
            .collect();
        let worksheet = format!(
            "<worksheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"><sheetData>\
             <row r=\"1\">{cells}</row><row r=\"2\"><c r=\"A2\"><v>42.5</v></c></row></sheetData></worksheet>"
        );
        let workbook = format!(
            "<workbook xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\" \
             xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\">\
             <sheets><sheet name=\"{sheet}\" sheetId=\"1\" r:id=\"rId1\"/></sheets></workbook>"
        );
        let rels = "<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">\
             <Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet\" Target=\"worksheets/sheet1.xml\"/>\
             <Relationship Id=\"rId2\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings\" Target=\"sharedStrings.xml\"/>\
             </Relationships>";
        let content_types = "<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">\
             <Default Extension=\"xml\" ContentType=\"application/xml\"/>\
             <Override PartName=\"/xl/workbook.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml\"/>\
             </Types>";
        let root_rels = "<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">\
             <Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument\" Target=\"xl/workbook.xml\"/>\
             </Relationships>";
        build_zip(&[
            ("[Content_Types].xml", content_types.as_bytes()),
            ("_rels/.rels", root_rels.as_bytes()),
            ("xl/workbook.xml", workbook.as_bytes()),
            ("xl/_rels/workbook.xml.rels", rels.as_bytes()),
            ("xl/sharedStrings.xml", shared.as_bytes()),
            ("xl/worksheets/sheet1.xml", worksheet.as_bytes()),
        ])
    }

    #[test]
    fn xlsx_sheets_rows_and_cells() {
        let bytes = xlsx_bytes("Budget 2024", &["walrus", "tusk &amp; co"]);
        let got = xlsx(&bytes, &Budget::unlimited()).unwrap();
        assert_eq!(got.body, "Budget 2024\nwalrus\ttusk & co\n42.5");
    }

    #[test]
    fn xlsx_bomb_is_too_large_before_calamine_reads_it() {
        let zeros = vec![b' '; 4 << 20];
        let bytes = with_entry(&xlsx_bytes("S", &["a"]), "xl/media/padding.xml", &zeros);
        let budget = Budget::new(1 << 20, Duration::from_secs(60));
        let err = xlsx(&bytes, &budget).unwrap_err();
        assert!(matches!(err, ExtractError::TooLarge { .. }), "{err}");
    }

    /// An OpenDocument package (ODT, ODS or ODP) around a `content.xml` body.
    pub(crate) fn odf_bytes(mimetype: &str, body: &str, title: &str) -> Vec<u8> {
        let content = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><office:document-content \
             xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" \
             xmlns:text=\"urn:oasis:names:tc:opendocument:xmlns:text:1.0\" \
             xmlns:table=\"urn:oasis:names:tc:opendocument:xmlns:table:1.0\" \
             xmlns:draw=\"urn:oasis:names:tc:opendocument:xmlns:drawing:1.0\" \
             xmlns:presentation=\"urn:oasis:names:tc:opendocument:xmlns:presentation:1.0\">\
             <office:automatic-styles><style:style xmlns:style=\"s\">ignored</style:style></office:automatic-styles>\
             <office:body>{body}</office:body></office:document-content>"
        );
        let meta = format!(
            "<office:document-meta xmlns:office=\"o\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\">\
             <office:meta><dc:title>{title}</dc:title></office:meta></office:document-meta>"
        );
        build_zip(&[
            ("mimetype", mimetype.as_bytes()),
            ("content.xml", content.as_bytes()),
            ("meta.xml", meta.as_bytes()),
            (
                "META-INF/manifest.xml",
                b"<manifest:manifest xmlns:manifest=\"m\"/>",
            ),
        ])
    }

    #[test]
    fn open_document_text_sheet_and_slides() {
        let odt = odf_bytes(
            "application/vnd.oasis.opendocument.text",
            "<office:text><text:h>Heading</text:h><text:p>one<text:s/>two<text:tab/>three\
             <text:line-break/>four <text:span>span</text:span></text:p>\
             <office:annotation><text:p>a comment</text:p></office:annotation>\
             <text:tracked-changes><text:p>deleted</text:p></text:tracked-changes></office:text>",
            "Otter notes",
        );
        let got = open_document(&odt, "ODT", &Budget::unlimited()).unwrap();
        assert_eq!(got.body, "# Heading\none two three\nfour span");
        assert_eq!(got.title.as_deref(), Some("Otter notes"));
        let levels = odf_bytes(
            "application/vnd.oasis.opendocument.text",
            "<office:text><text:h text:outline-level=\"2\">Sub <text:span>part</text:span></text:h>\
             <text:p>words</text:p><text:h text:outline-level=\"9\">Deepest</text:h><text:h/></office:text>",
            "",
        );
        let got = open_document(&levels, "ODT", &Budget::unlimited()).unwrap();
        assert_eq!(got.body, "## Sub part\nwords\n###### Deepest");

        let ods = odf_bytes(
            "application/vnd.oasis.opendocument.spreadsheet",
            "<office:spreadsheet><table:table table:name=\"S\"><table:table-row>\
             <table:table-cell><text:p>alpha</text:p></table:table-cell>\
             <table:table-cell office:value=\"3\"><text:p>3</text:p></table:table-cell></table:table-row>\
             <table:table-row><table:table-cell><text:p>beta</text:p></table:table-cell></table:table-row>\
             </table:table></office:spreadsheet>",
            "",
        );
        let got = open_document(&ods, "ODS", &Budget::unlimited()).unwrap();
        assert_eq!(got.body, "alpha\n3\nbeta");

        let odp = odf_bytes(
            "application/vnd.oasis.opendocument.presentation",
            "<office:presentation><draw:page><draw:frame><draw:text-box><text:p>slide one</text:p>\
             </draw:text-box></draw:frame></draw:page><draw:page><draw:frame><draw:text-box>\
             <text:p>slide two</text:p></draw:text-box></draw:frame></draw:page></office:presentation>",
            "",
        );
        let got = open_document(&odp, "ODP", &Budget::unlimited()).unwrap();
        assert_eq!(got.body, "slide one\nslide two");
    }

    #[test]
    fn encrypted_and_legacy_office_files_are_named() {
        let mut ole2 = OLE2_MAGIC.to_vec();
        ole2.extend([0u8; 64]);
        ole2.extend("EncryptedPackage".encode_utf16().flat_map(u16::to_le_bytes));
        for (f, format) in [
            (docx as fn(&[u8], &Budget) -> _, "DOCX"),
            (pptx, "PPTX"),
            (xlsx, "XLSX"),
        ] {
            let err = f(&ole2, &Budget::unlimited()).unwrap_err();
            assert_eq!(err, ExtractError::Encrypted { format });
            assert!(err.to_string().contains("encrypted"), "{err}");
            let legacy = f(&OLE2_MAGIC, &Budget::unlimited()).unwrap_err();
            assert!(
                legacy.to_string().contains("legacy binary Office"),
                "{legacy}"
            );
        }
        let encrypted_odt = build_zip(&[
            ("mimetype", b"application/vnd.oasis.opendocument.text"),
            ("content.xml", b"\x01\x02binary"),
            (
                "META-INF/manifest.xml",
                b"<manifest:manifest xmlns:manifest=\"m\"><manifest:file-entry manifest:full-path=\"content.xml\">\
                  <manifest:encryption-data manifest:checksum-type=\"SHA1/1K\"/></manifest:file-entry></manifest:manifest>",
            ),
        ]);
        assert_eq!(
            open_document(&encrypted_odt, "ODT", &Budget::unlimited()).unwrap_err(),
            ExtractError::Encrypted { format: "ODT" }
        );
    }

    #[test]
    fn corrupt_parts_are_reported() {
        let broken = build_zip(&[(
            "word/document.xml",
            b"<w:document xmlns:w=\"w\"><w:body><w:p></w:body>",
        )]);
        let err = docx(&broken, &Budget::unlimited()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("corrupt DOCX: malformed XML in word/document.xml"),
            "{err}"
        );
        let missing = build_zip(&[("other.xml", b"<a/>")]);
        let err = docx(&missing, &Budget::unlimited()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "corrupt DOCX: the part word/document.xml is missing"
        );
        let whole = docx_bytes(&["some words here"], "t");
        let err = docx(&whole[..whole.len() / 2], &Budget::unlimited()).unwrap_err();
        assert!(matches!(err, ExtractError::Corrupt { .. }), "{err}");
    }
}
