//! The `embedding:` block of a connector: which model turns passages into vectors, and how
//! passages are cut. Absent means no passages and no vectors: a plain full-text sync.
//!
//! [`EmbeddingFile`] is the block as written (in a connector or in `defaults:`);
//! [`EmbeddingSettings`] the validated settings, which only [`validate`] builds. Nothing here
//! loads a model or calls an endpoint (that is `embed::for_connector`); `api_key_file` is read.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{ConnectorProblems, NumberRule, REDACTED, check_numbers};
use crate::config::secret::Secret;

/// Where vectors come from, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// all-MiniLM-L6-v2 (or another BERT sentence-transformers model) run in-process.
    Local,
    /// An OpenAI-compatible `/v1/embeddings` endpoint.
    Openai,
}

/// The `embedding:` block as written. Fields of the other provider are refused.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingFile {
    /// `local` (the model runs in the worker, on its CPUs) or `openai` (any OpenAI-compatible
    /// `/v1/embeddings` endpoint: OpenAI, Azure OpenAI, Ollama, vLLM, text-embeddings-inference,
    /// LM Studio). Required.
    pub provider: ProviderKind,
    /// `local`: the model directory in the Hugging Face hub layout (`config.json`,
    /// `model.safetensors`, `tokenizer.json`; `sentence_bert_config.json` gives the window).
    /// Relative to the config file's directory. Required with `local`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_dir: Option<PathBuf>,
    /// `openai`: the API's base URL, the part before `/embeddings`
    /// (`https://api.openai.com/v1`, `http://127.0.0.1:11434/v1` for Ollama). Required with
    /// `openai`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    /// `openai`: the model name sent with each request (`text-embedding-3-small`,
    /// `nomic-embed-text`). Required with `openai`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// `openai`: the API key, sent as `Authorization: Bearer` (masked in every output). Not
    /// together with `api_key_file`. Default: none (local servers need none).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "expose_secret"
    )]
    pub api_key: Option<Secret>,
    /// `openai`: a file holding the API key (a mounted Kubernetes secret), relative to the
    /// config file's directory; trailing newlines are dropped. Not together with `api_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_file: Option<PathBuf>,
    /// Components of every vector, 1..=65536. Required with `openai` (the endpoint's model
    /// answers this many); with `local`, optional and checked against the model's
    /// `hidden_size` before anything is written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u64>,
    /// `openai`: texts per request, 1..=2048. Default 32.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u64>,
    /// `openai`: requests per second at most, 0..=100000; 0 means unlimited. Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_second: Option<u64>,
    /// `openai`: a `tokenizer.json` (relative to the config file's directory) to count
    /// passage tokens with. Default: an estimate of one token per 3 bytes of UTF-8, which
    /// over-counts English (about 4 characters a token) and so keeps passages within budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer: Option<PathBuf>,
    /// `local`: threads of the pool the model runs on, 1..=256, apart from the threads that
    /// list, download and serve the API. Default: the CPUs the worker may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<u64>,
    /// Tokens per passage at most, counted by the model's tokenizer, 16..=8192; with `local`
    /// at most the model's window (256 for all-MiniLM-L6-v2). Default 256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Tokens neighbouring passages share, 0..=4096 and less than half of `max_tokens`.
    /// Default 32.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlap_tokens: Option<u64>,
    /// Passages kept per document, 1..=1000000; the rest are dropped and the document is
    /// counted as capped in the report. Default 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_passages_per_document: Option<u64>,
}

/// Writes a secret's value: only for the `defaults:` block's round trip into API-created
/// connectors (which are parsed like a file), never for an answer or a log.
fn expose_secret<S: serde::Serializer>(
    secret: &Option<Secret>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => serializer.serialize_some(secret.expose()),
        None => serializer.serialize_none(),
    }
}

/// Default `max_tokens`: the window of all-MiniLM-L6-v2.
pub const fn default_max_tokens() -> usize {
    256
}

/// Default `overlap_tokens`.
pub const fn default_overlap_tokens() -> usize {
    32
}

/// Default `max_passages_per_document`.
pub const fn default_max_passages_per_document() -> usize {
    1_000
}

/// Default `batch_size` of the `openai` provider.
pub const fn default_batch_size() -> usize {
    32
}

/// Default `threads`: the CPUs this process may use.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A connector's embedding settings, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingSettings {
    /// Where the vectors come from.
    pub provider: EmbeddingProvider,
    /// How passages are cut.
    pub passages: PassageSettings,
    /// Threads of the dedicated pool the local model runs on (never the async runtime's).
    pub threads: usize,
}

/// Where vectors come from.
#[derive(Debug, Clone, PartialEq)]
pub enum EmbeddingProvider {
    /// A sentence-transformers model (all-MiniLM-L6-v2) run in-process with candle.
    Local {
        /// The model directory, in the Hugging Face hub layout (`config.json`,
        /// `model.safetensors`, `tokenizer.json`).
        model_dir: PathBuf,
        /// The dimensions the configuration expects, checked against the model's.
        dimensions: Option<usize>,
    },
    /// An OpenAI-compatible `/v1/embeddings` endpoint.
    Openai {
        /// The endpoint's base URL (`https://api.openai.com/v1`).
        endpoint_url: String,
        /// The model name sent with each request.
        model: String,
        /// The API key, if the endpoint needs one.
        api_key: Option<Secret>,
        /// Components of every vector.
        dimensions: usize,
        /// Texts per request.
        batch_size: usize,
        /// Requests per second at most, 0 unlimited.
        requests_per_second: u32,
        /// A `tokenizer.json` to count tokens with; `None`: estimated from characters.
        tokenizer: Option<PathBuf>,
    },
}

/// How a document's text is cut into passages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassageSettings {
    /// Tokens per passage at most (the model's tokenizer counts them). Default 256.
    pub max_tokens: usize,
    /// Tokens shared by neighbouring passages. Default 32.
    pub overlap_tokens: usize,
    /// Passages kept per document; the rest are dropped and counted. Default 1,000.
    pub max_passages_per_document: usize,
}

impl Default for PassageSettings {
    fn default() -> Self {
        Self {
            max_tokens: default_max_tokens(),
            overlap_tokens: default_overlap_tokens(),
            max_passages_per_document: default_max_passages_per_document(),
        }
    }
}

/// The whole-number fields of the block and their ranges (unset fields pass).
pub(crate) const NUMBERS: [NumberRule<EmbeddingFile>; 7] = [
    NumberRule {
        field: "dimensions",
        min: 1,
        max: 65_536,
        value: |b| b.dimensions.unwrap_or(1),
        unit: "",
    },
    NumberRule {
        field: "batch_size",
        min: 1,
        max: 2_048,
        value: |b| b.batch_size.unwrap_or(1),
        unit: "",
    },
    NumberRule {
        field: "requests_per_second",
        min: 0,
        max: 100_000,
        value: |b| b.requests_per_second.unwrap_or(0),
        unit: "",
    },
    NumberRule {
        field: "threads",
        min: 1,
        max: 256,
        value: |b| b.threads.unwrap_or(1),
        unit: "",
    },
    NumberRule {
        field: "max_tokens",
        min: 16,
        max: 8_192,
        value: |b| b.max_tokens.unwrap_or(256),
        unit: "",
    },
    NumberRule {
        field: "overlap_tokens",
        min: 0,
        max: 4_096,
        value: |b| b.overlap_tokens.unwrap_or(0),
        unit: "",
    },
    NumberRule {
        field: "max_passages_per_document",
        min: 1,
        max: 1_000_000,
        value: |b| b.max_passages_per_document.unwrap_or(1),
        unit: "",
    },
];

/// The fields only one provider reads.
const LOCAL_ONLY: [&str; 2] = ["model_dir", "threads"];
const OPENAI_ONLY: [&str; 7] = [
    "endpoint_url",
    "model",
    "api_key",
    "api_key_file",
    "batch_size",
    "requests_per_second",
    "tokenizer",
];

impl EmbeddingFile {
    /// Whether the field named is written.
    fn has(&self, field: &str) -> bool {
        match field {
            "model_dir" => self.model_dir.is_some(),
            "threads" => self.threads.is_some(),
            "endpoint_url" => self.endpoint_url.is_some(),
            "model" => self.model.is_some(),
            "api_key" => self.api_key.is_some(),
            "api_key_file" => self.api_key_file.is_some(),
            "batch_size" => self.batch_size.is_some(),
            "requests_per_second" => self.requests_per_second.is_some(),
            "tokenizer" => self.tokenizer.is_some(),
            _ => false,
        }
    }
}

/// Checks the `embedding` block of one connector (reading `api_key_file` relative to
/// `base_dir`); the settings when every rule holds.
pub(super) fn validate(
    file: Option<&EmbeddingFile>,
    base_dir: &Path,
    report: &mut ConnectorProblems<'_>,
) -> Option<EmbeddingSettings> {
    let file = file?;
    let before = report.list.len();
    check_numbers(&NUMBERS, file, &mut |field, value, rule| {
        report.push(&format!("embedding.{field}"), value, rule)
    });
    let passages = PassageSettings {
        max_tokens: file.max_tokens.map_or(default_max_tokens(), |n| n as usize),
        overlap_tokens: file
            .overlap_tokens
            .map_or(default_overlap_tokens(), |n| n as usize),
        max_passages_per_document: file
            .max_passages_per_document
            .map_or(default_max_passages_per_document(), |n| n as usize),
    };
    // Against a max_tokens out of range the overlap is not judged: one problem is enough.
    if passages.overlap_tokens * 2 >= passages.max_tokens && passages.max_tokens >= 16 {
        report.push(
            "embedding.overlap_tokens",
            Some(passages.overlap_tokens.to_string()),
            format!(
                "must be less than half of max_tokens ({}): neighbouring passages would share \
                 most of their text",
                passages.max_tokens
            ),
        );
    }
    let (foreign, name) = match file.provider {
        ProviderKind::Local => (&OPENAI_ONLY[..], "local"),
        ProviderKind::Openai => (&LOCAL_ONLY[..], "openai"),
    };
    for field in foreign.iter().filter(|f| file.has(f)) {
        let masked = *field == "api_key";
        report.without_value(
            &format!("embedding.{field}"),
            masked,
            format!("is not read by provider {name}; remove it"),
        );
    }
    let provider = match file.provider {
        ProviderKind::Local => local(file, base_dir, report),
        ProviderKind::Openai => openai(file, base_dir, report),
    };
    if report.list.len() != before {
        return None;
    }
    Some(EmbeddingSettings {
        provider: provider?,
        passages,
        threads: file.threads.map_or_else(default_threads, |n| n as usize),
    })
}

fn local(
    file: &EmbeddingFile,
    base_dir: &Path,
    report: &mut ConnectorProblems<'_>,
) -> Option<EmbeddingProvider> {
    let Some(model_dir) = &file.model_dir else {
        report.without_value(
            "embedding.model_dir",
            false,
            "is missing: provider local needs the model directory (config.json, \
             model.safetensors, tokenizer.json)",
        );
        return None;
    };
    Some(EmbeddingProvider::Local {
        model_dir: base_dir.join(model_dir),
        dimensions: file.dimensions.map(|n| n as usize),
    })
}

fn openai(
    file: &EmbeddingFile,
    base_dir: &Path,
    report: &mut ConnectorProblems<'_>,
) -> Option<EmbeddingProvider> {
    let endpoint_url = match file.endpoint_url.as_deref() {
        None => {
            report.without_value(
                "embedding.endpoint_url",
                false,
                "is missing: provider openai needs the API's base URL, e.g. \
                 https://api.openai.com/v1",
            );
            None
        }
        Some(url) => {
            report.check("embedding.endpoint_url", url, check_url(url));
            Some(url.trim_end_matches('/').to_owned())
        }
    };
    let model = match file.model.as_deref() {
        Some(model) if !model.trim().is_empty() => Some(model.to_owned()),
        written => {
            report.push(
                "embedding.model",
                written.map(|m| format!("{m:?}")),
                "is missing: provider openai needs the model name the endpoint serves".into(),
            );
            None
        }
    };
    if file.dimensions.is_none() {
        report.without_value(
            "embedding.dimensions",
            false,
            "is missing: provider openai needs the number of components the model answers \
             (1536 for text-embedding-3-small)",
        );
    }
    let api_key = match (&file.api_key, &file.api_key_file) {
        (Some(_), Some(_)) => {
            report.without_value(
                "embedding.api_key_file",
                false,
                "is set together with api_key; use one of them",
            );
            None
        }
        (key, None) => key.clone().filter(|k| !k.is_empty()),
        (None, Some(path)) => {
            let full = base_dir.join(path);
            match std::fs::read_to_string(&full) {
                Ok(text) => Some(Secret::new(text.trim_end_matches(['\n', '\r']))),
                Err(error) => {
                    report.push(
                        "embedding.api_key_file",
                        Some(format!("{:?}", path.display().to_string())),
                        format!("cannot be read from {}: {error}", full.display()),
                    );
                    None
                }
            }
        }
    };
    if let Some(key) = &api_key
        && key.expose().chars().any(|c| !c.is_ascii_graphic())
    {
        let field = if file.api_key.is_some() {
            "embedding.api_key"
        } else {
            "embedding.api_key_file"
        };
        report.push(
            field,
            Some(REDACTED.to_owned()),
            "must be printable ASCII without spaces (it travels in an HTTP header)".into(),
        );
    }
    Some(EmbeddingProvider::Openai {
        endpoint_url: endpoint_url?,
        model: model?,
        api_key,
        dimensions: file.dimensions? as usize,
        batch_size: file.batch_size.map_or(default_batch_size(), |n| n as usize),
        requests_per_second: file.requests_per_second.unwrap_or(0) as u32,
        tokenizer: file.tokenizer.as_ref().map(|path| base_dir.join(path)),
    })
}

/// An `http://` or `https://` URL with a host.
pub(super) fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') => Ok(()),
        _ => Err("must be an http:// or https:// URL with a host, e.g. \
                  https://api.openai.com/v1"
            .to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{assert_reported, parse_text, problems_of};

    fn with_embedding(block: &str) -> String {
        format!(
            "defaults:\n  region: us-east-1\nconnectors:\n  - id: docs\n    buckets: [docs]\n    embedding: {block}\n"
        )
    }

    #[test]
    fn absent_means_off_and_a_local_block_gets_defaults() {
        let config = parse_text("connectors:\n  - {id: aaa, buckets: [aaa]}\n").unwrap();
        assert_eq!(config.connectors[0].embedding, None);
        let config = parse_text(&with_embedding(
            "{provider: local, model_dir: models/minilm}",
        ))
        .unwrap();
        let settings = config.connectors[0].embedding.clone().unwrap();
        assert_eq!(
            settings.provider,
            EmbeddingProvider::Local {
                model_dir: Path::new(".").join("models/minilm"),
                dimensions: None
            }
        );
        assert_eq!(settings.passages, PassageSettings::default());
        assert_eq!(settings.threads, default_threads());
    }

    #[test]
    fn an_openai_block_reads_its_key_file_and_never_shows_the_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key"), "sk-very-secret\n").unwrap();
        let text = with_embedding(
            "{provider: openai, endpoint_url: 'http://127.0.0.1:8080/v1/', model: m, dimensions: 8, api_key_file: key, batch_size: 4, requests_per_second: 2}",
        );
        let config =
            crate::config::parse(&text, Path::new("c.yml"), dir.path(), &|_| None).unwrap();
        let settings = config.connectors[0].embedding.clone().unwrap();
        let EmbeddingProvider::Openai {
            endpoint_url,
            api_key,
            batch_size,
            requests_per_second,
            dimensions,
            ..
        } = &settings.provider
        else {
            panic!("{settings:?}")
        };
        assert_eq!(endpoint_url, "http://127.0.0.1:8080/v1");
        assert_eq!(api_key.as_ref().map(Secret::expose), Some("sk-very-secret"));
        assert_eq!((*batch_size, *requests_per_second, *dimensions), (4, 2, 8));
        assert!(!format!("{config:?}").contains("sk-very-secret"));
    }

    #[test]
    fn each_broken_rule_names_field_value_and_rule() {
        let cases: &[(&str, &str)] = &[
            (
                "{provider: local}",
                "connectors[0].embedding.model_dir: is missing",
            ),
            (
                "{provider: openai, model: m, dimensions: 3}",
                "connectors[0].embedding.endpoint_url: is missing",
            ),
            (
                "{provider: openai, endpoint_url: 'ftp://x', model: m, dimensions: 3}",
                "connectors[0].embedding.endpoint_url: \"ftp://x\" must be an http:// or https:// URL",
            ),
            (
                "{provider: openai, endpoint_url: 'http://x', model: m}",
                "connectors[0].embedding.dimensions: is missing",
            ),
            (
                "{provider: local, model_dir: m, max_tokens: 8}",
                "connectors[0].embedding.max_tokens: 8 is out of range: must be between 16 and 8192",
            ),
            (
                "{provider: local, model_dir: m, max_tokens: 64, overlap_tokens: 32}",
                "connectors[0].embedding.overlap_tokens: 32 must be less than half of max_tokens (64)",
            ),
            (
                "{provider: local, model_dir: m, endpoint_url: 'http://x'}",
                "connectors[0].embedding.endpoint_url: is not read by provider local",
            ),
            (
                "{provider: openai, endpoint_url: 'http://x', model: m, dimensions: 3, api_key: k, api_key_file: f}",
                "connectors[0].embedding.api_key_file: is set together with api_key",
            ),
            (
                "{provider: openai, endpoint_url: 'http://x', model: m, dimensions: 3, api_key_file: missing-key}",
                "connectors[0].embedding.api_key_file: \"missing-key\" cannot be read from",
            ),
            (
                "{provider: onnx, model_dir: m}",
                "connectors[0].embedding.provider",
            ),
            (
                "{provider: local, model_dir: m, threads: 0}",
                "connectors[0].embedding.threads: 0 is out of range: must be between 1 and 256",
            ),
        ];
        assert_reported(cases, |block| problems_of(&with_embedding(block)));
    }

    #[test]
    fn a_secret_never_appears_in_problems() {
        // The problems of `block`, checked not to show `secret`.
        let hiding = |block: &str, secret: &str| {
            let problems = problems_of(&with_embedding(block));
            assert!(problems.iter().all(|p| !p.contains(secret)), "{problems:?}");
            problems
        };
        let problems = hiding(
            "{provider: local, model_dir: m, api_key: 'sk-hidden value'}",
            "sk-hidden",
        );
        assert!(!problems.is_empty());
        let problems = hiding(
            "{provider: openai, endpoint_url: 'http://x', model: m, dimensions: 3, api_key: 'sk-hidden value'}",
            "sk-hidden",
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("must be printable ASCII")),
            "{problems:?}"
        );
        hiding(
            "{provider: openai, endpoint_url: 'http://x', model: m, dimensions: 3, api_key: 12345}",
            "12345",
        );
    }

    #[test]
    fn the_block_is_inherited_from_defaults_and_its_problems_point_there() {
        let text = "defaults:\n  embedding: {provider: local, model_dir: shared}\nconnectors:\n  - {id: aaa, buckets: [aaa]}\n  - {id: bbb, buckets: [bbb], embedding: {provider: local, model_dir: own}}\n";
        let config = parse_text(text).unwrap();
        let dirs: Vec<_> = config
            .connectors
            .iter()
            .map(|c| match &c.embedding.as_ref().unwrap().provider {
                EmbeddingProvider::Local { model_dir, .. } => model_dir.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            dirs,
            [Path::new(".").join("shared"), Path::new(".").join("own")]
        );
        let problems = problems_of(
            "defaults:\n  embedding: {provider: local, model_dir: m, max_tokens: 9}\nconnectors:\n  - {id: aaa, buckets: [aaa]}\n  - {id: bbb, buckets: [bbb]}\n",
        );
        assert_eq!(
            problems,
            ["defaults.embedding.max_tokens: 9 is out of range: must be between 16 and 8192"]
        );
    }
}
