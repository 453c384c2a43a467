//! "Did you mean": the known name closest to a misspelt one, for the messages of the config
//! file (fields, kinds) and of sync rules (rule fields). Pure; no other module of the crate is
//! used here, so every stage may use it.

/// A name within this edit distance of a known one is offered.
const MAX_DISTANCE: usize = 3;

/// The name of `known` closest to `unknown`, if it is close enough to be a typo.
///
/// ```
/// use s3_connector::did_you_mean::closest;
/// assert_eq!(closest("prefx", &["bucket", "prefix"]), Some("prefix"));
/// assert_eq!(closest("colour", &["bucket", "prefix"]), None);
/// ```
pub fn closest<'a>(unknown: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|name| (strsim::levenshtein(unknown, name), *name))
        .filter(|(distance, _)| *distance <= MAX_DISTANCE)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name)
}
