"""The build machine's programs that the selected tasks will run, looked up once before any
work: a missing one is named with the Debian package that has it, not found 25 minutes in.

What is needed comes from the stage graph (toolchain.build.registry.STAGES: the stages a task's stage
comes after, and the source trees they read), so `binutils:x86_64` needs less than
`toolchain:aarch64`. Debian's Essential programs (sh, sed, grep, find, cp, diff, tar) are
always there and not listed; archives are unpacked by Python's tarfile (xz by its lzma module).
"""
from __future__ import annotations

import importlib
import re
import shutil
import subprocess
from dataclasses import dataclass

from .build import context, machine, registry
from .build.context import HERE
from .sources import store
from .sources.recipes import version_key
from .cmdline import Request, expand
from .errors import ToolchainError

QEMU = "<qemu>"    # stands for the target's qemu-user program (toolchain/build/machine.py), if it needs one

MAKE_BUILDS = ("linux_headers", "binutils", "gcc_libs", "gcc_core", "libgcc_static", "musl", "gcc", "ncurses", "libedit")
RUST = ("rust_std", "rust", "rust_obj")
RUNS_TARGET_PROGRAMS = ("hello", "linux_headers_gate", "libedit", "rust", "rust_obj")


@dataclass(frozen=True)
class Tool:
    program: str
    package: str                 # the Debian package that provides it
    used_by: tuple[str, ...]     # stages, or "fetch"/"source" for the source tasks
    optional: str = ""           # what happens without it (a note, not an error)


TOOLS = (
    Tool("patch", "patch", ("source",)),                                 # patching.py: GNU patch
    Tool("make", "make", MAKE_BUILDS),
    Tool("gcc", "gcc", ("linux_headers", "binutils", "gcc_libs", "gcc_core", "gcc", "ncurses")),   # host compiler; Linux's unifdef, ncurses' host tic
    Tool("g++", "g++", ("gcc_libs", "gcc_core", "gcc")),                 # gcc is written in C++
    Tool("m4", "m4", ("gcc_libs",)),                                     # gmp's configure (built in-tree)
    Tool("awk", "mawk", MAKE_BUILDS),                                    # configure scripts, gcc's generators
    Tool("pkg-config", "pkgconf", ("ncurses", "libedit")),               # the .pc gates, libedit's test
    Tool("bash", "bash", ("package",)),                                  # the env.sh gate
    Tool(QEMU, "qemu-user-static", RUNS_TARGET_PROGRAMS),                # target programs run here (Debian 13: qemu-user)
    Tool("rustc", "rustc-web", RUST, optional="the Rust stages are skipped"),
    Tool("cargo", "cargo-web", RUST, optional="the Rust stages are skipped"),
    Tool("apt-get", "apt", ("fetch",), optional="Debian's source archive is not used"),
)

# Python modules whose absence only shows when a file needs them
MODULES = (
    # module, what needs it, the stages, the fix
    ("lzma", ".tar.xz sources", ("fetch", "source"),
     "this Python was built without liblzma: rebuild it with liblzma-dev installed, or make "
     ".venv with Debian's python3"),
)


def work(request: Request, targets: list[str], versions: list[str],
         needs: dict[str, list[str]] | None = None, kinds: dict[str, str] | None = None) -> dict[str, set[str]]:
    """What the requested tasks will do: each stage (or "fetch", "source") -> the toolchains
    (`targets`: their names; `needs`: a toolchain -> those finished before it (stage 0, a
    canadian build's twin); `kinds`: a toolchain -> its kind of build, HERE by default)."""
    reads = {s.name: s.reads for s in registry.STAGES}
    done: dict[str, set[str]] = {}

    def stage(name: str, target: str) -> None:
        kind = (kinds or {}).get(target, HERE)
        if kind not in registry.BY_NAME[name].builds or target in done.get(name, ()):
            return
        done.setdefault(name, set()).add(target)
        if reads[name]:
            done.setdefault("source", set()).add("")
            done.setdefault("fetch", set()).add("")
        for dep in registry.after(name, kind):
            stage(dep, target)
        for first in (needs or {}).get(target, []):
            stage(registry.LAST, first)

    for family, sub in expand(request, targets, versions):
        if family in reads:
            stage(family, sub)
        elif family == "toolchain":
            stage(registry.LAST, sub)
        elif family in ("source", "sources"):
            done.setdefault("source", set()).add("")
            done.setdefault("fetch", set()).add("")
        elif family in ("fetch", "download"):
            done.setdefault("fetch", set()).add("")
    return done


def check(needed: dict[str, set[str]], qemu: dict[str, str], *, apt: bool = True,
          qemu_min: dict[str, str] | None = None) -> list[str]:
    """Raise one error naming every missing program (with its package and the apt-get line),
    too old qemu and module; return notes for missing optional ones. `qemu`: target -> its
    qemu program ("" when it runs natively); `qemu_min`: target -> the oldest qemu that runs
    its code; `apt`: whether Debian's archive may be asked for a source."""
    missing: dict[str, tuple[str, list[str]]] = {}
    notes, problems, fixes = [], [], []
    for tool in TOOLS:
        users = [u for u in tool.used_by if u in needed]
        if not users or (tool.program == "apt-get" and not apt):
            continue
        programs = sorted({qemu[t] for u in users for t in needed[u] if qemu.get(t)}) \
            if tool.program == QEMU else [tool.program]
        for program in programs:
            if shutil.which(program):
                continue
            if tool.optional:
                notes.append(f"note: {program} not found (Debian package {tool.package}): {tool.optional}")
            else:
                missing[program] = (tool.package, users)
    problems += [f"  {p:<20} Debian package {pkg}, needed by {', '.join(users)}"
                 for p, (pkg, users) in missing.items()]
    if missing:
        fixes.append(f"apt-get install {' '.join(dict.fromkeys(pkg for pkg, _ in missing.values()))}")
    runs = {t for u in RUNS_TARGET_PROGRAMS for t in needed.get(u, ())}
    old_qemu = []
    for target, least in sorted((qemu_min or {}).items()):
        program = qemu.get(target)
        if target in runs and least and program and program not in missing:
            found = qemu_version(program)
            if version_key(found or "0") < version_key(least):
                old_qemu.append(program)
                problems.append(f"  {program} is {found or 'of unknown version'}: {target}'s programs need "
                                f"qemu {least} or newer (qemu_min in targets.yaml)")
                fixes.append(f"install qemu-user {least} or newer (Debian 13's qemu-user: its programs are "
                             "static and run on older systems) and put its folder first in PATH")
    for module, what, users, fix in MODULES:
        if any(u in needed for u in users) and not _imports(module):
            problems.append(f"  Python module {module} cannot be imported (needed for {what})")
            fixes.append(fix)
    if problems:
        what = " or ".join(w for w, any_ in (("missing", len(problems) > len(old_qemu)), ("too old", old_qemu)) if any_)
        raise ToolchainError(f"{what} on this machine:\n" + "\n".join(problems), fix="; ".join(fixes))
    return notes


def qemu_version(program: str) -> str:
    """The version qemu-user reports ("qemu-x86_64 version 7.2.0 (...)"), "" if it does not say."""
    try:
        r = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    m = re.search(r"version (\d+(?:\.\d+)+)", r.stdout)
    return m.group(1) if m else ""


def _imports(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def check_request(request: Request, ctx) -> list[str]:
    """check() for what doit was asked to run, with the Context of this doit run."""
    if request.command != "run":     # list, info, clean, ...: nothing is built
        return []
    s = ctx.settings
    builds = ctx.recipes.builds()
    made = {n: context.Build(s, t, ctx.versions, h) for n, (t, h) in builds.items()}
    needed = work(request, list(builds), [v.key for v in ctx.versions.values()],
                  {n: [x.name for x in b.needs] for n, b in made.items()}, {n: b.kind for n, b in made.items()})
    # whether Debian's archive may be asked matters only without apt-get: no hashing otherwise
    apt = s.debian and not s.offline and shutil.which("apt-get") is None \
        and not all(store.fetch_is_current(s, v) for v in ctx.versions.values())
    qemu = {n: (machine.runner(t) or [""])[0] for n, (t, _) in builds.items()}
    return check(needed, qemu, apt=apt, qemu_min={n: t.qemu_min for n, (t, _) in builds.items()})
