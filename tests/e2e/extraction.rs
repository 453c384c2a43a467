//! End-to-end extraction: a bucket of mixed documents (PDF, Office, OpenDocument, RTF, EPUB,
//! e-mail, compressed and extension-less objects) goes through moto, a sync and the embedded
//! index; words of each format must be searchable, and hostile or broken objects must end as
//! metadata with the right `content_status` and `extraction_error` while the sync goes on.

use std::io::Write as _;

use aws_sdk_s3::primitives::ByteStream;
use s3_connector::sink::{ContentStatus, Sink};

use crate::fixture::{Setup, create_bucket, put, s3_client};
use crate::support::{MotoServer, unique_name};

/// A checked-in fixture of tests/fixtures/.
fn fixture(name: &str) -> Vec<u8> {
    let path = crate::fixture::repo_path("tests/fixtures").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// A DOCX-named zip whose document part inflates to `size` bytes: a zip bomb.
fn zip_bomb(size: usize) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    writer
        .start_file(
            "word/document.xml",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
    let block = vec![b' '; 1 << 20];
    for _ in 0..size >> 20 {
        writer.write_all(&block).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

#[tokio::test]
async fn a_mixed_bucket_is_searchable_and_bad_objects_are_reported() {
    let moto = MotoServer::shared();
    let endpoint = moto.endpoint();
    let s3 = s3_client(&endpoint);
    let bucket = unique_name("extraction");
    create_bucket(&s3, &bucket).await;

    // (key, bytes, a word that only this object holds)
    let searchable: Vec<(&str, Vec<u8>, &str)> = vec![
        ("docs/report.pdf", fixture("sample.pdf"), "pelican"),
        ("docs/inventory.docx", fixture("sample.docx"), "flamingo"),
        ("docs/deck.pptx", fixture("sample.pptx"), "walrus"),
        ("docs/census.xlsx", fixture("sample.xlsx"), "adelie"),
        ("docs/notes.odt", fixture("sample.odt"), "otters"),
        ("docs/dams.ods", fixture("sample.ods"), "muskrat"),
        ("docs/slides.odp", fixture("sample.odp"), "puffin"),
        ("docs/memo.rtf", fixture("sample.rtf"), "heron"),
        ("books/voyages.epub", fixture("sample.epub"), "albatross"),
        ("mail/sighting.eml", fixture("sample.eml"), "kingfisher"),
        ("logs/report.txt.gz", fixture("report.txt.gz"), "capybara"),
        ("logs/events.json.zst", fixture("logs.json.zst"), "axolotl"),
        ("notes/ibis.md.bz2", fixture("notes.md.bz2"), "ibis"),
        ("data/birds.csv.xz", fixture("table.csv.xz"), "otago"),
        (
            "exports/survey-2024",
            b"Manatee grazing survey, no extension".to_vec(),
            "manatee",
        ),
        // A workbook uploaded without extension: sniffed from its zip entries.
        ("exports/upload-0042", fixture("sample.xlsx"), "gentoo"),
    ];
    for (key, body, _) in &searchable {
        put(&s3, &bucket, key, body.clone()).await;
    }
    s3.put_object()
        .bucket(&bucket)
        .key("web/gannet.html")
        .content_encoding("gzip")
        .content_type("text/html; charset=utf-8")
        .body(ByteStream::from(gzip(
            b"<html><head><title>Gannet</title></head><body><p>Gannet colony page</p></body></html>",
        )))
        .send()
        .await
        .expect("put gzip-encoded page");

    let huge_text = "lemur ".repeat(2000);
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("bad/encrypted.pdf", fixture("encrypted.pdf")),
        ("bad/encrypted.docx", fixture("encrypted.docx")),
        ("bad/truncated.txt.gz", fixture("truncated.txt.gz")),
        (
            "bad/corrupt.xlsx",
            b"PK\x03\x04 this is not a workbook".to_vec(),
        ),
        ("bad/bomb.txt.gz", gzip(&vec![0u8; 16 << 20])),
        ("bad/bomb.docx", zip_bomb(16 << 20)),
        ("bad/picture", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0".to_vec()),
        ("bad/huge.txt", huge_text.clone().into_bytes()),
    ];
    for (key, body) in &bad {
        assert!(body.len() < 200_000, "{key} is small in the bucket");
        put(&s3, &bucket, key, body.clone()).await;
    }

    let setup = Setup::new();
    let config = setup.config(
        &endpoint,
        &[&bucket],
        "    max_extracted_bytes: 1048576\n    max_body_chars: 1000\n",
    );
    let report = setup.sync(&config).await;
    assert_eq!(report.errors, 0, "{:?}", report.error_messages);
    let total = searchable.len() + 1 + bad.len();
    assert_eq!(report.added, total as u64);
    assert_eq!(
        report.extraction_errors, 4,
        "encrypted PDF and DOCX, truncated gzip, corrupt XLSX"
    );
    assert_eq!(report.metadata_only, 3, "two bombs and an image");

    let index = setup.index();
    for (key, _, word) in &searchable {
        let doc = setup.doc(&bucket, key).unwrap();
        assert_eq!(
            doc.content_status,
            ContentStatus::Extracted,
            "{key}: {:?}",
            doc.extraction_error
        );
        let hits = index.search(word, 10).await.unwrap();
        assert!(
            hits.iter().any(|hit| hit.key == *key),
            "searching {word:?} finds {key}: {hits:?}"
        );
    }
    let page = setup.doc(&bucket, "web/gannet.html").unwrap();
    assert_eq!(page.title.as_deref(), Some("Gannet"));
    assert_eq!(page.body.as_deref(), Some("Gannet colony page"));
    let pdf = setup.doc(&bucket, "docs/report.pdf").unwrap();
    assert_eq!(pdf.title.as_deref(), Some("Quarterly pelican report"));
    let mail = setup.doc(&bucket, "mail/sighting.eml").unwrap();
    assert_eq!(mail.title.as_deref(), Some("Kingfisher sightings"));

    let expect_error = |key: &str, status: ContentStatus, message: Option<&str>| {
        let doc = setup.doc(&bucket, key).unwrap();
        assert_eq!(
            doc.content_status, status,
            "{key}: {:?}",
            doc.extraction_error
        );
        assert_eq!(doc.body, None, "{key} has metadata only");
        match message {
            Some(start) => {
                let error = doc.extraction_error.unwrap_or_default();
                assert!(error.starts_with(start), "{key}: {error}");
            }
            None => assert_eq!(doc.extraction_error, None, "{key}"),
        }
    };
    expect_error(
        "bad/encrypted.pdf",
        ContentStatus::Error,
        Some("encrypted PDF"),
    );
    expect_error(
        "bad/encrypted.docx",
        ContentStatus::Error,
        Some("encrypted DOCX"),
    );
    expect_error(
        "bad/truncated.txt.gz",
        ContentStatus::Error,
        Some("truncated or corrupt gzip data"),
    );
    expect_error(
        "bad/corrupt.xlsx",
        ContentStatus::Error,
        Some("corrupt XLSX"),
    );
    expect_error(
        "bad/bomb.txt.gz",
        ContentStatus::TooLarge,
        Some("decompressed content exceed max_extracted_bytes (1048576 bytes)"),
    );
    expect_error(
        "bad/bomb.docx",
        ContentStatus::TooLarge,
        Some("decompressed document parts exceed max_extracted_bytes"),
    );
    expect_error("bad/picture", ContentStatus::Unsupported, None);

    let huge = setup.doc(&bucket, "bad/huge.txt").unwrap();
    assert_eq!(huge.content_status, ContentStatus::Extracted);
    assert_eq!(
        huge.body.as_deref(),
        Some(&huge_text[..1000]),
        "the body is cut at max_body_chars"
    );
}
