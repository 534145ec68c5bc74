"""A toolchain's input key: the sha256 of everything that goes into it, known before it is
built, so that a toolchain built anywhere from the same inputs can stand in for a build here.

What goes in: the build (target row, host), every source and patch by sha256 (as fetched:
an upstream tree and Debian's repack are different inputs), each stage's configuration as
its change tracking sees it (configure flags, make variables, the hash of the stage's code,
its probe: Rust's version), and who compiles the toolchain's programs: the build machine's
compiler and libc by their version, or, for a toolchain compiled by our own stage 0, that
toolchain's key (a canadian build adds its twin's, whose target files it copies). Paths under
`out` are written relative to it, so two clones in two folders agree."""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import platform
import subprocess
import zlib

from ..build import executor, registry
from ..build.context import CANADIAN, Build
from ..errors import ToolchainError
from ..sources.store import fetch_stamp, patch_hashes

FORMAT = 1     # raise when what goes into the key changes meaning
OUT = "$OUT"


def sources(b: Build) -> dict:
    """Each package's fetched file (name, sha256, variant) and its patches' sha256."""
    found = {}
    for package, version in sorted(b.versions.items()):
        try:
            record = json.loads(fetch_stamp(b.settings, version).read_text())
            source = record["source"]
            found[package] = {"version": version.version, "sha256": source["sha256"],
                              "variant": source.get("variant", ""), "patches": patch_hashes(version, record)}
        except (OSError, ValueError, KeyError, TypeError):
            raise ToolchainError(f"{version.key} has not been fetched into {b.settings.out}, so its "
                                 "sha256 is not known yet", where=str(fetch_stamp(b.settings, version)),
                                 fix=f"run `doit sources:{b.name}` first (it downloads and verifies, "
                                     "builds nothing)") from None
    return found


def _first_line(cmd: list[str]) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return f"{cmd[0]}: not found"
    return (r.stdout or r.stderr).splitlines()[0].strip() if (r.stdout or r.stderr) else ""


@functools.lru_cache(maxsize=None)
def build_machine_compiler() -> dict:
    """What compiles and links a toolchain for the build machine: its gcc, g++ and ld by
    version, its libc (whose startup files end up in the programs) and its machine."""
    return {"machine": platform.machine(), "libc": " ".join(platform.libc_ver()),
            "gcc": _first_line(["gcc", "--version"]), "g++": _first_line(["g++", "--version"]),
            "ld": _first_line(["ld", "--version"])}


def compiled_by(b: Build) -> dict:
    if b.stage0 is None:
        return {"build_machine": build_machine_compiler()}
    return {"stage0": key(b.stage0), **({"twin": key(b.twin)} if b.kind == CANADIAN else {})}


def _probe(stage, b: Build) -> dict:
    """A stage's machine facts (Rust's version and std), as its change tracking reads them."""
    return stage.probe(b)


def inputs(b: Build) -> dict:
    """Everything the key is made of, as plain JSON values (`key` hashes this)."""
    stages = {}
    for stage in registry.stages_of(b.kind):
        config = executor.stage_config(b, stage.name)
        if stage.probe:
            config = {**config, "probe": _probe(stage, b)}
        stages[stage.name] = config
    target = {k: v for k, v in dataclasses.asdict(b.target).items() if k != "where"}
    data = {"format": FORMAT, "build": b.name, "target": target,
            "host": {"name": b.host.name, "stage0": b.host.stage0.name} if b.host else None,
            "sources": sources(b), "stages": stages, "compiled_by": compiled_by(b),
            # the tarball is gzip-compressed by this Python's zlib
            "packer": {"zlib": zlib.ZLIB_RUNTIME_VERSION}}
    text = json.dumps(data, sort_keys=True, default=str)
    return json.loads(text.replace(str(b.settings.out), OUT))


def key(b: Build) -> str:
    return hashlib.sha256(json.dumps(inputs(b), sort_keys=True, separators=(",", ":")).encode()).hexdigest()
