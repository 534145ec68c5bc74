"""What the target libraries (ncurses, libedit) share: autoconf's build triple, and gates
for static-only installs and their pkg-config files."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from ...checks import gates


def build_triple(src: Path) -> str:
    return subprocess.run([str(src / "config.guess")], capture_output=True, text=True).stdout.strip()


def no_shared_objects(b, pattern: str) -> None:
    found = [p for p in (b.sysroot / "lib").glob(pattern) if ".so" in p.name]
    if found:
        raise gates.GateError(f"shared objects were installed: {', '.join(p.name for p in found)}",
                              where=str(b.sysroot / "lib"), fix="configure the library static-only")


def pkg_config(b, *args: str) -> str:
    # pkg-config confined to the sysroot, as the target environment has it
    env = {**os.environ, **{k: v for k, v in b.target_vars().items() if k.startswith("PKG_CONFIG_")}}
    r = subprocess.run(["pkg-config", *args], capture_output=True, text=True, env=env)
    if r.returncode:
        raise gates.GateError(f"pkg-config {' '.join(args)} failed: {r.stderr.strip()}",
                              where=str(b.sysroot / "lib" / "pkgconfig"))
    return r.stdout.strip()
