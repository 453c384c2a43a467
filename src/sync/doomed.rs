//! The ids of documents to delete once a listing has completed, kept in memory up to a few
//! thousand and spilled to an anonymous temporary file beyond that, so that a listing that
//! would delete millions of documents does not hold millions of ids in memory.
//!
//! The file is created unlinked (`tempfile::tempfile`, in `$TMPDIR`): the system reclaims it
//! when the process exits, even when it is killed, so nothing is left to clean.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use crate::sink::DocId;

/// Ids kept in memory before the buffer spills to disk (16 bytes each: 64 KiB).
const IN_MEMORY: usize = 4096;

/// Ids handed to one [`Sink::delete`](crate::sink::Sink::delete).
pub const DELETE_CHUNK: usize = 1000;

/// Ids of documents to delete.
#[derive(Default)]
pub struct Doomed {
    memory: Vec<DocId>,
    spilled: Option<BufWriter<File>>,
    count: u64,
}

impl Doomed {
    /// Adds an id.
    pub fn push(&mut self, id: DocId) -> io::Result<()> {
        self.count += 1;
        if self.memory.len() < IN_MEMORY {
            self.memory.push(id);
            return Ok(());
        }
        let file = match &mut self.spilled {
            Some(file) => file,
            None => self.spilled.insert(BufWriter::new(tempfile::tempfile()?)),
        };
        file.write_all(id.as_bytes())
    }

    /// How many ids were added.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether no id was added.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Every id, in chunks of at most [`DELETE_CHUNK`], the spilled ones read back from disk a
    /// chunk at a time.
    pub fn into_chunks(self) -> io::Result<Chunks> {
        let spilled = match self.spilled {
            Some(writer) => {
                let mut file = writer
                    .into_inner()
                    .map_err(io::IntoInnerError::into_error)?;
                file.seek(SeekFrom::Start(0))?;
                Some(BufReader::new(file))
            }
            None => None,
        };
        Ok(Chunks {
            memory: self.memory,
            spilled,
        })
    }
}

/// The chunks of a [`Doomed`]: the in-memory ids, then the spilled ones.
pub struct Chunks {
    memory: Vec<DocId>,
    spilled: Option<BufReader<File>>,
}

impl Iterator for Chunks {
    type Item = io::Result<Vec<DocId>>;

    fn next(&mut self) -> Option<Self::Item> {
        if !self.memory.is_empty() {
            let rest = self.memory.split_off(self.memory.len().min(DELETE_CHUNK));
            return Some(Ok(std::mem::replace(&mut self.memory, rest)));
        }
        let file = self.spilled.as_mut()?;
        let mut chunk = Vec::with_capacity(DELETE_CHUNK);
        let mut bytes = [0u8; 16];
        while chunk.len() < DELETE_CHUNK {
            match file.read_exact(&mut bytes) {
                Ok(()) => chunk.push(DocId::from_bytes(bytes)),
                Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
                    self.spilled = None;
                    break;
                }
                Err(error) => {
                    self.spilled = None;
                    return Some(Err(error));
                }
            }
        }
        (!chunk.is_empty()).then_some(Ok(chunk))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_comes_back_once_in_chunks_whether_kept_in_memory_or_spilled() {
        for count in [
            0,
            1,
            DELETE_CHUNK,
            IN_MEMORY,
            IN_MEMORY + 1,
            3 * IN_MEMORY + 17,
        ] {
            let ids: Vec<DocId> = (0..count).map(|n| DocId::of("b", &n.to_string())).collect();
            let mut doomed = Doomed::default();
            for id in &ids {
                doomed.push(*id).unwrap();
            }
            assert_eq!(doomed.len(), count as u64);
            assert_eq!(doomed.spilled.is_some(), count > IN_MEMORY, "{count}");
            let chunks: Vec<Vec<DocId>> =
                doomed.into_chunks().unwrap().map(Result::unwrap).collect();
            assert!(
                chunks
                    .iter()
                    .all(|chunk| !chunk.is_empty() && chunk.len() <= DELETE_CHUNK)
            );
            assert_eq!(chunks.concat(), ids, "{count}");
        }
    }
}
