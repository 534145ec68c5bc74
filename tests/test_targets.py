"""Target facts are data (recipes/targets.yaml): ELF facts the gates check, how programs run
on this build machine, Rust or none, minimum versions."""
from __future__ import annotations

import shutil
import struct
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from toolchain import cmdline
from toolchain.build import machine
from toolchain.build.stages import rust
from toolchain.checks import elf, gates
from toolchain.sources import recipes
from toolchain.cmdline import Request
from toolchain.errors import RecipeError, ToolchainError

REPO = Path(__file__).resolve().parent.parent
TARGETS = recipes.load().targets


def test_every_target_row_has_what_the_stages_and_gates_need():
    for t in TARGETS.values():
        assert t.triple.count("-") >= 2 and t.elf_machine.startswith("EM_") and t.elf_class in (32, 64)
        assert t.qemu and t.kernel_arch and t.endian in ("little", "big")
        assert not t.float_abi or t.elf_machine in elf.E_FLAGS   # a fact the ELF can show
        assert not t.elf_abi or "elf_abi" in elf.E_FLAGS.get(t.elf_machine, {})
        assert t.long_double in (8, 12, 16)                     # the hello stage checks it


def test_a_qemu_cpu_is_passed_to_qemu():
    other = replace(TARGETS["armv6"], elf_machine="EM_S390")   # never this machine's own kind
    assert machine.runner(other) == [machine.qemu_program(other), "-cpu", "arm1176"]
    assert machine.qemu_program(other) in ("qemu-arm-static", "qemu-arm")


@pytest.mark.skipif(machine.build_machine() != ("EM_X86_64", 64, "little"), reason="needs an x86_64 host gcc")
def test_the_abi_checks_compile_for_the_right_row_and_fail_for_a_wrong_one(tmp_path):
    from toolchain.build.stages.hello import abi_source
    good = TARGETS["x86_64"]
    for target, ok in ((good, True), (replace(good, long_double=8), False), (replace(good, endian="big"), False),
                       (replace(good, elf_class=32), False)):
        (tmp_path / "abi.c").write_text(abi_source(target))
        r = subprocess.run(["gcc", "-c", "abi.c", "-o", "abi.o"], cwd=tmp_path, capture_output=True, text=True)
        assert (r.returncode == 0) == ok, (target, r.stderr)


def test_the_ppc64_elf_abi_is_read_from_e_flags_and_checked():
    ppc = replace(TARGETS["ppc64le"], elf_abi=2)
    prog = elf.Facts("prog", 64, "EM_PPC64", "ET_EXEC", endian="little", elf_abi=2)
    gates._machine_and_class(prog, ppc)
    with pytest.raises(gates.GateError, match="ELF ABI version is 1, expected 2"):
        gates._machine_and_class(replace(prog, elf_abi=1), ppc)
    assert elf.E_FLAGS["EM_PPC64"]["elf_abi"](0x2) == 2


def test_programs_run_natively_only_on_their_own_kind_of_machine():
    kind, elf_class, endian = machine.build_machine()
    own = next((t for t in TARGETS.values() if (t.elf_machine, t.elf_class, t.endian) == (kind, elf_class, endian)),
               None)
    other = replace(next(iter(TARGETS.values())), elf_machine="EM_S390", qemu="s390x")
    assert machine.runner(other) == ["qemu-s390x-static"]
    if own is not None:
        assert machine.runner(own) == []
    # the same row on a machine of another byte order is not native
    assert machine.runner(replace(other, elf_machine=kind, elf_class=elf_class,
                                  endian="big" if endian == "little" else "little")) == ["qemu-s390x-static"]


def host_object(tmp_path) -> bytes:
    (tmp_path / "t.c").write_text("int x;\n")
    subprocess.run(["cc", "-c", "t.c", "-o", "t.o"], cwd=tmp_path, check=True)
    return (tmp_path / "t.o").read_bytes()


def test_e_flags_facts_come_from_a_table_per_machine(tmp_path):
    data = bytearray(host_object(tmp_path))
    assert data[4] == 2  # ELF64 (this test patches the 64-bit header layout)
    struct.pack_into("<H", data, 18, 243)            # e_machine EM_RISCV
    struct.pack_into("<I", data, 48, 0x4)            # EF_RISCV_FLOAT_ABI_DOUBLE
    f = elf.facts(bytes(data), "riscv.o")
    assert (f.machine, f.float_abi, f.endian) == ("EM_RISCV", "double", "little")
    struct.pack_into("<H", data, 18, 258)            # EM_LOONGARCH
    struct.pack_into("<I", data, 48, 0x1)            # soft-float ABI
    assert elf.facts(bytes(data), "la.o").float_abi == "soft"


def test_gates_check_what_the_row_says():
    riscv = replace(TARGETS[next(iter(TARGETS))], name="riscv64", elf_machine="EM_RISCV", elf_class=64,
                    float_abi="double", eabi=0, endian="little")
    good = elf.Facts("prog", 64, "EM_RISCV", "ET_EXEC", endian="little", float_abi="double")
    gates._machine_and_class(good, riscv)
    with pytest.raises(gates.GateError, match="float ABI is single, expected double"):
        gates._machine_and_class(replace(good, float_abi="single"), riscv)
    with pytest.raises(gates.GateError, match="is big-endian, expected little-endian"):
        gates._machine_and_class(replace(good, endian="big"), riscv)
    arm = replace(riscv, elf_machine="EM_ARM", elf_class=32, float_abi="hard", eabi=5)
    prog = elf.Facts("prog", 32, "EM_ARM", "ET_EXEC", float_abi="hard", eabi=5)
    gates._machine_and_class(prog, arm)
    with pytest.raises(gates.GateError, match="EABI version is 4, expected 5"):
        gates._machine_and_class(replace(prog, eabi=4), arm)
    gates._machine_and_class(replace(prog, eabi=4), replace(arm, eabi=0))   # 0: not asked for


def recipes_with(tmp_path, row: str) -> Path:
    """A copy of the recipes whose targets.yaml has one more row."""
    rdir = tmp_path / "recipes"
    shutil.copytree(REPO / "recipes", rdir)
    shutil.copytree(REPO / "patches", tmp_path / "patches")
    with open(rdir / "targets.yaml", "a") as f:
        f.write(row)
    return rdir


ROW = """  rvtest:    # a row of its own (riscv64 is a real target)
    triple: riscv64-linux-musl
    qemu: riscv64
    kernel_arch: riscv
    elf_class: 64
    elf_machine: EM_RISCV
    float_abi: double
"""


def test_a_target_without_rust_is_one_row_and_says_so_once(tmp_path, capsys):
    t = recipes.load(recipes_with(tmp_path, ROW)).targets["rvtest"]
    assert t.rust_target == "" and rust.probe(type("B", (), {"target": t})()) == {"none": True}
    b = type("B", (), {"target": t, "triple": t.triple, "name": t.name})()
    assert [rust._rust_build(b, s) for s in ("rust_std", "rust", "rust_obj")] == [None, None, None]
    out = capsys.readouterr().out
    assert out.count("Rust has no std for riscv64-linux-musl") == 1


def test_minimum_versions_stop_before_any_work(tmp_path):
    rdir = recipes_with(tmp_path, ROW + '    minimum: {musl: "9.9"}\n')
    r = recipes.load(rdir)
    with pytest.raises(ToolchainError, match=r"target rvtest needs newer versions than selected: musl 1\.2\.\d+ < 9\.9"):
        cmdline.check_names(Request("run", ("toolchain:rvtest",)), r, r.select())
    cmdline.check_names(Request("run", ("toolchain:aarch64",)), r, r.select())   # other targets are fine


@pytest.mark.parametrize("line, message", [
    ("    endian: middle\n", "endian 'middle' is not little or big"),
    ("    minimum: {glibc: \"2.0\"}\n", "minimum 'glibc'"),
    ("    eabi: five\n", "field 'eabi' is a str"),
])
def test_bad_target_facts_are_file_line_errors(tmp_path, line, message):
    with pytest.raises(RecipeError, match=message) as e:
        recipes.load(recipes_with(tmp_path, ROW + line))
    assert "targets.yaml:" in str(e.value)


def test_a_qemu_name_must_be_a_machine_name(tmp_path):
    with pytest.raises(RecipeError, match="is not a qemu machine name"):
        recipes.load(recipes_with(tmp_path, ROW.replace("qemu: riscv64", "qemu: qemu-riscv64-static /bin/sh")))


def test_the_host_compiler_gets_an_allow_listed_environment(tmp_path, monkeypatch):
    from toolchain.settings import Settings
    from toolchain.build.context import Build
    for leaky in ("CPATH", "LIBRARY_PATH", "GCC_EXEC_PREFIX", "COMPILER_PATH", "CONFIG_SITE", "MAKEFLAGS"):
        monkeypatch.setenv(leaky, "/somewhere")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    env = Build(Settings(out=tmp_path, distfiles=tmp_path), TARGETS["aarch64"], {}).env()
    assert not {"CPATH", "LIBRARY_PATH", "GCC_EXEC_PREFIX", "COMPILER_PATH", "CONFIG_SITE", "MAKEFLAGS"} & set(env)
    assert env["TMPDIR"] == str(tmp_path) and env["LC_ALL"] == "C" and env["PATH"].startswith(str(tmp_path))


def test_a_portable_build_is_compiled_static_by_stage0_and_never_native(tmp_path):
    from toolchain import settings
    from toolchain.build.context import Build
    from toolchain.build.stages import binutils, gcc
    r = recipes.load()
    s = settings.load({"out": str(tmp_path / "out"), "distfiles": str(tmp_path / "d")}, env={})
    versions = r.select()
    host = next(iter(r.hosts.values()))
    for target in TARGETS.values():
        plain, portable = Build(s, target, versions), Build(s, target, versions, host)
        assert plain.host_compiler() == {} and plain.host_configure() == [] and plain.stage0 is None
        assert portable.name == f"{target.name}@{host.name}" and portable.prefix != plain.prefix
        cc = portable.host_compiler()["CC"].split()
        assert cc == [f"{host.stage0.triple}-gcc", "-static", "--static"]      # no folder: see below
        assert portable.host_env()["PATH"].split(":")[0] == str(s.out / "toolchains" / host.stage0.name / "bin")
        # nothing that names the out folder reaches the host programs' link command (gcc
        # hashes it into cc1): two out folders, the same cc1
        assert str(s.out) not in " ".join(v for k, v in portable.host_compiler().items())
        for flags, static in ((binutils.configure_flags(portable), "--disable-plugins"),
                              (gcc.configure_flags(portable), "--disable-lto-plugin")):
            assert static in flags
            build = next(f.split("=", 1)[1] for f in flags if f.startswith("--build="))
            assert f"--host={build}" in flags and build != target.triple   # never a native build
        assert "--disable-plugins" not in binutils.configure_flags(plain)
        assert not any(f.startswith(("--build=", "--host=")) for f in gcc.configure_flags(plain))


def test_a_build_for_another_machine_is_a_canadian_cross_with_its_twins_tools(tmp_path):
    """A host whose stage 0 does not run here (aarch64 on this x86_64): --host is stage 0's
    triple, the build's own generators use the build machine's gcc, configure finds the
    target's tools of the twin (they run here, ours would not), and the target's files are
    the twin's (no musl, hello, ... of its own)."""
    from toolchain import settings
    from toolchain.build import machine, registry
    from toolchain.build.context import CANADIAN, HERE, Build
    from toolchain.build.stages import gcc
    r = recipes.load()
    s = settings.load({"out": str(tmp_path / "out"), "distfiles": str(tmp_path / "d")}, env={})
    versions = r.select()
    others = [h for h in r.hosts.values() if not machine.runs_natively(h.stage0)]
    assert others, "targets.yaml has no host for another machine than this one"
    host = others[0]
    for target in TARGETS.values():
        b = Build(s, target, versions, host)
        assert b.kind == CANADIAN and b.twin.name == target.name and b.twin.host is None
        assert [n.name for n in b.needs] == [host.stage0.name, target.name]
        assert b.host_configure() == [f"--build={machine.build_triple()}", f"--host={host.stage0.triple}",
                                      f"--program-prefix={target.triple}-"]
        assert b.host_compiler()["CC_FOR_BUILD"] == "gcc" and host.stage0.triple in b.host_compiler()["CC"]
        # gcc's <limits.h> as a cold build makes it, whatever an earlier build left in the sysroot
        assert "LIMITS_H_TEST=false" in gcc.make_vars(b)[0].split() and gcc.make_vars(b)[0].startswith("TARGET-gcc=all ")
        # libstdc++'s headers where the twin's are, named from $(libsubdir) as a cross gcc's
        # own default is, so they come before musl's (#include_next); under the sysroot they
        # would come after gcc's and musl's headers
        gxx = [f for f in gcc.configure_flags(b) if f.startswith("--with-gxx-include-dir=")]
        assert gxx == [f"--with-gxx-include-dir=$(libsubdir)/$(libsubdir_to_prefix){target.triple}"
                       "/include/c++/$(version)"]
        assert b.env()["PATH"].split(":")[0] == str(b.twin.prefix / "bin")
        assert gcc.goals(b) == ("host",) and gcc.goals(b.twin) == ("host", "target")
        assert {"musl", "hello", "libgcc_static"}.isdisjoint(s.name for s in registry.stages_of(b.kind))
        assert registry.after("gcc", b.kind) == ("gcc_core",) and registry.after("gcc", HERE) == ("gcc_core", "musl")
    portable = Build(s, target, versions, next(h for h in r.hosts.values() if machine.runs_natively(h.stage0)))
    assert portable.kind == HERE and portable.needs == [portable.stage0]
