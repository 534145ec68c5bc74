"""A portable toolchain (`toolchain:<target>@portable`) runs on a Linux with no libc at all.

Its tarball is unpacked into an otherwise empty root holding only a static busybox (no /lib,
/lib64, /usr/lib, no glibc: like NixOS or a `FROM scratch` container); inside it, through
chroot, the toolchain compiles and links a C and a C++ program -static, and they run (under a
static qemu-user copied in when the target is another machine). The same with a toolchain
built for the build machine (`toolchain:<target>`) must fail: that proves the test can fail.

A toolchain for another machine (toolchain:<target>@portable-aarch64 built on x86_64) is run
the same way, its programs under qemu-user through binfmt_misc: the gcc driver execs cc1, as
and ld itself, so qemu must be the kernel's handler for them. The test registers one (and
removes it after) unless the machine has one, and is skipped, saying so, where the kernel
does not let it.

Needs root (chroot), Debian's busybox-static, and:
  MUSL_TOOLCHAIN_PORTABLE   a tarball of toolchain:<target>@portable
  MUSL_TOOLCHAIN_PREBUILT   a tarball of toolchain:<target> (programs for the build machine)
  MUSL_TOOLCHAIN_OTHER_HOST a tarball of toolchain:<target>@<host> for another machine
Each case is skipped, saying why, when its tarball is not given.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from contextlib import contextmanager
from pathlib import Path

import pytest
from elftools.elf.enums import ENUM_E_MACHINE

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


BINFMT = Path("/proc/sys/fs/binfmt_misc")


def binfmt_rule(name: str, target: recipes.Target, interpreter: str) -> str:
    """A binfmt_misc registration for the target's executables (ET_EXEC and ET_DYN: the
    mask's 0xfe) run by `interpreter`, opened now (F), so it works inside a chroot too."""
    little = target.endian == "little"
    number = ENUM_E_MACHINE[target.elf_machine]
    half = (lambda v: bytes([v & 0xff, v >> 8])) if little else (lambda v: bytes([v >> 8, v & 0xff]))
    magic = b"\x7fELF" + bytes([2 if target.elf_class == 64 else 1, 1 if little else 2, 1]) + bytes(9) \
        + half(2) + half(number)
    mask = b"\xff" * 7 + b"\x00" + b"\xff" * 8 + (b"\xfe\xff" if little else b"\xff\xfe") + b"\xff\xff"
    hexed = lambda data: "".join(f"\\x{c:02x}" for c in data)
    return f":{name}:M::{hexed(magic)}:{hexed(mask)}:{interpreter}:F"


@contextmanager
def binfmt_handler(target: recipes.Target):
    """The target's programs run by the kernel through its static qemu-user, for the time of
    the block: the machine's own handler if it has one, else one registered here and removed
    after. Skips where binfmt_misc cannot be mounted or written (a container without it)."""
    qemu = machine.runner(target)
    program = shutil.which(qemu[0]) if qemu else None
    assert program, f"{qemu[0] if qemu else 'qemu-user'} is not installed"
    mounted = False
    if not (BINFMT / "register").exists():
        if subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)],
                          capture_output=True).returncode != 0:
            pytest.skip("binfmt_misc is not mounted and this machine does not let it be mounted")
        mounted = True
    name = f"musl-toolchain-test-{target.qemu}"
    registered = False
    try:
        if not (BINFMT / f"qemu-{target.qemu}").exists():
            try:
                (BINFMT / "register").write_text(binfmt_rule(name, target, program))
            except OSError as e:
                pytest.skip(f"binfmt_misc does not take a registration here: {e}")
            registered = True
        yield
    finally:
        if registered:
            (BINFMT / name).write_text("-1")
        if mounted:
            subprocess.run(["umount", str(BINFMT)], capture_output=True)


def test_a_toolchain_for_another_machine_builds_and_runs_programs_there(tmp_path):
    """Its programs (driver, cc1, as, ld) are for the other machine, run here by qemu-user
    through binfmt_misc, in an empty root; the programs they link run too."""
    root, manifest = empty_root(tmp_path, _tarball("MUSL_TOOLCHAIN_OTHER_HOST"))
    r = recipes.load()
    host = r.hosts[manifest["host"]["name"]]
    assert manifest["host"].get("target_files_from") == f"toolchain:{manifest['target']}" \
        or machine.runs_natively(host.stage0)
    gcc = root / "opt" / "toolchain" / "bin" / f"{manifest['triple']}-gcc"
    doubled = list(gcc.parent.glob(f"{manifest['triple']}-{manifest['triple']}-*"))
    assert not doubled, f"a native compiler's extra names, program-prefixed twice: {doubled}"
    assert open(gcc, "rb").read(20)[18] == ENUM_E_MACHINE[host.stage0.elf_machine] & 0xff
    if machine.runs_natively(host.stage0):
        result = build_and_run(root, manifest)
    else:
        with binfmt_handler(host.stage0):
            result = build_and_run(root, manifest)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "C in an empty root\nC++ in an empty root\n"
