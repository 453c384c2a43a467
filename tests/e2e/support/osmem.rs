//! osmem-server, an in-memory emulator of the OpenSearch REST API (no real OpenSearch can be
//! installed on our machines), for the integration tests: finds or installs it (a private
//! virtualenv, see `support::tools`), starts private instances and one shared instance per test
//! process, and sends raw requests to it.
//!
//! osmem picks its own free port (`-addr 127.0.0.1:0`) and prints its URL, so there is no race
//! for a port. It exits when its stdin closes (the default "stdin watch") and when the test
//! process disappears (`-parent-pid`), so none outlives the test binary, even one that is killed.
//! Unlike OpenSearch it shows documents without a refresh: tests must not depend on refresh
//! timing either way.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use super::http::{self, HttpResponse};
use super::tools::{self, PipTool};

/// How long `start` waits for osmem to print its URL.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// Timeout of one raw request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A running osmem-server on `127.0.0.1`, stopped on drop.
#[derive(Debug)]
pub struct OsmemServer {
    url: String,
    pid: u32,
    log: PathBuf,
    process: Mutex<Process>,
}

#[derive(Debug)]
struct Process {
    child: Child,
    /// Closing it stops osmem.
    stdin: Option<ChildStdin>,
}

static SHARED: OnceLock<OsmemServer> = OnceLock::new();

impl OsmemServer {
    /// Starts a private osmem and waits until it has printed its URL. Panics with its output if
    /// it does not within 30 s.
    pub fn start() -> OsmemServer {
        let exe = osmem_server_executable();
        let log = tempfile::Builder::new()
            .prefix("s3c-osmem-")
            .suffix(".log")
            .tempfile()
            .expect("cannot create osmem's log file")
            .into_temp_path()
            .keep()
            .expect("cannot keep osmem's log file");
        let mut child = Command::new(&exe)
            .args(["-addr", "127.0.0.1:0", "-parent-pid"])
            .arg(std::process::id().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&log).expect("cannot open osmem's log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("osmem's stdout");
        // The first line is `{"url": ..., "pid": ...}`; the rest is drained so osmem never blocks
        // on a full pipe.
        let (first_line, arrived) = mpsc::channel();
        thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = first_line.send(lines.next());
            for _ in lines {}
        });
        let server = |line: String| -> Option<OsmemServer> {
            let ready: serde_json::Value = serde_json::from_str(&line).ok()?;
            Some(OsmemServer {
                url: ready["url"].as_str()?.to_owned(),
                pid: ready["pid"].as_u64().map_or(child.id(), |pid| pid as u32),
                log: log.clone(),
                process: Mutex::new(Process { child, stdin }),
            })
        };
        match arrived.recv_timeout(START_DEADLINE) {
            Ok(Some(Ok(line))) => server(line.clone()).unwrap_or_else(|| {
                panic!(
                    "osmem-server ({}) printed {line:?} instead of its URL\n--- its output ---\n{}",
                    exe.display(),
                    read_tail(&log)
                )
            }),
            outcome => panic!(
                "osmem-server ({}) did not print its URL within {START_DEADLINE:?} ({outcome:?})\n--- its output ---\n{}",
                exe.display(),
                read_tail(&log)
            ),
        }
    }

    /// The instance shared by every test of this process, started on first use. Tests isolate
    /// themselves by unique index names (`support::unique_name`). It stops when the process
    /// exits (its stdin closes).
    pub fn shared() -> &'static OsmemServer {
        SHARED.get_or_init(OsmemServer::start)
    }

    /// `http://127.0.0.1:PORT`, for `url` in configs.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The process id of osmem.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The end of osmem's log (stderr).
    pub fn log_tail(&self) -> String {
        read_tail(&self.log)
    }

    /// Sends a raw request (JSON body, or none when `body` is empty) and returns the answer,
    /// whatever its status.
    pub fn request(&self, method: &str, path: &str, body: &str) -> HttpResponse {
        let headers: &[(&str, &str)] = if body.is_empty() {
            &[]
        } else {
            &[("Content-Type", "application/json")]
        };
        http::send(
            &self.url,
            method,
            path,
            headers,
            body.as_bytes(),
            REQUEST_TIMEOUT,
        )
        .unwrap_or_else(|e| {
            panic!(
                "{method} {path} to osmem at {} failed: {e}\n--- osmem output ---\n{}",
                self.url,
                self.log_tail()
            )
        })
    }

    /// Like [`OsmemServer::request`], but panics unless the answer is 2xx; returns its JSON.
    pub fn json(&self, method: &str, path: &str, body: &str) -> serde_json::Value {
        let response = self.request(method, path, body);
        assert!(
            response.is_success(),
            "osmem {method} {path} answered {}: {}",
            response.status,
            response.text()
        );
        serde_json::from_slice(&response.body).unwrap_or_else(|e| {
            panic!("osmem {method} {path}: not JSON ({e}): {}", response.text())
        })
    }

    fn stop(&self) {
        let mut process = self
            .process
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        drop(process.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = process.child.try_wait() {
                let _ = fs::remove_file(&self.log);
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = process.child.kill();
        let _ = process.child.wait();
        let _ = fs::remove_file(&self.log);
    }
}

impl Drop for OsmemServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn read_tail(log: &PathBuf) -> String {
    let text = fs::read(log)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_else(|e| format!("(no log: {e})"));
    let chars: Vec<char> = text.chars().collect();
    chars[chars.len().saturating_sub(4000)..].iter().collect()
}

/// The osmem-server executable: `$S3C_OSMEM_SERVER` if set, else the one bundled in the
/// `osmem-server==0.1.6` package of the virtualenv
/// `${S3C_TOOLS_DIR:-$HOME/.cache/s3-connector}/osmem-server-0.1.6`, installed on first use.
pub fn osmem_server_executable() -> PathBuf {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        PipTool {
            venv_name: "osmem-server-0.1.6",
            requirement: "osmem-server==0.1.6",
            override_var: "S3C_OSMEM_SERVER",
            locate: |venv| tools::in_site_packages(venv, "osmem_server/bin/osmem-server"),
        }
        .executable()
    })
    .clone()
}
