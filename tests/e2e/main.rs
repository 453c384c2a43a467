//! The integration tests of s3-connector, in one test binary so they share one moto server.
//! Every test gets its servers through `support`; test modules are declared below.

mod support;

mod api;
mod cli;
mod crash;
mod embeddings;
mod events;
mod extraction;
mod fixture;
mod hardening;
mod harness_selftest;
mod identity;
mod inventory;
mod opensearch_real;
mod search_syntax;
mod shards;
mod storm;
mod sync_embedded;
mod sync_opensearch;
mod tenants;
mod worker;
