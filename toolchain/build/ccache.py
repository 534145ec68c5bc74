"""ccache for the toolchain's own programs (setting ccache=1; off by default).

Only the build machine's compiler goes through it, and by name: a folder of links named gcc,
g++, cc and c++ to the ccache program comes first in PATH, so configure still finds `gcc`
and records that name (gcc hashes its link command into cc1, so `CC="ccache gcc"` would
change cc1's bytes). ccache then runs the next `gcc` in PATH. Target code (libgcc, musl,
libstdc++) is compiled by the gcc being built, never through ccache: its cc1 can change
while its driver does not, which ccache would not see. Stage 0's compilers (portable
builds) are named <triple>-gcc and so pass by too.

A hit gives the object the same compiler made from the same preprocessed input and
arguments, so what is built does not depend on it; which is why the setting is not part of
any stage's values or the cache key: turning it on or off re-runs nothing.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..errors import ToolchainError

COMPILERS = ("gcc", "g++", "cc", "c++")


def program() -> str:
    """The ccache program, or one clear error (checked when the setting is read)."""
    found = shutil.which("ccache")
    if not found:
        raise ToolchainError("ccache=1 but there is no ccache program in PATH",
                             fix="install it (Debian: apt-get install ccache), or drop ccache=1")
    return os.path.realpath(found)


def wrapper_dir(state: Path, ccache: str) -> Path:
    """state/ccache-bin: links named as the build machine's compilers, to `ccache`. Each is
    made under a temporary name and renamed over the old one, so a PATH lookup always finds
    a whole link (or none yet, and then the plain compiler), even with two workers at once."""
    folder = state / "ccache-bin"
    folder.mkdir(parents=True, exist_ok=True)
    for name in COMPILERS:
        link = folder / name
        if not (link.is_symlink() and os.path.realpath(link) == ccache):
            tmp = folder / f".{name}.{os.getpid()}"
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(ccache)
            os.replace(tmp, link)
    return folder


def environment(settings, path: str) -> dict[str, str]:
    """PATH with the wrappers first, and ccache's own settings: its cache folder; paths
    below `out` hashed relative to it (two out folders share entries); the compiler known
    by its content, not its time stamp."""
    return {"PATH": f"{wrapper_dir(settings.state, settings.ccache)}:{path}",
            "CCACHE_DIR": str(settings.ccache_dir),
            "CCACHE_BASEDIR": str(settings.out),
            "CCACHE_COMPILERCHECK": "content"}
