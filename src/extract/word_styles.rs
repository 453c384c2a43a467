//! The heading levels of a DOCX's paragraph styles, read from its `word/styles.xml`.
//!
//! A paragraph names its style by id (`w:pStyle w:val="..."`), and Word localises the ids of
//! its built-in styles: a German Word writes `berschrift1`, a French one `Titre1`. The style's
//! definition keeps the built-in name (`w:name w:val="heading 1"`) and may carry an outline
//! level (`w:outlineLvl`) or inherit one through `w:basedOn`. A style's level is, in this order:
//! its own outline level (0 to 5 give levels 1 to 6; 9 is body text, no level), its name
//! (`heading 1` to `heading 6`, `Title` level 1), the level of the style it is based on.
//!
//! Styles are a nicety: a broken `styles.xml` gives the styles read before the break, never an
//! error.

use std::collections::HashMap;

use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

use super::ExtractError;
use super::budget::Budget;
use super::decode::{self, Declared};
use super::markup::attribute;

/// Steps followed along a `w:basedOn` chain, so that a loop of styles ends.
const MAX_BASED_ON: usize = 16;

/// Events between two clock checks.
const EVENTS_PER_CHECK: u32 = 4096;

/// What a paragraph style says about headings.
#[derive(Debug, Default)]
struct Style {
    /// `w:name`, lowercased.
    name: Option<String>,
    /// `w:outlineLvl` of its paragraph properties, as written (0-based; 9 is body text).
    outline: Option<usize>,
    /// The id of the style it is based on.
    based_on: Option<String>,
}

/// The paragraph styles of one DOCX, by style id.
#[derive(Debug, Default)]
pub(super) struct WordStyles {
    styles: HashMap<String, Style>,
}

impl WordStyles {
    /// The paragraph styles of `word/styles.xml`.
    pub(super) fn parse(xml: &[u8], budget: &Budget) -> Result<Self, ExtractError> {
        let text = decode::decode_with_hint(xml, None, Declared::XmlDecl);
        let mut reader = Reader::from_str(&text);
        let mut styles = HashMap::new();
        // The paragraph style being read: its id and what it says so far.
        let mut current: Option<(String, Style)> = None;
        let mut events = 0u32;
        loop {
            events += 1;
            if events.is_multiple_of(EVENTS_PER_CHECK) {
                budget.check_time()?;
            }
            let Ok(event) = reader.read_event() else {
                break;
            };
            match event {
                Event::Start(tag) | Event::Empty(tag) => {
                    let name = tag.local_name();
                    if name.as_ref() == "style" {
                        current = paragraph_style_id(&tag).map(|id| (id, Style::default()));
                    } else if let Some((_, style)) = &mut current {
                        let value = || attribute(&tag, "val");
                        match name.as_ref() {
                            "name" => style.name = value().map(|n| n.to_lowercase()),
                            "basedOn" => style.based_on = value(),
                            "outlineLvl" => style.outline = value().and_then(|v| v.parse().ok()),
                            _ => {}
                        }
                    }
                }
                Event::End(end) if end.local_name().as_ref() == "style" => {
                    if let Some((id, style)) = current.take() {
                        styles.entry(id).or_insert(style);
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        Ok(Self { styles })
    }

    /// The heading level (1 to 6) of the paragraph style `id`: `Some(None)` when the style is
    /// defined and is no heading, `None` when it is not defined here.
    pub(super) fn level(&self, id: &str) -> Option<Option<usize>> {
        let mut style = self.styles.get(id)?;
        for _ in 0..MAX_BASED_ON {
            if let Some(outline) = style.outline {
                return Some(Some(outline + 1).filter(|level| (1..=6).contains(level)));
            }
            if let Some(level) = style.name.as_deref().and_then(level_of_name) {
                return Some(Some(level).filter(|level| (1..=6).contains(level)));
            }
            match style.based_on.as_deref().and_then(|id| self.styles.get(id)) {
                Some(base) => style = base,
                None => break,
            }
        }
        Some(None)
    }
}

/// The id of a `w:style` element that defines a paragraph style (`w:type` absent or
/// `paragraph`; character and table styles cannot be a paragraph's `w:pStyle`).
fn paragraph_style_id(tag: &BytesStart<'_>) -> Option<String> {
    let paragraph = attribute(tag, "type").is_none_or(|kind| kind == "paragraph");
    paragraph.then(|| attribute(tag, "styleId")).flatten()
}

/// The level a built-in style's name gives: `heading N` (lowercased) is N, `title` 1.
fn level_of_name(name: &str) -> Option<usize> {
    if name == "title" {
        return Some(1);
    }
    name.strip_prefix("heading ")?.trim().parse().ok()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A `styles.xml` of paragraph styles `(id, name, outline level, based on)`.
    pub(in crate::extract) fn styles_xml(
        styles: &[(&str, &str, Option<u8>, Option<&str>)],
    ) -> String {
        let styles: String = styles
            .iter()
            .map(|(id, name, outline, based_on)| {
                let based_on =
                    based_on.map_or(String::new(), |b| format!("<w:basedOn w:val=\"{b}\"/>"));
                let outline = outline.map_or(String::new(), |o| {
                    format!("<w:pPr><w:keepNext/><w:outlineLvl w:val=\"{o}\"/></w:pPr>")
                });
                format!(
                    "<w:style w:type=\"paragraph\" w:styleId=\"{id}\"><w:name w:val=\"{name}\"/>\
                     {based_on}<w:qFormat/>{outline}<w:rPr><w:b/></w:rPr></w:style>"
                )
            })
            .collect();
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\
             <w:styles xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\">\
             <w:docDefaults/>{styles}\
             <w:style w:type=\"character\" w:styleId=\"berschrift1Zchn\"><w:name w:val=\"heading 1 Char\"/>\
             <w:basedOn w:val=\"Absatz-Standardschriftart\"/></w:style></w:styles>"
        )
    }

    #[test]
    fn levels_come_from_outline_name_and_based_on() {
        let xml = styles_xml(&[
            ("Standard", "Normal", None, None),
            ("berschrift1", "heading 1", Some(0), Some("Standard")),
            ("berschrift2", "heading 2", None, Some("Standard")),
            ("Titel", "Title", None, Some("Standard")),
            (
                "MeineUeberschrift",
                "Meine Überschrift",
                None,
                Some("berschrift2"),
            ),
            ("Gliederung3", "Gliederung", Some(2), Some("Standard")),
            ("Textkörper", "Body", Some(9), Some("berschrift1")),
            ("heading7", "heading 7", None, None),
            ("Loop1", "loop", None, Some("Loop2")),
            ("Loop2", "loop", None, Some("Loop1")),
        ]);
        let styles = WordStyles::parse(xml.as_bytes(), &Budget::unlimited()).unwrap();
        let cases = [
            ("Standard", Some(None)),
            ("berschrift1", Some(Some(1))),
            ("berschrift2", Some(Some(2))),
            ("Titel", Some(Some(1))),
            ("MeineUeberschrift", Some(Some(2))),
            ("Gliederung3", Some(Some(3))),
            ("Textkörper", Some(None)),
            ("heading7", Some(None)),
            ("Loop1", Some(None)),
            ("berschrift1Zchn", None),
            ("Unknown", None),
        ];
        for (id, expected) in cases {
            assert_eq!(styles.level(id), expected, "{id}");
        }
    }

    #[test]
    fn a_broken_styles_part_keeps_what_was_read_before_the_break() {
        let xml = styles_xml(&[("berschrift1", "heading 1", None, None)]);
        let broken = format!(
            "{}<w:style w:styleId=\"x\"></w:nope>",
            &xml[..xml.len() - "</w:styles>".len()]
        );
        let styles = WordStyles::parse(broken.as_bytes(), &Budget::unlimited()).unwrap();
        assert_eq!(styles.level("berschrift1"), Some(Some(1)));
    }
}
