//! Sources: where objects come from. Today S3 and S3-compatible stores.
//!
//! A source lists and fetches objects; it knows nothing of rules, extraction or the index.

pub mod s3;
