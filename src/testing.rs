//! Helpers shared by the unit tests of several modules (compiled for tests only).

use std::fmt::{Debug, Display};
use std::path::Path;

use crate::config::{self, Config, ConnectorConfig};

/// The configuration `text` holds, read as a file `test.yml` in the current directory with no
/// environment variables; panics with the error and the text when it holds none.
#[track_caller]
pub(crate) fn config_of(text: &str) -> Config {
    config::parse(text, Path::new("test.yml"), Path::new("."), &|_| None)
        .unwrap_or_else(|error| panic!("{error}\n{text}"))
}

/// The first connector of [`config_of`] `text`.
#[track_caller]
pub(crate) fn connector_of(text: &str) -> ConnectorConfig {
    config_of(text).connectors.remove(0)
}

/// Checks one row of a table test whose outcome is a value or an error: `Ok(value)` must be
/// what was found, `Err(fragment)` an error whose message contains `fragment`. `case` names
/// the row in the failure message.
#[track_caller]
pub(crate) fn assert_outcome<T, U, E>(
    case: impl Display,
    found: Result<T, E>,
    expected: Result<U, &str>,
) where
    T: PartialEq<U> + Debug,
    U: Debug,
    E: Display + Debug,
{
    match (found, expected) {
        (Ok(found), Ok(expected)) => assert_eq!(found, expected, "{case}"),
        (Err(found), Err(part)) => {
            assert!(found.to_string().contains(part), "{case}: {found}")
        }
        (found, expected) => panic!("{case}: {found:?}, expected {expected:?}"),
    }
}
