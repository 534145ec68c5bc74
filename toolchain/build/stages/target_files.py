"""A canadian build's target files: the sysroot (musl, Linux's headers, libstdc++, ncurses,
libedit), gcc's target libraries and Rust's std, copied from the same target's toolchain for
the build machine (its twin), which built and gated them. Only the toolchain's own programs
are then compiled for the other machine; the target code is the twin's, byte for byte."""
from __future__ import annotations

import shutil
from pathlib import Path

from ...checks import gates
from ..context import Build
from ..runner import Status
from ..stage import CANADIAN, Stage


def copied(b: Build) -> list[tuple[str, tuple[str, ...]]]:
    """What is copied: a folder of the twin's prefix, and the names left out under it (the
    twin's own programs: binutils' unprefixed ones in <triple>/bin; gcc's plugin headers,
    since a static gcc loads no plugins)."""
    gcc = b.versions["gcc"].version
    return [(b.triple, ("bin",)), (f"lib/gcc/{b.triple}/{gcc}", ("plugin",)),
            ("lib/rust", ()), (f"share/gcc-{gcc}", ())]


def foreign_files(root: Path, b: Build) -> list[str]:
    """ELF files under root that are not for the target (its machine and class)."""
    return [f"{path.relative_to(root)} ({fa.machine}, ELF{fa.elf_class})" for path, fa in gates.elf_files(root)
            if (fa.machine, fa.elf_class) != (b.target.elf_machine, b.target.elf_class)]


def run(b: Build, st: Status) -> None:
    twin = b.twin.prefix
    if b.prefix.exists():      # an earlier attempt; out/toolchains/<name> is this tool's own
        shutil.rmtree(b.prefix)
    b.prefix.mkdir(parents=True)
    for folder, leave_out in copied(b):
        src = twin / folder
        if not src.is_dir():
            continue            # lib/rust: only where the target has Rust's std
        st.step = f"copy {folder}"
        shutil.copytree(src, b.prefix / folder, symlinks=True, ignore=lambda d, names, src=src, out=leave_out:
                        [n for n in names if Path(d) == src and n in out])
    if not (b.sysroot / "lib" / "libc.a").is_file():
        raise gates.GateError("the copied sysroot has no lib/libc.a", where=str(twin / b.triple),
                              fix=f"build toolchain:{b.target.name} first (a doit dependency)")
    strays = foreign_files(b.prefix, b)
    if strays:
        raise gates.GateError(f"{len(strays)} copied files are not for {b.triple}: " + ", ".join(strays[:20]),
                              where=str(twin))


STAGES = (
    Stage("target_files", "a canadian build's sysroot and target libraries, copied from the same target's "
          "toolchain for the build machine", run, config=lambda b: {"copied": copied(b)},
          makes="the sysroot of a toolchain for another machine", builds=(CANADIAN,)),
)
