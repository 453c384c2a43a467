//! The config loader: YAML, `${VAR}` expansion and validation (see src/fuzzing.rs).
#![no_main]

s3_connector_fuzz::limit_allocations!();

libfuzzer_sys::fuzz_target!(|data: &[u8]| s3_connector::fuzzing::config(data));
