//! Extraction throughput per format, through the worker's own entry point
//! (`extract::extract_object`: blocking pool, budget, decompression, dispatch, body cap).
//!
//! Run: `cargo bench --bench extraction` (release build). Inputs:
//! - text, HTML and JSON of about 8 MiB generated here, and the same text compressed with each
//!   supported compression (made with the system's `gzip`, `zstd`, `bzip2` and `xz` when they
//!   are installed, else skipped);
//! - every file of `tests/fixtures/` (small documents from real writers);
//! - every file of the directory named by `S3C_BENCH_DIR`, if set: larger real-world documents
//!   (`tests/fixtures/make_fixtures.py --bench DIR` writes a set).
//!
//! Each input is extracted repeatedly for at least half a second; the median run gives MB/s of
//! the object as stored and MB/s of the text produced (1 MB = 10^6 bytes).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use s3_connector::extract::{ExtractLimits, ObjectInput, extract_object};

const LIMITS: ExtractLimits = ExtractLimits {
    max_extracted_bytes: 1 << 30,
    timeout: Duration::from_secs(600),
    max_body_chars: usize::MAX,
};

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let mut inputs: Vec<(String, Vec<u8>)> = generated();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    inputs.extend(files_in(&fixtures));
    if let Some(dir) = std::env::var_os("S3C_BENCH_DIR") {
        inputs.extend(files_in(Path::new(&dir)));
    }
    println!(
        "{:<28} {:>9} {:>6} {:>11} {:>11} {:>9} {:>9}",
        "object", "bytes", "runs", "median", "stored MB/s", "text MB", "text MB/s"
    );
    for (name, bytes) in inputs {
        if name.ends_with(".py") || name == "README.md" {
            continue;
        }
        let mut times = Vec::new();
        let mut text_bytes = 0;
        let mut outcome = String::new();
        let started = Instant::now();
        while times.len() < 3 || started.elapsed() < Duration::from_millis(500) {
            let input = ObjectInput {
                name: name.clone(),
                bytes: bytes.clone(),
                ..ObjectInput::default()
            };
            let run = Instant::now();
            let result = runtime.block_on(extract_object(input, &LIMITS));
            times.push(run.elapsed());
            match result {
                Ok(text) => text_bytes = text.body.len(),
                Err(error) => outcome = format!("  ({error})"),
            }
            if times.len() >= 10_000 {
                break;
            }
        }
        times.sort();
        let median = times[times.len() / 2];
        let seconds = median.as_secs_f64();
        println!(
            "{:<28} {:>9} {:>6} {:>9.3}ms {:>11.1} {:>9.2} {:>9.1}{outcome}",
            name,
            bytes.len(),
            times.len(),
            seconds * 1e3,
            bytes.len() as f64 / 1e6 / seconds,
            text_bytes as f64 / 1e6,
            text_bytes as f64 / 1e6 / seconds,
        );
    }
}

/// Text, HTML and JSON of about 8 MiB, and the text compressed by each external tool found.
fn generated() -> Vec<(String, Vec<u8>)> {
    let words = [
        "pelican",
        "ledger",
        "migration",
        "caf\u{e9}",
        "report",
        "quarterly",
        "the",
        "of",
        "growth",
        "r\u{e9}sum\u{e9}",
        "colony",
        "budget",
    ];
    // Words drawn by xorshift64, so the text compresses like prose rather than like a pattern.
    let mut text = String::new();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    while text.len() < 8 << 20 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        text.push_str(words[(state % words.len() as u64) as usize]);
        text.push(if state.is_multiple_of(13) { '\n' } else { ' ' });
    }
    let html = format!(
        "<html><head><title>Bench</title><style>p {{ color: red }}</style></head><body>{}</body></html>",
        text.lines()
            .map(|line| format!("<p class=\"x\">{line} <b>bold</b> &amp; more</p>\n"))
            .collect::<String>()
    );
    let json = format!(
        "[{}]",
        text.lines()
            .map(|line| format!("{{\"line\": \"{line}\", \"n\": 42, \"ok\": true}}"))
            .collect::<Vec<_>>()
            .join(",\n")
    );
    let mut inputs = vec![
        ("generated.txt".to_owned(), text.clone().into_bytes()),
        ("generated.html".to_owned(), html.into_bytes()),
        ("generated.json".to_owned(), json.into_bytes()),
    ];
    for (tool, extension) in [
        ("gzip", "gz"),
        ("zstd", "zst"),
        ("bzip2", "bz2"),
        ("xz", "xz"),
    ] {
        if let Some(packed) = compress_with(tool, text.as_bytes()) {
            inputs.push((format!("generated.txt.{extension}"), packed));
        }
    }
    inputs
}

/// `tool -c` over `data`, if the tool is installed.
fn compress_with(tool: &str, data: &[u8]) -> Option<Vec<u8>> {
    use std::io::Write as _;
    let mut child = Command::new(tool)
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take()?;
    let data = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let output = child.wait_with_output().ok()?;
    writer.join().ok()?.ok()?;
    output.status.success().then_some(output.stdout)
}

/// The regular files of `dir`, sorted by name.
fn files_in(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    paths.sort();
    paths
        .into_iter()
        .filter(|p| p.is_file())
        .filter_map(|p| {
            let name = p.file_name()?.to_string_lossy().into_owned();
            Some((name, std::fs::read(&p).ok()?))
        })
        .collect()
}
