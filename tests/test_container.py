"""The Containerfile, built for real with podman where no registry is reachable.

The base image it names (ARG BASE) is stood up locally from Debian's archive with debootstrap,
as `FROM scratch` + the root filesystem, so `FROM ${BASE}` resolves without a registry.

Fast mode (default; CI): every line of the Containerfile runs, but the toolchain build is
replaced by a tarball built earlier outside the container (PREBUILT): the image still
bootstraps, verifies and unpacks every source from the bind-mounted distfiles, unpacks the
toolchain, checks its file sums and links and runs a hello-world while building; then the
test runs the image's toolchain itself, builds the image a second time with --no-cache and
expects the same image ID, and exports the tarball alone.
Full mode (MUSL_TOOLCHAIN_CONTAINER_FULL=1): the toolchain is built inside, once (the whole
test took 32 min on an idle 2-core machine); given MUSL_TOOLCHAIN_PREBUILT, the tarball built
inside must equal that one, bit for bit (a full build on the host, or `repro --from`'s).

Needs root, podman, debootstrap (run `.ci/run` or see README), and:
  MUSL_TOOLCHAIN_DISTFILES  a distfiles folder with every source of the target
  MUSL_TOOLCHAIN_PREBUILT   fast mode: a toolchain tarball for the target
  MUSL_TOOLCHAIN_CONTAINER_HOST  the Containerfile's HOST (default: its own, portable)
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from toolchain import repro
from toolchain.build import machine
from toolchain.sources import recipes

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
ARCH = os.environ.get("MUSL_TOOLCHAIN_CONTAINER_ARCH", "aarch64")
FULL = os.environ.get("MUSL_TOOLCHAIN_CONTAINER_FULL") == "1"
DEBIAN_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
IMAGE = "musl-toolchain-test-" + ("full" if FULL else "fast")


def sh(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=True, text=True, **kw)


def base_name() -> str:
    m = re.search(r"^ARG BASE=(\S+)$", (REPO / "Containerfile").read_text(), re.M)
    assert m, "Containerfile has no ARG BASE=..."
    return m.group(1)


@pytest.fixture(scope="module")
def podman(tmp_path_factory) -> dict[str, str]:
    """Environment for podman on this host (facts in the workplace notes: runc, cgroupfs,
    file event log, explicit ulimits within the hard limits)."""
    for tool in ("podman", "debootstrap"):
        assert shutil.which(tool), f"{tool} is not installed (apt-get install podman runc debootstrap)"
    conf = tmp_path_factory.mktemp("podman") / "containers.conf"
    hard = subprocess.run(["sh", "-c", "ulimit -Hn"], capture_output=True, text=True).stdout.strip()
    conf.write_text(f'[containers]\ndefault_ulimits = ["nofile={hard}:{hard}", "nproc=32768:32768"]\n'
                    '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n')
    return {**os.environ, "CONTAINERS_CONF": str(conf)}


def mirror() -> str:
    """The Debian mirror this machine's apt already uses (never typed into the repo)."""
    m = re.search(r"^URIs:\s*(\S+)", DEBIAN_SOURCES.read_text(), re.M)
    assert m, f"no URIs: line in {DEBIAN_SOURCES}"
    return m.group(1)


@pytest.fixture(scope="module")
def base_image(podman, tmp_path_factory) -> str:
    """ARG BASE as a local image: debootstrap minbase of the same release, cleaned of apt
    indexes, logs and caches, tarred sorted with numeric owners, `--timestamp 0`."""
    name = base_name()
    if subprocess.run(["podman", "image", "exists", name], env=podman).returncode == 0:
        return name
    suite = name.split(":")[1].split("-")[0]            # debian:bookworm-20250520-slim -> bookworm
    work = tmp_path_factory.mktemp("base")
    rootfs = work / "rootfs"
    sh("debootstrap", "--variant=minbase", suite, str(rootfs), mirror(), stdout=subprocess.DEVNULL)
    (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
    shutil.copy(DEBIAN_SOURCES, rootfs / "etc/apt/sources.list.d/debian.sources")  # as the real image
    for pattern in ("var/lib/apt/lists/*", "var/cache/apt/*.bin", "var/log/apt/*", "var/log/dpkg.log",
                    "var/log/bootstrap.log", "var/cache/ldconfig/aux-cache", "dev/*"):
        for p in rootfs.glob(pattern):
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    sh("tar", "--sort=name", "--numeric-owner", "-C", str(rootfs), "-cf", str(work / "rootfs.tar"), ".")
    (work / "Containerfile").write_text('FROM scratch\nADD rootfs.tar /\nCMD ["bash"]\n')
    sh("podman", "build", "--timestamp", "0", "-t", name, str(work), env=podman, stdout=subprocess.DEVNULL)
    shutil.rmtree(rootfs)
    return name


def machine_tls_mounts(tmp: Path) -> list[str]:
    """This machine reaches PyPI through a TLS proxy with its own CA (PIP_CERT): lend the CA
    bundle and a pip.conf naming it to the build's RUN steps. Not part of the image, and not
    needed on a normal network."""
    ca = os.environ.get("PIP_CERT")
    if not ca and Path("/etc/pip.conf").is_file():
        m = re.search(r"^cert\s*=\s*(\S+)", Path("/etc/pip.conf").read_text(), re.M)
        ca = m.group(1) if m else None
    if not ca or not Path(ca).is_file():
        return []
    conf = tmp / "pip.conf"
    conf.write_text("[global]\ncert = /etc/musl-toolchain-test-ca.crt\n")
    return ["-v", f"{conf}:/etc/pip.conf:ro", "-v", f"{ca}:/etc/musl-toolchain-test-ca.crt:ro"]


def link_or_copy(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


@pytest.fixture(scope="module")
def context(tmp_path_factory) -> tuple[Path, str]:
    """A fresh clone's files (git ls-files) plus the distfiles; the prebuilt tarball in fast mode."""
    distfiles = Path(os.environ.get("MUSL_TOOLCHAIN_DISTFILES", ""))
    assert distfiles.is_dir(), "set MUSL_TOOLCHAIN_DISTFILES to a distfiles folder with the target's sources"
    ctx = tmp_path_factory.mktemp("context")
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (ctx / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, ctx / name)
    for f in distfiles.iterdir():
        if f.is_file() and not f.name.endswith(".lock"):
            link_or_copy(f, ctx / "distfiles" / f.name)
    prebuilt = ""
    if not FULL:
        tarball = Path(os.environ.get("MUSL_TOOLCHAIN_PREBUILT", ""))
        assert tarball.is_file(), "set MUSL_TOOLCHAIN_PREBUILT to a toolchain tarball (or MUSL_TOOLCHAIN_CONTAINER_FULL=1)"
        prebuilt = tarball.name
        link_or_copy(tarball, ctx / "distfiles" / prebuilt)
    return ctx, prebuilt


HOST_ARG = [f"--build-arg=HOST={os.environ['MUSL_TOOLCHAIN_CONTAINER_HOST']}"] \
    if os.environ.get("MUSL_TOOLCHAIN_CONTAINER_HOST") else []


def build(podman, ctx: Path, prebuilt: str, tag: str, tmp: Path, *extra: str) -> str:
    args = ["podman", "build", "--timestamp", "0", *machine_tls_mounts(tmp), "--build-arg", f"ARCH={ARCH}",
            "--build-arg", f"PREBUILT={prebuilt}", *HOST_ARG, "-t", tag, *extra, str(ctx)]
    log = tmp / f"{tag.replace(':', '-').replace('/', '-')}.log"
    with open(log, "w") as out:
        r = subprocess.run(args, env=podman, stdout=out, stderr=subprocess.STDOUT)
    assert r.returncode == 0, f"{' '.join(args)} failed; log tail:\n" + "\n".join(log.read_text().splitlines()[-30:])
    return subprocess.run(["podman", "image", "inspect", "--format", "{{.Id}}", tag], env=podman,
                          capture_output=True, text=True, check=True).stdout.strip()


def image_differences(podman, first: str, second: str) -> str:
    """Which layer of two images differs first, and the files that differ in it."""
    def layers(image):
        return subprocess.run(["podman", "image", "inspect", "--format", "{{range .RootFS.Layers}}{{.}} {{end}}",
                               image], env=podman, capture_output=True, text=True).stdout.split()
    la, lb = layers(first), layers(second)
    index = next((i for i, (x, y) in enumerate(zip(la, lb)) if x != y), min(len(la), len(lb)))
    mounts = [subprocess.run(["podman", "image", "mount", image], env=podman, capture_output=True,
                             text=True).stdout.strip() for image in (first, second)]
    try:
        diff = subprocess.run(["diff", "-rq", "--no-dereference", *mounts], capture_output=True, text=True).stdout
    finally:
        subprocess.run(["podman", "image", "unmount", first, second], env=podman, capture_output=True)
    lines = diff.replace(mounts[0], "A").replace(mounts[1], "B").splitlines()
    return f"first differing layer: {index} of {len(la)}\n" + "\n".join(lines[:40])


@pytest.fixture
def cleanup(podman):
    yield
    tags = subprocess.run(["podman", "images", "--format", "{{.Repository}}:{{.Tag}}", IMAGE],
                          env=podman, capture_output=True, text=True).stdout.split()
    if tags:
        subprocess.run(["podman", "rmi", "-f", *tags], env=podman, capture_output=True)
    subprocess.run(["podman", "image", "prune", "-f"], env=podman, capture_output=True)


def test_containerfile_builds_runs_and_is_reproducible(podman, base_image, context, tmp_path, cleanup):
    ctx, prebuilt = context
    first = build(podman, ctx, prebuilt, f"{IMAGE}:{ARCH}", tmp_path, "--no-cache")
    # the image's toolchain on a hello-world, run (under qemu-user) inside the image
    qemu = " ".join(machine.runner(recipes.load_targets(REPO / "recipes" / "targets.yaml")[ARCH]))
    script = ("printf '#include <stdio.h>\\nint main(void){puts(\"hello from podman\");return 0;}\\n' > h.c"
              ' && "$(basename /opt/musl-toolchain/bin/*-linux-musl*-gcc)" -static -O2 h.c -o h'
              f" && {qemu} ./h")
    r = subprocess.run(["podman", "run", "--rm", "-w", "/tmp", f"{IMAGE}:{ARCH}", "sh", "-c", script],
                       env=podman, capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout == "hello from podman\n", r.stdout + r.stderr
    if not FULL:
        # a second build from scratch: the same image, byte for byte (in full mode that would be
        # another half hour; the toolchain's own determinism is what `repro` checks)
        second = build(podman, ctx, prebuilt, f"{IMAGE}:{ARCH}-again", tmp_path, "--no-cache")
        assert first == second, (f"two --no-cache builds gave different images: {first} {second}\n"
                                 + image_differences(podman, first, second))
    # the tarball alone, exported by the final stage meant for it
    export = tmp_path / "export"
    build(podman, ctx, prebuilt, f"{IMAGE}:{ARCH}-tarball", tmp_path, "--target", "tarball",
          "--output", f"type=local,dest={export}")
    tarballs = list(export.glob("*.tar.gz"))
    assert len(tarballs) == 1
    with tarfile.open(tarballs[0]) as tar:
        top = tar.next().name
        assert tar.getmember(f"{top}/musl-toolchain.sha256").isfile()
    # fast mode: the tarball passed in comes out unchanged; full mode with MUSL_TOOLCHAIN_PREBUILT:
    # the tarball built in the container is the one built outside it, bit for bit
    outside = os.environ.get("MUSL_TOOLCHAIN_PREBUILT")
    if outside:
        outside = Path(outside)
        assert outside.is_file(), f"MUSL_TOOLCHAIN_PREBUILT={outside}: no such file"
        assert repro.compare(tarballs[0], outside) == [], f"{tarballs[0]} differs from {outside}"
