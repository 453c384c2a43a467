//! The local model against its own promises and against an independent implementation. The
//! model comes from `S3C_MODEL_DIR` (scripts/test exports it), else `scripts/ensure-model`
//! installs it: a missing model fails these tests, it never skips them.

use std::path::PathBuf;
use std::sync::OnceLock;

use super::*;

/// The model directory: `S3C_MODEL_DIR`, else what `scripts/ensure-model` prints.
fn model_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("S3C_MODEL_DIR") {
        return PathBuf::from(dir);
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = std::process::Command::new("bash")
        .arg(repo.join("scripts/ensure-model"))
        .output()
        .expect("cannot run scripts/ensure-model");
    assert!(
        output.status.success(),
        "scripts/ensure-model failed (set S3C_MODEL_DIR to a model directory instead):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    PathBuf::from(stdout.trim().lines().last().unwrap())
}

/// One loaded model for every test of this process.
fn model() -> &'static LocalEmbedder {
    static MODEL: OnceLock<LocalEmbedder> = OnceLock::new();
    MODEL.get_or_init(|| LocalEmbedder::load(&model_dir(), 2).unwrap())
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

async fn embed(texts: &[&str]) -> Vec<Vec<f32>> {
    let texts: Vec<String> = texts.iter().map(|t| (*t).to_owned()).collect();
    model().embed(&texts).await.unwrap()
}

#[tokio::test]
async fn vectors_have_384_unit_components_and_the_model_its_name() {
    assert_eq!(
        model().model(),
        &EmbeddingModel {
            id: "local:sentence-transformers/all-MiniLM-L6-v2".into(),
            dimensions: 384
        }
    );
    assert_eq!(model().window(), 256);
    for vector in embed(&["hello world", "", "東京 🚀 مرحبا"]).await {
        assert_eq!(vector.len(), 384);
        let norm = cosine(&vector, &vector).sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
    }
}

#[tokio::test]
async fn paraphrases_are_closer_than_unrelated_sentences() {
    let v = embed(&[
        "The cat sits on the mat.",
        "A kitten is resting on a rug.",
        "Quarterly revenue grew by twelve percent.",
    ])
    .await;
    let (paraphrase, unrelated) = (cosine(&v[0], &v[1]), cosine(&v[0], &v[2]));
    assert!(paraphrase > unrelated + 0.2, "{paraphrase} vs {unrelated}");
}

#[tokio::test]
async fn a_batch_gives_the_vectors_of_one_by_one() {
    // Short texts, then long ones that take more than one pass of the encoder together.
    let long: Vec<String> = (0..9)
        .map(|n| format!("passage {n} of the bucket . ").repeat(50))
        .collect();
    let mut texts = vec![
        "short",
        "a somewhat longer sentence about buckets and their objects",
        "東京は日本の首都です。",
        "",
    ];
    texts.extend(long.iter().map(String::as_str));
    let pieces: usize = texts
        .iter()
        .map(|t| model().count_tokens(t).min(model().window()))
        .sum();
    assert!(pieces > PIECES_PER_PASS, "{pieces} pieces fit one pass");
    let together = embed(&texts).await;
    for (text, vector) in texts.iter().zip(&together) {
        let alone = &embed(&[text]).await[0];
        assert!(cosine(alone, vector) > 0.9999, "{text:?}");
    }
}

#[tokio::test]
async fn long_text_is_read_to_the_window_not_cut_at_128() {
    // Cats for the first ~130 word pieces, then markets: a 128-piece cut knows only the cats.
    let long = format!(
        "{}{}",
        "the cat sat on the mat and slept . ".repeat(14),
        "stock markets fell after the bank raised interest rates . ".repeat(20)
    );
    let tokens = model().count_tokens(&long);
    assert!(
        tokens > 256,
        "{tokens} tokens: the counter must not truncate"
    );
    // The 128-piece cut the packaged tokenizer.json would make, and our own.
    let mut cut = load_tokenizer(&model_dir().join("tokenizer.json")).unwrap();
    let encoding = cut.encode(long.as_str(), true).unwrap();
    assert_eq!(
        encoding.len(),
        128,
        "the packaged file truncates at 128 (the trap)"
    );
    cut.with_truncation(None).unwrap();
    let pieces = cut.encode(long.as_str(), false).unwrap();
    let offsets = pieces.get_offsets();
    let first_126 = &long[..offsets[125].1];
    let first_254 = &long[..offsets[253].1];
    let v = embed(&[&long, first_126, first_254]).await;
    assert!(
        cosine(&v[0], &v[2]) > 0.999,
        "the full text reads as its first 254 pieces"
    );
    assert!(
        cosine(&v[0], &v[1]) < 0.98,
        "the full text must differ from its 128-piece cut: {}",
        cosine(&v[0], &v[1])
    );
}

#[tokio::test]
async fn vectors_agree_with_the_int8_onnx_reference() {
    let fixture: serde_json::Value = serde_json::from_str(include_str!(
        "../../../tests/fixtures/embed/minilm-int8-reference.json"
    ))
    .unwrap();
    let texts: Vec<String> = serde_json::from_value(fixture["texts"].clone()).unwrap();
    let expected: Vec<Vec<f32>> = serde_json::from_value(fixture["vectors"].clone()).unwrap();
    let got = model().embed(&texts).await.unwrap();
    for ((text, got), expected) in texts.iter().zip(&got).zip(&expected) {
        let similarity = cosine(got, expected);
        assert!(similarity >= 0.99, "{similarity} for {text:?}");
    }
}

#[test]
fn a_missing_or_wrong_model_dir_names_the_path_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let absent = dir.path().join("nowhere");
    let error = LocalEmbedder::load(&absent, 1).err().unwrap().to_string();
    assert!(error.contains(&absent.display().to_string()), "{error}");
    std::fs::write(dir.path().join("config.json"), "{}").unwrap();
    let error = LocalEmbedder::load(dir.path(), 1)
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("model.safetensors, tokenizer.json"),
        "{error}"
    );
    std::fs::write(dir.path().join("model.safetensors"), "not weights").unwrap();
    std::fs::copy(
        model_dir().join("tokenizer.json"),
        dir.path().join("tokenizer.json"),
    )
    .unwrap();
    let error = LocalEmbedder::load(dir.path(), 1)
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("config.json"), "{error}");
    std::fs::copy(
        model_dir().join("config.json"),
        dir.path().join("config.json"),
    )
    .unwrap();
    let error = LocalEmbedder::load(dir.path(), 1)
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("model.safetensors"), "{error}");
}

#[test]
fn passages_of_a_long_text_fit_the_model_window() {
    let text: String = (0..400).map(|i| format!("word{i} ")).collect();
    let settings = crate::config::embedding::PassageSettings::default();
    let (passages, _) = crate::embed::passages_of(&text, model(), &settings);
    assert!(passages.len() > 1);
    for passage in &passages {
        assert!(model().count_tokens(&passage.text) <= 256);
    }
}
