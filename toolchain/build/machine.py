"""The build machine, and how a target's programs run on it: natively when the target is
the build machine's own kind (same e_machine, class and byte order as the Python running
this), else under qemu-user. Derived, not written in targets.yaml, so that an aarch64
builder runs x86_64 programs under qemu and its own natively."""
from __future__ import annotations

import functools
import os
import platform
import sys
from pathlib import Path

from ..checks import elf
from ..sources.recipes import Target


@functools.lru_cache(maxsize=None)
def build_machine() -> tuple[str, int, str]:
    """(e_machine, ELF class, endianness) of this machine's own programs."""
    f = elf.facts(Path(sys.executable).resolve())
    return str(f.machine), f.elf_class, f.endian


def runs_natively(target: Target) -> bool:
    return (target.elf_machine, target.elf_class, target.endian) == build_machine()


def qemu_program(target: Target) -> str:
    """The name of the target's qemu-user program: the first in PATH order of
    qemu-<machine>-static (Debian 12 and older) and qemu-<machine> (Debian 13's qemu-user,
    whose programs are static too), so a newer qemu put first in PATH wins."""
    names = (f"qemu-{target.qemu}-static", f"qemu-{target.qemu}")
    for folder in os.get_exec_path():
        for name in names:
            if os.access(os.path.join(folder, name), os.X_OK):
                return name
    return names[0]


def runner(target: Target) -> list[str]:
    """The command prefix that runs one of the target's programs here."""
    if runs_natively(target):
        return []
    return [qemu_program(target), *(["-cpu", target.qemu_cpu] if target.qemu_cpu else [])]


def build_triple() -> str:
    """The build machine as a GNU triple that never equals a target's, even one of the same
    machine (x86_64-linux-musl): configure must not take a portable x86_64 toolchain for a
    native one (unprefixed program names). crosstool-NG marks its build triple the same way."""
    return f"{platform.machine()}-build_pc-linux-gnu"
