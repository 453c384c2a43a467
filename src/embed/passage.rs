//! Cutting a document's text into passages: structure first, then the model's token budget.
//!
//! Pages (form feeds, `\x0C`, where extraction marks them) are cut apart first; within a page
//! `text-splitter`'s [`MarkdownSplitter`] keeps the largest units that fit the budget —
//! sections under a heading, then paragraphs and list items, lines, sentences, words — and
//! only a single word longer than the budget is cut into characters. Plain text is Markdown
//! without markup (paragraphs are blank-line separated), so one splitter serves both. Tokens
//! are counted by the [`Embedder`] itself ([`Embedder::count_tokens`]), so a passage never
//! exceeds what the model reads. Neighbouring passages share up to `overlap_tokens`.
//!
//! Each passage knows the ATX headings (`# ...` to `###### ...`, outside fenced code) above
//! its start and, in a text with form feeds, the page it starts on. Pure: no I/O, the same
//! text and settings always give the same passages.

use text_splitter::{ChunkConfig, ChunkSizer, MarkdownSplitter};

use super::{Embedder, Passage, PassageHash};
use crate::config::embedding::PassageSettings;

/// The page separator some extractors write between pages.
const FORM_FEED: char = '\u{c}';

/// Counts a chunk's size in the embedder's tokens.
struct ModelTokens<'a>(&'a dyn Embedder);

impl ChunkSizer for ModelTokens<'_> {
    fn size(&self, chunk: &str) -> usize {
        self.0.count_tokens(chunk)
    }
}

/// The passages of a document's text, in order, each within the token budget as `embedder`
/// counts it, at most `settings.max_passages_per_document` of them; also whether that cap cut
/// some off. Empty or blank text has none.
pub fn passages_of(
    text: &str,
    embedder: &dyn Embedder,
    settings: &PassageSettings,
) -> (Vec<Passage>, bool) {
    let capacity = settings.max_tokens.max(1);
    let config = ChunkConfig::new(capacity).with_sizer(ModelTokens(embedder));
    // Validation keeps the overlap below the budget; a larger one means none.
    let config = if settings.overlap_tokens < capacity {
        config
            .with_overlap(settings.overlap_tokens)
            .expect("overlap below capacity")
    } else {
        config
    };
    let splitter = MarkdownSplitter::new(config);
    let paged = text.contains(FORM_FEED);
    let mut headings = HeadingPath::new(text);
    let mut passages = Vec::new();
    let mut page_start = 0;
    for (page_index, page) in text.split(FORM_FEED).enumerate() {
        for (offset, chunk) in splitter.chunk_indices(page) {
            if chunk.trim().is_empty() {
                continue;
            }
            if passages.len() >= settings.max_passages_per_document {
                return (passages, true);
            }
            let start = page_start + offset;
            let end = start + chunk.len();
            // With overlap, text-splitter may follow a short chunk with one that contains it:
            // keep the larger, so that passages start in order and none repeats another.
            while passages.last().is_some_and(|p: &Passage| p.start >= start) {
                passages.pop();
            }
            if passages.last().is_some_and(|p: &Passage| p.end >= end) {
                continue;
            }
            passages.push(Passage {
                ordinal: passages.len() as u32,
                start,
                end,
                heading: headings.at(start),
                page: paged.then(|| page_index as u32 + 1),
                content_hash: PassageHash::of(chunk),
                text: chunk.to_owned(),
            });
        }
        page_start += page.len() + FORM_FEED.len_utf8();
    }
    (passages, false)
}

/// One ATX heading of the text.
struct Heading<'t> {
    /// Byte offset of its line.
    at: usize,
    /// 1 to 6.
    level: usize,
    title: &'t str,
}

/// The headings above a position, for positions asked in increasing order.
struct HeadingPath<'t> {
    headings: std::vec::IntoIter<Heading<'t>>,
    next: Option<Heading<'t>>,
    open: Vec<Heading<'t>>,
}

impl<'t> HeadingPath<'t> {
    fn new(text: &'t str) -> Self {
        let mut headings = atx_headings(text).into_iter();
        let next = headings.next();
        Self {
            headings,
            next,
            open: Vec::new(),
        }
    }

    /// The headings whose line starts at or before `position`, outermost first, joined with
    /// " > "; `None` when there are none. `position` never decreases between calls.
    fn at(&mut self, position: usize) -> Option<String> {
        while let Some(heading) = self.next.take_if(|h| h.at <= position) {
            while self.open.last().is_some_and(|o| o.level >= heading.level) {
                self.open.pop();
            }
            self.open.push(heading);
            self.next = self.headings.next();
        }
        (!self.open.is_empty()).then(|| {
            self.open
                .iter()
                .map(|h| h.title)
                .collect::<Vec<_>>()
                .join(" > ")
        })
    }
}

/// The ATX headings of Markdown text outside fenced code blocks, in order.
fn atx_headings(text: &str) -> Vec<Heading<'_>> {
    let mut found = Vec::new();
    let mut fence: Option<&str> = None;
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let line_start = at;
        at += line.len();
        if line.len() - line.trim_start_matches(' ').len() >= 4 {
            continue; // indented code
        }
        let trimmed = line.trim();
        if let Some(marker) = fence {
            if trimmed.starts_with(marker) {
                fence = None;
            }
            continue;
        }
        if let Some(marker) = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m)) {
            fence = Some(marker);
            continue;
        }
        let level = trimmed.bytes().take_while(|&b| b == b'#').count();
        let rest = &trimmed[level..];
        if !(1..=6).contains(&level) || !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
            continue;
        }
        let title = rest.trim().trim_end_matches('#').trim_end();
        if !title.is_empty() {
            found.push(Heading {
                at: line_start,
                level,
                title,
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::embed::testing::WordHashEmbedder;

    fn settings(max_tokens: usize, overlap_tokens: usize) -> PassageSettings {
        PassageSettings {
            max_tokens,
            overlap_tokens,
            max_passages_per_document: 1_000,
        }
    }

    /// Counts characters as tokens: budgets small enough to force cuts inside words.
    struct CharTokens(crate::embed::EmbeddingModel);

    impl Embedder for CharTokens {
        fn model(&self) -> &crate::embed::EmbeddingModel {
            &self.0
        }
        fn count_tokens(&self, text: &str) -> usize {
            text.chars().count()
        }
        fn embed<'a>(&'a self, _: &'a [String]) -> crate::embed::EmbedFuture<'a> {
            unreachable!("passages never embed")
        }
    }

    fn char_tokens() -> CharTokens {
        CharTokens(crate::embed::EmbeddingModel {
            id: "test:chars".into(),
            dimensions: 1,
        })
    }

    #[test]
    fn blank_text_has_no_passages() {
        let embedder = WordHashEmbedder::new(8);
        for text in ["", "   ", "\n\n\t \u{c}\n", "\u{c}\u{c}"] {
            assert_eq!(
                passages_of(text, &embedder, &settings(16, 4)),
                (Vec::new(), false),
                "{text:?}"
            );
        }
    }

    #[test]
    fn sections_and_paragraphs_stay_whole_when_they_fit() {
        let text = "# Guide\n\nIntro words here.\n\n## Install\n\nRun the installer now.\n\n\
                    ## Use\n\nOpen the app and search.\n";
        let (passages, capped) = passages_of(text, &WordHashEmbedder::new(8), &settings(8, 0));
        assert!(!capped);
        let got: Vec<(&str, Option<&str>)> = passages
            .iter()
            .map(|p| (p.text.as_str(), p.heading.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("# Guide\n\nIntro words here.", Some("Guide")),
                (
                    "## Install\n\nRun the installer now.",
                    Some("Guide > Install")
                ),
                ("## Use\n\nOpen the app and search.", Some("Guide > Use")),
            ]
        );
        for (ordinal, passage) in passages.iter().enumerate() {
            assert_eq!(passage.ordinal as usize, ordinal);
            assert_eq!(passage.text, text[passage.start..passage.end]);
            assert_eq!(passage.content_hash, PassageHash::of(&passage.text));
            assert_eq!(passage.page, None);
        }
    }

    #[test]
    fn headings_in_fenced_code_are_not_headings_and_levels_close() {
        let text = "# A\n\n```\n# not a heading\n```\n\n### Deep\n\nx\n\n## B ##\n\ny\n";
        let titles: Vec<(usize, &str)> = atx_headings(text)
            .iter()
            .map(|h| (h.level, h.title))
            .collect();
        assert_eq!(titles, [(1, "A"), (3, "Deep"), (2, "B")]);
        let mut path = HeadingPath::new(text);
        assert_eq!(path.at(0).as_deref(), Some("A"));
        assert_eq!(
            path.at(text.find("x").unwrap()).as_deref(),
            Some("A > Deep")
        );
        assert_eq!(path.at(text.len()).as_deref(), Some("A > B"));
    }

    #[test]
    fn form_feeds_give_pages_and_passages_never_cross_them() {
        let text = "first page words\u{c}second page\u{c}\u{c}fourth";
        let (passages, _) = passages_of(text, &WordHashEmbedder::new(8), &settings(50, 0));
        let got: Vec<(&str, Option<u32>)> =
            passages.iter().map(|p| (p.text.as_str(), p.page)).collect();
        assert_eq!(
            got,
            [
                ("first page words", Some(1)),
                ("second page", Some(2)),
                ("fourth", Some(4))
            ]
        );
    }

    #[test]
    fn the_cap_keeps_the_first_passages_and_says_so() {
        let text = "one\n\ntwo\n\nthree\n\nfour";
        let mut capped_settings = settings(1, 0);
        capped_settings.max_passages_per_document = 2;
        let (passages, capped) = passages_of(text, &WordHashEmbedder::new(8), &capped_settings);
        assert!(capped);
        assert_eq!(
            passages.iter().map(|p| p.text.as_str()).collect::<Vec<_>>(),
            ["one", "two"]
        );
        capped_settings.max_passages_per_document = 4;
        assert!(!passages_of(text, &WordHashEmbedder::new(8), &capped_settings).1);
    }

    #[test]
    fn neighbours_overlap_by_at_most_the_overlap() {
        let text = (0..200)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        let (passages, _) = passages_of(&text, &WordHashEmbedder::new(8), &settings(20, 5));
        assert!(passages.len() > 10);
        for pair in passages.windows(2) {
            assert!(pair[1].start < pair[0].end, "neighbours share words");
            let shared = &text[pair[1].start..pair[0].end];
            assert!(shared.split_whitespace().count() <= 5, "{shared:?}");
        }
    }

    #[test]
    fn an_over_long_word_is_cut_and_other_words_never_are() {
        let text = "short words then averyveryverylongwordthatneverends and more";
        let (passages, _) = passages_of(text, &char_tokens(), &settings(10, 0));
        for passage in &passages {
            assert!(passage.text.chars().count() <= 10, "{passage:?}");
        }
        let long = "averyveryverylongwordthatneverends";
        for word in passages.iter().flat_map(|p| p.text.split_whitespace()) {
            assert!(
                text.split_whitespace().any(|w| w == word) || long.contains(word),
                "{word:?} was cut"
            );
        }
        assert!(
            passages
                .iter()
                .any(|p| p.text.len() < long.len() && long.contains(&p.text))
        );
    }

    /// Text from words of several scripts, emoji, headings, blank lines and form feeds.
    fn text_strategy() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            4 => "[a-zA-Z]{1,12}",
            1 => "[\\u{4e00}-\\u{4e40}]{1,8}",
            1 => "[\\u{0627}-\\u{064a}]{1,8}",
            1 => "[\\u{1F600}-\\u{1F640}\\u{1F468}\\u{200D}\\u{1F469}]{1,4}",
            1 => "[a-z]{30,60}",
            1 => Just("\n\n".to_owned()),
            1 => Just("\n# Title\n".to_owned()),
            1 => Just("\n## Sub section\n".to_owned()),
            1 => Just("\u{c}".to_owned()),
            1 => Just("```\ncode\n```".to_owned()),
            1 => Just("- item\n".to_owned()),
        ];
        let separator = prop_oneof![Just(" "), Just("\n"), Just("  "), Just("\t")];
        proptest::collection::vec((piece, separator), 0..120).prop_map(|parts| {
            parts
                .into_iter()
                .map(|(piece, separator)| piece + separator)
                .collect()
        })
    }

    proptest! {
        #![proptest_config(crate::proptest_config::with_cases(256))]

        #[test]
        fn passages_cover_the_text_in_order_within_budget(
            text in text_strategy(),
            max_tokens in 4usize..40,
            overlap_pick in 0usize..100,
            by_chars in any::<bool>(),
        ) {
            let overlap_tokens = overlap_pick % (max_tokens / 2);
            let chars = char_tokens();
            let words = WordHashEmbedder::new(8);
            let embedder: &dyn Embedder = if by_chars { &chars } else { &words };
            let settings = settings(max_tokens, overlap_tokens);
            let (passages, capped) = passages_of(&text, embedder, &settings);
            prop_assert!(!capped);
            prop_assert_eq!(&passages_of(&text, embedder, &settings).0, &passages);
            let mut covered = 0;
            let mut previous_start = None;
            for (ordinal, passage) in passages.iter().enumerate() {
                prop_assert_eq!(passage.ordinal as usize, ordinal);
                prop_assert_eq!(&passage.text, &text[passage.start..passage.end]);
                prop_assert!(!passage.text.trim().is_empty());
                prop_assert!(
                    embedder.count_tokens(&passage.text) <= max_tokens,
                    "over budget: {:?}", passage.text
                );
                prop_assert!(previous_start < Some(passage.start), "out of order");
                previous_start = Some(passage.start);
                let gap = text.get(covered..passage.start).unwrap_or("");
                prop_assert!(
                    gap.chars().all(|c| c.is_whitespace()),
                    "text left out before passage {}: {:?}", ordinal, gap
                );
                covered = covered.max(passage.end);
            }
            prop_assert!(text[covered..].chars().all(char::is_whitespace));
            if text.trim().is_empty() {
                prop_assert!(passages.is_empty());
            }
        }
    }
}
