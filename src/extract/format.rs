//! Deciding what an object is, from its name and Content-Type, before it is downloaded.
//!
//! Only the name and the declared media type are looked at here; content sniffing of objects
//! without an extension happens after download (`sniff.rs`).

use super::Format;
use super::compress::Compression;

/// What an object's name says about its content, before download.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expected {
    /// The compression the name announces (`report.txt.gz`), if any.
    pub compression: Option<Compression>,
    /// The format of the (decompressed) content; `None` when the name has no extension, so the
    /// format is sniffed from the content after download.
    pub format: Option<Format>,
}

/// Whether an object is worth downloading, judged by its key alone (a listing has no
/// Content-Type): `None` means metadata only, never downloaded.
///
/// A compression extension is looked through (`logs.json.zst` is JSON). A known extension
/// decides; a name without extension is downloaded so that its content can be sniffed (the
/// caller still applies the size cap); an unknown extension is not downloaded.
pub fn expect_from_name(name: &str) -> Option<Expected> {
    let (inner, compression) = strip_compression(file_name(name));
    match extension(inner).map(|ext| by_extension(&ext.to_ascii_lowercase())) {
        Some(Known::Text(format)) => Some(Expected {
            compression,
            format: Some(format),
        }),
        Some(Known::Never | Known::Unknown) => None,
        None => Some(Expected {
            compression,
            format: by_file_name(inner),
        }),
    }
}

/// The last path segment of a key.
pub(super) fn file_name(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().unwrap_or(name)
}

/// Splits a compression extension off a file name: `("report.txt", Some(Gzip))` for
/// `report.txt.gz`. A bare `.gz` name (`.gz`) has no extension and stays as it is.
pub(super) fn strip_compression(file_name: &str) -> (&str, Option<Compression>) {
    if let Some(ext) = extension(file_name)
        && let Some(compression) = Compression::from_extension(&ext.to_ascii_lowercase())
    {
        return (
            &file_name[..file_name.len() - ext.len() - 1],
            Some(compression),
        );
    }
    (file_name, None)
}

/// Whether the file name has an extension we know to be extractable or known not to be.
pub(super) fn has_known_extension(file_name: &str) -> bool {
    extension(file_name)
        .is_some_and(|ext| !matches!(by_extension(&ext.to_ascii_lowercase()), Known::Unknown))
}

/// The format of an object from its name (key or filename; by extension, case-insensitively) and,
/// when known, its Content-Type. `None` means we do not extract it (metadata only; it will not be
/// downloaded).
///
/// Precedence: a known extension decides (a known unsupported one such as `.zip` or `.png` means
/// `None` whatever the Content-Type says, since stores often mislabel uploads); otherwise the
/// Content-Type; otherwise a few well-known extension-less file names (`README`, `Dockerfile`...).
/// A compression extension is looked through: `logs.txt.gz` is text, `a.tar.gz` is `None`.
pub fn format_for(name: &str, content_type: Option<&str>) -> Option<Format> {
    let (file_name, _) = strip_compression(file_name(name));
    match extension(file_name).map(|ext| by_extension(&ext.to_ascii_lowercase())) {
        Some(Known::Text(format)) => return Some(format),
        Some(Known::Never) => return None,
        Some(Known::Unknown) | None => {}
    }
    content_type
        .and_then(by_content_type)
        .or_else(|| by_file_name(file_name))
}

/// What an extension tells us.
enum Known {
    Text(Format),
    /// Unsupported binaries, archives or key material: never downloaded.
    Never,
    Unknown,
}

/// The text after the last dot, unless the dot starts the name (`.bashrc` has no extension).
fn extension(file_name: &str) -> Option<&str> {
    match file_name.rfind('.') {
        Some(0) | None => None,
        Some(dot) => Some(&file_name[dot + 1..]),
    }
}

fn by_extension(ext: &str) -> Known {
    use Format::*;
    let format = match ext {
        "txt" | "text" | "rst" | "adoc" | "asciidoc" | "org" | "tex" | "me" | "nfo" => PlainText,
        "md" | "markdown" | "mdown" | "mkd" | "mkdn" | "mdx" => Markdown,
        "csv" => Csv,
        "tsv" | "tab" => Tsv,
        "json" | "geojson" | "jsonld" | "ipynb" | "webmanifest" => Json,
        "ndjson" | "jsonl" | "jsonlines" => Ndjson,
        "xml" | "xsd" | "xsl" | "xslt" | "rss" | "atom" | "wsdl" | "kml" | "gpx" | "rdf"
        | "opml" | "resx" | "xliff" | "xlf" => Xml,
        "yaml" | "yml" => Yaml,
        "log" => Log,
        "html" | "htm" | "xhtml" | "shtml" => Html,
        "pdf" => Pdf,
        "docx" | "docm" | "dotx" => Docx,
        "pptx" | "pptm" | "potx" | "ppsx" => Pptx,
        "xlsx" | "xlsm" | "xltx" => Xlsx,
        "odt" | "ott" => Odt,
        "ods" | "ots" => Ods,
        "odp" | "otp" => Odp,
        "rtf" => Rtf,
        "epub" => Epub,
        "eml" => Eml,
        "rs" | "py" | "pyi" | "pyw" | "js" | "mjs" | "cjs" | "jsx" | "ts" | "mts" | "cts"
        | "tsx" | "go" | "java" | "c" | "h" | "cc" | "cpp" | "cxx" | "c++" | "hpp" | "hh"
        | "hxx" | "h++" | "inl" | "cs" | "fs" | "fsx" | "vb" | "rb" | "erb" | "php" | "sh"
        | "bash" | "zsh" | "fish" | "ksh" | "ps1" | "psm1" | "bat" | "cmd" | "sql" | "toml"
        | "ini" | "cfg" | "conf" | "config" | "properties" | "env" | "kt" | "kts" | "swift"
        | "scala" | "sc" | "groovy" | "gradle" | "clj" | "cljs" | "cljc" | "edn" | "ex" | "exs"
        | "erl" | "hrl" | "hs" | "lhs" | "elm" | "ml" | "mli" | "lua" | "pl" | "pm" | "r"
        | "jl" | "dart" | "m" | "mm" | "vue" | "svelte" | "css" | "scss" | "sass" | "less"
        | "proto" | "graphql" | "gql" | "tf" | "tfvars" | "hcl" | "nix" | "zig" | "nim" | "v"
        | "sv" | "vhd" | "vhdl" | "asm" | "s" | "mk" | "cmake" | "dockerfile" | "diff"
        | "patch" | "el" | "lisp" | "scm" | "rkt" | "f90" | "f" | "for" | "pas" | "d" | "cr"
        | "sol" | "tcl" | "awk" | "sed" | "vim" | "gitignore" | "editorconfig" | "bzl"
        | "bazel" | "cabal" | "mod" | "sum" | "lock" | "csproj" | "vcxproj" | "sln" | "pom"
        | "plist" | "j2" | "jinja" | "tmpl" | "tpl" | "hbs" | "mustache" => SourceCode,
        "gz" | "tgz" | "bz2" | "tbz2" | "xz" | "txz" | "zst" | "lz4" | "lz" | "lzma" | "z"
        | "zip" | "7z" | "rar" | "tar" | "jar" | "war" | "ear" | "whl" | "apk" | "deb" | "rpm"
        | "png" | "jpg" | "jpeg" | "gif" | "webp" | "bmp" | "tif" | "tiff" | "ico" | "icns"
        | "heic" | "heif" | "avif" | "svg" | "psd" | "ai" | "eps" | "raw" | "mp3" | "mp4"
        | "m4a" | "m4v" | "aac" | "wav" | "flac" | "ogg" | "oga" | "opus" | "mov" | "avi"
        | "mkv" | "webm" | "wmv" | "mpg" | "mpeg" | "doc" | "xls" | "ppt" | "parquet" | "avro"
        | "orc" | "arrow" | "feather" | "npy" | "npz" | "pkl" | "pickle" | "h5" | "hdf5"
        | "exe" | "dll" | "so" | "dylib" | "bin" | "dat" | "class" | "o" | "a" | "obj" | "lib"
        | "wasm" | "pyc" | "pyo" | "db" | "sqlite" | "sqlite3" | "mdb" | "iso" | "img" | "dmg"
        | "vmdk" | "qcow2" | "woff" | "woff2" | "ttf" | "otf" | "eot" | "swf" | "pem" | "der"
        | "p12" | "pfx" | "key" | "gpg" | "asc" | "sig" => {
            return Known::Never;
        }
        _ => return Known::Unknown,
    };
    Known::Text(format)
}

pub(super) fn by_content_type(content_type: &str) -> Option<Format> {
    use Format::*;
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let format = match essence.as_str() {
        "text/plain" => PlainText,
        "text/markdown" | "text/x-markdown" => Markdown,
        "text/csv" | "application/csv" | "text/comma-separated-values" => Csv,
        "text/tab-separated-values" => Tsv,
        "application/json" | "text/json" => Json,
        "application/x-ndjson"
        | "application/ndjson"
        | "application/jsonl"
        | "application/x-jsonlines"
        | "application/jsonlines" => Ndjson,
        "application/xml" | "text/xml" => Xml,
        "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml" => Yaml,
        "text/html" | "application/xhtml+xml" => Html,
        "text/css"
        | "text/javascript"
        | "application/javascript"
        | "application/x-javascript"
        | "application/ecmascript"
        | "application/typescript"
        | "application/x-typescript"
        | "application/x-sh"
        | "application/x-shellscript"
        | "application/sql"
        | "application/toml"
        | "application/x-httpd-php"
        | "application/x-php" => SourceCode,
        "text/x-log" => Log,
        "application/pdf" | "application/x-pdf" => Pdf,
        "text/rtf" | "application/rtf" => Rtf,
        "message/rfc822" => Eml,
        "application/epub+zip" => Epub,
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => Docx,
        "application/vnd.openxmlformats-officedocument.presentationml.presentation" => Pptx,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => Xlsx,
        "application/vnd.oasis.opendocument.text" => Odt,
        "application/vnd.oasis.opendocument.spreadsheet" => Ods,
        "application/vnd.oasis.opendocument.presentation" => Odp,
        other => {
            let (kind, subtype) = other.split_once('/')?;
            if kind == "image" || kind == "audio" || kind == "video" || kind == "font" {
                return None;
            } else if subtype.ends_with("+json") {
                Json
            } else if subtype.ends_with("+xml") {
                Xml
            } else if kind == "text" && subtype.starts_with("x-") {
                // text/x-python, text/x-c++src, text/x-shellscript...
                SourceCode
            } else if kind == "text" {
                PlainText
            } else {
                return None;
            }
        }
    };
    Some(format)
}

pub(super) fn by_file_name(file_name: &str) -> Option<Format> {
    const SOURCE: &[&str] = &[
        "dockerfile",
        "containerfile",
        "makefile",
        "gnumakefile",
        "jenkinsfile",
        "vagrantfile",
        "gemfile",
        "rakefile",
        "procfile",
        "brewfile",
        "justfile",
    ];
    const TEXT: &[&str] = &[
        "readme",
        "license",
        "licence",
        "changelog",
        "changes",
        "notice",
        "authors",
        "contributors",
        "copying",
        "install",
        "todo",
    ];
    let lower = file_name.to_ascii_lowercase();
    if SOURCE.contains(&lower.as_str()) {
        Some(Format::SourceCode)
    } else if TEXT.contains(&lower.as_str()) {
        Some(Format::PlainText)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Format::*;

    #[test]
    fn format_for_table() {
        let cases: &[(&str, Option<&str>, Option<Format>)] = &[
            // Extensions, any case.
            ("notes.txt", None, Some(PlainText)),
            ("NOTES.TXT", None, Some(PlainText)),
            ("a/b/c.text", None, Some(PlainText)),
            ("report.v2.TXT", None, Some(PlainText)),
            ("README.md", None, Some(Markdown)),
            ("doc.Markdown", None, Some(Markdown)),
            ("data.csv", None, Some(Csv)),
            ("data.TSV", None, Some(Tsv)),
            ("data.json", None, Some(Json)),
            ("events.ndjson", None, Some(Ndjson)),
            ("events.JSONL", None, Some(Ndjson)),
            ("feed.xml", None, Some(Xml)),
            ("config.yaml", None, Some(Yaml)),
            ("config.YML", None, Some(Yaml)),
            ("app.log", None, Some(Log)),
            ("index.html", None, Some(Html)),
            ("index.HTM", None, Some(Html)),
            ("page.xhtml", None, Some(Html)),
            ("main.rs", None, Some(SourceCode)),
            ("script.py", None, Some(SourceCode)),
            ("App.Java", None, Some(SourceCode)),
            ("x.hpp", None, Some(SourceCode)),
            ("Cargo.toml", None, Some(SourceCode)),
            ("settings.ini", None, Some(SourceCode)),
            ("nginx.conf", None, Some(SourceCode)),
            ("q.sql", None, Some(SourceCode)),
            // The extension wins over the Content-Type.
            ("page.html", Some("text/plain"), Some(Html)),
            ("data.json", Some("application/octet-stream"), Some(Json)),
            // Unsupported binaries and archives: never, whatever the Content-Type says.
            ("a.tar.gz", None, None),
            ("a.tar.gz", Some("text/plain"), None),
            ("photo.JPG", Some("image/jpeg"), None),
            ("x.zip", None, None),
            ("old.doc", None, None),
            // Compressed names are judged by their inner name.
            ("logs.txt.gz", None, Some(PlainText)),
            ("logs.JSON.zst", None, Some(Json)),
            ("notes.md.bz2", None, Some(Markdown)),
            ("t.csv.xz", None, Some(Csv)),
            // Documents.
            ("doc.pdf", Some("application/pdf"), Some(Pdf)),
            ("a.DOCX", None, Some(Docx)),
            ("a.pptx", None, Some(Pptx)),
            ("a.xlsx", None, Some(Xlsx)),
            ("a.odt", None, Some(Odt)),
            ("a.ods", None, Some(Ods)),
            ("a.odp", None, Some(Odp)),
            ("a.rtf", None, Some(Rtf)),
            ("a.epub", None, Some(Epub)),
            ("a.eml", None, Some(Eml)),
            // Unknown extension: the Content-Type decides.
            ("blob.xyz", None, None),
            ("blob.xyz", Some("text/plain"), Some(PlainText)),
            ("blob.xyz", Some("application/octet-stream"), None),
            // No extension: Content-Type, with parameters and any case.
            ("object", None, None),
            ("object", Some("text/plain; charset=utf-8"), Some(PlainText)),
            ("object", Some("TEXT/HTML;charset=UTF-8"), Some(Html)),
            ("object", Some("application/json"), Some(Json)),
            ("object", Some("application/ld+json"), Some(Json)),
            ("object", Some("application/x-ndjson"), Some(Ndjson)),
            ("object", Some("application/xml"), Some(Xml)),
            ("object", Some("text/xml"), Some(Xml)),
            ("object", Some("application/atom+xml"), Some(Xml)),
            ("object", Some("application/xhtml+xml"), Some(Html)),
            ("object", Some("image/svg+xml"), None),
            ("object", Some("text/csv"), Some(Csv)),
            ("object", Some("text/tab-separated-values"), Some(Tsv)),
            ("object", Some("text/markdown"), Some(Markdown)),
            ("object", Some("application/yaml"), Some(Yaml)),
            ("object", Some("application/x-yaml"), Some(Yaml)),
            ("object", Some("text/x-python"), Some(SourceCode)),
            ("object", Some("application/javascript"), Some(SourceCode)),
            ("object", Some("text/calendar"), Some(PlainText)),
            ("object", Some("text/x-log"), Some(Log)),
            ("object", Some("text/rtf"), Some(Rtf)),
            ("object", Some("message/rfc822"), Some(Eml)),
            ("object", Some("application/epub+zip"), Some(Epub)),
            ("object", Some("application/octet-stream"), None),
            ("object", Some("binary/octet-stream"), None),
            ("object", Some("application/pdf"), Some(Pdf)),
            ("object", Some("garbage"), None),
            ("object", Some(""), None),
            // Dot files and trailing dots have no extension.
            (".bashrc", None, None),
            (".env", Some("text/plain"), Some(PlainText)),
            ("dir.d/file", None, None),
            ("name.", Some("text/plain"), Some(PlainText)),
            // Well-known names when the Content-Type says nothing useful.
            ("repo/Dockerfile", None, Some(SourceCode)),
            ("repo/README", Some("binary/octet-stream"), Some(PlainText)),
            ("repo/README", Some("text/markdown"), Some(Markdown)),
            ("", None, None),
            // Non-ASCII names never confuse the extension split.
            ("r\u{e9}sum\u{e9}.TXT", None, Some(PlainText)),
            (
                "\u{434}\u{430}\u{43d}\u{43d}\u{44b}\u{435}.json",
                None,
                Some(Json),
            ),
            (
                "x.\u{422}\u{425}\u{422}",
                Some("text/plain"),
                Some(PlainText),
            ),
            ("x.\u{422}\u{425}\u{422}", None, None),
            ("dir/\u{e9}.", None, None),
        ];
        for (name, content_type, want) in cases {
            assert_eq!(
                format_for(name, *content_type),
                *want,
                "format_for({name:?}, {content_type:?})"
            );
        }
    }

    #[test]
    fn expect_from_name_table() {
        let expect = |compression, format| {
            Some(Expected {
                compression,
                format,
            })
        };
        let cases: &[(&str, Option<Expected>)] = &[
            ("a/notes.txt", expect(None, Some(PlainText))),
            (
                "a/report.txt.gz",
                expect(Some(Compression::Gzip), Some(PlainText)),
            ),
            ("logs.json.ZST", expect(Some(Compression::Zstd), Some(Json))),
            ("data.gz", expect(Some(Compression::Gzip), None)),
            ("exports/no-extension", expect(None, None)),
            ("Makefile", expect(None, Some(SourceCode))),
            ("book.epub", expect(None, Some(Epub))),
            ("a.tar.gz", None),
            ("blob.xyz", None),
            ("photo.png", None),
            ("x.gz.gz", None),
        ];
        for (name, want) in cases {
            assert_eq!(expect_from_name(name), *want, "{name}");
        }
    }
}
