//! Compressed objects: which compression an object uses (by name, Content-Encoding or magic
//! bytes) and streaming decompression that stops at the extraction budget.
//!
//! Decompression uses async-compression's streaming decoders. The input is already in memory, so
//! the decoder never waits: it is driven to completion with a local executor on the blocking
//! thread that runs the extraction, chunk by chunk, checking the budget after each chunk. A
//! gzip bomb therefore costs at most `max_extracted_bytes` of memory. Not handled here: archives
//! of several files (`.tar.gz`, `.zip`), which are not documents.

use async_compression::tokio::bufread::{BzDecoder, GzipDecoder, XzDecoder, ZstdDecoder};
use tokio::io::{AsyncRead, AsyncReadExt as _};

use super::ExtractError;
use super::budget::Budget;

/// Bytes decoded per step.
const CHUNK: usize = 64 * 1024;

/// A compression we can undo.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compression {
    /// gzip (`.gz`, `Content-Encoding: gzip`); concatenated members are read as one stream.
    Gzip,
    /// Zstandard (`.zst`, `Content-Encoding: zstd`); concatenated frames are read as one stream.
    Zstd,
    /// bzip2 (`.bz2`).
    Bzip2,
    /// xz (`.xz`).
    Xz,
}

impl Compression {
    /// The compression a file extension (lowercase, without the dot) names.
    pub(super) fn from_extension(ext: &str) -> Option<Self> {
        match ext {
            "gz" | "gzip" => Some(Self::Gzip),
            "zst" | "zstd" => Some(Self::Zstd),
            "bz2" => Some(Self::Bzip2),
            "xz" => Some(Self::Xz),
            _ => None,
        }
    }

    /// The compression named by one Content-Encoding token. `Ok(None)` for tokens that do not
    /// change the bytes (`identity`, and `aws-chunked`, which S3 leaves in metadata);
    /// `Err(token)` for an encoding we cannot undo.
    pub(super) fn from_content_encoding(token: &str) -> Result<Option<Self>, String> {
        match token.trim().to_ascii_lowercase().as_str() {
            "" | "identity" | "aws-chunked" => Ok(None),
            "gzip" | "x-gzip" => Ok(Some(Self::Gzip)),
            "zstd" => Ok(Some(Self::Zstd)),
            "bzip2" | "x-bzip2" => Ok(Some(Self::Bzip2)),
            "xz" | "x-xz" => Ok(Some(Self::Xz)),
            other => Err(other.to_owned()),
        }
    }

    /// The compression whose magic bytes start `bytes`.
    pub(super) fn sniff(bytes: &[u8]) -> Option<Self> {
        [Self::Gzip, Self::Zstd, Self::Bzip2, Self::Xz]
            .into_iter()
            .find(|c| c.has_magic(bytes))
    }

    /// Whether `bytes` start with this compression's magic number.
    pub(super) fn has_magic(self, bytes: &[u8]) -> bool {
        match self {
            Self::Gzip => bytes.starts_with(&[0x1F, 0x8B, 0x08]),
            Self::Zstd => bytes.starts_with(&[0x28, 0xB5, 0x2F, 0xFD]),
            // "BZh", a block size digit, then the magic of a block or of the end of stream:
            // text that merely starts with "BZh" is not bzip2.
            Self::Bzip2 => {
                bytes.starts_with(b"BZh")
                    && bytes.get(3).is_some_and(|b| (b'1'..=b'9').contains(b))
                    && bytes.get(4..10).is_some_and(|m| {
                        m == [0x31, 0x41, 0x59, 0x26, 0x53, 0x59]
                            || m == [0x17, 0x72, 0x45, 0x38, 0x50, 0x90]
                    })
            }
            Self::Xz => bytes.starts_with(&[0xFD, b'7', b'z', b'X', b'Z', 0x00]),
        }
    }

    /// Its usual name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::Zstd => "zstd",
            Self::Bzip2 => "bzip2",
            Self::Xz => "xz",
        }
    }
}

/// Decompresses `bytes`, stopping with [`ExtractError::TooLarge`] once the output passes the
/// budget and with [`ExtractError::Decompress`] on truncated or corrupt input.
pub(super) fn decompress(
    compression: Compression,
    bytes: &[u8],
    budget: &Budget,
) -> Result<Vec<u8>, ExtractError> {
    match compression {
        Compression::Gzip => {
            let mut decoder = GzipDecoder::new(bytes);
            decoder.multiple_members(true);
            drain(decoder, compression, budget)
        }
        Compression::Zstd => {
            let mut decoder = ZstdDecoder::new(bytes);
            decoder.multiple_members(true);
            drain(decoder, compression, budget)
        }
        Compression::Bzip2 => drain(BzDecoder::new(bytes), compression, budget),
        Compression::Xz => drain(XzDecoder::new(bytes), compression, budget),
    }
}

fn drain(
    decoder: impl AsyncRead + Unpin,
    compression: Compression,
    budget: &Budget,
) -> Result<Vec<u8>, ExtractError> {
    futures::executor::block_on(async move {
        let mut decoder = decoder;
        let mut out = Vec::new();
        let mut chunk = vec![0u8; CHUNK];
        loop {
            budget.check_time()?;
            let n = decoder
                .read(&mut chunk)
                .await
                .map_err(|e| ExtractError::Decompress {
                    compression: compression.name(),
                    message: e.to_string(),
                })?;
            if n == 0 {
                return Ok(out);
            }
            budget.spend(n as u64, "decompressed content")?;
            out.extend_from_slice(&chunk[..n]);
        }
    })
}

#[cfg(test)]
pub(super) mod tests {
    use std::time::Duration;

    use super::*;

    /// Compresses with the same library family the decoders come from, so the tests need no
    /// checked-in archives.
    pub(in crate::extract) fn compress(compression: Compression, data: &[u8]) -> Vec<u8> {
        use async_compression::tokio::write::{BzEncoder, GzipEncoder, XzEncoder, ZstdEncoder};
        use tokio::io::AsyncWriteExt as _;
        futures::executor::block_on(async {
            macro_rules! run {
                ($encoder:expr) => {{
                    let mut encoder = $encoder;
                    encoder.write_all(data).await.unwrap();
                    encoder.shutdown().await.unwrap();
                    encoder.into_inner()
                }};
            }
            match compression {
                Compression::Gzip => run!(GzipEncoder::new(Vec::new())),
                Compression::Zstd => run!(ZstdEncoder::new(Vec::new())),
                Compression::Bzip2 => run!(BzEncoder::new(Vec::new())),
                Compression::Xz => run!(XzEncoder::new(Vec::new())),
            }
        })
    }

    const ALL: [Compression; 4] = [
        Compression::Gzip,
        Compression::Zstd,
        Compression::Bzip2,
        Compression::Xz,
    ];

    fn roomy() -> Budget {
        Budget::new(1 << 30, Duration::from_secs(60))
    }

    #[test]
    fn round_trip_and_magic() {
        let text = b"the quick brown fox jumps over the lazy dog\n".repeat(1000);
        for compression in ALL {
            let packed = compress(compression, &text);
            assert!(packed.len() < text.len() / 4, "{compression:?}");
            assert_eq!(Compression::sniff(&packed), Some(compression));
            assert_eq!(decompress(compression, &packed, &roomy()).unwrap(), text);
        }
        assert_eq!(Compression::sniff(b"plain text"), None);
        assert_eq!(Compression::sniff(b"BZh9 is not a bzip2 header"), None);
    }

    #[test]
    fn concatenated_gzip_members_are_one_stream() {
        let mut two = compress(Compression::Gzip, b"first ");
        two.extend(compress(Compression::Gzip, b"second"));
        assert_eq!(
            decompress(Compression::Gzip, &two, &roomy()).unwrap(),
            b"first second"
        );
    }

    #[test]
    fn a_bomb_stops_at_the_cap() {
        // 4 MiB of zeros compress to a few KiB in every format.
        let zeros = vec![0u8; 4 << 20];
        for compression in ALL {
            let bomb = compress(compression, &zeros);
            assert!(bomb.len() < 200_000, "{compression:?}: {}", bomb.len());
            let budget = Budget::new(1 << 20, Duration::from_secs(60));
            let err = decompress(compression, &bomb, &budget).unwrap_err();
            assert_eq!(
                err,
                ExtractError::TooLarge {
                    what: "decompressed content",
                    limit: 1 << 20
                },
                "{compression:?}"
            );
        }
    }

    #[test]
    fn truncated_and_corrupt_input_name_the_compression() {
        let text = b"some text that is long enough to be cut in the middle ".repeat(50);
        for compression in ALL {
            let packed = compress(compression, &text);
            let cut = &packed[..packed.len() / 2];
            let err = decompress(compression, cut, &roomy()).unwrap_err();
            let ExtractError::Decompress {
                compression: name, ..
            } = &err
            else {
                panic!("{compression:?}: {err}");
            };
            assert_eq!(*name, compression.name());
            assert!(err.to_string().contains(compression.name()), "{err}");
        }
        let mut garbage = compress(Compression::Gzip, &text);
        let middle = garbage.len() / 2;
        garbage[middle..middle + 8].copy_from_slice(b"garbage!");
        assert!(matches!(
            decompress(Compression::Gzip, &garbage, &roomy()),
            Err(ExtractError::Decompress { .. })
        ));
    }

    #[test]
    fn content_encoding_tokens() {
        assert_eq!(
            Compression::from_content_encoding("GZIP"),
            Ok(Some(Compression::Gzip))
        );
        assert_eq!(Compression::from_content_encoding(" identity "), Ok(None));
        assert_eq!(Compression::from_content_encoding("aws-chunked"), Ok(None));
        assert_eq!(
            Compression::from_content_encoding("br"),
            Err("br".to_owned())
        );
        assert_eq!(Compression::from_extension("zst"), Some(Compression::Zstd));
        assert_eq!(Compression::from_extension("zip"), None);
    }
}
