"""The build stages of one target's toolchain, in the proven order (musl-cross-make's):
binutils -> gcc-core (all-gcc) -> libgcc-static (after musl's headers) -> musl -> gcc (the
rest, with shared libgcc, C++) -> hello (C/C++ static and static-pie programs run).

Each stage works in its own folder under out/build/<target>/, installs into the target's
prefix, must pass its gates, and only then writes its stamp: a stage without a stamp is
redone from a clean folder, so an interrupted stage never counts as done.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import gates, libs, package, rust
from .context import HOST_ENV, Build, Steps
from .runner import Status, clean_dir, run
from .sources import write_json

HELLO_C = '#include <stdio.h>\nint main(void) { puts("hello from C"); return 0; }\n'
HELLO_CXX = """#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>
int main() {
    std::string caught;
    std::thread worker([&] {   // an exception thrown and caught inside a thread: unwinder + TLS
        try { throw std::runtime_error("a thread"); }
        catch (const std::exception &e) { caught = e.what(); }
    });
    worker.join();
    std::cout << "hello from C++ and " << caught << std::endl;
    return 0;
}
"""


# -- the stages ---------------------------------------------------------------------------


def _make(b: Build, *targets: str) -> list[str]:
    return ["make", f"-j{b.settings.jobs}", *targets]


def stage_binutils(b: Build, st: Status) -> None:
    obj = clean_dir(b.work / "obj-binutils")
    sh = b.steps("binutils", st)
    sh.run([b.configure(b.src("binutils"), obj), *b.binutils_flags()], cwd=obj, step="configure")
    # MAKEINFO=true: Debian's binutils repack has no prebuilt manuals; we install none
    sh.run(_make(b, "MAKEINFO=true"), cwd=obj, step="make")
    sh.run(["make", "MAKEINFO=true", f"DESTDIR={b.prefix}", "install"], cwd=obj, step="install")
    # gate: the tools run, report the target, and assemble an object for it
    for tool in ("as", "ld", "ar", "objcopy", "strip"):
        out = subprocess.run([b.tool(tool), "--version"], capture_output=True, text=True).stdout
        if not out:
            raise gates.GateError(f"{tool} --version printed nothing", where=b.tool(tool))
    ld_targets = subprocess.run([b.tool("ld"), "-V"], capture_output=True, text=True).stdout
    test = clean_dir(b.work / "gate-binutils")
    (test / "empty.s").write_text(".text\n")
    sh.run([b.tool("as"), "empty.s", "-o", "empty.o"], cwd=test, step="gate")
    gates.target_object(test / "empty.o", b.target)
    if not ld_targets.strip():
        raise gates.GateError("ld -V lists no emulations", where=b.tool("ld"))


def _gcc_shadow_source(b: Build) -> Path:
    """gcc's source with gmp/mpfr/mpc beside it (built in-tree), as a folder of symlinks, so
    the shared, verified source tree is never modified and targets can build at once."""
    shadow = clean_dir(b.work / "src-gcc")
    gcc = b.src("gcc")
    for entry in gcc.iterdir():
        (shadow / entry.name).symlink_to(entry)
    for lib in ("gmp", "mpfr", "mpc"):
        (shadow / lib).symlink_to(b.src(lib))
    return shadow


def stage_gcc_core(b: Build, st: Status) -> None:
    sh = b.steps("gcc_core", st)
    shadow = _gcc_shadow_source(b)
    obj = clean_dir(b.work / "obj-gcc")
    (b.sysroot / "include").mkdir(parents=True, exist_ok=True)
    b.link_usr()
    sh.run([b.configure(shadow, obj), *b.gcc_flags()], cwd=obj, step="configure")
    sh.run(_make(b, *b.gcc_make_vars(), "all-gcc"), cwd=obj, step="make all-gcc")
    sh.run(["make", *b.gcc_make_vars(), f"DESTDIR={b.prefix}", "install-gcc"], cwd=obj, step="install-gcc")
    machine = subprocess.run([b.tool("gcc"), "-dumpmachine"], capture_output=True, text=True).stdout.strip()
    if machine != b.triple:
        raise gates.GateError(f"-dumpmachine says {machine!r}, expected {b.triple}", where=b.tool("gcc"))
    test = clean_dir(b.work / "gate-gcc-core")
    (test / "t.c").write_text("int answer(void) { return 42; }\n")
    sh.run([b.tool("gcc"), "-c", "t.c", "-o", "t.o"], cwd=test, step="gate")
    gates.target_object(test / "t.o", b.target)


def _musl_configure(b: Build, sh: Steps, obj: Path, libcc: str = "") -> None:
    """musl's configure takes the cross compiler from the environment (its make then reads
    config.mak, so the other steps run with the host environment)."""
    env = {**sh.env, "CC": b.tool("gcc"), "CFLAGS": b.target_cflags, "CROSS_COMPILE": f"{b.triple}-"}
    if libcc:
        env["LIBCC"] = libcc
    sh.run([b.configure(b.src("musl"), obj), *b.musl_flags()], cwd=obj, env=env, step="configure musl")


def stage_libgcc_static(b: Build, st: Status) -> None:
    """musl's headers into the sysroot, then a static-only libgcc that musl can link."""
    sh = b.steps("libgcc_static", st)
    obj = clean_dir(b.work / "obj-musl-headers")
    _musl_configure(b, sh, obj)
    sh.run(["make", f"DESTDIR={b.sysroot}", "install-headers"], cwd=obj, step="musl install-headers")
    shutil.rmtree(b.work / "obj-gcc" / b.triple / "libgcc", ignore_errors=True)
    sh.run(_make(b, "MAKE=make enable_shared=no", *b.gcc_make_vars(), "all-target-libgcc"),
           cwd=b.work / "obj-gcc", step="libgcc (static)")
    gates.target_archive(b.work / "obj-gcc" / b.triple / "libgcc" / "libgcc.a", b.target)


def stage_musl(b: Build, st: Status) -> None:
    sh = b.steps("musl", st)
    obj = clean_dir(b.work / "obj-musl")
    libcc = str(b.work / "obj-gcc" / b.triple / "libgcc" / "libgcc.a")
    _musl_configure(b, sh, obj, libcc)
    sh.run(_make(b, f"LIBCC={libcc}"), cwd=obj, step="make musl")
    sh.run(["make", f"DESTDIR={b.sysroot}", "install"], cwd=obj, step="install musl")
    lib = b.sysroot / "lib"
    gates.target_archive(lib / "libc.a", b.target, at_least=1000)
    for crt in ("crt1.o", "crti.o", "crtn.o", "Scrt1.o", "rcrt1.o"):
        gates.target_object(lib / crt, b.target)


def stage_gcc(b: Build, st: Status) -> None:
    """The rest of gcc (libgcc with libgcc_eh and libgcc_s, libstdc++, ...), from clean target
    library folders now that musl exists; then the static libgcc archives into the sysroot."""
    sh = b.steps("gcc", st)
    obj = b.work / "obj-gcc"
    shutil.rmtree(obj / b.triple, ignore_errors=True)
    # all-host all-target and install-host install-target are what `all` and `install` run, but
    # through a recursive make that would drop our make variables (MAKEOVERRIDES=)
    sh.run(_make(b, *b.gcc_make_vars(), "all-host", "all-target"), cwd=obj, step="make (target libraries)")
    sh.run(["make", *b.gcc_make_vars(), f"DESTDIR={b.prefix}", "installdirs", "install-host", "install-target"],
           cwd=obj, step="install")
    for la in b.prefix.rglob("*.la"):
        la.unlink()  # libtool archives: build paths inside, and nothing needs them for static links
    libgcc = Path(subprocess.run([b.tool("gcc"), "-print-libgcc-file-name"], capture_output=True,
                                 text=True, env=sh.env).stdout.strip())
    for name in ("libgcc.a", "libgcc_eh.a"):
        src = libgcc.parent / name
        gates.target_archive(src, b.target)
        shutil.copy2(src, b.sysroot / "lib" / name)
        gates.target_archive(b.sysroot / "lib" / name, b.target)


def stage_hello(b: Build, st: Status) -> None:
    """C and C++ programs linked -static and -static-pie: static ELF facts, and they run."""
    sh = b.steps("hello", st)
    test = clean_dir(b.work / "hello")
    (test / "hello.c").write_text(HELLO_C)
    (test / "hello.cc").write_text(HELLO_CXX)
    programs = [("gcc", "hello.c", "hello from C\n")]
    if "c++" in b.settings.languages:
        programs.append(("g++", "hello.cc", "hello from C++ and a thread\n"))
    for compiler, source, greeting in programs:
        for kind in ("static", "static-pie"):
            exe = test / f"{source.replace('.', '-')}-{kind}"
            sh.run([b.tool(compiler), f"-{kind}", "-O2", source, "-o", exe.name], cwd=test,
                   step=f"{compiler} -{kind}")
            gates.static_executable(exe, b.target, kind=kind)
            gates.runs([*b.runner, str(exe)], greeting, where=str(exe))


def stage_package(b: Build, st: Status) -> None:
    """env file, manifest and the reproducible tarball of the prefix."""
    st.step = "tarball"
    dest = package.package(b, write_report(b))
    check = subprocess.run(["bash", "-c", f'. "{b.prefix / package.ENV_FILE}" && command -v "$CC"'],
                           capture_output=True, text=True)
    if os.path.realpath(check.stdout.strip()) != os.path.realpath(b.tool("gcc")):
        raise gates.GateError(f"sourcing it gives CC at {check.stdout.strip()!r}, expected {b.tool('gcc')}",
                              where=str(b.prefix / package.ENV_FILE))
    with tarfile.open(dest) as tar:
        names = tar.getnames()
    if f"{names[0]}/bin/{b.triple}-gcc" not in names:
        raise gates.GateError(f"has no bin/{b.triple}-gcc", where=str(dest))
    print(f"[{b.target.name}] tarball {dest} ({dest.stat().st_size >> 20} MiB, {len(names)} entries)")


@dataclass(frozen=True)
class Stage:
    """One build stage, declared once. doit's task family (its doc, a subtask per target), the
    graph (`reads`: packages whose source trees it reads; `after`: stages before it) and what
    makes it stale (`config`: the values it uses besides files; `code`: the functions and
    modules whose text it runs; `probe`: machine facts checked lazily) all come from here."""

    name: str
    doc: str
    run: Callable[[Build, Status], None]
    reads: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    config: Callable[[Build], dict] = lambda b: {}
    code: tuple = ()
    probe: Callable[[Build], dict] | None = None
    makes: str = ""          # what it leaves behind, for the README's task table


def _rust_config(b: Build) -> dict:
    return {"rust": [b.target.rust_target, rust.HELLO, rust.UNWIND, rust.UNWIND_OUTPUT, rust.CARGO_TOML]}


def _gcc_config(b: Build) -> dict:
    return {"configure": b.gcc_flags(), "make": b.gcc_make_vars()}


def _musl_config(b: Build) -> dict:
    return {"configure": b.musl_flags(), "make": b.gcc_make_vars()}


STAGES = (
    Stage("binutils", "binutils for the target, installed into its prefix", stage_binutils,
          reads=("binutils",), config=lambda b: {"configure": b.binutils_flags()}, code=(_make,),
          makes="`out/toolchains/<arch>/bin`"),
    Stage("gcc_core", "gcc's compiler proper (make all-gcc), gmp/mpfr/mpc built in-tree", stage_gcc_core,
          reads=("gcc", "gmp", "mpfr", "mpc"), after=("binutils",),
          config=_gcc_config,
          code=(_make, _gcc_shadow_source), makes="the compiler driver and cc1"),
    Stage("libgcc_static", "musl's headers, then a static-only libgcc for building musl", stage_libgcc_static,
          reads=("musl",), after=("gcc_core",), config=_musl_config, code=(_make, _musl_configure)),
    Stage("musl", "musl libc into the sysroot (crt objects, libc.a, libc.so)", stage_musl,
          reads=("musl",), after=("libgcc_static",), config=_musl_config, code=(_make, _musl_configure),
          makes="the sysroot's libc"),
    Stage("gcc", "the rest of gcc: libgcc (with libgcc_eh), libstdc++; static libgcc into the sysroot",
          stage_gcc, after=("musl",), config=_gcc_config,
          code=(_make,), makes="C and C++ compilers; the static libgcc archives in the sysroot's lib"),
    Stage("hello", "C and C++ hello-worlds, -static and -static-pie: static ELF gates, run under qemu",
          stage_hello, after=("gcc",),
          config=lambda b: {"programs": [HELLO_C, HELLO_CXX, b.runner, list(b.settings.languages)]}),
    Stage("ncurses", "wide-character ncurses, static, with terminfo for common terminals, into the sysroot",
          libs.stage_ncurses, reads=("ncurses",), after=("gcc",),
          config=lambda b: {"configure": libs.NCURSES_FLAGS, "make": libs.NCURSES_MAKE,
                            "terminals": list(libs.TERMINALS)}, code=(libs,)),
    Stage("libedit", "libedit (readline API) against ncurses, static, into the sysroot; a test program runs",
          libs.stage_libedit, reads=("libedit",), after=("ncurses",),
          config=lambda b: {"configure": libs.LIBEDIT_FLAGS,
                            "test": [libs.TEST_PROGRAM, libs.TEST_INPUT, libs.TEST_OUTPUT], "runner": b.runner},
          code=(libs,)),
    Stage("rust_std", "the target's Rust std: rustup's, or built offline once from Debian's Rust source",
          rust.stage_rust_std, after=("gcc",),
          config=lambda b: {"rust_std": [b.target.rust_target, "std,panic_unwind"]}, code=(rust,), probe=rust.probe,
          makes="`lib/rust/` in the prefix"),
    Stage("rust", "Rust hello and unwinding test linked by our gcc against our musl (std from rustup or "
          "built offline from Debian's Rust source)", rust.stage_rust, after=("rust_std",),
          config=_rust_config, code=(rust,), probe=rust.probe,
          makes="cargo config and env file; a message, not a failure, without Rust"),
    Stage("rust_obj", "the seed-004 way: rustc --emit=obj, linked by gcc -nodefaultlibs ... -lgcc_eh -lc",
          rust.stage_rust_obj, after=("rust",), config=_rust_config, code=(rust,), probe=rust.probe),
    Stage("package", "env file, manifest and tarball of the target's toolchain", stage_package,
          reads=("binutils",), after=("hello", "libedit", "rust_obj"), code=(package,), makes="`out/dist/`"),
)
BY_NAME = {s.name: s for s in STAGES}
COMMON_CODE = (Build, Steps, run, clean_dir, gates)   # every stage runs through these


def _code_hash(stage: Stage) -> str:
    """The text of everything the stage runs: an edit re-runs it (and what comes after)."""
    h = hashlib.sha256()
    for obj in (*COMMON_CODE, stage.run, *stage.code):
        h.update(inspect.getsource(obj).encode())
    return h.hexdigest()


def stage_config(b: Build, name: str) -> dict:
    """What a stage reads besides files (for doit's config_changed): the target, the host
    environment, its own values and the hash of its code."""
    stage = BY_NAME[name]
    return {"target": b.target.name, "triple": b.triple, "host_flags": b.env()["CFLAGS"],
            "host_env": list(HOST_ENV), "prefix": str(b.prefix), **stage.config(b), "code": _code_hash(stage)}


def execute(b: Build, name: str) -> None:
    """Run one stage from a clean state; write its stamp only after its gates passed."""
    stage = BY_NAME[name]
    stamp = b.stamp(name)
    stamp.unlink(missing_ok=True)
    log = b.log(name)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    started = time.time()
    with Status(f"{b.target.name} {name}") as st:
        stage.run(b, st)
        elapsed = st.elapsed()
    record = {"stage": name, "target": b.target.name, "seconds": round(elapsed, 1),
              "started": started, "log": str(log), "probe": stage.probe(b) if stage.probe else None,
              "versions": {p: v.version for p, v in b.versions.items()},
              "config": stage_config(b, name)}
    write_json(stamp, record)
    write_report(b)
    print(f"[{b.target.name}] {name}: done in {elapsed:.0f} s, gates passed (log {log})", flush=True)


def probe_unchanged(b: Build, name: str) -> bool:
    """For doit: the machine facts the stage was built with are still the same."""
    try:
        return json.loads(b.stamp(name).read_text()).get("probe") == BY_NAME[name].probe(b)
    except (OSError, ValueError):
        return False


def write_report(b: Build) -> dict:
    """The target's build report: each finished stage's wall time, versions and flags."""
    stages = {}
    for name in BY_NAME:
        try:
            stages[name] = json.loads(b.stamp(name).read_text())
        except (OSError, ValueError):
            continue
    report = {"target": b.target.name, "triple": b.triple, "prefix": str(b.prefix),
              "versions": {p: v.version for p, v in b.versions.items()},
              "stages": {n: {"seconds": s["seconds"], "config": s["config"]} for n, s in stages.items()},
              "total_seconds": round(sum(s["seconds"] for s in stages.values()), 1)}
    write_json(b.work / "report.json", report)
    return report
