//! The retarget guard: an index stays bound to the source its documents came from.
//!
//! Once an index holds documents it records their source (buckets, bucket owner, endpoint).
//! A sync whose connector now points the index somewhere else (another owner where both are
//! known, another endpoint, or none of the recorded buckets) is refused before it reads or
//! writes anything, naming both sources, unless it is re-targeted explicitly (`sync
//! --retarget`, `"retarget": true`). So a changed file or API setting cannot silently mix two
//! customers' documents in one index. Adding or dropping some buckets of the same owner is not a
//! retarget: the record follows the connector. The decision is a pure function, [`compare`];
//! the record itself, [`IndexSource`], is the index's own data and lives with the sinks that
//! store it ([`crate::sink::binding`]).

use crate::sink::IndexSource;

/// How a connector's source relates to the one its index records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The same source: nothing to do.
    Same,
    /// The same owner and endpoint with an overlapping bucket selection: sync, then record the
    /// new selection.
    Changed,
    /// Another source: refuse unless re-targeted.
    Elsewhere,
}

/// Compares the recorded source of an index with the one a connector points at.
pub fn compare(recorded: &IndexSource, wanted: &IndexSource) -> Verdict {
    if recorded == wanted {
        return Verdict::Same;
    }
    let all = |source: &IndexSource| source.buckets.iter().any(|b| b == "*");
    let overlap =
        all(recorded) || all(wanted) || recorded.buckets.iter().any(|b| wanted.buckets.contains(b));
    // An owner known on one side only is not another owner: setting expected_bucket_owner
    // where there was none tightens the same source (S3 refuses it if it is wrong).
    let other_owner = matches!((&recorded.owner, &wanted.owner), (Some(a), Some(b)) if a != b);
    if !other_owner && recorded.endpoint == wanted.endpoint && overlap {
        Verdict::Changed
    } else {
        Verdict::Elsewhere
    }
}

/// The error of a refused sync: both sources and the way out.
pub fn refusal(index: &str, recorded: &IndexSource, wanted: &IndexSource) -> String {
    format!(
        "index {index} holds documents from {recorded}, but the connector now points it at {wanted}; \
         nothing was synced or deleted. If the index should follow the new source (its old documents \
         are then removed like those of a dropped bucket), run `s3-connector sync --retarget` once, \
         or POST .../sync?retarget=true; otherwise give the connector another index_name"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(buckets: &[&str], owner: Option<&str>, endpoint: &str) -> IndexSource {
        IndexSource {
            buckets: buckets.iter().map(|b| (*b).to_owned()).collect(),
            owner: owner.map(str::to_owned),
            endpoint: endpoint.to_owned(),
        }
    }

    #[test]
    fn verdicts() {
        let a = Some("111111111111");
        let b = Some("222222222222");
        let local = "http://127.0.0.1:9000";
        // (recorded, wanted, verdict)
        #[rustfmt::skip]
        let table = [
            (source(&["x"], a, "aws"), source(&["x"], a, "aws"), Verdict::Same),
            (source(&["x"], a, "aws"), source(&["x", "y"], a, "aws"), Verdict::Changed),
            (source(&["x", "y"], a, "aws"), source(&["y"], a, "aws"), Verdict::Changed),
            (source(&["x"], a, "aws"), source(&["*"], a, "aws"), Verdict::Changed),
            (source(&["x"], a, "aws"), source(&["x"], None, "aws"), Verdict::Changed),
            (source(&["x"], None, "aws"), source(&["x"], b, "aws"), Verdict::Changed),
            (source(&["x"], a, "aws"), source(&["y"], a, "aws"), Verdict::Elsewhere),
            (source(&["x"], None, "aws"), source(&["y"], b, "aws"), Verdict::Elsewhere),
            (source(&["x"], a, "aws"), source(&["x"], b, "aws"), Verdict::Elsewhere),
            (source(&["*"], a, "aws"), source(&["*"], b, "aws"), Verdict::Elsewhere),
            (source(&["x"], a, "aws"), source(&["x"], a, local), Verdict::Elsewhere),
        ];
        for (recorded, wanted, verdict) in table {
            assert_eq!(
                compare(&recorded, &wanted),
                verdict,
                "{recorded} -> {wanted}"
            );
        }
    }

    #[test]
    fn the_refusal_names_both_sources() {
        let message = refusal(
            "docs",
            &source(&["old"], Some("111111111111"), "aws"),
            &source(&["new"], Some("222222222222"), "aws"),
        );
        assert!(message.contains("bucket(s) old of account 111111111111 at endpoint aws"));
        assert!(message.contains("bucket(s) new of account 222222222222 at endpoint aws"));
        assert!(message.contains("--retarget"));
    }
}
