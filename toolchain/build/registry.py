"""The stage registry, in the proven order (musl-cross-make's): Linux's headers, binutils and
gmp, mpfr, mpc (gcc_libs, which needs neither) -> gcc_core (all-gcc, with gcc's other host
libraries) -> libgcc_static (after musl's headers) -> musl -> gcc (the rest, with shared
libgcc, C++) -> hello and the headers' gate; then the target libraries, Rust, and the package.

Adding a stage: a module under stages/ whose STAGES declare it, and one line here. dodo.py's
task families, change tracking, the host-tool check, repro and the README's task table are
all derived from this tuple."""
from __future__ import annotations

from .stage import Stage
from .stages import binutils, gcc, hello, libedit, linux_headers, musl, ncurses, package, rust, target_files

STAGES: tuple[Stage, ...] = (
    *target_files.STAGES,  # canadian builds only: the target's files from the twin
    linux_headers.INSTALL,
    *binutils.STAGES,
    gcc.LIBS,
    gcc.CORE,
    *musl.STAGES,         # libgcc_static, musl
    gcc.REST,             # the rest of the same gcc build tree
    *hello.STAGES,
    linux_headers.GATE,
    *ncurses.STAGES,
    *libedit.STAGES,
    *rust.STAGES,
    *package.STAGES,
)
BY_NAME = {s.name: s for s in STAGES}
LAST = STAGES[-1].name   # the package: every kind of build ends with it


def stages_of(kind: str) -> tuple[Stage, ...]:
    """The stages of one kind of build (context.HERE, context.CANADIAN), in order."""
    return tuple(s for s in STAGES if kind in s.builds)


def first(kind: str) -> str:
    """The first stage of a kind of build: with a cache, the one that looks the toolchain up."""
    return stages_of(kind)[0].name


def after(name: str, kind: str) -> tuple[str, ...]:
    """The stages that come before `name` in that kind of build: its `after`, less those the
    kind has not (a canadian build has no musl stage: its gcc comes after gcc_core)."""
    present = {s.name for s in stages_of(kind)}
    return tuple(a for a in BY_NAME[name].after if a in present)
