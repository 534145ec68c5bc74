"""Gates: the checks a build stage must pass before it counts as done. Each failure names the
file and the fact that was wrong."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from . import elf
from ..errors import ToolchainError
from ..sources.recipes import Target


class GateError(ToolchainError):
    pass


def _machine_and_class(f: elf.Facts, target: Target) -> None:
    """The ELF facts the target's row in recipes/targets.yaml asks for."""
    if f.machine != target.elf_machine:
        raise GateError(f"e_machine is {f.machine}, expected {target.elf_machine}", where=f.name)
    if f.elf_class != target.elf_class:
        raise GateError(f"ELF class is {f.elf_class}-bit, expected {target.elf_class}-bit", where=f.name)
    if f.endian != target.endian:
        raise GateError(f"is {f.endian}-endian, expected {target.endian}-endian", where=f.name)
    # objects from assembly alone (crti.o) say no float ABI: checked on linked programs
    if target.float_abi and f.e_type != "ET_REL" and f.float_abi != target.float_abi:
        raise GateError(f"float ABI is {f.float_abi or 'unspecified'}, expected {target.float_abi}",
                        where=f.name, fix="gcc must default to the target's float ABI (gcc_configure)")
    if target.eabi and f.eabi != target.eabi:
        raise GateError(f"ARM EABI version is {f.eabi}, expected {target.eabi}", where=f.name)
    if target.elf_abi and f.e_type != "ET_REL" and f.elf_abi != target.elf_abi:
        raise GateError(f"ELF ABI version is {f.elf_abi}, expected {target.elf_abi}", where=f.name)


def target_object(path: Path, target: Target) -> elf.Facts:
    """A relocatable object (e.g. crt1.o) for the target's machine and class."""
    f = elf.facts(Path(path))
    if f.e_type != "ET_REL":
        raise GateError(f"is {f.e_type}, expected a relocatable object", where=f.name)
    _machine_and_class(f, target)
    return f


def target_archive(path: Path, target: Target, *, at_least: int = 1) -> int:
    """Every member of a static library is an object for the target; returns the count."""
    path = Path(path)
    if not path.is_file():
        raise GateError("missing", where=str(path))
    members = elf.ar_members(path)
    objects = 0
    for name, data in members:
        if not name.endswith((".o", ".lo", ".obj")) and data[:4] != b"\x7fELF":
            continue
        f = elf.facts(data, f"{path}({name})")
        if f.e_type != "ET_REL":
            raise GateError(f"member is {f.e_type}, expected a relocatable object", where=f.name)
        _machine_and_class(f, target)
        objects += 1
    if objects < at_least:
        raise GateError(f"holds {objects} objects, expected at least {at_least}", where=str(path))
    return objects


def static_executable(path: Path, target: Target, *, kind: str = "") -> elf.Facts:
    """No PT_INTERP, no DT_NEEDED, the target's machine/class/float ABI, and the linkage `kind`
    ("static" or "static-pie"; either when not given)."""
    f = elf.facts(Path(path))
    if f.interpreter:
        raise GateError(f"has an interpreter (PT_INTERP {f.interpreter}): it is dynamically linked",
                        where=f.name, fix="link with -static / -static-pie and only static libraries")
    if f.needed:
        raise GateError(f"needs shared libraries (DT_NEEDED {', '.join(f.needed)})", where=f.name)
    _machine_and_class(f, target)
    if f.linkage != kind and not (not kind and f.portable):
        raise GateError(f"is {f.linkage}, expected {kind or 'static or static-pie'}", where=f.name)
    return f


def runs(cmd: list[str], expected: str, *, where: str, timeout: float = 120, stdin: str | None = None,
         env: dict[str, str] | None = None) -> str:
    """Run a target program (natively or under qemu-user) and compare its output."""
    # the program (qemu-user) is looked up in our PATH: `env` is the target program's own
    # environment, often a bare PATH=/usr/bin:/bin that would miss a newer qemu put first
    program = shutil.which(cmd[0]) or cmd[0]
    try:
        r = subprocess.run([program, *cmd[1:]], capture_output=True, text=True, timeout=timeout,
                           input=stdin or "", env=env)
    except FileNotFoundError:
        raise GateError(f"cannot run {cmd[0]}", where=where,
                        fix="install qemu-user-static (./bootstrap does)") from None
    except subprocess.TimeoutExpired:
        raise GateError(f"did not finish in {timeout:.0f} s", where=where) from None
    if r.returncode != 0 or r.stdout != expected:
        raise GateError(f"printed {r.stdout!r} (exit {r.returncode}), expected {expected!r}"
                        + (f"; stderr: {r.stderr.strip()[:300]}" if r.stderr.strip() else ""), where=where)
    return r.stdout


def elf_files(root: Path, skip: Path | None = None):
    """(path, facts) of every regular ELF file under root (symlinks not followed), leaving
    out the folder `skip`."""
    for top, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if Path(top, d) != skip]
        for name in sorted(files):
            path = Path(top, name)
            if path.is_symlink() or not path.is_file():
                continue
            with open(path, "rb") as f:
                if f.read(4) != b"\x7fELF":
                    continue
            yield path, elf.facts(path)


def static_host_programs(prefix: Path, machine: str, elf_class: int, *, skip: Path,
                         programs: tuple[str, ...] = ("bin", "libexec")) -> int:
    """Every ELF file under prefix (but `skip`, the target's sysroot) for the host's machine
    and class is static: no PT_INTERP, no DT_NEEDED; and every ELF file in the `programs`
    folders is for the host (not, say, a program for the build machine in a toolchain for
    another). Returns how many were checked; the error names every file that fails."""
    checked, dynamic, foreign = 0, [], []
    for path, fa in elf_files(prefix, skip):
        if fa.machine != machine or fa.elf_class != elf_class or fa.e_type == "ET_REL":
            if path.relative_to(prefix).parts[0] in programs:
                foreign.append(f"{path.relative_to(prefix)} ({fa.machine}, ELF{fa.elf_class}, {fa.e_type})")
            continue
        checked += 1
        if fa.linkage == "dynamic":
            dynamic.append(f"{path.relative_to(prefix)} ({fa.interpreter or 'DT_NEEDED ' + ', '.join(fa.needed)})")
    if foreign:
        raise GateError(f"{len(foreign)} files among the programs are not for {machine} ELF{elf_class}: "
                        + ", ".join(foreign[:20]), where=str(prefix),
                        fix="install only programs compiled by the stage-0 compiler there")
    if dynamic:
        raise GateError(f"{len(dynamic)} host programs are not static: " + ", ".join(dynamic[:20]),
                        where=str(prefix), fix="build them with the stage-0 compiler's -static --static")
    if not checked:
        raise GateError(f"no {machine} programs found to check", where=str(prefix))
    return checked
