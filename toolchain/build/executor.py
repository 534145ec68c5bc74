"""Running a registered stage: from a clean state to its stamp, written only after its gates
passed; and what doit compares to decide whether a stage's stamp is still good."""
from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import inspect
import json
import sys
import time
from types import ModuleType

from ..sources import store
from ..sources.store import write_json
from .context import HOST_ENV, HOST_FLAGS, Build
from ..cache import flow
from .registry import BY_NAME, LAST, Stage, first
from .stages import package
from .report import write_report
from .runner import Status
from ..say import say

# What a stage runs is the build and check code it reaches; sources, patches and recipes
# reach it as files (their verified trees), tracked by doit's file dependencies instead.
TRACKED_PACKAGES = ("toolchain.build.", "toolchain.checks.")
UNTRACKED = ("toolchain.build.registry", "toolchain.build.executor", "toolchain.build.report")


def _imported(module: ModuleType) -> set[str]:
    """The names of the modules a module's import statements name (read from its text, so
    that `from .x import CONSTANT` counts as much as `from . import x`)."""
    names = set()
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), module.__package__)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def modules_run(stage: Stage) -> list[ModuleType]:
    """The stage's module and every build or check module it imports, directly or not."""
    seen: dict[str, ModuleType] = {}
    todo = [stage.run.__module__]
    while todo:
        name = todo.pop()
        if name in seen or name not in sys.modules or hasattr(sys.modules[name], "__path__"):
            continue   # packages hold no stage code
        seen[name] = sys.modules[name]
        todo += [n for n in _imported(seen[name]) if n.startswith(TRACKED_PACKAGES) and n not in UNTRACKED]
    return [seen[name] for name in sorted(seen)]


@functools.lru_cache(maxsize=None)    # per stage, not per toolchain: the code is read once per run
def code_hash(stage: Stage) -> str:
    """The text of everything the stage runs: an edit re-runs it (and what comes after)."""
    h = hashlib.sha256()
    for module in modules_run(stage):
        h.update(module.__name__.encode() + b"\0" + inspect.getsource(module).encode() + b"\0")
    return h.hexdigest()


def stage_config(b: Build, name: str) -> dict:
    """What a stage reads besides files (for doit's config_changed): the target, the host
    environment, its own values and the hash of its code."""
    stage = BY_NAME[name]
    return {"target": b.target.name, "triple": b.triple, "host": b.host.name if b.host else "build",
            "host_flags": HOST_FLAGS,
            "host_env": list(HOST_ENV), "prefix": str(b.prefix), **stage.config(b), "code": code_hash(stage)}


def execute(b: Build, name: str) -> None:
    """Run one stage from a clean state; write its stamp only after its gates passed."""
    stage = BY_NAME[name]
    stamp = b.stamp(name)
    stamp.unlink(missing_ok=True)
    log = b.log(name)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    started = time.time()
    if b.settings.cache and name == first(b.kind):
        flow.try_restore(b)
    from_cache = bool(b.settings.cache) and flow.restored(b)
    if b.settings.cache and not from_cache:     # with a cache, a stage that builds makes its trees
        for package_name in stage.reads:
            store.prepare(b.settings, b.versions[package_name])
    with Status(f"{b.name} {name}", nice=stage.nice) as st:
        if not from_cache or name in flow.GATES:
            stage.run(b, st)
        elif name == LAST:
            package.check_restored(b)
        elapsed = st.elapsed()
    record = {"stage": name, "target": b.name, "seconds": round(elapsed, 1),
              "cpu_seconds": round(sum(t["cpu_seconds"] for t in st.timings), 1), "steps": st.timings, "restored": from_cache,
              "started": started, "log": str(log), "probe": stage.probe(b) if stage.probe else None,
              "versions": {p: v.version for p, v in b.versions.items()},
              "config": stage_config(b, name)}
    write_json(stamp, record)
    write_report(b)
    if from_cache and name not in flow.GATES and name != LAST:
        say(f"[{b.name}] {name}: from the cache")
    else:
        say(f"[{b.name}] {name}: done in {elapsed:.0f} s, gates passed (log {log})")
    if name == LAST and b.settings.cache_push and not from_cache:
        flow.push(b)


def probe_unchanged(b: Build, name: str) -> bool:
    """For doit: the machine facts the stage was built with are still the same."""
    try:
        return json.loads(b.stamp(name).read_text()).get("probe") == BY_NAME[name].probe(b)
    except (OSError, ValueError):
        return False
