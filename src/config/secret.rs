//! A string that must never be printed: secret keys, session tokens, passwords; and the one
//! function that hides the credentials a URL may carry before it is printed.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer};

/// The mask printed in place of a secret.
pub const REDACTED: &str = "**REDACTED**";

/// A secret value. `Debug` and `Display` print [`REDACTED`]; only [`Secret::expose`] gives the
/// value, and it is called where the value is handed to a client, nowhere else.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for handing to an SDK client.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the value is the empty string (treated as "not set").
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SecretVisitor)
    }
}

/// Accepts strings only, and never repeats a wrong value in its error: serde's own message
/// would print an unquoted numeric password, and not every error path can be masked by name
/// (inside an internally tagged enum serde reports only the enum's path).
struct SecretVisitor;

impl SecretVisitor {
    fn refuse<E: serde::de::Error>(kind: &str) -> Result<Secret, E> {
        Err(E::custom(format!(
            "invalid type: {kind} ({REDACTED}), expected a string; put the value in quotes"
        )))
    }
}

impl serde::de::Visitor<'_> for SecretVisitor {
    type Value = Secret;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Secret, E> {
        Ok(Secret::new(value))
    }

    fn visit_string<E: serde::de::Error>(self, value: String) -> Result<Secret, E> {
        Ok(Secret(value))
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Secret, E> {
        Self::refuse("boolean")
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Secret, E> {
        Self::refuse("number")
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Secret, E> {
        Self::refuse("number")
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Secret, E> {
        Self::refuse("number")
    }
}

/// `text` with the user information of every URL in it (`scheme://user:password@host`)
/// replaced by [`REDACTED`]: for printing a URL, or a message that may quote one (an HTTP
/// client's error). The program prints a URL only through this function.
///
/// A URL runs from its `scheme://` to the next whitespace, quote or angle bracket; the user
/// information ends at the URL's last `@`. That errs on the side of hiding: a password with an
/// unescaped `/` or `#` is still hidden, and so is the part before an `@` in a path or query.
pub fn redact_urls(text: &str) -> Cow<'_, str> {
    if !text.contains('@') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(separator) = rest.find("://") {
        let (head, url) = rest.split_at(separator + 3);
        out.push_str(head);
        let end = url
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`'))
            .unwrap_or(url.len());
        let (url, after) = url.split_at(end);
        match url.rfind('@') {
            Some(at) => {
                out.push_str(REDACTED);
                out.push_str(&url[at..]);
            }
            None => out.push_str(url),
        }
        rest = after;
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_user_information_wherever_they_are() {
        let cases = [
            (
                "http://admin:pw@search:9200",
                "http://**REDACTED**@search:9200",
            ),
            (
                "https://admin:p/w#x@search/prefix?q=1",
                "https://**REDACTED**@search/prefix?q=1",
            ),
            ("https://token@host/", "https://**REDACTED**@host/"),
            (
                "error sending request for url (http://u:secret@h:9200/_bulk): refused; again at \"http://u:secret@h:9200/\"",
                "error sending request for url (http://**REDACTED**@h:9200/_bulk): refused; again at \"http://**REDACTED**@h:9200/\"",
            ),
            ("http://search:9200/path", "http://search:9200/path"),
            ("no url, a@b", "no url, a@b"),
            (
                "mail me@home, then http://h/",
                "mail me@home, then http://h/",
            ),
            ("", ""),
        ];
        for (text, expected) in cases {
            assert_eq!(redact_urls(text), expected, "{text}");
        }
    }

    #[test]
    fn debug_and_display_never_show_the_value() {
        let secret = Secret::new("wJalrXUtnFEMI/K7MDENG");
        assert_eq!(format!("{secret:?}"), REDACTED);
        assert_eq!(format!("{secret}"), REDACTED);
        assert_eq!(format!("{:?}", Some(&secret)), format!("Some({REDACTED})"));
        assert_eq!(secret.expose(), "wJalrXUtnFEMI/K7MDENG");
    }
}
