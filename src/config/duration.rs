//! Durations in the configuration file: every duration field, whatever its unit inside the
//! program, takes the same syntax through the deserializers here: a duration such as `90s`,
//! `15m`, `1h30m` or `2days`, or a bare number of seconds (`90`).
//!
//! Fields the program keeps in whole seconds ([`seconds`]) are parsed while the file is read,
//! so a bad value is reported with its field like any other wrong type. Fields validated later
//! against rules of their own (an interval's minimum, the shutdown timeout) keep the text
//! ([`text`]) and parse it with [`parse`].

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};

/// What every duration field accepts, for messages.
const EXPECTED: &str = "a duration such as 90s, 15m or 1h30m, or a number of seconds";

/// Parses a duration such as `30s`, `15m`, `1h30m` or `2days`; a bare number is seconds.
/// `Err` is a sentence fragment for a validation message.
pub fn parse(text: &str) -> Result<Duration, String> {
    super::schedule::parse_duration(text)
}

/// A duration field's text: a string as written, a number as its digits.
struct TextVisitor;

impl Visitor<'_> for TextVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXPECTED)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<String, E> {
        Ok(value.to_string())
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<String, E> {
        Ok(value.to_string())
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<String, E> {
        Ok(value.to_string())
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<String, E> {
        Ok(value.to_owned())
    }
}

/// Deserializes a duration field as its text, for a field validated later with [`parse`].
pub(crate) fn text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    deserializer.deserialize_any(TextVisitor)
}

/// [`text`] for an optional field.
pub(crate) fn optional_text<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    text(deserializer).map(Some)
}

/// Deserializes a duration field kept in whole seconds (`u32` or `u64`): `90s`, `2m` and `90`
/// are all 90 seconds; a fraction of a second or a value too large for the field is an error
/// naming the value.
pub(crate) fn seconds<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    let text = text(deserializer)?;
    whole_seconds(&text).map_err(|rule| de::Error::custom(format!("{text:?} {rule}")))
}

/// [`seconds`] for an optional field.
pub(crate) fn optional_seconds<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    seconds(deserializer).map(Some)
}

/// The whole seconds `text` means, as `T`; `Err` is a sentence fragment.
fn whole_seconds<T: TryFrom<u64>>(text: &str) -> Result<T, String> {
    let duration = parse(text)?;
    if duration.subsec_nanos() != 0 {
        return Err(format!(
            "is not a whole number of seconds; write e.g. {}s",
            duration.as_secs() + 1
        ));
    }
    T::try_from(duration.as_secs()).map_err(|_| "is too long".to_owned())
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    struct Fields {
        #[serde(default, deserialize_with = "optional_seconds")]
        timeout: Option<u64>,
        #[serde(default, deserialize_with = "optional_seconds")]
        lifetime: Option<u32>,
        #[serde(default, deserialize_with = "optional_text")]
        interval: Option<String>,
    }

    fn read(yaml: &str) -> Result<Fields, String> {
        yaml_serde::from_str(yaml).map_err(|error| error.to_string())
    }

    /// (field: value, seconds read, or a part of the error)
    #[test]
    fn every_duration_field_takes_numbers_and_durations() {
        let table: &[(&str, Result<u64, &str>)] = &[
            ("timeout: 90", Ok(90)),
            ("timeout: 90s", Ok(90)),
            ("timeout: \"90s\"", Ok(90)),
            ("timeout: 2m", Ok(120)),
            ("timeout: 1h30m", Ok(5400)),
            ("timeout: \" 15 \"", Ok(15)),
            ("timeout: 0", Ok(0)),
            (
                "timeout: 1500ms",
                Err("\"1500ms\" is not a whole number of seconds; write e.g. 2s"),
            ),
            ("timeout: fast", Err("\"fast\" is not a duration")),
            ("timeout: -5", Err("\"-5\" is not a duration")),
            ("timeout: 1.5", Err("\"1.5\" is not a duration")),
            (
                "timeout: [1]",
                Err("invalid type: sequence, expected a duration such as 90s"),
            ),
            ("lifetime: 1h", Ok(3600)),
            ("lifetime: 5000000000", Err("\"5000000000\" is too long")),
        ];
        for (yaml, expected) in table {
            let read = read(yaml).map(|f| f.timeout.or(f.lifetime.map(u64::from)).unwrap());
            match (read, expected) {
                (Ok(seconds), Ok(want)) => assert_eq!(seconds, *want, "{yaml}"),
                (Err(error), Err(part)) => assert!(error.contains(part), "{yaml}: {error}"),
                (got, want) => panic!("{yaml}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn text_fields_keep_what_was_written() {
        for (yaml, text) in [("interval: 90", "90"), ("interval: 15m", "15m")] {
            assert_eq!(read(yaml).unwrap().interval.as_deref(), Some(text));
        }
    }
}
