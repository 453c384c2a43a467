//! Text analysis: how text becomes the terms that queries match, the same on every sink.
//!
//! Words are runs of letters and digits, lowercased and folded to ASCII where Unicode has an
//! ASCII equivalent ("Café" → `cafe`), so a query finds a word whatever its case or accents.
//! Each analysis has a name that an index records with its fields: an index made with another
//! analysis is rebuilt (embedded) or reported (OpenSearch), never searched with terms it does
//! not hold. Prose (body, title, filename, passages) is analysed by [`ENGLISH`], which also
//! stems ("reports" → `report`); keys keep [`FOLDED`], so a path is found as written.

use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RawTokenizer, RemoveLongFilter, SimpleTokenizer,
    Stemmer, TextAnalyzer,
};

/// The analysis of searchable text (body, title, filename, key): words, lowercased, folded to
/// ASCII. The name under which both the embedded index and OpenSearch know it.
pub const FOLDED: &str = "s3c_folded";

/// Words longer than this many bytes are not indexed (tantivy's default tokenizer's limit).
const LONGEST_WORD_BYTES: usize = 40;

/// The [`FOLDED`] analyzer.
pub fn folded() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(LONGEST_WORD_BYTES))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

/// The analysis of prose (body, title, filename, passages): [`FOLDED`] words, then the
/// English (Porter 2) stemmer, so that "reporting" finds "reports".
pub const ENGLISH: &str = "s3c_english";

/// The [`ENGLISH`] analyzer.
pub fn english() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(LONGEST_WORD_BYTES))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .filter(Stemmer::new(Language::English))
        .build()
}

/// The [`ENGLISH`] terms of `text`, each with the byte range of the word it came from.
pub fn english_words(text: &str) -> Vec<(String, std::ops::Range<usize>)> {
    words_of(english(), text)
}

/// The whole text as one term, lowercased and folded to ASCII: how filter values (metadata,
/// tags) are stored and compared, by every sink alike.
fn folded_keyword() -> TextAnalyzer {
    TextAnalyzer::builder(RawTokenizer::default())
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

/// `text` as one lowercased, ASCII-folded term: how filter values are stored and compared.
pub fn fold_keyword(text: &str) -> String {
    let mut analyzer = folded_keyword();
    let mut stream = analyzer.token_stream(text);
    let mut folded = String::new();
    while stream.advance() {
        folded.push_str(&stream.token().text);
    }
    folded
}

/// The [`FOLDED`] terms of `text`, each with the byte range of the word it came from.
pub fn folded_words(text: &str) -> Vec<(String, std::ops::Range<usize>)> {
    words_of(folded(), text)
}

/// The terms `analyzer` makes of `text`, each with the byte range of its word.
fn words_of(mut analyzer: TextAnalyzer, text: &str) -> Vec<(String, std::ops::Range<usize>)> {
    let mut stream = analyzer.token_stream(text);
    let mut words = Vec::new();
    while stream.advance() {
        let token = stream.token();
        words.push((token.text.clone(), token.offset_from..token.offset_to));
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lowercased_and_folded_with_their_byte_ranges() {
        let words = folded_words("Café-Owners, NAÏVE Ærø");
        let terms: Vec<&str> = words.iter().map(|(term, _)| term.as_str()).collect();
        assert_eq!(terms, ["cafe", "owners", "naive", "aero"]);
        assert_eq!(words[0].1, 0..5);
        assert_eq!(words[3].1, 21..26);
        assert_eq!(fold_keyword("  Zoë Smith "), "  zoe smith ");
    }

    #[test]
    fn english_words_are_folded_and_stemmed() {
        let words = english_words("Reporting Cafés' flows, boundary-layers");
        let terms: Vec<&str> = words.iter().map(|(term, _)| term.as_str()).collect();
        assert_eq!(terms, ["report", "cafe", "flow", "boundari", "layer"]);
        assert_eq!(words[1].1, 10..16);
    }
}
