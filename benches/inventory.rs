//! Reading an S3 Inventory: gzip CSV or Parquet rows decoded and sorted by key with the
//! external sort, then read back in order, as the sync feeds them to its merge. Measures rows/s
//! and the process's peak resident memory (VmHWM), which must not grow with the inventory.
//!
//! Run: `cargo bench --bench inventory -- ROWS [parquet]` (release; `--profile dev` for a
//! debug build), once per size, since the peak is per process: e.g. `-- 50000` and
//! `-- 400000 parquet`. The data file is generated before the measurement starts (keys of
//! 40-60 bytes in 1,000 folders, in a scrambled order): gzip CSV streamed to a temporary file
//! here; Parquet (Snappy, row groups of [`PARQUET_GROUP_ROWS`] rows, AWS's columns of an
//! inventory of current versions) by a child process, so that the writer's row group buffers
//! do not count in this process's peak.

use std::io::{BufWriter, Write as _};
use std::path::Path;
use std::time::Instant;

use s3_connector::source::inventory::parquet_rows;
use s3_connector::source::inventory::rows::encode_key;
use s3_connector::source::inventory::schema::Schema;
use s3_connector::source::inventory::sort::{RUN_BYTES, Sorter};
use s3_connector::source::inventory::sort_rows;
use s3_connector::source::inventory::testing::{InventoryRow, write_parquet};

const SCHEMA: &str = "Bucket, Key, Size, LastModifiedDate, ETag, StorageClass";

/// AWS's Parquet columns of an inventory of current versions with the fields the sync needs.
const PARQUET_SCHEMA: &str = "message s3.inventory { required binary bucket (UTF8); \
     required binary key (UTF8); optional int64 size; \
     optional int64 last_modified_date (TIMESTAMP_MILLIS); optional binary e_tag (UTF8); \
     optional binary storage_class (UTF8); }";

/// Rows in a row group of the generated Parquet file.
const PARQUET_GROUP_ROWS: usize = 100_000;

/// Set (to the file's path) in the child process that writes the Parquet file.
const WRITE_PARQUET: &str = "S3C_BENCH_WRITE_PARQUET";

/// The `rows` generated rows in a scrambled order: (number, key).
fn scrambled(rows: u64) -> impl Iterator<Item = (u64, String)> {
    // A full-period LCG over 2^k scrambles the order without holding the keys.
    let period = rows.next_power_of_two();
    let mut state = 0u64;
    std::iter::from_fn(move || {
        loop {
            state = (state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1))
                % period;
            if state < rows {
                return Some(state);
            }
        }
    })
    .take(usize::try_from(rows).expect("rows fit in memory"))
    .map(|state| {
        let key = format!("folder-{:04}/document number {state:012}.txt", state % 1000);
        (state, key)
    })
}

fn write_parquet_file(path: &Path, rows: u64) {
    let modified = time::OffsetDateTime::from_unix_timestamp(1_763_632_800).expect("a time");
    let file = std::fs::File::create(path).expect("create the data file");
    let rows = scrambled(rows).map(|(state, key)| {
        InventoryRow::object(
            "docs",
            &key,
            state * 7 % 100_000,
            modified,
            &format!("{state:032x}"),
            "STANDARD",
        )
    });
    write_parquet(
        BufWriter::new(file),
        PARQUET_SCHEMA,
        rows,
        PARQUET_GROUP_ROWS,
    );
}

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
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rows: u64 = args
        .iter()
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(400_000);
    if let Some(path) = std::env::var_os(WRITE_PARQUET) {
        write_parquet_file(Path::new(&path), rows);
        return;
    }
    let parquet = args.iter().any(|arg| arg == "parquet");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(if parquet {
        "data.parquet"
    } else {
        "data.csv.gz"
    });
    if parquet {
        let status = std::process::Command::new(std::env::current_exe().expect("this bench"))
            .arg(rows.to_string())
            .env(WRITE_PARQUET, &path)
            .status()
            .expect("run the writer");
        assert!(status.success(), "the writer failed");
    } else {
        let file = std::fs::File::create(&path).expect("create the data file");
        let mut gz =
            flate2::write::GzEncoder::new(BufWriter::new(file), flate2::Compression::fast());
        for (state, key) in scrambled(rows) {
            writeln!(
                gz,
                "\"docs\",\"{}\",\"{}\",\"2026-11-20T10:00:00.000Z\",\"{:032x}\",\"STANDARD\"",
                encode_key(&key),
                state * 7 % 100_000,
                state
            )
            .expect("write a row");
        }
        gz.finish()
            .and_then(|mut writer| writer.flush())
            .expect("finish the data file");
    }
    let compressed = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let schema = Schema::parse(SCHEMA).expect("schema");

    let before = status_kib("VmHWM:");
    let started = Instant::now();
    let mut sorter = Sorter::new(RUN_BYTES);
    let added = if parquet {
        let file = std::fs::File::open(&path).expect("open");
        parquet_rows::sort_rows(file, "data.parquet", "docs", &mut sorter).expect("sort")
    } else {
        let reader = std::io::BufReader::new(std::fs::File::open(&path).expect("open"));
        sort_rows(reader, "data.csv.gz", &schema, "docs", &mut sorter).expect("sort")
    };
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
        "{}  rows {rows}  file {:.1} MB  decode+sort {:.2} s  read back {:.2} s  {:.0} rows/s  \
         peak RSS {:.1} MiB (before the inventory {:.1} MiB)  run budget {} MiB",
        if parquet { "parquet" } else { "gzip CSV" },
        compressed as f64 / 1e6,
        sorting.as_secs_f64(),
        (total - sorting).as_secs_f64(),
        rows as f64 / total.as_secs_f64(),
        peak as f64 / 1024.0,
        before as f64 / 1024.0,
        RUN_BYTES / (1024 * 1024),
    );
}
