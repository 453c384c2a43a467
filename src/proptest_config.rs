//! The one proptest configuration every property test of the crate uses
//! (`#![proptest_config(crate::proptest_config::with_cases(N))]`): regression files are read
//! but never written.
//!
//! proptest's default appends each new failing case to the tracked file under
//! `proptest-regressions/`, so one failed run rewrites a file under version control and every
//! later run fails on it until someone reverts it. Here the cases already in those files are
//! still replayed first, but a new failure is only printed: its seed line, ready to paste into
//! the file, and the shrunk case (proptest's panic message repeats the case too). Adding it
//! to a regression file is then a deliberate, reviewed commit.
//!
//! `PROPTEST_CASES` in the environment overrides every test's case count (for a long run:
//! `PROPTEST_CASES=2000 cargo test --release --lib`).

use std::any::Any;
use std::fmt;

use proptest::test_runner::{Config, FailurePersistence, FileFailurePersistence, PersistedSeed};

/// The regression files: proptest's default place, `proptest-regressions/<path of the source
/// file>.txt`.
const REGRESSIONS: FileFailurePersistence =
    FileFailurePersistence::SourceParallel("proptest-regressions");

/// Reads the regression file of a test's source file like proptest's default, and never writes
/// it: a new failure's seed line is printed instead.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ReadOnlyRegressions(FileFailurePersistence);

impl FailurePersistence for ReadOnlyRegressions {
    fn load_persisted_failures2(&self, source_file: Option<&'static str>) -> Vec<PersistedSeed> {
        self.0.load_persisted_failures2(source_file)
    }

    fn save_persisted_failure2(
        &mut self,
        source_file: Option<&'static str>,
        seed: PersistedSeed,
        shrunken_value: &dyn fmt::Debug,
    ) {
        let line = format!("{seed} # shrinks to {shrunken_value:?}").replace(['\n', '\r'], " ");
        eprintln!(
            "proptest: a new failing case; to replay it before every run, add this line to the \
             regression file of {} (under proptest-regressions/) in a commit:\n{line}",
            source_file.unwrap_or("the test's source file"),
        );
    }

    fn box_clone(&self) -> Box<dyn FailurePersistence> {
        Box::new(self.clone())
    }

    fn eq(&self, other: &dyn FailurePersistence) -> bool {
        other
            .as_any()
            .downcast_ref::<Self>()
            .is_some_and(|other| other == self)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// proptest's defaults (256 cases, or `PROPTEST_CASES`) with read-only regression files.
pub(crate) fn config() -> Config {
    Config {
        failure_persistence: Some(Box::new(ReadOnlyRegressions(REGRESSIONS))),
        ..Config::default()
    }
}

/// [`config`] with `cases` cases, unless `PROPTEST_CASES` sets another count.
pub(crate) fn with_cases(cases: u32) -> Config {
    let mut config = config();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    config
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    /// Every tracked regression file, with the source file it belongs to.
    fn tracked_files() -> Vec<(PathBuf, PathBuf)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut found = Vec::new();
        let mut dirs = vec![root.join("proptest-regressions")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "txt") {
                    let relative = path
                        .strip_prefix(root.join("proptest-regressions"))
                        .unwrap();
                    let source = root.join("src").join(relative).with_extension("rs");
                    found.push((path, source));
                }
            }
        }
        found
    }

    fn leak(path: &Path) -> &'static str {
        Box::leak(path.to_str().unwrap().to_owned().into_boxed_str())
    }

    #[test]
    fn the_tracked_cases_are_replayed() {
        let files = tracked_files();
        assert!(!files.is_empty());
        let persistence = config().failure_persistence.unwrap();
        for (regressions, source) in files {
            assert!(
                source.is_file(),
                "{} has no source file {}",
                regressions.display(),
                source.display()
            );
            let text = std::fs::read_to_string(&regressions).unwrap();
            let cases = text.lines().filter(|line| line.starts_with("cc ")).count();
            let loaded = persistence.load_persisted_failures2(Some(leak(&source)));
            assert_eq!(loaded.len(), cases, "{}", regressions.display());
        }
    }

    #[test]
    fn a_new_failure_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cases.txt");
        let line = "cc 51733bc0c65d84dd94d401937cd727d0c0c87c215e6ead95c95e74e7c17c3206 # shrinks to x = 1\n";
        std::fs::write(&file, line).unwrap();
        let mut persistence = ReadOnlyRegressions(FileFailurePersistence::Direct(leak(&file)));
        let loaded = persistence.load_persisted_failures2(None);
        assert_eq!(loaded.len(), 1);
        persistence.save_persisted_failure2(None, loaded[0].clone(), &"a new case");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), line);
        // A test whose file does not exist yet gets none either.
        let absent = dir.path().join("absent.txt");
        let mut persistence = ReadOnlyRegressions(FileFailurePersistence::Direct(leak(&absent)));
        persistence.save_persisted_failure2(None, loaded[0].clone(), &"a new case");
        assert!(!absent.exists());
    }

    #[test]
    fn every_property_test_uses_this_config() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut dirs = vec![root.join("src")];
        let mut missing = Vec::new();
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs")
                    || path.ends_with("proptest_config.rs")
                {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let blocks = text.matches("proptest! {").count();
                let configured = text.matches("crate::proptest_config::").count();
                if blocks != configured {
                    missing.push(format!(
                        "{}: {blocks} blocks, {configured} configured",
                        path.display()
                    ));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "property tests that would write regression files: {missing:#?}"
        );
    }
}
