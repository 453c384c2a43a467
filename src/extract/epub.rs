//! EPUB (2 and 3): the XHTML documents of the spine, in reading order, through the HTML
//! extractor; the title from the package document's `dc:title`.
//!
//! Follows `META-INF/container.xml` to the package document (OPF), resolves the spine's
//! `idref`s through the manifest, and reads each part through the capped [`Package`]. Books whose
//! spine documents are listed in `META-INF/encryption.xml` (DRM) are reported as encrypted; font
//! obfuscation, which encrypts only fonts, does not matter. Not read: navigation documents
//! outside the spine, images, fonts.

use std::collections::HashMap;

use quick_xml::events::Event;
use quick_xml::reader::Reader;

use super::budget::Budget;
use super::decode::{self, Declared};
use super::markup::{self, attribute};
use super::zipped::Package;
use super::{ExtractError, Extracted, html};

const FORMAT: &str = "EPUB";
/// Spine documents read at most.
const MAX_CHAPTERS: usize = 10_000;

/// Extracts the text of an EPUB book.
pub(super) fn extract(bytes: &[u8], budget: &Budget) -> Result<Extracted, ExtractError> {
    let mut package = Package::open(bytes, FORMAT, budget)?;
    let container = package.require("META-INF/container.xml")?;
    let opf_path = attribute_values(&container, "rootfile", "full-path")
        .into_iter()
        .next()
        .ok_or_else(|| corrupt("META-INF/container.xml names no package document"))?;
    let opf = package.require(&opf_path)?;
    let base = opf_path.rsplit_once('/').map_or("", |(dir, _)| dir);
    let book = Opf::parse(&opf)?;
    let encrypted: Vec<String> = match package.read("META-INF/encryption.xml")? {
        Some(xml) => attribute_values(&xml, "CipherReference", "URI")
            .into_iter()
            .map(|uri| percent_decode(&uri))
            .collect(),
        None => Vec::new(),
    };
    let mut body = String::new();
    for idref in book.spine.iter().take(MAX_CHAPTERS) {
        budget.check_time()?;
        let Some(href) = book.manifest.get(idref) else {
            continue;
        };
        let path = join(base, &percent_decode(href));
        if encrypted.contains(&path) {
            return Err(ExtractError::Encrypted { format: FORMAT });
        }
        let Some(xhtml) = package.read(&path)? else {
            continue;
        };
        let text = decode::decode_with_hint(&xhtml, None, Declared::HtmlMeta);
        let chapter = html::extract(&text);
        if !chapter.body.is_empty() {
            if !body.is_empty() {
                body.push('\n');
            }
            body.push_str(&chapter.body);
        }
    }
    Ok(Extracted {
        body,
        title: markup::first_text(&opf, "title"),
    })
}

fn corrupt(message: &str) -> ExtractError {
    ExtractError::Corrupt {
        format: FORMAT,
        message: message.to_owned(),
    }
}

/// The manifest (id → href) and spine (idrefs in reading order) of a package document.
struct Opf {
    manifest: HashMap<String, String>,
    spine: Vec<String>,
}

impl Opf {
    fn parse(xml: &[u8]) -> Result<Opf, ExtractError> {
        let text = decode::decode_with_hint(xml, None, Declared::XmlDecl);
        let mut reader = Reader::from_str(&text);
        let mut opf = Opf {
            manifest: HashMap::new(),
            spine: Vec::new(),
        };
        loop {
            let event = reader
                .read_event()
                .map_err(|e| corrupt(&format!("malformed XML in the package document: {e}")))?;
            match event {
                Event::Start(tag) | Event::Empty(tag) => match tag.local_name().as_ref() {
                    "item" => {
                        if let (Some(id), Some(href)) =
                            (attribute(&tag, "id"), attribute(&tag, "href"))
                        {
                            opf.manifest.insert(id, href);
                        }
                    }
                    "itemref" => opf.spine.extend(attribute(&tag, "idref")),
                    _ => {}
                },
                Event::Eof => return Ok(opf),
                _ => {}
            }
        }
    }
}

/// Every value of attribute `name` on elements named `element` (local names); a broken
/// document yields what was found before the break.
fn attribute_values(xml: &[u8], element: &str, name: &str) -> Vec<String> {
    let text = decode::decode_with_hint(xml, None, Declared::XmlDecl);
    let mut reader = Reader::from_str(&text);
    let mut found = Vec::new();
    while let Ok(event) = reader.read_event() {
        match event {
            Event::Start(tag) | Event::Empty(tag) if tag.local_name().as_ref() == element => {
                found.extend(attribute(&tag, name));
            }
            Event::Eof => break,
            _ => {}
        }
    }
    found
}

/// `href` relative to the directory `base`, with `.` and `..` segments resolved.
fn join(base: &str, href: &str) -> String {
    let href = href.split(['#', '?']).next().unwrap_or_default();
    let mut segments: Vec<&str> = if href.starts_with('/') {
        Vec::new()
    } else {
        base.split('/').filter(|s| !s.is_empty()).collect()
    };
    for segment in href.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    segments.join("/")
}

/// Decodes `%XX` escapes of a URI reference (manifest hrefs are URIs); invalid escapes stay.
fn percent_decode(uri: &str) -> String {
    let bytes = uri.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = bytes.get(i + 1..i + 3)
            && let Ok(value) = u8::from_str_radix(std::str::from_utf8(hex).unwrap_or("zz"), 16)
        {
            out.push(value);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::extract::zipped::tests::{build_zip, with_entry};

    const CONTAINER: &[u8] = b"<?xml version=\"1.0\"?><container version=\"1.0\" \
        xmlns=\"urn:oasis:names:tc:opendocument:xmlns:container\"><rootfiles>\
        <rootfile full-path=\"OEBPS/content.opf\" media-type=\"application/oebps-package+xml\"/>\
        </rootfiles></container>";

    fn chapter(title: &str, text: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><html xmlns=\"http://www.w3.org/1999/xhtml\">\
             <head><title>{title}</title></head><body><h1>{title}</h1><p>{text}</p></body></html>"
        )
    }

    /// An EPUB 3 book with two chapters, the second in a sub-folder with a space in its name.
    pub(crate) fn epub_bytes(title: &str, first: &str, second: &str) -> Vec<u8> {
        let opf = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><package xmlns=\"http://www.idpf.org/2007/opf\" version=\"3.0\">\
             <metadata xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><dc:title>{title}</dc:title></metadata>\
             <manifest><item id=\"c2\" href=\"text/chapter%202.xhtml\" media-type=\"application/xhtml+xml\"/>\
             <item id=\"c1\" href=\"chapter1.xhtml\" media-type=\"application/xhtml+xml\"/>\
             <item id=\"css\" href=\"style.css\" media-type=\"text/css\"/></manifest>\
             <spine><itemref idref=\"c1\"/><itemref idref=\"c2\"/><itemref idref=\"missing\"/></spine></package>"
        );
        build_zip(&[
            ("mimetype", b"application/epub+zip"),
            ("META-INF/container.xml", CONTAINER),
            ("OEBPS/content.opf", opf.as_bytes()),
            ("OEBPS/chapter1.xhtml", chapter("One", first).as_bytes()),
            (
                "OEBPS/text/chapter 2.xhtml",
                chapter("Two", second).as_bytes(),
            ),
            ("OEBPS/style.css", b"p { color: red }"),
        ])
    }

    #[test]
    fn spine_order_and_title() {
        let bytes = epub_bytes(
            "Moby &amp; Dick",
            "Call me Ishmael.",
            "The whale &amp; sea.",
        );
        let got = extract(&bytes, &Budget::unlimited()).unwrap();
        assert_eq!(got.body, "# One\nCall me Ishmael.\n# Two\nThe whale & sea.");
        assert_eq!(got.title.as_deref(), Some("Moby & Dick"));
    }

    #[test]
    fn drm_encrypted_chapters_are_reported() {
        let encryption = b"<encryption xmlns=\"urn:oasis:names:tc:opendocument:xmlns:container\" \
            xmlns:enc=\"http://www.w3.org/2001/04/xmlenc#\"><enc:EncryptedData><enc:CipherData>\
            <enc:CipherReference URI=\"OEBPS/chapter1.xhtml\"/></enc:CipherData></enc:EncryptedData></encryption>";
        let book = with_entry(
            &epub_bytes("T", "a", "b"),
            "META-INF/encryption.xml",
            encryption,
        );
        let err = extract(&book, &Budget::unlimited()).unwrap_err();
        assert_eq!(err, ExtractError::Encrypted { format: "EPUB" });
    }

    #[test]
    fn a_book_without_container_is_corrupt() {
        let err = extract(
            &build_zip(&[("mimetype", b"application/epub+zip")]),
            &Budget::unlimited(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "corrupt EPUB: the part META-INF/container.xml is missing"
        );
    }

    #[test]
    fn paths_join_and_decode() {
        assert_eq!(join("OEBPS", "text/a.xhtml"), "OEBPS/text/a.xhtml");
        assert_eq!(join("OEBPS/x", "../a.xhtml#frag"), "OEBPS/a.xhtml");
        assert_eq!(join("", "./a.xhtml"), "a.xhtml");
        assert_eq!(percent_decode("a%20b%zz%C3%A9"), "a b%zz\u{e9}");
    }
}
