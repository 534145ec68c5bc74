"""A portable toolchain (`toolchain:<target>@portable`) runs on a Linux with no libc at all.

Its tarball is unpacked into an otherwise empty root holding only a static busybox (no /lib,
/lib64, /usr/lib, no glibc: like NixOS or a `FROM scratch` container); inside it, through
chroot, the toolchain compiles and links a C and a C++ program -static, and they run (under a
static qemu-user copied in when the target is another machine). The same with a toolchain
built for the build machine (`toolchain:<target>`) must fail: that proves the test can fail.

Needs root (chroot), Debian's busybox-static, and:
  MUSL_TOOLCHAIN_PORTABLE   a tarball of toolchain:<target>@portable
  MUSL_TOOLCHAIN_PREBUILT   a tarball of toolchain:<target> (programs for the build machine)
Each case is skipped, saying why, when its tarball is not given.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from toolchain.build import machine
from toolchain.sources import recipes

pytestmark = pytest.mark.slow

BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "cat", "echo", "ls", "mkdir", "rm", "env")
HELLO_C = '#include <stdio.h>\nint main(void) { puts("C in an empty root"); return 0; }\n'
HELLO_CXX = ('#include <iostream>\n#include <string>\n'
             'int main() { std::string s = "C++ in an empty root"; std::cout << s << std::endl; }\n')


def _tarball(variable: str) -> Path:
    value = os.environ.get(variable)
    if not value:
        pytest.skip(f"{variable} is not set: no tarball of that kind to test")
    path = Path(value)
    assert path.is_file(), f"{variable}={value} is not a file"
    return path


def empty_root(tmp_path: Path, tarball: Path) -> tuple[Path, dict]:
    """A root with a static busybox and the toolchain in /opt/toolchain; returns it and the
    toolchain's manifest."""
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    out = subprocess.run(["file", "-L", str(BUSYBOX)], capture_output=True, text=True).stdout
    assert BUSYBOX.is_file() and "statically linked" in out, \
        "needs a static /bin/busybox: apt-get install busybox-static"
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    (root / "tmp").mkdir(mode=0o1777)
    (root / "work").mkdir()
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for applet in APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    with tarfile.open(tarball) as tar:
        top = tar.getnames()[0].split("/")[0]
        tar.extractall(root / "opt", filter="data")
    (root / "opt" / top).rename(root / "opt" / "toolchain")
    manifest = json.loads((root / "opt" / "toolchain" / "musl-toolchain.json").read_text())
    for libdir in ("lib", "lib64", "usr"):
        assert not (root / libdir).exists()
    return root, manifest


def in_root(root: Path, script: str) -> subprocess.CompletedProcess:
    chroot = shutil.which("chroot")     # found with this PATH; the root's own PATH is /bin
    assert chroot, "chroot is not installed (coreutils)"
    return subprocess.run([chroot, str(root), "/bin/sh", "-c", script], capture_output=True, text=True,
                          env={"PATH": "/bin", "HOME": "/work", "TMPDIR": "/tmp"}, timeout=600,
                          stdin=subprocess.DEVNULL)


def build_and_run(root: Path, manifest: dict) -> subprocess.CompletedProcess:
    target = recipes.load().targets[manifest["target"]]
    run = ""
    qemu = machine.runner(target)
    if qemu:       # the target's programs run under its (static) qemu-user, copied in
        program = shutil.which(qemu[0])
        assert program, f"{qemu[0]} is not installed"
        shutil.copy2(program, root / "bin" / qemu[0])
        run = " ".join(qemu) + " "
    (root / "work" / "hello.c").write_text(HELLO_C)
    (root / "work" / "hello.cc").write_text(HELLO_CXX)
    tc = f"/opt/toolchain/bin/{manifest['triple']}"
    return in_root(root, f"cd /work && {tc}-gcc -static -O2 hello.c -o hello-c && "
                         f"{tc}-g++ -static -O2 hello.cc -o hello-cc && {run}./hello-c && {run}./hello-cc")


def test_a_portable_toolchain_builds_and_runs_programs_in_an_empty_root(tmp_path):
    root, manifest = empty_root(tmp_path, _tarball("MUSL_TOOLCHAIN_PORTABLE"))
    assert manifest.get("host", {}).get("name"), "not a portable toolchain (its manifest names no host)"
    r = build_and_run(root, manifest)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "C in an empty root\nC++ in an empty root\n"


def test_a_toolchain_for_the_build_machine_cannot_run_there(tmp_path):
    root, manifest = empty_root(tmp_path, _tarball("MUSL_TOOLCHAIN_PREBUILT"))
    assert "host" not in manifest
    r = build_and_run(root, manifest)
    assert r.returncode != 0
    assert "not found" in r.stderr        # the kernel finds no /lib64/ld-linux-x86-64.so.2
    assert not (root / "work" / "hello-c").exists()
