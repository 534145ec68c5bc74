"""The parts of the build that do not need a cross toolchain: the runner's logs and failure
report, the tarball, the env file, rustc link-line and link-map checks."""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import tarfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from toolchain import repro
from toolchain.build import context, machine
from toolchain.build.stages import package, rust
from toolchain.checks import gates
from toolchain.sources.recipes import Target
from toolchain.build.runner import StageError, run

AARCH64 = Target("aarch64", "aarch64-linux-musl", (), "aarch64-unknown-linux-musl", "qemu-aarch64-static",
                 64, "EM_AARCH64", "")


def test_failing_command_reports_log_tail_and_path(tmp_path):
    log = tmp_path / "logs" / "stage.log"
    run(["sh", "-c", "echo first run"], log=log, cwd=tmp_path)
    with pytest.raises(StageError) as e:
        run(["sh", "-c", "for i in $(seq 1 100); do echo line $i; done; echo boom >&2; exit 3"],
            log=log, cwd=tmp_path, step="make")
    msg = str(e.value)
    assert "exit status 3" in msg and str(log) in msg
    assert "line 100" in msg and "boom" in msg and "line 10\n" not in msg  # only the tail
    assert "first run" in log.read_text()  # the log keeps everything


def test_capture_returns_stdout_and_logs_it(tmp_path):
    log = tmp_path / "x.log"
    assert run(["sh", "-c", "echo out; echo err >&2"], log=log, cwd=tmp_path, capture=True) == "out\n"
    assert "out" in log.read_text() and "err" in log.read_text()


def test_a_stage_off_the_longest_chain_runs_its_commands_niced(tmp_path):
    """Stage.nice reaches every process of its commands, the ones started later too (the
    shell's `nice` below is run after the runner has set it); other stages' are untouched."""
    from toolchain.build.registry import BY_NAME
    from toolchain.build.runner import Status
    own = int(subprocess.run(["nice"], capture_output=True, text=True).stdout)
    cmd = ["sh", "-c", "sleep 0.5; nice"]
    with Status("t binutils", nice=BY_NAME["binutils"].nice) as st:
        niced = run(cmd, log=tmp_path / "a.log", cwd=tmp_path, status=st, capture=True)
    with Status("t gcc_libs", nice=BY_NAME["gcc_libs"].nice) as st:
        plain = run(cmd, log=tmp_path / "b.log", cwd=tmp_path, status=st, capture=True)
    assert BY_NAME["binutils"].nice > 0 and BY_NAME["gcc_libs"].nice == BY_NAME["gcc_core"].nice == 0
    assert int(niced) == min(own + BY_NAME["binutils"].nice, 19) and int(plain) == own


def make_tree(root: Path) -> None:
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "tool").write_text("#!/bin/sh\n")
    (root / "bin" / "tool").chmod(0o755)
    (root / "lib").mkdir()
    (root / "lib" / "b.a").write_bytes(b"!<arch>\n")
    (root / "lib" / "a.a").write_bytes(b"!<arch>\n")
    (root / "sys").mkdir()
    (root / "sys" / "usr").symlink_to(".")   # the sysroot's usr -> . must not loop


def test_a_commands_cpu_is_its_own_when_two_stages_run_at_once(tmp_path):
    """doit -P thread runs stages of two toolchains in one process: a command that only
    waits must not be charged with the CPU of one that ended beside it meanwhile."""
    import re
    import sys
    import threading
    burn = [sys.executable, "-c", "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.8: pass"]
    wait = ["sleep", "2"]
    threads = [threading.Thread(target=run, args=(cmd,), kwargs=dict(log=tmp_path / f"{name}.log", cwd=tmp_path, step=name))
               for name, cmd in (("wait", wait), ("burn", burn))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cpu = {name: float(re.search(rf"# {name}: [0-9.]+ s wall, ([0-9.]+) s CPU", (tmp_path / f"{name}.log").read_text())[1])
           for name in ("wait", "burn")}
    assert cpu["burn"] >= 0.7 and cpu["wait"] < 0.3, cpu


def test_tarball_is_reproducible_sorted_and_anonymous(tmp_path):
    for d in ("one", "two"):
        make_tree(tmp_path / d / "prefix")
    (tmp_path / "two" / "prefix" / "lib" / "a.a").touch()  # other mtimes
    n1 = package.tarball(tmp_path / "one" / "prefix", tmp_path / "one.tar.gz", "tc", 0)
    n2 = package.tarball(tmp_path / "two" / "prefix", tmp_path / "two.tar.gz", "tc", 0)
    assert n1 == n2 == 8
    assert (tmp_path / "one.tar.gz").read_bytes() == (tmp_path / "two.tar.gz").read_bytes()
    with tarfile.open(tmp_path / "one.tar.gz") as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == ["tc", "tc/bin", "tc/bin/tool", "tc/lib", "tc/lib/a.a", "tc/lib/b.a", "tc/sys", "tc/sys/usr"]
    assert all(m.uid == 0 and m.uname == "root" and m.mtime == 0 for m in members)
    assert members[-1].issym() and members[-1].linkname == "."


def test_env_file_finds_the_moved_toolchain(tmp_path):
    triple = "aarch64-linux-musl"
    moved = tmp_path / "moved"
    (moved / "bin").mkdir(parents=True)
    (moved / "bin" / f"{triple}-gcc").write_text("#!/bin/sh\n")
    (moved / "bin" / f"{triple}-gcc").chmod(0o755)
    (moved / "env.sh").write_text(package.ENV_TEMPLATE.format(triple=triple, up="."))
    show = 'command -v "$CC"; echo "$PKG_CONFIG_SYSROOT_DIR"'
    out = subprocess.run(["bash", "-c", f'. "{moved}/env.sh" && {show}'], capture_output=True, text=True)
    assert out.stdout.split() == [str(moved / "bin" / f"{triple}-gcc"), str(moved / triple)]
    # a shell that cannot tell where the file is: MUSL_TOOLCHAIN_PREFIX, else a clear message
    out = subprocess.run(["dash", "-c", f'. "{moved}/env.sh"; {show}'], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "MUSL_TOOLCHAIN_PREFIX": str(moved)})
    assert out.stdout.split() == [str(moved / "bin" / f"{triple}-gcc"), str(moved / triple)]
    out = subprocess.run(["dash", "-c", f'. "{moved}/env.sh"; echo "CC=$CC"'], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin"})
    assert out.stdout == "CC=\n" and "set MUSL_TOOLCHAIN_PREFIX" in out.stderr
    assert str(tmp_path) not in (moved / "env.sh").read_text()


def test_file_sums_and_leak_check(tmp_path):
    prefix = tmp_path / "tc"
    (prefix / "bin").mkdir(parents=True)
    tool, lib = b"\x7fELF clean", b"built in /nowhere"
    (prefix / "bin" / "tool").write_bytes(tool)
    (prefix / "lib").mkdir()
    (prefix / "lib" / "a.a").write_bytes(lib)
    (prefix / "usr").symlink_to(".")
    sums = package.file_sums(prefix)
    assert sums.splitlines() == [f"{hashlib.sha256(tool).hexdigest()}  bin/tool",
                                 f"{hashlib.sha256(lib).hexdigest()}  lib/a.a"]
    (prefix / package.SUMS).write_text(sums)
    check = subprocess.run(["sha256sum", "--quiet", "-c", package.SUMS], cwd=prefix, capture_output=True)
    assert check.returncode == 0
    assert package.leaked_paths(prefix, [str(tmp_path / "build")]) == []
    (prefix / "lib" / "b.a").write_bytes(f"DW_AT_comp_dir {tmp_path}/build/obj".encode())
    (prefix / "lib" / "link").symlink_to(tmp_path / "build" / "x")
    assert package.leaked_paths(prefix, [str(tmp_path / "build")]) == ["lib/b.a", "lib/link"]
    assert package.absolute_symlinks(prefix) == ["lib/link"]


def test_man_pages_come_from_the_source_not_the_build_machine(tmp_path):
    triple = "aarch64-linux-musl"
    source = tmp_path / "src" / "binutils-2.47"
    (source / "binutils" / "doc").mkdir(parents=True)
    (source / "gas" / "doc").mkdir(parents=True)
    upstream_ar = b'.\\" Automatically generated by Pod::Man v6.0.2\n.TH AR 1\n'
    (source / "binutils" / "doc" / "ar.1").write_bytes(upstream_ar)
    (source / "gas" / "doc" / "as.1").write_bytes(b"")            # an emptied page is no source
    man1, man7 = tmp_path / "tc" / "share" / "man" / "man1", tmp_path / "tc" / "share" / "man" / "man7"
    man1.mkdir(parents=True)
    man7.mkdir()
    (man1 / f"{triple}-ar.1").write_bytes(b'.\\" Automatically generated by Pod::Man 4.14\n.TH AR 1\n')
    (man1 / f"{triple}-as.1").write_bytes(b"")                    # pod2man missing: left empty
    (man1 / f"{triple}-gcc.1").write_bytes(b"timestamp\n")        # gcc from a dfsg source
    ld = b".TH LD 1\n"
    (man1 / f"{triple}-ld.1").write_bytes(ld)
    (man7 / "gpl.7").write_bytes(b".TH GPL 7\n")
    changes = package.shipped_man_pages(tmp_path / "tc", triple, source)
    assert (man1 / f"{triple}-ar.1").read_bytes() == upstream_ar
    assert not (man1 / f"{triple}-as.1").exists() and not (man1 / f"{triple}-gcc.1").exists()
    assert (man1 / f"{triple}-ld.1").read_bytes() == ld and (man7 / "gpl.7").is_file()
    assert changes == [f"share/man/man1/{triple}-ar.1: as shipped",
                       f"share/man/man1/{triple}-as.1: removed (not a man page)",
                       f"share/man/man1/{triple}-gcc.1: removed (not a man page)"]
    assert package.shipped_man_pages(tmp_path / "tc", triple, source) == []   # nothing left to do


def rust_build(tmp_path: Path) -> rust.RustBuild:
    b = SimpleNamespace(target=AARCH64, triple=AARCH64.triple, prefix=tmp_path / "tc", work=tmp_path / "w",
                        sysroot=tmp_path / "tc" / "aarch64-linux-musl")
    b.tool = lambda name: str(b.prefix / "bin" / f"{b.triple}-{name}")
    r = rust.Rust("/usr/bin/rustc", "/usr/bin/cargo", "rustc 1.96.0", "build-std", "/usr")
    return rust.RustBuild(b, r)


def test_link_args_with_a_trailing_dynamic_libc_are_refused(tmp_path):
    rb = rust_build(tmp_path)
    gcc = rb.b.tool("gcc")
    good = f'LC_ALL="C" "{gcc}" "x.o" "-Wl,-Bstatic" "a.rlib" "-lunwind" "-lc" "-Wl,-Bdynamic" "-nodefaultlibs"'
    rust.check_link_args(good, rb)
    bad = good + ' "-lc"'
    with pytest.raises(gates.GateError, match="-lc is linked while -Bdynamic"):
        rust.check_link_args(bad, rb)
    with pytest.raises(gates.GateError, match="did not link with"):
        rust.check_link_args(good.replace(gcc, "/usr/bin/cc"), rb)
    with pytest.raises(gates.GateError, match="bundled"):
        rust.check_link_args(good.replace('"x.o"', '"/r/lib/self-contained/crt1.o"'), rb)


def test_link_map_must_show_our_libc(tmp_path):
    rb = rust_build(tmp_path)
    m = tmp_path / "hello.map"
    m.write_text(f"{rb.b.sysroot}/lib/libc.a(printf.o)\n{rb.unwind_dir}/libunwind.a(unwind-dw2.o)\n")
    rust.check_link_map(m, rb)
    m.write_text("/usr/lib/x86_64-linux-musl/libc.a(printf.o)\nlibunwind.a(x.o)\n")
    with pytest.raises(gates.GateError, match="shows no member of"):
        rust.check_link_map(m, rb)


def test_cargo_config_and_env_for_32_bit_targets(tmp_path):
    rb = rust_build(tmp_path)
    text = rb.cargo_config("/opt/tc")
    assert "[target.aarch64-unknown-linux-musl]" in text and "link-self-contained=no" in text
    assert '"--sysroot", "/opt/tc/lib/rust/sysroot"' in text and "RUST_LIBC_UNSTABLE" not in text
    rb.b.target = Target("armv7", "armv7-linux-musleabihf", (), "armv7-unknown-linux-musleabihf", "q", 32,
                         "EM_ARM", "hard")
    assert 'RUST_LIBC_UNSTABLE_MUSL_V1_2_3 = "1"' in rb.cargo_config("/opt/tc")
    assert "export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_MUSLEABIHF_LINKER=" in rb.env_file()


def test_cargo_config_script_and_env_file_follow_the_toolchain(tmp_path):
    rb = rust_build(tmp_path)
    moved = tmp_path / "moved"
    (moved / "bin").mkdir(parents=True)
    (moved / "lib" / "rust").mkdir(parents=True)
    gcc = moved / "bin" / "aarch64-linux-musl-gcc"
    gcc.write_text("#!/bin/sh\n")
    gcc.chmod(0o755)
    script = moved / "bin" / "aarch64-linux-musl-cargo-config"
    script.write_text(rb.cargo_config_script())
    script.chmod(0o755)
    printed = subprocess.run([str(script)], capture_output=True, text=True, check=True).stdout
    assert printed == rb.cargo_config(str(moved))
    (moved / "lib" / "rust" / "env.sh").write_text(rb.env_file())
    var = "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL"
    out = subprocess.run(["bash", "-c", f'. "{moved}/lib/rust/env.sh" && echo "${var}_LINKER" && echo "${var}_RUSTFLAGS"'],
                         capture_output=True, text=True).stdout.splitlines()
    assert out == [str(gcc), " ".join(rb.rustflags(str(moved)))]


def test_repro_compare_names_the_differing_members(tmp_path):
    for side in ("a", "b"):
        make_tree(tmp_path / side)
    one, two = tmp_path / "one.tar.gz", tmp_path / "two.tar.gz"
    package.tarball(tmp_path / "a", one, "tc", 0)
    package.tarball(tmp_path / "b", two, "tc", 0)
    assert repro.compare(one, two) == []
    (tmp_path / "b" / "lib" / "a.a").write_bytes(b"!<arch>\nother")
    (tmp_path / "b" / "lib" / "new.a").write_bytes(b"!<arch>\n")
    (tmp_path / "b" / "bin" / "tool").chmod(0o700)
    package.tarball(tmp_path / "b", two, "tc", 0)
    assert repro.compare(one, two) == ["tc/bin/tool", "tc/lib/a.a", "tc/lib/new.a"]


def test_configure_arguments_name_no_build_folder(tmp_path):
    """gcc keeps its configure arguments in the driver (gcc -v): they must be the same in any
    build folder; the build folder goes in make variables and prefix maps instead."""
    from toolchain import settings
    from toolchain.build.stages import binutils, gcc, musl
    from toolchain.sources import recipes
    r = recipes.load()
    s = settings.load({"out": str(tmp_path / "out")}, env={})
    for target in r.targets.values():
        b = context.Build(s, target, r.select({}))
        flags = " ".join(binutils.configure_flags(b) + gcc.configure_flags(b) + musl.configure_flags(b))
        assert str(tmp_path) not in flags and "--prefix= " in flags + " "
        assert f"--with-sysroot=/{target.triple}" in flags
        assert f"SYSROOT_CFLAGS_FOR_TARGET=--sysroot={b.sysroot}" in gcc.make_vars(b)
        assert f"-ffile-prefix-map={tmp_path / 'out'}=" in b.target_cflags
        assert f"-ffile-prefix-map={tmp_path / 'out'}=" in " ".join(gcc.make_vars(b))
        # gcc hashes the host link flags (CXXFLAGS) into cc1's PCH checksum: no folder there
        assert str(tmp_path) not in b.env()["CFLAGS"] + b.env()["CXXFLAGS"]
        src = b.src("gcc")
        assert b.configure(src, b.work / "obj-gcc") == "../../../src/" + src.name + "/configure"


def test_interrupted_repro_stops_its_builds():
    procs = [subprocess.Popen(["sleep", "60"]) for _ in range(2)]

    class Interrupted:                       # the first wait is interrupted by Ctrl-C
        def __init__(self, p):
            self.p, self.waits = p, 0

        def wait(self):
            self.waits += 1
            if self.waits == 1:
                raise KeyboardInterrupt("Ctrl-C in the first wait")
            return self.p.wait()

        def terminate(self):
            self.p.terminate()
    with pytest.raises(KeyboardInterrupt, match="Ctrl-C in the first wait"):  # the same one, passed on
        repro._wait([Interrupted(procs[0]), procs[1]])
    assert procs[0].poll() is not None and procs[1].poll() is not None   # both stopped and reaped


def test_linux_headers_copies_only_the_h_files_make_headers_wrote(tmp_path):
    """A stand-in kernel tree whose `make headers` writes into O= what the real one does (the
    headers, and make's hidden records); the source tree stays untouched."""
    from toolchain import settings
    from toolchain.build.runner import Status
    from toolchain.build.stages import linux_headers
    from toolchain.sources import recipes
    r = recipes.load()
    s = settings.load({"out": str(tmp_path / "out"), "jobs": "1"}, env={})
    versions = r.select({})
    b = context.Build(s, r.targets["riscv64"], versions)
    src = b.src("linux")
    src.mkdir(parents=True)
    (src / "Makefile").write_text(
        "headers:\n"
        "\ttest \"$(ARCH)\" = riscv\n"
        "\tfor h in linux/types.h linux/version.h asm/unistd.h asm-generic/ioctl.h; do \\\n"
        "\t  mkdir -p $(O)/usr/include/$$(dirname $$h) && echo '/* '$$h' */' > $(O)/usr/include/$$h; done\n"
        "\ttouch $(O)/usr/include/linux/.types.h.cmd $(O)/usr/include/linux/Makefile\n")
    with Status("test") as st:
        linux_headers.run(b, st)
    include = b.sysroot / "include"
    found = sorted(str(p.relative_to(include)) for p in include.rglob("*") if p.is_file())
    assert found == ["asm-generic/ioctl.h", "asm/unistd.h", "linux/types.h", "linux/version.h"]
    assert (include / "asm" / "unistd.h").read_text() == "/* asm/unistd.h */\n"
    assert sorted(p.name for p in src.iterdir()) == ["Makefile"]
    # a make that leaves out a header every program needs fails the stage
    (src / "Makefile").write_text("headers:\n\tmkdir -p $(O)/usr/include/linux\n")
    shutil.rmtree(include)
    with pytest.raises(gates.GateError, match="linux/types.h was not installed"), Status("test") as st:
        linux_headers.run(b, st)


def test_static_host_programs_names_every_dynamic_one(tmp_path):
    from toolchain.checks.gates import GateError, static_host_programs
    if machine.build_machine() != ("EM_X86_64", 64, "little") or not shutil.which("gcc"):
        pytest.skip("needs an x86_64 build machine with gcc")
    src = tmp_path / "m.c"
    src.write_text("int main(void) { return 0; }\n")
    prefix = tmp_path / "prefix"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "libexec").mkdir()
    (prefix / "sysroot" / "bin").mkdir(parents=True)
    subprocess.run(["gcc", "-static", str(src), "-o", str(prefix / "bin" / "static")], check=True)
    subprocess.run(["gcc", str(src), "-o", str(prefix / "sysroot" / "bin" / "dynamic")], check=True)
    (prefix / "bin" / "script").write_text("#!/bin/sh\n")
    args = ("EM_X86_64", 64)
    assert static_host_programs(prefix, *args, skip=prefix / "sysroot") == 1    # the sysroot is the target's
    subprocess.run(["gcc", str(src), "-o", str(prefix / "libexec" / "cc1")], check=True)
    with pytest.raises(GateError, match=r"1 host programs are not static: libexec/cc1 \(/lib"):
        static_host_programs(prefix, *args, skip=prefix / "sysroot")
    # a toolchain for aarch64 hosts holding x86_64 programs (a canadian build's twin's): named
    with pytest.raises(GateError, match=r"2 files among the programs are not for EM_AARCH64 ELF64: "
                                        r"(libexec/cc1|bin/static) .*(bin/static|libexec/cc1)"):
        static_host_programs(prefix, "EM_AARCH64", 64, skip=prefix / "sysroot")
    with pytest.raises(GateError, match="no EM_AARCH64 programs found"):
        static_host_programs(prefix, "EM_AARCH64", 64, skip=prefix / "sysroot", programs=())


def test_the_gcc_stage_goes_on_from_libgcc_static_once_then_from_clean(tmp_path):
    """libgcc_static's objects are kept by the gcc stage only right after it built them (its
    mark); the static-only libgcc.a goes, and so does every other target folder."""
    from toolchain import settings
    from toolchain.build.stages import gcc
    from toolchain.sources import recipes
    r = recipes.load()
    b = context.Build(settings.load({"out": str(tmp_path / "out")}, env={}), AARCH64, r.select({}))
    target = gcc.obj_dir(b) / b.triple
    for name in ("libgcc/_muldi3.o", "libgcc/libgcc.a", f"libgcc/{gcc.STATIC_LIBGCC_MARK}", "libstdc++-v3/Makefile"):
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_text("x")
    assert gcc.keep_static_libgcc(b)
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*")) == ["libgcc", "libgcc/_muldi3.o"]
    # a second start (the first attempt failed): libgcc from clean as well
    assert not gcc.keep_static_libgcc(b)
    assert list(target.iterdir()) == []


# The lines of gcc's top Makefile that say how it builds for the build machine (as its
# configure writes them when build = host), and the host's flags.
TOP_MAKEFILE = """BUILD_SUBDIR = build-x86_64-pc-linux-gnu
CC_FOR_BUILD = $(CC)
CFLAGS_FOR_BUILD = -g0 -O2
CPPFLAGS_FOR_BUILD = 
CXXFLAGS_FOR_BUILD = -g0 -O2
CXX_FOR_BUILD = $(CXX)
CC = gcc
CXX = g++
CFLAGS = -g0 -O2  
CXXFLAGS = -g0 -O2
"""


@pytest.mark.parametrize("change, shared", [
    ({}, ("libiberty", "libcpp", "fixincludes")),
    # a canadian build: another compiler, or other flags, for the build machine's programs
    ({"CC_FOR_BUILD = $(CC)": "CC_FOR_BUILD = gcc"}, ()),
    ({"CXXFLAGS_FOR_BUILD = -g0 -O2": "CXXFLAGS_FOR_BUILD = -O0"}, ()),
])
def test_gcc_builds_its_build_machine_twins_once_only_when_they_are_the_hosts(tmp_path, change, shared):
    from toolchain.build.stages import gcc
    text = TOP_MAKEFILE
    for old, new in change.items():
        text = text.replace(old, new)
    (tmp_path / "Makefile").write_text(text)
    (tmp_path / "build-x86_64-pc-linux-gnu" / "libcpp").mkdir(parents=True)   # an earlier attempt's: kept
    assert gcc.share_build_twins(tmp_path) == tuple(t for t in shared if t != "libcpp")
    build = tmp_path / "build-x86_64-pc-linux-gnu"
    links = {p.name: str(p.readlink()) for p in build.iterdir() if p.is_symlink()}
    assert links == {t: f"../{t}" for t in shared if t != "libcpp"}
    assert (build / "libcpp").is_dir() and not (build / "libcpp").is_symlink()
