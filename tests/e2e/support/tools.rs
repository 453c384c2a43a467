//! Test servers shipped as PyPI packages (moto, osmem-server): finds one, or installs it into a
//! private virtualenv `${S3C_TOOLS_DIR:-$HOME/.cache/s3-connector}/<name>`, once per machine,
//! under a file lock shared with `scripts/ensure-pip-tool`, so parallel test processes and the
//! scripts never race. A virtualenv counts as installed once its `.s3c-complete` marker exists.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A server installed with pip.
pub struct PipTool {
    /// Directory name of its virtualenv, e.g. `moto-5.2.5`.
    pub venv_name: &'static str,
    /// What pip installs, e.g. `moto[server]==5.2.5`.
    pub requirement: &'static str,
    /// Environment variable that names an executable to use instead of installing.
    pub override_var: &'static str,
    /// Finds the executable inside an installed virtualenv.
    pub locate: fn(&Path) -> Option<PathBuf>,
}

impl PipTool {
    /// The executable: `$override_var` if set, else the virtualenv's, installed on first use
    /// with `${S3C_PYTHON:-python3} -m venv` and pip. Panics with pip's output if that fails.
    pub fn executable(&self) -> PathBuf {
        if let Some(path) = std::env::var_os(self.override_var) {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "{}={} is not a file",
                self.override_var,
                path.display()
            );
            return path;
        }
        let tools = match std::env::var_os("S3C_TOOLS_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => {
                let home = std::env::var_os("HOME")
                    .expect("neither S3C_TOOLS_DIR nor HOME is set: cannot place test tools");
                PathBuf::from(home).join(".cache").join("s3-connector")
            }
        };
        let venv = tools.join(self.venv_name);
        let marker = venv.join(".s3c-complete");
        let installed = || marker.is_file().then(|| (self.locate)(&venv)).flatten();
        if let Some(exe) = installed() {
            return exe;
        }
        fs::create_dir_all(&tools)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", tools.display()));
        let lock_path = tools.join(format!("{}.lock", self.venv_name));
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", lock_path.display()));
        lock.lock()
            .unwrap_or_else(|e| panic!("cannot lock {}: {e}", lock_path.display()));
        if let Some(exe) = installed() {
            return exe; // another process installed it while we waited
        }
        eprintln!(
            "installing {} into {} (once per machine)",
            self.requirement,
            venv.display()
        );
        if venv.exists() {
            fs::remove_dir_all(&venv)
                .unwrap_or_else(|e| panic!("cannot remove partial {}: {e}", venv.display()));
        }
        let python = std::env::var_os("S3C_PYTHON").unwrap_or_else(|| "python3".into());
        self.run_step(Command::new(&python).arg("-m").arg("venv").arg(&venv));
        self.run_step(
            Command::new(venv.join("bin").join("python"))
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .arg(self.requirement),
        );
        let exe = (self.locate)(&venv).unwrap_or_else(|| {
            panic!(
                "pip installed {} but its executable is missing in {}",
                self.requirement,
                venv.display()
            )
        });
        fs::write(&marker, format!("{}\n", self.requirement))
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", marker.display()));
        exe
    }

    fn run_step(&self, command: &mut Command) {
        let output = command
            .output()
            .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
        assert!(
            output.status.success(),
            "installing {} failed: {command:?} exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.requirement,
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// `path` if it is a file.
pub fn existing(path: PathBuf) -> Option<PathBuf> {
    path.is_file().then_some(path)
}

/// A file of a package installed in the virtualenv `venv`:
/// `lib/python3.*/site-packages/<relative>`.
pub fn in_site_packages(venv: &Path, relative: &str) -> Option<PathBuf> {
    fs::read_dir(venv.join("lib"))
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path().join("site-packages").join(relative))
        .find(|path| path.is_file())
}
