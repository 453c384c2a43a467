"""A Docker engine of our own for scripts/image-test (Python 3 stdlib only).

No container registry is reachable from our machines, so nothing can be pulled: the engine comes
from Debian's packages and the Dockerfile's base images are made here.

- ensure_packages(): docker.io, containerd, runc, debootstrap and iptables from Debian (as root).
- Engine: a `dockerd` with its own data root, exec root, pidfile and unix socket under
  ${S3C_DOCKER_DIR:-${S3C_TOOLS_DIR:-$HOME/.cache/s3-connector}/docker}, so that layers and base images survive
  between runs; bridge, iptables and NAT off (builds and containers use --network=host). Used as
  a context manager; a file lock keeps two runs from sharing one data root.
- ensure_debian_slim(): `debian:trixie-slim` from debootstrap, trimmed like the official image.
- ensure_rust_standin(): a test-only `rust:1.95-trixie` on that base: Debian's C toolchain, this
  machine's Rust toolchain and this machine's CA bundle (for cargo to reach the crate registry
  through whatever this machine trusts). Never the base of the product's runtime stage.

Both images are made once and found again by `docker image inspect` on later runs.
"""

import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from s3c_scripts import log, tools_dir

DEBIAN_RELEASE = "trixie"
DEBIAN_IMAGE = f"debian:{DEBIAN_RELEASE}-slim"
RUST_IMAGE = f"rust:1.95-{DEBIAN_RELEASE}"
STANDIN_LABEL = "org.s3c.stand-in"
PACKAGES = ["docker.io", "containerd", "runc", "debootstrap", "iptables"]
# The package's CLI speaks the engine's API version and BuildKit; a newer CLI elsewhere on PATH
# may fall back to the legacy builder.
DOCKER_CLI = "/usr/bin/docker"
# What the official slim images leave out, and keep out of later `apt-get install`s.
DPKG_EXCLUDES = """\
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
"""
APT_CLEAN = """\
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
"""


class DockerError(Exception):
    """The engine or an image step did not work."""


def docker_dir():
    """The engine's data: S3C_DOCKER_DIR, else docker/ in the tools directory (S3C_TOOLS_DIR)."""
    return os.environ.get("S3C_DOCKER_DIR") or os.path.join(tools_dir(), "docker")


def ensure_packages():
    """Installs the engine and debootstrap from Debian unless they are there (needs root)."""
    missing = [tool for tool in ("dockerd", "containerd", "runc", "debootstrap")
               if shutil.which(tool) is None] + \
        ([] if os.access(DOCKER_CLI, os.X_OK) else [DOCKER_CLI])
    if not missing:
        return
    if os.geteuid() != 0:
        raise DockerError(f"{', '.join(missing)} missing; as root: apt-get install {' '.join(PACKAGES)}")
    log(f"image-test: installing {' '.join(PACKAGES)} from Debian ({', '.join(missing)} missing)")
    environment = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (["apt-get", "update", "-q"],
                    ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]):
        if subprocess.run(command, stdout=sys.stderr, env=environment, check=False).returncode:
            raise DockerError(f"{' '.join(command)} failed (see above)")


def debian_mirror():
    """The Debian mirror apt already uses on this machine (not its security archive)."""
    uris = []
    for path in sorted(os.listdir("/etc/apt/sources.list.d")) if os.path.isdir(
            "/etc/apt/sources.list.d") else []:
        if path.endswith(".sources"):
            with open(os.path.join("/etc/apt/sources.list.d", path)) as handle:
                uris += re.findall(r"^URIs:\s*(\S+)", handle.read(), re.MULTILINE)
    if os.path.isfile("/etc/apt/sources.list"):
        with open("/etc/apt/sources.list") as handle:
            uris += re.findall(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)", handle.read(), re.MULTILINE)
    for uri in uris:
        if uri.rstrip("/").endswith("/debian"):
            return uri
    raise DockerError("no Debian mirror (a URI ending in /debian) in /etc/apt/sources.list{,.d}")


class Engine:
    """dockerd on a private socket; `with Engine() as engine:` starts it and always stops it."""

    def __init__(self, base=None):
        self.base = base or docker_dir()
        self.data_root = os.path.join(self.base, "data")
        self.exec_root = os.path.join(self.base, "exec")
        self.pidfile = os.path.join(self.base, "dockerd.pid")
        self.socket = os.path.join(self.base, "docker.sock")
        self.log_path = os.path.join(self.base, "dockerd.log")
        self.host = "unix://" + self.socket
        self.lock = None
        self.process = None

    # -- running docker ---------------------------------------------------------------------

    def env(self, buildkit=True):
        return dict(os.environ, DOCKER_HOST=self.host, DOCKER_BUILDKIT="1" if buildkit else "0")

    def run(self, *args, check=True, capture=True, input=None, buildkit=True):
        """Runs `docker ARGS`; returns the CompletedProcess (stdout and stderr as text)."""
        result = subprocess.run(
            [DOCKER_CLI, *args], env=self.env(buildkit), input=input, text=True,
            stdout=subprocess.PIPE if capture else sys.stderr,
            stderr=subprocess.PIPE if capture else sys.stderr, check=False)
        if check and result.returncode != 0:
            detail = (result.stderr or "").strip()[-3000:] if capture else "see above"
            raise DockerError(f"docker {' '.join(args[:3])} ... exited {result.returncode}: {detail}")
        return result

    def out(self, *args):
        return self.run(*args).stdout.strip()

    def image_exists(self, name):
        return self.run("image", "inspect", name, check=False).returncode == 0

    def image_label(self, name, label):
        labels = json.loads(self.out("image", "inspect", "-f", "{{json .Config.Labels}}", name))
        return (labels or {}).get(label)

    # -- the daemon -------------------------------------------------------------------------

    def start(self):
        os.makedirs(self.base, exist_ok=True)
        self.lock = open(os.path.join(self.base, "lock"), "w")
        try:
            fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"image-test: waiting for another run that holds {self.base}/lock")
            fcntl.flock(self.lock, fcntl.LOCK_EX)
        self.stop_stale()
        log(f"image-test: starting dockerd (data root {self.data_root})")
        command = [
            "dockerd", "--data-root", self.data_root, "--exec-root", self.exec_root,
            "--pidfile", self.pidfile, "--host", self.host, "--iptables=false",
            "--ip6tables=false", "--bridge=none", "--ip-forward=false", "--ip-masq=false",
            "--storage-driver=overlay2",
        ]
        with open(self.log_path, "w") as output:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise DockerError(f"dockerd exited {self.process.returncode}:\n{self.log_tail()}")
            if self.run("version", check=False).returncode == 0:
                return self
            time.sleep(0.2)
        raise DockerError(f"dockerd did not answer within 60 s:\n{self.log_tail()}")

    def log_tail(self):
        try:
            with open(self.log_path, errors="replace") as handle:
                return handle.read()[-3000:]
        except OSError as error:
            return f"(no dockerd log: {error})"

    def stop_stale(self):
        """Stops a dockerd of ours that a killed run left (we hold the lock: nobody uses it)."""
        try:
            with open(self.pidfile) as handle:
                pid = int(handle.read().strip())
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                cmdline = handle.read().split(b"\0")
        except (OSError, ValueError):
            return
        if cmdline and os.path.basename(cmdline[0]) == b"dockerd" and \
                self.data_root.encode() in cmdline:
            log(f"image-test: stopping dockerd {pid} left by an earlier run")
            self.terminate(pid)
        self.unmount_netns()

    @staticmethod
    def terminate(pid, timeout=30):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not os.path.exists(f"/proc/{pid}") or _zombie(pid):
                return
            time.sleep(0.1)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def unmount_netns(self):
        netns = os.path.join(self.exec_root, "netns", "default")
        with open("/proc/self/mounts") as handle:
            mounted = any(line.split()[1] == netns for line in handle if len(line.split()) > 1)
        if mounted:
            subprocess.run(["umount", netns], check=False)

    def stop(self):
        if self.process is not None:
            self.terminate(self.process.pid)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        self.unmount_netns()
        if self.lock is not None:
            self.lock.close()
            self.lock = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


def _zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


# -- base images --------------------------------------------------------------------------------


def ensure_debian_slim(engine):
    """debian:trixie-slim from debootstrap (about a minute, once)."""
    if engine.image_exists(DEBIAN_IMAGE):
        return
    mirror = debian_mirror()
    started = time.monotonic()
    log(f"image-test: making {DEBIAN_IMAGE} with debootstrap from {mirror} (once, about a minute)")
    root = tempfile.mkdtemp(prefix="s3c-rootfs-", dir=engine.base)
    try:
        result = subprocess.run(["debootstrap", "--variant=minbase", DEBIAN_RELEASE, root, mirror],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                check=False)
        if result.returncode != 0:
            raise DockerError(f"debootstrap failed:\n{result.stdout[-3000:]}")
        trim_rootfs(root, mirror)
        tar = subprocess.Popen(["tar", "--numeric-owner", "-C", root, "-c", "."],
                               stdout=subprocess.PIPE)
        imported = subprocess.run(
            [DOCKER_CLI, "import", "--change", 'CMD ["bash"]', "-", DEBIAN_IMAGE],
            stdin=tar.stdout, env=engine.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, check=False)
        tar.stdout.close()
        if tar.wait() != 0 or imported.returncode != 0:
            raise DockerError(f"docker import failed: {imported.stderr.strip()}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    log(f"image-test: {DEBIAN_IMAGE} made in {time.monotonic() - started:.0f} s")


def trim_rootfs(root, mirror):
    """What the official slim image does: no docs, man pages, locales, apt lists or caches, and
    a dpkg configuration that keeps them out of later installs."""
    def wipe(relative):
        path = os.path.join(root, relative)
        if os.path.isdir(path):
            for entry in os.listdir(path):
                target = os.path.join(path, entry)
                if os.path.isdir(target) and not os.path.islink(target):
                    shutil.rmtree(target)
                else:
                    os.remove(target)

    for relative in ("usr/share/man", "usr/share/info", "usr/share/lintian", "var/lib/apt/lists",
                     "var/cache/apt", "var/cache/debconf", "var/log", "tmp"):
        wipe(relative)
    # Documentation goes, copyright notices stay; locales go, locale.alias stays.
    for base, keep in (("usr/share/doc", "copyright"), ("usr/share/locale", "locale.alias")):
        top = os.path.join(root, base)
        for entry in os.listdir(top) if os.path.isdir(top) else []:
            target = os.path.join(top, entry)
            if entry == keep:
                continue
            if os.path.isdir(target) and not os.path.islink(target):
                for name in os.listdir(target):
                    inner = os.path.join(target, name)
                    if name == keep:
                        continue
                    if os.path.isdir(inner) and not os.path.islink(inner):
                        shutil.rmtree(inner)
                    else:
                        os.remove(inner)
            else:
                os.remove(target)
    os.makedirs(os.path.join(root, "var/lib/apt/lists/partial"), exist_ok=True)
    os.makedirs(os.path.join(root, "etc/dpkg/dpkg.cfg.d"), exist_ok=True)
    with open(os.path.join(root, "etc/dpkg/dpkg.cfg.d/docker"), "w") as handle:
        handle.write(DPKG_EXCLUDES)
    with open(os.path.join(root, "etc/apt/apt.conf.d/docker-clean"), "w") as handle:
        handle.write(APT_CLEAN)
    # The sources of the official image (release, updates, security), on this machine's mirror.
    security = mirror.rstrip("/") + "-security"
    os.remove(os.path.join(root, "etc/apt/sources.list"))
    with open(os.path.join(root, "etc/apt/sources.list.d/debian.sources"), "w") as handle:
        handle.write(
            f"Types: deb\nURIs: {mirror}\nSuites: {DEBIAN_RELEASE} {DEBIAN_RELEASE}-updates\n"
            "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
            f"Types: deb\nURIs: {security}\nSuites: {DEBIAN_RELEASE}-security\n"
            "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")


def host_toolchain():
    """(directory, `rustc --version`) of this machine's stable Rust toolchain."""
    result = subprocess.run(["rustc", "--print", "sysroot"], stdout=subprocess.PIPE, text=True,
                            check=False)
    version = subprocess.run(["rustc", "--version"], stdout=subprocess.PIPE, text=True,
                             check=False)
    if result.returncode != 0 or version.returncode != 0:
        raise DockerError("rustc not found: the rust stand-in image copies this machine's toolchain")
    return os.path.realpath(result.stdout.strip()), version.stdout.strip()


STANDIN_DOCKERFILE = f"""\
# A test-only stand-in for the official {RUST_IMAGE} (no registry reachable): Debian's C
# toolchain, this machine's Rust toolchain, and this machine's CA bundle so that cargo reaches the
# crate registry through what this machine trusts.
FROM {DEBIAN_IMAGE}
RUN apt-get update \\
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
        gcc libc6-dev make pkg-config perl binutils \\
    && rm -rf /var/lib/apt/lists/*
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY toolchain /usr/local/rust
ENV CARGO_HOME=/usr/local/cargo \\
    PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
"""


def ensure_rust_standin(engine):
    """The test-only rust:1.95-trixie stand-in; remade when this machine's rustc changes."""
    sysroot, version = host_toolchain()
    if engine.image_exists(RUST_IMAGE) and engine.image_label(RUST_IMAGE, STANDIN_LABEL) == version:
        return
    if not version.startswith("rustc 1.95."):
        log(f"image-test: warning: this machine has {version}; the stand-in tagged {RUST_IMAGE} "
            "carries it")
    started = time.monotonic()
    log(f"image-test: making the stand-in {RUST_IMAGE} with {version} (once)")
    context = tempfile.mkdtemp(prefix="s3c-rust-", dir=engine.base)
    try:
        toolchain = os.path.join(context, "toolchain")
        os.makedirs(toolchain)
        # The compiler and the standard library; not the 800 MB of documentation.
        for part in ("bin", "lib", "libexec", "etc"):
            source = os.path.join(sysroot, part)
            if os.path.isdir(source):
                shutil.copytree(source, os.path.join(toolchain, part), symlinks=True)
        shutil.copy("/etc/ssl/certs/ca-certificates.crt", context)
        with open(os.path.join(context, "Dockerfile"), "w") as handle:
            handle.write(STANDIN_DOCKERFILE)
        # Its output only matters when it fails: then DockerError carries the end of it.
        engine.run("build", "--network=host", "--progress=plain", "--label",
                   f"{STANDIN_LABEL}={version}", "-t", RUST_IMAGE, context)
    finally:
        shutil.rmtree(context, ignore_errors=True)
    log(f"image-test: {RUST_IMAGE} stand-in made in {time.monotonic() - started:.0f} s")
