//! s3-connector keeps a search index in step with the contents of S3 buckets.
//!
//! The modules follow the data flow: [`config`] → [`credentials`] → [`source`] (list, get) →
//! [`rules`] → [`extract`] → [`embed`] (passages, vectors) → [`sink`] (embedded | opensearch) → [`sync`] (plan, apply,
//! reconcile) → [`worker`] (with its HTTP surface, [`http`], which sees the worker through one
//! narrow handle) → [`cli`]. Only [`sync`] and the CLI above it know every stage; [`retry`] is the
//! one retry policy every remote call goes through. The sync sees its store through
//! [`source::ObjectStore`] and its index through [`sink::Sink`] — generics, the one dispatch
//! mechanism: the backend the configuration picks at run time becomes a type once, at the edge
//! ([`with_sink!`]) — so its promises are tested in-process on in-memory fakes
//! (`sync/tests.rs`) as well as end to end on real servers. [`config`] has two sets of types: the
//! file's format (`config::file`) and the validated settings every other module takes, which
//! only `config::parse` builds. Every count of a sync is declared once, in
//! [`sync::report::COUNTS`], which feeds the report, the summaries and the metrics.

pub mod cli;
pub mod config;
pub mod credentials;
pub mod did_you_mean;
pub mod durable;
pub mod embed;
pub mod events;
pub mod extract;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod policy;
#[cfg(test)]
mod proptest_config;
pub mod retry;
pub mod rules;
pub mod sink;
pub mod source;
pub mod sync;
#[cfg(test)]
mod testing;
pub mod verify;
pub mod worker;
