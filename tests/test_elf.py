"""ELF facts, gates and `python -m toolchain doctor` on real binaries made by the host gcc."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from toolchain.checks import elf, gates
from toolchain.sources.recipes import Target


def unavailable(reason: str) -> None:
    """Skip on a developer's machine without gcc or a static libc; under CI (CI set) the gates
    must really be tested, so that is a failure."""
    if os.environ.get("CI", "") not in ("", "0", "false"):
        pytest.fail(f"{reason} (CI is set: install gcc and libc6-dev)")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def host_gcc():
    if shutil.which("gcc") is None:
        unavailable("needs the host gcc")


HOST = Target("host", "x86_64-linux-gnu", (), "", "", 64, "EM_X86_64", "")
ARM = Target("armv7", "armv7-linux-musleabihf", (), "", "qemu-arm-static", 32, "EM_ARM", "hard")
MAIN = 'int main(void) { return 0; }\n'


def cc(tmp: Path, name: str, *flags: str, source: str = MAIN) -> Path:
    src = tmp / f"{name}.c"
    src.write_text(source)
    out = tmp / name
    r = subprocess.run(["gcc", *flags, str(src), "-o", str(out)], capture_output=True, text=True)
    if r.returncode:
        unavailable(f"host gcc cannot build {flags}: {r.stderr[-300:]}")
    return out


def doctor(*files: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "toolchain", "doctor", *map(str, files)],
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)


def test_dynamic_binary_facts_and_verdict(tmp_path):
    exe = cc(tmp_path, "dyn", "-Wl,-rpath,/nix/store/abc-openssl/lib", "-Wl,--disable-new-dtags")
    f = elf.facts(exe)
    assert f.linkage == "dynamic" and f.interpreter.startswith("/lib")
    assert "libc.so.6" in f.needed and f.rpath == ["/nix/store/abc-openssl/lib"]
    assert f.glibc_max.startswith("GLIBC_2.")
    words = "\n".join(elf.verdict(f))
    assert "program interpreter" in words and "libc.so.6" in words and "/nix/store" in words
    r = doctor(exe)
    assert r.returncode == 1
    assert "RPATH        /nix/store/abc-openssl/lib" in r.stdout and "NEEDED       libc.so.6" in r.stdout


def test_static_and_static_pie(tmp_path):
    static = cc(tmp_path, "st", "-static")
    spie = cc(tmp_path, "spie", "-static-pie")
    assert elf.facts(static).linkage == "static"
    assert elf.facts(spie).linkage == "static-pie"
    gates.static_executable(static, HOST, kind="static")
    gates.static_executable(spie, HOST, kind="static-pie")
    r = doctor(static, spie)
    assert r.returncode == 0, r.stdout
    assert "verdict      static: runs on any Linux kernel" in r.stdout
    assert "verdict      static-pie:" in r.stdout


def test_gates_name_the_file_and_the_fact(tmp_path):
    dyn = cc(tmp_path, "dyn")
    with pytest.raises(gates.GateError) as e:
        gates.static_executable(dyn, HOST, kind="static")
    assert str(dyn) in str(e.value) and "PT_INTERP" in str(e.value)
    static = cc(tmp_path, "st", "-static")
    with pytest.raises(gates.GateError, match="e_machine is EM_X86_64, expected EM_ARM"):
        gates.static_executable(static, ARM, kind="static")
    with pytest.raises(gates.GateError, match="is static, expected static-pie"):
        gates.static_executable(static, HOST, kind="static-pie")


def test_archive_members_are_checked(tmp_path):
    objs = []
    for i in range(3):
        (tmp_path / f"m{i}.c").write_text(f"int f{i}(void) {{ return {i}; }}\n")
        subprocess.run(["gcc", "-c", f"m{i}.c"], cwd=tmp_path, check=True)
        objs.append(f"m{i}.o")
    # a long member name exercises the GNU long-name table
    shutil.copy(tmp_path / "m0.o", tmp_path / "a_member_with_a_rather_long_name.o")
    objs.append("a_member_with_a_rather_long_name.o")
    subprocess.run(["ar", "rcs", "libm.a", *objs], cwd=tmp_path, check=True)
    names = [n for n, _ in elf.ar_members(tmp_path / "libm.a")]
    assert names == objs
    assert gates.target_archive(tmp_path / "libm.a", HOST) == 4
    with pytest.raises(gates.GateError) as e:
        gates.target_archive(tmp_path / "libm.a", ARM)
    assert "libm.a(m0.o)" in str(e.value) and "EM_ARM" in str(e.value)
    with pytest.raises(gates.GateError, match="at least 1000"):
        gates.target_archive(tmp_path / "libm.a", HOST, at_least=1000)


def test_runs_gate_compares_output(tmp_path):
    exe = cc(tmp_path, "hi", "-static", source='#include <stdio.h>\nint main(void){puts("hi");return 0;}\n')
    assert gates.runs([str(exe)], "hi\n", where="hi") == "hi\n"
    with pytest.raises(gates.GateError, match="expected 'bye\\\\n'"):
        gates.runs([str(exe)], "bye\n", where="hi")


def test_runs_gate_finds_the_runner_in_our_path_not_the_programs(tmp_path, monkeypatch):
    """A qemu put first in PATH (/opt/qemu-10/bin) is found even when the target program
    itself gets a bare PATH=/usr/bin:/bin (the libedit gate does)."""
    exe = cc(tmp_path, "hi", "-static", source='#include <stdio.h>\nint main(void){puts("hi");return 0;}\n')
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "fake-qemu").write_text('#!/bin/sh\nexec "$@"\n')
    (tools / "fake-qemu").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}:{os.environ['PATH']}")
    assert gates.runs(["fake-qemu", str(exe)], "hi\n", where="hi", env={"PATH": "/usr/bin:/bin"}) == "hi\n"
    with pytest.raises(gates.GateError, match="cannot run no-such-qemu"):
        gates.runs(["no-such-qemu", str(exe)], "hi\n", where="hi")


def test_doctor_on_a_non_elf_file(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    r = doctor(tmp_path / "notes.txt")
    assert r.returncode == 2 and "not an ELF file" in r.stderr


@pytest.mark.skipif(not shutil.which("gcc"), reason="needs the build machine's gcc")
def test_lto_objects_are_told_from_plain_ones(tmp_path):
    (tmp_path / "a.c").write_text("int f(int x) { return x + 1; }\n")
    for flags, lto in ((["-flto"], True), ([], False)):
        subprocess.run(["gcc", *flags, "-O2", "-c", "a.c", "-o", "a.o"], cwd=tmp_path, check=True)
        assert elf.has_lto(tmp_path / "a.o") == lto
