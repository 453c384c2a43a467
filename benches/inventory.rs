//! Reading an S3 Inventory: gzip CSV rows decoded and sorted by key with the external sort,
//! then read back in order, as the sync feeds them to its merge. Measures rows/s and the
//! process's peak resident memory (VmHWM), which must not grow with the inventory.
//!
//! Run: `cargo bench --bench inventory -- ROWS` (release; `--profile dev` for a debug build),
//! once per size, since the peak is per process: e.g. `-- 50000` and `-- 400000`. The data
//! file is generated here, streamed to a temporary file (keys of 40-60 bytes in 1,000
//! folders, in a scrambled order), before the measurement starts.

use std::io::{BufWriter, Write as _};
use std::time::Instant;

use s3_connector::sync::inventory::manifest::Schema;
use s3_connector::sync::inventory::rows::encode_key;
use s3_connector::sync::inventory::sort::{RUN_BYTES, Sorter};
use s3_connector::sync::inventory::sort_rows;

const SCHEMA: &str = "Bucket, Key, Size, LastModifiedDate, ETag, StorageClass";

/// A field of `/proc/self/status` in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let rows: u64 = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(400_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("data.csv.gz");
    let file = std::fs::File::create(&path).expect("create the data file");
    let mut gz = flate2::write::GzEncoder::new(BufWriter::new(file), flate2::Compression::fast());
    // A full-period LCG over 2^k scrambles the order without holding the keys.
    let period = rows.next_power_of_two();
    let mut state = 0u64;
    let mut written = 0;
    while written < rows {
        state = (state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1))
            % period;
        if state >= rows {
            continue;
        }
        let key = format!("folder-{:04}/document number {state:012}.txt", state % 1000);
        writeln!(
            gz,
            "\"docs\",\"{}\",\"{}\",\"2026-11-20T10:00:00.000Z\",\"{:032x}\",\"STANDARD\"",
            encode_key(&key),
            state * 7 % 100_000,
            state
        )
        .expect("write a row");
        written += 1;
    }
    gz.finish()
        .and_then(|mut writer| writer.flush())
        .expect("finish the data file");
    let compressed = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let schema = Schema::parse(SCHEMA).expect("schema");

    let before = status_kib("VmHWM:");
    let started = Instant::now();
    let mut sorter = Sorter::new(RUN_BYTES);
    let reader = std::io::BufReader::new(std::fs::File::open(&path).expect("open"));
    let added = sort_rows(reader, "data.csv.gz", &schema, "docs", &mut sorter).expect("sort");
    let mut sorted = sorter.finish().expect("finish the sort");
    let sorting = started.elapsed();
    let mut read = 0u64;
    let mut last: Option<String> = None;
    while let Some(entry) = sorted.next_entry().expect("read a run") {
        assert!(last.as_deref() < Some(entry.key.as_str()), "out of order");
        last = Some(entry.key);
        read += 1;
    }
    let total = started.elapsed();
    assert_eq!((added, read), (rows, rows));
    let peak = status_kib("VmHWM:");
    println!(
        "rows {rows}  gzip {:.1} MB  decode+sort {:.2} s  read back {:.2} s  {:.0} rows/s  \
         peak RSS {:.1} MiB (before the inventory {:.1} MiB)  run budget {} MiB",
        compressed as f64 / 1e6,
        sorting.as_secs_f64(),
        (total - sorting).as_secs_f64(),
        rows as f64 / total.as_secs_f64(),
        peak as f64 / 1024.0,
        before as f64 / 1024.0,
        RUN_BYTES / (1024 * 1024),
    );
}
