//! S3 event notifications through SQS: freshness within seconds between full syncs.
//!
//! A connector with `notifications` has its queue consumed by `run` continuously. Messages are
//! read by pure parsers ([`parse`]: S3 records, SNS envelopes, EventBridge events, key
//! decoding), the keys they name are checked against S3 and applied with the sync's own
//! decision ([`crate::sync::touched`]), and a message is deleted only once everything it asked
//! for is committed ([`consumer`]). The SQS calls live in [`queue`]. The full sync stays the
//! backfill and the reconciler: events are hints, S3 is the truth. Not here: the loop that
//! takes turns with full syncs on the index (`crate::worker`).

pub mod consumer;
pub mod parse;
pub mod queue;

pub use consumer::{Consumer, RoundSummary};
pub use queue::{Message, Queue, QueueDepth, QueueError};
