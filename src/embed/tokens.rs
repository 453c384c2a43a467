//! Counting tokens the way a model does: with its `tokenizer.json` (no truncation, special
//! tokens included, since they take room in the model's window too), or, for an endpoint
//! whose tokenizer is not at hand, a cautious estimate.

use std::path::Path;

use tokenizers::Tokenizer;

use super::EmbedError;

/// How tokens are counted.
pub enum TokenCounter {
    /// By the model's own tokenizer.
    Tokenizer(Box<Tokenizer>),
    /// One token per 3 bytes of UTF-8, rounded up: over-counts English (about 4 characters a
    /// token with OpenAI's and BERT's vocabularies) and counts about one token per CJK
    /// character, so passages stay within the model's budget.
    Estimate,
}

impl TokenCounter {
    /// Loads `tokenizer.json` at `path` for counting (its truncation and padding turned off).
    pub fn from_file(path: &Path) -> Result<Self, EmbedError> {
        let mut tokenizer = load_tokenizer(path)?;
        tokenizer
            .with_truncation(None)
            .map_err(|e| EmbedError::Model(format!("{}: {e}", path.display())))?;
        tokenizer.with_padding(None);
        Ok(Self::Tokenizer(Box::new(tokenizer)))
    }

    /// Tokens of `text`.
    pub fn count(&self, text: &str) -> usize {
        match self {
            Self::Tokenizer(tokenizer) => tokenizer
                .encode(text, true)
                .map_or_else(|_| estimate(text), |encoding| encoding.len()),
            Self::Estimate => estimate(text),
        }
    }
}

/// [`TokenCounter::Estimate`].
fn estimate(text: &str) -> usize {
    text.len().div_ceil(3)
}

/// Reads a `tokenizer.json`; the error names the file.
pub(super) fn load_tokenizer(path: &Path) -> Result<Tokenizer, EmbedError> {
    Tokenizer::from_file(path).map_err(|e| {
        EmbedError::Model(format!("cannot load the tokenizer {}: {e}", path.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_rounds_up_and_counts_cjk_characters_about_once() {
        assert_eq!(TokenCounter::Estimate.count(""), 0);
        assert_eq!(TokenCounter::Estimate.count("word"), 2);
        assert_eq!(TokenCounter::Estimate.count("日本語"), 3);
    }
}
