//! The mass-delete guard, as a pure function of counts: may a sync delete this many documents?
//!
//! A complete listing that suddenly returns far fewer objects than the index holds is more often
//! a mistake (credentials that see an empty bucket, a store answering an empty listing, a rule
//! edited wrongly) than intent, so deleting most of an index needs an explicit yes. Tested with a
//! table, without I/O.

/// Deletions up to this many are never held back, whatever fraction of the index they are.
pub const MASS_DELETE_MIN_DOCUMENTS: u64 = 100;

/// What the sync may do with the deletions it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteVerdict {
    /// Delete them.
    Delete,
    /// Delete nothing: they are more than `max_fraction` of the indexed documents and more than
    /// [`MASS_DELETE_MIN_DOCUMENTS`].
    HoldBack,
}

/// Decides whether `to_delete` documents out of `indexed` may be deleted. `max_fraction` is the
/// connector's `max_delete_fraction` (1.0 turns the guard off); `allowed` is the
/// `--allow-mass-delete` override of one sync.
pub fn mass_delete_verdict(
    to_delete: u64,
    indexed: u64,
    max_fraction: f64,
    allowed: bool,
) -> DeleteVerdict {
    // Counts of documents stay far below 2^53, so the conversion is exact.
    let over_fraction = to_delete as f64 > max_fraction * indexed as f64;
    if !allowed && to_delete > MASS_DELETE_MIN_DOCUMENTS && over_fraction {
        DeleteVerdict::HoldBack
    } else {
        DeleteVerdict::Delete
    }
}

#[cfg(test)]
mod tests {
    use super::DeleteVerdict::{Delete, HoldBack};
    use super::*;

    #[test]
    fn verdict_table() {
        // (to_delete, indexed, max_fraction, allowed, expected)
        let table = [
            (0, 0, 0.5, false, Delete),
            (0, 10_000, 0.5, false, Delete),
            // Small deletions are never held back, even all of a small bucket.
            (6, 6, 0.5, false, Delete),
            (100, 100, 0.5, false, Delete),
            (100, 150, 0.01, false, Delete),
            // More than 100 and more than the fraction: held back.
            (101, 101, 0.5, false, HoldBack),
            (101, 200, 0.5, false, HoldBack),
            (1_000, 1_000, 0.5, false, HoldBack),
            // Exactly the fraction is allowed; just above is not.
            (500, 1_000, 0.5, false, Delete),
            (501, 1_000, 0.5, false, HoldBack),
            // Below the fraction: deleted, however many.
            (4_999, 10_000, 0.5, false, Delete),
            (150, 20_000, 0.01, false, Delete),
            (101, 10_000, 0.01, false, HoldBack),
            // 1.0 turns the guard off: a deletion can never exceed the whole index.
            (10_000, 10_000, 1.0, false, Delete),
            // The one-sync override.
            (10_000, 10_000, 0.5, true, Delete),
            (101, 101, 0.01, true, Delete),
        ];
        for (to_delete, indexed, fraction, allowed, expected) in table {
            assert_eq!(
                mass_delete_verdict(to_delete, indexed, fraction, allowed),
                expected,
                "to_delete={to_delete} indexed={indexed} fraction={fraction} allowed={allowed}"
            );
        }
    }
}
