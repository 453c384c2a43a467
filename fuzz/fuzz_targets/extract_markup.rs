//! Extraction of the markup family, below the panic and timeout guards (see src/fuzzing.rs).
#![no_main]

use s3_connector::fuzzing::{Family, extract};

s3_connector_fuzz::limit_allocations!();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    s3_connector_fuzz::contain_pdf_extract_panics();
    let _ = extract(Family::Markup, data);
});
