"""binutils for the target, installed into its prefix."""
from __future__ import annotations

import subprocess
from pathlib import Path

from ...checks import gates
from ..context import Build
from ..runner import Status, clean_dir
from ..stage import CANADIAN, HERE, Stage

FLAGS = ["--disable-nls", "--disable-werror", "--disable-multilib", "--disable-gprofng",
         "--disable-gdb", "--disable-gdbserver", "--disable-sim", "--disable-readline",
         "--enable-deterministic-archives"]
# static programs cannot dlopen (musl's static dlopen fails), so no plugin support; and no
# optional libraries the build machine may have (pkg-config would find its own)
STATIC_FLAGS = ["--disable-plugins", "--without-zstd", "--without-debuginfod", "--without-msgpack"]
# MAKEINFO=true: Debian's binutils repack has no prebuilt manuals; we install none
MAKE_VARS = ["MAKEINFO=true"]


def configure_flags(b: Build) -> list[str]:
    return [f"--target={b.triple}", "--prefix=", f"--with-sysroot=/{b.triple}", *FLAGS,
            *(STATIC_FLAGS if b.stage0 else []), *b.host_configure()]


def run(b: Build, st: Status) -> None:
    obj = clean_dir(b.work / "obj-binutils")
    sh = b.steps("binutils", st, b.host_env())
    sh.run([b.configure(b.src("binutils"), obj), *configure_flags(b)], cwd=obj, step="configure")
    sh.run(b.make(*MAKE_VARS), cwd=obj, step="make")
    sh.run(["make", *MAKE_VARS, f"DESTDIR={b.prefix}", "install"], cwd=obj, step="install")
    if b.kind == CANADIAN:     # they run on the other machine only: static programs for it
        for tool in ("as", "ld", "ar", "objcopy", "strip"):
            gates.static_executable(Path(b.tool(tool)), b.stage0.target, kind="static")
        return
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


STAGES = (
    Stage("binutils", "binutils for the target, installed into its prefix", run,
          reads=("binutils",), config=lambda b: {"configure": configure_flags(b), "make": MAKE_VARS, "host": b.host_compiler()},
          makes="`out/toolchains/<arch>/bin`", builds=(HERE, CANADIAN),
          # beside gcc_libs, whose configure scripts, one after another, leave a core idle that
          # binutils' parallel make fills; gcc_core waits for both (aarch64: gcc_libs started
          # 50 s late behind unpacking and ran them alone at the end)
          nice=10),
)
