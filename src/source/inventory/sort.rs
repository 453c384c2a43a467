//! An external sort of listing entries by key, in bounded memory: entries are gathered up to a
//! byte budget, sorted, and written as a run to an unlinked temporary file; at the end the runs
//! are merged k ways (in passes of at most [`FAN_IN`] runs, so a huge inventory never opens
//! thousands of files at once). Inventory data files are each sorted by key but not across
//! files; the sync's merge with the index needs one sorted stream.
//!
//! Files come from `tempfile::tempfile` (in `$TMPDIR`), unlinked from the start: the system
//! reclaims them when the process ends, even when it is killed.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use time::OffsetDateTime;

use crate::source::s3::ObjectEntry;

/// Bytes of entries held in memory before they are sorted and spilled as one run.
pub const RUN_BYTES: usize = 8 * 1024 * 1024;

/// Runs merged at once; more runs are first merged in passes.
pub const FAN_IN: usize = 64;

/// Bytes an entry is counted for in memory: its strings plus the struct.
fn weight(entry: &ObjectEntry) -> usize {
    entry.key.len()
        + entry.etag.len()
        + entry.storage_class.as_ref().map_or(0, String::len)
        + std::mem::size_of::<ObjectEntry>()
}

/// Gathers entries and sorts them.
pub struct Sorter {
    buffer: Vec<ObjectEntry>,
    buffered_bytes: usize,
    run_bytes: usize,
    runs: Vec<File>,
}

impl Sorter {
    /// A sorter that spills every `run_bytes` of entries.
    pub fn new(run_bytes: usize) -> Self {
        Self {
            buffer: Vec::new(),
            buffered_bytes: 0,
            run_bytes: run_bytes.max(1),
            runs: Vec::new(),
        }
    }

    /// Adds an entry.
    pub fn push(&mut self, entry: ObjectEntry) -> io::Result<()> {
        self.buffered_bytes += weight(&entry);
        self.buffer.push(entry);
        if self.buffered_bytes >= self.run_bytes {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.buffer.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        let mut writer = BufWriter::new(tempfile::tempfile()?);
        for entry in self.buffer.drain(..) {
            write_entry(&mut writer, &entry)?;
        }
        let mut file = writer
            .into_inner()
            .map_err(io::IntoInnerError::into_error)?;
        file.seek(SeekFrom::Start(0))?;
        self.runs.push(file);
        self.buffered_bytes = 0;
        Ok(())
    }

    /// Every entry added, in key order (by UTF-8 bytes); equal keys come out next to each
    /// other.
    pub fn finish(mut self) -> io::Result<Sorted> {
        self.spill()?;
        let mut runs = self.runs;
        while runs.len() > FAN_IN {
            let rest = runs.split_off(FAN_IN);
            let mut merged = Sorted::of(runs)?;
            let mut writer = BufWriter::new(tempfile::tempfile()?);
            while let Some(entry) = merged.next_entry()? {
                write_entry(&mut writer, &entry)?;
            }
            let mut file = writer
                .into_inner()
                .map_err(io::IntoInnerError::into_error)?;
            file.seek(SeekFrom::Start(0))?;
            runs = rest;
            runs.push(file);
        }
        Sorted::of(runs)
    }
}

/// The sorted entries, read back from the runs a few at a time.
pub struct Sorted {
    readers: Vec<BufReader<File>>,
    /// The next entry of each run that has one, smallest key on top.
    heap: BinaryHeap<Reverse<(String, usize)>>,
    heads: Vec<Option<ObjectEntry>>,
}

impl Sorted {
    fn of(runs: Vec<File>) -> io::Result<Self> {
        let mut sorted = Self {
            readers: runs
                .into_iter()
                .map(|run| BufReader::with_capacity(64 * 1024, run))
                .collect(),
            heap: BinaryHeap::new(),
            heads: Vec::new(),
        };
        sorted.heads = vec![None; sorted.readers.len()];
        for run in 0..sorted.readers.len() {
            sorted.advance(run)?;
        }
        Ok(sorted)
    }

    fn advance(&mut self, run: usize) -> io::Result<()> {
        if let Some(entry) = read_entry(&mut self.readers[run])? {
            self.heap.push(Reverse((entry.key.clone(), run)));
            self.heads[run] = Some(entry);
        }
        Ok(())
    }

    /// The next entry in key order; `None` after the last.
    pub fn next_entry(&mut self) -> io::Result<Option<ObjectEntry>> {
        let Some(Reverse((_, run))) = self.heap.pop() else {
            return Ok(None);
        };
        let entry = self.heads[run].take();
        self.advance(run)?;
        Ok(entry)
    }
}

fn write_bytes(writer: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    let len = u32::try_from(bytes.len()).map_err(|_| io::Error::other("a field is over 4 GiB"))?;
    writer.write_all(&len.to_le_bytes())?;
    writer.write_all(bytes)
}

fn write_entry(writer: &mut impl Write, entry: &ObjectEntry) -> io::Result<()> {
    write_bytes(writer, entry.key.as_bytes())?;
    write_bytes(writer, entry.etag.as_bytes())?;
    writer.write_all(&entry.size.to_le_bytes())?;
    writer.write_all(&entry.last_modified.unix_timestamp_nanos().to_le_bytes())?;
    match &entry.storage_class {
        Some(class) => {
            writer.write_all(&[1])?;
            write_bytes(writer, class.as_bytes())
        }
        None => writer.write_all(&[0]),
    }
}

fn read_string(reader: &mut impl Read) -> io::Result<String> {
    let mut len = [0u8; 4];
    reader.read_exact(&mut len)?;
    let mut bytes = vec![0u8; u32::from_le_bytes(len) as usize];
    reader.read_exact(&mut bytes)?;
    String::from_utf8(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "a sorted run holds a string that is not UTF-8",
        )
    })
}

/// The next entry of a run; `None` at its end.
fn read_entry(reader: &mut BufReader<File>) -> io::Result<Option<ObjectEntry>> {
    use std::io::BufRead as _;
    if reader.fill_buf()?.is_empty() {
        return Ok(None);
    }
    let key = read_string(reader)?;
    let etag = read_string(reader)?;
    let mut size = [0u8; 8];
    reader.read_exact(&mut size)?;
    let mut nanos = [0u8; 16];
    reader.read_exact(&mut nanos)?;
    let last_modified = OffsetDateTime::from_unix_timestamp_nanos(i128::from_le_bytes(nanos))
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "a sorted run holds an impossible time",
            )
        })?;
    let mut flag = [0u8; 1];
    reader.read_exact(&mut flag)?;
    let storage_class = if flag[0] == 1 {
        Some(read_string(reader)?)
    } else {
        None
    };
    Ok(Some(ObjectEntry {
        key,
        size: u64::from_le_bytes(size),
        last_modified,
        etag,
        storage_class,
    }))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn entry(key: &str, n: u64) -> ObjectEntry {
        ObjectEntry {
            key: key.to_owned(),
            size: n,
            last_modified: OffsetDateTime::UNIX_EPOCH + std::time::Duration::from_millis(n),
            etag: format!("\"e{n}\""),
            storage_class: n.is_multiple_of(2).then(|| "STANDARD".to_owned()),
        }
    }

    fn sort(keys: &[String], run_bytes: usize) -> Vec<ObjectEntry> {
        let mut sorter = Sorter::new(run_bytes);
        for (n, key) in keys.iter().enumerate() {
            sorter.push(entry(key, n as u64)).unwrap();
        }
        let mut sorted = sorter.finish().unwrap();
        let mut out = Vec::new();
        while let Some(entry) = sorted.next_entry().unwrap() {
            out.push(entry);
        }
        out
    }

    #[test]
    fn many_runs_merge_in_passes_into_one_sorted_stream() {
        // One entry a run: 200 runs, more than FAN_IN, so the merge takes passes.
        let keys: Vec<String> = (0..200)
            .map(|n| format!("k{:03}", (n * 7919) % 200))
            .collect();
        let out = sort(&keys, 1);
        let got: Vec<&str> = out.iter().map(|entry| entry.key.as_str()).collect();
        let mut want: Vec<&str> = keys.iter().map(String::as_str).collect();
        want.sort_unstable();
        assert_eq!(got, want);
        // Every field survives the round trip through a run file.
        let k5 = keys.iter().position(|key| key == "k005").unwrap() as u64;
        assert_eq!(out[5], entry("k005", k5));
    }

    proptest! {
        #![proptest_config(crate::proptest_config::config())]

        #[test]
        fn any_keys_come_out_in_utf8_byte_order_whatever_the_run_size(
            keys in proptest::collection::vec("[a-c/é\u{1F600} ]{0,6}", 0..60),
            run_bytes in 1usize..2000,
        ) {
            let out = sort(&keys, run_bytes);
            let got: Vec<String> = out.into_iter().map(|entry| entry.key).collect();
            let mut want = keys.clone();
            want.sort();
            prop_assert_eq!(got, want);
        }
    }
}
