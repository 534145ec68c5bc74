"""ELF facts through pyelftools, ar archives read by hand (pyelftools has no ar reader), and
the plain-words verdict on whether a binary runs on another Linux of its architecture."""
from __future__ import annotations

import io
import os
import re
import stat
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection
from elftools.elf.sections import NoteSection

from ..errors import ToolchainError

DF_1_PIE = 0x08000000

# What e_flags say, per machine: the facts a target row in recipes/targets.yaml may require
# (float_abi, eabi). Machines not listed carry no such facts.
E_FLAGS = {
    "EM_ARM": {"eabi": lambda fl: (fl >> 24) & 0xFF,
               "float_abi": lambda fl: "hard" if fl & 0x400 else "soft" if fl & 0x200 else ""},
    "EM_RISCV": {"float_abi": lambda fl: ("soft", "single", "double", "quad")[(fl >> 1) & 3]},
    "EM_LOONGARCH": {"float_abi": lambda fl: {1: "soft", 2: "single", 3: "double"}.get(fl & 7, "")},
    "EM_PPC64": {"elf_abi": lambda fl: fl & 3},
}


class NotElf(ToolchainError):
    pass


@dataclass
class Facts:
    name: str
    elf_class: int
    machine: str | int           # "EM_X86_64"; the number when pyelftools does not know it
    e_type: str | int
    interpreter: str = ""
    needed: list[str] = field(default_factory=list)
    runpath: list[str] = field(default_factory=list)
    rpath: list[str] = field(default_factory=list)
    endian: str = "little"
    float_abi: str = ""          # from e_flags (ARM, RISC-V, LoongArch); "" where not said
    eabi: int = 0                # ARM EABI version from e_flags
    elf_abi: int = 0             # PowerPC64 ABI version from e_flags (1: ELFv1, 2: ELFv2)
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
        return str(self.e_type)

    @property
    def portable(self) -> bool:
        return self.linkage in ("static", "static-pie")


def facts(data: bytes | Path, name: str = "") -> Facts:
    """Facts of one ELF file (bytes, e.g. an ar member, or a path). A path is looked at with
    stat first: opening a FIFO would block and /dev/zero never ends. Only headers and the few
    sections that matter are read, so a 4 GiB file costs what its headers cost."""
    if not isinstance(data, Path):
        return _parse(io.BytesIO(data), name)
    name = name or str(data)
    try:
        st = os.stat(data)
        if not stat.S_ISREG(st.st_mode):
            raise NotElf(f"not a regular file ({_KINDS.get(stat.S_IFMT(st.st_mode), 'unknown kind')})",
                         where=name)
        # O_NONBLOCK: a FIFO swapped in after the stat must not block us either
        with open(os.open(data, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY), "rb") as file:
            if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                raise NotElf("not a regular file (it changed while being read)", where=name)
            return _parse(file, name)
    except (OSError, ValueError) as e:  # ValueError: a NUL in the name
        raise NotElf(f"cannot read: {getattr(e, 'strerror', None) or e}", where=name) from None


_KINDS = {stat.S_IFDIR: "a directory", stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket"}
LIMIT = 1000            # sections, segments, notes, dynamic tags, versions examined (per table)
READ_BYTES = 16 << 20   # what pyelftools may read of one file, in all
READ_CALLS = 100_000    # in how many reads (a struct field is one read)


class _Capped:
    """The file as pyelftools sees it. pyelftools trusts the sizes and counts in the file (a
    note or string table claiming gigabytes, e_shnum huge, a dynamic table without DT_NULL),
    so a hostile file could make it allocate or loop for ever; this budget ends that as an
    error, which facts() reports as a damaged file."""

    def __init__(self, file):
        self.file, self.bytes, self.calls = file, READ_BYTES, READ_CALLS
        self.seek, self.tell = file.seek, file.tell

    def read(self, n: int = -1) -> bytes:
        self.calls -= 1
        if n is None or n < 0 or n > self.bytes or self.calls < 0:
            raise ELFError("sizes or counts that lie: too much to read")
        data = self.file.read(n) or b""
        self.bytes -= len(data)
        return data


def _parse(file, name: str) -> Facts:
    if file.read(4) != b"\x7fELF":
        raise NotElf("not an ELF file", where=name)
    size = file.seek(0, io.SEEK_END)
    try:
        elf = ELFFile(_Capped(file))
        f = Facts(name, elf.elfclass, elf.header.e_machine, elf.header.e_type,
                  endian="little" if elf.little_endian else "big")
        for fact, decode in E_FLAGS.get(f.machine, {}).items():
            setattr(f, fact, decode(elf.header.e_flags))
        # headers first (pyelftools 0.33, pinned), and only the sections we need built: its
        # iterators build every section (hash tables read in full), a PT_DYNAMIC segment all of them
        for i in range(min(elf.num_segments(), LIMIT)):
            h = elf._get_segment_header(i)
            if h.p_type == "PT_INTERP":
                f.interpreter = _interp(file, size, h)
        for i in range(min(elf.num_sections(), LIMIT)):
            h = elf._get_section_header(i)
            if h.sh_type not in ("SHT_DYNAMIC", "SHT_NOTE", "SHT_GNU_verneed"):
                continue
            if h.sh_offset + h.sh_size > size:
                raise ELFError(f"section {i} ({h.sh_type}) runs past the end of the file")
            sec = elf.get_section(i)
            if isinstance(sec, DynamicSection):
                for tag in islice(sec.iter_tags(), LIMIT):
                    t = tag.entry.d_tag
                    if t == "DT_NEEDED":
                        f.needed.append(_text(tag.needed))
                    elif t == "DT_RUNPATH":
                        f.runpath += _text(tag.runpath).split(":")
                    elif t == "DT_RPATH":
                        f.rpath += _text(tag.rpath).split(":")
                    elif t == "DT_FLAGS_1" and tag.entry.d_val & DF_1_PIE:
                        f.pie_flag = True
            elif isinstance(sec, NoteSection):
                for note in islice(sec.iter_notes(), LIMIT):
                    # other systems (FreeBSD, ...) use the same n_type; GNU's desc is 16 bytes
                    gnu = note["n_name"] == "GNU" and note["n_descsz"] >= 16 and note["n_type"] == "NT_GNU_ABI_TAG"
                    if gnu and note["n_desc"]["abi_os"] == "ELF_NOTE_OS_LINUX":
                        d = note["n_desc"]
                        f.min_kernel = f"{d['abi_major']}.{d['abi_minor']}.{d['abi_tiny']}"
            elif isinstance(sec, GNUVerNeedSection):
                versions = [_text(aux.name) for _, auxes in islice(sec.iter_versions(), LIMIT)
                            for aux in islice(auxes, LIMIT)]
                glibc = [v for v in versions if re.fullmatch(r"GLIBC_\d{1,9}(\.\d{1,9})*", v)]
                if glibc:
                    f.glibc_max = max(glibc, key=lambda v: tuple(int(x) for x in v[6:].split(".")))
        return f
    except Exception as e:  # noqa: BLE001 - pyelftools fails in many ways (struct.error, KeyError, ...)
        why = _text(str(e).strip().partition("\n")[0], 200)
        if not isinstance(e, ELFError):
            why = f"{type(e).__name__}{': ' if why else ''}{why}"
        raise NotElf(f"damaged ELF file: {why}", where=name) from None


def _interp(file, size: int, h) -> str:
    """PT_INTERP read by hand: pyelftools reads it a byte at a time up to a NUL, however far."""
    if h.p_filesz > 4096 or h.p_offset + h.p_filesz > size:
        raise ELFError(f"PT_INTERP of {h.p_filesz} bytes at offset {h.p_offset}")
    file.seek(h.p_offset)
    return _text(file.read(h.p_filesz).partition(b"\0")[0].decode("utf-8", "replace"))


def _text(s: str, most: int = 1000) -> str:
    """A string from the file, safe to print in a CI log: printable ASCII (no terminal escapes,
    no newlines), not too long."""
    safe = "".join(c if " " <= c <= "~" else c.encode("unicode_escape").decode() for c in s[:most])
    return safe + "..." if len(s) > most else safe


def has_lto(path: Path) -> bool:
    """Whether an object holds gcc's LTO bytecode (.gnu.lto_* sections), as -flto makes it."""
    with open(path, "rb") as f:
        try:
            e = ELFFile(_Capped(f))
            return any(s.name.startswith(".gnu.lto_") for s in islice(e.iter_sections(), LIMIT))
        except ELFError as err:
            raise NotElf(f"damaged ELF file: {err}", where=str(path)) from None


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
    arch = f"{_machine(f).removeprefix('EM_')} ({f.elf_class}-bit)"
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
    if f.linkage != "dynamic":
        return [f"not a program (e_type {f.e_type})"]
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


def _machine(f: Facts) -> str:
    """pyelftools names the machines it knows and gives the number of the others."""
    return f.machine if isinstance(f.machine, str) else f"e_machine {f.machine:#x}"


def report(f: Facts) -> str:
    lines = [f"{f.name}:",
             f"  class        ELF{f.elf_class}",
             f"  machine      {_machine(f)}",
             f"  type         {f.e_type} ({f.linkage})"]
    if f.machine in E_FLAGS:
        lines.append(f"  float ABI    {f.float_abi or 'unspecified'}"
                     + (f" (EABI version {f.eabi})" if f.machine == "EM_ARM" else ""))
    lines += [f"  interpreter  {f.interpreter or '-'}",
              f"  NEEDED       {', '.join(f.needed) or '-'}",
              f"  RUNPATH      {':'.join(f.runpath) or '-'}",
              f"  RPATH        {':'.join(f.rpath) or '-'}",
              f"  glibc        {f.glibc_max or '-'}",
              f"  min. kernel  {f.min_kernel or '-'}"]
    lines += ["  verdict      " + verdict(f)[0]] + ["               " + w for w in verdict(f)[1:]]
    return "\n".join(lines)
