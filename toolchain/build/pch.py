"""Precompiled headers for gcc's own sources while its compiler proper builds (setting pch,
on by default).

A g++ of our own (pch_wrapper.c, compiled here with the build machine's gcc) comes first in
PATH, as ccache's links do, so configure and make still run `g++` by name. For each compile
of a .cc file that starts with only #defines and includes of the headers a stage names, it
precompiles those first lines once (with that compile's flags and folder) and adds
`-include` of them; the source's own lines then change nothing (include guards, the same
#defines again). The objects are byte for byte those made without (measured on every
compile of x86_64's all-gcc), which is why, as ccache, the setting is in no stage's values:
turning it off re-runs nothing. With ccache=1 it stays off: ccache cannot cache a compile
that uses a precompiled header without being told to be sloppy about it.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from ..errors import ToolchainError

SOURCE = Path(__file__).with_name("pch_wrapper.c")
# A header is made when this many compiles asked for it: making one takes about what a few
# compiles save, so a header only a handful of files start with would cost time.
AFTER = 6


def on(settings) -> bool:
    """pch=1 (the default), and ccache off: ccache would compile every such file again."""
    return settings.pch and not settings.ccache


def wrapper_dir(state: Path) -> Path:
    """state/pch-bin-<hash of the wrapper's source>/g++, compiled once; a temporary folder
    renamed into place, so a PATH lookup finds a whole program or none."""
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    folder = state / f"pch-bin-{digest}"
    if (folder / "g++").is_file():
        return folder
    state.mkdir(parents=True, exist_ok=True)
    tmp = state / f".pch-bin-{digest}.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    cmd = ["gcc", "-O2", "-o", str(tmp / "g++"), str(SOURCE)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ToolchainError(f"could not compile {SOURCE.name} with the build machine's gcc:\n{done.stderr[-2000:]}",
                             fix="install gcc (Debian: apt-get install build-essential), or set pch=0")
    try:
        tmp.rename(folder)
    except OSError:                  # another worker put it there first
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def environment(state: Path, folder: Path, headers: tuple[str, ...], path: str,
                through: tuple[str, ...] = ()) -> dict[str, str]:
    """PATH with the wrapper first; where its headers go; the includes a header of a source's
    first lines may end with (`headers`) or only contain (`through`); and after how many
    asks a header is made."""
    return {"PATH": f"{wrapper_dir(state)}:{path}",
            "MUSL_TOOLCHAIN_PCH_DIR": str(folder),
            "MUSL_TOOLCHAIN_PCH_HEADERS": " ".join(headers),
            "MUSL_TOOLCHAIN_PCH_THROUGH": " ".join(through),
            "MUSL_TOOLCHAIN_PCH_AFTER": str(AFTER)}


def summary(folder: Path) -> str:
    """One line for the stage's log: headers made, compiles that used them, and any that
    could not be made (their compiler messages are in <name>.log beside them)."""
    made = [p for p in folder.glob("*.h.gch") if p.is_file()]
    used = sum(p.stat().st_size for p in folder.glob("*.used"))
    failed = sorted(p.with_suffix(".log").name for p in folder.glob("*.failed"))
    line = f"precompiled headers: {len(made)} made, used by {used} compiles"
    return line + (f"; could not be made: {', '.join(failed)}" if failed else "")
