"""ELF facts through pyelftools, ar archives read by hand (pyelftools has no ar reader), and
the plain-words verdict on whether a binary runs on another Linux of its architecture."""
from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection
from elftools.elf.sections import NoteSection

from .errors import ToolchainError

EF_ARM_ABI_FLOAT_SOFT = 0x200
EF_ARM_ABI_FLOAT_HARD = 0x400
DF_1_PIE = 0x08000000


class NotElf(ToolchainError):
    pass


@dataclass
class Facts:
    name: str
    elf_class: int
    machine: str
    e_type: str
    interpreter: str = ""
    needed: list[str] = field(default_factory=list)
    runpath: list[str] = field(default_factory=list)
    rpath: list[str] = field(default_factory=list)
    float_abi: str = ""          # ARM: hard / soft / "" (not ARM or not said)
    eabi_version: int = 0        # ARM EABI version from e_flags
    glibc_max: str = ""          # highest GLIBC_x.y symbol version needed
    min_kernel: str = ""         # from the GNU ABI note (glibc binaries), e.g. "3.2.0"
    pie_flag: bool = False

    @property
    def linkage(self) -> str:
        if self.e_type == "ET_REL":
            return "object"
        if self.interpreter or self.needed:
            return "dynamic"
        if self.e_type == "ET_EXEC":
            return "static"
        if self.e_type == "ET_DYN":
            return "static-pie" if self.pie_flag else "shared library"
        return self.e_type

    @property
    def portable(self) -> bool:
        return self.linkage in ("static", "static-pie")


def facts(data: bytes | Path, name: str = "") -> Facts:
    """Facts of one ELF file (bytes or path)."""
    if isinstance(data, Path):
        name = name or str(data)
        try:
            data = data.read_bytes()
        except OSError as e:
            raise NotElf(f"cannot read: {e.strerror}", where=name) from None
    if data[:4] != b"\x7fELF":
        raise NotElf("not an ELF file", where=name)
    try:
        elf = ELFFile(io.BytesIO(data))
        f = Facts(name, elf.elfclass, elf.header.e_machine, elf.header.e_type)
        if f.machine == "EM_ARM":
            flags = elf.header.e_flags
            f.eabi_version = (flags >> 24) & 0xFF
            f.float_abi = "hard" if flags & EF_ARM_ABI_FLOAT_HARD else "soft" if flags & EF_ARM_ABI_FLOAT_SOFT else ""
        for seg in elf.iter_segments():
            if seg.header.p_type == "PT_INTERP":
                f.interpreter = seg.get_interp_name()
        for sec in elf.iter_sections():
            if isinstance(sec, DynamicSection):
                for tag in sec.iter_tags():
                    t = tag.entry.d_tag
                    if t == "DT_NEEDED":
                        f.needed.append(tag.needed)
                    elif t == "DT_RUNPATH":
                        f.runpath += tag.runpath.split(":")
                    elif t == "DT_RPATH":
                        f.rpath += tag.rpath.split(":")
                    elif t == "DT_FLAGS_1" and tag.entry.d_val & DF_1_PIE:
                        f.pie_flag = True
            elif isinstance(sec, NoteSection):
                for note in sec.iter_notes():
                    if note["n_type"] == "NT_GNU_ABI_TAG" and note["n_desc"]["abi_os"] == "ELF_NOTE_OS_LINUX":
                        d = note["n_desc"]
                        f.min_kernel = f"{d['abi_major']}.{d['abi_minor']}.{d['abi_tiny']}"
            elif isinstance(sec, GNUVerNeedSection):
                versions = [aux.name for _, auxes in sec.iter_versions() for aux in auxes]
                glibc = [v for v in versions if re.fullmatch(r"GLIBC_\d+(\.\d+)*", v)]
                if glibc:
                    f.glibc_max = max(glibc, key=lambda v: tuple(int(x) for x in v[6:].split(".")))
        return f
    except (ELFError, ValueError, KeyError) as e:
        raise NotElf(f"damaged ELF file: {e}", where=name) from None


def ar_members(path: Path) -> list[tuple[str, bytes]]:
    """(name, bytes) of each member of a System V / GNU ar archive (e.g. libc.a)."""
    data = path.read_bytes()
    if not data.startswith(b"!<arch>\n"):
        raise NotElf("not an ar archive", where=str(path))
    members, pos, longnames = [], 8, b""
    while pos + 60 <= len(data):
        header = data[pos:pos + 60]
        name = header[:16].decode(errors="replace").rstrip()
        size = int(header[48:58].decode().strip() or 0)
        body = data[pos + 60:pos + 60 + size]
        pos += 60 + size + (size & 1)
        if name == "//":
            longnames = body
            continue
        if name in ("/", "/SYM64/"):
            continue
        if name.startswith("/") and name[1:].isdigit():
            start = int(name[1:])
            name = longnames[start:longnames.index(b"/\n", start)].decode(errors="replace")
        members.append((name.rstrip("/"), body))
    return members


def verdict(f: Facts) -> list[str]:
    """Plain words: does it run on another Linux of its architecture, and if not, why."""
    arch = f"{f.machine.removeprefix('EM_')} ({f.elf_class}-bit)"
    kernel = f" {f.min_kernel} or newer" if f.min_kernel else ""
    if f.linkage == "static":
        return [f"static: runs on any Linux kernel{kernel} for {arch}; needs no libc, loader or "
                "libraries there"]
    if f.linkage == "static-pie":
        return [f"static-pie: runs on any Linux kernel{kernel} for {arch} (position independent, "
                "relocates itself; needs no loader or libraries)"]
    if f.linkage == "object":
        return ["an object file, not a program: link it first"]
    if f.linkage == "shared library":
        return ["a shared library, not a program"]
    why = ["dynamic: it runs only where these are present:"]
    if f.interpreter:
        why.append(f"- the program interpreter {f.interpreter} (missing on NixOS and other non-FHS "
                   "systems, and on any machine with a different libc, e.g. musl vs glibc)")
    if f.needed:
        why.append(f"- shared libraries: {', '.join(f.needed)}")
    if f.glibc_max:
        why.append(f"- glibc {f.glibc_max[6:]} or newer (older distributions fail with "
                   f"'version `{f.glibc_max}' not found')")
    for p in f.runpath + f.rpath:
        if p.startswith("/nix/store") or (p.startswith("/") and not p.startswith(("/usr", "/lib"))):
            why.append(f"- libraries under {p} (a build machine path)")
    return why


def report(f: Facts) -> str:
    lines = [f"{f.name}:",
             f"  class        ELF{f.elf_class}",
             f"  machine      {f.machine}",
             f"  type         {f.e_type} ({f.linkage})"]
    if f.machine == "EM_ARM":
        lines.append(f"  float ABI    {f.float_abi or 'unspecified'} (EABI version {f.eabi_version})")
    lines += [f"  interpreter  {f.interpreter or '-'}",
              f"  NEEDED       {', '.join(f.needed) or '-'}",
              f"  RUNPATH      {':'.join(f.runpath) or '-'}",
              f"  RPATH        {':'.join(f.rpath) or '-'}",
              f"  glibc        {f.glibc_max or '-'}",
              f"  min. kernel  {f.min_kernel or '-'}"]
    lines += ["  verdict      " + verdict(f)[0]] + ["               " + w for w in verdict(f)[1:]]
    return "\n".join(lines)
