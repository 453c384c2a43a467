"""Helpers shared by scripts/ftest and scripts/demo (stdlib only; boto3 is imported by the callers).

- reexec_with_boto3(): re-runs the calling script with the moto virtualenv's Python (which has
  boto3), installing that virtualenv through scripts/ensure-moto first if needed.
- SupervisedServer: a server process on free 127.0.0.1 ports under a small `sh` supervisor that
  kills it when our end of its stdin closes, so it dies with this process even if this process is
  killed (the same scheme as the Rust test harness). MotoServer is one; scripts/bench has others.
- MotoServer: a local moto S3 server on a free 127.0.0.1 port.
- LocalStackServer: LocalStack (S3, STS, IAM) without Docker on a free 127.0.0.1 port, from the
  Python 3.13 virtualenv of scripts/ensure-localstack.
- connector_binary(): the s3-connector executable, built with cargo unless one is given.
- tools_dir(): where every script keeps what it installs and caches: ${S3C_TOOLS_DIR}, else
  ~/.cache/s3-connector (the same rule as scripts/ensure-pip-tool and the Rust test harness).
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

SCRIPTS_DIR = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
REPO_DIR = os.path.dirname(SCRIPTS_DIR)
MOTO_VERSION = "5.2.5"
LOCALSTACK_VERSION = "2026.3.0"  # the version scripts/ensure-localstack installs

# Runs the server ("$@"); prints its pid; sends it SIGNAL when our end of its stdin closes.
SUPERVISOR = r"""
signal="$1"; log="$2"; shift 2
exec 3<&0
"$@" </dev/null >"$log" 2>&1 3<&- &
pid=$!
echo "$pid"
( cat <&3 >/dev/null 2>&1; kill "-$signal" "$pid" ) </dev/null >/dev/null 2>&1 &
exec 3<&-
wait "$pid"
"""


def tools_dir():
    """Where scripts keep what they install and cache: S3C_TOOLS_DIR, else ~/.cache/s3-connector."""
    return os.environ.get("S3C_TOOLS_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "s3-connector")


def log(message):
    """Prints a progress line on stderr."""
    print(message, file=sys.stderr, flush=True)


def ensure_venv(script):
    """Runs scripts/`script` (an ensure-* script) and returns the virtualenv directory it prints."""
    result = subprocess.run(
        ["bash", os.path.join(SCRIPTS_DIR, script)],
        stdout=subprocess.PIPE,
        check=False,
    )
    if result.returncode != 0:
        sys.exit(f"could not install a test tool (scripts/{script} failed, see above)")
    return result.stdout.decode().strip().splitlines()[-1]


def ensure_moto_venv():
    """Returns the moto virtualenv's directory, installing it if missing."""
    return ensure_venv("ensure-moto")


def reexec_with_boto3():
    """Makes `import boto3` work: if it does not, re-runs this script with the venv's Python."""
    try:
        import boto3  # noqa: F401
        return
    except ImportError:
        pass
    if os.environ.get("S3C_REEXECUTED") == "1":
        sys.exit(f"boto3 is not importable even from {sys.executable}")
    python = os.path.join(ensure_moto_venv(), "bin", "python")
    os.environ["S3C_REEXECUTED"] = "1"
    os.execv(python, [python, os.path.realpath(sys.argv[0])] + sys.argv[1:])


def moto_server_executable():
    """$S3C_MOTO_SERVER, else the virtualenv's moto_server."""
    explicit = os.environ.get("S3C_MOTO_SERVER")
    if explicit:
        if not os.path.isfile(explicit):
            sys.exit(f"S3C_MOTO_SERVER={explicit} is not a file")
        return explicit
    return os.path.join(ensure_moto_venv(), "bin", "moto_server")


def free_ports(count):
    """`count` distinct ports that were free on 127.0.0.1 a moment ago."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port():
    """A port that was free on 127.0.0.1 a moment ago."""
    return free_ports(1)[0]


def answers(url):
    """True when an HTTP server answers `url`, with any status."""
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # it answered
    except OSError:
        return False


class SupervisedServer:
    """A server under SUPERVISOR, started on free ports; a context manager that always stops it.

    Subclasses set `name` and `stop_signal` (TERM, or KILL for servers that ignore TERM) and
    define `ports_needed`, `command(ports)` and `ready()`."""

    name = "server"
    stop_signal = "TERM"
    ports_needed = 1

    def __init__(self, workdir, deadline_seconds=30):
        self.workdir = workdir
        self.deadline_seconds = deadline_seconds
        self.log_path = os.path.join(workdir, f"{self.name}.log")
        self.process = None
        self.pid = None
        self.ports = None

    def command(self, ports):
        """The server's command line for these free ports."""
        raise NotImplementedError

    def ready(self):
        """True once the server serves."""
        raise NotImplementedError

    def start(self):
        """Starts the server and waits until it is ready; retries on a port taken meanwhile."""
        for attempt in range(3):
            self.ports = free_ports(self.ports_needed)
            self.process = subprocess.Popen(
                ["sh", "-c", SUPERVISOR, "sh", self.stop_signal, self.log_path]
                + self.command(self.ports),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                cwd=self.workdir,
            )
            self.pid = int(self.process.stdout.readline().decode().strip() or 0)
            deadline = time.monotonic() + self.deadline_seconds
            while time.monotonic() < deadline and self.process.poll() is None:
                if self.ready():
                    return self
                time.sleep(0.05)
            output = self.log_tail()
            self.stop()
            if "address already in use" not in output.lower() or attempt == 2:
                raise RuntimeError(f"{self.name} did not start on ports {self.ports}:\n{output}")
        raise AssertionError("unreachable")

    def log_tail(self):
        """The end of the server's output."""
        try:
            with open(self.log_path, errors="replace") as handle:
                return handle.read()[-4000:]
        except OSError as error:
            return f"(no {self.name} log: {error})"

    def stop(self):
        """Stops the server (with `stop_signal`) and waits for it (at most 10 s)."""
        if self.process is None:
            return
        try:
            self.process.stdin.close()
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        finally:
            self.process.stdout.close()
            self.process = None
            self.pid = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


class MotoServer(SupervisedServer):
    """A local moto S3 server; use as a context manager (`with MotoServer() as moto:`)."""

    name = "moto"

    def command(self, ports):
        self.endpoint = f"http://127.0.0.1:{ports[0]}"
        return [moto_server_executable(), "-H", "127.0.0.1", "-p", str(ports[0])]

    def ready(self):
        return answers(self.endpoint + "/")


class LocalStackServer(SupervisedServer):
    """LocalStack's S3, STS, IAM and SQS, run from its Python package (no Docker); `endpoint` is its
    gateway. Its files live in `workdir`, but for its S3's per-bucket directories under the fixed
    /tmp/localstack-s3-storage, which go with their buckets. It ignores SIGTERM, so it is stopped
    with SIGKILL (it starts no child processes)."""

    name = "localstack"
    stop_signal = "KILL"

    def __init__(self, workdir, venv):
        super().__init__(workdir, deadline_seconds=120)
        self.python = os.path.join(venv, "bin", "python")

    def command(self, ports):
        self.endpoint = f"http://127.0.0.1:{ports[0]}"
        settings = {
            # Bind the loopback interface only: without these, LocalStack binds 0.0.0.0 and
            # starts a DNS server.
            "GATEWAY_SERVER": "hypercorn",
            "GATEWAY_LISTEN": f"127.0.0.1:{ports[0]}",
            "DNS_ADDRESS": "0",
            # In a container (CI machines are), LocalStack assumes it is its own and writes to
            # /var/lib/localstack; host mode keeps every file under FILESYSTEM_ROOT.
            "OVERRIDE_IN_DOCKER": "0",
            "FILESYSTEM_ROOT": os.path.join(self.workdir, "localstack-files"),
            # No analytics, no certificate download: nothing but loopback is reachable.
            "DISABLE_EVENTS": "1",
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "EAGER_SERVICE_LOADING": "1",
            "SERVICES": "s3,sts,iam,sqs",
        }
        return ["env"] + [f"{k}={v}" for k, v in settings.items()] + [
            self.python, "-m", "localstack.runtime.main"]

    def ready(self):
        try:
            with urllib.request.urlopen(self.endpoint + "/_localstack/health", timeout=2) as answer:
                services = json.load(answer).get("services", {})
        except (OSError, ValueError):
            return False
        return services.get("s3") in ("running", "available")


def connector_binary(explicit=None, release=False):
    """The s3-connector executable: `explicit` if given, else built by cargo (in the repository,
    honouring CARGO_TARGET_DIR and any cargo configuration) and located from cargo's own output."""
    if explicit:
        path = os.path.abspath(explicit)
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            sys.exit(f"--binary {explicit}: not an executable file")
        return path
    if shutil.which("cargo") is None:
        sys.exit("cargo not found: install the Rust toolchain, or pass --binary PATH")
    command = ["cargo", "build", "--bin", "s3-connector", "--message-format=json-render-diagnostics"]
    if release:
        command.append("--release")
    log("building: " + " ".join(command))
    result = subprocess.run(command, cwd=REPO_DIR, stdout=subprocess.PIPE, check=False)
    if result.returncode != 0:
        sys.exit(f"cargo build failed (exit {result.returncode})")
    executable = None
    for line in result.stdout.decode(errors="replace").splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if (
            message.get("reason") == "compiler-artifact"
            and message.get("target", {}).get("name") == "s3-connector"
            and message.get("executable")
        ):
            executable = message["executable"]
    if not executable:
        sys.exit("cargo build finished but reported no s3-connector executable")
    return executable


def yaml_str(value):
    """A YAML scalar for any string (JSON strings are valid YAML)."""
    return json.dumps(value)
