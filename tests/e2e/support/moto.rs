//! moto, the S3/STS/IAM emulator, in server mode for the integration tests: finds or installs it
//! (a private virtualenv, created once per machine under a file lock), starts private instances and
//! one shared instance per test process, and drives moto's control API (reset, request recorder,
//! IAM enforcement). Every moto process runs under a small `sh` supervisor that kills it when the
//! test process closes the supervisor's stdin, so no moto outlives the test binary, even one that
//! is killed.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use super::http::{self, HttpResponse};
use super::tools::{self, PipTool};

/// The moto release the harness installs and tests against.
pub const MOTO_VERSION: &str = "5.2.5";
/// An access key id moto accepts while IAM enforcement is off.
pub const ACCESS_KEY_ID: &str = "testing";
/// The secret that goes with [`ACCESS_KEY_ID`].
pub const SECRET_ACCESS_KEY: &str = "testing";
/// The region the tests use unless they test regions.
pub const REGION: &str = "us-east-1";

/// How long `start` waits for moto to answer.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// Timeout of one control-API call.
const API_TIMEOUT: Duration = Duration::from_secs(30);
/// A SigV4 `Authorization` header that moto accepts without checking while IAM enforcement is
/// off. moto treats requests without one as anonymous, and anonymous GetObject/HeadObject of a
/// private object get 403, so the raw helpers send this one.
pub const DUMMY_AUTHORIZATION: &str = "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00";

/// How often `start` retries on a port taken between picking it and moto binding it.
const START_ATTEMPTS: usize = 3;

/// Runs moto under `sh`: prints moto's pid, kills moto when stdin reaches EOF (the test process
/// closed it or died), and removes the instance's directory after such a requested stop. If moto
/// dies by itself the directory (with `moto.log`) is left for the harness to read.
const SUPERVISOR: &str = r#"
moto="$1"; port="$2"; dir="$3"
exec 3<&0
"$moto" -H 127.0.0.1 -p "$port" </dev/null >"$dir/moto.log" 2>&1 3<&- &
pid=$!
echo "$pid"
( cat <&3 >/dev/null 2>&1; : >"$dir/.closing"; kill "$pid" ) </dev/null >/dev/null 2>&1 &
exec 3<&-
wait "$pid"
status=$?
if [ -e "$dir/.closing" ]; then rm -rf -- "$dir"; fi
exit "$status"
"#;

/// One request as moto's recorder saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// HTTP method, e.g. `GET`.
    pub method: String,
    /// Path and query as sent, still percent-encoded, e.g. `/bucket?list-type=2&prefix=a`.
    pub url: String,
    /// Request headers, names lowercased.
    pub headers: BTreeMap<String, String>,
    /// The request body (empty when there was none).
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The path part of [`RecordedRequest::url`].
    pub fn path(&self) -> &str {
        self.url.split('?').next().unwrap_or_default()
    }

    /// The query part of [`RecordedRequest::url`], if any.
    pub fn query(&self) -> Option<&str> {
        self.url.split_once('?').map(|(_, q)| q)
    }
}

/// A running moto server on `127.0.0.1`, killed on drop.
#[derive(Debug)]
pub struct MotoServer {
    endpoint: String,
    port: u16,
    pid: u32,
    dir: PathBuf,
    process: Mutex<Supervisor>,
}

/// The `sh` that runs moto; closing its stdin stops moto.
#[derive(Debug)]
struct Supervisor {
    child: Child,
    stdin: Option<ChildStdin>,
    stopped: bool,
}

/// The instance behind [`MotoServer::shared`].
static SHARED: OnceLock<MotoServer> = OnceLock::new();

unsafe extern "C" {
    /// C's `atexit`: runs `callback` when the process exits (statics are never dropped).
    safe fn atexit(callback: extern "C" fn()) -> std::ffi::c_int;
}

/// Stops the shared instance at process exit, so no moto outlives the test binary even briefly.
extern "C" fn stop_shared_at_exit() {
    if let Some(server) = SHARED.get() {
        server.stop();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl MotoServer {
    /// Starts a private moto on a free port and waits until it answers. For tests that use the
    /// recorder, IAM enforcement or `reset`. Panics with moto's output if it does not come up
    /// within 30 s.
    pub fn start() -> MotoServer {
        let exe = moto_server_executable();
        let mut failures = Vec::new();
        for attempt in 1..=START_ATTEMPTS {
            match Self::try_start(&exe) {
                Ok(server) => return server,
                Err(failure) => {
                    let port_taken = failure.contains("Address already in use");
                    failures.push(failure);
                    if !port_taken || attempt == START_ATTEMPTS {
                        break;
                    }
                }
            }
        }
        panic!(
            "moto_server ({}) did not start:\n{}",
            exe.display(),
            failures.join("\n---- next attempt ----\n")
        );
    }

    /// The moto instance shared by every test of this process, started on first use. Tests that
    /// use it isolate themselves by unique bucket names (see `support::unique_name`) and must not
    /// call `reset`, the recorder or IAM enforcement on it (use [`MotoServer::start`] for those).
    /// It stops when the test process exits.
    pub fn shared() -> &'static MotoServer {
        SHARED.get_or_init(|| {
            let server = MotoServer::start();
            // If registration fails, the supervisor still stops moto once the process is gone.
            let _ = atexit(stop_shared_at_exit);
            server
        })
    }

    fn try_start(exe: &Path) -> Result<MotoServer, String> {
        let port = free_port();
        let dir = tempfile::Builder::new()
            .prefix("s3c-moto-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?
            .keep();
        let mut supervisor = Command::new("sh")
            .arg("-c")
            .arg(SUPERVISOR)
            .arg("sh")
            .arg(exe)
            .arg(port.to_string())
            .arg(&dir)
            .current_dir(&dir)
            .env("MOTO_RECORDER_FILEPATH", dir.join("recording"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run sh to start moto: {e}"))?;
        let stdin = supervisor.stdin.take();
        let mut line = String::new();
        let read = supervisor
            .stdout
            .take()
            .map(|out| BufReader::new(out).read_line(&mut line));
        let pid = match (read, line.trim().parse::<u32>()) {
            (Some(Ok(_)), Ok(pid)) => pid,
            _ => {
                drop(stdin);
                let _ = supervisor.kill();
                let _ = supervisor.wait();
                let _ = fs::remove_dir_all(&dir);
                return Err(format!("the moto supervisor printed no pid ({line:?})"));
            }
        };
        let server = MotoServer {
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
            pid,
            dir,
            process: Mutex::new(Supervisor {
                child: supervisor,
                stdin,
                stopped: false,
            }),
        };
        server.wait_until_ready()?;
        server.reset_recording();
        Ok(server)
    }

    fn wait_until_ready(&self) -> Result<(), String> {
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            let exited = lock(&self.process).child.try_wait();
            match exited {
                Ok(Some(status)) => {
                    return Err(format!(
                        "moto on port {} exited ({status}) before answering\n--- moto output ---\n{}",
                        self.port,
                        self.log_tail()
                    ));
                }
                Ok(None) => {}
                Err(e) => return Err(format!("cannot check the moto process: {e}")),
            }
            if http::send(&self.endpoint, "GET", "/", &[], b"", Duration::from_secs(2)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "moto on port {} did not answer within {START_DEADLINE:?}\n--- moto output ---\n{}",
                    self.port,
                    self.log_tail()
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The last few KB of moto's output (stdout and stderr).
    pub fn log_tail(&self) -> String {
        let text = fs::read(self.dir.join("moto.log"))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|e| format!("(no log: {e})"));
        let chars: Vec<char> = text.chars().collect();
        let start = chars.len().saturating_sub(4000);
        chars[start..].iter().collect()
    }

    /// `http://127.0.0.1:PORT`, for `endpoint_url` in configs and SDK clients.
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// The TCP port moto listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id of moto itself (not of its supervisor).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends a raw request to moto (`path` with query, percent-encoded), with
    /// [`DUMMY_AUTHORIZATION`] unless `headers` has an `Authorization`.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        let mut all = headers.to_vec();
        if !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        {
            all.push(("Authorization", DUMMY_AUTHORIZATION));
        }
        http::send(&self.endpoint, method, path, &all, body, API_TIMEOUT).unwrap_or_else(|e| {
            panic!(
                "{method} {path} to moto at {} failed: {e}\n--- moto output ---\n{}",
                self.endpoint,
                self.log_tail()
            )
        })
    }

    fn api(&self, method: &str, path: &str, body: &[u8]) -> HttpResponse {
        let response = self.request(method, path, &[], body);
        assert!(
            response.is_success(),
            "moto {method} {path} answered {}: {}",
            response.status,
            response.text()
        );
        response
    }

    /// Wipes all of moto's state (buckets, objects, IAM). IAM enforcement stays as it was.
    pub fn reset(&self) {
        self.api("POST", "/moto-api/reset", b"");
    }

    /// Starts recording incoming requests (appends to the current recording).
    pub fn start_recording(&self) {
        self.api("POST", "/moto-api/recorder/start-recording", b"");
    }

    /// Stops recording.
    pub fn stop_recording(&self) {
        self.api("POST", "/moto-api/recorder/stop-recording", b"");
    }

    /// Erases the recording.
    pub fn reset_recording(&self) {
        self.api("POST", "/moto-api/recorder/reset-recording", b"");
    }

    /// Every request recorded since the last `reset_recording`, in arrival order. moto's own
    /// `/moto-api/recorder/` calls are never recorded.
    pub fn recorded_requests(&self) -> Vec<RecordedRequest> {
        let response = self.api("GET", "/moto-api/recorder/download-recording", b"");
        parse_recording(&response.text())
            .unwrap_or_else(|e| panic!("cannot parse moto's recording: {e}"))
    }

    /// Turns IAM enforcement on: from now on every request must be signed by a known identity and
    /// is checked against its policies. Create users, roles and policies before calling this.
    pub fn enable_iam_enforcement(&self) {
        self.set_auth("0");
    }

    /// Turns IAM enforcement off again (moto's default).
    pub fn disable_iam_enforcement(&self) {
        self.set_auth("inf");
    }

    fn set_auth(&self, value: &str) {
        let response = self.api("POST", "/moto-api/reset-auth", value.as_bytes());
        assert!(
            response.text().contains("\"ok\""),
            "unexpected reset-auth answer: {}",
            response.text()
        );
    }

    /// Creates a bucket with a raw request (only while IAM enforcement is off).
    pub fn create_bucket(&self, bucket: &str) {
        let response = self.request("PUT", &format!("/{bucket}"), &[], b"");
        assert!(
            response.is_success(),
            "creating bucket {bucket} answered {}: {}",
            response.status,
            response.text()
        );
    }

    /// Stores an object with a raw request (only while IAM enforcement is off). `key` is
    /// percent-encoded here.
    pub fn put_object(&self, bucket: &str, key: &str, body: &[u8]) {
        let path = format!("/{bucket}/{}", encode_key(key));
        let response = self.request("PUT", &path, &[], body);
        assert!(
            response.is_success(),
            "PUT {path} answered {}: {}",
            response.status,
            response.text()
        );
    }

    /// The names of all buckets (raw ListBuckets; only while IAM enforcement is off).
    pub fn bucket_names(&self) -> Vec<String> {
        let response = self.request("GET", "/", &[], b"");
        assert!(
            response.is_success(),
            "ListBuckets answered {}: {}",
            response.status,
            response.text()
        );
        xml_values(&response.text(), "Name")
    }
}

impl MotoServer {
    /// Stops moto and waits until it is gone (at most ~10 s, then SIGKILL). Never panics.
    fn stop(&self) {
        let mut process = lock(&self.process);
        if process.stopped {
            return;
        }
        process.stopped = true;
        // Closing the supervisor's stdin makes it kill moto and remove the directory.
        drop(process.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match process.child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                _ => {
                    let _ = Command::new("kill")
                        .args(["-KILL", &self.pid.to_string()])
                        .stderr(Stdio::null())
                        .status();
                    let _ = process.child.kill();
                    let _ = process.child.wait();
                    break;
                }
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port that was free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("cannot bind 127.0.0.1:0")
}

/// Percent-encodes an S3 key for a path (keeps `/` and the unreserved characters).
pub fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for byte in key.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The texts of every `<tag>...</tag>` element in `xml` (no nesting, no entities decoded).
pub fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut values = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        rest = &rest[start + open.len()..];
        let Some(end) = rest.find(&close) else { break };
        values.push(rest[..end].to_owned());
        rest = &rest[end + close.len()..];
    }
    values
}

/// The moto_server executable: `$S3C_MOTO_SERVER` if set, else the harness's virtualenv in
/// `${S3C_TOOLS_DIR:-$HOME/.cache/s3-connector}/moto-5.2.5`, created on first use (see
/// `support::tools`) under a file lock shared with `scripts/ensure-moto`.
pub fn moto_server_executable() -> PathBuf {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        PipTool {
            venv_name: "moto-5.2.5",
            requirement: "moto[server]==5.2.5",
            override_var: "S3C_MOTO_SERVER",
            locate: |venv| tools::existing(venv.join("bin").join("moto_server")),
        }
        .executable()
    })
    .clone()
}

/// Parses moto's recording: one JSON object per line with `method`, `url` (absolute), `headers`,
/// `body` and `body_encoded` (the body is base64 when true).
pub fn parse_recording(text: &str) -> Result<Vec<RecordedRequest>, String> {
    let mut requests = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let entry: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("line {}: {e}", number + 1))?;
        let field = |name: &str| entry.get(name).and_then(|v| v.as_str());
        let method = field("method")
            .ok_or_else(|| format!("line {}: no method", number + 1))?
            .to_owned();
        let absolute = field("url").ok_or_else(|| format!("line {}: no url", number + 1))?;
        let url = match absolute.split_once("://") {
            Some((_, rest)) => match rest.find('/') {
                Some(slash) => rest[slash..].to_owned(),
                None => "/".to_owned(),
            },
            None => absolute.to_owned(),
        };
        let headers = entry
            .get("headers")
            .and_then(|h| h.as_object())
            .map(|h| {
                h.iter()
                    .map(|(k, v)| {
                        let value = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                        (k.to_ascii_lowercase(), value)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let raw_body = field("body").unwrap_or_default();
        let body = if entry.get("body_encoded").and_then(|v| v.as_bool()) == Some(true) {
            base64_decode(raw_body).map_err(|e| format!("line {}: body: {e}", number + 1))?
        } else {
            raw_body.as_bytes().to_vec()
        };
        requests.push(RecordedRequest {
            method,
            url,
            headers,
            body,
        });
    }
    Ok(requests)
}

/// Decodes standard base64 (with or without padding).
pub fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
    {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(format!("invalid base64 character {:?}", c as char)),
        };
        acc = (acc << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}
